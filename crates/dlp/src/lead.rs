//! Whether a regex rule is keyword-led: every match starts where one of its
//! keywords starts. Such a rule is tried anchored at each keyword hit (a few
//! bytes of work) instead of searched through a window around it; on text
//! where a keyword is common (`api` in every log line) the windows of
//! neighbouring hits merge and the regex would run over all of the input.

use regex_syntax::hir::literal::{ExtractKind, Extractor};

/// Most prefix literals looked at before giving up (then: not led).
const MAX_LITERALS: usize = 4096;

/// Whether every match of `pattern` begins with one of `keywords` (ASCII
/// case ignored when `ignore_case`, as the automaton then holds the
/// keywords' case forms). Proven from the pattern's prefix literals: the
/// answer is `true` only when the set is finite and each literal starts
/// with a keyword. A leading `(?i)` is set aside for the analysis: it only
/// adds case variants of the same literals, which the automaton finds no
/// more and no less than before.
pub(crate) fn keyword_led(pattern: &str, keywords: &[String], ignore_case: bool) -> bool {
    let fold = |b: &[u8]| {
        if ignore_case {
            b.to_ascii_lowercase()
        } else {
            b.to_vec()
        }
    };
    let body = pattern.strip_prefix("(?i)").unwrap_or(pattern);
    let Ok(hir) = regex_syntax::ParserBuilder::new()
        .utf8(false)
        .unicode(false)
        .build()
        .parse(body)
    else {
        return false;
    };
    let seq = Extractor::new()
        .kind(ExtractKind::Prefix)
        .limit_total(MAX_LITERALS)
        .limit_class(8)
        .extract(&hir);
    let keywords: Vec<Vec<u8>> = keywords.iter().map(|k| fold(k.as_bytes())).collect();
    seq.literals().is_some_and(|lits| {
        !lits.is_empty()
            && lits.iter().all(|l| {
                let l = fold(l.as_bytes());
                keywords.iter().any(|k| !k.is_empty() && l.starts_with(k))
            })
    })
}

#[cfg(test)]
mod tests {
    use super::keyword_led;

    fn kw(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn led_when_every_alternative_starts_with_a_keyword() {
        assert!(keyword_led(r"\bsk-[A-Za-z0-9]{20}", &kw(&["sk-"]), false));
        assert!(keyword_led(
            r"(?i)\b(?:api[_-]?key|secret|client[_-]?secret|token)\b\s*[:=]\s*(?P<secret>\S{16,})",
            &kw(&["api", "secret", "client", "token"]),
            true
        ));
        assert!(keyword_led(
            r"\b(?:AKIA|ASIA)[A-Z2-7]{16}\b",
            &kw(&["AKIA", "ASIA"]),
            false
        ));
    }

    #[test]
    fn not_led_when_a_match_can_start_elsewhere() {
        // The keyword is in the middle.
        assert!(!keyword_led(r"[a-z]+://\S+", &kw(&["://"]), false));
        assert!(!keyword_led(
            r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.[A-Za-z]{2,}",
            &kw(&["@"]),
            false
        ));
        assert!(!keyword_led(
            r"-----BEGIN (?:RSA )?PRIVATE KEY-----",
            &kw(&["PRIVATE KEY"]),
            false
        ));
        // One alternative without its keyword.
        assert!(!keyword_led(
            r"\b(?:token|bearer)\s+\S{16,}",
            &kw(&["token"]),
            true
        ));
        // A keyword longer than what the pattern fixes.
        assert!(!keyword_led(r"gh[a-z]_\w{36}", &kw(&["ghp_"]), false));
        // Case matters when the automaton holds the keyword as written.
        assert!(!keyword_led(r"Token\s+\S{16,}", &kw(&["token"]), false));
        assert!(keyword_led(r"Token\s+\S{16,}", &kw(&["token"]), true));
        // Nothing fixed at the start.
        assert!(!keyword_led(r".{0,8}secret", &kw(&["secret"]), true));
        assert!(!keyword_led(r"(", &kw(&["x"]), true));
    }

    #[test]
    fn the_builtin_keyword_rules_that_are_led() {
        let rules = crate::rules::builtin().unwrap_or_default();
        let led: Vec<&str> = rules
            .iter()
            .filter(|r| {
                r.pattern.as_deref().is_some_and(|p| {
                    !r.keywords.is_empty() && keyword_led(p, &r.keywords, r.ignore_case)
                })
            })
            .map(|r| r.id.as_str())
            .collect();
        for id in [
            "generic-secret-assignment",
            "openai-api-key",
            "jwt",
            "aws-access-key-id",
        ] {
            assert!(led.contains(&id), "{id} should be keyword-led: {led:?}");
        }
        for id in [
            "connection-string",
            "email-address",
            "private-key-pem",
            "slack-webhook",
        ] {
            assert!(!led.contains(&id), "{id} is not keyword-led");
        }
    }
}
