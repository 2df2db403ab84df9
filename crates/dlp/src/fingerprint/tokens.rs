//! Normalised tokens of a text: identifiers and numbers (ASCII letters,
//! digits, `_`) case-folded into one token each, every other non-space
//! byte a token of its own, ASCII white space dropped. Only the hash and
//! the byte span of a token are kept; nothing is allocated.

/// One token: its hash and byte span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Token {
    /// Hash of the case-folded token.
    pub hash: u64,
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

use crate::swar::{gather, in_range, load8};

const SPACE: u8 = 0;
const WORD: u8 = 1;
const OTHER: u8 = 2;

/// The class of every byte: ASCII white space (with the vertical tab),
/// word bytes, the rest.
static CLASS: [u8; 256] = {
    let mut c = [OTHER; 256];
    let mut b = 0;
    while b < 256 {
        let x = b as u8;
        if x == b' ' || (x >= 0x09 && x <= 0x0d) {
            c[b] = SPACE;
        } else if x.is_ascii_alphanumeric() || x == b'_' {
            c[b] = WORD;
        }
        b += 1;
    }
    c
};

/// Word bytes and white space of one 64-byte block, one bit per byte.
fn classify(block: &[u8; 64]) -> (u64, u64) {
    let (mut word, mut space) = (0u64, 0u64);
    for (k, c) in block.chunks_exact(8).enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        let x = u64::from_le_bytes(b);
        let w = in_range(x, b'0', b'9') | in_range(x | FOLD, b'a', b'z') | in_range(x, b'_', b'_');
        let s = in_range(x, 0x09, 0x0d) | in_range(x, b' ', b' ');
        word |= gather(w) << (8 * k);
        space |= gather(s) << (8 * k);
    }
    (word, space)
}

/// Sets bit 5 of every byte: folds ASCII letters to lower case, leaves
/// digits as they are and maps `_` to DEL, which is not a word byte, so
/// folding word bytes is one-to-one apart from case.
const FOLD: u64 = 0x2020_2020_2020_2020;
const P: u64 = 0x9e37_79b9_7f4a_7c15;

/// Hash of the token `t[start..end]`, eight bytes at a time, a word's
/// case-folded; the last chunk is read whole from the text and masked
/// rather than copied. Words and single other bytes take the same path
/// (no branch on the kind of token); the kind is hashed, so a word and
/// another byte never hash alike by their bytes (`_` folds to DEL).
/// `word` is 1 for a word, 0 for another byte: arithmetic, not a branch,
/// as the two alternate at random.
fn token_hash(t: &[u8], start: usize, end: usize, word: u64) -> u64 {
    let fold = FOLD & word.wrapping_neg();
    let mut h = (end - start) as u64 ^ (word << 63);
    let mut i = start;
    while end - i > 8 {
        h = (h ^ (load8(t, i) | fold)).wrapping_mul(P);
        i += 8;
    }
    let keep = u64::MAX >> (64 - 8 * (end - i));
    h = (h ^ ((load8(t, i) | fold) & keep)).wrapping_mul(P);
    // The product's high bits back into its low ones; the k-gram's hash
    // is finished once, in `winnow`.
    h ^ (h >> 29)
}

/// The tokens of a text, in order. The text is classified 64 bytes at a
/// time into bit masks, so finding a token's start and a word's end are
/// bit operations rather than a branch per byte.
pub(super) struct Tokens<'a> {
    text: &'a [u8],
    /// Offset of the current block.
    base: usize,
    /// Token starts in the current block not yet returned.
    starts: u64,
    /// Word bytes of the current block.
    word: u64,
    /// Whether the byte before the next block is a word byte.
    carry: bool,
}

impl<'a> Tokens<'a> {
    /// Tokens of `text`.
    pub fn new(text: &'a [u8]) -> Self {
        let mut t = Self {
            text,
            base: 0,
            starts: 0,
            word: 0,
            carry: false,
        };
        t.load(0);
        t
    }

    /// Classifies the block at `base`.
    fn load(&mut self, base: usize) {
        self.base = base;
        let rest = self.text.get(base..).unwrap_or_default();
        let (mut word, space, valid) = if let Some(b) = rest.first_chunk::<64>() {
            let (w, s) = classify(b);
            (w, s, u64::MAX)
        } else {
            // The last, short block: padded with zeros (not word bytes),
            // which are then masked off.
            let mut b = [0u8; 64];
            b[..rest.len()].copy_from_slice(rest);
            let (w, s) = classify(&b);
            (w, s, (1u64 << rest.len()) - 1)
        };
        word &= valid;
        // A word byte after a word byte continues a token.
        let continued = word & ((word << 1) | u64::from(self.carry));
        self.starts = !space & valid & !continued;
        self.word = word;
        self.carry = word >> 63 != 0;
    }
}

impl Iterator for Tokens<'_> {
    type Item = Token;

    #[inline]
    fn next(&mut self) -> Option<Token> {
        while self.starts == 0 {
            if self.base + 64 >= self.text.len() {
                return None;
            }
            self.load(self.base + 64);
        }
        let at = self.starts.trailing_zeros() as usize;
        self.starts &= self.starts - 1;
        let start = self.base + at;
        let t = self.text;
        // Word bytes from here: none for a byte that is not a word's.
        let word = (self.word >> at) & 1;
        let run = (self.word >> at).trailing_ones() as usize;
        let mut end = start + run + (1 - word) as usize;
        // One test for "a word reaching the block's end", as integers:
        // two tests would be a branch on the kind of token.
        if (end ^ (self.base + 64)) | (1 - word) as usize == 0 {
            // Runs on past the block (the next blocks know it continues).
            while end < t.len() && CLASS[usize::from(t[end])] == WORD {
                end += 1;
            }
        }
        Some(Token {
            hash: token_hash(t, start, end, word),
            start,
            end,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, a byte at a time.
    fn reference(t: &[u8]) -> Vec<(usize, usize)> {
        let mut out = vec![];
        let mut i = 0;
        while i < t.len() {
            let c = CLASS[usize::from(t[i])];
            let start = i;
            i += 1;
            if c == WORD {
                while i < t.len() && CLASS[usize::from(t[i])] == WORD {
                    i += 1;
                }
            }
            if c != SPACE {
                out.push((start, i));
            }
        }
        out
    }

    #[test]
    fn block_masks_equal_the_byte_walk() {
        // Every byte value, and words across block boundaries.
        let all: Vec<u8> = (0..=255u8).collect();
        let mut texts = vec![all.clone(), all.iter().rev().copied().collect()];
        let mut s = 7u64;
        for len in [0, 1, 63, 64, 65, 127, 128, 129, 300, 1000] {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    // Mostly word bytes, so long words cross blocks.
                    b"aZ_9 \t(\x0b\xe9xyzxyzxyz"[(s >> 33) as usize % 18]
                })
                .collect();
            texts.push(bytes);
            texts.push(vec![b'w'; len]);
        }
        for t in &texts {
            let got: Vec<(usize, usize)> = Tokens::new(t).map(|k| (k.start, k.end)).collect();
            assert_eq!(got, reference(t), "{t:?}");
            for k in Tokens::new(t) {
                assert_eq!(
                    k.hash,
                    Tokens::new(&t[k.start..k.end]).next().map_or(0, |x| x.hash)
                );
            }
        }
        for b in 0..=255u8 {
            let w = CLASS[usize::from(b)] == WORD;
            assert_eq!(w, b.is_ascii_alphanumeric() || b == b'_', "{b}");
            let sp = CLASS[usize::from(b)] == SPACE;
            assert_eq!(sp, b.is_ascii_whitespace() || b == 0x0b, "{b}");
        }
    }

    fn spans(text: &str) -> Vec<&str> {
        Tokens::new(text.as_bytes())
            .map(|t| &text[t.start..t.end])
            .collect()
    }

    #[test]
    fn words_numbers_and_punctuation() {
        assert_eq!(
            spans("  assign w_1 = (r & 8'hff);\n"),
            ["assign", "w_1", "=", "(", "r", "&", "8", "'", "hff", ")", ";"]
        );
        assert!(spans(" \t\r\n").is_empty());
        // Bytes beyond ASCII are tokens of their own.
        let bytes: Vec<(usize, usize)> = Tokens::new("é".as_bytes())
            .map(|t| (t.start, t.end))
            .collect();
        assert_eq!(bytes, [(0, 1), (1, 2)]);
    }

    #[test]
    fn case_is_folded_at_every_length() {
        for n in 1..40 {
            let lower: String = (0..n).map(|i| (b'a' + (i % 26) as u8) as char).collect();
            let mixed: String = lower
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if i % 3 == 0 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect();
            let a: Vec<u64> = Tokens::new(lower.as_bytes()).map(|t| t.hash).collect();
            let b: Vec<u64> = Tokens::new(mixed.as_bytes()).map(|t| t.hash).collect();
            assert_eq!(a, b, "{lower} / {mixed}");
        }
    }

    #[test]
    fn distinct_words_hash_apart() {
        // Prefixes, one byte changed at every position of a chunk, `_`
        // against a letter, a word against the same bytes as punctuation.
        let words = [
            "a",
            "ab",
            "abc",
            "abcdefgh",
            "abcdefghi",
            "abcdefgg",
            "bbcdefgh",
            "abcdefgi",
            "a_b",
            "a b",
            "aeb",
            "_",
            "x0",
            "x1",
            "0",
            "00",
            "000000000000000000",
            "00000000000000000",
        ];
        let mut seen = std::collections::HashMap::new();
        for w in words {
            let hs: Vec<u64> = Tokens::new(w.as_bytes()).map(|t| t.hash).collect();
            if let Some(other) = seen.insert(hs.clone(), w) {
                panic!("{w} and {other} hash alike");
            }
        }
        let punct: Vec<u64> = Tokens::new(b"(").map(|t| t.hash).collect();
        let word: Vec<u64> = Tokens::new(b"h").map(|t| t.hash).collect();
        assert_ne!(punct, word);
    }
}
