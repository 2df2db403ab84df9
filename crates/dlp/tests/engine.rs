//! The engine through its public API: every evasion, the batch path across
//! chunk boundaries, streaming, redaction, custom rules and hostile input.

use base64::Engine as _;
use dlp::rules::{self, Rule};
use dlp::{redact, Engine, StreamScanner};

const KEY: &str = "AKIAQWERTYUIOPASDFGH";

fn builtin() -> Engine {
    Engine::new(&rules::builtin().unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn rules_of(engine: &Engine, hay: &[u8]) -> Vec<String> {
    engine.scan(hay).into_iter().map(|f| f.rule).collect()
}

fn finds(hay: &[u8], rule: &str) -> bool {
    rules_of(&builtin(), hay).iter().any(|r| r == rule)
}

#[test]
fn every_evasion_is_seen_through() {
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("key {KEY} end"));
    let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("~~~ {KEY} ~~~"));
    let cases: Vec<(&str, String)> = vec![
        ("plain", format!("x {KEY} y")),
        ("base64", format!("blob {b64} end")),
        ("base64url", format!("blob {b64url} end")),
        (
            "data URL",
            format!("<img src=\"data:text/plain;base64,{b64}\">"),
        ),
        (
            "gemini inlineData",
            format!(
                r#"{{"contents":[{{"parts":[{{"inlineData":{{"mimeType":"text/plain","data":"{b64}"}}}}]}}]}}"#
            ),
        ),
        (
            "anthropic document",
            format!(
                r#"{{"type":"document","source":{{"type":"base64","media_type":"text/plain","data":"{b64}"}}}}"#
            ),
        ),
        (
            "json \\u escapes",
            KEY.chars()
                .map(|c| format!("\\u{:04x}", c as u32))
                .collect(),
        ),
        ("hex", hex::encode(format!("the key is {KEY} ok"))),
        (
            "percent",
            KEY.bytes().map(|b| format!("%{b:02X}")).collect(),
        ),
        (
            "fullwidth (NFKC)",
            KEY.chars()
                .map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap_or(c))
                .collect(),
        ),
        (
            "zero-width",
            KEY.chars().flat_map(|c| [c, '\u{200B}']).collect(),
        ),
        (
            "bidi controls",
            format!(
                "\u{202E}{}\u{202C}",
                KEY.chars()
                    .flat_map(|c| [c, '\u{2066}'])
                    .collect::<String>()
            ),
        ),
        (
            "tag characters",
            KEY.chars().flat_map(|c| [c, '\u{E0020}']).collect(),
        ),
        (
            "base64 in base64",
            base64::engine::general_purpose::STANDARD.encode(format!("inner {b64} inner")),
        ),
    ];
    for (how, text) in cases {
        let found = builtin().scan(text.as_bytes());
        let f = found
            .iter()
            .find(|f| f.rule == "aws-access-key-id")
            .unwrap_or_else(|| panic!("{how}: not found in {text:?}: {found:?}"));
        assert!(f.end <= text.len() && f.start < f.end, "{how}: span {f:?}");
        assert!(
            !f.excerpt.contains(KEY),
            "{how}: excerpt leaks {}",
            f.excerpt
        );
        if how != "plain" {
            assert!(!f.decoded.is_empty(), "{how}: decoder path missing");
        }
    }
}

#[test]
fn validators_and_allow_lists_cut_false_positives() {
    assert!(finds(b"card 4111 1111 1111 1111 on file", "payment-card"));
    assert!(!finds(b"card 4111 1111 1111 1112 on file", "payment-card"));
    assert!(finds(b"ssn 123-45-6789", "us-ssn"));
    assert!(!finds(b"ssn 666-45-6789", "us-ssn"));
    assert!(finds(b"IBAN GB82 WEST 1234 5698 7654 32.", "iban"));
    assert!(!finds(b"IBAN GB82 WEST 1234 5698 7654 33.", "iban"));
    assert!(!finds(b"AKIAIOSFODNN7EXAMPLE", "aws-access-key-id"));
    assert!(!finds(b"mail jane@example.com", "email-address"));
    assert!(finds(b"mail jane@corp.io", "email-address"));
    assert!(finds(b"host 198.18.7.9 up", "ipv4-address"));
    assert!(!finds(b"version 1.2.3 released 2026-11-27", "ipv4-address"));
    assert!(!finds(
        br#"{"max_tokens": 4096, "token_count": "abcdefabcdefabcdef"}"#,
        "generic-secret-assignment"
    ));
    assert!(finds(
        br#"api_key = "q8Zr2Lw9Xv4Tn7Bm3Kp6Hs1Yd5Fg0Jc""#,
        "generic-secret-assignment"
    ));
    assert!(finds(
        b"postgres://app:S3cr3tPassw0rd@db:5432/x",
        "connection-string"
    ));
    assert!(!finds(
        b"postgres://app:${DB_PASSWORD}@db:5432/x",
        "connection-string"
    ));
}

#[test]
fn custom_literal_rules_respect_case() {
    let custom = rules::parse(
        r#"
        [[rule]]
        id = "codename"
        severity = "high"
        kind = "literal"
        patterns = ["BLUEFIN", "tapeout-q3"]
        [[rule]]
        id = "codename-any-case"
        severity = "high"
        kind = "literal"
        ignore_case = true
        patterns = ["orca"]
        "#,
        "custom",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let e = Engine::new(&custom).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        rules_of(&e, b"project BLUEFIN and tapeout-q3"),
        vec!["codename", "codename"]
    );
    assert!(rules_of(&e, b"project bluefin").is_empty());
    assert_eq!(
        rules_of(&e, b"ORCA Orca orca"),
        vec!["codename-any-case"; 3]
    );
}

#[test]
fn batch_finds_matches_across_chunk_boundaries_exactly_once() {
    let e = builtin();
    let chunk = dlp::scan::CHUNK;
    let mut big = vec![b'.'; 3 * chunk + 100];
    let mut planted = vec![];
    for at in [
        chunk - 40,
        chunk - 8,
        2 * chunk - KEY.len() / 2,
        2 * chunk + 30,
        3 * chunk + 50,
    ] {
        big[at - 1] = b' ';
        big[at..at + KEY.len()].copy_from_slice(KEY.as_bytes());
        big[at + KEY.len()] = b' ';
        planted.push(at);
    }
    let batch = e.scan_batch(&[&big, b"tiny AKIAZZZZZZZZZZZZZZZZ x"]);
    let spans: Vec<usize> = batch[0]
        .iter()
        .filter(|f| f.rule == "aws-access-key-id")
        .map(|f| f.start)
        .collect();
    assert_eq!(spans, planted, "{:?}", batch[0]);
    assert_eq!(batch[1].len(), 1);
    // Same as the single-threaded scan.
    let single: Vec<(usize, String)> = e
        .scan(&big)
        .into_iter()
        .map(|f| (f.start, f.rule))
        .collect();
    let parallel: Vec<(usize, String)> =
        batch[0].iter().map(|f| (f.start, f.rule.clone())).collect();
    assert_eq!(single, parallel);
}

#[test]
fn streaming_never_releases_a_secret_before_reporting_it() {
    let e = builtin();
    let text = format!(
        "{} here is the key {KEY} and more text {}",
        "a".repeat(700),
        "b".repeat(900)
    );
    for piece in [1usize, 3, 7, 64] {
        let mut s = StreamScanner::new(&e, 0);
        let mut released = Vec::new();
        let mut found = vec![];
        for c in text.as_bytes().chunks(piece) {
            let step = s.push(c);
            if !step.findings.is_empty() {
                found.extend(step.findings);
                // The caller stops here: what went out so far must be clean.
                assert!(
                    !String::from_utf8_lossy(&released).contains("AKIA"),
                    "piece {piece}"
                );
            }
            released.extend(step.release);
        }
        let last = s.finish();
        found.extend(last.findings);
        released.extend(last.release);
        assert_eq!(found.len(), 1, "piece {piece}: {found:?}");
        assert_eq!(found[0].start, text.find(KEY).unwrap_or(0));
        assert_eq!(
            released,
            text.as_bytes(),
            "piece {piece}: everything is released in order"
        );
    }
}

#[test]
fn redaction_replaces_only_the_spans() {
    let e = builtin();
    let text = format!("a {KEY} b ghp_{} c", "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8");
    let found = e.scan(text.as_bytes());
    assert_eq!(found.len(), 2, "{found:?}");
    let out = String::from_utf8(redact(text.as_bytes(), &found)).unwrap_or_default();
    assert_eq!(
        out,
        "a [REDACTED:aws-access-key-id] b [REDACTED:github-token] c"
    );
    assert_eq!(redact(b"clean", &[]), b"clean");
}

#[test]
fn fingerprint_rules_name_the_protected_document() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let rtl: String = (0..80)
        .map(|i| format!("  always @(posedge clk) q{i} <= d{i} ^ k{} ;\n", i * 7 % 13))
        .collect();
    std::fs::write(dir.path().join("alu.v"), &rtl).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("notes.md"), "nothing to see").unwrap_or_else(|e| panic!("{e}"));
    let rule = format!(
        "[[rule]]\nid = \"rtl\"\nseverity = \"critical\"\nkind = \"fingerprint\"\ndir = {:?}\nguarantee_tokens = 40\n",
        dir.path().display().to_string()
    );
    let e = Engine::new(&rules::parse(&rule, "t").unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"));
    let excerpt: String = rtl.lines().skip(30).take(5).collect::<Vec<_>>().join("\n");
    let prompt = format!("Can you optimise this?\n{excerpt}\nthanks");
    let found = e.scan(prompt.as_bytes());
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].document.as_deref(), Some("alu.v"));
    assert!(e.scan(b"always @(posedge clk) begin end").is_empty());
    // A missing directory is a clear error.
    let bad = rule.replace(&dir.path().display().to_string(), "/nonexistent/cordon");
    assert!(Engine::new(&rules::parse(&bad, "t").unwrap_or_else(|e| panic!("{e}"))).is_err());
}

#[test]
fn hostile_input_is_bounded_and_never_panics() {
    let e = builtin();
    assert!(e.scan(b"").is_empty());
    // Invalid UTF-8 around a secret.
    let mut bad = vec![0xff, 0xfe, 0xc3];
    bad.extend_from_slice(format!(" {KEY} ").as_bytes());
    bad.extend_from_slice(&[0xed, 0xa0, 0x80]);
    assert_eq!(rules_of(&e, &bad), vec!["aws-access-key-id"]);
    // One huge line.
    let huge = vec![b'a'; 8 << 20];
    assert!(e.scan(&huge).is_empty());
    // A decode bomb: base64 nested 12 deep (scanned to the depth limit).
    let mut nested = format!("x {KEY} x");
    for _ in 0..12 {
        nested = base64::engine::general_purpose::STANDARD.encode(nested);
    }
    let _ = e.scan(nested.as_bytes());
    // Escapes everywhere.
    let esc = "\\u0041%41".repeat(200_000);
    let _ = e.scan(esc.as_bytes());
    // Rules that do not compile are errors, not panics.
    let broken = rules::parse("[[rule]]\nid = \"x\"\nseverity = \"low\"\nkind = \"regex\"\npattern = \"(\"\nkeywords = [\"x\"]", "t")
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(Engine::new(&broken).is_err());
    let twice: Vec<Rule> = rules::builtin()
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .take(1)
        .cycle()
        .take(2)
        .collect();
    assert!(Engine::new(&twice).is_err());
}

/// Every planted item of a generated corpus, streamed a few bytes at a
/// time: when a finding is reported, nothing released so far reaches into
/// its span (the caller blocks there), and text far from any item is
/// released without waiting for a window to fill.
#[test]
fn streaming_holds_exactly_what_a_match_could_still_cover() {
    let e = builtin();
    let (files, manifest) = dlp::corpus::generate(11, 400_000, 8_000, 1_500);
    let mut checked = 0;
    for f in &files {
        let items: Vec<_> = manifest
            .iter()
            .filter(|p| p.file == f.name && !p.decoy)
            .collect();
        let Some(first) = items.first() else { continue };
        // Stream up to just past the first item.
        let end = (first.end + 64).min(f.bytes.len());
        let text = &f.bytes[..end];
        let mut s = StreamScanner::new(&e, 0);
        let mut released = 0usize;
        let mut reported = false;
        for c in text.chunks(5) {
            let step = s.push(c);
            if !step.findings.is_empty() {
                for x in &step.findings {
                    // A match that spans words (a PEM header) may have had
                    // its leading words released, never its last one.
                    let multiword = text[x.start..x.end].iter().any(u8::is_ascii_whitespace);
                    let limit = if multiword { x.end - 1 } else { x.start };
                    assert!(
                        released <= limit,
                        "{}: released {released} bytes, {} at {}..{}",
                        f.name,
                        x.rule,
                        x.start,
                        x.end
                    );
                }
                reported = true;
                break;
            }
            released += step.release.len();
        }
        if reported {
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} files had a streamed finding");

    let prose =
        "the review of the timing module went well and the team shipped the design on friday "
            .repeat(20);
    let mut s = StreamScanner::new(&e, 0);
    let mut released = 0;
    for c in prose.as_bytes().chunks(4) {
        released += s.push(c).release.len();
    }
    assert!(
        prose.len() - released < 16,
        "held {} bytes of plain prose",
        prose.len() - released
    );
}

#[test]
fn keyword_led_rules_find_each_match_among_dense_keywords() {
    // `api` in every line (the generic assignment rule is tried at each
    // hit, anchored): the one real assignment is found exactly once, with
    // the secret's span, and lines that only name the keyword are not.
    let secret = "Zx8fQ2mVb7Lr1TyWk3Np";
    let mut hay = String::new();
    for i in 0..200 {
        hay.push_str(&format!("ts={i} svc=api status=200 token_count={i}\n"));
        if i == 117 {
            hay.push_str(&format!("config: api_key = \"{secret}\"\n"));
        }
    }
    let found: Vec<_> = builtin()
        .scan(hay.as_bytes())
        .into_iter()
        .filter(|f| f.rule == "generic-secret-assignment")
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(&hay[found[0].start..found[0].end], secret);
    // A keyword inside a word does not start a match (`word_keywords`).
    assert!(!finds(
        format!("myapi_key = \"{secret}\"").as_bytes(),
        "generic-secret-assignment"
    ));
    assert!(finds(
        format!("My API_KEY: {secret}").as_bytes(),
        "generic-secret-assignment"
    ));
}

#[test]
fn base64_is_judged_by_its_first_bytes_without_turning_text_away() {
    let enc = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    // Text that starts with accented letters (two-byte characters, one
    // cut in half at the head's end) is still decoded and scanned.
    let text = format!("aééééééééé, ça va: {KEY} fin");
    assert!(finds(
        format!("doc {} end", enc(text.as_bytes())).as_bytes(),
        "aws-access-key-id"
    ));
    // Binary (control bytes at its start) is not decoded at all.
    let mut binary = vec![0u8, 1, 2, 3, 4, 5, 6, 7];
    binary.extend_from_slice(format!(" {KEY} ").as_bytes());
    assert!(!finds(
        format!("img {} end", enc(&binary)).as_bytes(),
        "aws-access-key-id"
    ));
}

#[test]
fn hundreds_of_literals_beside_the_packs_are_all_found() {
    // More patterns than one automaton takes (Teddy's 64): they are split
    // over several, and every literal, a literal inside a longer one, and
    // the packs' keywords are all still found.
    let names: Vec<String> = (0..300)
        .map(|i| format!("CODE-{i:04}-{}", i * 7919 % 1000))
        .collect();
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    let text = format!(
        r#"
        [[rule]]
        id = "codes"
        severity = "high"
        kind = "literal"
        patterns = [{}, "zz-inner", "zz-inner-outer"]
        "#,
        quoted.join(", ")
    );
    let mut all = rules::builtin().unwrap_or_else(|e| panic!("{e}"));
    all.extend(rules::parse(&text, "custom").unwrap_or_else(|e| panic!("{e}")));
    let e = Engine::new(&all).unwrap_or_else(|e| panic!("{e}"));
    for n in [&names[0], &names[150], &names[299]] {
        let hay = format!("see {n} and {KEY} here");
        let found = rules_of(&e, hay.as_bytes());
        assert_eq!(found, vec!["codes", "aws-access-key-id"], "{n}");
    }
    assert_eq!(
        rules_of(&e, b"x zz-inner-outer y").len(),
        2,
        "the longer literal and the one inside it"
    );
    let every = names.join(" ");
    assert_eq!(rules_of(&e, every.as_bytes()).len(), names.len());
}
