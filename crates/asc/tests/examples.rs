//! The example configuration and policy in `configs/` load, and do what
//! their comments say.

use std::path::{Path, PathBuf};
use std::process::Command;

use asc::config::Config;
use asc::proxy::state::load_policy;

fn configs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs")
}

#[test]
fn gateway_example_is_controller_mode() {
    let cfg = Config::load(&configs().join("asc.gateway.toml")).expect("gateway example");
    assert_eq!(
        cfg.source,
        asc::config::Source::Controller("/var/lib/cordon/project-a".into())
    );
    assert!(cfg.agents.is_empty() && cfg.credentials.is_empty());
    assert_eq!(cfg.upstreams.len(), 2);
}

#[test]
fn example_config_and_policy_load() {
    let cfg = Config::load(&configs().join("asc.example.toml")).expect("example config");
    assert_eq!(cfg.enclave, "design-team");
    assert_eq!(cfg.agents.len(), 2);
    assert_eq!(cfg.upstreams.len(), 4);
    let asc::config::Source::File(policy_file) = &cfg.source else {
        panic!("the example is standalone");
    };
    let active = load_policy(policy_file).expect("example policy");
    assert!(active.policy.model_allowed("gpt-4o-mini"));
    assert!(!active.policy.model_allowed("o1"));
    // The fingerprinted design: a reformatted excerpt is caught.
    let excerpt = "always @(posedge clk or negedge rst_n) begin if (!rst_n) begin y <= {WIDTH{1'b0}}; carry <= 1'b0; \
                   zero <= 1'b0; end else begin case (op) 4'h0: {carry, y} <= sum; 4'h1: {carry, y} <= diff; \
                   4'h2: begin y <= a & b; carry <= 1'b0; end 4'h3: begin y <= a | b; carry <= 1'b0; end";
    let found = active.inspector.scan(excerpt.as_bytes());
    assert!(
        found
            .iter()
            .any(|f| f.rule.starts_with("protected-document")),
        "{found:?}"
    );
    assert!(active
        .inspector
        .scan(b"a loop counter and a clock divider")
        .is_empty());
}

#[test]
fn check_config_reports_missing_keys_and_passes_with_them() {
    let asc = env!("CARGO_BIN_EXE_asc");
    let cfg = configs().join("asc.example.toml");
    let vars = [
        "OPENAI_REAL_KEY",
        "ANTHROPIC_REAL_KEY",
        "GEMINI_REAL_KEY",
        "BEDROCK_REAL_KEY",
    ];
    let mut missing = Command::new(asc);
    missing
        .args(["serve", "--check-config", "--config"])
        .arg(&cfg);
    for v in vars {
        missing.env_remove(v);
    }
    let out = missing.output().expect("asc");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for v in vars {
        assert!(err.contains(v), "{err}");
    }
    let mut ok = Command::new(asc);
    ok.args(["serve", "--check-config", "--config"]).arg(&cfg);
    for v in vars {
        ok.env(v, "k-0123456789abcdef:0123456789");
    }
    let out = ok.output().expect("asc");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn broken_config_lists_every_problem() {
    let dir = tempfile::tempdir().expect("dir");
    let p = dir.path().join("bad.toml");
    std::fs::write(
        &p,
        "[listen]\nreverse = \"nowhere\"\n[upstream.openai]\nbase_url = \"ftp://x\"\ncredential = \"missing\"\n\
         [upstream.mistral]\nbase_url = \"https://x\"\ncredential = \"c\"\n[[agent]]\nname = \"a\"\nsubstitute_key = \"short\"\n",
    )
    .expect("write");
    let e = Config::load(&p).expect_err("invalid").to_string();
    for needle in [
        "listen.reverse",
        "base_url",
        "credential",
        "mistral",
        "16 characters",
        "policy.file",
    ] {
        assert!(e.contains(needle), "{needle} missing in: {e}");
    }
    std::fs::write(&p, "[listen]\nreverse = \"127.0.0.1:1\"\nunknown_key = 1\n").expect("write");
    assert!(Config::load(&p).is_err());
}
