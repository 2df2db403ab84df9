//! The join token: everything a node needs to find, trust and join its
//! controller, in one copy-pasteable string.
//!
//! Format: `cordon1.` followed by the unpadded base64url encoding of a JSON
//! object `{controller, ca_sha256, id, secret}`. The CA fingerprint lets a
//! node pin the controller on first contact, as kubeadm's discovery hash does.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// The prefix that names the token format version.
pub const PREFIX: &str = "cordon1.";

/// Longest encoded token accepted; anything longer is not ours.
pub const MAX_ENCODED_LEN: usize = 2048;

/// A decoded join token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinToken {
    /// HTTPS URL of the controller's API.
    pub controller: String,
    /// Lower-case hex SHA-256 of the controller CA certificate (DER).
    pub ca_sha256: String,
    /// Public identifier of the token (looked up by the controller).
    pub id: String,
    /// The secret half; the controller keeps only its hash.
    pub secret: String,
}

/// Why a string is not a valid join token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// It does not start with `cordon1.`.
    #[error("not a Cordon join token (expected it to start with {PREFIX:?})")]
    Prefix,
    /// It is longer than [`MAX_ENCODED_LEN`].
    #[error("join token is too long")]
    TooLong,
    /// The payload is not unpadded base64url or not the expected JSON object.
    #[error("join token is corrupt (was it truncated when copied?)")]
    Corrupt,
    /// The controller URL is not an `https://` URL.
    #[error("join token names a controller that is not an https:// URL")]
    Controller,
    /// The fingerprint is not 64 lower-case hex digits.
    #[error("join token carries a malformed CA fingerprint")]
    Fingerprint,
    /// The id or secret is empty, too long or uses characters outside base64url.
    #[error("join token carries a malformed id or secret")]
    Credential,
}

fn is_b64url(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl JoinToken {
    /// Checks every field.
    ///
    /// # Errors
    /// The first [`TokenError`] found.
    pub fn validate(&self) -> Result<(), TokenError> {
        let rest = self
            .controller
            .strip_prefix("https://")
            .ok_or(TokenError::Controller)?;
        if rest.is_empty() || rest.len() > 512 || rest.chars().any(char::is_whitespace) {
            return Err(TokenError::Controller);
        }
        if self.ca_sha256.len() != 64
            || !self
                .ca_sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(TokenError::Fingerprint);
        }
        if !is_b64url(&self.id, 64) || !is_b64url(&self.secret, 128) {
            return Err(TokenError::Credential);
        }
        Ok(())
    }

    /// The string form, `cordon1.<base64url(JSON)>`.
    pub fn encode(&self) -> String {
        // Serialising four strings cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(json))
    }

    /// Parses and validates the string form. Surrounding white space (from a
    /// copy and paste) is ignored.
    ///
    /// # Errors
    /// A [`TokenError`] saying what is wrong, never echoing the secret.
    pub fn decode(s: &str) -> Result<Self, TokenError> {
        let s = s.trim();
        if s.len() > MAX_ENCODED_LEN {
            return Err(TokenError::TooLong);
        }
        let payload = s.strip_prefix(PREFIX).ok_or(TokenError::Prefix)?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Corrupt)?;
        let token: JoinToken = serde_json::from_slice(&json).map_err(|_| TokenError::Corrupt)?;
        token.validate()?;
        Ok(token)
    }
}

impl fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinToken")
            .field("controller", &self.controller)
            .field("ca_sha256", &self.ca_sha256)
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> JoinToken {
        JoinToken {
            controller: "https://127.0.0.1:7443".into(),
            ca_sha256: "ab".repeat(32),
            id: "tok_abc".into(),
            secret: "s3cr3t-Value_x".into(),
        }
    }

    #[test]
    fn round_trips() {
        let t = sample();
        let s = t.encode();
        assert!(s.starts_with("cordon1."));
        assert_eq!(JoinToken::decode(&format!("  {s}\n")), Ok(t));
    }

    #[test]
    fn rejects_bad_tokens() {
        let good = sample().encode();
        assert_eq!(JoinToken::decode("cordon2.xxx"), Err(TokenError::Prefix));
        assert_eq!(
            JoinToken::decode(&good[..good.len() - 5]),
            Err(TokenError::Corrupt)
        );
        assert_eq!(JoinToken::decode("cordon1.!!!"), Err(TokenError::Corrupt));
        let long = format!("cordon1.{}", "A".repeat(MAX_ENCODED_LEN));
        assert_eq!(JoinToken::decode(&long), Err(TokenError::TooLong));
        let mut t = sample();
        t.controller = "http://x".into();
        assert_eq!(JoinToken::decode(&t.encode()), Err(TokenError::Controller));
        let mut t = sample();
        t.ca_sha256 = "AB".repeat(32);
        assert_eq!(JoinToken::decode(&t.encode()), Err(TokenError::Fingerprint));
        let mut t = sample();
        t.secret = String::new();
        assert_eq!(JoinToken::decode(&t.encode()), Err(TokenError::Credential));
        let extra = format!(
            "cordon1.{}",
            URL_SAFE_NO_PAD.encode(
                br#"{"controller":"https://a","ca_sha256":"x","id":"a","secret":"b","x":1}"#
            )
        );
        assert_eq!(JoinToken::decode(&extra), Err(TokenError::Corrupt));
    }

    #[test]
    fn debug_hides_secret() {
        let dbg = format!("{:?}", sample());
        assert!(!dbg.contains("s3cr3t"));
    }

    proptest! {
        #[test]
        fn decode_never_panics(s in ".{0,300}") {
            let _ = JoinToken::decode(&s);
        }

        #[test]
        fn decode_of_prefixed_bytes_never_panics(b in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = JoinToken::decode(&format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(b)));
        }
    }
}
