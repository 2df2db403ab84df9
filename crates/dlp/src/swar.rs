//! Byte tests eight at a time in a `u64` (SWAR), without `unsafe`: which
//! bytes lie in a range, gathered into one bit per byte.

const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// `b` in every byte.
const fn splat(b: u8) -> u64 {
    b as u64 * 0x0101_0101_0101_0101
}

/// The top bit of each byte of `x` that lies in `lo..=hi` (ASCII bounds):
/// with the top bits cleared first, no addition carries into the next byte.
pub(crate) fn in_range(x: u64, lo: u8, hi: u8) -> u64 {
    let y = x & LOW7;
    let at_least = y.wrapping_add(splat(0x80 - lo)) & HIGH;
    let above = y.wrapping_add(splat(0x7f - hi)) & HIGH;
    at_least & !above & !x & HIGH
}

/// Bit k set for each byte k (little-endian) of `m` whose top bit is set:
/// one multiplication moves each onto its own bit of the top byte.
pub(crate) fn gather(m: u64) -> u64 {
    (m >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56
}

/// Eight bytes of `t` from `i`, little-endian, zeros past its end.
pub(crate) fn load8(t: &[u8], i: usize) -> u64 {
    match t.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        Some(c) => u64::from_le_bytes(*c),
        None => {
            let rest = t.get(i..).unwrap_or_default();
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            u64::from_le_bytes(b)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_gathering_match_a_byte_at_a_time() {
        for base in (0..=255u8).step_by(8) {
            let bytes: Vec<u8> = (0..8).map(|k| base.wrapping_add(k * 3)).collect();
            let x = load8(&bytes, 0);
            for (lo, hi) in [
                (b'0', b'9'),
                (b'a', b'z'),
                (b'_', b'_'),
                (0x09, 0x0d),
                (0, 0x7f),
            ] {
                let want = bytes.iter().enumerate().fold(0u64, |m, (k, &c)| {
                    m | (u64::from((lo..=hi).contains(&c)) << k)
                });
                assert_eq!(gather(in_range(x, lo, hi)), want, "{bytes:?} {lo}..={hi}");
            }
        }
        assert_eq!(load8(b"abc", 1), u64::from_le_bytes(*b"bc\0\0\0\0\0\0"));
        assert_eq!(load8(b"abc", 9), 0);
    }
}
