//! Turning what a process calls itself into text fit for an inventory:
//! printable (control characters and invalid UTF-8 escaped), bounded, and
//! with secret-looking arguments (`--api-key X`, `TOKEN=…`, `sk-…`)
//! replaced by `<redacted>`.

/// Longest command line kept, in characters.
pub const MAX_COMMAND: usize = 512;
/// Longest program name kept, in characters.
pub const MAX_PROGRAM: usize = 64;

const REDACTED: &str = "<redacted>";

/// `bytes` as text: valid UTF-8 stays, everything else and every control
/// character becomes an escape; at most `max` characters.
pub fn printable(bytes: &[u8], max: usize) -> String {
    let mut out = String::new();
    let mut n = 0;
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if n >= max {
                out.push('…');
                return out;
            }
            if c.is_control() {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
            n += 1;
        }
        for b in chunk.invalid() {
            if n >= max {
                out.push('…');
                return out;
            }
            out.push_str(&format!("\\x{b:02x}"));
            n += 1;
        }
    }
    out
}

/// Whether an option or variable name says its value is a secret.
fn secret_name(name: &str) -> bool {
    let n = name.trim_start_matches('-').to_ascii_lowercase();
    [
        "key",
        "token",
        "secret",
        "passw",
        "auth",
        "credential",
        "bearer",
        "cookie",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// Whether a bare argument looks like a credential: a known key prefix, or
/// a long run of letters and digits mixing both.
fn secret_value(a: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "sk-",
        "sk_",
        "pk_live",
        "rk_live",
        "AKIA",
        "ASIA",
        "AIza",
        "ghp_",
        "gho_",
        "ghs_",
        "github_pat_",
        "glpat-",
        "xox",
        "hf_",
        "eyJ",
    ];
    if PREFIXES.iter().any(|p| a.starts_with(p)) && a.len() >= 16 {
        return true;
    }
    a.len() >= 24
        && a.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_+/=".contains(&b))
        && a.bytes().any(|b| b.is_ascii_digit())
        && a.bytes().any(|b| b.is_ascii_alphabetic())
        && !a.contains('/')
}

/// The command line for the inventory.
pub fn redacted(argv: &[Vec<u8>]) -> String {
    let mut parts = Vec::with_capacity(argv.len());
    let mut hide_next = false;
    for raw in argv {
        let a = printable(raw, MAX_COMMAND);
        let shown = if hide_next {
            hide_next = false;
            REDACTED.to_owned()
        } else if let Some((name, _)) = a.split_once('=').filter(|(n, _)| secret_name(n)) {
            format!("{name}={REDACTED}")
        } else if a.starts_with('-') && secret_name(&a) {
            hide_next = true;
            a
        } else if secret_value(&a) {
            REDACTED.to_owned()
        } else {
            a
        };
        parts.push(shown);
    }
    let joined = parts.join(" ");
    match joined.char_indices().nth(MAX_COMMAND) {
        Some((cut, _)) => format!("{}…", &joined[..cut]),
        None => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &[&str]) -> Vec<Vec<u8>> {
        s.iter().map(|a| a.as_bytes().to_vec()).collect()
    }

    #[test]
    fn secrets_in_arguments_are_replaced() {
        let key = concat!("sk-", "proj-Zx81kQ0aLm29Vb7Yt4Rw");
        let out = redacted(&argv(&[
            "agent",
            "--api-key",
            key,
            "--token=abc123",
            "OPENAI_API_KEY=whatever",
            key,
            "--model",
            "gpt-4o",
            "/srv/work/file.py",
        ]));
        assert!(
            !out.contains(key) && !out.contains("abc123") && !out.contains("whatever"),
            "{out}"
        );
        assert!(out.contains("--model gpt-4o /srv/work/file.py"), "{out}");
        assert!(
            out.starts_with("agent --api-key <redacted> --token=<redacted>"),
            "{out}"
        );
    }

    #[test]
    fn hostile_names_become_printable_and_bounded() {
        assert_eq!(
            redacted(&[b"/bin/ev\x1bil\xff".to_vec(), b"1".to_vec()]),
            "/bin/ev\\u{1b}il\\xff 1"
        );
        assert_eq!(
            printable(b"ev\x1b[31mil\xff\n", 64),
            "ev\\u{1b}[31mil\\xff\\n"
        );
        let long = printable(&[b'a'; 10_000], MAX_COMMAND);
        assert_eq!(long.chars().count(), MAX_COMMAND + 1);
        let huge = redacted(&vec![vec![b'x'; 100_000]; 3]);
        assert!(huge.chars().count() <= MAX_COMMAND + 1);
    }
}
