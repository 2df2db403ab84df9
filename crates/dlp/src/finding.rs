//! A finding: which rule, where, how sure, and an excerpt that never holds
//! the matched bytes.

use serde::Serialize;

use crate::rules::Severity;

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The rule's id.
    pub rule: String,
    /// Its severity.
    pub severity: Severity,
    /// Start of the span in the original input (bytes).
    pub start: usize,
    /// End of the span (exclusive).
    pub end: usize,
    /// Up to 24 bytes of context on each side, the span itself replaced by
    /// `[rule]`.
    pub excerpt: String,
    /// The decoders that exposed it, outermost first (`base64`, `json`, …);
    /// empty when it was in plain sight.
    pub decoded: Vec<&'static str>,
    /// A context word of the rule was near.
    pub context: bool,
    /// For fingerprint rules: the protected document it copies.
    pub document: Option<String>,
}

const CONTEXT: usize = 24;

fn printable(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Fills every finding's excerpt from `hay`: its context, with its own
/// span and any other finding's span in view replaced by `[rule]`.
pub fn fill_excerpts(hay: &[u8], findings: &mut [Finding]) {
    let spans: Vec<(usize, usize, String)> = findings
        .iter()
        .map(|f| (f.start, f.end, f.rule.clone()))
        .collect();
    for f in findings.iter_mut() {
        let a = f.start.saturating_sub(CONTEXT);
        let b = (f.end + CONTEXT).min(hay.len());
        let mut out = String::new();
        let mut pos = a;
        let mut inside: Vec<&(usize, usize, String)> =
            spans.iter().filter(|(s, e, _)| *s < b && *e > a).collect();
        inside.sort_by_key(|(s, e, _)| (*s, std::cmp::Reverse(*e)));
        for (s, e, rule) in inside {
            if *e <= pos {
                continue;
            }
            if *s > pos {
                out.push_str(&printable(&hay[pos..*s]));
            }
            out.push_str(&format!("[{rule}]"));
            pos = (*e).min(b).max(pos);
        }
        if pos < b {
            out.push_str(&printable(&hay[pos..b]));
        }
        f.excerpt = out;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(rule: &str, start: usize, end: usize) -> Finding {
        Finding {
            rule: rule.into(),
            severity: Severity::High,
            start,
            end,
            excerpt: String::new(),
            decoded: vec![],
            context: false,
            document: None,
        }
    }

    #[test]
    fn excerpts_hide_every_span_in_view() {
        let hay = b"key=SECRETONE and SECRETTWO\nend";
        let mut v = vec![f("a", 4, 13), f("b", 18, 27)];
        fill_excerpts(hay, &mut v);
        for x in &v {
            assert!(!x.excerpt.contains("SECRET"), "{}", x.excerpt);
        }
        assert_eq!(v[0].excerpt, "key=[a] and [b] end");
    }
}
