//! `overlay-node discover` against real processes: an agent running a
//! stdio MCP server, a process holding an LLM API key, an agent inside an
//! `overlay-node exec` sandbox, an ordinary process, and hostile ones (a
//! name with control characters and invalid UTF-8, a huge command line,
//! processes exiting mid-scan). Then the report reaches the controller,
//! without a single environment value.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::common::{eventually, Ctl, Lab, NODE};
use crate::nodes::{address_of, up};

/// A value that must never appear in any output or database.
const KEY_VALUE: &str = "sk-test-DISCOVER-4f9a1c7e2b8d6053";

/// Processes started here, each leading its own process group, killed
/// with their children on drop (also when the test fails).
struct Kids(Vec<Child>);

impl Drop for Kids {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", c.id())])
                .status();
            let _ = c.wait();
        }
    }
}

fn script(dir: &std::path::Path, name: &str, body: &str) -> Result<std::path::PathBuf> {
    let p = dir.join(name);
    std::fs::write(&p, body)?;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))?;
    Ok(p)
}

fn discover(args: &[&str]) -> Result<(Value, String)> {
    let out = Command::new(NODE).arg("discover").args(args).output()?;
    let text = String::from_utf8(out.stdout).context("discover printed invalid UTF-8")?;
    anyhow::ensure!(
        out.status.success(),
        "discover failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = if args.contains(&"--json") {
        serde_json::from_str(&text)?
    } else {
        Value::Null
    };
    Ok((v, text))
}

fn agent(inv: &Value, pid: u32) -> Option<&Value> {
    inv["agents"]
        .as_array()?
        .iter()
        .find(|a| a["pid"].as_u64() == Some(u64::from(pid)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_classifies_real_processes_and_reports_without_values() -> Result<()> {
    let mut lab = Lab::new()?;
    let ctl = Ctl::start(&lab).await?;
    ctl.enclave("e").await?;
    let a = lab.add_host("a")?;
    let state = lab.dir.path().join(format!("{}w{}", lab.prefix, a.k));
    let t = ctl.token("e", "agent", "a1").await?;
    up(&mut lab, &a, Some(&t), &state)?;
    address_of(&lab, &state).await?;

    // Scripts the sandbox's `nobody` can read.
    let bin = tempfile::tempdir()?;
    std::fs::set_permissions(bin.path(), std::fs::Permissions::from_mode(0o755))?;
    let mcp = script(
        bin.path(),
        "mcp-server-notes",
        "#!/usr/bin/env python3\nimport time\ntime.sleep(120)\n",
    )?;
    let aider = script(
        bin.path(),
        "aider",
        &format!(
            "#!/usr/bin/env python3\nimport subprocess, sys, time\nsubprocess.Popen([sys.executable, '{}'])\ntime.sleep(120)\n",
            mcp.display()
        ),
    )?;
    let enclave_bin = bin.path().join("enclave");
    std::fs::create_dir(&enclave_bin)?;
    std::fs::set_permissions(&enclave_bin, std::fs::Permissions::from_mode(0o755))?;
    let sandboxed = script(
        &enclave_bin,
        "aider",
        "#!/usr/bin/env python3\nimport time\ntime.sleep(120)\n",
    )?;
    // A program whose name holds an escape sequence and invalid UTF-8.
    let hostile = bin
        .path()
        .join(std::ffi::OsStr::from_bytes(b"ev\x1b[31mil\xff"));
    std::fs::copy("/bin/sleep", &hostile)?;

    let mut kids = Kids(vec![]);
    let spawn = |cmd: &mut Command| -> Result<Child> {
        Ok(cmd
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?)
    };
    kids.0.push(spawn(Command::new("python3").arg(&aider))?);
    let agent_pid = kids.0[0].id();
    kids.0.push(spawn(
        Command::new("sleep")
            .arg("300")
            .env("OPENAI_API_KEY", KEY_VALUE),
    )?);
    let keyed_pid = kids.0[1].id();
    kids.0.push(spawn(Command::new("sleep").arg("301"))?);
    let plain_pid = kids.0[2].id();
    kids.0.push(spawn(
        Command::new(&hostile)
            .arg("302")
            .env("ANTHROPIC_API_KEY", KEY_VALUE),
    )?);
    let hostile_pid = kids.0[3].id();
    kids.0.push(spawn(
        Command::new("python3")
            .args(["-c", "import time; time.sleep(300)"])
            // 480 KB of arguments (one may not exceed 128 KiB).
            .args(std::iter::repeat_n("x".repeat(60_000), 8))
            .arg(format!("--api-key={KEY_VALUE}"))
            .env("GEMINI_API_KEY", KEY_VALUE),
    )?);
    let huge_pid = kids.0[4].id();
    // Processes that come and go while the scanner reads /proc.
    kids.0.push(spawn(Command::new("sh").args([
        "-c",
        "i=0; while [ $i -lt 2000 ]; do /bin/true; i=$((i+1)); done",
    ]))?);
    let state_s = state.to_string_lossy().into_owned();
    let sandbox_script = sandboxed.to_string_lossy().into_owned();
    let sandbox = lab.spawn(
        &a,
        &[
            NODE,
            "exec",
            "--state-dir",
            &state_s,
            "--",
            // Run as `nobody`: the system python, not a per-user one.
            "/usr/bin/python3",
            &sandbox_script,
        ],
    )?;

    // Wait until the agent's MCP child and the sandboxed agent run.
    let mut inv = Value::Null;
    let found = eventually(Duration::from_secs(20), || {
        let (v, _) = discover(&["--json", "--state-dir", &state_s])?;
        let ok = agent(&v, agent_pid)
            .is_some_and(|a| !a["mcp_children"].as_array().is_none_or(Vec::is_empty))
            && v["agents"].as_array().is_some_and(|l| {
                l.iter().any(|a| {
                    a["command"]
                        .as_str()
                        .is_some_and(|c| c.contains(&sandbox_script))
                })
            });
        inv = v;
        Ok(ok)
    })
    .await;
    found.with_context(|| format!("{inv:#}\n{}", lab.logs()))?;

    let parent = agent(&inv, agent_pid).context("agent")?;
    assert_eq!(parent["kind"], "coding-agent", "{parent}");
    assert_eq!(parent["entry"], "aider");
    assert!(parent["enclave"].is_null(), "{parent}");
    let child = parent["mcp_children"][0].as_u64().context("child")?;
    let child = agent(&inv, u32::try_from(child)?).context("mcp child listed")?;
    assert_eq!(child["kind"], "mcp-server", "{child}");
    assert_eq!(child["ppid"].as_u64(), Some(u64::from(agent_pid)));

    let keyed = agent(&inv, keyed_pid).context("keyed process")?;
    assert_eq!(keyed["kind"], "unclassified");
    assert_eq!(keyed["env_names"], serde_json::json!(["OPENAI_API_KEY"]));
    assert!(
        agent(&inv, plain_pid).is_none(),
        "an ordinary process is not an agent"
    );

    let boxed = inv["agents"]
        .as_array()
        .and_then(|l| {
            l.iter().find(|a| {
                a["command"]
                    .as_str()
                    .is_some_and(|c| c.contains(&sandbox_script))
            })
        })
        .context("sandboxed agent")?;
    assert_eq!(boxed["enclave"], "e", "{boxed}");
    assert_eq!(boxed["kind"], "coding-agent");

    let evil = agent(&inv, hostile_pid).context("hostile name")?;
    let name = evil["program"].as_str().unwrap_or_default();
    assert!(
        !name.contains('\u{1b}') && name.contains("\\u{1b}") && name.contains("\\xff"),
        "{name}"
    );
    let huge = agent(&inv, huge_pid).context("huge command line")?;
    assert!(
        huge["command"]
            .as_str()
            .is_some_and(|c| c.chars().count() <= 513),
        "command not bounded"
    );

    // The table view too, and never a value anywhere.
    let (_, table) = discover(&["--state-dir", &state_s])?;
    assert!(
        table.contains("UNMANAGED") && table.contains(" e "),
        "{table}"
    );
    let (_, json_text) = discover(&["--json", "--state-dir", &state_s])?;
    for out in [&table, &json_text, &inv.to_string()] {
        assert!(!out.contains(KEY_VALUE), "an environment value leaked");
    }

    // Report to the controller: the unmanaged agent is listed there, the
    // governed one is not, and the database holds no value.
    let (_, text) = discover(&["--report", "--state-dir", &state_s])?;
    assert!(text.contains("reported to the controller"), "{text}");
    let un = overlay_controller::ops::inventory::list(&ctl.ctl, true).await?;
    let agents = &un.first().context("a host")?.inventory.agents;
    assert!(agents.iter().any(|x| x.pid == agent_pid));
    assert!(agents.iter().all(|x| x.enclave.is_none()));
    assert!(!agents.iter().any(|x| x.command.contains(&sandbox_script)));
    // Stopping `exec` ends the agent in its sandbox and removes the sandbox.
    let boxed_pid = boxed["pid"].as_u64().unwrap_or_default();
    lab.signal(sandbox, "-TERM")?;
    eventually(Duration::from_secs(10), || {
        Ok(!std::path::Path::new(&format!("/proc/{boxed_pid}")).exists())
    })
    .await
    .context("the sandboxed agent outlived exec")?;
    let netns = Command::new("ip").args(["netns", "list"]).output()?;
    let iface = format!("{}w{}", lab.prefix, a.k);
    assert!(
        !String::from_utf8_lossy(&netns.stdout).contains(&format!("cordon-{iface}")),
        "the sandbox namespace is left behind"
    );
    for f in std::fs::read_dir(ctl.data_dir())? {
        let bytes = std::fs::read(f?.path()).unwrap_or_default();
        assert!(
            !bytes
                .windows(KEY_VALUE.len())
                .any(|w| w == KEY_VALUE.as_bytes()),
            "an environment value is in the controller's files"
        );
    }
    Ok(())
}
