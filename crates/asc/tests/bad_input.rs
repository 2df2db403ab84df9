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
