//! `overlay-node up`: join (or resume from the state dir), bring the
//! interface up with the last netmap, then follow the controller.

use std::net::SocketAddr;
use std::path::PathBuf;

use boringtun::x25519::{PublicKey as XPublic, StaticSecret};
use control_client::{Client, Trust};
use proto::PublicKey;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::control::{self, ControlError, Update};
use crate::device::{Device, DeviceConfig};
use crate::state::{Membership, StateDir, StateError};
use crate::tunnel::PeerTable;
use crate::uapi;

/// Default WireGuard port.
pub const DEFAULT_PORT: u16 = 51820;

/// What `up` was asked to do.
#[derive(Debug, Clone)]
pub struct UpConfig {
    /// A join token (first start), or `None` to resume from `state_dir`.
    pub token: Option<String>,
    /// State dir (default `/var/lib/cordon/<enclave>`).
    pub state_dir: Option<PathBuf>,
    /// Interface name (default `cn-<enclave>`, at most 15 bytes).
    pub interface: Option<String>,
    /// UDP port.
    pub listen_port: u16,
    /// Underlay endpoint to tell the controller.
    pub endpoint: Option<SocketAddr>,
    /// Where to serve Prometheus metrics.
    pub metrics_listen: Option<SocketAddr>,
}

/// Why `up` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum UpError {
    /// Neither a token nor a state dir.
    #[error("give --token TOKEN to join, or --state-dir DIR to resume")]
    Usage,
    /// A token was given for a state dir that already holds a membership.
    #[error("{0} already holds a membership: resume with --state-dir alone, or `overlay-node down` and remove it first")]
    AlreadyJoined(PathBuf),
    /// State dir problem.
    #[error(transparent)]
    State(#[from] StateError),
    /// Controller problem.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// The interface or socket could not be created.
    #[error("cannot create the interface or socket (are you root?): {0}")]
    Device(#[from] std::io::Error),
    /// The controller removed this member; the state dir was cleared.
    #[error("this member was removed from the enclave; its node token and state were deleted")]
    Revoked,
}

/// The interface name for an enclave: `cn-<enclave>`, cut to 15 bytes.
pub fn default_interface(enclave: &str) -> String {
    let mut s = format!("cn-{enclave}");
    s.truncate(15);
    s.trim_end_matches('-').to_owned()
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Runs the node until `stop` fires or the member is revoked.
///
/// # Errors
/// [`UpError`].
pub async fn up(cfg: UpConfig, stop: CancellationToken) -> Result<(), UpError> {
    let (state, key, node_token, m) = match &cfg.token {
        Some(token) => {
            if let Some(dir) = &cfg.state_dir {
                if StateDir::open(dir)?.is_joined() {
                    return Err(UpError::AlreadyJoined(dir.clone()));
                }
            }
            let key = StaticSecret::random_from_rng(rand::rngs::OsRng);
            let public = PublicKey::from_bytes(XPublic::from(&key).to_bytes());
            let (parsed, resp) = control::join(token, public, cfg.endpoint, hostname()).await?;
            let dir = cfg
                .state_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("/var/lib/cordon").join(resp.enclave.as_str()));
            let state = StateDir::open(&dir)?;
            let m = Membership {
                controller: parsed.controller,
                ca_sha256: parsed.ca_sha256,
                enclave: resp.enclave.clone(),
                member: resp.member.clone(),
                address: resp.address,
                cidr: resp.netmap.cidr,
                interface: cfg
                    .interface
                    .clone()
                    .unwrap_or_else(|| default_interface(resp.enclave.as_str())),
                listen_port: cfg.listen_port,
                endpoint: cfg.endpoint.map(|e| e.to_string()),
            };
            state.save_join(&key, &resp.node_token, &m)?;
            if let Some(k) = &resp.substitute_key {
                state.save_substitute_key(k)?;
            }
            state.save_netmap(&resp.netmap)?;
            (state, key, resp.node_token, m)
        }
        None => {
            let dir = cfg.state_dir.clone().ok_or(UpError::Usage)?;
            let state = StateDir::open(&dir)?;
            let (key, token, m) = state.load()?;
            (state, key, token, m)
        }
    };
    let netmap = match state.load_netmap() {
        Ok(n) => n,
        Err(e) => {
            warn!(error = %e, "ignoring the saved netmap; waiting for the controller's");
            None
        }
    };
    let mut table = PeerTable::new(key, m.address.addr());
    if let Some(n) = &netmap {
        table.apply_netmap(&crate::test_hook::with_extra_peers(n));
    }
    let run = stop.child_token();
    let device = Device::start(
        &DeviceConfig {
            interface: m.interface.clone(),
            address: m.address.addr(),
            cidr: m.cidr,
            listen_port: m.listen_port,
        },
        table,
        &run,
    )?;
    let pid_file = state.path().join("node.pid");
    let _ = std::fs::write(&pid_file, std::process::id().to_string());
    let device = std::sync::Arc::new(device);
    let uapi_task = {
        let d = device.clone();
        uapi::serve(
            &m.interface,
            device.local_addr.port(),
            move || d.snapshot().0,
            run.clone(),
        )?
    };
    let metrics_task = match cfg.metrics_listen {
        Some(addr) => {
            let d = device.clone();
            let render = move || {
                let (peers, counters, version) = d.snapshot();
                crate::metrics::render(&peers, &counters, version)
            };
            Some(crate::metrics::serve(addr, render, run.clone()).await?)
        }
        None => None,
    };
    info!(enclave = %m.enclave, member = %m.member, address = %m.address, interface = %m.interface,
          port = device.local_addr.port(), peers = netmap.as_ref().map_or(0, |n| n.peers.len()), "node up");
    println!(
        "{} is up: {} as {} in enclave {}, UDP port {}",
        m.interface,
        m.address,
        m.member,
        m.enclave,
        device.local_addr.port()
    );

    let client = Client::with_trust(
        &m.controller,
        Trust::Pinned(m.ca_sha256.clone()),
        Some(node_token),
    )
    .map_err(ControlError::from)?;
    let (tx, mut rx) = mpsc::channel(4);
    let follower = tokio::spawn(control::follow(
        client,
        netmap.map_or(0, |n| n.version),
        tx,
        run.clone(),
    ));
    let mut result = Ok(());
    loop {
        tokio::select! {
            () = run.cancelled() => break,
            u = rx.recv() => match u {
                Some(Update::Netmap(map)) => {
                    device.apply_netmap(&crate::test_hook::with_extra_peers(&map));
                    if let Err(e) = state.save_netmap(&map) {
                        warn!(error = %e, "could not save the netmap");
                    }
                    info!(version = map.version, peers = map.peers.len(), "netmap applied");
                }
                Some(Update::Revoked) => {
                    warn!("the controller removed this member: tearing down");
                    state.forget();
                    result = Err(UpError::Revoked);
                    break;
                }
                None => break,
            },
        }
    }
    run.cancel();
    let _ = follower.await;
    let _ = uapi_task.await;
    if let Some(t) = metrics_task {
        let _ = t.await;
    }
    if let Ok(d) = std::sync::Arc::try_unwrap(device) {
        d.join().await;
    }
    let _ = std::fs::remove_file(pid_file);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_fit_ifnamsiz() {
        assert_eq!(default_interface("a"), "cn-a");
        assert_eq!(default_interface("project-alpha-long"), "cn-project-alph");
        assert!(default_interface("x".repeat(63).as_str()).len() <= 15);
        assert_eq!(default_interface("abcdefghijk-mn"), "cn-abcdefghijk");
    }
}
