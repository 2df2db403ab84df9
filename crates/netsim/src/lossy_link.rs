//! The fault scenario "10 % loss and 50 ms delay on the underlay": two
//! members of a fresh enclave, each on its own host, whose WireGuard
//! datagrams cross an [`crate::impair::Relay`] that drops 10 % of what travels
//! from the first to the second and delays it by 50 ms (what
//! `tc qdisc add dev eth0 root netem loss 10% delay 50ms` on the first
//! host's underlay interface would do). Checked: the handshakes complete
//! and a 10 MiB transfer over the overlay arrives intact (SHA-256 compared
//! end to end), within [`TRANSFER_LIMIT`].

use std::net::SocketAddrV4;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use proto::api::CreateEnclave;
use proto::{Name, Role};

use crate::agent::Op;
use crate::agent_client::AgentClient;
use crate::impair::{Impairment, Relay};
use crate::questions::Check;
use crate::run::{self, NodeLaunch, Running};
use crate::topology::Service;

/// Share of datagrams dropped on the way to the second member.
pub const LOSS: f64 = 0.10;
/// Delay on the way to the second member.
pub const DELAY: Duration = Duration::from_millis(50);
/// Bytes sent over the overlay.
pub const BYTES: u64 = 10 * 1024 * 1024;
/// How long the transfer may take.
pub const TRANSFER_LIMIT: Duration = Duration::from_secs(300);
/// The realised loss must fall in this range, or the impairment was not
/// what was asked.
const REALISED: std::ops::RangeInclusive<f64> = 0.07..=0.13;
/// The enclave the scenario creates (not in any topology file).
const ENCLAVE: &str = "fault-netem";
/// The sink's port on the second member.
const SINK_PORT: u16 = 9100;
/// The WireGuard port each member listens on.
const WG_PORT: u16 = 51820;

/// The two members as they run.
struct Side {
    addr: std::net::Ipv4Addr,
    agent: Arc<AgentClient>,
}

/// Creates the enclave and both members behind the relay; returns them.
async fn bring_up(
    run: &mut Running,
    relay: &mut Relay,
    socks: [Arc<tokio::net::UdpSocket>; 2],
) -> Result<[Side; 2]> {
    let enclave = Name::new(ENCLAVE)?;
    if run.topo.enclaves.iter().any(|e| e.name == enclave) {
        bail!("the topology already has an enclave named {ENCLAVE}");
    }
    run.admin
        .create_enclave(&CreateEnclave {
            name: enclave.clone(),
            cidr: None,
            agent_to_agent: Some(true),
        })
        .await?;
    let node_bin = run.bins.node.display().to_string();
    let agent_bin = run.lab.dir.join("netsim-agent").display().to_string();
    let mut real = vec![];
    let mut launched = vec![];
    for (k, side) in ["netem-a", "netem-b"].into_iter().enumerate() {
        let ns = run.lab.add_ns(side)?;
        real.push(SocketAddrV4::new(ns.addr, WG_PORT));
        let name = Name::new(side)?;
        let token = run.admin.token(&enclave, Role::Agent, &name, 600).await?;
        let state_dir = run.lab.dir.join("nodes").join(side);
        let iface = run::iface_name(std::process::id(), run.members.len() + k);
        let proc = run::spawn_node(
            &mut run.lab,
            &node_bin,
            &NodeLaunch {
                name: side,
                ns: &ns.name,
                iface: &iface,
                state_dir: &state_dir,
                port: WG_PORT,
                endpoint: &relay.faces[k].to_string(),
                token: &token,
            },
        )?;
        launched.push((side, ns, proc, state_dir));
    }
    relay.connect(
        socks,
        [real[0], real[1]],
        [
            Impairment::NONE,
            Impairment {
                loss: LOSS,
                delay: DELAY,
            },
        ],
        0x00C0_FFEE,
    );
    let mut sides = vec![];
    for (side, ns, proc, state_dir) in launched {
        let label = format!("node-{side}");
        let addr = run::node_address(&mut run.lab, &label, proc, &state_dir).await?;
        let label = format!("agent-{side}");
        let child = run
            .lab
            .spawn_piped(&label, &ns.name, &[&agent_bin, "agent"])?;
        sides.push(Side {
            addr,
            agent: Arc::new(AgentClient::attach(&label, child)?),
        });
    }
    let b = sides.pop().context("two sides")?;
    let a = sides.pop().context("two sides")?;
    Ok([a, b])
}

/// Runs the scenario on a running topology (it adds an enclave, two hosts
/// and their nodes; run it last).
///
/// # Errors
/// When the set-up fails.
pub async fn lossy_transfer(run: &mut Running) -> Result<Check> {
    let name =
        "10 % loss and 50 ms delay on the underlay: handshakes complete, 10 MiB arrives intact";
    let (mut relay, socks) = Relay::bind(run.lab.root_addr()).await?;
    let [a, b] = bring_up(run, &mut relay, socks).await?;
    eprintln!(
        "netsim: {} -> {} through a relay dropping {:.0} % and delaying {} ms",
        a.addr,
        b.addr,
        LOSS * 100.0,
        DELAY.as_millis()
    );
    let sink = b
        .agent
        .call(Op::Sink {
            addr: b.addr,
            port: SINK_PORT,
        })
        .await?;
    if !sink.ok {
        bail!("the sink did not start: {}", sink.detail);
    }
    let t0 = Instant::now();
    let echo = a
        .agent
        .call(Op::Probe {
            dst: b.addr,
            service: Service::ICMP,
            device: None,
            src: None,
            timeout_ms: 30_000,
        })
        .await?;
    let first_echo = t0.elapsed();
    let t1 = Instant::now();
    let sent = a
        .agent
        .call(Op::Transfer {
            dst: b.addr,
            port: SINK_PORT,
            bytes: BYTES,
            seed: 7,
            timeout_ms: u64::try_from(TRANSFER_LIMIT.as_millis()).unwrap_or(u64::MAX),
        })
        .await?;
    let took = t1.elapsed();
    let [to_a, to_b] = relay.counts();
    let pass = echo.ok
        && sent.ok
        && REALISED.contains(&to_b.loss_ratio())
        && to_a.handshakes > 0
        && to_b.handshakes > 0;
    let rate = BYTES as f64 * 8.0 / took.as_secs_f64() / 1e6;
    Ok(Check::new(
        name,
        pass,
        format!(
            "first echo {} after {:.1} s; 10 MiB {} in {:.1} s ({rate:.1} Mbit/s, limit {} s); \
             towards the second member {} datagrams, {} dropped ({:.1} %), delay {} ms; \
             back {} datagrams, none dropped; handshake messages relayed {}/{}",
            if echo.ok { "answered" } else { "failed" },
            first_echo.as_secs_f64(),
            if sent.ok {
                "arrived intact (SHA-256 matches)".to_owned()
            } else {
                format!("FAILED: {}", sent.detail)
            },
            took.as_secs_f64(),
            TRANSFER_LIMIT.as_secs(),
            to_b.received,
            to_b.dropped,
            to_b.loss_ratio() * 100.0,
            DELAY.as_millis(),
            to_a.received,
            to_b.handshakes,
            to_a.handshakes,
        ),
    ))
}
