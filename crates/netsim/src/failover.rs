//! The fault scenario "fail-over between two replicas on one PostgreSQL":
//! the topology comes up on two controller replicas sharing one fresh
//! database behind a front ([`crate::front`]); the first replica is
//! SIGKILLed. Checked: established peers keep full connectivity; no
//! enclave, member, token, chamber, policy, credential or audit row is
//! lost and the audit chain verifies; the nodes' long-polls find the second
//! replica by themselves and a change made through it reaches every node.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::fault::{self, TABLES};
use crate::questions::{Check, Outage};
use crate::run::{Bins, Running, Store};
use crate::topology::Topology;

/// Runs the scenario on `topo` with a throw-away database made through
/// `admin_url`.
///
/// # Errors
/// When the topology cannot be brought up or a step's set-up fails.
pub async fn run(topo: Topology, bins: Bins, admin_url: &str) -> Result<Vec<Check>> {
    let mut run = Arc::new(
        Running::start_on(topo, bins, false, Store::Postgres(admin_url.to_owned())).await?,
    );
    let (db_url, before) = {
        let r = run
            .replicas
            .as_ref()
            .context("a PostgreSQL run has replicas")?;
        (r.db.url()?, r.db.row_counts(TABLES)?)
    };

    eprintln!("netsim: SIGKILL to the first controller replica");
    let first = run.controller_proc;
    let t0 = Instant::now();
    fault::unique(&mut run)?.lab.signal(first, "KILL").await?;
    let mut o = Outage::default();
    fault::tally(&run.check().await?, &mut o);
    o.down_s = t0.elapsed().as_secs_f64();
    let mut checks = vec![Check::new(
        "fail-over to the second replica: established peers keep full connectivity",
        o.probes > 0 && o.lost == 0 && o.breaches == 0,
        format!(
            "first replica killed; every pair probed right after: {} expected probes, {} lost, {} breaches",
            o.probes, o.lost, o.breaches
        ),
    )];

    let after = run
        .replicas
        .as_ref()
        .context("replicas")?
        .db
        .row_counts(TABLES)?;
    checks.push(fault::nothing_lost(
        "fail-over between two replicas on one PostgreSQL: nothing lost",
        &before,
        &after,
        fault::audit_verifies(&run, Some(&db_url)),
    ));

    let removed =
        fault::last_unsandboxed(&run).context("the topology has no unsandboxed member")?;
    let took = fault::time_a_change(&run, &removed).await?;
    let served = run
        .replicas
        .as_ref()
        .map(|r| r.front.served())
        .unwrap_or_default();
    checks.push(Check::new(
        "after fail-over, nodes follow the second replica and a change through it reaches every node",
        took.is_some() && served.get(1).is_some_and(|n| *n > 0),
        format!(
            "removed {removed} through the front: every node's netmap reflected it in {}; \
             connections taken by the first/second replica: {}",
            took.map_or_else(|| "never (30 s)".to_owned(), |s| format!("{s:.1} s")),
            served
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join("/")
        ),
    ));
    // The database is searched too: dumped into the run's directory.
    let dump = crate::lab::command("pg_dump", &[&db_url])?;
    std::fs::write(run.lab.dir.join("pg-dump.sql"), dump)?;
    checks.push(fault::hygiene_check(&run).await?);
    Ok(checks)
}
