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
    // Each wrapper committed what it journaled and removed its journal
    // before it exited (read before `asc log`, which would fold in any).
    let journals: Vec<_> = std::fs::read_dir(rig.dir.path())
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".journal-"))
        .collect();
    assert!(journals.is_empty(), "journals left: {journals:?}");
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

/// A child process killed when dropped.
struct Upstream(std::process::Child);

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `python ARGS…` (a local server), killed on drop, and waits
/// until it accepts connections on `port`.
fn serve_python(args: &[&str], port: u16, dir: &std::path::Path) -> Upstream {
    let child = Upstream(
        std::process::Command::new(rig::python())
            .args(args)
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python server"),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "{args:?} did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child
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
    let _server = serve_python(
        &[&script.to_string_lossy(), &port.to_string()],
        port,
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
    );
    let policy = format!(
        "{POLICY}\n[mcp.servers.files]\nurl = \"http://127.0.0.1:{port}/mcp\"\nallow = [\"get_*\", \"read_*\"]\ndeny = [\"delete_*\"]\nprompts = {{ allow = [\"summarize\"] }}\nresources = {{ allow = [\"notes://public/*\"] }}\n"
    );
    let rig = Rig::start(&policy);
    let scenarios = [
        "http_filtering_modern",
        "http_filtering_legacy",
        "http_prompts_resources_modern",
        "http_prompts_resources_legacy",
        "http_rug_pull_modern",
        "http_rug_pull_legacy",
    ];
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
    assert!(
        log.contains("\"operation\":\"pins/approve\""),
        "the re-approval is not in the log: {log}"
    );
    assert!(log.contains("\"model\":\"notes://private/keys\""), "{log}");
    assert!(rig.asc_cli(&["log", "verify"]).status.success());
}

/// `asc mcp-stdio` in front of a misbehaving server, driven with raw
/// JSON-RPC lines: every bad input gets a clear error, nothing crashes,
/// and a server that dies mid-call leaves no client waiting.
#[test]
fn stdio_bad_input_and_a_server_that_dies_mid_call() {
    use std::io::{BufRead, BufReader, Write};
    let policy = format!("{POLICY}\n[mcp.servers.rogue]\nallow = [\"echo\", \"crash\"]\n");
    let rig = Rig::start(&policy);
    let server =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/mcp_rogue_server.py");
    // Killed on drop, also when an assertion fails.
    let mut child = Upstream(
        std::process::Command::new(rig::bin("asc"))
            .args(["mcp-stdio", "--config"])
            .arg(&rig.config)
            .args(["--server", "rogue", "--"])
            .arg(rig::python())
            .arg(server)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("asc mcp-stdio"),
    );
    let mut to = child.0.stdin.take().expect("stdin");
    let (tx, rx) = std::sync::mpsc::channel::<serde_json::Value>();
    let out = child.0.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let v = serde_json::from_str(&line).expect("the wrapper wrote a line that is not JSON");
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    let mut send = |line: &[u8]| {
        to.write_all(line).expect("write");
        to.write_all(b"\n").expect("write");
        to.flush().expect("flush");
    };
    let recv = || {
        rx.recv_timeout(std::time::Duration::from_secs(20))
            .expect("no answer from the wrapper")
    };
    let error_of = |v: &serde_json::Value| {
        (
            v["error"]["code"].as_i64().unwrap_or_default(),
            v["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    };

    send(b"this is not json");
    assert_eq!(error_of(&recv()).0, -32700);
    send(br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#);
    assert_eq!(error_of(&recv()).0, -32600, "a batch was not refused");
    let mut huge = br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":""#.to_vec();
    huge.extend(std::iter::repeat_n(b'a', 17 << 20));
    huge.extend_from_slice(br#""}}"#);
    send(&huge);
    let (code, msg) = error_of(&recv());
    assert!(code == -32600 && msg.contains("16 MiB"), "{msg}");

    send(br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#);
    assert_eq!(recv()["result"]["serverInfo"]["name"], "rogue");
    // A call to a tool the client was never shown.
    send(br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{}}}"#);
    let (code, msg) = error_of(&recv());
    assert!(code == -32602 && msg.contains("never listed"), "{msg}");
    send(br#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#);
    let names: Vec<String> = recv()["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .map(|t| t["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(names, ["echo", "crash"]);
    // A slow call, and a second request reusing its id while it is in
    // flight: refused, and the first answer still arrives once, intact
    // (the garbage line the server writes before it is dropped).
    send(br#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo","arguments":{"say":"hi"}}}"#);
    send(br#"{"jsonrpc":"2.0","id":4,"method":"tools/list"}"#);
    let first = recv();
    assert_eq!(first["id"], 4);
    assert_eq!(error_of(&first).0, -32600, "reused id not refused: {first}");
    let answer = recv();
    assert_eq!(answer["id"], 4);
    assert!(
        answer["result"]["content"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("hi")),
        "{answer}"
    );
    send(br#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"wipe","arguments":{}}}"#);
    assert!(error_of(&recv()).1.contains("not available"));
    // The server dies in the middle of a call: the client gets an error,
    // and the wrapper exits with the server's code.
    send(br#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"crash","arguments":{}}}"#);
    let last = recv();
    assert_eq!(last["id"], 6);
    assert!(error_of(&last).1.contains("exited"), "{last}");
    // It exits although this client still holds its stdin open.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.0.try_wait().expect("wait") {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the wrapper outlived its server"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(3));
    assert!(rig.asc_cli(&["log", "verify"]).status.success());
}

/// Bad input on `/mcp/<server>`: JSON-RPC errors (or HTTP ones where
/// there is no JSON-RPC to answer), nothing forwarded, and an upstream that
/// answers something that is not MCP never reaches the client.
#[test]
fn http_bad_input_fails_closed() {
    let junk = rig::free_port();
    let web_root = tempfile::tempdir().expect("dir");
    // A web server that is not an MCP server: POST gets an HTML error page.
    let _junk = serve_python(
        &[
            "-m",
            "http.server",
            &junk.to_string(),
            "--bind",
            "127.0.0.1",
        ],
        junk,
        web_root.path(),
    );
    let policy = format!(
        "{POLICY}\n[mcp.servers.junk]\nurl = \"http://127.0.0.1:{junk}/mcp\"\nallow = [\"*\"]\n"
    );
    let rig = Rig::start_with(&policy, "\n[limits]\nmax_body = 65536\n");
    let post = |path: &str, body: &str, auth: &str| {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        rig.raw(req.as_bytes(), std::time::Duration::from_secs(10))
    };
    let status = |resp: &str| -> u16 {
        resp.split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    };
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;

    let r = post("/mcp/junk", "{not json", "");
    assert!(status(&r) == 400 && r.contains("-32700"), "{r}");
    let r = post("/mcp/junk", &format!("[{list}]"), "");
    assert!(r.contains("-32600") && r.contains("single JSON-RPC"), "{r}");
    let r = post("/mcp/nope", list, "");
    assert_eq!(status(&r), 404, "{r}");
    let r = post(
        "/mcp/junk",
        list,
        "Authorization: Bearer sub-nobody-0000000000000000\r\n",
    );
    assert_eq!(status(&r), 401, "{r}");
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"x","arguments":{{"a":"{}"}}}}}}"#,
        "a".repeat(70_000)
    );
    let r = post("/mcp/junk", &big, "");
    assert_eq!(status(&r), 413, "{r}");
    // The upstream answers an HTML error page: the client gets a JSON-RPC
    // error, not the page.
    let r = post("/mcp/junk", list, "");
    assert!(
        status(&r) == 502
            && r.contains("-32603")
            && !r.contains("<html")
            && !r.contains("<!DOCTYPE"),
        "{r}"
    );
}
