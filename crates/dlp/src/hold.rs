//! How much of a growing text must be held back: the trailing bytes that a
//! match could still be running through. A streamed response can release
//! everything before them at once, instead of a fixed window.
//!
//! A match of the shipped rule shapes cannot cross plain whitespace except
//! (a) digit groups joined by single separators (cards, phone numbers,
//! IBANs), (b) a literal or keyword that itself contains a space (`Project
//! Nightjar`, `PRIVATE KEY`) and (c) base64 wrapped over lines. So the tail
//! held is the longest of: the trailing run without whitespace (extended
//! back over whole base64-looking lines), the trailing run of short
//! alphanumeric groups joined by single separators when it holds a digit,
//! and the longest suffix that begins a pattern of the automaton.
//! Keyword-led rules (`password = …`) may see their keyword released
//! before the secret completes, and a match that spans words (a PEM
//! header) its leading words; the secret, and a match's last word, are
//! held until the match is seen.

use std::collections::HashSet;

/// Longest group in a separated cluster (card and IBAN groups are 4, phone
/// groups 3 or 4; more would swallow ordinary prose).
const GROUP: usize = 4;
/// Shortest line that counts as wrapped base64.
const B64_LINE: usize = 16;

/// Prefixes of the automaton's patterns, lower-cased.
#[derive(Debug, Default)]
pub struct Prefixes {
    set: HashSet<Vec<u8>>,
    longest: usize,
}

impl Prefixes {
    /// Every proper prefix of every pattern longer than one byte.
    pub fn new<'a>(patterns: impl Iterator<Item = &'a [u8]>) -> Self {
        let mut set = HashSet::new();
        let mut longest = 0;
        for p in patterns.filter(|p| p.len() > 1) {
            let low = p.to_ascii_lowercase();
            for n in 1..low.len() {
                set.insert(low[..n].to_vec());
            }
            longest = longest.max(low.len() - 1);
        }
        Self { set, longest }
    }

    /// Length of the longest suffix of `text` that begins a pattern.
    fn suffix(&self, text: &[u8]) -> usize {
        let max = self.longest.min(text.len());
        (1..=max)
            .rev()
            .find(|&n| {
                self.set
                    .contains(&text[text.len() - n..].to_ascii_lowercase())
            })
            .unwrap_or(0)
    }
}

fn is_b64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_')
}

/// The trailing run without whitespace, extended back over preceding lines
/// that are entirely base64 alphabet (wrapped encodings).
fn trailing_run(text: &[u8]) -> usize {
    let start = text
        .iter()
        .rposition(u8::is_ascii_whitespace)
        .map_or(0, |i| i + 1);
    let mut from = start;
    let run_is_b64 = text[start..].iter().all(|&b| is_b64(b));
    if run_is_b64 {
        // Walk back line by line while the previous line is long base64.
        let mut end = start;
        while end > 0 && text[end - 1] == b'\n' {
            let line_end = if end >= 2 && text[end - 2] == b'\r' {
                end - 2
            } else {
                end - 1
            };
            let line_start = text[..line_end]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            let line = &text[line_start..line_end];
            if line.len() >= B64_LINE && line.iter().all(|&b| is_b64(b)) {
                from = line_start;
                end = line_start;
            } else {
                break;
            }
        }
    }
    text.len() - from
}

fn is_sep(c: char) -> bool {
    matches!(
        c,
        ' ' | '-' | '.' | '(' | ')' | '+' | '/' | '\u{a0}' | '\u{2000}'..='\u{200a}' | '\u{3000}'
    )
}

/// Characters that hide inside a group without showing (zero-width, bidi
/// controls, soft hyphen, BOM).
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}')
}

/// The trailing run of short groups of letters and digits (fullwidth
/// ones too) joined by single separators, if it holds a digit (else 0).
/// Bytes of an incomplete character at the very end are held as well.
fn trailing_cluster(text: &[u8]) -> usize {
    // Whole characters only; a cluster never needs more than a few hundred
    // bytes of look-back.
    let mut start = text.len().saturating_sub(512);
    while start < text.len() && text[start] & 0xC0 == 0x80 {
        start += 1;
    }
    let tail = &text[start..];
    let (valid, broken) = match std::str::from_utf8(tail) {
        Ok(s) => (s, 0),
        Err(e) => (
            std::str::from_utf8(&tail[..e.valid_up_to()]).unwrap_or_default(),
            tail.len() - e.valid_up_to(),
        ),
    };
    let chars: Vec<(usize, char)> = valid.char_indices().collect();
    let mut i = chars.len();
    let mut from = valid.len();
    let mut digit = false;
    loop {
        // Groups are joined by at most two separators (`) `, `. `).
        let mut j = i;
        let mut seps = 0;
        while j > 0 && seps < 2 && is_sep(chars[j - 1].1) {
            j -= 1;
            seps += 1;
        }
        let end = j;
        let mut visible = 0;
        while j > 0 && (chars[j - 1].1.is_alphanumeric() || is_invisible(chars[j - 1].1)) {
            j -= 1;
            if chars[j].1.is_alphanumeric() {
                visible += 1;
                digit |= chars[j].1.is_numeric();
            }
        }
        // The last group may still be growing, whatever its length.
        let growing = end == chars.len();
        if j == end || (visible > GROUP && !growing) {
            break;
        }
        from = chars[j].0;
        i = j;
    }
    // A sign or bracket right before the first group belongs to it (`+1`).
    if let Some(k) = chars.iter().position(|&(o, _)| o == from) {
        if k > 0 && is_sep(chars[k - 1].1) && chars[k - 1].1 != ' ' {
            from = chars[k - 1].0;
        }
    }
    if digit {
        valid.len() - from + broken
    } else {
        broken
    }
}

/// How many trailing bytes of `text` must be held back.
pub fn pending(prefixes: &Prefixes, text: &[u8]) -> usize {
    trailing_run(text)
        .max(trailing_cluster(text))
        .max(prefixes.suffix(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> Prefixes {
        let pats: Vec<&[u8]> = vec![b"project nightjar", b"PRIVATE KEY", b"AKIA"];
        Prefixes::new(pats.into_iter())
    }

    #[test]
    fn prose_releases_all_but_the_partial_word() {
        assert_eq!(pending(&p(), b"the build passed and "), 0);
        assert_eq!(pending(&p(), b"the build pas"), 3);
    }

    #[test]
    fn digit_groups_are_held_together() {
        let t = b"card: 4111 1111 1111 ";
        assert_eq!(pending(&p(), t), "4111 1111 1111 ".len());
        // Short words next to the digits are held with them.
        assert_eq!(pending(&p(), b"ssn is 078-05-"), "ssn is 078-05-".len());
        // Fullwidth digits with zero-width spaces inside the groups.
        let hidden = "call +\u{ff11} \u{ff14}\u{ff11}\u{200b}\u{ff15} \u{ff12}";
        assert_eq!(pending(&p(), hidden.as_bytes()), hidden.len());
        assert_eq!(
            pending(&p(), b"phone: +1 (555) 123-"),
            "+1 (555) 123-".len()
        );
        assert_eq!(
            pending(&p(), b"iban: GB82 WEST 1234 56"),
            "GB82 WEST 1234 56".len()
        );
        // Prose with a number is released once a long word follows.
        assert_eq!(pending(&p(), b"in 2024 we shipped "), 0);
    }

    #[test]
    fn pattern_prefixes_across_spaces() {
        assert_eq!(pending(&p(), b"about Project "), "Project ".len());
        assert_eq!(pending(&p(), b"-----BEGIN RSA PRIVATE "), "PRIVATE ".len());
        assert_eq!(pending(&p(), b"key AK"), 2);
    }

    #[test]
    fn wrapped_base64_is_held_whole() {
        let t = b"blob:\nQUtJQVo3UTNSWDZNVzJLRDRQTFQK\nQUtJQVo3UTNSWDZNVzJLRDRQ\nQUtJ";
        assert_eq!(pending(&p(), t), t.len() - "blob:\n".len());
        assert_eq!(pending(&p(), b""), 0);
    }
}
