//! MCP governance driven by the official `mcp` SDK: a stdio server
//! (`mcp-server-time` from PyPI) behind `asc mcp-stdio`, in both protocol
//! eras the SDK speaks.

mod rig;

use rig::{Rig, POLICY};

#[test]
fn stdio_server_hides_tools_refuses_calls_and_inspects_arguments() {
    let policy = format!("{POLICY}\n[mcp.servers.time]\nallow = [\"get_current_time\"]\n");
    let rig = Rig::start(&policy);
    let scenarios = ["stdio_filtering_modern", "stdio_filtering_legacy"];
    let out = rig
        .spawn_script("mcp_clients.py", &scenarios)
        .wait_with_output()
        .expect("python");
    rig::check(&out, &scenarios);
    let log = rig.log_json();
    assert!(log.contains("\"provider\":\"mcp:time\""), "{log}");
    assert!(
        log.contains("\"model\":\"convert_time\"") && log.contains("\"decision\":\"blocked\""),
        "{log}"
    );
    assert!(
        log.contains("\"decision\":\"filtered\""),
        "no filtered tools/list record: {log}"
    );
    assert!(
        !log.contains(concat!("AKIA", "Z7Q3RX6MW2KD4PLT")),
        "the blocked argument is in the log"
    );
    assert!(rig.asc_cli(&["log", "verify"]).status.success());
}

#[test]
fn a_server_without_policy_is_not_run() {
    let rig = Rig::start(POLICY);
    let out = std::process::Command::new(rig::bin("asc"))
        .args(["mcp-stdio", "--config"])
        .arg(&rig.config)
        .args(["--server", "nope", "--", "/bin/true"])
        .output()
        .expect("asc");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("[mcp.servers.nope]"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
