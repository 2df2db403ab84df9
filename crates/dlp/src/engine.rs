//! The matching engine over one buffer (no decoding: see [`crate::scan`]).
//!
//! One Aho-Corasick automaton holds every literal pattern and every keyword
//! of every regex rule, so one pass over the input finds both the literal
//! findings and the candidate positions. Each regex then runs only in the
//! windows around its own keywords (with the rest of the input still
//! visible to `\b` and other look-around); a rule whose every match starts
//! with a keyword (proven in `lead.rs`) is tried only anchored at each hit.
//! Rules without keywords are gated on digits: only clusters with enough
//! digits are confirmed. So no rule can switch the prefilter off for the
//! others.

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use regex_automata::meta::Regex;
use regex_automata::util::captures::Captures;
use regex_automata::{Anchored, Input};

use crate::finding::Finding;
use crate::fingerprint::FingerprintIndex;
use crate::lint;
use crate::rules::{Kind, Rule, RuleError, Severity, Validator};
use crate::validate;

/// The lazy DFA's cache per regex (the default 2 MiB is too small for
/// rules with counted repeats).
const DFA_CACHE: usize = 8 << 20;
/// Most patterns in one Aho-Corasick automaton (Teddy's limit).
const AUTOMATON_PATTERNS: usize = 64;
/// How far around a match context words are looked for.
const CONTEXT_REACH: usize = 64;

/// How every regex is built: bytes, ASCII classes, a large lazy-DFA cache.
fn regex_builder() -> regex_automata::meta::Builder {
    let mut b = Regex::builder();
    b.configure(
        Regex::config()
            .hybrid_cache_capacity(DFA_CACHE)
            .utf8_empty(false),
    )
    .syntax(
        regex_automata::util::syntax::Config::new()
            .utf8(false)
            .unicode(false),
    );
    b
}

/// One compiled rule.
pub(crate) struct Compiled {
    pub(crate) id: String,
    pub(crate) severity: Severity,
    regex: Option<Regex>,
    secret_group: Option<usize>,
    validator: Option<Validator>,
    min_entropy: f64,
    allow: Vec<Vec<u8>>,
    context: Vec<Vec<u8>>,
    window: usize,
    ignore_case: bool,
    word_keywords: bool,
    /// Every match starts at a keyword: tried anchored at each hit.
    keyword_led: bool,
    min_gate: usize,
    min_dots: usize,
}

impl Compiled {
    /// Whether a digit cluster can hold a match of this gated rule.
    fn gate_fits(&self, c: &Cluster) -> bool {
        c.digits >= self.min_gate && c.dots >= self.min_dots
    }
}

/// What an Aho-Corasick pattern stands for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    /// A literal rule's pattern (exact bytes, for case-sensitive rules):
    /// a hit is a finding.
    Literal(usize, usize),
    /// A regex rule's keyword: a hit is a candidate.
    Keyword(usize),
}

/// The compiled rule set.
pub struct Engine {
    pub(crate) rules: Vec<Compiled>,
    /// The automata over all patterns of two bytes or more, at most
    /// [`AUTOMATON_PATTERNS`] each, with their pattern id -> pattern index.
    automata: Vec<(AhoCorasick, Vec<usize>)>,
    /// Per pattern: what it stands for, and (offset, pattern) of the other
    /// patterns of its automaton it contains (the search is
    /// non-overlapping).
    targets: Vec<Vec<Target>>,
    contained: Vec<Vec<(usize, usize)>>,
    pattern_lens: Vec<usize>,
    /// One-byte patterns: (byte, pattern index).
    singles: Vec<(u8, usize)>,
    literals: Vec<Vec<u8>>,
    gated: Vec<usize>,
    /// All gated patterns at once: a cluster nothing matches is done.
    gated_any: Option<Regex>,
    gated_window: usize,
    min_gate: usize,
    pub(crate) fingerprints: Vec<(usize, FingerprintIndex)>,
    /// Most bytes a match can extend beyond a keyword (for chunk overlaps).
    pub(crate) max_window: usize,
    /// Prefixes of the automaton's patterns (what a stream must hold).
    prefixes: crate::hold::Prefixes,
}

impl Engine {
    /// Lints and compiles `rules` (fingerprint rules read their directory).
    ///
    /// # Errors
    /// [`RuleError`] for the first rule that is refused.
    pub fn new(rules: &[Rule]) -> Result<Self, RuleError> {
        let mut compiled = Vec::with_capacity(rules.len());
        let mut patterns: Vec<Vec<u8>> = vec![];
        let mut targets: Vec<Vec<Target>> = vec![];
        let mut literal_bytes: Vec<Vec<u8>> = vec![];
        // Case-insensitive strings enter the automaton as written, in lower
        // case, in upper case and capitalised (a case-insensitive automaton
        // loses the fast prefilter); the rest as written.
        let add = |pat: &[u8],
                   fold: bool,
                   t: Target,
                   patterns: &mut Vec<Vec<u8>>,
                   targets: &mut Vec<Vec<Target>>| {
            let mut forms = vec![pat.to_vec()];
            if fold {
                let low = pat.to_ascii_lowercase();
                let mut cap = low.clone();
                if let Some(c) = cap.first_mut() {
                    c.make_ascii_uppercase();
                }
                forms.extend([low, pat.to_ascii_uppercase(), cap]);
            }
            forms.sort();
            forms.dedup();
            for f in forms {
                match patterns.iter().position(|p| *p == f) {
                    Some(k) => {
                        if !targets[k].contains(&t) {
                            targets[k].push(t);
                        }
                    }
                    None => {
                        patterns.push(f);
                        targets.push(vec![t]);
                    }
                }
            }
        };
        let mut gated = vec![];
        let mut fingerprints = vec![];
        let mut seen = std::collections::HashSet::new();
        for (i, r) in rules.iter().enumerate() {
            lint::lint(r)?;
            if !seen.insert(r.id.clone()) {
                return Err(RuleError::Invalid(r.id.clone(), "defined twice".into()));
            }
            let (regex, secret_group) = match (&r.kind, &r.pattern) {
                (Kind::Regex, Some(p)) => {
                    let re = regex_builder().build(p).map_err(|e| {
                        RuleError::Invalid(r.id.clone(), format!("pattern does not compile: {e}"))
                    })?;
                    let g = re
                        .group_info()
                        .to_index(regex_automata::PatternID::ZERO, "secret");
                    (Some(re), g)
                }
                _ => (None, None),
            };
            match r.kind {
                Kind::Literal => {
                    for p in &r.patterns {
                        literal_bytes.push(p.as_bytes().to_vec());
                        add(
                            p.as_bytes(),
                            r.ignore_case,
                            Target::Literal(i, literal_bytes.len() - 1),
                            &mut patterns,
                            &mut targets,
                        );
                    }
                }
                Kind::Regex if r.keywords.is_empty() => gated.push(i),
                Kind::Regex => {
                    for k in &r.keywords {
                        add(
                            k.as_bytes(),
                            r.ignore_case,
                            Target::Keyword(i),
                            &mut patterns,
                            &mut targets,
                        );
                    }
                }
                Kind::Fingerprint => {
                    let dir = r.dir.as_deref().unwrap_or(std::path::Path::new("."));
                    let idx = FingerprintIndex::from_dir(dir, r.guarantee_tokens.unwrap_or(40))
                        .map_err(|e| RuleError::Io(dir.display().to_string(), e))?;
                    fingerprints.push((i, idx));
                }
            }
            compiled.push(Compiled {
                id: r.id.clone(),
                severity: r.severity,
                regex,
                secret_group,
                validator: r.validator,
                min_entropy: r.min_entropy,
                allow: r.allow.iter().map(|a| a.as_bytes().to_vec()).collect(),
                context: r
                    .context
                    .iter()
                    .map(|c| c.to_ascii_lowercase().into_bytes())
                    .collect(),
                window: r.window,
                ignore_case: r.ignore_case,
                word_keywords: r.word_keywords,
                keyword_led: matches!(r.kind, Kind::Regex)
                    && r.pattern
                        .as_deref()
                        .is_some_and(|p| crate::lead::keyword_led(p, &r.keywords, r.ignore_case)),
                min_gate: r.min_gate,
                min_dots: r.min_dots,
            });
        }
        // Teddy, the automaton's SIMD prefilter, takes at most 64 patterns
        // (past that the search walks the automaton byte by byte, 2.5x the
        // instructions with the packs and 50 literals): more patterns are
        // split over several automata, in sorted order so that patterns
        // sharing a prefix share an automaton.
        let mut multi: Vec<usize> = (0..patterns.len())
            .filter(|&k| patterns[k].len() > 1)
            .collect();
        multi.sort_by(|&a, &b| patterns[a].cmp(&patterns[b]));
        let groups: Vec<Vec<usize>> = multi
            .chunks(AUTOMATON_PATTERNS)
            .map(<[usize]>::to_vec)
            .collect();
        // One-byte keywords (like `@`) would disable the automaton's SIMD
        // prefilter: they are found with memchr instead.
        let singles: Vec<(u8, usize)> = (0..patterns.len())
            .filter(|&k| patterns[k].len() == 1)
            .map(|k| (patterns[k][0], k))
            .collect();
        let automata = groups
            .into_iter()
            .map(|ids| {
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .kind(Some(AhoCorasickKind::DFA))
                    .build(ids.iter().map(|&k| &patterns[k]))
                    .map(|ac| (ac, ids))
                    .map_err(|e| RuleError::Invalid("literals".into(), e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let min_gate = gated
            .iter()
            .map(|&i| compiled[i].min_gate)
            .min()
            .unwrap_or(usize::MAX);
        let mut contained = vec![vec![]; patterns.len()];
        for (_, ids) in &automata {
            for &k in ids {
                let p = &patterns[k];
                for &j in ids {
                    let q = &patterns[j];
                    if q.len() < p.len() {
                        for off in memchr::memmem::find_iter(p, q) {
                            contained[k].push((off, j));
                        }
                    }
                }
            }
        }
        let gated_patterns: Vec<&str> = gated
            .iter()
            .filter_map(|&i| rules[i].pattern.as_deref())
            .collect();
        let gated_any = if gated_patterns.is_empty() {
            None
        } else {
            Some(
                regex_builder()
                    .build_many(&gated_patterns)
                    .map_err(|e| RuleError::Invalid("gated".into(), e.to_string()))?,
            )
        };
        let gated_window = gated.iter().map(|&i| compiled[i].window).max().unwrap_or(0);
        let max_window = compiled.iter().map(|c| c.window).max().unwrap_or(0) + 256;
        let prefixes = crate::hold::Prefixes::new(patterns.iter().map(Vec::as_slice));
        Ok(Self {
            prefixes,
            rules: compiled,
            automata,
            targets,
            pattern_lens: patterns.iter().map(Vec::len).collect(),
            singles,
            contained,
            literals: literal_bytes,
            gated_window,
            gated,
            gated_any,
            min_gate,
            fingerprints,
            max_window,
        })
    }

    /// How many trailing bytes of a growing `text` a match could still be
    /// running through (see [`crate::hold`]).
    pub fn pending_tail(&self, text: &[u8]) -> usize {
        crate::hold::pending(&self.prefixes, text)
    }

    /// Number of rules.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Finds every match in `hay` (no decoding). Excerpts are left empty.
    pub fn raw_scan(&self, hay: &[u8], out: &mut Vec<Finding>) {
        let mut candidates: Vec<(usize, usize, usize)> = vec![];
        for (ac, ids) in &self.automata {
            for m in ac.find_iter(hay) {
                let p = ids[m.pattern().as_usize()];
                self.hit(hay, p, m.start(), m.end(), out, &mut candidates);
                for &(off, q) in &self.contained[p] {
                    let s = m.start() + off;
                    let len = self.pattern_len(q);
                    self.hit(hay, q, s, s + len, out, &mut candidates);
                }
            }
        }
        for &(byte, p) in &self.singles {
            for at in memchr::memchr_iter(byte, hay) {
                self.hit(hay, p, at, at + 1, out, &mut candidates);
            }
        }
        candidates.sort_unstable();
        let mut i = 0;
        while i < candidates.len() {
            let r = candidates[i].0;
            let w = self.rules[r].window;
            let mut a = candidates[i].1.saturating_sub(w);
            let mut b = (candidates[i].2 + w).min(hay.len());
            i += 1;
            while i < candidates.len() && candidates[i].0 == r {
                let (na, nb) = (
                    candidates[i].1.saturating_sub(w),
                    (candidates[i].2 + w).min(hay.len()),
                );
                if na > b {
                    self.confirm(hay, r, a, b, out);
                    a = na;
                }
                b = b.max(nb);
                i += 1;
            }
            self.confirm(hay, r, a, b, out);
        }
        if !self.gated.is_empty() {
            for c in digit_clusters(hay, self.min_gate) {
                let (a, b) = (c.start, c.end);
                if !self.gated.iter().any(|&r| self.rules[r].gate_fits(&c)) {
                    continue;
                }
                if let Some(any) = &self.gated_any {
                    let w = self.gated_window;
                    let input = Input::new(hay).range(a.saturating_sub(w)..(b + w).min(hay.len()));
                    if any.search_half(&input).is_none() {
                        continue;
                    }
                }
                for &r in &self.gated {
                    let rule = &self.rules[r];
                    if rule.gate_fits(&c) {
                        let w = rule.window;
                        self.confirm(hay, r, a.saturating_sub(w), (b + w).min(hay.len()), out);
                    }
                }
            }
        }
        for (r, idx) in &self.fingerprints {
            for (start, end, doc) in idx.scan(hay) {
                let mut f = self.finding(hay, *r, start, end);
                f.document = Some(doc);
                out.push(f);
            }
        }
        out.sort_by(|x, y| (x.start, x.end, &x.rule).cmp(&(y.start, y.end, &y.rule)));
        out.dedup_by(|x, y| x.start == y.start && x.end == y.end && x.rule == y.rule);
    }

    fn pattern_len(&self, p: usize) -> usize {
        self.pattern_lens[p]
    }

    /// One automaton hit of pattern `p` at `s..e`.
    fn hit(
        &self,
        hay: &[u8],
        p: usize,
        s: usize,
        e: usize,
        out: &mut Vec<Finding>,
        candidates: &mut Vec<(usize, usize, usize)>,
    ) {
        for t in &self.targets[p] {
            match *t {
                Target::Literal(r, l) => {
                    // Case-sensitive literals are in the automaton as
                    // written; folded ones in their case forms.
                    if self.rules[r].ignore_case || self.literals[l] == hay[s..e] {
                        self.push(hay, r, s, e, out);
                    }
                }
                Target::Keyword(r) => {
                    let rule = &self.rules[r];
                    let word_start = s == 0 || !is_word(hay[s - 1]);
                    if !word_start && rule.word_keywords {
                        continue;
                    }
                    if rule.keyword_led {
                        let end = (e + rule.window).min(hay.len());
                        let input = Input::new(hay).range(s..end).anchored(Anchored::Yes);
                        self.confirm_in(hay, r, input, out);
                    } else {
                        candidates.push((r, s, e));
                    }
                }
            }
        }
    }

    /// Runs rule `r`'s regex over `hay[a..b]` and keeps what validates.
    fn confirm(&self, hay: &[u8], r: usize, a: usize, b: usize, out: &mut Vec<Finding>) {
        self.confirm_in(hay, r, Input::new(hay).range(a..b), out);
    }

    /// Runs rule `r`'s regex over `input` (a range of `hay`, maybe
    /// anchored) and keeps what validates.
    fn confirm_in(&self, hay: &[u8], r: usize, mut input: Input<'_>, out: &mut Vec<Finding>) {
        let rule = &self.rules[r];
        let Some(re) = &rule.regex else {
            return;
        };
        let b = input.end();
        // At a keyword most tries fail: a match check without captures
        // (the lazy DFA alone) turns those away cheaply.
        if input.get_anchored().is_anchored() && !re.is_match(input.clone()) {
            return;
        }
        let mut caps: Option<Captures> = rule.secret_group.map(|_| re.create_captures());
        loop {
            let (m, secret) = match &mut caps {
                Some(c) => {
                    re.search_captures(&input, c);
                    let Some(m) = c.get_match() else {
                        break;
                    };
                    let g = rule.secret_group.and_then(|g| c.get_group(g));
                    (m, g.map(|g| (g.start, g.end)))
                }
                None => match re.search(&input) {
                    Some(m) => (m, None),
                    None => break,
                },
            };
            let (s, e) = secret.unwrap_or((m.start(), m.end()));
            let ok = rule
                .validator
                .is_none_or(|v| validate::check(v, &hay[s..e], rule.min_entropy));
            let allowed = rule
                .allow
                .iter()
                .any(|al| contains(&hay[m.start()..m.end()], al));
            if ok && !allowed {
                self.push(hay, r, s, e, out);
                input.set_start(m.end().max(m.start() + 1));
            } else {
                // A failed check may hide a valid match starting later inside.
                input.set_start(m.start() + 1);
            }
            // Anchored: only a match starting there counts.
            if input.get_anchored().is_anchored() || input.start() >= b {
                break;
            }
        }
    }

    fn finding(&self, hay: &[u8], r: usize, start: usize, end: usize) -> Finding {
        let rule = &self.rules[r];
        let a = start.saturating_sub(CONTEXT_REACH);
        let b = (end + CONTEXT_REACH).min(hay.len());
        let near = hay[a..b].to_ascii_lowercase();
        Finding {
            rule: rule.id.clone(),
            severity: rule.severity,
            start,
            end,
            excerpt: String::new(),
            decoded: vec![],
            context: rule.context.iter().any(|c| contains(&near, c)),
            document: None,
        }
    }

    fn push(&self, hay: &[u8], r: usize, start: usize, end: usize, out: &mut Vec<Finding>) {
        let f = self.finding(hay, r, start, end);
        out.push(f);
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether `needle` occurs in `hay`.
pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

/// Bit k set when `blk[k]` (at most 32 bytes) is an ASCII digit: eight
/// bytes at a time in a `u64` (SWAR), the last partial word byte by byte.
fn digit_mask(blk: &[u8]) -> u32 {
    let mut words = blk.chunks_exact(8);
    let mut mask = 0u32;
    let mut k = 0;
    for w in words.by_ref() {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        mask |= digits8(u64::from_le_bytes(b)) << k;
        k += 8;
    }
    for (i, &b) in words.remainder().iter().enumerate() {
        mask |= u32::from(b.is_ascii_digit()) << (k + i);
    }
    mask
}

/// Bit k set when byte k of `x` (little-endian) is an ASCII digit.
fn digits8(x: u64) -> u32 {
    crate::swar::gather(crate::swar::in_range(x, b'0', b'9')) as u32
}

/// Separators allowed between the digits of one number-like cluster.
fn is_sep(b: u8) -> bool {
    matches!(b, b' ' | b'-' | b'.' | b'(' | b')' | b'+' | b'/')
}

/// A number-like cluster: digits joined by at most two separator bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cluster {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) digits: usize,
    pub(crate) dots: usize,
}

/// Number-like clusters with at least `min` digits. Jumps from digit to
/// digit 32 bytes at a time.
pub(crate) fn digit_clusters(hay: &[u8], min: usize) -> Vec<Cluster> {
    let mut out = vec![];
    let n = hay.len();
    // Where the next cluster may start (the previous one ended before).
    let mut resume = 0;
    let mut block = 0;
    while block < n {
        let end = (block + 32).min(n);
        let mut mask = digit_mask(&hay[block..end]);
        // Drop digits inside the previous cluster.
        if resume > block {
            let skip = resume - block;
            mask = if skip >= 32 {
                0
            } else {
                mask & (u32::MAX << skip)
            };
        }
        while mask != 0 {
            let at = mask.trailing_zeros() as usize;
            let i = block + at;
            // The digits from `i` to the block's end that the mask shows.
            let run = ((mask >> at).trailing_ones() as usize).min(end - i);
            let c = cluster_at(hay, i, run);
            if c.digits >= min {
                out.push(c);
            }
            resume = c.end;
            if resume >= end {
                break;
            }
            mask &= u32::MAX << (resume - block);
        }
        block = end;
    }
    out
}

/// The cluster starting with the digit at `i`, whose first `known` bytes
/// are known to be digits.
fn cluster_at(hay: &[u8], i: usize, known: usize) -> Cluster {
    let n = hay.len();
    let mut c = Cluster {
        start: i,
        end: i,
        digits: 0,
        dots: 0,
    };
    let mut j = i + known;
    c.digits = known;
    loop {
        while j < n && hay[j].is_ascii_digit() {
            c.digits += 1;
            j += 1;
        }
        c.end = j;
        let mut k = j;
        while k < n && k - j < 2 && is_sep(hay[k]) {
            k += 1;
        }
        if k > j && k < n && hay[k].is_ascii_digit() {
            c.dots += hay[j..k].iter().filter(|&&b| b == b'.').count();
            j = k;
        } else {
            return c;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{cluster_at, digit_clusters, digit_mask};

    #[test]
    fn digit_clusters_match_a_byte_by_byte_walk() {
        // Pseudo-random text of digits, separators and letters, with runs
        // that cross the 32-byte blocks.
        let alphabet = b"0123456789012345 -.()+/ax";
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for len in [0usize, 1, 31, 32, 33, 64, 100, 1000] {
            for _ in 0..50 {
                let hay: Vec<u8> = (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        alphabet[(state % alphabet.len() as u64) as usize]
                    })
                    .collect();
                for min in [1, 4, 9] {
                    let mut naive = vec![];
                    let mut resume = 0;
                    for i in 0..hay.len() {
                        if i >= resume && hay[i].is_ascii_digit() {
                            let c = cluster_at(&hay, i, 0);
                            if c.digits >= min {
                                naive.push(c);
                            }
                            resume = c.end;
                        }
                    }
                    assert_eq!(
                        digit_clusters(&hay, min),
                        naive,
                        "{:?}",
                        String::from_utf8_lossy(&hay)
                    );
                }
            }
        }
    }

    #[test]
    fn digit_mask_matches_a_byte_by_byte_check_for_every_byte_and_length() {
        let naive = |blk: &[u8]| {
            blk.iter()
                .enumerate()
                .fold(0u32, |m, (k, &b)| m | (u32::from(b.is_ascii_digit()) << k))
        };
        for v in 0..=255u8 {
            for at in 0..32 {
                let mut blk = [b'7'; 32];
                blk[at] = v;
                for len in [1, 7, 8, 9, 17, 31, 32] {
                    let b = &blk[..len.max(at + 1).min(32)];
                    assert_eq!(
                        digit_mask(b),
                        naive(b),
                        "byte {v:#x} at {at}, {} bytes",
                        b.len()
                    );
                }
                let mut alt = [0u8; 32];
                for (i, c) in alt.iter_mut().enumerate() {
                    *c = if i % 3 == 0 { v } else { b'0' + (i % 10) as u8 };
                }
                assert_eq!(digit_mask(&alt), naive(&alt));
            }
        }
    }
}
