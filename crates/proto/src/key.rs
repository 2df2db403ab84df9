//! WireGuard public keys as they travel in the API: standard base64 of 32 bytes.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// A Curve25519 public key. Only its encoding is checked here; a node never
/// sends its private key, so there is nothing else the controller can check.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String, example = "bW9yZS10aGFuLTMyLWJ5dGVzLWJhc2U2NC1lbmNvZGVkISE="))]
pub struct PublicKey([u8; 32]);

/// The string is not the base64 encoding of exactly 32 bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("public key must be the base64 encoding of 32 bytes")]
pub struct BadPublicKey;

impl PublicKey {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses the base64 form.
    ///
    /// # Errors
    /// [`BadPublicKey`] if `s` is not base64 or does not decode to 32 bytes.
    pub fn parse(s: &str) -> Result<Self, BadPublicKey> {
        let bytes = STANDARD.decode(s).map_err(|_| BadPublicKey)?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| BadPublicKey)?;
        // The all-zero key is the identity point: no handshake can succeed.
        if arr == [0; 32] {
            return Err(BadPublicKey);
        }
        Ok(Self(arr))
    }
}

impl TryFrom<String> for PublicKey {
    type Error = BadPublicKey;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<PublicKey> for String {
    fn from(k: PublicKey) -> Self {
        STANDARD.encode(k.0)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&STANDARD.encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_32_bytes_only() {
        let k = PublicKey::from_bytes([7; 32]);
        assert_eq!(PublicKey::parse(&k.to_string()), Ok(k));
        assert_eq!(
            PublicKey::parse(&STANDARD.encode([1u8; 31])),
            Err(BadPublicKey)
        );
        assert_eq!(
            PublicKey::parse(&STANDARD.encode([1u8; 33])),
            Err(BadPublicKey)
        );
        assert_eq!(PublicKey::parse("not base64!"), Err(BadPublicKey));
        assert_eq!(
            PublicKey::parse(&STANDARD.encode([0u8; 32])),
            Err(BadPublicKey)
        );
    }
}
