//! Random secrets, their stored hashes, constant-time comparison and
//! owner-only files.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// `n` random bytes from the OS generator, base64url without padding.
pub fn random_token(n: usize) -> String {
    let mut buf = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// 32 random bytes from the OS generator.
pub fn random_key() -> [u8; 32] {
    let mut k = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut k);
    k
}

/// The hex SHA-256 of a secret, which is what gets stored.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `secret` hashes to `stored_hash`, compared in constant time.
pub fn verify_secret(secret: &str, stored_hash: &str) -> bool {
    let h = hash_secret(secret);
    h.as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

/// Writes `contents` to a new file readable only by its owner (0600).
///
/// # Errors
/// Any I/O error; an existing file is an error (secrets are never
/// overwritten silently).
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

/// Reads a secret file, refusing one that group or others can read.
///
/// # Errors
/// I/O errors, and `PermissionDenied` when the mode is wider than 0600.
pub fn read_private(path: &Path) -> std::io::Result<Vec<u8>> {
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{} is readable by others (mode {:o}); run chmod 600 on it",
                path.display(),
                mode & 0o777
            ),
        ));
    }
    std::fs::read(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_only_the_right_secret() {
        let s = random_token(32);
        let h = hash_secret(&s);
        assert!(verify_secret(&s, &h));
        assert!(!verify_secret("other", &h));
        assert!(!verify_secret(&s, ""));
        assert_ne!(random_token(32), s);
    }

    #[test]
    fn private_files_are_0600_and_never_overwritten() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("k");
        write_private(&p, b"x")?;
        assert_eq!(std::fs::metadata(&p)?.permissions().mode() & 0o777, 0o600);
        assert!(write_private(&p, b"y").is_err());
        assert_eq!(read_private(&p)?, b"x");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644))?;
        assert!(read_private(&p).is_err());
        Ok(())
    }
}
