//! Winnowing in one pass: every run of [`K`] tokens is hashed with a
//! rolling hash (one rotation and two XORs per token), and of every window
//! of `w` consecutive k-gram hashes the rightmost minimum is kept (see
//! `Window`). Nothing is allocated per token, and nothing but the text is
//! read: a scan touches its tables only for the few k-grams kept.

use super::tokens::Tokens;

/// Tokens per hashed k-gram.
pub const K: usize = 12;

/// Rotation of one token's hash per position in its k-gram.
const ROT: u32 = 5;

/// The last tokens' hashes and starts: a power of two above [`K`].
const LAST: usize = 16;

/// One k-gram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Gram {
    /// Hash of the k-gram.
    pub hash: u64,
    /// Index of its first token (the k-gram's index).
    pub index: usize,
    /// First byte of its first token.
    pub start: usize,
    /// One past the last byte of its last token.
    pub end: usize,
}

/// The rightmost minimum of a window sliding over k-grams: replaced when a
/// gram at most as large arrives, looked for again (a walk over the
/// window) only when it leaves the window, which for hashes is rare; so
/// the path per gram is all but free of branches that go one way or the
/// other at random.
struct Window {
    w: usize,
    /// The last `w` grams, by index modulo a power of two.
    last: Vec<Gram>,
    mask: usize,
    min: Gram,
    /// Index of the gram kept last.
    kept: usize,
}

impl Window {
    fn new(w: usize) -> Self {
        let ring = w.next_power_of_two();
        Self {
            w,
            last: vec![Gram::default(); ring],
            mask: ring - 1,
            min: Gram {
                hash: u64::MAX,
                ..Gram::default()
            },
            kept: usize::MAX,
        }
    }

    /// Takes the next gram (indices 0, 1, 2, …); returns the window's
    /// rightmost minimum once the window is full and when it changed.
    fn push(&mut self, g: Gram) -> Option<Gram> {
        let w = self.w;
        self.last[g.index & self.mask] = g;
        if g.hash <= self.min.hash {
            self.min = g;
        } else if self.min.index + w <= g.index {
            // The newest first: an older gram must be smaller to win.
            self.min = g;
            for j in (g.index + 1 - w..g.index).rev() {
                let c = self.last[j & self.mask];
                if c.hash < self.min.hash {
                    self.min = c;
                }
            }
        }
        if g.index + 1 >= w && self.min.index != self.kept {
            self.kept = self.min.index;
            return Some(self.min);
        }
        None
    }

    /// After `grams` grams: the rightmost minimum of them all when they
    /// never filled a window.
    fn finish(&self, grams: usize) -> Option<Gram> {
        (grams > 0 && grams < self.w).then_some(self.min)
    }
}

/// A k-gram's hash from its rolling hash: one multiplication carries
/// every bit upward (winnowing compares whole values, so the top bits
/// matter most) and one shift brings the top back down for the low bits
/// the filter and the table index by.
fn finish(roll: u64) -> u64 {
    let h = roll.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^ (h >> 32)
}

/// Calls `keep` with the winnowed k-grams of `text` (window `w` ≥ 1), in
/// order, each once. A text with fewer than `w` k-grams keeps its
/// rightmost minimum; one with fewer than [`K`] tokens keeps nothing.
pub(super) fn winnow(text: &[u8], w: usize, mut keep: impl FnMut(Gram)) {
    let mut hashes = [0u64; LAST];
    let mut starts = [0usize; LAST];
    let mut roll = 0u64;
    let mut n = 0usize;
    let mut window = Window::new(w.max(1));
    for t in Tokens::new(text) {
        roll = roll.rotate_left(ROT) ^ t.hash;
        if n >= K {
            // The token leaving the k-gram was rotated K times.
            roll ^= hashes[(n - K) % LAST].rotate_left(ROT * K as u32);
        }
        hashes[n % LAST] = t.hash;
        starts[n % LAST] = t.start;
        n += 1;
        if n < K {
            continue;
        }
        let g = Gram {
            hash: finish(roll),
            index: n - K,
            start: starts[(n - K) % LAST],
            end: t.end,
        };
        if let Some(m) = window.push(g) {
            keep(m);
        }
    }
    if let Some(m) = window.finish((n + 1).saturating_sub(K)) {
        keep(m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rightmost minimum of every window of `w` grams (of all of them
    /// when fewer), each once: the definition, the slow way.
    fn rightmost_minima(grams: &[Gram], w: usize) -> Vec<Gram> {
        let rightmost_min = |win: &[Gram]| {
            let m = win.iter().map(|g| g.hash).min().unwrap_or(0);
            win.iter().rev().find(|g| g.hash == m).copied()
        };
        let mut out: Vec<Gram> = vec![];
        if grams.len() < w {
            out.extend(rightmost_min(grams));
            return out;
        }
        for win in grams.windows(w) {
            if let Some(g) = rightmost_min(win) {
                if out.last().is_none_or(|l| l.index != g.index) {
                    out.push(g);
                }
            }
        }
        out
    }

    /// Every k-gram folded from its tokens, then [`rightmost_minima`].
    fn reference(text: &[u8], w: usize) -> Vec<Gram> {
        let toks: Vec<_> = Tokens::new(text).collect();
        if toks.len() < K {
            return vec![];
        }
        let grams: Vec<Gram> = toks
            .windows(K)
            .enumerate()
            .map(|(i, g)| Gram {
                hash: finish(g.iter().fold(0u64, |a, t| a.rotate_left(ROT) ^ t.hash)),
                index: i,
                start: g[0].start,
                end: g[K - 1].end,
            })
            .collect();
        rightmost_minima(&grams, w)
    }

    #[test]
    fn the_window_keeps_the_rightmost_minimum_among_many_ties() {
        // Hashes from a tiny range: equal minima in most windows.
        let mut s = 3u64;
        for range in [1, 2, 3, 5, 1000] {
            for w in [1, 2, 4, 7, 29] {
                for len in [1, 3, 28, 29, 30, 500] {
                    let grams: Vec<Gram> = (0..len)
                        .map(|index| {
                            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                            Gram {
                                hash: (s >> 33) % range,
                                index,
                                ..Gram::default()
                            }
                        })
                        .collect();
                    let mut window = Window::new(w);
                    let mut got: Vec<Gram> = grams.iter().filter_map(|&g| window.push(g)).collect();
                    got.extend(window.finish(len));
                    assert_eq!(
                        got,
                        rightmost_minima(&grams, w),
                        "range {range} w {w} len {len}"
                    );
                }
            }
        }
    }

    fn text(seed: u64, tokens: usize) -> String {
        // Few distinct words, so that equal k-grams (ties) occur; with
        // two words, often several in one window.
        let words: &[&str] = if seed.is_multiple_of(2) {
            &["a", "b", "wire", "reg", "(", ")", ";", "x_1", "Q"]
        } else {
            &["a", "b"]
        };
        let mut s = seed;
        (0..tokens)
            .map(|_| {
                s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                words[(s >> 33) as usize % words.len()]
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn one_pass_equals_the_definition() {
        for w in [1, 2, 3, 7, 29] {
            for tokens in [
                0,
                1,
                K - 1,
                K,
                K + 1,
                K + w - 1,
                K + w,
                K + 3 * w,
                400,
                3000,
            ] {
                for seed in 0..4 {
                    let t = text(seed, tokens);
                    let mut got = vec![];
                    winnow(t.as_bytes(), w, |g| got.push(g));
                    assert_eq!(got, reference(t.as_bytes(), w), "w={w} tokens={tokens}");
                }
            }
        }
    }

    #[test]
    fn repeated_text_keeps_the_rightmost_of_equal_hashes() {
        // Text that repeats with every period gives equal k-gram hashes
        // at different places: the rightmost of them is the one kept.
        for period in [1, 5, 13, 20, 31, 40] {
            let phrase: Vec<String> = (0..period).map(|i| format!("t{i}")).collect();
            let t = vec![phrase.join(" "); 30].join(" ");
            for w in [2, 5, 7, 29] {
                let mut got = vec![];
                winnow(t.as_bytes(), w, |g| got.push(g));
                assert_eq!(got, reference(t.as_bytes(), w), "period {period} w {w}");
                assert!(!got.is_empty());
            }
        }
    }
}
