//! Load: the ASC at its saturation rate for 60 s (`CORDON_LOAD_SECONDS`
//! overrides) with DLP on (secrets and pii packs, a custom literal), every
//! exchange in the session log. [`CONNECTIONS`] keep-alive connections send
//! 1 KiB OpenAI chat requests back to back. Bounds: no answer other than
//! 200 or the documented overload answers (429/503); the ASC's resident set
//! at the end within [`RSS_GROWTH`] of what it was after [`WARM_UP`]; the
//! session log verifies and holds every exchange. Throughput, p50/p99 and
//! the memory readings are printed for docs/RELIABILITY.md.

mod rig;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rig::{Rig, POLICY, SUB};

/// Concurrent keep-alive connections.
const CONNECTIONS: usize = 64;
/// When the first memory reading is taken.
const WARM_UP: Duration = Duration::from_secs(10);
/// Allowed growth of the resident set from the warm-up reading to the end.
const RSS_GROWTH: f64 = 1.25;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn body() -> String {
    let words = "the build of the floating point unit passed timing closure after the clock tree was rebalanced";
    let mut text = String::new();
    while text.len() < 900 {
        text.push_str(words);
        text.push(' ');
    }
    serde_json::json!({"model": "gpt-4o", "messages": [{"role": "user", "content": text}]})
        .to_string()
}

/// What one connection saw.
#[derive(Default)]
struct Seen {
    latencies: Vec<Duration>,
    overload: u64,
    errors: Vec<String>,
}

async fn connection(addr: String, body: Bytes, until: Instant) -> Seen {
    let mut seen = Seen::default();
    let stream = match tokio::net::TcpStream::connect(&addr).await {
        Ok(s) => s,
        Err(e) => {
            seen.errors.push(format!("connect: {e}"));
            return seen;
        }
    };
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    {
        Ok(p) => p,
        Err(e) => {
            seen.errors.push(format!("handshake: {e}"));
            return seen;
        }
    };
    let driver = tokio::spawn(conn);
    while Instant::now() < until {
        let req = Request::post("/openai/v1/chat/completions")
            .header("host", "asc")
            .header("authorization", format!("Bearer {SUB}"))
            .header("content-type", "application/json")
            .body(Full::new(body.clone()));
        let Ok(req) = req else {
            seen.errors.push("request".into());
            break;
        };
        let t = Instant::now();
        let res = match sender.send_request(req).await {
            Ok(r) => r,
            Err(e) => {
                seen.errors.push(format!("send: {e}"));
                break;
            }
        };
        let status = res.status();
        let body = res
            .into_body()
            .collect()
            .await
            .map(http_body_util::Collected::to_bytes);
        match (status.as_u16(), body) {
            (200, Ok(b)) if b.starts_with(b"{") => seen.latencies.push(t.elapsed()),
            (429 | 503, Ok(_)) => seen.overload += 1,
            (s, Ok(b)) => seen.errors.push(format!(
                "{s}: {}",
                String::from_utf8_lossy(&b)
                    .chars()
                    .take(200)
                    .collect::<String>()
            )),
            (s, Err(e)) => seen.errors.push(format!("{s}: body: {e}")),
        }
        if seen.errors.len() > 5 {
            break;
        }
    }
    driver.abort();
    seen
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saturated_for_a_minute_with_dlp_memory_stays_flat_and_nothing_fails() {
    let rig = Rig::start(POLICY);
    let pid = rig.asc_pid().expect("asc runs");
    let secs = std::env::var("CORDON_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60u64);
    let addr = rig.asc_url.trim_start_matches("http://").to_owned();
    let body = Bytes::from(body());
    let rss_start = rss_kib(pid);
    let t0 = Instant::now();
    let until = t0 + Duration::from_secs(secs);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONNECTIONS {
        tasks.spawn(connection(addr.clone(), body.clone(), until));
    }
    let mut rss_warm = None;
    let mut rss_max = rss_start;
    let mut samples = vec![];
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let r = rss_kib(pid);
        rss_max = rss_max.max(r);
        if rss_warm.is_none() && t0.elapsed() >= WARM_UP {
            rss_warm = Some(r);
        }
        samples.push(r / 1024);
    }
    println!("asc load: RSS MiB each second: {samples:?}");
    let mut all = Seen::default();
    while let Some(r) = tasks.join_next().await {
        let s = r.expect("connection task");
        all.latencies.extend(s.latencies);
        all.overload += s.overload;
        all.errors.extend(s.errors);
    }
    let took = t0.elapsed();
    let rss_end = rss_kib(pid);
    let rss_warm = rss_warm.unwrap_or(rss_start);
    all.latencies.sort();
    let ok = all.latencies.len();
    println!(
        "asc load: {CONNECTIONS} connections for {:.0} s, DLP on: {ok} answered 200 ({:.0} req/s), \
         p50 {:?}, p99 {:?}, {} overload answers, {} errors; ASC RSS start {} MiB, after {} s {} MiB, end {} MiB, max {} MiB",
        took.as_secs_f64(),
        ok as f64 / took.as_secs_f64(),
        pct(&all.latencies, 0.5),
        pct(&all.latencies, 0.99),
        all.overload,
        all.errors.len(),
        rss_start / 1024,
        WARM_UP.as_secs(),
        rss_warm / 1024,
        rss_end / 1024,
        rss_max / 1024,
    );
    assert!(
        all.errors.is_empty(),
        "errors: {:?}",
        &all.errors[..all.errors.len().min(5)]
    );
    assert!(ok > 0, "nothing was answered");
    assert!(
        rss_end as f64 <= rss_warm as f64 * RSS_GROWTH,
        "memory grew: {rss_warm} KiB after the warm-up, {rss_end} KiB at the end"
    );

    // Every exchange is in the session log, and the log verifies.
    let out = rig.asc_cli(&["log", "verify"]);
    assert!(
        out.status.success(),
        "log verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let records: usize = text
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .expect("verify prints the record count");
    assert!(
        records >= ok,
        "{ok} exchanges answered but the log holds {records} records: {text}"
    );
}
