//! The ASC driven by the official Python SDKs (openai, anthropic,
//! google-genai, boto3) against the fake upstreams, through the reverse
//! and the forward proxy.

mod rig;

use std::time::{Duration, Instant};

use rig::{Rig, POLICY, REAL_ANTHROPIC, REAL_BEDROCK, REAL_GEMINI, REAL_OPENAI, SUB};

const SECRET: &str = concat!("AKIA", "Z7Q3RX6MW2KD4PLT");

#[test]
fn openai_chat_and_responses() {
    let rig = Rig::start(POLICY);
    rig.run(&[
        "openai_chat_plain",
        "openai_chat_stream",
        "openai_responses_plain",
        "openai_responses_stream",
        "openai_block_secret",
        "openai_block_instructions",
        "openai_block_base64_document",
        "openai_block_tool_arguments_in_history",
        "openai_model_not_allowed",
        "openai_wrong_key",
        "openai_tool_filtered",
        "openai_denied_tool_call_blocked",
        "openai_denied_tool_call_blocked_stream",
        "openai_response_secret_blocked",
        "openai_response_secret_blocked_stream",
        "openai_broken_stream",
        "openai_key_echo_scrubbed",
    ]);
    assert_log_clean(&rig);
}

#[test]
fn anthropic_gemini_bedrock() {
    let rig = Rig::start(POLICY);
    rig.run(&[
        "anthropic_plain",
        "anthropic_stream",
        "anthropic_block_secret",
        "anthropic_denied_tool_stream",
        "gemini_plain",
        "gemini_stream",
        "gemini_block_secret",
        "gemini_tool_filtered",
        "bedrock_converse",
        "bedrock_converse_stream",
        "bedrock_invoke",
        "bedrock_invoke_stream",
        "bedrock_block_secret",
        "bedrock_denied_tool_stream",
        "bedrock_bad_signature",
    ]);
    assert_log_clean(&rig);
}

/// The session log verifies, holds the prompts, and holds no secret: not
/// the blocked ones, not the real keys, not the substitute key.
fn assert_log_clean(rig: &Rig) {
    let out = rig.asc_cli(&["log", "verify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let log = rig.log_json();
    assert!(log.lines().count() > 10, "{log}");
    assert!(
        log.contains("\"decision\":\"blocked\""),
        "no blocked record"
    );
    for bad in [
        SECRET,
        REAL_OPENAI,
        REAL_ANTHROPIC,
        REAL_GEMINI,
        REAL_BEDROCK,
        SUB,
    ] {
        assert!(!log.contains(bad), "the session log holds {bad}");
    }
}

#[test]
fn broken_upstream_stream_ends_with_an_error() {
    let rig = Rig::start(POLICY);
    rig.run(&[
        "openai_response_secret_blocked_stream",
        "openai_broken_stream",
        "openai_chat_plain",
    ]);
}

#[test]
fn redaction_rewrites_text_and_keeps_unknown_fields() {
    let policy = POLICY.replace("action = \"block\"", "action = \"redact\"");
    let rig = Rig::start(&policy);
    rig.run(&["openai_redact"]);
}

#[test]
fn token_budget_exhausts() {
    let policy = format!("{POLICY}\n[budget]\ntokens_per_agent = 10\nwindow = \"1h\"\n");
    let rig = Rig::start(&policy);
    rig.run(&["openai_budget"]);
}

fn pending_ids(rig: &Rig) -> Vec<String> {
    let out = rig.asc_cli(&["approvals", "list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.starts_with("apr-"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn approval_granted_then_another_times_out() {
    let policy = POLICY.replace("approval_timeout = \"20s\"", "approval_timeout = \"3s\"");
    let rig = Rig::start(&policy);
    let child = rig.spawn_python(&["openai_approval_granted"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    let id = loop {
        if let Some(id) = pending_ids(&rig).into_iter().next() {
            break id;
        }
        assert!(Instant::now() < deadline, "no approval appeared");
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = rig.asc_cli(&["approvals", "approve", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Single use: the same id cannot be decided twice.
    assert!(!rig.asc_cli(&["approvals", "deny", &id]).status.success());
    rig::check(
        &child.wait_with_output().expect("python"),
        &["openai_approval_granted"],
    );
    // Nobody decides the next one: it is denied after 3 s.
    rig.run(&["openai_approval_timeout"]);
    assert!(pending_ids(&rig).is_empty());
}

#[test]
fn forward_proxy_intercepts_provider_hosts_only() {
    let rig = Rig::start(POLICY);
    rig.run(&["openai_forward_proxy"]);
}
