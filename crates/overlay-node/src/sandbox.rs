//! `overlay-node exec`: run a command in a network namespace whose only
//! interfaces are `lo` and the enclave's (the WireGuard "namespace
//! solution"). The node keeps the TUN file descriptor and its UDP socket in
//! the host namespace, so the command's only way out is the enclave.
//!
//! The command runs with no capabilities, no way to regain them
//! (`no_new_privs`) and, by default, as `nobody`: it cannot move the
//! interface back, add routes, or read the node's state dir or UAPI socket.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::agent_env::{self, AgentEnv, EnvError};
use crate::gateway_ca;
use crate::state::{Membership, StateDir, StateError};

/// Why the sandbox could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// State dir problem.
    #[error(transparent)]
    State(#[from] StateError),
    /// A setup step failed.
    #[error("sandbox setup: `{0}` failed: {1}")]
    Step(String, String),
    /// The command could not be started.
    #[error("cannot run the command: {0}")]
    Spawn(std::io::Error),
    /// A bad `--env` entry.
    #[error(transparent)]
    Env(#[from] EnvError),
}

fn run(args: &[&str]) -> Result<(), SandboxError> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| SandboxError::Step(args.join(" "), e.to_string()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(SandboxError::Step(
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ))
    }
}

/// The default namespace name for a membership.
pub fn default_netns(m: &Membership) -> String {
    format!("cordon-{}", m.interface)
}

/// Moves the enclave interface into `netns` (created if needed) and
/// configures it there: address, `lo`, default route via the enclave.
///
/// # Errors
/// [`SandboxError::Step`] naming the step that failed.
pub fn enter(m: &Membership, netns: &str) -> Result<(), SandboxError> {
    let exists = Path::new("/var/run/netns").join(netns).exists();
    if !exists {
        run(&["ip", "netns", "add", netns])?;
    }
    let in_ns = Command::new("ip")
        .args(["-n", netns, "link", "show", &m.interface])
        .output()
        .is_ok_and(|o| o.status.success());
    if !in_ns {
        run(&["ip", "link", "set", &m.interface, "netns", netns])?;
    }
    let addr = format!("{}/{}", m.address.addr(), m.cidr.prefix_len());
    let _ = run(&[
        "ip",
        "-n",
        netns,
        "addr",
        "replace",
        &addr,
        "dev",
        &m.interface,
    ]);
    run(&["ip", "-n", netns, "link", "set", "lo", "up"])?;
    // Unprivileged ICMP echo (ping sockets) so the agent can ping its peers.
    let _ = run(&[
        "ip",
        "netns",
        "exec",
        netns,
        "sysctl",
        "-qw",
        "net.ipv4.ping_group_range=0 2147483647",
    ]);
    run(&["ip", "-n", netns, "link", "set", &m.interface, "up"])?;
    run(&[
        "ip",
        "-n",
        netns,
        "route",
        "replace",
        "default",
        "dev",
        &m.interface,
    ])?;
    Ok(())
}

/// Moves the interface back to this process's namespace (where the node
/// runs) and deletes `netns`.
pub fn leave(m: &Membership, netns: &str) {
    let me = std::process::id().to_string();
    let _ = run(&["ip", "-n", netns, "link", "set", &m.interface, "netns", &me]);
    let addr = format!("{}/{}", m.address.addr(), m.cidr.prefix_len());
    let _ = run(&["ip", "addr", "replace", &addr, "dev", &m.interface]);
    let _ = run(&["ip", "link", "set", &m.interface, "up"]);
    let _ = run(&["ip", "netns", "del", netns]);
}

/// The uid and primary gid of `user` from `/etc/passwd` (or numeric `uid`).
fn lookup_user(user: &str) -> Option<(u32, u32)> {
    if let Ok(uid) = user.parse::<u32>() {
        return Some((uid, uid));
    }
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 3 && f[0] == user).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

/// Runs `command` in the sandbox of the node at `state_dir` as `user` (a
/// name or uid, never root), without capabilities, then tears the sandbox
/// down. When `stop` fires (SIGTERM, Ctrl-C) the command gets SIGTERM and
/// five seconds, then SIGKILL, and the sandbox is still torn down; if this
/// process is killed outright, the kernel kills the command with it
/// (parent-death signal), so no agent outlives its sandbox's owner.
///
/// # Errors
/// [`SandboxError`].
pub async fn exec(
    state_dir: &Path,
    netns: Option<&str>,
    user: &str,
    extra_env: &[String],
    command: &[String],
    stop: CancellationToken,
) -> Result<ExitStatus, SandboxError> {
    let extra = agent_env::check_extra(extra_env)?;
    let state = StateDir::open(state_dir)?;
    let (_, _, m) = state.load()?;
    let substitute_key = state.load_substitute_key()?;
    let gateway = state.load_netmap()?.as_ref().and_then(agent_env::gateway);
    let (uid, gid) = lookup_user(user)
        .ok_or_else(|| SandboxError::Step(format!("look up user {user}"), "no such user".into()))?;
    if uid == 0 {
        return Err(SandboxError::Step(
            "run as root".into(),
            "the sandboxed command must not run as root".into(),
        ));
    }
    let ns = netns.map_or_else(|| default_netns(&m), str::to_owned);
    // Fetched before the interface moves into the sandbox.
    let ca_bundle = match gateway {
        Some(g) => gateway_ca_bundle(g, &m.interface, &ns).await,
        None => None,
    };
    let vars = AgentEnv {
        membership: Some(&m),
        gateway,
        substitute_key: substitute_key.as_deref(),
        ca_bundle: ca_bundle.as_deref(),
        extra: &extra,
    }
    .vars();
    let cleanup = |m: &Membership| {
        leave(m, &ns);
        if let Some(p) = &ca_bundle {
            let _ = std::fs::remove_file(p);
        }
    };
    if let Err(e) = enter(&m, &ns) {
        cleanup(&m);
        return Err(e);
    }
    let child = tokio::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns,
            "setpriv",
            "--reuid",
            &uid.to_string(),
            "--regid",
            &gid.to_string(),
            "--clear-groups",
        ])
        .args([
            "--inh-caps=-all",
            "--ambient-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            "--pdeathsig=KILL",
            "--",
        ])
        .args(command)
        .env_clear()
        .envs(vars)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            cleanup(&m);
            return Err(SandboxError::Spawn(e));
        }
    };
    let status = tokio::select! {
        s = child.wait() => s,
        () = stop.cancelled() => {
            // `ip netns exec` and `setpriv` exec in place: the pid is the
            // command's.
            if let Some(pid) = child.id() {
                let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
            }
            match tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
                Ok(s) => s,
                Err(_) => {
                    let _ = child.start_kill();
                    child.wait().await
                }
            }
        }
    };
    cleanup(&m);
    status.map_err(SandboxError::Spawn)
}

/// Fetches the enclave's interception CA from the gateway and writes the
/// bundle the sandbox's TLS clients use. Without it the SDKs still reach
/// the ASC's reverse proxy (plain HTTP over the overlay); only the forward
/// proxy's interception would not be trusted, so this warns and goes on.
async fn gateway_ca_bundle(
    gateway: std::net::Ipv4Addr,
    interface: &str,
    ns: &str,
) -> Option<PathBuf> {
    let pem = match gateway_ca::fetch(gateway, interface, Duration::from_secs(3)).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "no enclave CA: HTTPS_PROXY interception will not be trusted in the sandbox");
            return None;
        }
    };
    let path = std::env::temp_dir().join(format!("{ns}-ca-bundle-{}.pem", rand::random::<u64>()));
    match gateway_ca::write_bundle(&path, &pem) {
        Ok(()) => Some(path),
        Err(e) => {
            tracing::warn!(error = %e, "cannot write the enclave CA bundle");
            None
        }
    }
}
