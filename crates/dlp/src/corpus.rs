//! A corpus generator for detection-quality tests and the benchmark: prose,
//! chat-API JSON, Verilog, Python, logs and base64 blobs, with known
//! secrets and personal data planted (some hidden by an encoding) and
//! near-miss decoys that must not be reported. Deterministic for a seed.

use std::fmt::Write as _;

use base64::Engine as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// One planted item or decoy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Planted {
    /// File name in the corpus.
    pub file: String,
    /// Span of the item in the file.
    pub start: usize,
    /// End of the span.
    pub end: usize,
    /// The rule that must find it (for decoys: the rule it imitates).
    pub rule: String,
    /// A decoy must not be reported by any rule.
    pub decoy: bool,
    /// How it is hidden (`plain`, `base64`, `json`, `percent`, `unicode`,
    /// `hex`).
    pub hidden: String,
}

/// A generated file.
#[derive(Debug, Clone)]
pub struct File {
    /// Its name.
    pub name: String,
    /// Its contents.
    pub bytes: Vec<u8>,
}

const WORDS: &[&str] = &[
    "the",
    "design",
    "review",
    "module",
    "timing",
    "closure",
    "agent",
    "request",
    "model",
    "prompt",
    "budget",
    "latency",
    "register",
    "pipeline",
    "customer",
    "invoice",
    "meeting",
    "schedule",
    "release",
    "network",
    "enclave",
    "gateway",
    "policy",
    "audit",
    "summary",
    "quarter",
    "results",
    "shipping",
    "verification",
    "coverage",
    "we",
    "should",
    "could",
    "please",
    "check",
    "update",
    "before",
    "after",
    "with",
    "and",
    "for",
    "of",
    "to",
    "in",
    "on",
    "is",
    "a",
    "that",
    "this",
    "will",
    "next",
    "week",
];

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn pick(rng: &mut StdRng, set: &[u8], n: usize) -> String {
    (0..n)
        .map(|_| set[rng.gen_range(0..set.len())] as char)
        .collect()
}

fn luhn_digit(body: &[u8]) -> u8 {
    for d in 0..10u8 {
        let mut v = body.to_vec();
        v.push(d);
        if crate::validate::luhn(&v) {
            return d;
        }
    }
    0
}

fn card(rng: &mut StdRng, valid: bool) -> String {
    let mut d: Vec<u8> = vec![4];
    d.extend((0..14).map(|_| rng.gen_range(0..10u8)));
    let check = luhn_digit(&d);
    d.push(if valid {
        check
    } else {
        (check + 1 + rng.gen_range(0..8)) % 10
    });
    let s: String = d.iter().map(|x| char::from(b'0' + x)).collect();
    match rng.gen_range(0..3) {
        0 => s,
        1 => format!("{} {} {} {}", &s[0..4], &s[4..8], &s[8..12], &s[12..16]),
        _ => format!("{}-{}-{}-{}", &s[0..4], &s[4..8], &s[8..12], &s[12..16]),
    }
}

fn iban(rng: &mut StdRng) -> String {
    let bban: String = (0..18)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect();
    // Check digits: 98 - (BBAN + "DE00" as digits) mod 97.
    let digits = format!("{bban}131400");
    let rem = digits
        .bytes()
        .fold(0u32, |r, b| (r * 10 + u32::from(b - b'0')) % 97);
    format!("DE{:02}{bban}", 98 - rem)
}

/// A valid-looking secret or PII item for `rule`.
fn item(rng: &mut StdRng, rule: &str) -> String {
    let b64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let url: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    match rule {
        "aws-access-key-id" => {
            format!("AKIA{}", pick(rng, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16))
        }
        "aws-secret-access-key" => pick(rng, b64, 40),
        "openai-api-key" => format!("sk-proj-{}", pick(rng, url, 56)),
        "anthropic-api-key" => format!("sk-ant-api03-{}AA", pick(rng, url, 93)),
        "google-api-key" => format!("AIza{}", pick(rng, url, 35)),
        "github-token" => format!("ghp_{}", pick(rng, ALNUM, 36)),
        "slack-token" => format!(
            "xoxb-{}-{}-{}",
            pick(rng, b"0123456789", 11),
            pick(rng, b"0123456789", 13),
            pick(rng, ALNUM, 24)
        ),
        "stripe-secret-key" => format!("sk_live_{}", pick(rng, ALNUM, 32)),
        "jwt" => {
            let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let p = format!(
                "{{\"sub\":\"{}\",\"iat\":{}}}",
                pick(rng, ALNUM, 8),
                rng.gen_range(1_600_000_000..1_800_000_000u32)
            );
            format!(
                "{}.{}.{}",
                e.encode(br#"{"alg":"HS256","typ":"JWT"}"#),
                e.encode(p),
                pick(rng, url, 43)
            )
        }
        "private-key-pem" => "-----BEGIN RSA PRIVATE KEY-----".to_owned(),
        "connection-string" => pick(rng, ALNUM, 20),
        "generic-secret-assignment" => pick(rng, ALNUM, 32),
        "payment-card" => card(rng, true),
        "us-ssn" => format!(
            "{:03}-{:02}-{:04}",
            rng.gen_range(1..666u32),
            rng.gen_range(1..100u32),
            rng.gen_range(1..10000u32)
        ),
        "iban" => iban(rng),
        "email-address" => format!(
            "{}.{}@corp-{}.com",
            pick(rng, b"abcdefghij", 5),
            pick(rng, b"klmnopqrst", 6),
            rng.gen_range(1..99)
        ),
        "phone-number" => format!(
            "+1 415 {} {}",
            rng.gen_range(200..999),
            rng.gen_range(1000..9999)
        ),
        "ipv4-address" => format!("198.18.{}.{}", rng.gen_range(0..255), rng.gen_range(1..255)),
        _ => String::new(),
    }
}

/// Text around an item so the rule's context/shape fits (the item's span
/// is the part between the returned prefix and suffix).
fn frame(rule: &str) -> (&'static str, &'static str) {
    match rule {
        "aws-secret-access-key" => ("aws_secret_access_key = \"", "\""),
        "connection-string" => ("DATABASE_URL=postgres://app:", "@db.internal:5432/prod"),
        "generic-secret-assignment" => ("api_key = \"", "\""),
        "private-key-pem" => ("", "\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"),
        _ => ("", ""),
    }
}

/// The rules the generator plants.
pub const RULES: &[&str] = &[
    "aws-access-key-id",
    "aws-secret-access-key",
    "openai-api-key",
    "anthropic-api-key",
    "google-api-key",
    "github-token",
    "slack-token",
    "stripe-secret-key",
    "jwt",
    "private-key-pem",
    "connection-string",
    "generic-secret-assignment",
    "payment-card",
    "us-ssn",
    "iban",
    "email-address",
    "phone-number",
    "ipv4-address",
];

/// A decoy: (text, the rule it imitates).
fn decoy(rng: &mut StdRng) -> (String, &'static str) {
    match rng.gen_range(0..9) {
        0 => (card(rng, false), "payment-card"),
        1 => ("AKIAIOSFODNN7EXAMPLE".into(), "aws-access-key-id"),
        2 => (pick(rng, b"0123456789abcdef", 64), "hex-hash"),
        3 => {
            let h = pick(rng, b"0123456789abcdef", 32);
            (
                format!(
                    "{}-{}-{}-{}-{}",
                    &h[0..8],
                    &h[8..12],
                    &h[12..16],
                    &h[16..20],
                    &h[20..32]
                ),
                "uuid",
            )
        }
        4 => (
            "api_key = \"YOUR_API_KEY_HERE\"".into(),
            "generic-secret-assignment",
        ),
        5 => (
            "sk-proj-XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX".into(),
            "openai-api-key",
        ),
        6 => (
            format!("jane.doe{}@example.com", rng.gen_range(1..99)),
            "email-address",
        ),
        7 => (
            format!(
                "{:03}-{:02}-{:04}",
                rng.gen_range(900..1000u32),
                rng.gen_range(1..100u32),
                rng.gen_range(1..10000u32)
            ),
            "us-ssn",
        ),
        _ => (
            "password = \"password123\"".into(),
            "generic-secret-assignment",
        ),
    }
}

/// How an item is hidden.
const HIDINGS: &[&str] = &[
    "plain", "plain", "plain", "base64", "json", "percent", "unicode", "hex",
];

fn hide(how: &str, text: &str) -> String {
    match how {
        "base64" => base64::engine::general_purpose::STANDARD.encode(format!("leaked: {text} ;")),
        "hex" => hex::encode(format!("leaked: {text} ;")),
        "json" => text
            .chars()
            .map(|c| {
                if c.is_ascii_alphabetic() {
                    format!("\\u{:04x}", c as u32)
                } else {
                    c.to_string()
                }
            })
            .collect(),
        "percent" => text.bytes().map(|b| format!("%{b:02X}")).collect(),
        // A zero-width space after every 4th character, fullwidth digits.
        "unicode" => text
            .chars()
            .enumerate()
            .map(|(i, c)| {
                let c = if c.is_ascii_digit() {
                    char::from_u32(0xFF10 + (c as u32 - 0x30)).unwrap_or(c)
                } else {
                    c
                };
                if i % 4 == 3 {
                    format!("{c}\u{200B}")
                } else {
                    c.to_string()
                }
            })
            .collect(),
        _ => text.to_owned(),
    }
}

fn filler(rng: &mut StdRng, kind: usize, out: &mut String) {
    match kind {
        0 => {
            for _ in 0..rng.gen_range(8..20) {
                out.push_str(WORDS[rng.gen_range(0..WORDS.len())]);
                out.push(' ');
            }
            out.push_str(".\n");
        }
        1 => {
            let _ = writeln!(
                out,
                r#"{{"model":"gpt-4o","messages":[{{"role":"user","content":"{} {} {}\n"}}],"max_tokens":{}}}"#,
                WORDS[rng.gen_range(0..WORDS.len())],
                WORDS[rng.gen_range(0..WORDS.len())],
                WORDS[rng.gen_range(0..WORDS.len())],
                rng.gen_range(16..4096)
            );
        }
        2 => {
            let _ = writeln!(
                out,
                "  assign w{} = (r{} & 8'h{:02x}) ^ s{};",
                rng.gen_range(0..999),
                rng.gen_range(0..999),
                rng.gen_range(0..255),
                rng.gen_range(0..99)
            );
        }
        3 => {
            let _ = writeln!(
                out,
                "def f{}(x, y):\n    return x * {} + y  # {}",
                rng.gen_range(0..999),
                rng.gen_range(2..9),
                WORDS[rng.gen_range(0..WORDS.len())]
            );
        }
        4 => {
            let _ = writeln!(
                out,
                "2026-11-27T{:02}:{:02}:{:02}.{:03}Z INFO svc=api status={} latency_ms={} bytes={}",
                rng.gen_range(0..24),
                rng.gen_range(0..60),
                rng.gen_range(0..60),
                rng.gen_range(0..1000),
                [200, 201, 404, 500][rng.gen_range(0..4)],
                rng.gen_range(1..900),
                rng.gen_range(100..99999)
            );
        }
        _ => {
            let bytes: Vec<u8> = (0..57).map(|_| rng.gen()).collect();
            out.push_str(&base64::engine::general_purpose::STANDARD.encode(bytes));
            out.push('\n');
        }
    }
}

/// Generates about `size` bytes in files of about `file_size`, planting an
/// item or decoy every `every` bytes on average. Returns the files and the
/// manifest.
pub fn generate(
    seed: u64,
    size: usize,
    file_size: usize,
    every: usize,
) -> (Vec<File>, Vec<Planted>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let kinds = [
        "prose.txt",
        "chat.jsonl",
        "design.v",
        "code.py",
        "app.log",
        "blob.b64",
    ];
    let mut files = vec![];
    let mut manifest = vec![];
    let mut n = 0;
    let mut total = 0;
    while total < size {
        let kind = n % kinds.len();
        let name = format!("{n:05}-{}", kinds[kind]);
        let mut text = String::with_capacity(file_size + 1024);
        let mut next_plant = rng.gen_range(0..every.max(1) * 2);
        while text.len() < file_size {
            filler(&mut rng, kind, &mut text);
            if text.len() >= next_plant {
                next_plant = text.len() + rng.gen_range(every / 2..every.max(2) * 3 / 2);
                text.push_str("note: ");
                if rng.gen_range(0..4) == 0 {
                    let (d, rule) = decoy(&mut rng);
                    let start = text.len();
                    text.push_str(&d);
                    manifest.push(Planted {
                        file: name.clone(),
                        start,
                        end: text.len(),
                        rule: rule.into(),
                        decoy: true,
                        hidden: "plain".into(),
                    });
                } else {
                    let rule = RULES[rng.gen_range(0..RULES.len())];
                    let it = item(&mut rng, rule);
                    let (pre, post) = frame(rule);
                    let how = HIDINGS[rng.gen_range(0..HIDINGS.len())];
                    let whole = format!("{pre}{it}{post}");
                    let hidden = hide(how, &whole);
                    let start = text.len();
                    text.push_str(&hidden);
                    let (s, e) = if how == "plain" {
                        (start + pre.len(), start + pre.len() + it.len())
                    } else {
                        (start, text.len())
                    };
                    manifest.push(Planted {
                        file: name.clone(),
                        start: s,
                        end: e,
                        rule: rule.into(),
                        decoy: false,
                        hidden: how.into(),
                    });
                }
                text.push_str(" end\n");
            }
        }
        total += text.len();
        files.push(File {
            name,
            bytes: text.into_bytes(),
        });
        n += 1;
    }
    (files, manifest)
}
