//! A one-bit-per-slot presence filter in front of the fingerprint table:
//! most k-gram hashes of a scanned text are in no protected document, and
//! the filter (about 16 bits per registered hash, so it stays in cache far
//! longer than the table) answers "not there" for ~94 % of them without
//! touching the table. It has false positives, never false negatives.

/// Bits per registered hash, at least.
const BITS_PER_HASH: usize = 16;
/// Smallest filter, in bits.
const MIN_BITS: usize = 1 << 12;

/// The filter. Hashes are already mixed; their low bits pick the slot
/// (winnowing keeps minima, whose top bits are mostly zero).
#[derive(Debug, Clone)]
pub(super) struct Filter {
    words: Vec<u64>,
    /// `bits - 1`.
    mask: u64,
}

impl Filter {
    /// An empty filter sized for `n` hashes.
    pub fn with_capacity(n: usize) -> Self {
        let bits = n
            .saturating_mul(BITS_PER_HASH)
            .max(MIN_BITS)
            .next_power_of_two();
        Self {
            words: vec![0; bits / 64],
            mask: bits as u64 - 1,
        }
    }

    /// A filter holding `hashes`.
    pub fn of<'a>(hashes: impl ExactSizeIterator<Item = &'a u64>) -> Self {
        let mut f = Self::with_capacity(hashes.len());
        for &h in hashes {
            f.insert(h);
        }
        f
    }

    /// How many hashes it is sized for.
    pub fn capacity(&self) -> usize {
        self.words.len() * 64 / BITS_PER_HASH
    }

    fn slot(&self, h: u64) -> (usize, u64) {
        let s = usize::try_from(h & self.mask).unwrap_or(0);
        (s / 64, 1 << (s % 64))
    }

    /// Adds `h`.
    pub fn insert(&mut self, h: u64) {
        let (i, bit) = self.slot(h);
        if let Some(w) = self.words.get_mut(i) {
            *w |= bit;
        }
    }

    /// False only when `h` was never added.
    pub fn may_contain(&self, h: u64) -> bool {
        let (i, bit) = self.slot(h);
        self.words.get(i).is_some_and(|w| w & bit != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Well-spread test hashes (splitmix64's finaliser).
    fn mix(mut h: u64) -> u64 {
        h ^= h >> 30;
        h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^= h >> 27;
        h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^ (h >> 31)
    }

    #[test]
    fn never_a_false_negative_and_few_false_positives() {
        let hashes: Vec<u64> = (0..10_000u64).map(mix).collect();
        let f = Filter::of(hashes.iter());
        assert!(hashes.iter().all(|&h| f.may_contain(h)));
        let others = (10_000..110_000u64)
            .map(mix)
            .filter(|&h| f.may_contain(h))
            .count();
        // One bit in 16 set at most: about 6 % false positives.
        assert!(others < 8_000, "{others} false positives of 100,000");
        assert!(f.capacity() >= 10_000);
    }

    #[test]
    fn small_hashes_spread_too() {
        // Winnowing keeps minima: hashes whose top bits are all zero.
        let hashes: Vec<u64> = (0..10_000u64).map(|i| mix(i) >> 8).collect();
        let f = Filter::of(hashes.iter());
        let others = (10_000..110_000u64)
            .map(|i| mix(i) >> 8)
            .filter(|&h| f.may_contain(h))
            .count();
        assert!(others < 8_000, "{others} false positives of 100,000");
    }

    #[test]
    fn empty_filter_holds_nothing() {
        let f = Filter::with_capacity(0);
        assert!(!f.may_contain(0));
        assert!(!f.may_contain(u64::MAX));
    }
}
