//! `netsim demo all`: the isolation demo, the attack scenarios and a
//! controller outage on the two-project topology, then the ASC demo, and
//! the buyer's five questions answered from what they measured.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use crate::asc_demo::{self, Faults};
use crate::questions::{self, Boundary, Check, Outage};
use crate::run::{Bins, Running};
use crate::{attack, demo, fault};

/// How long the controller stays down in question 1.
pub const OUTAGE: Duration = Duration::from_secs(10);

/// The member removed after the controller's return (the change that must
/// reach every node).
const REMOVED_AFTER_RETURN: &str = "agent-a2";

/// Part one: the isolation check and the controller outage on one run,
/// the attacks on a fresh one (a stolen-key control needs peers that have
/// not handshaken yet). Returns the checks, the boundary figures (without
/// the ASC's part) and the outage figures.
async fn isolation_part(bins: Bins) -> Result<(Vec<Check>, Boundary, Outage)> {
    let t = demo::isolation()?;
    println!("{}\n", t.description.trim());
    let mut attacked = Running::start(t.clone(), bins.clone(), false).await?;
    let verdicts = attack::run_all(&mut attacked).await?;
    drop(attacked);
    for v in &verdicts {
        println!("{:<28}  {:<12}  {}", v.scenario, v.result, v.detail);
    }
    println!();
    let contained = verdicts.iter().filter(|v| v.contained()).count();

    let mut run = Arc::new(Running::start(t, bins, false).await?);
    let report = run.check().await?;
    print!("{}", report.table());
    println!("{}\n", report.summary_line());
    let checks = vec![
        Check::new(
            "isolation: every pair behaves as the model predicts",
            report.summary.unexpected == 0,
            report.summary_line(),
        ),
        Check::new(
            "attacks from a compromised agent are contained",
            !verdicts.is_empty() && contained == verdicts.len(),
            format!("{contained} of {} contained", verdicts.len()),
        ),
    ];
    let boundary = Boundary {
        attacks: verdicts.len(),
        contained,
        unexpected: report.summary.unexpected,
        upstream_unreachable: false,
    };
    let outage = outage(&mut run).await?;
    Ok((checks, boundary, outage))
}

/// The controller outage of question 1: down for [`OUTAGE`], probed twice,
/// then a member removed after its return.
async fn outage(run: &mut Arc<Running>) -> Result<Outage> {
    let mut o = fault::controller_outage(run, OUTAGE, 2).await?;
    eprintln!("netsim: controller back; removing {REMOVED_AFTER_RETURN}");
    o.change_after_return_s = fault::time_a_change(run, REMOVED_AFTER_RETURN).await?;
    Ok(o)
}

/// Runs everything and prints the verdict; `Ok(true)` when all passed.
///
/// # Errors
/// When a demo cannot be set up at all.
pub async fn all(bins: Bins, faults: Faults) -> Result<bool> {
    println!("== Part 1 of 2: isolation, attacks, controller outage\n");
    let (mut checks, mut boundary, outage) = isolation_part(bins.clone()).await?;
    println!("== Part 2 of 2: an agent, its enclave's ASC, and a provider\n");
    let asc = asc_demo::run(bins, faults).await?;
    checks.extend(asc.checks.iter().cloned());
    boundary.upstream_unreachable = asc.upstream_unreachable;
    let answers = vec![
        questions::q1(&outage),
        questions::q2(&boundary),
        questions::q3(&asc.keys),
        questions::q4(&asc.audit),
        questions::q5(&asc.decommission),
    ];
    println!("== What was checked\n");
    for c in &checks {
        println!("{}", c.line());
    }
    println!("\n== The five questions\n");
    for a in &answers {
        println!("{}", a.line());
    }
    let failed = checks.iter().chain(&answers).filter(|c| !c.pass).count();
    println!(
        "\ndemo all: {} checks, {} questions, {failed} failed",
        checks.len(),
        answers.len()
    );
    Ok(failed == 0)
}
