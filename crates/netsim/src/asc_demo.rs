//! `netsim demo asc`: one agent, its enclave's ASC, and a provider on an
//! "internet" namespace only the gateway can reach.
//!
//! The real keys go into the controller's vault and the policy into the
//! controller; the gateway member runs `asc serve` in controller mode; the
//! agent member runs an unmodified SDK script (`configs/netsim/demo-agent.py`)
//! under `overlay-node exec`. netsim then judges from outside: what the
//! script got, what the provider received (its request record), what the
//! session log holds, where the real keys can be found, and how fast one
//! `member remove` cuts the agent off.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::agent::Op;
use crate::asc_stage::{bring_up, policy, provider_requests, python_in, Stage, MODELS};
use crate::questions::{self, Audit, Check, Decommission, Keys};
use crate::run::{set_mode, Bins, Running};
use crate::topology::{Service, Topology};

/// The demo's topology (`configs/netsim/demo-asc.toml`).
pub const TOPOLOGY: &str = include_str!("../../../configs/netsim/demo-asc.toml");

/// The agent's script.
const AGENT_SCRIPT: &str = include_str!("../../../configs/netsim/demo-agent.py");

/// A sentence of the allowed prompt, looked for in the session log.
const NORMAL_PROMPT: &str = "Summarise this week's status notes for the design review.";

/// The secret in the script's second prompt, and a line of the design
/// excerpt in its third: neither may reach the provider.
const SECRET_IN_PROMPT: &str = "AKIAZ7VRSQ5TJN2XJ4MB";
const DESIGN_LINE: &str = "4'h1: {carry, y} <= diff";

/// The tool the policy denies.
const DENIED_TOOL: &str = "delete_file";

/// Where the official SDKs are installed (`scripts/setup.sh`).
fn python() -> String {
    let venv = std::env::var("CORDON_VENV").unwrap_or_else(|_| "/opt/cordon-venv".into());
    format!("{venv}/bin/python")
}

/// Test-only switches that break one guarantee on purpose, to show that
/// the verdict notices.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Pass the real OpenAI key into the sandbox's environment.
    pub leak_real_key: bool,
}

/// What the demo found.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The ASC's behaviour, one check per situation.
    pub checks: Vec<Check>,
    /// Whether the sandbox failed to reach the provider directly.
    pub upstream_unreachable: bool,
    /// Question 3's figures.
    pub keys: Keys,
    /// Question 4's figures.
    pub audit: Audit,
    /// Question 5's figures.
    pub decommission: Decommission,
}

impl Outcome {
    /// Every check of this demo, the questions it answers included.
    pub fn all_checks(&self) -> Vec<Check> {
        let mut v = self.checks.clone();
        v.push(questions::q3(&self.keys));
        v.push(questions::q4(&self.audit));
        v.push(questions::q5(&self.decommission));
        v
    }
}

const GET_BEARER: &str = "import sys,urllib.request\n\
tok=open(sys.argv[2]).read().strip()\n\
r=urllib.request.Request(sys.argv[1],headers={'authorization':'Bearer '+tok})\n\
print(urllib.request.urlopen(r,timeout=2).read().decode())";

fn occurrences(hay: &[u8], needles: &[&str]) -> usize {
    needles
        .iter()
        .filter(|n| !n.is_empty())
        .map(|n| hay.windows(n.len()).filter(|w| *w == n.as_bytes()).count())
        .sum()
}

/// Occurrences of `needles` in every file under `dir` (and `dir` itself if
/// it is a file).
fn occurrences_in(path: &Path, needles: &[&str]) -> usize {
    if path.is_file() {
        return std::fs::read(path).map_or(0, |b| occurrences(&b, needles));
    }
    std::fs::read_dir(path).map_or(0, |rd| {
        rd.filter_map(std::result::Result::ok)
            .map(|e| occurrences_in(&e.path(), needles))
            .sum()
    })
}

fn tool_names(body: &Value) -> Vec<String> {
    body["tools"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| {
                    t["function"]["name"]
                        .as_str()
                        .or_else(|| t["name"].as_str())
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Every log and database of the run: process logs (but the agent
/// script's, judged on its own), the controller's data dir and the session
/// log.
fn records_of_the_run(dir: &Path) -> Vec<PathBuf> {
    let files = |d: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(d)
            .map(|rd| {
                rd.filter_map(std::result::Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.is_file())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut v: Vec<PathBuf> = files(dir)
        .into_iter()
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            (name.ends_with(".log") && name != "agent-script.log") || name.starts_with("asc-log.db")
        })
        .collect();
    v.extend(
        files(&dir.join("controller"))
            .into_iter()
            .filter(|p| !p.ends_with("admin.token") && !p.ends_with("vault.key")),
    );
    v
}

/// Brings the demo up, runs the agent, gathers the evidence, decommissions
/// the agent, and tears everything down.
///
/// # Errors
/// When a step of the set-up fails (a failed check is not an error).
pub async fn run(bins: Bins, faults: Faults) -> Result<Outcome> {
    let topo = Topology::parse(TOPOLOGY, "demo-asc.toml")?;
    println!("{}\n", topo.description.trim());
    let Stage {
        mut run,
        agent,
        gw,
        inet,
        upstream,
        tls,
        real_openai,
        real_anthropic,
        protected,
        config,
        asc_proc,
    } = bring_up(topo, bins).await?;
    let enclave = run.members[agent].enclave.clone();
    let dir = run.lab.dir.clone();
    let agent_ns = run.hosts[run.members[agent].host].name.clone();
    let gw_ns = run.hosts[run.members[gw].host].name.clone();
    let asc_bin = run.bins.asc.display().to_string();
    let config_s = config.display().to_string();

    // The agent, unmodified, in its sandbox.
    let script = dir.join("demo-agent.py");
    std::fs::write(&script, AGENT_SCRIPT)?;
    set_mode(&script, 0o644)?;
    let node = run.bins.node.display().to_string();
    let agent_state = run.members[agent].state_dir.display().to_string();
    let upstream_env = format!("DEMO_UPSTREAM={upstream}");
    let leak = format!("LEAKED_FOR_TEST={real_openai}");
    let py = python();
    let script_s = script.display().to_string();
    let mut argv: Vec<&str> = vec![
        &node,
        "exec",
        "--state-dir",
        &agent_state,
        "--env",
        &upstream_env,
    ];
    if faults.leak_real_key {
        argv.extend(["--env", &leak]);
    }
    argv.extend(["--", &py, &script_s]);
    let script_proc = run.lab.spawn("agent-script", &agent_ns, &argv, &[])?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while run.lab.exited(script_proc).is_none() {
        if Instant::now() > deadline {
            run.lab.signal(script_proc, "TERM").await?;
            bail!(
                "the agent script did not finish within 120 s:\n{}",
                run.lab.log_tail("agent-script", 20)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let script_log = run.lab.log_path("agent-script");
    let out = std::fs::read_to_string(&script_log)?;
    let result: Value = out
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .map(serde_json::from_str)
        .transpose()?
        .with_context(|| {
            format!(
                "the agent script printed no result:\n{}",
                run.lab.log_tail("agent-script", 30)
            )
        })?;

    // What the provider received.
    let seen = provider_requests(&inet, &upstream, &tls)?;
    let substitute = std::fs::read_to_string(run.members[agent].state_dir.join("substitute.key"))?
        .trim()
        .to_owned();
    let mut outcome = Outcome::default();
    let mut denied_tool_seen = 0;
    let mut tool_request_filtered = 0;
    let mut leaked_upstream = [0usize; 2];
    for r in &seen {
        let h = &r["headers"];
        let auth = h["authorization"].as_str().unwrap_or("");
        let key = h["x-api-key"].as_str().unwrap_or("");
        if auth == format!("Bearer {real_openai}") || key == real_anthropic {
            outcome.keys.real_at_upstream += 1;
        }
        if occurrences(r.to_string().as_bytes(), &[&substitute]) > 0 {
            outcome.keys.substitute_at_upstream += 1;
        }
        let body: Value =
            serde_json::from_str(r["body"].as_str().unwrap_or("")).unwrap_or(Value::Null);
        let tools = tool_names(&body);
        if tools.iter().any(|n| n == DENIED_TOOL) {
            denied_tool_seen += 1;
        } else if !tools.is_empty() && body.to_string().contains("CALL_TOOL:delete_file") {
            tool_request_filtered += 1;
        }
        let text = r["body"].as_str().unwrap_or("");
        leaked_upstream[0] += occurrences(text.as_bytes(), &[SECRET_IN_PROMPT]);
        leaked_upstream[1] += occurrences(text.as_bytes(), &[DESIGN_LINE]);
    }
    outcome.keys.upstream_requests = seen.len();

    // The ASC's behaviour, as the agent saw it.
    let ok = |k: &str| result[k]["ok"].as_bool().unwrap_or(false);
    let detail = |k: &str| {
        let d = &result[k]["detail"];
        let s = d.as_str().map_or_else(|| d.to_string(), str::to_owned);
        s.chars().take(160).collect::<String>()
    };
    let called_denied = result["denied_tool"]["detail"]["tool_calls"]
        .as_array()
        .is_some_and(|a| a.iter().any(|n| n == DENIED_TOOL));
    let refused = |k: &str| !ok(k) && detail(k).contains("blocked by policy");
    // The direct attempt must fail the way a missing route does, and the
    // provider must be reachable from the same host outside the sandbox
    // (so the failure is the sandbox's doing, not a dead provider).
    let (host, port) = upstream.rsplit_once(':').context("upstream address")?;
    let control = python_in(
        &agent_ns,
        "import socket,sys; socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=3); print('reached')",
        &[host, port],
    )
    .is_ok_and(|o| o.contains("reached"));
    let d = detail("direct");
    outcome.upstream_unreachable = !ok("direct")
        && control
        && (d.starts_with("TimeoutError") || d.contains("unreachable") || d.contains("No route"));
    outcome.checks = vec![
        Check::new(
            "an ordinary request through the OpenAI SDK succeeds",
            ok("normal"),
            detail("normal"),
        ),
        Check::new(
            "the Anthropic SDK works the same way",
            ok("anthropic"),
            detail("anthropic"),
        ),
        Check::new(
            "a request carrying a cloud secret is blocked",
            refused("secret") && leaked_upstream[0] == 0,
            format!(
                "{}; provider requests holding it: {}",
                detail("secret"),
                leaked_upstream[0]
            ),
        ),
        Check::new(
            "a request carrying a protected design excerpt is blocked",
            refused("design") && leaked_upstream[1] == 0,
            format!(
                "{}; provider requests holding it: {}",
                detail("design"),
                leaked_upstream[1]
            ),
        ),
        Check::new(
            "a denied tool never reaches the provider and its call never reaches the agent",
            denied_tool_seen == 0
                && tool_request_filtered > 0
                && !called_denied
                && refused("denied_tool"),
            format!(
                "provider requests defining {DENIED_TOOL}: {denied_tool_seen} (the request reached it \
                 with the tool removed: {tool_request_filtered}); agent got: {}",
                detail("denied_tool")
            ),
        ),
        Check::new(
            "the sandboxed agent cannot reach the provider directly",
            outcome.upstream_unreachable,
            format!(
                "from the sandbox: {d}; from the same host outside it: {}",
                if control { "reached" } else { "NOT reached" }
            ),
        ),
    ];

    // Where the real keys are.
    let reals = [real_openai.as_str(), real_anthropic.as_str()];
    let env = result["environment"].to_string();
    outcome.keys.in_sandbox_env = occurrences(env.as_bytes(), &reals);
    let mut answers = result.clone();
    if let Some(o) = answers.as_object_mut() {
        o.remove("environment");
    }
    let stderr: String = out.lines().filter(|l| !l.starts_with("RESULT ")).collect();
    outcome.keys.in_agent_files = occurrences_in(&run.members[agent].state_dir, &reals)
        + occurrences(answers.to_string().as_bytes(), &reals)
        + occurrences(stderr.as_bytes(), &reals);
    let records = records_of_the_run(&dir);
    outcome.keys.in_gateway_logs = records.iter().map(|f| occurrences_in(f, &reals)).sum();

    // Every other secret the run created: join and node tokens, WireGuard
    // private keys, the substitute key, admin tokens. None may be anywhere
    // but in its own 0600 file (the controller keeps hashes).
    crate::hygiene::save_api_responses(&run).await?;
    let mut secrets = crate::hygiene::secrets_of(&run);
    secrets.extend(crate::hygiene::from_file(
        "the ASC admin token",
        &dir.join("asc-admin.token"),
    ));
    outcome
        .checks
        .push(crate::hygiene::scan(&dir, &secrets, &["agent-script.log", "netsim-agent"]).check(7));

    // The session log.
    let verify = crate::lab::command(&asc_bin, &["log", "verify", "--config", &config_s])
        .unwrap_or_default();
    let tail = crate::lab::command(
        &asc_bin,
        &["log", "tail", "-n", "1000", "--json", "--config", &config_s],
    )?;
    let records: Vec<Value> = tail
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    outcome.audit = Audit {
        records: records.len(),
        verified: verify.contains("hash chain verified"),
        prompt_logged: records.iter().any(|r| {
            r["body"]
                .as_str()
                .is_some_and(|b| b.contains(NORMAL_PROMPT))
        }),
        tool_call_logged: records.iter().any(|r| {
            let body = r["body"].as_str().unwrap_or("");
            r["kind"] == "response"
                && r["decision"] == "blocked"
                && body.contains("tool_calls")
                && body.contains(DENIED_TOOL)
        }),
        path: dir.join("asc-log.db").display().to_string(),
    };

    // A policy change, followed without a restart.
    let status = AscStatus {
        ns: gw_ns.clone(),
        token: dir.join("asc-admin.token"),
    };
    let before = status.get()?["policy"].clone();
    let t0 = Instant::now();
    run.admin
        .set_policy(&enclave, &policy(&protected, &format!("{MODELS}, \"o3*\"")))
        .await?;
    let mut applied = None;
    while applied.is_none() && t0.elapsed() < Duration::from_secs(10) {
        let now = &status.get()?["policy"];
        if now != &before && now.as_str().is_some_and(|v| !v.is_empty()) {
            applied = Some(t0.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    outcome.checks.push(Check::new(
        "a new policy set on the controller reaches the ASC without a restart",
        applied.is_some(),
        applied.map_or_else(
            || "still the old policy after 10 s".to_owned(),
            |d| format!("policy {before} replaced after {} ms", d.as_millis()),
        ),
    ));

    // One `member remove`, timed on the data plane and at the ASC.
    outcome.decommission = decommission(&mut run, agent, gw, &status).await?;
    let _ = asc_proc;
    Ok(outcome)
}

/// The ASC's admin API as seen from the gateway's namespace.
struct AscStatus {
    ns: String,
    token: PathBuf,
}

impl AscStatus {
    /// `GET /api/v1/agents`: the agents it accepts and its policy version.
    fn get(&self) -> Result<Value> {
        let token = self.token.display().to_string();
        Ok(serde_json::from_str(&python_in(
            &self.ns,
            GET_BEARER,
            &["http://127.0.0.1:8081/api/v1/agents", &token],
        )?)?)
    }

    fn knows(&self, name: &str) -> Result<bool> {
        Ok(self.get()?["agents"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["name"] == name)))
    }
}

/// Removes the agent and measures how long it keeps overlay access to the
/// gateway and how long the ASC keeps accepting it.
async fn decommission(
    run: &mut Running,
    agent: usize,
    gw: usize,
    status: &AscStatus,
) -> Result<Decommission> {
    let probe = Op::Probe {
        dst: run.members[gw].addr,
        service: Service::ICMP,
        device: None,
        src: None,
        timeout_ms: 300,
    };
    let host_agent = run.agent_of_host(run.members[agent].host);
    let known = |name: &str| status.knows(name);
    let name = run.members[agent].name.to_string();
    let before = host_agent.call(probe.clone()).await?;
    if !before.ok || !known(&name)? {
        bail!(
            "before the removal the agent should reach the gateway ({}) and be known to the ASC ({})",
            before.detail,
            known(&name)?
        );
    }
    let t0 = Instant::now();
    run.admin
        .remove_member(&run.members[agent].enclave, &run.members[agent].name)
        .await?;
    let mut d = Decommission::default();
    let limit = Duration::from_secs(10);
    // The data plane counts as cut at the first of three failed pings in a
    // row (one lost ping is not a cut-off).
    let mut failed_since: Option<(u64, u32)> = None;
    while t0.elapsed() < limit && (d.data_plane_ms.is_none() || d.asc_ms.is_none()) {
        let ms = || u64::try_from(t0.elapsed().as_millis());
        // Conservative: the time the ASC's answer arrived, and the time the
        // failing ping was sent.
        if d.asc_ms.is_none() && !known(&name)? {
            d.asc_ms = Some(ms()?);
        }
        if d.data_plane_ms.is_none() {
            let now = ms()?;
            if host_agent.call(probe.clone()).await?.ok {
                failed_since = None;
            } else {
                let (first, n) = failed_since.map_or((now, 1), |(f, n)| (f, n + 1));
                failed_since = Some((first, n));
                if n >= 3 {
                    d.data_plane_ms = Some(first);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_topology_and_policy_are_valid() {
        let t = Topology::parse(TOPOLOGY, "demo-asc.toml").unwrap_or_else(|e| panic!("{e}"));
        assert!(crate::expect::contradictions(&t).is_empty());
        let doc = proto::PolicyDocument::parse(&policy(Path::new("/p"), MODELS));
        assert!(doc.is_ok_and(|d| d.credentials().len() == 2));
    }

    #[test]
    fn counts_every_occurrence_of_every_key() {
        assert_eq!(occurrences(b"xKEYyKEYzOTHER", &["KEY", "OTHER", ""]), 3);
        assert_eq!(occurrences(b"nothing", &["KEY"]), 0);
    }

    #[test]
    fn tool_names_of_openai_and_anthropic_bodies() {
        let o = serde_json::json!({"tools": [{"type": "function", "function": {"name": "a"}}]});
        let a = serde_json::json!({"tools": [{"name": "b", "input_schema": {}}]});
        assert_eq!(tool_names(&o), ["a"]);
        assert_eq!(tool_names(&a), ["b"]);
        assert!(tool_names(&serde_json::json!({})).is_empty());
    }
}
