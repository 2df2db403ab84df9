//! Address allocation: enclave CIDRs from the pool, member addresses from
//! the enclave CIDR.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// The longest prefix an enclave may have: a `/30` holds two members.
pub const MAX_PREFIX: u8 = 30;

/// Why an enclave CIDR cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// Longer than [`MAX_PREFIX`].
    #[error("CIDR {0} is too small for an enclave (at most /{MAX_PREFIX})")]
    TooSmall(Ipv4Net),
    /// Has host bits set (`100.64.0.5/24`).
    #[error("CIDR {0} has host bits set (did you mean {1}?)")]
    HostBits(Ipv4Net, Ipv4Net),
    /// Not inside the controller's pool.
    #[error("CIDR {0} is outside the address pool {1}")]
    OutsidePool(Ipv4Net, Ipv4Net),
    /// Overlaps an existing enclave.
    #[error("CIDR {0} overlaps enclave {1}'s {2}")]
    Overlap(Ipv4Net, String, Ipv4Net),
    /// The pool has no free block of the default size left.
    #[error("the address pool {0} has no free /{1} left")]
    PoolExhausted(Ipv4Net, u8),
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Checks a requested enclave CIDR against the pool and the existing enclaves.
///
/// # Errors
/// The [`CidrError`] that applies.
pub fn check_cidr<'a>(
    cidr: Ipv4Net,
    pool: Ipv4Net,
    existing: impl IntoIterator<Item = (&'a str, Ipv4Net)>,
) -> Result<(), CidrError> {
    if cidr.prefix_len() > MAX_PREFIX {
        return Err(CidrError::TooSmall(cidr));
    }
    if cidr.trunc() != cidr {
        return Err(CidrError::HostBits(cidr, cidr.trunc()));
    }
    if !pool.contains(&cidr) {
        return Err(CidrError::OutsidePool(cidr, pool));
    }
    for (name, other) in existing {
        if overlaps(&cidr, &other) {
            return Err(CidrError::Overlap(cidr, name.to_owned(), other));
        }
    }
    Ok(())
}

/// The first `/prefix` block of `pool` that overlaps none of `taken`.
///
/// # Errors
/// [`CidrError::PoolExhausted`] when every block is taken.
pub fn next_cidr(pool: Ipv4Net, prefix: u8, taken: &[Ipv4Net]) -> Result<Ipv4Net, CidrError> {
    let exhausted = || CidrError::PoolExhausted(pool, prefix);
    let subnets = pool.subnets(prefix).map_err(|_| exhausted())?;
    for candidate in subnets {
        if !taken.iter().any(|t| overlaps(t, &candidate)) {
            return Ok(candidate);
        }
    }
    Err(exhausted())
}

/// Host addresses in use in one enclave and where the next search starts.
#[derive(Debug, Clone)]
pub struct HostAllocator {
    cidr: Ipv4Net,
    used: BTreeSet<u32>,
    last: u32,
}

impl HostAllocator {
    /// An allocator for `cidr` with no address in use.
    pub fn new(cidr: Ipv4Net) -> Self {
        Self {
            cidr,
            used: BTreeSet::new(),
            last: u32::from(cidr.network()),
        }
    }

    /// Marks `addr` as in use (on load and when a peer replica allocated it).
    pub fn mark(&mut self, addr: Ipv4Addr) {
        let a = u32::from(addr);
        self.used.insert(a);
        self.last = self.last.max(a);
    }

    /// Marks `addr` as free again.
    pub fn release(&mut self, addr: Ipv4Addr) {
        self.used.remove(&u32::from(addr));
    }

    /// The next free host address after the last one handed out, wrapping
    /// around once; freed addresses are reused only after a wrap, so a
    /// removed member's address is not handed out again straight away.
    pub fn next_free(&self) -> Option<Ipv4Addr> {
        let first = u32::from(self.cidr.network()) + 1;
        let last = u32::from(self.cidr.broadcast()) - 1;
        (self.last.saturating_add(1).max(first)..=last)
            .chain(first..=self.last.min(last))
            .find(|a| !self.used.contains(a))
            .map(Ipv4Addr::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap_or_else(|_| panic!("bad test CIDR {s}"))
    }

    #[test]
    fn checks_requested_cidrs() {
        let pool = net("100.64.0.0/10");
        let a = net("100.64.0.0/24");
        assert_eq!(check_cidr(net("100.64.1.0/24"), pool, [("a", a)]), Ok(()));
        assert!(matches!(
            check_cidr(net("100.64.0.0/16"), pool, [("a", a)]),
            Err(CidrError::Overlap(..))
        ));
        assert!(matches!(
            check_cidr(net("100.64.0.128/25"), pool, [("a", a)]),
            Err(CidrError::Overlap(..))
        ));
        assert!(matches!(
            check_cidr(net("100.64.9.0/31"), pool, []),
            Err(CidrError::TooSmall(_))
        ));
        assert!(matches!(
            check_cidr(net("100.64.9.5/24"), pool, []),
            Err(CidrError::HostBits(..))
        ));
        assert!(matches!(
            check_cidr(net("198.18.0.0/24"), pool, []),
            Err(CidrError::OutsidePool(..))
        ));
    }

    #[test]
    fn allocates_pool_blocks_in_order() {
        let pool = net("100.64.0.0/22");
        assert_eq!(next_cidr(pool, 24, &[]), Ok(net("100.64.0.0/24")));
        let taken = [net("100.64.0.0/24"), net("100.64.2.0/24")];
        assert_eq!(next_cidr(pool, 24, &taken), Ok(net("100.64.1.0/24")));
        let all = [net("100.64.0.0/22")];
        assert!(next_cidr(pool, 24, &all).is_err());
    }

    #[test]
    fn hosts_skip_network_and_broadcast() {
        let mut h = HostAllocator::new(net("100.64.0.0/30"));
        let a = h.next_free();
        assert_eq!(a, Some(Ipv4Addr::new(100, 64, 0, 1)));
        h.mark(Ipv4Addr::new(100, 64, 0, 1));
        assert_eq!(h.next_free(), Some(Ipv4Addr::new(100, 64, 0, 2)));
        h.mark(Ipv4Addr::new(100, 64, 0, 2));
        assert_eq!(h.next_free(), None);
        h.release(Ipv4Addr::new(100, 64, 0, 1));
        assert_eq!(h.next_free(), Some(Ipv4Addr::new(100, 64, 0, 1)));
    }

    proptest! {
        #[test]
        fn allocations_are_unique_and_inside(prefix in 22u8..=30, n in 0usize..300, frees in proptest::collection::vec(any::<u16>(), 0..20)) {
            let cidr = Ipv4Net::new(Ipv4Addr::new(100, 64, 4, 0), prefix).map(|c| c.trunc()).unwrap_or_else(|_| net("100.64.4.0/24"));
            let mut h = HostAllocator::new(cidr);
            let mut live = std::collections::BTreeSet::new();
            for i in 0..n {
                if let Some(f) = frees.get(i % 37) {
                    if let Some(&x) = live.iter().nth(*f as usize % (live.len().max(1))) {
                        live.remove(&x);
                        h.release(x);
                    }
                }
                match h.next_free() {
                    Some(a) => {
                        prop_assert!(cidr.contains(&a) && a != cidr.network() && a != cidr.broadcast());
                        prop_assert!(live.insert(a), "address handed out twice");
                        h.mark(a);
                    }
                    None => prop_assert_eq!(live.len() as u64, (1u64 << (32 - prefix)) - 2),
                }
            }
        }
    }
}
