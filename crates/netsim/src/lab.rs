//! The lab: an underlay bridge on `198.18.S.0/24` in its own namespace, one
//! namespace per host (and for the controller) joined to it by veth pairs,
//! and the processes netsim starts in them.
//!
//! Everything carries the run's prefix `nsim<PID>`; the subnet is claimed
//! with a lock file holding the PID, so parallel runs (and the node's tests,
//! which use the same lock files) never collide. Dropping the lab stops the
//! processes it started (by PID), deletes its namespaces and links and
//! releases the subnet, also when the run failed or was interrupted.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::process::{Child, Command};

/// The prefix of everything netsim creates.
pub const PREFIX: &str = "nsim";
/// Where subnet claims live (shared with the node's namespace tests).
const LOCK_DIR: &str = "/tmp";

/// Runs `program ARGS`, failing with its stderr; returns its stdout.
///
/// # Errors
/// When it cannot run or fails.
pub fn command(program: &str, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .with_context(|| {
            format!("running {program} (is it installed? scripts/setup.sh installs it)")
        })?;
    if !out.status.success() {
        bail!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `ip ARGS`, failing with its stderr.
///
/// # Errors
/// When `ip` fails.
pub fn ip(args: &[&str]) -> Result<()> {
    command("ip", args).map(drop)
}

fn lock_path(subnet: u8) -> PathBuf {
    Path::new(LOCK_DIR).join(format!("cordon-lab-198.18.{subnet}.lock"))
}

/// A namespace on the underlay.
#[derive(Debug, Clone)]
pub struct Ns {
    /// Namespace name.
    pub name: String,
    /// Its underlay address.
    pub addr: std::net::Ipv4Addr,
}

/// A process the lab started.
struct Proc {
    label: String,
    child: Child,
}

/// See the module docs.
pub struct Lab {
    /// The run prefix, `nsim<PID>`.
    pub prefix: String,
    /// The third octet of the underlay subnet.
    pub subnet: u8,
    /// The run's files: state dirs, controller data, logs.
    pub dir: PathBuf,
    lock: PathBuf,
    namespaces: Vec<String>,
    procs: Vec<Proc>,
    next: u8,
}

impl Lab {
    /// Claims a subnet, creates the underlay bridge and the root
    /// namespace's own port on it (`.1`, from which netsim talks to the
    /// controller).
    ///
    /// # Errors
    /// When no subnet is free or a step fails (what was made is removed).
    pub fn new() -> Result<Self> {
        let prefix = format!("{PREFIX}{}", std::process::id());
        for subnet in 20u8..250 {
            let lock = lock_path(subnet);
            let Ok(mut f) = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&lock)
            else {
                continue;
            };
            use std::io::Write;
            let _ = writeln!(f, "{}", std::process::id());
            let dir = std::env::temp_dir().join(format!("{prefix}-run"));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir)?;
            let mut lab = Lab {
                prefix,
                subnet,
                dir,
                lock,
                namespaces: vec![],
                procs: vec![],
                next: 2,
            };
            lab.build_underlay()?;
            return Ok(lab);
        }
        bail!(
            "no free 198.18.x.0/24 subnet (stale /tmp/cordon-lab-*.lock files? run `netsim clean`)"
        )
    }

    fn build_underlay(&mut self) -> Result<()> {
        let ul = format!("{}-underlay", self.prefix);
        ip(&["netns", "add", &ul])?;
        self.namespaces.push(ul.clone());
        ip(&["-n", &ul, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &ul, "link", "set", "br0", "up"])?;
        let h = self.root_link();
        ip(&[
            "link", "add", &h, "type", "veth", "peer", "name", "v1", "netns", &ul,
        ])?;
        ip(&[
            "addr",
            "add",
            &format!("198.18.{}.1/24", self.subnet),
            "dev",
            &h,
        ])?;
        ip(&["link", "set", &h, "up"])?;
        ip(&["-n", &ul, "link", "set", "v1", "master", "br0", "up"])?;
        Ok(())
    }

    fn root_link(&self) -> String {
        format!("{}h", self.prefix)
    }

    /// The root namespace's underlay address.
    pub fn root_addr(&self) -> std::net::Ipv4Addr {
        std::net::Ipv4Addr::new(198, 18, self.subnet, 1)
    }

    /// A namespace name for `what` in this run.
    pub fn ns_name(&self, what: &str) -> String {
        format!("{}-{what}", self.prefix)
    }

    /// Adds a namespace on the underlay named `<prefix>-<what>`, with `lo`
    /// up and unprivileged ping sockets allowed.
    ///
    /// # Errors
    /// When a step fails.
    pub fn add_ns(&mut self, what: &str) -> Result<Ns> {
        let k = self.next;
        if k > 250 {
            bail!("the underlay /24 is full");
        }
        self.next += 1;
        let ns = self.ns_name(what);
        ip(&["netns", "add", &ns])?;
        self.namespaces.push(ns.clone());
        let ul = &self.namespaces[0];
        let port = format!("v{k}");
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        ip(&[
            "-n", &ns, "link", "add", "eth0", "type", "veth", "peer", "name", &port, "netns", ul,
        ])?;
        let addr = std::net::Ipv4Addr::new(198, 18, self.subnet, k);
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "eth0",
        ])?;
        ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        ip(&["-n", ul, "link", "set", &port, "master", "br0", "up"])?;
        let out = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns,
                "sysctl",
                "-qw",
                "net.ipv4.ping_group_range=0 2147483647",
            ])
            .output()?;
        if !out.status.success() {
            bail!(
                "sysctl ping_group_range in {ns}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(Ns { name: ns, addr })
    }

    /// The underlay namespace (for `tc netem` and the like).
    pub fn underlay(&self) -> &str {
        &self.namespaces[0]
    }

    /// The log file of process `label`.
    pub fn log_path(&self, label: &str) -> PathBuf {
        self.dir.join(format!("{label}.log"))
    }

    /// Starts `argv` in namespace `ns` with output to its log; `env` is
    /// added to its environment. Returns the process index.
    ///
    /// # Errors
    /// When it cannot be started.
    pub fn spawn(
        &mut self,
        label: &str,
        ns: &str,
        argv: &[&str],
        env: &[(&str, &str)],
    ) -> Result<usize> {
        let log = std::fs::File::create(self.log_path(label))?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().with_context(|| format!("starting {label}"))?;
        self.procs.push(Proc {
            label: label.to_owned(),
            child,
        });
        Ok(self.procs.len() - 1)
    }

    /// Starts `argv` in `ns` with piped stdin and stdout (stderr to its
    /// log); the caller takes the pipes from the returned child.
    ///
    /// # Errors
    /// When it cannot be started.
    pub fn spawn_piped(&mut self, label: &str, ns: &str, argv: &[&str]) -> Result<&mut Child> {
        let log = std::fs::File::create(self.log_path(label))?;
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(argv)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {label}"))?;
        self.procs.push(Proc {
            label: label.to_owned(),
            child,
        });
        let last = self.procs.len() - 1;
        Ok(&mut self.procs[last].child)
    }

    /// Whether process `i` is still running.
    pub fn alive(&mut self, i: usize) -> bool {
        matches!(self.procs[i].child.try_wait(), Ok(None))
    }

    /// The PID of process `i` while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.procs.get(i).and_then(|p| p.child.id())
    }

    /// The exit status of process `i` if it ended.
    pub fn exited(&mut self, i: usize) -> Option<std::process::ExitStatus> {
        self.procs[i].child.try_wait().ok().flatten()
    }

    /// Sends `sig` (`TERM`, `KILL`, `STOP`, `CONT`) to process `i` and, for
    /// TERM and KILL, waits up to 5 s for it to end.
    ///
    /// # Errors
    /// When the process is unknown to this lab.
    pub async fn signal(&mut self, i: usize, sig: &str) -> Result<()> {
        let p = self.procs.get_mut(i).context("no such process")?;
        if let Some(pid) = p.child.id() {
            let _ = std::process::Command::new("kill")
                .args([&format!("-{sig}"), &pid.to_string()])
                .status();
        }
        if sig == "TERM" || sig == "KILL" {
            let _ = tokio::time::timeout(Duration::from_secs(5), p.child.wait()).await;
        }
        Ok(())
    }

    /// The last `n` lines of process `label`'s log.
    pub fn log_tail(&self, label: &str, n: usize) -> String {
        let text = std::fs::read_to_string(self.log_path(label)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    fn stop_all(&mut self) {
        // Newest first: agents, then nodes, then the controller.
        for p in self.procs.iter_mut().rev() {
            if let (Ok(None), Some(pid)) = (p.child.try_wait(), p.child.id()) {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for p in &mut self.procs {
            while matches!(p.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if matches!(p.child.try_wait(), Ok(None)) {
                tracing::warn!(process = %p.label, "did not stop on SIGTERM; killing");
                let _ = p.child.start_kill();
            }
        }
    }
}

/// Deletes every namespace named `<prefix>…` (sandboxes included) and the
/// root link, stopping any process still inside them.
fn remove_run(prefix: &str) {
    for ns in list_namespaces() {
        if ns.starts_with(&format!("{prefix}-")) {
            if let Ok(out) = std::process::Command::new("ip")
                .args(["netns", "pids", &ns])
                .output()
            {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = std::process::Command::new("kill")
                        .args(["-KILL", pid])
                        .status();
                }
            }
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", &ns])
                .status();
        }
    }
    let _ = std::process::Command::new("ip")
        .args(["link", "del", &format!("{prefix}h")])
        .stderr(Stdio::null())
        .status();
}

fn list_namespaces() -> Vec<String> {
    std::fs::read_dir("/var/run/netns")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop_all();
        remove_run(&self.prefix);
        let _ = std::fs::remove_file(&self.lock);
        if std::env::var_os("NETSIM_KEEP_FILES").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Removes the namespaces, links and run dir of run `prefix`.
fn remove_run_and_files(prefix: &str) {
    remove_run(prefix);
    let _ = std::fs::remove_dir_all(std::env::temp_dir().join(format!("{prefix}-run")));
}

/// Removes the subnet locks whose holder PID satisfies `stale`; returns them.
fn release_locks(stale: impl Fn(&str) -> bool) -> Vec<String> {
    let mut removed = vec![];
    for subnet in 20u8..250 {
        let lock = lock_path(subnet);
        let Ok(text) = std::fs::read_to_string(&lock) else {
            continue;
        };
        let pid = text.trim();
        if !pid.is_empty() && stale(pid) && std::fs::remove_file(&lock).is_ok() {
            removed.push(format!("lock {}", lock.display()));
        }
    }
    removed
}

/// Whether `pid` (the digits after a run's `nsim` prefix) names a process
/// that is gone: the run it belonged to left whatever carries it.
pub fn is_dead_pid(pid: &str) -> bool {
    !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
        && !Path::new("/proc").join(pid).exists()
}

/// `netsim clean`: removes what runs that no longer exist left behind
/// (namespaces, links, processes inside them, subnet locks, run dirs).
/// Returns what was removed.
pub fn clean() -> Vec<String> {
    let mut prefixes: Vec<String> = list_namespaces()
        .into_iter()
        .filter_map(|ns| {
            let rest = ns.strip_prefix(PREFIX)?;
            let pid = rest.split('-').next()?;
            is_dead_pid(pid).then(|| format!("{PREFIX}{pid}"))
        })
        .collect();
    prefixes.sort();
    prefixes.dedup();
    let mut removed = vec![];
    for p in &prefixes {
        remove_run_and_files(p);
        removed.push(format!("run {p}"));
    }
    removed.extend(release_locks(|pid| !Path::new("/proc").join(pid).exists()));
    removed
}

/// Removes this process's own run (after an interrupt).
pub fn clean_own() {
    let me = std::process::id().to_string();
    remove_run_and_files(&format!("{PREFIX}{me}"));
    release_locks(|pid| pid == me);
}
