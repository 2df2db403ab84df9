//! The vault: secrets sealed with ChaCha20-Poly1305 under a master key that
//! never enters the database.
//!
//! The key comes from `CORDON_VAULT_KEY` (base64 of 32 bytes) or from
//! `DATA_DIR/vault.key` (0600), created on first start. Every sealed value is
//! bound to what it is (the associated data), so a ciphertext copied from one
//! row to another does not open.

use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{AeadCore, ChaCha20Poly1305, Key, KeyInit, Nonce};

use crate::secret::{random_key, read_private, write_private};

/// Environment variable that may hold the master key.
pub const KEY_ENV: &str = "CORDON_VAULT_KEY";

const NONCE_LEN: usize = 12;

/// Why the vault failed.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// Reading or creating `vault.key` failed.
    #[error("vault key file: {0}")]
    Io(#[from] std::io::Error),
    /// The key is not base64 of 32 bytes.
    #[error("vault key is not the base64 encoding of 32 bytes")]
    BadKey,
    /// A sealed value did not authenticate: wrong key or altered data.
    #[error("a sealed value does not open with this vault key (wrong key or altered data)")]
    Open,
}

/// The master key and the cipher.
pub struct Vault {
    cipher: ChaCha20Poly1305,
}

impl Vault {
    /// Uses an explicit key.
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        }
    }

    /// Loads the key from the environment, else from `dir/vault.key`, creating
    /// that file on first start.
    ///
    /// # Errors
    /// [`VaultError`] if the key cannot be read, written or parsed.
    pub fn load_or_create(dir: &Path) -> Result<Self, VaultError> {
        if let Ok(v) = std::env::var(KEY_ENV) {
            return Self::from_b64(v.trim());
        }
        let path = dir.join("vault.key");
        if path.exists() {
            let text = read_private(&path)?;
            return Self::from_b64(String::from_utf8_lossy(&text).trim());
        }
        let key = random_key();
        write_private(&path, STANDARD.encode(key).as_bytes())?;
        Ok(Self::new(key))
    }

    /// Loads an existing key (environment or `dir/vault.key`) without creating one.
    ///
    /// # Errors
    /// [`VaultError`] if there is no key or it cannot be parsed.
    pub fn load(dir: &Path) -> Result<Self, VaultError> {
        if let Ok(v) = std::env::var(KEY_ENV) {
            return Self::from_b64(v.trim());
        }
        let text = read_private(&dir.join("vault.key"))?;
        Self::from_b64(String::from_utf8_lossy(&text).trim())
    }

    fn from_b64(s: &str) -> Result<Self, VaultError> {
        let bytes = STANDARD.decode(s).map_err(|_| VaultError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| VaultError::BadKey)?;
        Ok(Self::new(key))
    }

    /// Encrypts `plaintext` bound to `aad`; returns `nonce || ciphertext`.
    pub fn seal(&self, aad: &str, plaintext: &[u8]) -> Vec<u8> {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut rand::rngs::OsRng);
        let payload = Payload {
            msg: plaintext,
            aad: aad.as_bytes(),
        };
        // Encryption into a Vec only fails on lengths beyond 2^38 bytes,
        // which the 1 MiB request limit rules out.
        let ct = self.cipher.encrypt(&nonce, payload).unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        out
    }

    /// Decrypts what [`Vault::seal`] produced with the same `aad`.
    ///
    /// # Errors
    /// [`VaultError::Open`] if the key, the data or the `aad` differ.
    pub fn open(&self, aad: &str, sealed: &[u8]) -> Result<Vec<u8>, VaultError> {
        if sealed.len() < NONCE_LEN {
            return Err(VaultError::Open);
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| VaultError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_refuses_tampering() -> Result<(), VaultError> {
        let v = Vault::new([3; 32]);
        let s = v.seal("credential:openai", b"sk-real");
        assert!(!s.windows(7).any(|w| w == b"sk-real"));
        assert_eq!(v.open("credential:openai", &s)?, b"sk-real");
        assert!(v.open("credential:other", &s).is_err());
        let mut bad = s.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(v.open("credential:openai", &bad).is_err());
        assert!(Vault::new([4; 32]).open("credential:openai", &s).is_err());
        assert!(v.open("x", &[1, 2]).is_err());
        Ok(())
    }

    #[test]
    fn key_file_is_created_0600_and_reused() -> Result<(), VaultError> {
        let dir = tempfile::tempdir()?;
        let a = Vault::load_or_create(dir.path())?;
        let b = Vault::load_or_create(dir.path())?;
        assert_eq!(b.open("a", &a.seal("a", b"x"))?, b"x");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("vault.key"))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        Ok(())
    }
}
