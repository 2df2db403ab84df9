//! Per-pair WireGuard preshared keys derived from the enclave secret.
//!
//! `HKDF-SHA256(ikm = enclave secret, salt = "cordon-psk-v1",
//! info = min(pk_a, pk_b) || max(pk_a, pk_b))`: both ends of a pair get the
//! same key without the controller storing one per pair, and a key of one
//! enclave says nothing about another's.

use hkdf::Hkdf;
use proto::PublicKey;
use sha2::Sha256;

/// One enclave's key derivation, with the HKDF extract step done once: a
/// gateway's netmap derives a key per peer, so only the expand step may
/// run per pair.
#[derive(Clone)]
pub struct Deriver(Hkdf<Sha256>);

impl std::fmt::Debug for Deriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Deriver(<secret>)")
    }
}

impl Deriver {
    /// Extracts the pseudo-random key from the enclave secret.
    pub fn new(enclave_secret: &[u8; 32]) -> Self {
        Self(Hkdf::<Sha256>::new(Some(b"cordon-psk-v1"), enclave_secret))
    }

    /// The preshared key for the pair `(a, b)`; symmetric in its arguments.
    pub fn derive(&self, a: &PublicKey, b: &PublicKey) -> [u8; 32] {
        let (lo, hi) = if a.as_bytes() <= b.as_bytes() {
            (a, b)
        } else {
            (b, a)
        };
        let mut info = [0u8; 64];
        info[..32].copy_from_slice(lo.as_bytes());
        info[32..].copy_from_slice(hi.as_bytes());
        let mut out = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit.
        let _ = self.0.expand(&info, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_and_secret_dependent() {
        let a = PublicKey::from_bytes([1; 32]);
        let b = PublicKey::from_bytes([2; 32]);
        let c = PublicKey::from_bytes([3; 32]);
        let d = Deriver::new(&[9; 32]);
        assert_eq!(d.derive(&a, &b), d.derive(&b, &a));
        assert_ne!(d.derive(&a, &b), d.derive(&a, &c));
        assert_ne!(d.derive(&a, &b), Deriver::new(&[8; 32]).derive(&a, &b));
        assert_ne!(d.derive(&a, &b), [0; 32]);
    }
}
