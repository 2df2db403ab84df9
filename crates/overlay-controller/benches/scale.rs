//! Whole-controller scale benchmark (not a timed test): the real binary,
//! HTTPS and SQLite, driven over loopback.
//!
//! 1. joins 10,000 agents to one enclave (16 at a time) and reports the rate;
//! 2. at 10,000 members, measures the controller process's CPU time (from
//!    /proc, so client work is excluded) per join and per removal;
//! 3. parks 1,000 netmap long-polls, removes one asset all of them can
//!    reach, and reports how long until the last waiter has its new netmap.
//!
//! Run: `cargo bench -p overlay-controller --bench scale`. Traffic stays on
//! 127.0.0.1; every loop is bounded; the controller is stopped at the end.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use control_client::Client;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::Semaphore;

#[path = "../tests/support/api_call.rs"]
mod api_call;
use api_call::{call, pct};

const BIN: &str = env!("CARGO_BIN_EXE_overlay-controller");
const MEMBERS: usize = 10_000;
const CHANGES: usize = 200;
const WAITERS: usize = 1_000;

struct Controller(Child);

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').context("stat")?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>()? + f[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}

fn key() -> String {
    let mut k = overlay_controller::secret::random_key();
    k[0] |= 1;
    proto::PublicKey::from_bytes(k).to_string()
}

async fn join(c: &Client, token: &str) -> Result<Value> {
    let (s, v) = call(
        c,
        Method::POST,
        "/api/v1/join",
        Some(json!({"token": token, "public_key": key()})),
    )
    .await?;
    if s != StatusCode::OK {
        bail!("join: {s} {v}");
    }
    Ok(v)
}

#[tokio::main]
async fn main() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let pid = child.id();
    let ctl = Controller(child);
    let mut url = String::new();
    for line in BufReader::new(stdout).lines() {
        if let Some(u) = line?.strip_prefix("listening on ") {
            url = u.to_owned();
            break;
        }
    }
    let ca = std::fs::read(dir.path().join("ca.pem"))?;
    let admin_token = std::fs::read_to_string(dir.path().join("admin.token"))?;
    let admin = Client::new(&url, &ca, Some(admin_token.trim().into()))?;
    let anon = Client::new(&url, &ca, None)?;

    call(
        &admin,
        Method::POST,
        "/api/v1/enclaves",
        Some(json!({"name": "scale", "cidr": "100.64.0.0/18", "agent_to_agent": false})),
    )
    .await?;
    for (role, name) in [("gateway", "gw"), ("asset", "asset")] {
        let (_, t) = call(
            &admin,
            Method::POST,
            "/api/v1/enclaves/scale/tokens",
            Some(json!({"role": role, "member_name": name})),
        )
        .await?;
        join(&anon, t["token"].as_str().context("token")?).await?;
    }
    let mut tokens = Vec::new();
    for uses in [MEMBERS, CHANGES] {
        let (_, t) = call(
            &admin,
            Method::POST,
            "/api/v1/enclaves/scale/tokens",
            Some(json!({"role": "agent", "uses": uses, "ttl_seconds": 86400})),
        )
        .await?;
        tokens.push(Arc::<str>::from(t["token"].as_str().context("token")?));
    }
    let token = tokens[0].clone();

    // 1. Join 10,000 agents, 16 in flight.
    let cpu0 = cpu_seconds(pid)?;
    let t0 = Instant::now();
    let limit = Arc::new(Semaphore::new(16));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..MEMBERS {
        let permit = limit.clone().acquire_owned().await?;
        let (c, token) = (anon.clone(), token.clone());
        tasks.spawn(async move {
            let _p = permit;
            join(&c, &token).await
        });
    }
    let mut node_tokens = Vec::with_capacity(MEMBERS);
    while let Some(r) = tasks.join_next().await {
        let v = r??;
        node_tokens.push((
            v["node_token"].as_str().context("nt")?.to_owned(),
            v["member"].as_str().context("m")?.to_owned(),
        ));
    }
    let join_wall = t0.elapsed();
    let join_cpu = cpu_seconds(pid)? - cpu0;
    println!("join {MEMBERS} agents: {:.1} s wall, {:.0} joins/s, controller CPU {:.2} ms/join (incl. TLS handshake)",
        join_wall.as_secs_f64(), MEMBERS as f64 / join_wall.as_secs_f64(), join_cpu * 1000.0 / MEMBERS as f64);

    // 2. CPU per change at 10,000 members: removals, then joins, one at a time.
    let mut lat = Vec::new();
    let cpu0 = cpu_seconds(pid)?;
    for (_, name) in node_tokens.drain(MEMBERS - CHANGES..) {
        let t = Instant::now();
        let (s, _) = call(
            &admin,
            Method::DELETE,
            &format!("/api/v1/enclaves/scale/members/{name}"),
            None,
        )
        .await?;
        lat.push(t.elapsed());
        if s != StatusCode::NO_CONTENT {
            bail!("remove: {s}");
        }
    }
    let remove_cpu = (cpu_seconds(pid)? - cpu0) / CHANGES as f64;
    lat.sort();
    println!("remove at 10k: controller CPU {:.2} ms/change (incl. TLS handshake), latency p50 {:?} p99 {:?}",
        remove_cpu * 1000.0, pct(&lat, 0.5), pct(&lat, 0.99));
    let mut lat = Vec::new();
    let cpu0 = cpu_seconds(pid)?;
    for _ in 0..CHANGES {
        let t = Instant::now();
        join(&anon, &tokens[1]).await?;
        lat.push(t.elapsed());
    }
    let join_one_cpu = (cpu_seconds(pid)? - cpu0) / CHANGES as f64;
    lat.sort();
    println!("join at 10k: controller CPU {:.2} ms/change (incl. TLS handshake), latency p50 {:?} p99 {:?}",
        join_one_cpu * 1000.0, pct(&lat, 0.5), pct(&lat, 0.99));

    // 3. 1,000 long-polls; one removal reaches them all.
    let mut waiters = tokio::task::JoinSet::new();
    let ready = Arc::new(Semaphore::new(0));
    for (nt, _) in node_tokens.iter().take(WAITERS) {
        let c = Client::new(&url, &ca, Some(nt.clone()))?;
        let ready = ready.clone();
        waiters.spawn(async move {
            let (_, first) = call(&c, Method::GET, "/api/v1/node/netmap?since=0", None).await?;
            let v = first["version"].as_u64().context("version")?;
            ready.add_permits(1);
            let (s, map) = call(
                &c,
                Method::GET,
                &format!("/api/v1/node/netmap?since={v}&timeout=30"),
                None,
            )
            .await?;
            let done = Instant::now();
            if s != StatusCode::OK || map.to_string().contains("\"asset\"") {
                bail!("waiter got {s} {map}");
            }
            anyhow::Ok(done)
        });
    }
    let all_ready = ready.acquire_many(WAITERS as u32).await?;
    all_ready.forget();
    // The last waiters' second request is in flight: give them time to park.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let t0 = Instant::now();
    call(
        &admin,
        Method::DELETE,
        "/api/v1/enclaves/scale/members/asset",
        None,
    )
    .await?;
    let mut last = t0;
    let mut n = 0;
    while let Some(r) = waiters.join_next().await {
        last = last.max(r??);
        n += 1;
    }
    println!("one removal reached {n} long-polling waiters in {:?} (DELETE sent to last netmap received)", last - t0);
    drop(ctl);
    Ok(())
}
