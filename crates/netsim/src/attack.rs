//! `netsim attack`: an agent's host does its worst and the boundary must
//! hold. The attacker is root on its own machine: it reads its node's
//! private key and runs a stock WireGuard (`wireguard-go` and `wg`) with
//! any configuration it likes. Each scenario first shows that its attack
//! path works when it should (a control), so "contained" means the
//! boundary stopped it, not that the attack was broken.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use proto::JoinToken;
use proto::Role;

use crate::agent::Op;
use crate::agent_client::AgentClient;
use crate::expect;
use crate::run::{read_netmap, Running};
use crate::topology::{Proto, Service};

/// One scenario's verdict.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verdict {
    /// Scenario name.
    pub scenario: String,
    /// `contained`, `BREACHED` or `INCONCLUSIVE` (the control failed).
    pub result: String,
    /// What was tried and seen.
    pub detail: String,
}

impl Verdict {
    fn new(scenario: &str, contained: bool, detail: String) -> Self {
        Self {
            scenario: scenario.into(),
            result: if contained { "contained" } else { "BREACHED" }.into(),
            detail,
        }
    }
    fn inconclusive(scenario: &str, detail: String) -> Self {
        Self {
            scenario: scenario.into(),
            result: "INCONCLUSIVE".into(),
            detail,
        }
    }
    /// Whether the boundary held.
    pub fn contained(&self) -> bool {
        self.result == "contained"
    }
}

/// The actors the scenarios need, chosen from the topology.
struct Cast {
    /// The compromised agent (its key is stolen).
    agent: usize,
    /// A peer of the agent offering a UDP service.
    peer: usize,
    /// The peer's UDP service.
    udp: u16,
    /// Another member of the agent's enclave, whose address is spoofed.
    spoofed: usize,
    /// A member of another enclave.
    victim: usize,
}

fn cast(run: &Running) -> Result<Cast> {
    let placed = run.topo.members();
    for (a, am) in placed.iter().enumerate() {
        if am.spec.role != Role::Agent {
            continue;
        }
        for (p, pm) in placed.iter().enumerate() {
            let Some(udp) = pm
                .spec
                .services
                .iter()
                .find(|s| s.proto == Proto::Udp)
                .map(|s| s.port)
            else {
                continue;
            };
            if !expect::peers(&run.topo, am, pm) {
                continue;
            }
            let spoofed = placed.iter().position(|s| {
                s.spec.enclave == am.spec.enclave
                    && s.spec.name != am.spec.name
                    && s.spec.name != pm.spec.name
            });
            let victim = placed
                .iter()
                .position(|v| v.spec.enclave != am.spec.enclave);
            if let (Some(spoofed), Some(victim)) = (spoofed, victim) {
                return Ok(Cast {
                    agent: a,
                    peer: p,
                    udp,
                    spoofed,
                    victim,
                });
            }
        }
    }
    bail!(
        "netsim attack needs an agent with a peer that offers a udp/PORT service, a third member \
         in their enclave and a second enclave"
    )
}

/// Runs every scenario on a running topology.
///
/// # Errors
/// When the attack set-up itself fails (not when an attack succeeds).
pub async fn run_all(run: &mut Running) -> Result<Vec<Verdict>> {
    let cast = cast(run)?;
    let mut out = vec![];
    if let Some(sb) = run.members.iter().position(|m| m.sandbox_ns.is_some()) {
        out.push(sandbox_escape(run, sb, c_peer_of(&cast, sb)).await?);
    }
    out.push(raw_udp(run, &cast).await?);
    out.extend(tokens(run, &cast).await?);
    out.extend(stolen_key(run, &cast).await?);
    Ok(out)
}

/// The peer the stolen-key scenarios use, if `sb` is their agent: the
/// sandbox control must not handshake with it first. boringtun stamps
/// handshakes with TAI64 = 2^62 + 37 s, wireguard-go with 2^62 + 10 s, so
/// after a boringtun handshake the same key's wireguard-go handshakes look
/// 27 s old and are refused as replays, which would make the control fail.
fn c_peer_of(c: &Cast, sb: usize) -> Option<usize> {
    (c.agent == sb).then_some(c.peer)
}

async fn call_ok(agent: &AgentClient, op: Op) -> Result<(bool, String)> {
    let a = agent.call(op).await?;
    Ok((a.ok, a.detail))
}

fn probe_op(dst: Ipv4Addr, service: Service, device: Option<&str>, src: Option<Ipv4Addr>) -> Op {
    Op::Probe {
        dst,
        service,
        device: device.map(str::to_owned),
        src,
        timeout_ms: 1500,
    }
}

/// A sandboxed agent tries the underlay, its host, the controller and a
/// raw socket.
async fn sandbox_escape(run: &Running, sb: usize, avoid: Option<usize>) -> Result<Verdict> {
    let agent = run.agent_of(sb);
    let m = &run.members[sb];
    // Control: the sandbox does reach its enclave (a peer, if it has one).
    let placed = run.topo.members();
    let peers: Vec<usize> = (0..placed.len())
        .filter(|&x| expect::peers(&run.topo, &placed[sb], &placed[x]))
        .collect();
    let control = peers
        .iter()
        .copied()
        .find(|&x| Some(x) != avoid)
        .or(peers.first().copied());
    if let Some(p) = control {
        let (ok, d) = call_ok(
            &agent,
            probe_op(run.members[p].addr, Service::ICMP, None, None),
        )
        .await?;
        if !ok {
            return Ok(Verdict::inconclusive(
                "sandboxed agent escapes to the underlay",
                format!(
                    "control: {} cannot even ping its peer {}: {d}",
                    m.name, run.members[p].name
                ),
            ));
        }
    }
    let ctl = run.controller_ns.addr;
    let host = run.hosts[m.host].addr;
    let other = run
        .hosts
        .iter()
        .map(|h| h.addr)
        .find(|a| *a != host)
        .unwrap_or(host);
    let tcp = |port| Service {
        proto: Proto::Tcp,
        port,
    };
    let tries = [
        (ctl, tcp(7443), "the controller's API"),
        (ctl, Service::ICMP, "the controller"),
        (host, Service::ICMP, "its own host"),
        (host, tcp(51820), "its own host's WireGuard port"),
        (
            run.lab.root_addr(),
            Service::ICMP,
            "the machine running netsim",
        ),
        (other, Service::ICMP, "another host"),
    ];
    let mut reached = vec![];
    let mut seen = vec![];
    for (dst, service, what) in tries {
        let (ok, d) = call_ok(&agent, probe_op(dst, service, None, None)).await?;
        seen.push(format!("{what} {dst} {service}: {d}"));
        if ok {
            reached.push(what);
        }
    }
    let (raw, d) = call_ok(&agent, Op::RawSocket).await?;
    seen.push(format!("raw socket: {d}"));
    if raw {
        reached.push("a raw socket");
    }
    Ok(Verdict::new(
        "sandboxed agent escapes to the underlay",
        reached.is_empty(),
        if reached.is_empty() {
            format!("{} reached none of: {}", m.name, seen.join("; "))
        } else {
            format!("{} reached {}", m.name, reached.join(", "))
        },
    ))
}

/// Garbage and a forged handshake initiation to another enclave's
/// WireGuard port.
async fn raw_udp(run: &Running, c: &Cast) -> Result<Verdict> {
    let agent = run.agent_of(c.agent);
    let v = &run.members[c.victim];
    let dst = SocketAddrV4::new(run.hosts[v.host].addr, v.port);
    let mut init = vec![0u8; 148];
    init[0] = 1; // handshake initiation, with random contents
    rand::Rng::fill(&mut rand::thread_rng(), &mut init[4..]);
    let mut answered = vec![];
    for (what, payload) in [
        ("garbage", b"\xde\xad\xbe\xef not wireguard".to_vec()),
        ("a forged handshake initiation", init),
        ("a transport packet for an unknown session", {
            let mut t = vec![4u8, 0, 0, 0];
            t.extend_from_slice(&[7u8; 60]);
            t
        }),
    ] {
        // From the agent's host namespace (root there) when sandboxed too.
        let host_agent = run.agent_of_host(run.members[c.agent].host);
        let a = if run.members[c.agent].sandbox_ns.is_some() {
            host_agent
        } else {
            agent.clone()
        };
        let (ok, d) = call_ok(
            &a,
            Op::RawUdp {
                dst,
                payload: hex::encode(&payload),
                timeout_ms: 1000,
            },
        )
        .await?;
        if ok {
            answered.push(format!("{what}: {d}"));
        }
    }
    Ok(Verdict::new(
        "raw UDP to another enclave's WireGuard port",
        answered.is_empty(),
        if answered.is_empty() {
            format!("{dst} ({}) answered none of 3 datagrams", v.name)
        } else {
            answered.join("; ")
        },
    ))
}

/// Spent, expired and forged join tokens, redeemed with the real node.
async fn tokens(run: &mut Running, c: &Cast) -> Result<Vec<Verdict>> {
    let m = run.members[c.agent].clone();
    let role = run.topo.members()[c.agent].spec.role;
    let before = run.admin.members(&m.enclave).await?.len();
    let spent = run.spent_tokens[c.agent].clone();
    let expiring = run
        .admin
        .token(&m.enclave, role, &proto::Name::new("expired-join")?, 1)
        .await?;
    let fresh = run
        .admin
        .token(&m.enclave, role, &proto::Name::new("forged-join")?, 600)
        .await?;
    let mut forged = JoinToken::decode(&fresh)?;
    forged.secret = forged.secret.chars().rev().collect();
    let forged = forged.encode();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let mut out = vec![];
    for (what, token) in [
        ("a spent", spent),
        ("an expired", expiring),
        ("a forged", forged),
    ] {
        let scenario = format!("join with {what} token");
        let what = what.split(' ').next_back().unwrap_or(what);
        let dir = run.lab.dir.join(format!("attack-{what}"));
        let label = format!("attack-join-{what}");
        let node = run.bins.node.display().to_string();
        let host = run.hosts[m.host].name.clone();
        let i = run.lab.spawn(
            &label,
            &host,
            &[
                &node,
                "up",
                "--state-dir",
                &dir.display().to_string(),
                "--listen-port",
                "51999",
            ],
            &[("CORDON_JOIN_TOKEN", &token)],
        )?;
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(st) = run.lab.exited(i) {
                break Some(st);
            }
            if Instant::now() > deadline {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let after = run.admin.members(&m.enclave).await?.len();
        let log = run.lab.log_tail(&label, 2);
        let verdict = match status {
            Some(st) if !st.success() && after == before => {
                Verdict::new(&scenario, true, format!("refused ({st}): {}", log.trim()))
            }
            Some(st) => Verdict::new(
                &scenario,
                false,
                format!("{st}, members {before} -> {after}"),
            ),
            None => {
                run.lab.signal(i, "KILL").await?;
                Verdict::new(
                    &scenario,
                    false,
                    format!("the node did not stop: it joined? {log}"),
                )
            }
        };
        out.push(verdict);
    }
    Ok(out)
}

fn wg(ns: &str, args: &[&str]) -> Result<String> {
    let mut full = vec!["netns", "exec", ns, "wg"];
    full.extend_from_slice(args);
    crate::lab::command("ip", &full)
}

/// The agent's key is stolen and used with a stock WireGuard configured by
/// hand: another enclave's peer added, a spoofed inner source, and, after
/// the member is removed, its old peers.
async fn stolen_key(run: &mut Running, c: &Cast) -> Result<Vec<Verdict>> {
    let m = run.members[c.agent].clone();
    let netmap = read_netmap(&m.state_dir).context("the agent's netmap")?;
    let key = std::fs::read_to_string(m.state_dir.join("private.key"))?;
    // The attacker's box on the underlay, with the stolen identity.
    let atk = run.lab.add_ns("attacker")?;
    let iface = format!("{}a", run.lab.prefix);
    let files = run.lab.dir.join("attacker");
    std::fs::create_dir_all(&files)?;
    write_secret(&files.join("key"), key.trim())?;
    // The real node stops: the attacker is the agent now.
    run.lab.signal(m.node_proc, "TERM").await?;
    run.lab.spawn(
        "attacker-wireguard-go",
        &atk.name,
        &[
            "env",
            "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1",
            "wireguard-go",
            "-f",
            &iface,
        ],
        &[],
    )?;
    let sock = Path::new("/var/run/wireguard").join(format!("{iface}.sock"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        if Instant::now() > deadline {
            bail!("wireguard-go did not start (is it installed? scripts/setup.sh installs it)");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let key_file = files.join("key").display().to_string();
    wg(
        &atk.name,
        &[
            "set",
            &iface,
            "private-key",
            &key_file,
            "listen-port",
            "51900",
        ],
    )?;
    for (k, p) in netmap.peers.iter().enumerate() {
        let psk = files.join(format!("psk{k}"));
        write_secret(&psk, &p.preshared_key)?;
        let allowed: Vec<String> = p.allowed_ips.iter().map(ToString::to_string).collect();
        let mut args = vec![
            "set".to_owned(),
            iface.clone(),
            "peer".into(),
            p.public_key.to_string(),
            "preshared-key".into(),
            psk.display().to_string(),
            "allowed-ips".into(),
            allowed.join(","),
        ];
        if let Some(e) = &p.endpoint {
            args.extend(["endpoint".into(), e.clone()]);
        }
        wg(
            &atk.name,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        )?;
    }
    let ns = atk.name.as_str();
    crate::lab::ip(&[
        "-n",
        ns,
        "addr",
        "add",
        &format!("{}/{}", m.addr, netmap.cidr.prefix_len()),
        "dev",
        &iface,
    ])?;
    crate::lab::ip(&["-n", ns, "link", "set", &iface, "up"])?;
    let label = "agent-attacker";
    let child = run.lab.spawn_piped(
        label,
        ns,
        &[
            &run.lab.dir.join("netsim-agent").display().to_string(),
            "agent",
        ],
    )?;
    let agent = AgentClient::attach(label, child)?;
    let peer = &run.members[c.peer];
    let peer_agent = run.agent_of(c.peer);
    let udp = Service {
        proto: Proto::Udp,
        port: c.udp,
    };
    let service_addr = SocketAddrV4::new(peer.addr, c.udp);
    let hits = |a: std::sync::Arc<AgentClient>| async move {
        let (_, d) = call_ok(&a, Op::Hits { addr: service_addr }).await?;
        Ok::<u64, anyhow::Error>(d.parse().unwrap_or(0))
    };

    // Control: with the stolen key, the attacker is the agent.
    let h0 = hits(peer_agent.clone()).await?;
    let mut control = (false, String::new());
    for _ in 0..3 {
        control = call_ok(&agent, probe_op(peer.addr, udp, Some(&iface), Some(m.addr))).await?;
        if control.0 {
            break;
        }
    }
    let h1 = hits(peer_agent.clone()).await?;
    if !control.0 || h1 <= h0 {
        let why = format!(
            "control: the stolen key did not reach {} {udp}: {}",
            peer.name, control.1
        );
        return Ok(vec![
            Verdict::inconclusive("tampered config: another enclave's peer added", why.clone()),
            Verdict::inconclusive("spoofed inner source address", why.clone()),
            Verdict::inconclusive("removed member keeps talking", why),
        ]);
    }
    let mut out = vec![];

    // 1. Another enclave's peer, key and endpoint added by hand.
    let v = run.members[c.victim].clone();
    let vkey = run.admin.public_key(&v.enclave, &v.name).await?;
    let vep = format!("{}:{}", run.hosts[v.host].addr, v.port);
    wg(
        ns,
        &[
            "set",
            &iface,
            "peer",
            &vkey.to_string(),
            "endpoint",
            &vep,
            "allowed-ips",
            &format!("{}/32", v.addr),
        ],
    )?;
    crate::lab::ip(&[
        "-n",
        ns,
        "route",
        "replace",
        &format!("{}/32", v.addr),
        "dev",
        &iface,
    ])?;
    let mut services = vec![Service::ICMP];
    services.extend(run.topo.members()[c.victim].spec.services.iter().copied());
    let mut reached = vec![];
    for s in &services {
        let (ok, d) = call_ok(&agent, probe_op(v.addr, *s, Some(&iface), Some(m.addr))).await?;
        if ok {
            reached.push(format!("{s}: {d}"));
        }
    }
    let handshakes = wg(ns, &["show", &iface, "latest-handshakes"])?;
    let shook = handshakes
        .lines()
        .any(|l| l.starts_with(&vkey.to_string()) && !l.trim_end().ends_with("\t0"));
    out.push(Verdict::new(
        "tampered config: another enclave's peer added",
        reached.is_empty() && !shook,
        if reached.is_empty() && !shook {
            format!(
                "{} ({}) never completed a handshake with the stolen key of {}; {} probes unanswered",
                v.name,
                v.enclave,
                m.name,
                services.len()
            )
        } else {
            format!("handshake={shook}, reached: {}", reached.join("; "))
        },
    ));

    // 2. A spoofed inner source: another member's address, through the
    // attacker's authenticated session.
    let s = run.members[c.spoofed].clone();
    crate::lab::ip(&[
        "-n",
        ns,
        "addr",
        "add",
        &format!("{}/32", s.addr),
        "dev",
        &iface,
    ])?;
    let before = hits(peer_agent.clone()).await?;
    let _ = call_ok(&agent, probe_op(peer.addr, udp, Some(&iface), Some(s.addr))).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = hits(peer_agent.clone()).await?;
    out.push(Verdict::new(
        "spoofed inner source address",
        after == before,
        format!(
            "{} sent to {} {udp} as {} ({}): the service received {} of those datagrams",
            m.name,
            peer.name,
            s.name,
            s.addr,
            after - before
        ),
    ));

    // 3. The member is removed; the attacker keeps its old configuration.
    run.admin.remove_member(&m.enclave, &m.name).await?;
    let removed_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let waited = removed_at.elapsed();
    let before = hits(peer_agent.clone()).await?;
    let (ok, d) = call_ok(&agent, probe_op(peer.addr, udp, Some(&iface), Some(m.addr))).await?;
    let after = hits(peer_agent).await?;
    out.push(Verdict::new(
        "removed member keeps talking",
        !ok && after == before,
        format!(
            "sent {:.1} s after the removal, {} -> {} {udp} with the old keys: {d}; the service received {}",
            waited.as_secs_f64(),
            m.name,
            peer.name,
            after - before
        ),
    ));
    Ok(out)
}

fn write_secret(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    Ok(())
}
