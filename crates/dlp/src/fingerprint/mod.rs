//! Fingerprints of protected documents (winnowing, Schleimer, Wilkerson and
//! Aiken 2003): text is normalised into tokens (identifiers and numbers
//! lower-cased, each other visible character on its own, white space
//! dropped), every run of `K` tokens is hashed, and in each window of `W`
//! consecutive hashes the minimum is kept. Any excerpt of at least
//! `W + K - 1` tokens (the guarantee length) shares a kept hash with its
//! source, whatever surrounds it. Hashes kept in several documents are
//! boilerplate (licence headers, common idioms) and do not count.
//!
//! A scan is one pass (`tokens` feeding `winnow`) with no allocation
//! per token; each kept hash asks a presence `filter` before the table.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;

mod filter;
mod tokens;
mod winnow;

use filter::Filter;
pub use winnow::K;

/// The longest guarantee length, in tokens.
pub const MAX_GUARANTEE: usize = 1000;
/// A hash kept in this many documents or more is boilerplate.
const BOILERPLATE_DOCS: usize = 3;
/// Files larger than this are not registered.
const MAX_FILE: u64 = 16 << 20;

/// Keys of the fingerprint table are mixed hashes already, but winnowed
/// ones are minima, whose top bits are mostly zero, and the table files
/// entries by their top bits too: one multiplication carries the low
/// bits' spread up.
#[derive(Debug, Default, Clone, Copy)]
struct Premixed(u64);

impl Hasher for Premixed {
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_u64(&mut self, h: u64) {
        self.0 = h;
    }
}

/// The registered documents' fingerprints.
#[derive(Debug)]
pub struct FingerprintIndex {
    names: Vec<String>,
    /// hash -> documents holding it (boilerplate removed).
    index: HashMap<u64, Vec<u32>, BuildHasherDefault<Premixed>>,
    /// Answers "in no document" for most hashes without the table.
    filter: Filter,
    w: usize,
}

impl FingerprintIndex {
    /// An empty index with guarantee length `guarantee` tokens, at most
    /// [`MAX_GUARANTEE`] (the rule linter refuses more; a larger value is
    /// taken as the maximum, since each scan holds a window that long).
    pub fn new(guarantee: usize) -> Self {
        Self {
            names: vec![],
            index: HashMap::default(),
            filter: Filter::with_capacity(0),
            w: guarantee.min(MAX_GUARANTEE).saturating_sub(K - 1).max(1),
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
        let (index, filter) = (&mut self.index, &mut self.filter);
        winnow::winnow(text, self.w, |g| {
            let docs = index.entry(g.hash).or_default();
            if docs.last() != Some(&id) && docs.len() < BOILERPLATE_DOCS {
                docs.push(id);
            }
            filter.insert(g.hash);
        });
        if self.index.len() > self.filter.capacity() {
            // Past its size (more false positives): twice what it needs now.
            self.filter = Filter::with_capacity(self.index.len() * 2);
            for &h in self.index.keys() {
                self.filter.insert(h);
            }
        }
    }

    /// Forgets hashes that several documents share.
    pub fn drop_boilerplate(&mut self) {
        self.index.retain(|_, docs| docs.len() < BOILERPLATE_DOCS);
        self.filter = Filter::of(self.index.keys());
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
        // The kept k-grams first, then their lookups in a loop of their
        // own: the filter's reads are independent there and overlap,
        // where inside the tokenizer's loop each would wait for memory.
        let mut kept = Vec::with_capacity(text.len() / 32);
        winnow::winnow(text, self.w, |g| kept.push(g));
        // (document, k-gram index, its first byte, its last byte + 1)
        let mut hits: Vec<(u32, usize, usize, usize)> = vec![];
        for g in kept.iter().filter(|g| self.filter.may_contain(g.hash)) {
            if let Some(docs) = self.index.get(&g.hash) {
                hits.extend(docs.iter().map(|&d| (d, g.index, g.start, g.end)));
            }
        }
        hits.sort_unstable();
        let mut out = vec![];
        let mut k = 0;
        while k < hits.len() {
            let (doc, first, start, mut end) = hits[k];
            let mut last = first;
            k += 1;
            while k < hits.len() && hits[k].0 == doc && hits[k].1 <= last + self.w + K {
                last = hits[k].1;
                end = end.max(hits[k].3);
                k += 1;
            }
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
        let doc = verilog(1, 10);
        idx.add("a", doc.as_bytes());
        idx.add("b", b"");
        idx.add("c", b"x");
        idx.drop_boilerplate();
        assert_eq!(idx.len(), 3);
        assert!(idx.scan(b"").is_empty());
        assert!(idx.scan(b"x").is_empty());
        // Fewer tokens than one k-gram: nothing to compare.
        assert!(idx.scan(b"assign w = r ^ s;").is_empty());
        // The index is not empty: the registered text is still found.
        assert_eq!(idx.scan(doc.as_bytes()).len(), 1);
    }

    #[test]
    fn guarantee_lengths_past_the_maximum_are_the_maximum() {
        for g in [MAX_GUARANTEE + 1, 1 << 40, usize::MAX] {
            let mut idx = FingerprintIndex::new(g);
            let doc = verilog(2, 200);
            idx.add("a", doc.as_bytes());
            idx.drop_boilerplate();
            assert_eq!(idx.scan(doc.as_bytes()).len(), 1, "{g}");
        }
    }
}
