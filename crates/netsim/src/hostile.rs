//! `netsim hostile`: hostile input against the running daemons of the ASC
//! demo's stage ([`crate::asc_stage`]), from where an attacker would send
//! it — the ASC's proxies from inside the agent's sandbox, the controller's
//! API and the gateway node's WireGuard port from the agent's host on the
//! underlay. The cases are in `configs/netsim/hostile.py`; each expects the
//! documented rejection. Then it counts what matters:
//!
//! - crashes: every daemon (controller, each node, the ASC, the provider)
//!   still running — must be 0;
//! - policy bypasses: a hostile request answered 2xx, a WireGuard port
//!   answering junk, or any request reaching the provider — must be 0;
//! - state corrupted: the controller's rows and audit chain, the ASC's
//!   session log, and who-reaches-whom (every pair probed again against the
//!   model) unchanged — must be 0.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::asc_stage::{bring_up, provider_requests, python_in, Stage};
use crate::fault;
use crate::questions::Check;
use crate::run::Bins;
use crate::topology::Topology;

/// The cases.
const SCRIPT: &str = include_str!("../../../configs/netsim/hostile.py");

/// One case's result, as the script prints it.
#[derive(Debug, Clone, Deserialize)]
pub struct Case {
    /// What was sent.
    pub case: String,
    /// The documented rejection.
    pub expect: String,
    /// What came back.
    pub got: Value,
    /// Whether it was the documented rejection.
    pub ok: bool,
    /// Whether the hostile input was let through.
    pub bypass: bool,
}

/// Where a group of cases runs.
enum From<'a> {
    /// A namespace (a host on the underlay).
    Ns(&'a str),
    /// An agent's sandbox: `overlay-node exec` with this node binary and
    /// state dir, in this host namespace.
    Sandbox {
        node: &'a str,
        state_dir: &'a str,
        host: &'a str,
    },
}

/// Runs one group of cases.
fn group(from: &From<'_>, name: &str, args: &Value) -> Result<Vec<Case>> {
    let args = args.to_string();
    let out = match from {
        From::Ns(ns) => python_in(ns, SCRIPT, &[name, &args]),
        From::Sandbox {
            node,
            state_dir,
            host,
        } => crate::lab::command(
            "ip",
            &[
                "netns",
                "exec",
                host,
                node,
                "exec",
                "--state-dir",
                state_dir,
                "--",
                "/usr/bin/python3",
                "-c",
                SCRIPT,
                name,
                &args,
            ],
        ),
    }
    .with_context(|| format!("the {name} cases"))?;
    parse_cases(&out)
}

fn parse_cases(out: &str) -> Result<Vec<Case>> {
    out.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).with_context(|| format!("case line {l}")))
        .collect()
}

/// A check per group: every case rejected as documented.
fn group_check(what: &str, cases: &[Case]) -> Check {
    let failed: Vec<String> = cases
        .iter()
        .filter(|c| !c.ok)
        .map(|c| format!("{}: expected {}, got {}", c.case, c.expect, c.got))
        .collect();
    let got: Vec<String> = cases
        .iter()
        .map(|c| format!("{} -> {}", c.case, c.got))
        .collect();
    Check::new(
        &format!("{what}: each hostile input rejected as documented"),
        !cases.is_empty() && failed.is_empty(),
        if failed.is_empty() {
            format!("{} cases: {}", cases.len(), got.join("; "))
        } else {
            format!(
                "{} of {} cases not as documented: {}",
                failed.len(),
                cases.len(),
                failed.join("; ")
            )
        },
    )
}

/// Brings the stage up, runs every group, and returns the checks.
///
/// # Errors
/// When the stage cannot be brought up or a group cannot run.
pub async fn run(bins: Bins) -> Result<Vec<Check>> {
    let topo = Topology::parse(crate::asc_demo::TOPOLOGY, "demo-asc.toml")?;
    let Stage {
        mut run,
        agent,
        gw,
        inet,
        upstream,
        tls,
        config,
        asc_proc,
        ..
    } = bring_up(topo, bins).await?;
    let rows_before = fault::row_counts(&run)?;
    let provider_before = provider_requests(&inet, &upstream, &tls)?.len();
    let substitute = std::fs::read_to_string(run.members[agent].state_dir.join("substitute.key"))?
        .trim()
        .to_owned();
    let agent_host = run.hosts[run.members[agent].host].name.clone();
    let node_bin = run.bins.node.display().to_string();
    let agent_state = run.members[agent].state_dir.display().to_string();
    let sandbox = From::Sandbox {
        node: &node_bin,
        state_dir: &agent_state,
        host: &agent_host,
    };

    let asc_args = json!({
        "gateway": run.members[gw].addr.to_string(),
        "substitute_key": substitute,
        "reverse_port": proto::gateway::REVERSE_PORT,
        "forward_port": proto::gateway::FORWARD_PORT,
        "admin_port": 8081,
        "underlay_host": run.controller_ns.addr.to_string(),
    });
    eprintln!("netsim: hostile input to the ASC from the agent's sandbox");
    let asc_cases = group(&sandbox, "asc", &asc_args)?;
    let ctl_args = json!({
        "host": run.controller_ns.addr.to_string(),
        "port": 7443,
        "ca": run.lab.dir.join("controller").join("ca.pem"),
        "spent_token": run.spent_tokens[agent],
    });
    eprintln!("netsim: hostile input to the controller from the agent's host");
    let ctl_cases = group(&From::Ns(&agent_host), "controller", &ctl_args)?;
    let udp_args = json!({
        "host": run.hosts[run.members[gw].host].addr.to_string(),
        "port": run.members[gw].port,
    });
    eprintln!("netsim: junk to the gateway node's WireGuard port");
    let udp_cases = group(&From::Ns(&agent_host), "udp", &udp_args)?;

    let mut checks = vec![
        group_check(
            "the ASC's proxies and admin API, from the agent's sandbox",
            &asc_cases,
        ),
        group_check("the controller's API, from the agent's host", &ctl_cases),
        group_check(
            "the gateway node's WireGuard port, from the agent's host",
            &udp_cases,
        ),
    ];

    // Crashes.
    let mut daemons = vec![
        ("the controller".to_owned(), run.controller_proc),
        ("the ASC".to_owned(), asc_proc),
    ];
    daemons.extend(
        run.members
            .iter()
            .map(|m| (format!("{}'s node", m.name), m.node_proc)),
    );
    let crashed: Vec<String> = daemons
        .iter()
        .filter_map(|(n, p)| run.lab.exited(*p).map(|st| format!("{n} ({st})")))
        .collect();
    checks.push(Check::new(
        "no daemon crashed",
        crashed.is_empty(),
        format!(
            "{} daemons checked: {}",
            daemons.len(),
            if crashed.is_empty() {
                "all running".to_owned()
            } else {
                format!("exited: {}", crashed.join(", "))
            }
        ),
    ));

    // Bypasses.
    let all: Vec<&Case> = asc_cases
        .iter()
        .chain(&ctl_cases)
        .chain(&udp_cases)
        .collect();
    let through: Vec<String> = all
        .iter()
        .filter(|c| c.bypass)
        .map(|c| c.case.clone())
        .collect();
    let provider_after = provider_requests(&inet, &upstream, &tls)?.len();
    let reached = provider_after.saturating_sub(provider_before);
    checks.push(Check::new(
        "no policy bypass",
        through.is_empty() && reached == 0,
        format!(
            "{} hostile inputs: {} let through{}; requests that reached the provider: {reached}",
            all.len(),
            through.len(),
            if through.is_empty() {
                String::new()
            } else {
                format!(" ({})", through.join(", "))
            }
        ),
    ));

    // State.
    let rows_after = fault::row_counts(&run)?;
    let (same_rows, rows) = rows_unchanged(&rows_before, &rows_after);
    let (audit_ok, audit) = fault::audit_verifies(&run, None);
    let asc_bin = run.bins.asc.display().to_string();
    let config_s = config.display().to_string();
    let log = crate::lab::command(&asc_bin, &["log", "verify", "--config", &config_s]);
    let log_ok = log.as_ref().is_ok_and(|o| o.contains("intact"));
    let run = Arc::new(run);
    let report = run.check().await?;
    checks.push(Check::new(
        "no state corrupted",
        same_rows && audit_ok && log_ok && report.summary.unexpected == 0,
        format!(
            "controller rows {rows}; {audit}; {}; who-reaches-whom after the storm: {} pairs, {} unexpected",
            log.map_or_else(|e| format!("session log: {e:#}"), |o| o.trim().to_owned()),
            report.summary.pairs,
            report.summary.unexpected
        ),
    ));
    Ok(checks)
}

/// Whether every table has the same number of rows, and the evidence.
fn rows_unchanged(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> (bool, String) {
    let changed: Vec<String> = before
        .iter()
        .filter(|(t, n)| after.get(*t) != Some(*n))
        .map(|(t, n)| format!("{t} {n} -> {}", after.get(t).copied().unwrap_or(0)))
        .collect();
    if changed.is_empty() {
        (true, format!("unchanged ({} tables)", before.len()))
    } else {
        (false, format!("changed: {}", changed.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(ok: bool) -> Case {
        Case {
            case: "c".into(),
            expect: "400".into(),
            got: json!(if ok { 400 } else { 200 }),
            ok,
            bypass: !ok,
        }
    }

    #[test]
    fn a_group_passes_only_when_every_case_is_rejected() {
        assert!(group_check("g", &[case(true), case(true)]).pass);
        let c = group_check("g", &[case(true), case(false)]);
        assert!(!c.pass);
        assert!(
            c.evidence.contains("expected 400, got 200"),
            "{}",
            c.evidence
        );
        assert!(!group_check("g", &[]).pass);
    }

    #[test]
    fn rows_must_stay_the_same() {
        let m: BTreeMap<String, u64> = [("a".to_owned(), 1)].into();
        assert!(rows_unchanged(&m, &m).0);
        let more: BTreeMap<String, u64> = [("a".to_owned(), 2)].into();
        assert!(!rows_unchanged(&m, &more).0);
    }

    #[test]
    fn the_script_is_valid_python() {
        let out = std::process::Command::new("python3")
            .args(["-c", "import ast,sys; ast.parse(sys.stdin.read())"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().map(|mut i| i.write_all(SCRIPT.as_bytes()));
                c.wait()
            });
        assert!(out.is_ok_and(|s| s.success()));
    }
}
