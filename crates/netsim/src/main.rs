//! `netsim`: parse arguments, run, clean up also on Ctrl-C.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;
use netsim::asc_demo::{self, Faults};
use netsim::cli::{Cli, Command, Demo};
use netsim::pg;
use netsim::questions::Check;
use netsim::run::{Bins, Running};
use netsim::topology::Topology;
use netsim::{attack, demo, expect, fault, lab, story};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Agent) {
        return match netsim::agent::serve().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::from(1),
        };
    }
    cli.log.init();
    let work = async {
        match cli.command {
            Command::Clean { postgres } => {
                let mut removed = lab::clean();
                if let Some(url) = postgres {
                    removed.extend(pg::clean(&url)?);
                }
                println!("removed {} leftovers", removed.len());
                for r in removed {
                    println!("  {r}");
                }
                Ok(true)
            }
            Command::Run {
                topology,
                json,
                keep,
            } => check(Topology::load(&topology)?, json.as_deref(), keep).await,
            Command::Demo {
                which: Demo::Isolation,
                json,
                ..
            } => {
                let t = demo::isolation()?;
                println!("{}\n", t.description.trim());
                check(t, json.as_deref(), false).await
            }
            Command::Demo {
                which: Demo::Asc,
                test_leak_real_key,
                ..
            } => {
                let faults = Faults {
                    leak_real_key: test_leak_real_key,
                };
                let outcome = asc_demo::run(bins()?, faults).await?;
                print_checks("demo asc", "checks", &outcome.all_checks(), None)
            }
            Command::Demo {
                which: Demo::All,
                test_leak_real_key,
                ..
            } => {
                let faults = Faults {
                    leak_real_key: test_leak_real_key,
                };
                story::all(bins()?, faults).await
            }
            Command::Attack { topology, json } => {
                attack_cmd(Topology::load(&topology)?, json.as_deref()).await
            }
            Command::Fault {
                topology,
                outage,
                postgres,
                json,
            } => {
                let t = Topology::load(&topology)?;
                model_check(&t)?;
                let mut checks =
                    fault::run_all(t.clone(), bins()?, std::time::Duration::from_secs(outage))
                        .await?;
                if let Some(url) = postgres {
                    checks.extend(netsim::failover::run(t, bins()?, &url).await?);
                }
                print_checks("faults", "scenarios", &checks, json.as_deref())
            }
            Command::Hostile { json } => {
                let checks = netsim::hostile::run(bins()?).await?;
                print_checks("hostile", "checks", &checks, json.as_deref())
            }
            Command::Agent => Ok(true),
        }
    };
    let stop = telemetry::shutdown_on_signal();
    let res = tokio::select! {
        r = work => r,
        () = stop.cancelled() => {
            eprintln!("netsim: interrupted; cleaning up");
            // Dropping `work` dropped the lab; whatever a task still held is
            // removed here.
            lab::clean_own();
            return ExitCode::from(130);
        }
    };
    match res {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("netsim: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn bins() -> Result<Bins> {
    Bins::find(std::env::current_exe().context("finding netsim's own path")?)
}

fn model_check(t: &Topology) -> Result<()> {
    let c = expect::contradictions(t);
    if !c.is_empty() {
        anyhow::bail!(
            "the topology's expectations contradict the model:\n  {}",
            c.join("\n  ")
        );
    }
    Ok(())
}

/// Prints each check and the `LABEL: N NOUN, F failed` line, writes them
/// as JSON when asked; true when all passed.
fn print_checks(label: &str, noun: &str, checks: &[Check], json: Option<&Path>) -> Result<bool> {
    for c in checks {
        println!("{}", c.line());
    }
    let failed = checks.iter().filter(|c| !c.pass).count();
    println!("{label}: {} {noun}, {failed} failed", checks.len());
    if let Some(p) = json {
        std::fs::write(p, serde_json::to_vec_pretty(checks)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(failed == 0)
}

async fn check(t: Topology, json: Option<&Path>, keep: bool) -> Result<bool> {
    model_check(&t)?;
    let run = Arc::new(Running::start(t, bins()?, false).await?);
    let started = std::time::Instant::now();
    let report = run.check().await?;
    eprintln!("netsim: probed in {:.1}s", started.elapsed().as_secs_f64());
    print!("{}", report.table());
    println!("{}", report.summary_line());
    if let Some(p) = json {
        std::fs::write(p, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if keep {
        eprintln!(
            "netsim: kept running (files in {}); Ctrl-C to remove everything",
            run.lab.dir.display()
        );
        std::future::pending::<()>().await;
    }
    Ok(report.summary.unexpected == 0)
}

async fn attack_cmd(t: Topology, json: Option<&Path>) -> Result<bool> {
    model_check(&t)?;
    let mut run = Running::start(t, bins()?, false).await?;
    let verdicts = attack::run_all(&mut run).await?;
    let width = verdicts
        .iter()
        .map(|v| v.scenario.len())
        .max()
        .unwrap_or(10);
    for v in &verdicts {
        println!("{:<width$}  {:<12}  {}", v.scenario, v.result, v.detail);
    }
    let held = verdicts.iter().filter(|v| v.contained()).count();
    println!(
        "attacks: {} run, {} contained, {} not",
        verdicts.len(),
        held,
        verdicts.len() - held
    );
    if let Some(p) = json {
        std::fs::write(p, serde_json::to_vec_pretty(&verdicts)?)?;
    }
    Ok(held == verdicts.len())
}
