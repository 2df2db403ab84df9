//! Hostile and broken input on both sides of the ASC: clear provider-shaped
//! errors, nothing forwarded that policy did not pass, nothing half-logged.

mod rig;

use std::time::{Duration, Instant};

use rig::{Rig, POLICY, SUB};

const CHAT: &str = "/openai/v1/chat/completions";

fn chat(text: &str, stream: bool) -> String {
    serde_json::json!({"model": "gpt-4o", "stream": stream, "messages": [{"role": "user", "content": text}]}).to_string()
}

fn status(resp: &str) -> u16 {
    resp.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn upstream_count(rig: &Rig) -> usize {
    let out = std::process::Command::new(rig::python())
        .args([
            "-c",
            "import json,os,ssl,urllib.request;ctx=ssl.create_default_context(cafile=os.environ['FAKE_CA']);\
             print(len(json.load(urllib.request.urlopen(os.environ['FAKE']+'/_fake/requests',context=ctx))))",
        ])
        .envs(rig.env())
        .output()
        .expect("python");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("count")
}

#[test]
fn malformed_requests_get_provider_errors_and_go_nowhere() {
    let rig = Rig::start_with(POLICY, "\n[limits]\nmax_body = 4096\n");
    let r = rig.post(CHAT, "{\"model\": \"gpt-4o\", \"messages\": [");
    assert_eq!(status(&r), 400, "{r}");
    assert!(
        r.contains("invalid_request_error") && r.contains("not valid JSON"),
        "{r}"
    );
    let r = rig.post("/anthropic/v1/messages", "[1,2]");
    assert_eq!(status(&r), 400, "{r}");
    assert!(r.contains("\"type\":\"error\""), "{r}");
    let big = chat(&"a".repeat(5000), false);
    let r = rig.post(CHAT, &big);
    assert_eq!(status(&r), 413, "{r}");
    let r = rig.post("/openai/v1/embeddings", "{}");
    assert_eq!(status(&r), 404, "{r}");
    let r = rig.post("/elsewhere/v1/x", "{}");
    assert_eq!(status(&r), 404, "{r}");
    let get = format!("GET {CHAT} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {SUB}\r\nconnection: close\r\n\r\n");
    assert_eq!(
        status(&rig.raw(get.as_bytes(), Duration::from_secs(5))),
        404
    );
    let body = chat("hi", false);
    let wrong_type = format!(
        "POST {CHAT} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {SUB}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let r = rig.raw(wrong_type.as_bytes(), Duration::from_secs(5));
    assert_eq!(status(&r), 400, "{r}");
    let no_key = format!(
        "POST {CHAT} HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(
        status(&rig.raw(no_key.as_bytes(), Duration::from_secs(5))),
        401
    );
    assert_eq!(
        upstream_count(&rig),
        0,
        "a malformed request reached the upstream"
    );
    // A chunked body is read like any other.
    let chunked = format!(
        "POST {CHAT} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {SUB}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    let r = rig.raw(chunked.as_bytes(), Duration::from_secs(10));
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(upstream_count(&rig), 1);
}

#[test]
fn slow_client_is_cut_off() {
    let rig = Rig::start(POLICY);
    let started = Instant::now();
    // Headers that never finish: the connection is closed after the header
    // timeout, well before the 30 s this test would wait.
    let r = rig.raw(
        b"POST /openai/v1/chat/completions HTTP/1.1\r\nhost: x\r\n",
        Duration::from_secs(30),
    );
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(20),
        "slow client held the connection for {took:?}"
    );
    assert!(r.is_empty() || status(&r) == 408, "{r}");
}

#[test]
fn upstream_failures_become_provider_errors() {
    let rig = Rig::start_with(POLICY, "\n[limits]\nupstream_timeout = \"2s\"\n");
    let r = rig.post(CHAT, &chat("HANG", false));
    assert_eq!(status(&r), 504, "{r}");
    assert!(r.contains("server_error"), "{r}");
    let r = rig.post(CHAT, &chat("GARBAGE", false));
    assert_eq!(status(&r), 502, "{r}");
    let r = rig.post(CHAT, &chat("GARBAGE_STREAM", true));
    assert_eq!(status(&r), 200, "{r}");
    assert!(r.contains("unreadable") && r.contains("\"error\""), "{r}");
    assert!(!r.contains("not json"), "a broken event was forwarded: {r}");
    let r = rig.post(
        "/anthropic/v1/messages",
        &serde_json::json!({"model": "claude-x", "stream": true, "max_tokens": 5,
                            "messages": [{"role": "user", "content": "BREAK_STREAM"}]})
        .to_string(),
    );
    assert!(r.contains("event: error") && r.contains("broke off"), "{r}");
    let out = rig.asc_cli(&["log", "verify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn client_gone_mid_stream_is_logged_and_the_asc_carries_on() {
    use std::io::{Read, Write};
    let rig = Rig::start(POLICY);
    let body = chat("SLOW_STREAM and a long answer", true);
    let req = format!(
        "POST {CHAT} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {SUB}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    {
        let mut s = std::net::TcpStream::connect(rig.asc_url.trim_start_matches("http://"))
            .expect("connect");
        s.write_all(req.as_bytes()).expect("send");
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).expect("first bytes");
        assert!(n > 0);
        // Gone.
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let log = rig.log_json();
        if log.contains("\"decision\":\"client_disconnected\"") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no client_disconnected record:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(status(&rig.post(CHAT, &chat("hi", false))), 200);
    assert!(rig.asc_cli(&["log", "verify"]).status.success());
}

/// The ASC killed (SIGKILL) during a streamed exchange: the agent's stream
/// ends (no hang, no `[DONE]`), the session log still verifies with no torn
/// record, the request was logged before it was forwarded, and a restarted
/// ASC carries on with the same log.
#[test]
fn killed_mid_stream_the_log_verifies_and_nothing_went_unlogged() {
    use std::io::{Read, Write};
    let mut rig = Rig::start(POLICY);
    let body = chat(
        "SLOW_STREAM PACE_MS:300 SAY:one two three four five six seven eight nine ten eleven twelve",
        true,
    );
    let req = format!(
        "POST {CHAT} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {SUB}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let addr = rig.asc_url.trim_start_matches("http://").to_owned();
    let agent = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        s.write_all(req.as_bytes()).expect("send");
        let mut out = vec![];
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        (String::from_utf8_lossy(&out).into_owned(), Instant::now())
    });
    std::thread::sleep(Duration::from_millis(1200));
    let killed = Instant::now();
    rig.kill_asc();
    let (got, ended) = agent.join().expect("agent thread");
    assert_eq!(status(&got), 200, "{got}");
    assert!(got.contains("data: "), "some events arrived first: {got}");
    assert!(
        !got.contains("[DONE]"),
        "the stream was cut, not completed: {got}"
    );
    assert!(
        ended.saturating_duration_since(killed) < Duration::from_secs(3),
        "the agent's connection ended with the ASC, it did not hang"
    );
    let verify = rig.asc_cli(&["log", "verify"]);
    let text = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success() && text.contains("hash chain verified"),
        "{text}"
    );
    let log = rig.log_json();
    assert!(
        log.lines()
            .any(|l| l.contains("\"kind\":\"request\"") && l.contains("SLOW_STREAM")),
        "the forwarded request is in the log: {log}"
    );
    assert_eq!(upstream_count(&rig), 1);
    rig.start_asc();
    let after = rig.post(CHAT, &chat("hello again", false));
    assert_eq!(status(&after), 200, "{after}");
    let verify = rig.asc_cli(&["log", "verify"]);
    assert!(
        verify.status.success(),
        "the restarted ASC appends to an intact chain"
    );
}

/// A pass-through host is tunnelled for an agent bound to the caller's
/// source address, and refused for any other peer that reaches the forward
/// proxy: a tunnel carries no key to tell them apart by.
#[test]
fn pass_through_is_only_for_known_agents() {
    let rig = Rig::start(&format!(
        "{POLICY}\n[egress]\npassthrough = [\"127.0.0.1\"]\n"
    ));
    let fake = rig.fake_url.trim_start_matches("https://").to_owned();
    let fwd = rig.fwd_url.trim_start_matches("http://").to_owned();
    let code = r#"
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
for src in ("127.0.0.1", "127.0.0.2"):
    s = socket.create_connection((host, int(port)), timeout=5, source_address=(src, 0))
    s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (sys.argv[2], sys.argv[2])).encode())
    print(src, s.recv(200).split(b" ")[1].decode())
    s.close()
"#;
    let out = std::process::Command::new(rig::python())
        .args(["-c", code, &fwd, &fake])
        .output()
        .expect("python");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("127.0.0.1 200"),
        "the agent's tunnel: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("127.0.0.2 403"), "another peer: {text}");
}
