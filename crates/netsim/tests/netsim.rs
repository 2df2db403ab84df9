//! netsim end to end, as root: the demo, a three-enclave topology, the
//! attacks, a deliberate breach the checker must catch, and clean-up.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use netsim::run::{Bins, Running};
use netsim::topology::Topology;

const NETSIM: &str = env!("CARGO_BIN_EXE_netsim");
const THREE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../configs/netsim/three-enclaves.toml"
);
const DEMO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../configs/netsim/demo-isolation.toml"
);

fn namespaces_of(pid: u32) -> Vec<String> {
    let prefix = format!("nsim{pid}-");
    std::fs::read_dir("/var/run/netns")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// No namespace and no run directory of netsim process `pid` is left.
fn assert_left_nothing(pid: u32) {
    assert!(
        namespaces_of(pid).is_empty(),
        "left behind: {:?}",
        namespaces_of(pid)
    );
    assert!(!std::path::Path::new(&format!("/tmp/nsim{pid}-run")).exists());
}

fn netsim(args: &[&str]) -> (i32, String, String, u32) {
    let child = Command::new(NETSIM)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("netsim: {e}"));
    let pid = child.id();
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        pid,
    )
}

#[test]
fn the_isolation_demo_is_all_as_expected_and_leaves_nothing() {
    let (code, out, err, pid) = netsim(&["demo", "isolation"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("Two projects"), "{out}");
    assert!(out.contains("agent-a1 (project-a)"), "{out}");
    let last = out.lines().last().unwrap_or_default();
    assert!(last.starts_with("reachability: "), "{out}");
    assert!(last.ends_with(", 0 unexpected"), "{out}");
    assert!(!out.contains("UNEXPECTED"), "{out}");
    assert_left_nothing(pid);
}

#[test]
fn the_whole_story_answers_all_five_questions_and_leaves_nothing() {
    let (code, out, err, pid) = netsim(&["demo", "all"]);
    assert_eq!(code, 0, "{out}\n{err}");
    for q in 1..=5 {
        assert!(
            out.contains(&format!("\nPASS  {q}. ")),
            "question {q}: {out}"
        );
    }
    assert!(out.contains("0 lost, 0 breaches"), "{out}");
    assert!(
        out.contains("real-key occurrences outside the vault and the gateway's memory: 0"),
        "{out}"
    );
    assert!(out.contains("hash chain verified"), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
    assert!(out.trim_end().ends_with(" 0 failed"), "{out}");
    assert_left_nothing(pid);
}

/// The acceptance's proof that an answer can fail: the real key put into
/// the sandbox's environment turns question 3 into a FAIL and the exit
/// code into 1, while the other answers still pass.
#[test]
fn a_real_key_in_the_sandbox_fails_question_3() {
    let (code, out, err, pid) = netsim(&["demo", "asc", "--test-leak-real-key"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("\nFAIL  3. "), "{out}");
    assert!(out.contains("sandbox env 1"), "{out}");
    for q in [4, 5] {
        assert!(
            out.contains(&format!("\nPASS  {q}. ")),
            "question {q}: {out}"
        );
    }
    assert_left_nothing(pid);
}

/// The PostgreSQL role CI creates (may create databases).
fn pg_admin_url() -> String {
    std::env::var("CORDON_TEST_PG")
        .unwrap_or_else(|_| "postgres://cordon:cordon@127.0.0.1:5432/postgres".into())
}

/// Runs one SQL statement through `psql` at `url`; its output.
fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-tAc", sql])
        .output()
        .unwrap_or_else(|e| panic!("psql: {e}"));
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// How many databases start with `prefix`.
fn databases_like(url: &str, prefix: &str) -> usize {
    psql(
        url,
        &format!("SELECT count(*) FROM pg_database WHERE datname LIKE '{prefix}%'"),
    )
    .parse()
    .unwrap_or_else(|e| panic!("{e}"))
}

/// A killed `fault --postgres` run leaves its database; `netsim clean
/// --postgres` drops it and keeps a live run's.
#[test]
fn clean_drops_the_databases_of_dead_runs_only() {
    let pg = pg_admin_url();
    let pid_max: u64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4_194_304);
    let dead = format!("nsim{}_7", pid_max + 1);
    let live = format!("nsim{}_7", std::process::id());
    for db in [&dead, &live] {
        psql(&pg, &format!("DROP DATABASE IF EXISTS {db}"));
        psql(&pg, &format!("CREATE DATABASE {db}"));
    }
    let (code, out, err, _) = netsim(&["clean", "--postgres", &pg]);
    let live_left = databases_like(&pg, &live);
    psql(&pg, &format!("DROP DATABASE IF EXISTS {live}"));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(&format!("database {dead}")), "{out}");
    assert_eq!(databases_like(&pg, &dead), 0, "{out}");
    assert_eq!(live_left, 1, "a live run's database was dropped: {out}");
}

/// The fault scenarios of `docs/RELIABILITY.md`, with the full 60 s
/// controller outage, the lossy underlay and the PostgreSQL fail-over.
#[test]
fn fault_scenarios_hold_on_the_demo_topology() {
    let json = tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("{e}"));
    let path = json.path().to_string_lossy().into_owned();
    let pg = pg_admin_url();
    let (code, out, err, pid) = netsim(&["fault", DEMO, "--postgres", &pg, "--json", &path]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("faults: 10 scenarios, 0 failed"), "{out}");
    assert_eq!(out.matches(", 0 lost, 0 breaches").count(), 2, "{out}");
    assert_eq!(out.matches("lost: none").count(), 2, "{out}");
    assert!(out.contains("arrived intact (SHA-256 matches)"), "{out}");
    assert_eq!(
        out.matches("none found outside their key files").count(),
        2,
        "{out}"
    );
    let checks: serde_json::Value =
        serde_json::from_slice(&std::fs::read(json.path()).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(checks.as_array().map(Vec::len), Some(10));
    // The run's throw-away database is gone too.
    assert_eq!(databases_like(&pg, &format!("nsim{pid}_")), 0);
    assert!(checks
        .as_array()
        .is_some_and(|a| a.iter().all(|c| c["pass"] == true)));
    assert_left_nothing(pid);
}

#[test]
fn three_enclaves_match_the_model_in_json() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let json = dir.path().join("r.json");
    let (code, out, err, _) = netsim(&["run", THREE, "--json", &json.display().to_string()]);
    assert_eq!(code, 0, "{out}\n{err}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    let topo = Topology::load(std::path::Path::new(THREE)).unwrap_or_else(|e| panic!("{e}"));
    let probes = netsim::expect::probes(&topo);
    assert_eq!(r["summary"]["pairs"], probes.len());
    assert_eq!(r["summary"]["unexpected"], 0);
    // The chamber admits red-1 and red-3 only; green's agents are apart.
    let find = |from: &str, to: &str, service: &str| {
        let m = r["members"].as_array().cloned().unwrap_or_default();
        let idx = |n: &str| m.iter().position(|x| x["name"] == n).unwrap_or(usize::MAX);
        r["probes"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .find(|p| {
                p["from"] == idx(from)
                    && p["to"] == idx(to)
                    && p["service"] == service
                    && p["via"] == "overlay"
            })
            .unwrap_or_else(|| panic!("no probe {from} -> {to} {service}"))
    };
    assert_eq!(find("red-3", "red-db", "tcp/5432")["reachable"], true);
    assert_eq!(find("red-1", "red-db", "tcp/5432")["reachable"], true);
    assert_eq!(find("red-2", "red-db", "tcp/5432")["reachable"], false);
    assert_eq!(find("red-ops", "red-db", "tcp/5432")["reachable"], false);
    assert_eq!(find("green-1", "green-2", "tcp/4001")["reachable"], false);
    assert_eq!(find("green-1", "green-files", "tcp/445")["reachable"], true);
    assert_eq!(find("red-1", "red-2", "udp/4000")["reachable"], true);
    assert_eq!(find("blue-1", "red-2", "udp/4000")["reachable"], false);
}

#[test]
fn every_attack_is_contained_on_both_topologies() {
    for topo in [DEMO, THREE] {
        let (code, out, err, pid) = netsim(&["attack", topo]);
        assert_eq!(code, 0, "{topo}:\n{out}\n{err}");
        assert!(out.contains("attacks: 8 run, 8 contained, 0 not"), "{out}");
        for s in [
            "spoofed inner source",
            "removed member",
            "forged token",
            "another enclave's peer",
            "sandboxed agent",
        ] {
            assert!(
                out.lines()
                    .any(|l| l.contains(s) && l.contains("contained")),
                "{s}: {out}"
            );
        }
        assert!(namespaces_of(pid).is_empty());
    }
}

/// The checker can fail: with isolation broken on purpose through the
/// node's test hook, the breached cells must be reported as unexpected.
#[tokio::test]
async fn a_deliberate_breach_is_reported_as_unexpected() {
    let topo = Topology::parse(
        r#"
        [[enclave]]
        name = "a"
        [[enclave]]
        name = "b"
        [[host]]
        name = "ha"
        [[host.member]]
        name = "xa"
        enclave = "a"
        role = "agent"
        services = ["tcp/80"]
        [[host]]
        name = "hb"
        [[host.member]]
        name = "yb"
        enclave = "b"
        role = "asset"
        services = ["tcp/80"]
        [[host.member]]
        name = "zb"
        enclave = "b"
        role = "agent"
        sandbox = true
        "#,
        "breach",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let bins = Bins::find(NETSIM.into()).unwrap_or_else(|e| panic!("{e}"));
    let run = Arc::new(
        Running::start(topo, bins, true)
            .await
            .unwrap_or_else(|e| panic!("{e:#}")),
    );
    let clean = run.check().await.unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(clean.summary.unexpected, 0, "{}", clean.table());
    let mut run = Arc::try_unwrap(run).unwrap_or_else(|_| panic!("probe tasks still hold the run"));
    let (xa, yb) = (run.index("xa").unwrap_or(9), run.index("yb").unwrap_or(9));
    netsim::breach::breach(&mut run, xa, yb)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let run = Arc::new(run);
    let broken = run.check().await.unwrap_or_else(|e| panic!("{e:#}"));
    let t = broken.table();
    let bad: Vec<_> = broken.probes.iter().filter(|o| !o.as_expected()).collect();
    assert!(!bad.is_empty(), "the breach went unnoticed:\n{t}");
    // Exactly the breached pair, both ways, and nothing else.
    assert!(
        bad.iter()
            .all(|o| (o.probe.from, o.probe.to) == (xa, yb)
                || (o.probe.from, o.probe.to) == (yb, xa)),
        "{t}"
    );
    assert!(bad.iter().any(|o| o.probe.from == xa && o.reachable), "{t}");
    assert!(bad.iter().any(|o| o.probe.from == yb && o.reachable), "{t}");
    assert!(
        t.contains("!!") && t.contains("UNEXPECTED: xa -> yb"),
        "{t}"
    );
    assert!(broken
        .summary_line()
        .ends_with(&format!("{} unexpected", bad.len())));
}

#[test]
fn interrupted_runs_clean_up_and_clean_removes_leftovers() {
    // Ctrl-C while kept running.
    let mut child = Command::new(NETSIM)
        .args(["run", DEMO, "--keep"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    while namespaces_of(pid).len() < 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    // Let it finish probing and sit in --keep.
    std::thread::sleep(Duration::from_secs(6));
    assert!(!namespaces_of(pid).is_empty());
    let _ = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let status = child.wait().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status.code(), Some(130));
    assert!(
        namespaces_of(pid).is_empty(),
        "left behind: {:?}",
        namespaces_of(pid)
    );

    // A leftover of a dead run: a namespace with its prefix and a lock.
    let dead = Command::new("true").spawn().and_then(|mut c| {
        let id = c.id();
        c.wait().map(|_| id)
    });
    let dead = dead.unwrap_or_else(|e| panic!("{e}"));
    let ns = format!("nsim{dead}-leftover");
    assert!(Command::new("ip")
        .args(["netns", "add", &ns])
        .status()
        .is_ok_and(|s| s.success()));
    let (code, out, _, _) = netsim(&["clean"]);
    assert_eq!(code, 0);
    assert!(out.contains(&format!("run nsim{dead}")), "{out}");
    assert!(namespaces_of(dead).is_empty());
}

/// The hostile-input suite of docs/RELIABILITY.md: the ASC demo's daemons
/// under malformed, oversized, slow, replayed and forged input.
#[test]
fn hostile_input_crashes_nothing_lets_nothing_through_corrupts_nothing() {
    let (code, out, err, pid) = netsim(&["hostile"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("hostile: 6 checks, 0 failed"), "{out}");
    assert!(
        out.contains("0 let through; requests that reached the provider: 0"),
        "{out}"
    );
    assert!(out.contains("all running"), "{out}");
    assert!(out.contains(", 0 unexpected"), "{out}");
    assert_left_nothing(pid);
}
