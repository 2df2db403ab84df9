//! `netsim fault TOPOLOGY`: what the enclave survives. Each scenario is a
//! pass/fail line with its figure:
//!
//! - a node killed with SIGKILL and started again from its state dir keeps
//!   its address, and traffic to it resumes within [`RESUME_LIMIT`];
//! - the controller stopped for a while (60 s by default): established
//!   peers keep full connectivity (0 lost probes, 0 breaches);
//! - the controller started again on the same data dir (SQLite): no
//!   enclave, member, token, chamber, policy, credential or audit row lost,
//!   the audit chain verifies, and a change made after its return reaches
//!   every node;
//! - 10 % loss and 50 ms delay on the underlay between two members: the
//!   handshakes complete and 10 MiB cross the overlay intact
//!   ([`crate::lossy_link`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::expect::{self, Via};
use crate::questions::{Check, Outage};
use crate::report::Report;
use crate::run::{Bins, Running};
use crate::topology::Topology;

/// The longest traffic to a SIGKILLed and restarted node may take to
/// resume.
pub const RESUME_LIMIT: Duration = Duration::from_secs(5);

/// The controller's tables whose rows must survive a restart.
pub(crate) const TABLES: &[&str] = &[
    "enclaves",
    "members",
    "join_tokens",
    "chambers",
    "policies",
    "credentials",
    "audit",
];

pub(crate) fn tally(r: &Report, o: &mut Outage) {
    for p in &r.probes {
        if p.probe.expected {
            o.probes += 1;
            o.lost += usize::from(!p.reachable);
        } else {
            o.breaches += usize::from(p.reachable);
        }
    }
}

pub(crate) fn unique(run: &mut Arc<Running>) -> Result<&mut Running> {
    Arc::get_mut(run).context("the run is still shared by a probe task")
}

/// Stops the controller for `down`, probing every pair `rounds` times
/// spread over it (the first right away), and starts it again on the same
/// data dir. The caller measures what happens after the return.
///
/// # Errors
/// When the controller does not stop or come back, or an agent is gone.
pub async fn controller_outage(
    run: &mut Arc<Running>,
    down: Duration,
    rounds: u32,
) -> Result<Outage> {
    eprintln!("netsim: stopping the controller for {} s", down.as_secs());
    unique(run)?.stop_controller().await?;
    let start = Instant::now();
    let mut outage = Outage::default();
    for k in 0..rounds.max(1) {
        let at = down * k / rounds.max(1);
        if let Some(wait) = at.checked_sub(start.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        tally(&run.check().await?, &mut outage);
    }
    if let Some(rest) = down.checked_sub(start.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    outage.down_s = start.elapsed().as_secs_f64();
    unique(run)?.start_controller().await?;
    Ok(outage)
}

/// Removes member `name` and returns how long until every other node's
/// netmap reflects it (`None`: not within 30 s).
///
/// # Errors
/// When the removal is refused.
pub async fn time_a_change(run: &Running, name: &str) -> Result<Option<f64>> {
    let i = run
        .index(name)
        .with_context(|| format!("no member {name} to remove"))?;
    let t0 = Instant::now();
    run.admin
        .remove_member(&run.members[i].enclave, &run.members[i].name)
        .await?;
    Ok(match run.wait_converged(Duration::from_secs(30)).await {
        Ok(()) => Some(t0.elapsed().as_secs_f64()),
        Err(e) => {
            eprintln!("netsim: {e:#}");
            None
        }
    })
}

/// Whether no table lost rows from `before` to `after`, and the evidence
/// line: `rows before/after: t n/m, …; lost: none`.
pub(crate) fn rows_evidence(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> (bool, String) {
    let now = |t: &str| after.get(t).copied().unwrap_or(0);
    let lost: Vec<String> = before
        .iter()
        .filter(|(t, n)| now(t) < **n)
        .map(|(t, n)| format!("{t} {n} -> {}", now(t)))
        .collect();
    let rows = before
        .iter()
        .map(|(t, n)| format!("{t} {n}/{}", now(t)))
        .collect::<Vec<_>>()
        .join(", ");
    let lost_s = if lost.is_empty() {
        "none".to_owned()
    } else {
        lost.join(", ")
    };
    (
        lost.is_empty(),
        format!("rows before/after: {rows}; lost: {lost_s}"),
    )
}

/// The check that no table lost rows and the audit chain verifies.
pub(crate) fn nothing_lost(
    name: &str,
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
    (verified, how): (bool, String),
) -> Check {
    let (kept, rows) = rows_evidence(before, after);
    Check::new(name, kept && verified, format!("{rows}; {how}"))
}

/// The last member that runs outside a sandbox (the one to remove when
/// timing a change).
pub(crate) fn last_unsandboxed(run: &Running) -> Option<String> {
    run.members
        .iter()
        .rev()
        .find(|m| m.sandbox_ns.is_none())
        .map(|m| m.name.to_string())
}

/// [`crate::hygiene`] over everything the run wrote and the admin API's
/// answers.
pub(crate) async fn hygiene_check(run: &Running) -> Result<Check> {
    let answers = crate::hygiene::save_api_responses(run).await?;
    let secrets = crate::hygiene::secrets_of(run);
    let mut c = crate::hygiene::scan(&run.lab.dir, &secrets, &["netsim-agent"])
        .check(run.members.len() * 2);
    c.evidence
        .push_str(&format!(" ({answers} admin API answers among them)"));
    Ok(c)
}

/// Row counts of the controller's tables, read from its SQLite file.
pub(crate) fn row_counts(run: &Running) -> Result<BTreeMap<String, u64>> {
    let db = run.lab.dir.join("controller").join("controller.db");
    let code = "import json,sqlite3,sys\n\
c=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro',uri=True)\n\
print(json.dumps({t:c.execute('SELECT COUNT(*) FROM '+t).fetchone()[0] for t in sys.argv[2:]}))";
    let mut args = vec!["-c", code, db.to_str().context("lab path")?];
    args.extend_from_slice(TABLES);
    Ok(serde_json::from_str(&crate::lab::command(
        "/usr/bin/python3",
        &args,
    )?)?)
}

/// Runs `overlay-controller audit verify` on the run's store: its SQLite
/// data dir, or the PostgreSQL database at `db_url` (passed in the
/// environment, so it shows in no process list). `(intact, what it said)`.
pub(crate) fn audit_verifies(run: &Running, db_url: Option<&str>) -> (bool, String) {
    let mut cmd = std::process::Command::new(&run.bins.controller);
    cmd.args(["audit", "verify"]);
    match db_url {
        Some(url) => cmd.env("CORDON_DATABASE_URL", url),
        None => cmd.arg("--data-dir").arg(run.lab.dir.join("controller")),
    };
    match cmd.output() {
        Ok(o) if o.status.success() => (true, String::from_utf8_lossy(&o.stdout).trim().to_owned()),
        Ok(o) => (
            false,
            format!(
                "audit verify failed: {}{}",
                String::from_utf8_lossy(&o.stdout).trim(),
                String::from_utf8_lossy(&o.stderr).trim()
            ),
        ),
        Err(e) => (false, format!("audit verify: {e}")),
    }
}

/// SIGKILLs the node of the first unsandboxed member another member must
/// reach over the overlay, starts it again from its state dir, and times
/// until that probe passes again.
async fn node_kill(run: &mut Arc<Running>) -> Result<Check> {
    let name = "a node killed with SIGKILL and restarted from its state dir";
    let probe = expect::probes(&run.topo).into_iter().find(|p| {
        p.expected
            && p.via == Via::Overlay
            && p.from != p.to
            && run.members[p.to].sandbox_ns.is_none()
    });
    let Some(probe) = probe else {
        return Ok(Check::new(
            name,
            false,
            "the topology has no unsandboxed member another must reach".into(),
        ));
    };
    let target = probe.to;
    let before = run.members[target].addr;
    let t0 = Instant::now();
    unique(run)?.restart_node(target, "KILL", &[]).await?;
    let mut resumed = None;
    while t0.elapsed() < Duration::from_secs(20) {
        if run.probe_one(&probe, None).await?.0 {
            resumed = Some(t0.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = run.members[target].addr;
    let who = format!(
        "{} -> {} {}",
        run.members[probe.from].name, run.members[target].name, probe.service
    );
    Ok(Check::new(
        name,
        after == before && resumed.is_some_and(|d| d <= RESUME_LIMIT),
        format!(
            "{}: address {before} -> {after}; {who} resumed {} after the kill (limit {} s)",
            run.members[target].name,
            resumed.map_or_else(
                || "never".to_owned(),
                |d| format!("{:.1} s", d.as_secs_f64())
            ),
            RESUME_LIMIT.as_secs()
        ),
    ))
}

/// Runs every scenario on `topo`; the controller stays down for `outage`.
///
/// # Errors
/// When the topology cannot be brought up or a step's set-up fails.
pub async fn run_all(topo: Topology, bins: Bins, outage: Duration) -> Result<Vec<Check>> {
    let mut run = Arc::new(Running::start(topo, bins, false).await?);
    let mut checks = vec![node_kill(&mut run).await?];

    let rows_before = row_counts(&run)?;
    let o = controller_outage(&mut run, outage, 3).await?;
    checks.push(Check::new(
        "the controller stopped: established peers keep full connectivity",
        o.probes > 0 && o.lost == 0 && o.breaches == 0,
        format!(
            "down {:.0} s, 3 rounds: {} expected probes, {} lost, {} breaches",
            o.down_s, o.probes, o.lost, o.breaches
        ),
    ));
    let rows_after = row_counts(&run)?;
    checks.push(nothing_lost(
        "the controller restarted on the same data dir (SQLite): nothing lost",
        &rows_before,
        &rows_after,
        audit_verifies(&run, None),
    ));
    let removed = last_unsandboxed(&run)
        .or_else(|| run.members.last().map(|m| m.name.to_string()))
        .context("the topology has no member")?;
    let took = time_a_change(&run, &removed).await?;
    checks.push(Check::new(
        "nodes reconnect by themselves and a change after the return reaches every node",
        took.is_some(),
        format!(
            "removed {removed} after the controller's return: every node's netmap reflected it in {}",
            took.map_or_else(|| "never (30 s)".to_owned(), |s| format!("{s:.1} s"))
        ),
    ));
    checks.push(crate::lossy_link::lossy_transfer(unique(&mut run)?).await?);
    checks.push(hygiene_check(&run).await?);
    Ok(checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_rows_are_named() {
        let m = |v: &[(&str, u64)]| {
            v.iter()
                .map(|(k, n)| ((*k).to_owned(), *n))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(
            rows_evidence(&m(&[("a", 2)]), &m(&[("a", 3)])),
            (true, "rows before/after: a 2/3; lost: none".to_owned())
        );
        let (ok, line) = rows_evidence(&m(&[("a", 2), ("b", 1)]), &m(&[("a", 1)]));
        assert!(!ok);
        assert!(line.ends_with("lost: a 2 -> 1, b 1 -> 0"), "{line}");
    }
}
