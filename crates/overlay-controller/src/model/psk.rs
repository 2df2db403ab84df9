//! Per-pair WireGuard preshared keys derived from the enclave secret.
//!
//! `HKDF-SHA256(ikm = enclave secret, salt = "cordon-psk-v1",
//! info = min(pk_a, pk_b) || max(pk_a, pk_b))`: both ends of a pair get the
//! same key without the controller storing one per pair, and a key of one
//! enclave says nothing about another's.

use hkdf::Hkdf;
use proto::PublicKey;
use sha2::Sha256;

/// The preshared key for the pair `(a, b)`; symmetric in its arguments.
pub fn derive(enclave_secret: &[u8; 32], a: &PublicKey, b: &PublicKey) -> [u8; 32] {
    let (lo, hi) = if a.as_bytes() <= b.as_bytes() {
        (a, b)
    } else {
        (b, a)
    };
    let mut info = [0u8; 64];
    info[..32].copy_from_slice(lo.as_bytes());
    info[32..].copy_from_slice(hi.as_bytes());
    let hk = Hkdf::<Sha256>::new(Some(b"cordon-psk-v1"), enclave_secret);
    let mut out = [0u8; 32];
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit.
    let _ = hk.expand(&info, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_and_secret_dependent() {
        let a = PublicKey::from_bytes([1; 32]);
        let b = PublicKey::from_bytes([2; 32]);
        let c = PublicKey::from_bytes([3; 32]);
        let s = [9; 32];
        assert_eq!(derive(&s, &a, &b), derive(&s, &b, &a));
        assert_ne!(derive(&s, &a, &b), derive(&s, &a, &c));
        assert_ne!(derive(&s, &a, &b), derive(&[8; 32], &a, &b));
        assert_ne!(derive(&s, &a, &b), [0; 32]);
    }
}
