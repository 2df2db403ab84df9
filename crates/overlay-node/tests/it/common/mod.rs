//! A small network lab in namespaces: an underlay bridge on 198.18.S.0/24
//! (S claimed atomically by creating the bridge's namespace), the host on
//! .1 (where the in-process controller listens), one namespace per node.
//! Everything it creates is removed on drop, also when a test fails, and
//! only the processes it started are stopped, by PID.

use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use overlay_controller::controller::Controller;
use overlay_controller::server::{self, ServeConfig};
use tokio_util::sync::CancellationToken;

pub const NODE: &str = env!("CARGO_BIN_EXE_overlay-node");

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

pub struct Lab {
    pub prefix: String,
    pub subnet: u8,
    lock: std::path::PathBuf,
    namespaces: Vec<String>,
    children: Vec<Child>,
    next_host: u8,
    pub dir: tempfile::TempDir,
}

pub struct Host {
    pub ns: String,
    pub addr: String,
    pub k: u8,
}

impl Lab {
    pub fn new() -> Result<Self> {
        let pid = std::process::id() % 100_000;
        let prefix = format!("cn{pid}");
        for subnet in 20u8..250 {
            // Claim the subnet with a lock file: atomic across parallel tests.
            let lock = std::path::PathBuf::from(format!("/tmp/cordon-lab-198.18.{subnet}.lock"));
            if std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&lock)
                .is_err()
            {
                continue;
            }
            let ul = format!("{prefix}u");
            let mut lab = Lab {
                prefix: prefix.clone(),
                subnet,
                lock,
                namespaces: vec![],
                children: vec![],
                next_host: 2,
                dir: tempfile::tempdir()?,
            };
            ip(&["netns", "add", &ul])?;
            lab.namespaces.push(ul.clone());
            ip(&["-n", &ul, "link", "add", "br0", "type", "bridge"])?;
            ip(&["-n", &ul, "link", "set", "br0", "up"])?;
            let h = format!("{prefix}h");
            ip(&[
                "link", "add", &h, "type", "veth", "peer", "name", "hb", "netns", &ul,
            ])?;
            ip(&["addr", "add", &format!("198.18.{subnet}.1/24"), "dev", &h])?;
            ip(&["link", "set", &h, "up"])?;
            ip(&["-n", &ul, "link", "set", "hb", "master", "br0", "up"])?;
            return Ok(lab);
        }
        bail!("no free 198.18.x.0/24 subnet for the lab (stale /tmp/cordon-lab-*.lock files?)")
    }

    pub fn host_ip(&self) -> String {
        format!("198.18.{}.1", self.subnet)
    }

    pub fn add_host(&mut self, name: &str) -> Result<Host> {
        let ns = format!("{}{name}", self.prefix);
        let k = self.next_host;
        self.next_host += 1;
        ip(&["netns", "add", &ns])?;
        self.namespaces.push(ns.clone());
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        let ul = &self.namespaces[0];
        ip(&[
            "-n",
            &ns,
            "link",
            "add",
            "eth0",
            "type",
            "veth",
            "peer",
            "name",
            &format!("v{k}"),
            "netns",
            ul,
        ])?;
        let addr = format!("198.18.{}.{k}", self.subnet);
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
        ip(&[
            "-n",
            ul,
            "link",
            "set",
            &format!("v{k}"),
            "master",
            "br0",
            "up",
        ])?;
        Ok(Host { ns, addr, k })
    }

    pub fn exec(&self, host: &Host, args: &[&str]) -> Result<Output> {
        Ok(Command::new("ip")
            .args(["netns", "exec", &host.ns])
            .args(args)
            .output()?)
    }

    /// Starts a long-running process in the host's namespace; returns its index.
    pub fn spawn(&mut self, host: &Host, args: &[&str]) -> Result<usize> {
        let log = std::fs::File::create(self.dir.path().join(format!(
            "{}-{}.log",
            host.ns,
            self.children.len()
        )))?;
        let child = Command::new("ip")
            .args(["netns", "exec", &host.ns])
            .args(args)
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()?;
        self.children.push(child);
        Ok(self.children.len() - 1)
    }

    /// SIGKILLs or SIGTERMs a process this lab started.
    pub fn signal(&mut self, i: usize, sig: &str) -> Result<()> {
        let pid = self.children[i].id().to_string();
        Command::new("kill").args([sig, &pid]).status()?;
        let _ = self.children[i].wait();
        Ok(())
    }

    pub fn logs(&self) -> String {
        let mut out = String::new();
        if let Ok(rd) = std::fs::read_dir(self.dir.path()) {
            for e in rd.flatten() {
                if e.path().extension().is_some_and(|x| x == "log") {
                    out.push_str(&format!(
                        "--- {}\n{}\n",
                        e.path().display(),
                        std::fs::read_to_string(e.path()).unwrap_or_default()
                    ));
                }
            }
        }
        out
    }

    /// `ping` from `from` to `to`, one packet with a 1 s wait.
    pub fn ping(&self, from: &Host, to: &str) -> Result<bool> {
        Ok(self
            .exec(from, &["ping", "-c", "1", "-W", "1", to])?
            .status
            .success())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
        }
        for c in &mut self.children {
            for _ in 0..50 {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &format!("{}h", self.prefix)])
            .status();
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_file(&self.lock);
    }
}

/// The controller, in-process, listening on the lab's host address.
pub struct Ctl {
    pub ctl: Arc<Controller>,
    stop: CancellationToken,
    // Kept for the controller's lifetime: dropping it deletes the data dir.
    _data: tempfile::TempDir,
}

impl Ctl {
    pub async fn start(lab: &Lab) -> Result<Self> {
        let data = tempfile::tempdir()?;
        let cfg = ServeConfig {
            listen: format!("{}:0", lab.host_ip()).parse()?,
            data_dir: data.path().to_path_buf(),
            database_url: None,
            advertise_url: None,
            pool: "100.64.0.0/10".parse()?,
            metrics_listen: None,
            max_connections: 1024,
            client_timeout: Duration::from_secs(10),
        };
        let stop = CancellationToken::new();
        let running = server::start(cfg, stop.clone()).await?;
        let ctl = running.ctl.clone();
        tokio::spawn(running.wait());
        Ok(Self {
            ctl,
            stop,
            _data: data,
        })
    }

    /// The controller's data directory (its SQLite database).
    pub fn data_dir(&self) -> &std::path::Path {
        self._data.path()
    }

    pub async fn enclave(&self, name: &str) -> Result<()> {
        let req = serde_json::from_value(serde_json::json!({"name": name}))?;
        overlay_controller::ops::enclave::create(
            &self.ctl,
            req,
            overlay_controller::controller::unix_now(),
        )
        .await?;
        Ok(())
    }

    pub async fn token(&self, enclave: &str, role: &str, name: &str) -> Result<String> {
        let req = serde_json::from_value(serde_json::json!({"role": role, "member_name": name}))?;
        let t = overlay_controller::ops::token::create(
            &self.ctl,
            &proto::Name::new(enclave)?,
            req,
            overlay_controller::controller::unix_now(),
        )
        .await?;
        Ok(t.token)
    }
}

impl Drop for Ctl {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub async fn eventually<F: FnMut() -> Result<bool>>(within: Duration, mut f: F) -> Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if f()? {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("condition not met within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
