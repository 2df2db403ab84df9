//! Fingerprints of protected documents (winnowing, Schleimer, Wilkerson and
//! Aiken 2003): text is normalised into tokens (identifiers and numbers
//! lower-cased, each other visible character on its own, white space
//! dropped), every run of `K` tokens is hashed, and in each window of `W`
//! consecutive hashes the minimum is kept. Any excerpt of at least
//! `W + K - 1` tokens (the guarantee length) shares a kept hash with its
//! source, whatever surrounds it. Hashes kept in several documents are
//! boilerplate (licence headers, common idioms) and do not count.

use std::collections::HashMap;
use std::path::Path;

/// Tokens per hashed k-gram.
pub const K: usize = 12;
/// A hash kept in this many documents or more is boilerplate.
const BOILERPLATE_DOCS: usize = 3;
/// Files larger than this are not registered.
const MAX_FILE: u64 = 16 << 20;

/// One token: its hash and byte span.
#[derive(Debug, Clone, Copy)]
struct Token {
    hash: u64,
    start: usize,
    end: usize,
}

fn mix(mut h: u64) -> u64 {
    // splitmix64 finaliser.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

fn tokens(text: &[u8]) -> Vec<Token> {
    let mut out = Vec::with_capacity(text.len() / 4);
    let mut i = 0;
    let n = text.len();
    while i < n {
        let b = text[i];
        if b.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        if b.is_ascii_alphanumeric() || b == b'_' {
            while i < n && (text[i].is_ascii_alphanumeric() || text[i] == b'_') {
                h = (h ^ u64::from(text[i].to_ascii_lowercase())).wrapping_mul(0x100_0000_01b3);
                i += 1;
            }
        } else {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
            i += 1;
        }
        out.push(Token {
            hash: mix(h),
            start,
            end: i,
        });
    }
    out
}

/// Winnowed fingerprints of `text`: (hash, first token index of its k-gram).
fn winnow(toks: &[Token], w: usize) -> Vec<(u64, usize)> {
    if toks.len() < K {
        return vec![];
    }
    let grams: Vec<u64> = toks
        .windows(K)
        .map(|g| g.iter().fold(0u64, |a, t| a.rotate_left(5) ^ t.hash))
        .map(mix)
        .collect();
    let mut out: Vec<(u64, usize)> = vec![];
    if grams.len() <= w {
        if let Some((i, h)) = grams
            .iter()
            .enumerate()
            .min_by_key(|(i, h)| (**h, std::cmp::Reverse(*i)))
        {
            out.push((*h, i));
        }
        return out;
    }
    // Monotone deque of indices with increasing hashes (rightmost minimum).
    let mut dq: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
    for i in 0..grams.len() {
        while dq.back().is_some_and(|&j| grams[j] >= grams[i]) {
            dq.pop_back();
        }
        dq.push_back(i);
        if dq.front().is_some_and(|&j| j + w <= i) {
            dq.pop_front();
        }
        if i + 1 >= w {
            if let Some(&j) = dq.front() {
                if out.last().is_none_or(|&(_, k)| k != j) {
                    out.push((grams[j], j));
                }
            }
        }
    }
    out
}

/// The registered documents' fingerprints.
#[derive(Debug, Default)]
pub struct FingerprintIndex {
    names: Vec<String>,
    /// hash -> documents holding it (boilerplate removed).
    index: HashMap<u64, Vec<u32>>,
    w: usize,
}

impl FingerprintIndex {
    /// An empty index with guarantee length `guarantee` tokens.
    pub fn new(guarantee: usize) -> Self {
        Self {
            names: vec![],
            index: HashMap::new(),
            w: guarantee.saturating_sub(K - 1).max(1),
        }
    }

    /// Registers every regular file under `dir` (recursively), named by its
    /// path relative to `dir`.
    ///
    /// # Errors
    /// When `dir` cannot be read.
    pub fn from_dir(dir: &Path, guarantee: usize) -> std::io::Result<Self> {
        let mut idx = Self::new(guarantee);
        let mut stack = vec![dir.to_path_buf()];
        let mut files = vec![];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d)? {
                let e = e?;
                let t = e.file_type()?;
                if t.is_dir() {
                    stack.push(e.path());
                } else if t.is_file() && e.metadata()?.len() <= MAX_FILE {
                    files.push(e.path());
                }
            }
        }
        files.sort();
        for f in files {
            let text = std::fs::read(&f)?;
            let name = f.strip_prefix(dir).unwrap_or(&f).display().to_string();
            idx.add(&name, &text);
        }
        idx.drop_boilerplate();
        Ok(idx)
    }

    /// Registers one document.
    pub fn add(&mut self, name: &str, text: &[u8]) {
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(name.to_owned());
        for (h, _) in winnow(&tokens(text), self.w) {
            let docs = self.index.entry(h).or_default();
            if docs.last() != Some(&id) && docs.len() < BOILERPLATE_DOCS {
                docs.push(id);
            }
        }
    }

    /// Forgets hashes that several documents share.
    pub fn drop_boilerplate(&mut self) {
        self.index.retain(|_, docs| docs.len() < BOILERPLATE_DOCS);
    }

    /// Number of registered documents.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no document is registered.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Excerpts of registered documents in `text`: (start, end, document),
    /// one per document and run of nearby matching fingerprints.
    pub fn scan(&self, text: &[u8]) -> Vec<(usize, usize, String)> {
        if self.index.is_empty() {
            return vec![];
        }
        let toks = tokens(text);
        let mut hits: Vec<(u32, usize)> = vec![];
        for (h, i) in winnow(&toks, self.w) {
            if let Some(docs) = self.index.get(&h) {
                hits.extend(docs.iter().map(|&d| (d, i)));
            }
        }
        hits.sort_unstable();
        let mut out = vec![];
        let mut k = 0;
        while k < hits.len() {
            let doc = hits[k].0;
            let first = hits[k].1;
            let mut last = first;
            k += 1;
            while k < hits.len() && hits[k].0 == doc && hits[k].1 <= last + self.w + K {
                last = hits[k].1;
                k += 1;
            }
            let start = toks[first].start;
            let end = toks[(last + K - 1).min(toks.len() - 1)].end;
            out.push((start, end, self.names[doc as usize].clone()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verilog(seed: u32, lines: usize) -> String {
        (0..lines)
            .map(|i| {
                let v = seed
                    .wrapping_mul(2_654_435_761)
                    .wrapping_add(i as u32 * 40_503);
                format!(
                    "  assign w_{seed}_{i} = (r_{v:x} & 8'h{:02x}) ^ s_{};\n",
                    v % 251,
                    v % 977
                )
            })
            .collect()
    }

    #[test]
    fn finds_an_excerpt_at_the_guarantee_length_but_not_shorter_chance_overlap() {
        let mut idx = FingerprintIndex::new(40);
        let secret = verilog(7, 60);
        idx.add("core/alu.v", secret.as_bytes());
        idx.add("core/other.v", verilog(8, 60).as_bytes());
        idx.drop_boilerplate();
        // 4 lines = 4 * 14 tokens > 40: embedded in prose, found and named.
        let excerpt: String = secret
            .lines()
            .skip(20)
            .take(4)
            .collect::<Vec<_>>()
            .join("\n");
        let text = format!("Please review this for me:\n{excerpt}\nThanks, and ignore the rest.");
        let found = idx.scan(text.as_bytes());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].2, "core/alu.v");
        assert!(text[found[0].0..found[0].1].contains("assign"));
        // Whitespace and case do not hide it.
        let mangled = excerpt.replace(' ', "\t  ").to_uppercase();
        assert_eq!(idx.scan(mangled.as_bytes()).len(), 1);
        // Unrelated Verilog is not an excerpt.
        assert!(idx.scan(verilog(99, 60).as_bytes()).is_empty());
    }

    #[test]
    fn boilerplate_in_many_documents_does_not_count() {
        let header = "// Copyright 2026 Example Corp. All rights reserved. Licensed under the terms of the internal licence, version 2, see LICENSE for the full text of the conditions.\n";
        let mut idx = FingerprintIndex::new(40);
        for s in 0..5 {
            idx.add(
                &format!("f{s}.v"),
                format!("{header}{}", verilog(s, 10)).as_bytes(),
            );
        }
        idx.drop_boilerplate();
        assert!(idx.scan(header.as_bytes()).is_empty());
        assert_eq!(idx.scan(verilog(3, 10).as_bytes()).len(), 1);
    }

    #[test]
    fn short_and_empty_inputs() {
        let mut idx = FingerprintIndex::new(40);
        idx.add("a", b"x");
        idx.add("b", b"");
        assert!(idx.scan(b"").is_empty());
        assert!(idx.scan(b"x").is_empty());
    }
}
