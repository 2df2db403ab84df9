//! MCP governance driven by the official `mcp` SDK: a stdio server
//! (`mcp-server-time` from PyPI) behind `asc mcp-stdio`, and a
//! streamable-HTTP server (the SDK's own MCPServer) behind `/mcp/<server>`,
//! in both protocol eras the SDK speaks.

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

struct Upstream(std::process::Child);

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn http_server_behind_the_gateway() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/mcp_files_server.py");
    let _server = Upstream(
        std::process::Command::new(rig::python())
            .arg(script)
            .arg(port.to_string())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("mcp server"),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "MCP server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let policy = format!(
        "{POLICY}\n[mcp.servers.files]\nurl = \"http://127.0.0.1:{port}/mcp\"\nallow = [\"get_*\", \"read_*\"]\ndeny = [\"delete_*\"]\n"
    );
    let rig = Rig::start(&policy);
    let scenarios = ["http_filtering_modern", "http_filtering_legacy"];
    let out = rig
        .spawn_script_with(
            "mcp_clients.py",
            &scenarios,
            &[("ASC_MCP_URL", format!("{}/mcp/files", rig.asc_url))],
        )
        .wait_with_output()
        .expect("python");
    rig::check(&out, &scenarios);
    let log = rig.log_json();
    assert!(log.contains("\"provider\":\"mcp:files\""), "{log}");
    assert!(log.contains("\"model\":\"delete_file\""), "{log}");
    assert!(
        !log.contains(concat!("AKIA", "Z7Q3RX6MW2KD4PLT")),
        "the withheld result is in the log"
    );
}
