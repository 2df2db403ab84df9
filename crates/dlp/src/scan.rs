//! Scanning with decoding, in batches and in streams, and redaction.

use rayon::prelude::*;

use crate::decode;
use crate::engine::Engine;
use crate::finding::{fill_excerpts, Finding};

/// How many decoding layers deep a scan goes (base64 in JSON in base64…).
pub const MAX_DEPTH: usize = 4;
/// Inputs larger than this are split into chunks scanned in parallel.
pub const CHUNK: usize = 1 << 20;
/// Batches with at most this many bytes in all are scanned on the calling
/// thread.
pub const SERIAL_MAX: usize = 32 << 10;

impl Engine {
    /// Every finding in `hay`, also those hidden by the decoders, with
    /// spans in `hay` and redacted excerpts.
    pub fn scan(&self, hay: &[u8]) -> Vec<Finding> {
        let mut out = self.scan_part(hay, 0);
        fill_excerpts(hay, &mut out);
        out
    }

    /// `hay` without excerpts, at absolute `offset`.
    fn scan_part(&self, hay: &[u8], offset: usize) -> Vec<Finding> {
        // Decoded bytes in all layers together stay within 4x the input.
        let mut budget = hay.len().saturating_mul(4).max(1 << 16);
        let mut out = vec![];
        self.scan_layer(hay, 0, &mut budget, &mut out);
        for f in &mut out {
            f.start += offset;
            f.end += offset;
        }
        out
    }

    fn scan_layer(&self, hay: &[u8], depth: usize, budget: &mut usize, out: &mut Vec<Finding>) {
        let mut here = vec![];
        self.raw_scan(hay, &mut here);
        if depth < MAX_DEPTH {
            for view in decode::views(hay, budget) {
                let mut inner = vec![];
                self.scan_layer(&view.bytes, depth + 1, budget, &mut inner);
                for mut f in inner {
                    let (s, e) = view.original(f.start, f.end);
                    f.start = s;
                    f.end = e;
                    f.decoded.insert(0, view.kind);
                    // Already seen in plain sight (or by another decoder)?
                    let dup = here
                        .iter()
                        .any(|g: &Finding| g.rule == f.rule && g.start < f.end && f.start < g.end);
                    if !dup {
                        here.push(f);
                    }
                }
            }
        }
        out.extend(here);
    }

    /// Scans many parts in parallel; a large part is split into chunks
    /// that overlap by the longest match window, and a finding in an
    /// overlap is reported once.
    pub fn scan_batch(&self, parts: &[&[u8]]) -> Vec<Vec<Finding>> {
        // Little to scan in all: the thread pool would only add latency
        // (a hand-off and a wake-up per call).
        if parts.iter().map(|p| p.len()).sum::<usize>() <= SERIAL_MAX {
            return parts.iter().map(|p| self.scan(p)).collect();
        }
        parts
            .par_iter()
            .map(|p| {
                if p.len() <= CHUNK {
                    return self.scan(p);
                }
                let overlap = self.max_window * 2;
                let starts: Vec<usize> = (0..p.len()).step_by(CHUNK).collect();
                let mut all: Vec<Finding> = starts
                    .par_iter()
                    .flat_map_iter(|&s| {
                        let end = (s + CHUNK + overlap).min(p.len());
                        let owned_end = (s + CHUNK).min(p.len());
                        self.scan_part(&p[s..end], s)
                            .into_iter()
                            .filter(move |f| f.start < owned_end)
                    })
                    .collect();
                all.sort_by(|x, y| (x.start, x.end, &x.rule).cmp(&(y.start, y.end, &y.rule)));
                all.dedup_by(|x, y| x.start == y.start && x.end == y.end && x.rule == y.rule);
                fill_excerpts(p, &mut all);
                all
            })
            .collect()
    }
}

/// Replaces each finding's span with `[REDACTED:rule]`; every other byte
/// is kept as it was. Overlapping spans are merged.
pub fn redact(hay: &[u8], findings: &[Finding]) -> Vec<u8> {
    let mut spans: Vec<(usize, usize, &str)> = findings
        .iter()
        .map(|f| {
            (
                f.start.min(hay.len()),
                f.end.min(hay.len()),
                f.rule.as_str(),
            )
        })
        .collect();
    spans.sort_unstable();
    let mut out = Vec::with_capacity(hay.len());
    let mut pos = 0;
    for (s, e, rule) in spans {
        if e <= pos {
            continue;
        }
        if s >= pos {
            out.extend_from_slice(&hay[pos..s]);
            out.extend_from_slice(format!("[REDACTED:{rule}]").as_bytes());
        }
        pos = e;
    }
    out.extend_from_slice(&hay[pos.min(hay.len())..]);
    out
}

/// A scanner for text that arrives in pieces (SSE deltas): it holds back
/// the trailing bytes a match could still be running through
/// ([`Engine::pending_tail`]), so nothing is released before a match that
/// could still be completing in it has been seen, and keeps `window` bytes
/// of released text as context for the next scan.
pub struct StreamScanner<'e> {
    engine: &'e Engine,
    buf: Vec<u8>,
    /// Bytes of `buf` already released.
    released: usize,
    /// Offset of `buf[0]` in the whole stream.
    base: usize,
    window: usize,
    reported: Vec<(usize, usize, String)>,
}

/// What a push produced.
#[derive(Debug, Default)]
pub struct StreamStep {
    /// Bytes now safe to forward (no finding touches them).
    pub release: Vec<u8>,
    /// New findings (spans in stream offsets). When non-empty, the caller
    /// blocks or redacts before forwarding anything else.
    pub findings: Vec<Finding>,
}

impl<'e> StreamScanner<'e> {
    /// A scanner keeping `window` bytes of context (at least the engine's
    /// longest match window).
    pub fn new(engine: &'e Engine, window: usize) -> Self {
        Self {
            engine,
            buf: vec![],
            released: 0,
            base: 0,
            window: window.max(engine.max_window),
            reported: vec![],
        }
    }

    fn step(&mut self, last: bool) -> StreamStep {
        let base = self.base;
        let mut found = self.engine.scan(&self.buf);
        found.retain(|f| {
            let key = (f.start + base, f.end + base, f.rule.clone());
            if self.reported.contains(&key) {
                false
            } else {
                self.reported.push(key);
                true
            }
        });
        let mut safe = if last {
            self.buf.len()
        } else {
            self.buf.len() - self.engine.pending_tail(&self.buf)
        };
        // Never release the start of a new finding.
        if let Some(first) = found.iter().map(|f| f.start).min() {
            safe = safe.min(first);
        }
        let release = if safe > self.released {
            self.buf[self.released..safe].to_vec()
        } else {
            vec![]
        };
        self.released = self.released.max(safe);
        // Drop what is released and no longer needed as context.
        let keep_from = self.released.saturating_sub(self.window);
        if keep_from > 0 {
            self.buf.drain(..keep_from);
            self.released -= keep_from;
            self.base += keep_from;
        }
        for f in &mut found {
            f.start += base;
            f.end += base;
        }
        StreamStep {
            release,
            findings: found,
        }
    }

    /// Adds the next piece.
    pub fn push(&mut self, piece: &[u8]) -> StreamStep {
        self.buf.extend_from_slice(piece);
        self.step(false)
    }

    /// The stream ended: releases the rest.
    pub fn finish(&mut self) -> StreamStep {
        self.step(true)
    }
}
