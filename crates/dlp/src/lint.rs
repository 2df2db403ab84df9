//! The rule linter: refuses rule shapes that would make the engine slow or
//! wrong, and says why.

use regex_syntax::hir::{Class, Hir, HirKind};

use crate::rules::{Kind, Rule, RuleError, Validator};

/// Most bytes a keyword window may extend.
pub const MAX_WINDOW: usize = 4096;
/// A bounded repeat may span at most this many counts (`{m,n}`, n - m)…
const MAX_REPEAT_SPAN: u32 = 32;
/// …and reach at most this count.
const MAX_REPEAT: u32 = 256;
/// Classes with more members than this are "broad".
const BROAD_CLASS: usize = 10;

fn invalid(rule: &Rule, why: impl Into<String>) -> RuleError {
    RuleError::Invalid(rule.id.clone(), why.into())
}

fn class_size(h: &Hir) -> usize {
    match h.kind() {
        HirKind::Class(Class::Unicode(c)) => c
            .ranges()
            .iter()
            .map(|r| (u32::from(r.end()) - u32::from(r.start()) + 1) as usize)
            .sum(),
        HirKind::Class(Class::Bytes(c)) => c
            .ranges()
            .iter()
            .map(|r| usize::from(r.end() - r.start()) + 1)
            .sum(),
        HirKind::Literal(_) => 1,
        // Groups of alternatives or sequences: treat as broad.
        _ => usize::MAX,
    }
}

fn check_repeats(rule: &Rule, h: &Hir) -> Result<(), RuleError> {
    match h.kind() {
        HirKind::Repetition(rep) => {
            if let Some(max) = rep.max {
                let span = max - rep.min;
                let broad = class_size(&rep.sub) > BROAD_CLASS;
                if broad && (span > MAX_REPEAT_SPAN || max > MAX_REPEAT) {
                    return Err(invalid(
                        rule,
                        format!(
                            "bounded repeat {{{},{max}}} of a broad class: every count is a \
                             separate automaton state, multiplied across the rule set (an \
                             e-mail rule with {{1,253}} drops a combined set to MB/s). Use an \
                             unbounded repeat ({{{},}}), which the keyword window bounds, or a \
                             narrower class",
                            rep.min, rep.min
                        ),
                    ));
                }
            }
            check_repeats(rule, &rep.sub)
        }
        HirKind::Capture(c) => check_repeats(rule, &c.sub),
        HirKind::Concat(subs) | HirKind::Alternation(subs) => {
            subs.iter().try_for_each(|s| check_repeats(rule, s))
        }
        _ => Ok(()),
    }
}

/// Checks one rule.
///
/// # Errors
/// [`RuleError::Invalid`] explaining what is wrong and what to do instead.
pub fn lint(rule: &Rule) -> Result<(), RuleError> {
    if rule.id.is_empty()
        || !rule
            .id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(invalid(rule, "id must be letters, digits, - and _"));
    }
    if rule.window == 0 || rule.window > MAX_WINDOW {
        return Err(invalid(
            rule,
            format!("window must be 1..={MAX_WINDOW} bytes"),
        ));
    }
    if rule.validator == Some(Validator::Entropy)
        && !(rule.min_entropy > 0.0 && rule.min_entropy <= 8.0)
    {
        return Err(invalid(
            rule,
            "the entropy validator needs min_entropy in (0, 8] bits per byte",
        ));
    }
    match rule.kind {
        Kind::Literal => {
            if rule.patterns.is_empty() || rule.patterns.iter().any(|p| p.len() < 3) {
                return Err(invalid(
                    rule,
                    "a literal rule needs patterns of at least 3 bytes",
                ));
            }
            if rule.pattern.is_some() {
                return Err(invalid(
                    rule,
                    "a literal rule takes `patterns`, not `pattern`",
                ));
            }
        }
        Kind::Regex => {
            let Some(p) = &rule.pattern else {
                return Err(invalid(rule, "a regex rule needs `pattern`"));
            };
            let hir = regex_syntax::ParserBuilder::new()
                .utf8(false)
                .unicode(false)
                .build()
                .parse(p)
                .map_err(|e| invalid(rule, format!("pattern does not compile: {e}")))?;
            if hir.properties().minimum_len() == Some(0) {
                return Err(invalid(rule, "pattern matches the empty string"));
            }
            check_repeats(rule, &hir)?;
            if rule.keywords.is_empty() && rule.gate.is_none() {
                return Err(invalid(
                    rule,
                    "a regex without keywords would run over every byte and switch off the \
                     prefilter: give `keywords` (literals every match contains or is near) or \
                     `gate = \"digits\"` with `min_gate`",
                ));
            }
            if rule.gate.is_some() && rule.min_gate == 0 {
                return Err(invalid(rule, "a gated rule needs min_gate >= 1"));
            }
            if rule.keywords.iter().any(String::is_empty) {
                return Err(invalid(rule, "empty keyword"));
            }
        }
        Kind::Fingerprint => {
            if rule.dir.is_none() {
                return Err(invalid(rule, "a fingerprint rule needs `dir`"));
            }
            let most = crate::fingerprint::MAX_GUARANTEE;
            if rule
                .guarantee_tokens
                .is_some_and(|t| !(16..=most).contains(&t))
            {
                return Err(invalid(
                    rule,
                    format!("guarantee_tokens must be 16..={most}"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::parse;

    fn one(extra: &str) -> Result<(), RuleError> {
        let text = format!("[[rule]]\nid = \"t\"\nseverity = \"low\"\n{extra}");
        let rules = parse(&text, "t")?;
        lint(&rules[0])
    }

    #[test]
    fn refuses_blow_up_shapes_and_explains() {
        let e = one("kind = \"regex\"\npattern = '[a-z0-9.]{1,253}@x'\nkeywords = [\"@\"]")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("bounded repeat {1,253}") && e.contains("unbounded repeat"),
            "{e}"
        );
        assert!(one("kind = \"regex\"\npattern = '.{0,100}x'\nkeywords = [\"x\"]").is_err());
        // Narrow classes and unbounded repeats are fine.
        assert!(one("kind = \"regex\"\npattern = '\\d{1,200}x'\nkeywords = [\"x\"]").is_ok());
        assert!(one("kind = \"regex\"\npattern = '[a-z]{40,}x'\nkeywords = [\"x\"]").is_ok());
    }

    #[test]
    fn refuses_unfiltered_and_broken_rules() {
        let e = one("kind = \"regex\"\npattern = 'abc[0-9]+'")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("switch off the prefilter"), "{e}");
        assert!(one("kind = \"regex\"\npattern = 'a(b'\nkeywords = [\"a\"]").is_err());
        assert!(one("kind = \"regex\"\npattern = 'a*'\nkeywords = [\"a\"]").is_err());
        assert!(one("kind = \"literal\"\npatterns = [\"ab\"]").is_err());
        assert!(one("kind = \"literal\"\npatterns = [\"project-x\"]").is_ok());
        assert!(one("kind = \"fingerprint\"").is_err());
        assert!(one(
            "kind = \"regex\"\npattern = 'x'\nkeywords = [\"x\"]\nvalidator = \"entropy\""
        )
        .is_err());
        assert!(one("kind = \"regex\"\npattern = '\\d+'\ngate = \"digits\"").is_err());
        assert!(parse(
            "[[rule]]\nid = \"t\"\nseverity = \"low\"\nkind = \"regex\"\nbogus = 1",
            "t"
        )
        .is_err());
    }

    #[test]
    fn the_builtin_packs_pass() {
        for r in crate::rules::builtin().unwrap_or_else(|e| panic!("{e}")) {
            lint(&r).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}
