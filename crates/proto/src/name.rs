//! DNS-label-like names for enclaves, members, chambers and credentials.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A lower-case DNS label: 1–63 characters of `a-z`, `0-9` and `-`, neither
/// starting nor ending with `-`.
///
/// Names end up in interface names, log lines and URLs, so they are kept to
/// the one alphabet that is safe in all of them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String, example = "project-a"))]
pub struct Name(String);

/// Why a string is not a valid [`Name`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The string is empty.
    #[error("name is empty")]
    Empty,
    /// The string is longer than 63 bytes.
    #[error("name is longer than 63 characters")]
    TooLong,
    /// The string holds a character outside `a-z`, `0-9` and `-`.
    #[error("name may only contain lower-case letters, digits and '-'")]
    BadCharacter,
    /// The string starts or ends with `-`.
    #[error("name may not start or end with '-'")]
    EdgeHyphen,
}

impl Name {
    /// Validates `s` as a name.
    ///
    /// # Errors
    /// Returns a [`NameError`] saying which rule `s` breaks.
    pub fn new(s: impl Into<String>) -> Result<Self, NameError> {
        let s = s.into();
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if s.len() > 63 {
            return Err(NameError::TooLong);
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(NameError::BadCharacter);
        }
        if s.starts_with('-') || s.ends_with('-') {
            return Err(NameError::EdgeHyphen);
        }
        Ok(Self(s))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Name {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl From<Name> for String {
    fn from(n: Name) -> Self {
        n.0
    }
}

impl std::str::FromStr for Name {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_labels() {
        for ok in ["a", "project-a", "agent-1", "0", &"x".repeat(63)] {
            assert_eq!(Name::new(ok).map(|n| n.to_string()).as_deref(), Ok(ok));
        }
    }

    #[test]
    fn rejects_non_labels() {
        assert_eq!(Name::new(""), Err(NameError::Empty));
        assert_eq!(Name::new("x".repeat(64)), Err(NameError::TooLong));
        assert_eq!(Name::new("Project"), Err(NameError::BadCharacter));
        assert_eq!(Name::new("a_b"), Err(NameError::BadCharacter));
        assert_eq!(Name::new("a.b"), Err(NameError::BadCharacter));
        assert_eq!(Name::new("é"), Err(NameError::BadCharacter));
        assert_eq!(Name::new("-a"), Err(NameError::EdgeHyphen));
        assert_eq!(Name::new("a-"), Err(NameError::EdgeHyphen));
    }

    #[test]
    fn deserialize_validates() {
        assert!(serde_json::from_str::<Name>("\"ok-name\"").is_ok());
        assert!(serde_json::from_str::<Name>("\"Bad Name\"").is_err());
    }
}
