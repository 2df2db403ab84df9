//! `dlp` as a security engineer runs it.

use std::process::Command;

const DLP: &str = env!("CARGO_BIN_EXE_dlp");

fn dlp(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(DLP)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn scan_exit_codes_text_and_json() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let clean = dir.path().join("clean.txt");
    std::fs::write(&clean, "nothing to see here\n").unwrap_or_else(|e| panic!("{e}"));
    let (code, out, _) = dlp(&["scan", &clean.display().to_string()]);
    assert_eq!((code, out.as_str()), (0, ""));

    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        sub.join("leak.env"),
        "line one\nAWS_KEY=AKIAQWERTYUIOPASDFGH\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (code, out, _) = dlp(&["scan", &dir.path().display().to_string()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("leak.env:2:9: aws-access-key-id [critical]"),
        "{out}"
    );
    assert!(
        !out.contains("AKIAQWERTYUIOPASDFGH"),
        "the secret is printed: {out}"
    );

    let (code, out, _) = dlp(&["scan", "--json", &sub.display().to_string()]);
    assert_eq!(code, 1);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["rule"], "aws-access-key-id");
    assert_eq!(lines[0]["line"], 2);
    assert_eq!(lines[0]["start"], 17);
}

#[test]
fn bad_input_exits_2_with_a_clear_message() {
    let (code, _, err) = dlp(&["scan", "/nonexistent/cordon-dlp"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/cordon-dlp"), "{err}");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let rules = dir.path().join("r.toml");
    std::fs::write(&rules, "[[rule]]\nid = \"mail\"\nseverity = \"low\"\nkind = \"regex\"\npattern = '[a-z.]{1,253}@x'\nkeywords = [\"@\"]\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let (code, _, err) = dlp(&["scan", "--rules", &rules.display().to_string(), "/dev/null"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("rule mail") && err.contains("bounded repeat"),
        "{err}"
    );
    std::fs::write(&rules, "not toml [").unwrap_or_else(|e| panic!("{e}"));
    let (code, _, _) = dlp(&["scan", "--rules", &rules.display().to_string(), "/dev/null"]);
    assert_eq!(code, 2);
}

#[test]
fn corpus_and_bench_run() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let c = dir.path().join("c");
    let (code, out, err) = dlp(&[
        "corpus",
        "--out",
        &c.display().to_string(),
        "--mib",
        "2",
        "--seed",
        "3",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2 files"), "{out}");
    let manifest = std::fs::read_to_string(c.join("manifest.jsonl")).unwrap_or_default();
    assert!(manifest.lines().count() > 50);
    let (code, out, err) = dlp(&[
        "bench",
        "--corpus",
        &c.display().to_string(),
        "--threads",
        "2",
        "--reps",
        "1",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2 thread(s)") && out.contains("MB/s"), "{out}");
}
