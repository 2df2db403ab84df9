//! ICMP "destination unreachable" for packets with no peer to go to, so a
//! local program fails fast instead of timing out.

use std::net::Ipv4Addr;

use super::packet::checksum;

/// Writes into `out` an ICMPv4 destination-unreachable (host unreachable)
/// from `from` answering `original`; returns its length.
pub fn host_unreachable(from: Ipv4Addr, original: &[u8], out: &mut [u8]) -> Option<usize> {
    let (orig_src, _) = super::packet::ipv4_addrs(original)?;
    // Never answer an ICMP error with an ICMP error (RFC 1122 3.2.2).
    let ihl = usize::from(original[0] & 0x0f) * 4;
    if original[9] == 1
        && original
            .get(ihl)
            .is_some_and(|t| ![0u8, 8, 13, 15, 17].contains(t))
    {
        return None;
    }
    let quoted = original.len().min(ihl + 8);
    let len = 20 + 8 + quoted;
    if out.len() < len {
        return None;
    }
    let p = &mut out[..len];
    p.fill(0);
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 1;
    p[12..16].copy_from_slice(&from.octets());
    p[16..20].copy_from_slice(&orig_src.octets());
    let c = checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20] = 3; // destination unreachable
    p[21] = 1; // host unreachable
    p[28..].copy_from_slice(&original[..quoted]);
    let c = checksum(&p[20..]);
    p[22..24].copy_from_slice(&c.to_be_bytes());
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_with_a_valid_icmp_error() {
        let mut orig = [0u8; 60];
        orig[0] = 0x45;
        orig[9] = 6;
        orig[12..16].copy_from_slice(&[100, 64, 0, 1]);
        orig[16..20].copy_from_slice(&[100, 64, 0, 9]);
        let mut out = [0u8; 128];
        let n = host_unreachable(Ipv4Addr::new(100, 64, 0, 1), &orig, &mut out).unwrap_or(0);
        assert_eq!(n, 56);
        assert_eq!(checksum(&out[..20]), 0, "IP header checksum verifies");
        assert_eq!(checksum(&out[20..n]), 0, "ICMP checksum verifies");
        assert_eq!(&out[16..20], &[100, 64, 0, 1]);
        assert_eq!((out[20], out[21]), (3, 1));
        // An ICMP error is never answered.
        let mut err = orig;
        err[9] = 1;
        err[20] = 3;
        assert_eq!(
            host_unreachable(Ipv4Addr::new(100, 64, 0, 1), &err, &mut out),
            None
        );
    }
}
