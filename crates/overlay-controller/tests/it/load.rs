//! Load: the real controller binary (SQLite, HTTPS on loopback) under
//! 1,000 netmap long-polls while an asset every one of them can reach joins
//! and another leaves every 10 ms, for 60 s (`CORDON_LOAD_SECONDS`
//! overrides). Bounds, checked here and reported in docs/RELIABILITY.md:
//! no error other than the documented overload answers (429/503); the
//! controller's memory stays flat (resident set at the end within
//! [`RSS_GROWTH`] of what it was after the first [`WARM_UP`]); after the
//! churn, one more change reaches all 1,000 long-polls within
//! [`CONVERGE_LIMIT`]. The figures are printed for the docs.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use control_client::Client;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::{watch, Semaphore};

use crate::cli::serve;
use crate::common::random_key;

#[path = "../support/api_call.rs"]
mod api_call;
use api_call::{call, pct};

/// Long-polling members.
const POLLERS: usize = 1_000;
/// A join and a removal this often.
const TICK: Duration = Duration::from_millis(10);
/// Changes of each kind in flight at most (more than the controller's write
/// queue, so its overload answer is exercised); a tick that finds none free
/// is counted as late.
const IN_FLIGHT: usize = 96;
/// How long changes still in flight after the churn may take before they
/// are abandoned.
const DRAIN: Duration = Duration::from_secs(10);
/// When the first memory reading is taken.
const WARM_UP: Duration = Duration::from_secs(10);
/// Allowed growth of the resident set from the warm-up reading to the end.
const RSS_GROWTH: f64 = 1.25;
/// How long the change after the churn may take to reach every poller.
const CONVERGE_LIMIT: Duration = Duration::from_secs(30);

/// Kibibytes resident.
fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("VmRSS")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("VmRSS value")?
        .parse()?)
}

/// What went wrong, and how often the documented overload answer came.
#[derive(Default)]
struct Tally {
    errors: Mutex<Vec<String>>,
    error_count: AtomicU64,
    overload: AtomicU64,
}

impl Tally {
    /// Sorts one answer: `true` when it is the expected success.
    fn status(&self, what: &str, s: StatusCode, want: StatusCode, body: &Value) -> bool {
        if s == want {
            return true;
        }
        if s == StatusCode::TOO_MANY_REQUESTS || s == StatusCode::SERVICE_UNAVAILABLE {
            self.overload.fetch_add(1, Ordering::Relaxed);
        } else {
            self.error(format!("{what}: {s} {body}"));
        }
        false
    }

    fn error(&self, e: String) {
        self.error_count.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut v) = self.errors.lock() {
            if v.len() < 5 {
                v.push(e);
            }
        }
    }
}

/// One member's long-poll loop until `stop`; counts netmaps received and
/// notes when one lists the member named `final`.
async fn poll(
    c: Client,
    mut stop: watch::Receiver<bool>,
    tally: Arc<Tally>,
    received: Arc<AtomicU64>,
    saw_final: Arc<AtomicBool>,
) {
    let mut since = 0u64;
    loop {
        let path = format!("/api/v1/node/netmap?since={since}&timeout=25");
        let r = tokio::select! {
            r = call(&c, Method::GET, &path, None) => r,
            _ = stop.changed() => return,
        };
        match r {
            Ok((s, v)) if tally.status("long-poll", s, StatusCode::OK, &v) => {
                received.fetch_add(1, Ordering::Relaxed);
                since = v["version"].as_u64().unwrap_or(since);
                if v.to_string().contains("\"final\"") {
                    saw_final.store(true, Ordering::Relaxed);
                }
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => {
                tally.error(format!("long-poll: {e:#}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn seconds() -> u64 {
    std::env::var("CORDON_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_long_polls_under_churn_keep_memory_flat_and_converge() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = serve(dir.path(), None)?;
    let pid = server.child.id();
    let ca = std::fs::read(dir.path().join("ca.pem"))?;
    let admin_token = std::fs::read_to_string(dir.path().join("admin.token"))?;
    let admin = Client::new(&server.url, &ca, Some(admin_token.trim().into()))?;
    let anon = Client::new(&server.url, &ca, None)?;
    let (s, v) = call(
        &admin,
        Method::POST,
        "/api/v1/enclaves",
        Some(json!({"name": "load", "cidr": "100.64.0.0/16", "agent_to_agent": false})),
    )
    .await?;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let token = |role: &str, uses: usize, name: Option<&str>| {
        let admin = admin.clone();
        let mut body = json!({"role": role, "uses": uses, "ttl_seconds": 86400});
        if let Some(n) = name {
            body["member_name"] = json!(n);
        }
        async move {
            let (s, v) = call(
                &admin,
                Method::POST,
                "/api/v1/enclaves/load/tokens",
                Some(body),
            )
            .await?;
            if s != StatusCode::CREATED {
                bail!("token: {s} {v}");
            }
            Ok::<_, anyhow::Error>(Arc::<str>::from(v["token"].as_str().context("token")?))
        }
    };
    let join = |c: Client, t: Arc<str>| async move {
        call(
            &c,
            Method::POST,
            "/api/v1/join",
            Some(json!({"token": &*t, "public_key": random_key().to_string()})),
        )
        .await
    };

    // 1,000 agents, 16 joins at a time.
    let agents = token("agent", POLLERS, None).await?;
    let limit = Arc::new(Semaphore::new(16));
    let mut joins = tokio::task::JoinSet::new();
    for _ in 0..POLLERS {
        let permit = limit.clone().acquire_owned().await?;
        let (c, t) = (anon.clone(), agents.clone());
        joins.spawn(async move {
            let _p = permit;
            join(c, t).await
        });
    }
    let mut node_tokens = vec![];
    while let Some(r) = joins.join_next().await {
        let (s, v) = r??;
        assert_eq!(s, StatusCode::OK, "{v}");
        node_tokens.push(v["node_token"].as_str().context("node token")?.to_owned());
    }

    // Their long-polls.
    let tally = Arc::new(Tally::default());
    let received = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut seen = vec![];
    let mut pollers = tokio::task::JoinSet::new();
    for nt in node_tokens {
        let saw = Arc::new(AtomicBool::new(false));
        seen.push(saw.clone());
        pollers.spawn(poll(
            Client::new(&server.url, &ca, Some(nt))?,
            stop_rx.clone(),
            tally.clone(),
            received.clone(),
            saw,
        ));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The churn: every tick an asset joins and the oldest churned asset
    // leaves.
    let assets = token("asset", 10_000, None).await?;
    let joined: Arc<Mutex<VecDeque<String>>> = Arc::default();
    let lat_join: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let lat_remove: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let (join_slots, remove_slots) = (
        Arc::new(Semaphore::new(IN_FLIGHT)),
        Arc::new(Semaphore::new(IN_FLIGHT)),
    );
    let late = Arc::new(AtomicU64::new(0));
    let duration = Duration::from_secs(seconds());
    let rss_start = rss_kib(pid)?;
    let mut rss_warm = None;
    let mut rss_max = rss_start;
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut changes = tokio::task::JoinSet::new();
    let t0 = Instant::now();
    let mut next_sample = Instant::now();
    while t0.elapsed() < duration {
        ticker.tick().await;
        if Instant::now() >= next_sample {
            let r = rss_kib(pid)?;
            rss_max = rss_max.max(r);
            if rss_warm.is_none() && t0.elapsed() >= WARM_UP {
                rss_warm = Some(r);
            }
            next_sample += Duration::from_secs(1);
        }
        match join_slots.clone().try_acquire_owned() {
            Ok(permit) => {
                let (c, t, tally, joined, lat) = (
                    anon.clone(),
                    assets.clone(),
                    tally.clone(),
                    joined.clone(),
                    lat_join.clone(),
                );
                changes.spawn(async move {
                    let _p = permit;
                    let t1 = Instant::now();
                    match join(c, t).await {
                        Ok((s, v)) if tally.status("join", s, StatusCode::OK, &v) => {
                            if let (Ok(mut l), Ok(mut j), Some(m)) =
                                (lat.lock(), joined.lock(), v["member"].as_str())
                            {
                                l.push(t1.elapsed());
                                j.push_back(m.to_owned());
                            }
                        }
                        Ok(_) => {}
                        Err(e) => tally.error(format!("join: {e:#}")),
                    }
                });
            }
            Err(_) => {
                late.fetch_add(1, Ordering::Relaxed);
            }
        }
        let oldest = joined.lock().ok().and_then(|mut j| j.pop_front());
        if let Some(name) = oldest {
            match remove_slots.clone().try_acquire_owned() {
                Ok(permit) => {
                    let (c, tally, lat, joined) = (
                        admin.clone(),
                        tally.clone(),
                        lat_remove.clone(),
                        joined.clone(),
                    );
                    changes.spawn(async move {
                        let _p = permit;
                        let t1 = Instant::now();
                        let path = format!("/api/v1/enclaves/load/members/{name}");
                        match call(&c, Method::DELETE, &path, None).await {
                            Ok((s, v)) if tally.status("remove", s, StatusCode::NO_CONTENT, &v) => {
                                if let Ok(mut l) = lat.lock() {
                                    l.push(t1.elapsed());
                                }
                            }
                            // Refused as overload: it stays to be removed later.
                            Ok(_) => {
                                if let Ok(mut j) = joined.lock() {
                                    j.push_back(name);
                                }
                            }
                            Err(e) => tally.error(format!("remove: {e:#}")),
                        }
                    });
                }
                Err(_) => {
                    late.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut j) = joined.lock() {
                        j.push_front(name);
                    }
                }
            }
        }
        while changes.try_join_next().is_some() {}
    }
    let churn = t0.elapsed();
    let drained = tokio::time::timeout(DRAIN, async {
        while changes.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        changes.abort_all();
    }
    let rss_end = rss_kib(pid)?;
    rss_max = rss_max.max(rss_end);

    // One more change after the churn reaches every poller.
    let fin = token("asset", 1, Some("final")).await?;
    let t1 = Instant::now();
    let (s, v) = join(anon.clone(), fin).await?;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut converged = None;
    while t1.elapsed() < CONVERGE_LIMIT + Duration::from_secs(5) {
        if seen.iter().all(|s| s.load(Ordering::Relaxed)) {
            converged = Some(t1.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let behind = seen.iter().filter(|s| !s.load(Ordering::Relaxed)).count();
    let _ = stop_tx.send(true);
    while pollers.join_next().await.is_some() {}
    server.stop()?;

    let mut lj = lat_join.lock().map(|l| l.clone()).unwrap_or_default();
    let mut lr = lat_remove.lock().map(|l| l.clone()).unwrap_or_default();
    lj.sort();
    lr.sort();
    let rss_warm = rss_warm.unwrap_or(rss_start);
    let errors = tally.error_count.load(Ordering::Relaxed);
    println!(
        "load: {POLLERS} long-polls, {:.0} s of churn: {} joins (p50 {:?}, p99 {:?}), {} removals (p50 {:?}, p99 {:?}), \
         {} ticks late ({IN_FLIGHT} in flight max), {} netmaps delivered ({:.0}/s), {} overload answers, {errors} errors; \
         controller RSS start {} MiB, after {} s {} MiB, end {} MiB, max {} MiB; \
         a change after the churn reached all {POLLERS} long-polls in {}",
        churn.as_secs_f64(),
        lj.len(),
        pct(&lj, 0.5),
        pct(&lj, 0.99),
        lr.len(),
        pct(&lr, 0.5),
        pct(&lr, 0.99),
        late.load(Ordering::Relaxed),
        received.load(Ordering::Relaxed),
        received.load(Ordering::Relaxed) as f64 / churn.as_secs_f64(),
        tally.overload.load(Ordering::Relaxed),
        rss_start / 1024,
        WARM_UP.as_secs(),
        rss_warm / 1024,
        rss_end / 1024,
        rss_max / 1024,
        converged.map_or_else(|| format!("NEVER ({behind} behind)"), |d| format!("{d:?}")),
    );
    let first: Vec<String> = tally.errors.lock().map(|v| v.clone()).unwrap_or_default();
    assert_eq!(errors, 0, "errors other than 429/503: {first:?}");
    assert!(
        (rss_end as f64) <= rss_warm as f64 * RSS_GROWTH,
        "memory grew: {rss_warm} KiB after the warm-up, {rss_end} KiB at the end"
    );
    assert!(
        converged.is_some_and(|d| d <= CONVERGE_LIMIT),
        "{behind} long-polls did not see the change after the churn"
    );
    assert!(!lj.is_empty() && !lr.is_empty(), "the churn made no change");
    Ok(())
}
