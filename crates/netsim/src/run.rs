//! Bringing a topology up with the real binaries and probing it.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use proto::api::{Chamber, CreateEnclave};
use proto::{Name, Netmap};
use tokio::sync::Semaphore;

use crate::admin::Admin;
use crate::agent::Op;
use crate::agent_client::AgentClient;
use crate::expect::{self, Probe, Via};
use crate::front::Front;
use crate::lab::{self, Lab, Ns};
use crate::pg::PgDatabase;
use crate::report::{Outcome, Report};
use crate::topology::Topology;

/// The controller's HTTPS port in its namespace.
const CONTROLLER_PORT: u16 = 7443;
/// First WireGuard port on a host (one per membership on it).
const FIRST_WG_PORT: u16 = 51820;
/// How long one probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_millis(2000);
/// Probes in flight at once.
const PROBE_CONCURRENCY: usize = 256;
/// Probes in flight at once when retrying.
const RETRY_CONCURRENCY: usize = 16;

/// Where the binaries are.
#[derive(Debug, Clone)]
pub struct Bins {
    /// `overlay-controller`.
    pub controller: PathBuf,
    /// `overlay-node`.
    pub node: PathBuf,
    /// This binary (run as the agent).
    pub netsim: PathBuf,
    /// `asc` (the gateway's ASC in `demo asc`).
    pub asc: PathBuf,
    /// `fake-upstream` (the provider APIs in `demo asc`).
    pub fake_upstream: PathBuf,
}

impl Bins {
    /// Looks next to this executable (and one level up, for test binaries
    /// in `target/*/deps`), or in `CORDON_BIN_DIR`.
    ///
    /// # Errors
    /// When a binary is missing, naming what to build.
    pub fn find(netsim: PathBuf) -> Result<Self> {
        let mut dirs = vec![];
        if let Some(d) = std::env::var_os("CORDON_BIN_DIR") {
            dirs.push(PathBuf::from(d));
        }
        if let Some(d) = netsim.parent() {
            dirs.push(d.to_path_buf());
            if let Some(up) = d.parent() {
                dirs.push(up.to_path_buf());
            }
        }
        let find = |name: &str| {
            dirs.iter()
                .map(|d| d.join(name))
                .find(|p| p.is_file())
                .with_context(|| {
                    format!("{name} not found next to netsim (build the workspace: `cargo build --workspace`, or set CORDON_BIN_DIR)")
                })
        };
        Ok(Self {
            controller: find("overlay-controller")?,
            node: find("overlay-node")?,
            asc: find("asc")?,
            fake_upstream: find("fake-upstream")?,
            netsim,
        })
    }
}

/// One membership as it runs.
#[derive(Debug, Clone)]
pub struct MemberRun {
    /// Member name.
    pub name: Name,
    /// Enclave.
    pub enclave: Name,
    /// Index of its host.
    pub host: usize,
    /// Its overlay address.
    pub addr: Ipv4Addr,
    /// Its interface.
    pub iface: String,
    /// Its node's state dir.
    pub state_dir: PathBuf,
    /// Its WireGuard port.
    pub port: u16,
    /// The node process.
    pub node_proc: usize,
    /// Its sandbox namespace, for sandboxed agents.
    pub sandbox_ns: Option<String>,
}

/// A topology brought up, ready to probe. Fields drop in order: agents
/// first (closing their stdin ends them), then the lab.
pub struct Running {
    host_agents: Vec<Arc<AgentClient>>,
    sandbox_agents: HashMap<usize, Arc<AgentClient>>,
    /// The admin API session.
    pub admin: Admin,
    /// The topology.
    pub topo: Topology,
    /// Per member, in [`Topology::members`] order.
    pub members: Vec<MemberRun>,
    /// The host namespaces, in topology order.
    pub hosts: Vec<Ns>,
    /// The controller's namespace.
    pub controller_ns: Ns,
    /// The controller process (the first replica on PostgreSQL).
    pub controller_proc: usize,
    /// The second replica and the front, on PostgreSQL.
    pub replicas: Option<Replicas>,
    /// The binaries.
    pub bins: Bins,
    /// The join tokens used, per member (spent: for the attack scenarios).
    pub spent_tokens: Vec<String>,
    /// The namespaces, processes and files.
    pub lab: Lab,
}

fn say(quiet: bool, msg: &str) {
    if !quiet {
        eprintln!("netsim: {msg}");
    }
}

/// Polls `f` every 50 ms until it returns true; fails after `within`.
pub(crate) async fn wait_for<F: FnMut() -> Result<bool>>(
    what: &str,
    within: Duration,
    mut f: F,
) -> Result<()> {
    let deadline = Instant::now() + within;
    loop {
        if f()? {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{what}: not within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The interface name of member `i` of run `pid`: unique on the machine,
/// because the UAPI socket directory (`/var/run/wireguard`) is shared by
/// every namespace.
pub(crate) fn iface_name(pid: u32, i: usize) -> String {
    format!("n{pid}m{i}")
}

impl Running {
    /// Builds the underlay, starts the controller, creates enclaves and
    /// chambers, joins every member with its own token, starts the agents
    /// and services, and waits until every node has its enclave's current
    /// netmap.
    ///
    /// # Errors
    /// When a step fails; everything made so far is removed.
    pub async fn start(topo: Topology, bins: Bins, quiet: bool) -> Result<Self> {
        Self::start_on(topo, bins, quiet, Store::Sqlite).await
    }

    /// [`Running::start`] with the controller's state in `store`.
    ///
    /// # Errors
    /// When a step fails; everything made so far is removed.
    pub async fn start_on(topo: Topology, bins: Bins, quiet: bool, store: Store) -> Result<Self> {
        let t0 = Instant::now();
        let mut lab = Lab::new()?;
        // The agent runs as `nobody` in sandboxes: give it a copy it can run.
        let agent_bin = lab.dir.join("netsim-agent");
        std::fs::copy(&bins.netsim, &agent_bin).context("copying the agent binary")?;
        set_mode(&agent_bin, 0o755)?;
        set_mode(&lab.dir, 0o711)?;

        // Controller.
        let controller_ns = lab.add_ns("controller")?;
        let data = lab.dir.join("controller");
        let listen = SocketAddr::from((controller_ns.addr, CONTROLLER_PORT));
        let (controller_proc, url, replicas) = match &store {
            Store::Sqlite => {
                let proc = spawn_controller(
                    &mut lab,
                    &bins.controller,
                    "controller",
                    &controller_ns.name,
                    listen,
                    &data,
                    None,
                )?;
                wait_controller(&mut lab, proc, "controller", listen, &data).await?;
                (proc, format!("https://{listen}"), None)
            }
            Store::Postgres(admin_url) => {
                let r =
                    start_replicas(&mut lab, &bins.controller, &controller_ns, admin_url).await?;
                (r.0, r.1, Some(r.2))
            }
        };
        let admin = Admin::new(
            &url,
            &std::fs::read(data.join("ca.pem"))?,
            std::fs::read_to_string(data.join("admin.token"))?
                .trim()
                .to_owned(),
        )?;
        say(
            quiet,
            &format!(
                "controller up at {url}{} ({:.1}s)",
                if replicas.is_some() {
                    " (two replicas on PostgreSQL behind a front)"
                } else {
                    ""
                },
                t0.elapsed().as_secs_f64()
            ),
        );

        // Enclaves and chambers, through the API.
        for e in &topo.enclaves {
            admin
                .create_enclave(&CreateEnclave {
                    name: e.name.clone(),
                    cidr: e.cidr,
                    agent_to_agent: Some(e.agent_to_agent),
                })
                .await?;
            for c in &e.chambers {
                admin
                    .create_chamber(
                        &e.name,
                        &Chamber {
                            name: c.name.clone(),
                            asset: c.asset.clone(),
                            allow: c.allow.clone(),
                        },
                    )
                    .await?;
            }
        }

        // Hosts and nodes.
        let mut hosts = vec![];
        for h in &topo.hosts {
            hosts.push(lab.add_ns(h.name.as_str())?);
        }
        let node_bin = bins.node.display().to_string();
        let mut members = vec![];
        let mut per_host = vec![0u16; hosts.len()];
        let mut spent_tokens = vec![];
        for (i, p) in topo.members().into_iter().enumerate() {
            let m = p.spec;
            let token = admin.token(&m.enclave, m.role, &m.name, 600).await?;
            let iface = iface_name(std::process::id(), i);
            let port = FIRST_WG_PORT + per_host[p.host];
            per_host[p.host] += 1;
            let state_dir = lab.dir.join("nodes").join(m.name.as_str());
            let endpoint = format!("{}:{port}", hosts[p.host].addr);
            let node_proc = spawn_node(
                &mut lab,
                &node_bin,
                &NodeLaunch {
                    name: m.name.as_str(),
                    ns: &hosts[p.host].name.clone(),
                    iface: &iface,
                    state_dir: &state_dir,
                    port,
                    endpoint: &endpoint,
                    token: &token,
                },
            )?;
            spent_tokens.push(token);
            members.push(MemberRun {
                name: m.name.clone(),
                enclave: m.enclave.clone(),
                host: p.host,
                addr: Ipv4Addr::UNSPECIFIED,
                iface,
                state_dir,
                port,
                node_proc,
                sandbox_ns: None,
            });
        }
        for m in &mut members {
            wait_node_up(&mut lab, m).await?;
        }
        say(
            quiet,
            &format!(
                "{} nodes joined ({:.1}s)",
                members.len(),
                t0.elapsed().as_secs_f64()
            ),
        );

        // Agents: one per host namespace, one per sandbox.
        let agent_s = agent_bin.display().to_string();
        let mut host_agents = vec![];
        for h in &hosts {
            let label = format!("agent-{}", h.name);
            let child = lab.spawn_piped(&label, &h.name, &[&agent_s, "agent"])?;
            host_agents.push(Arc::new(AgentClient::attach(&label, child)?));
        }
        let mut sandbox_agents = HashMap::new();
        for (i, p) in topo.members().iter().enumerate() {
            if !p.spec.sandbox {
                continue;
            }
            let m = &mut members[i];
            let sb = lab.ns_name(&format!("sb-{}", m.name));
            let label = format!("sandbox-{}", m.name);
            let child = lab.spawn_piped(
                &label,
                &hosts[m.host].name.clone(),
                &[
                    &node_bin,
                    "exec",
                    "--state-dir",
                    &m.state_dir.display().to_string(),
                    "--netns",
                    &sb,
                    "--",
                    &agent_s,
                    "agent",
                ],
            )?;
            m.sandbox_ns = Some(sb);
            sandbox_agents.insert(i, Arc::new(AgentClient::attach(&label, child)?));
        }
        let run = Running {
            host_agents,
            sandbox_agents,
            admin,
            topo,
            members,
            hosts,
            controller_ns,
            controller_proc,
            replicas,
            bins,
            spent_tokens,
            lab,
        };
        // Services (this also proves every agent and sandbox is up).
        let specs: Vec<_> = run
            .topo
            .members()
            .iter()
            .map(|p| p.spec.services.clone())
            .collect();
        for (i, services) in specs.into_iter().enumerate() {
            let a = run.agent(i);
            let ans = a
                .call(Op::Listen {
                    addr: run.members[i].addr,
                    services,
                })
                .await?;
            if !ans.ok {
                bail!("{}: {}", run.members[i].name, ans.detail);
            }
        }
        run.wait_converged(Duration::from_secs(30)).await?;
        say(
            quiet,
            &format!("netmaps converged ({:.1}s)", t0.elapsed().as_secs_f64()),
        );
        Ok(run)
    }

    /// The agent that speaks for member `i`.
    fn agent(&self, i: usize) -> &Arc<AgentClient> {
        self.sandbox_agents
            .get(&i)
            .unwrap_or(&self.host_agents[self.members[i].host])
    }

    /// Waits until every node's saved netmap lists exactly the peers the
    /// controller's topology view gives it.
    ///
    /// # Errors
    /// When they do not within `within`.
    pub async fn wait_converged(&self, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let mut want: HashMap<Name, Vec<Name>> = HashMap::new();
            for e in &self.topo.enclaves {
                for entry in self.admin.topology(&e.name).await?.members {
                    want.insert(entry.name, entry.peers);
                }
            }
            let behind: Vec<&MemberRun> = self
                .members
                .iter()
                .filter(|m| {
                    // A member the controller no longer lists was removed.
                    let Some(w) = want.get(&m.name) else {
                        return false;
                    };
                    let mut have: Vec<Name> = read_netmap(&m.state_dir)
                        .map(|n| n.peers.into_iter().map(|p| p.name).collect())
                        .unwrap_or_default();
                    have.sort();
                    w != &have
                })
                .collect();
            if behind.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let names: Vec<String> = behind.iter().map(|m| m.name.to_string()).collect();
                bail!(
                    "netmaps did not converge within {within:?}: {} behind",
                    names.join(", ")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// How member `i` sends a probe: its agent, and for members sharing
    /// a host namespace, the interface and source address to bind.
    fn route(&self, i: usize, via: Via) -> (Arc<AgentClient>, Option<String>, Option<Ipv4Addr>) {
        let m = &self.members[i];
        let agent = self.agent(i).clone();
        if m.sandbox_ns.is_some() || via == Via::Underlay {
            (agent, None, None)
        } else {
            (agent, Some(m.iface.clone()), Some(m.addr))
        }
    }

    /// Runs one probe from member `from`, optionally with another source
    /// address (for spoofing); returns (answered, detail).
    ///
    /// # Errors
    /// When the agent is gone.
    pub async fn probe_one(&self, p: &Probe, src: Option<Ipv4Addr>) -> Result<(bool, String)> {
        let (agent, device, own_src) = self.route(p.from, p.via);
        let dst = match p.via {
            Via::Overlay => self.members[p.to].addr,
            Via::Underlay => self.hosts[self.members[p.to].host].addr,
        };
        let a = agent
            .call(Op::Probe {
                dst,
                service: p.service,
                device,
                src: src.or(own_src),
                timeout_ms: u64::try_from(PROBE_TIMEOUT.as_millis())?,
            })
            .await?;
        Ok((a.ok, a.detail))
    }

    /// The agent of host `h`'s namespace (root there).
    pub fn agent_of_host(&self, h: usize) -> Arc<AgentClient> {
        self.host_agents[h].clone()
    }

    /// The agent of member `i` (for attack steps run from its context).
    pub fn agent_of(&self, i: usize) -> Arc<AgentClient> {
        self.agent(i).clone()
    }

    /// Probes every (source, destination, service) of the topology and
    /// compares with the model. Probes expected to succeed that failed get
    /// two more tries after the first wave (the first packet may wait for a
    /// handshake, and 2 cores may be busy); a probe expected to fail is never
    /// retried: one success is a breach.
    ///
    /// # Errors
    /// When an agent is gone.
    pub async fn check(self: &Arc<Self>) -> Result<Report> {
        let probes: Vec<(usize, Probe)> =
            expect::probes(&self.topo).into_iter().enumerate().collect();
        let mut done = self.probe_batch(probes, PROBE_CONCURRENCY).await?;
        // Second chance for probes expected to pass, after the first wave's
        // handshakes, a few at a time.
        for _ in 0..2 {
            let again: Vec<(usize, Probe)> = done
                .iter()
                .filter(|(_, o)| o.probe.expected && !o.reachable)
                .map(|(k, o)| (*k, o.probe.clone()))
                .collect();
            if again.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            for (k, o) in self.probe_batch(again, RETRY_CONCURRENCY).await? {
                if let Some(slot) = done.iter_mut().find(|(j, _)| *j == k) {
                    slot.1 = o;
                }
            }
        }
        done.sort_by_key(|(k, _)| *k);
        Ok(Report::new(
            &self.topo,
            &self.members,
            done.into_iter().map(|(_, o)| o).collect(),
        ))
    }

    async fn probe_batch(
        self: &Arc<Self>,
        probes: Vec<(usize, Probe)>,
        concurrency: usize,
    ) -> Result<Vec<(usize, Outcome)>> {
        let sem = Arc::new(Semaphore::new(concurrency));
        let mut set = tokio::task::JoinSet::new();
        for (k, p) in probes {
            let run = self.clone();
            let sem = sem.clone();
            set.spawn(async move {
                let _permit = sem.acquire_owned().await;
                let res = run.probe_one(&p, None).await;
                (k, p, res)
            });
        }
        let mut out = vec![];
        while let Some(r) = set.join_next().await {
            let (k, probe, res) = r?;
            let (reachable, detail) = res?;
            out.push((
                k,
                Outcome {
                    probe,
                    reachable,
                    detail,
                },
            ));
        }
        Ok(out)
    }

    /// Stops member `i`'s node (SIGTERM or SIGKILL) and starts it again
    /// from its state dir with extra environment; waits until it is up.
    ///
    /// # Errors
    /// When it does not come back.
    pub async fn restart_node(&mut self, i: usize, sig: &str, env: &[(&str, &str)]) -> Result<()> {
        let m = self.members[i].clone();
        self.lab.signal(m.node_proc, sig).await?;
        let node = self.bins.node.display().to_string();
        let host = self.hosts[m.host].name.clone();
        let proc = self.lab.spawn(
            &format!("node-{}-restart", m.name),
            &host,
            &[
                &node,
                "up",
                "--state-dir",
                &m.state_dir.display().to_string(),
            ],
            env,
        )?;
        self.members[i].node_proc = proc;
        wait_node_up(&mut self.lab, &mut self.members[i]).await
    }

    /// Stops the controller (SIGTERM) and waits until it has exited.
    ///
    /// # Errors
    /// When it does not stop.
    pub async fn stop_controller(&mut self) -> Result<()> {
        self.lab.signal(self.controller_proc, "TERM").await?;
        let proc = self.controller_proc;
        let lab = &mut self.lab;
        wait_for("the controller to stop", Duration::from_secs(20), || {
            Ok(lab.exited(proc).is_some())
        })
        .await
    }

    /// Starts the controller again on its data dir and address, and waits
    /// until it answers.
    ///
    /// # Errors
    /// When it does not come back.
    pub async fn start_controller(&mut self) -> Result<()> {
        let listen = SocketAddr::from((self.controller_ns.addr, CONTROLLER_PORT));
        let data = self.lab.dir.join("controller");
        let proc = spawn_controller(
            &mut self.lab,
            &self.bins.controller,
            "controller-restart",
            &self.controller_ns.name.clone(),
            listen,
            &data,
            None,
        )?;
        self.controller_proc = proc;
        wait_controller(&mut self.lab, proc, "controller-restart", listen, &data).await
    }

    /// Index of the member named `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.members.iter().position(|m| m.name.as_str() == name)
    }

    /// Runs `ip ARGS` in member `i`'s namespace (its sandbox if it has one).
    ///
    /// # Errors
    /// When `ip` fails.
    pub fn ip_in(&self, i: usize, args: &[&str]) -> Result<()> {
        let m = &self.members[i];
        let ns = m
            .sandbox_ns
            .clone()
            .unwrap_or_else(|| self.hosts[m.host].name.clone());
        let mut full = vec!["-n", ns.as_str()];
        full.extend_from_slice(args);
        lab::ip(&full)
    }
}

/// Reads a node's saved netmap.
pub fn read_netmap(state_dir: &Path) -> Option<Netmap> {
    serde_json::from_slice(&std::fs::read(state_dir.join("netmap.json")).ok()?).ok()
}

async fn wait_node_up(lab: &mut Lab, m: &mut MemberRun) -> Result<()> {
    let label = format!("node-{}", m.name);
    m.addr = node_address(lab, &label, m.node_proc, &m.state_dir).await?;
    Ok(())
}

/// Waits until node process `proc` (logging as `label`) has written its
/// pid file and a netmap, and returns its overlay address.
///
/// # Errors
/// When it exits or is not up within 20 s.
pub(crate) async fn node_address(
    lab: &mut Lab,
    label: &str,
    proc: usize,
    state_dir: &Path,
) -> Result<Ipv4Addr> {
    let pid_file = state_dir.join("node.pid");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(st) = lab.exited(proc) {
            bail!("{label} exited ({st}):\n{}", lab.log_tail(label, 20));
        }
        if let (Ok(pid), Some(n)) = (std::fs::read_to_string(&pid_file), read_netmap(state_dir)) {
            // The pid file of a stopped predecessor does not count.
            if lab.pid(proc).is_some_and(|p| pid.trim() == p.to_string()) {
                return Ok(n.address.addr());
            }
        }
        if Instant::now() > deadline {
            bail!(
                "{label} did not come up within 20 s:\n{}",
                lab.log_tail(label, 20)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What a node's first `overlay-node up` needs.
pub(crate) struct NodeLaunch<'a> {
    /// Member name (the process is logged as `node-<name>`).
    pub name: &'a str,
    /// Namespace it runs in.
    pub ns: &'a str,
    /// Its WireGuard interface.
    pub iface: &'a str,
    /// Its state dir.
    pub state_dir: &'a Path,
    /// Its UDP port.
    pub port: u16,
    /// The endpoint it advertises.
    pub endpoint: &'a str,
    /// Its join token (passed in the environment, not on the command line).
    pub token: &'a str,
}

/// Starts `overlay-node up` for a first join; returns the process index.
///
/// # Errors
/// When it cannot be started.
pub(crate) fn spawn_node(lab: &mut Lab, node_bin: &str, n: &NodeLaunch<'_>) -> Result<usize> {
    lab.spawn(
        &format!("node-{}", n.name),
        n.ns,
        &[
            node_bin,
            "up",
            "--state-dir",
            &n.state_dir.display().to_string(),
            "--interface",
            n.iface,
            "--listen-port",
            &n.port.to_string(),
            "--endpoint",
            n.endpoint,
        ],
        &[("CORDON_JOIN_TOKEN", n.token)],
    )
}

/// Where the controller keeps its state.
#[derive(Debug, Clone)]
pub enum Store {
    /// One controller on an SQLite file in its data dir.
    Sqlite,
    /// Two replicas on a fresh database made through this admin URL, behind
    /// a [`Front`] that sends new connections to the first one alive.
    Postgres(String),
}

/// The second replica and what joins them, for [`Store::Postgres`].
pub struct Replicas {
    /// The front nodes and netsim talk to: the first replica, else the
    /// second.
    pub front: Front,
    /// The front through which the replicas (in the controller's
    /// namespace) reach PostgreSQL on the host's loopback.
    pub pg_front: Front,
    /// The second replica's process.
    pub standby_proc: usize,
    /// The database (dropped last).
    pub db: PgDatabase,
}

/// Starts `overlay-controller serve` on `listen` and `data`; with `pg`
/// (database URL, advertised URL) on PostgreSQL. Returns the process.
fn spawn_controller(
    lab: &mut Lab,
    bin: &Path,
    label: &str,
    ns: &str,
    listen: SocketAddr,
    data: &Path,
    pg: Option<(&str, &str)>,
) -> Result<usize> {
    let (bin, listen, data) = (
        bin.display().to_string(),
        listen.to_string(),
        data.display().to_string(),
    );
    let mut argv = vec![
        bin.as_str(),
        "serve",
        "--listen",
        &listen,
        "--data-dir",
        &data,
    ];
    let mut env = vec![];
    if let Some((db, advertise)) = pg {
        argv.extend(["--advertise-url", advertise]);
        // The URL holds a password: the environment, not the command line.
        env.push(("CORDON_DATABASE_URL", db));
    }
    lab.spawn(label, ns, &argv, &env)
}

/// Waits until the controller process `proc` has its CA and admin token in
/// `data` and accepts connections on `addr`.
async fn wait_controller(
    lab: &mut Lab,
    proc: usize,
    label: &str,
    addr: SocketAddr,
    data: &Path,
) -> Result<()> {
    let (token, ca) = (data.join("admin.token"), data.join("ca.pem"));
    wait_for(
        &format!("{label} to accept connections"),
        Duration::from_secs(20),
        || {
            if let Some(st) = lab.exited(proc) {
                bail!("{label} exited ({st}):\n{}", lab.log_tail(label, 20));
            }
            Ok(token.exists()
                && ca.exists()
                && std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok())
        },
    )
    .await
}

/// Two replicas on one fresh PostgreSQL database: the first makes the CA,
/// vault key and admin token, the second starts on a copy of its data dir
/// (as the README's high-availability set-up says). Both advertise the
/// front's URL. Returns the first replica's process, the URL and the rest.
async fn start_replicas(
    lab: &mut Lab,
    bin: &Path,
    ns: &Ns,
    admin_url: &str,
) -> Result<(usize, String, Replicas)> {
    let db = PgDatabase::create(admin_url, &format!("{}_{}", lab.prefix, lab.subnet))?;
    let root = lab.root_addr();
    let pg_front = Front::start(SocketAddr::from((root, 0)), vec![db.server()?]).await?;
    let first = SocketAddr::from((ns.addr, CONTROLLER_PORT));
    let second = SocketAddr::from((ns.addr, CONTROLLER_PORT + 1));
    let front = Front::start(SocketAddr::from((root, 0)), vec![first, second]).await?;
    let url = format!("https://{}", front.addr);
    let db_url = db.url_via(pg_front.addr)?;
    let data = lab.dir.join("controller");
    let proc = spawn_controller(
        lab,
        bin,
        "controller",
        &ns.name,
        first,
        &data,
        Some((&db_url, &url)),
    )?;
    wait_controller(lab, proc, "controller", first, &data).await?;
    let standby_data = lab.dir.join("controller-standby");
    std::fs::create_dir_all(&standby_data)?;
    set_mode(&standby_data, 0o700)?;
    for entry in std::fs::read_dir(&data)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), standby_data.join(entry.file_name()))?;
        }
    }
    let standby_proc = spawn_controller(
        lab,
        bin,
        "controller-standby",
        &ns.name,
        second,
        &standby_data,
        Some((&db_url, &url)),
    )?;
    wait_controller(
        lab,
        standby_proc,
        "controller-standby",
        second,
        &standby_data,
    )
    .await?;
    Ok((
        proc,
        url,
        Replicas {
            front,
            pg_front,
            standby_proc,
            db,
        },
    ))
}

/// Sets a file's permission bits.
pub(crate) fn set_mode(p: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_fit_ifnamsiz() {
        assert_eq!(iface_name(4_194_304, 199), "n4194304m199");
        assert!(iface_name(u32::MAX, 999).len() <= 15);
    }
}
