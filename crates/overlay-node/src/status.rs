//! `overlay-node status` and `down`: read a running node through its UAPI
//! socket and its state dir; stop it by the PID it recorded.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::state::{StateDir, StateError};
use crate::uapi;

/// One peer as `status` shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PeerStatus {
    /// Member name (from the netmap).
    pub name: String,
    /// Role (from the netmap).
    pub role: String,
    /// Public key, base64.
    pub public_key: String,
    /// Current endpoint.
    pub endpoint: Option<String>,
    /// Allowed IPs.
    pub allowed_ips: Vec<String>,
    /// Unix time of the latest handshake, if any.
    pub latest_handshake: Option<u64>,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
}

/// The whole status.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Interface name.
    pub interface: String,
    /// Enclave.
    pub enclave: String,
    /// Member name.
    pub member: String,
    /// Overlay address.
    pub address: String,
    /// UDP port.
    pub listen_port: u16,
    /// Netmap version on disk.
    pub netmap_version: Option<u64>,
    /// Whether the node process answers on its UAPI socket.
    pub running: bool,
    /// Peers.
    pub peers: Vec<PeerStatus>,
}

/// Parses a UAPI `get` answer into peers keyed by hex public key.
pub fn parse_get(text: &str) -> (Option<u16>, Vec<HashMap<String, Vec<String>>>) {
    let mut port = None;
    let mut peers: Vec<HashMap<String, Vec<String>>> = Vec::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match k {
            "listen_port" => port = v.parse().ok(),
            "public_key" => peers.push(HashMap::from([(k.to_owned(), vec![v.to_owned()])])),
            _ => {
                if let Some(p) = peers.last_mut() {
                    p.entry(k.to_owned()).or_default().push(v.to_owned());
                }
            }
        }
    }
    (port, peers)
}

fn hex_to_b64(h: &str) -> String {
    use base64::Engine;
    let bytes: Vec<u8> = (0..h.len() / 2)
        .filter_map(|i| u8::from_str_radix(h.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Collects the status of the node whose state dir is `dir`.
///
/// # Errors
/// [`StateError`] if the state dir holds no membership.
pub async fn collect(dir: &Path) -> Result<Status, StateError> {
    let state = StateDir::open(dir)?;
    let (_, _, m) = state.load()?;
    let netmap = state.load_netmap().ok().flatten();
    let names: HashMap<String, (String, String)> = netmap
        .as_ref()
        .map(|n| {
            n.peers
                .iter()
                .map(|p| {
                    (
                        p.public_key.to_string(),
                        (p.name.to_string(), p.role.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let live = uapi::query(&m.interface).await.ok();
    let (port, raw) = live.as_deref().map(parse_get).unwrap_or((None, Vec::new()));
    let first =
        |p: &HashMap<String, Vec<String>>, k: &str| p.get(k).and_then(|v| v.first().cloned());
    let mut peers: Vec<PeerStatus> = raw
        .iter()
        .map(|p| {
            let key = hex_to_b64(&first(p, "public_key").unwrap_or_default());
            let (name, role) = names
                .get(&key)
                .cloned()
                .unwrap_or_else(|| ("?".into(), "?".into()));
            let sec: u64 = first(p, "last_handshake_time_sec")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            PeerStatus {
                name,
                role,
                public_key: key,
                endpoint: first(p, "endpoint"),
                allowed_ips: p.get("allowed_ip").cloned().unwrap_or_default(),
                latest_handshake: (sec > 0).then_some(sec),
                rx_bytes: first(p, "rx_bytes")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
                tx_bytes: first(p, "tx_bytes")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
            }
        })
        .collect();
    peers.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Status {
        interface: m.interface,
        enclave: m.enclave.to_string(),
        member: m.member.to_string(),
        address: m.address.to_string(),
        listen_port: port.unwrap_or(m.listen_port),
        netmap_version: netmap.map(|n| n.version),
        running: live.is_some(),
        peers,
    })
}

fn ago(unix: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let s = now.saturating_sub(unix);
    match s {
        0..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        _ => format!("{} h ago", s / 3600),
    }
}

/// Renders the status like `wg show`.
pub fn render(s: &Status) -> String {
    let mut out = format!(
        "interface: {}{}\n  enclave: {}\n  member: {} ({})\n  listening port: {}\n  netmap version: {}\n",
        s.interface,
        if s.running { "" } else { " (not running)" },
        s.enclave,
        s.member,
        s.address,
        s.listen_port,
        s.netmap_version.map_or_else(|| "-".into(), |v| v.to_string()),
    );
    for p in &s.peers {
        out.push_str(&format!(
            "\npeer: {} ({})\n  public key: {}\n  endpoint: {}\n  allowed ips: {}\n  latest handshake: {}\n  transfer: {} B received, {} B sent\n",
            p.name,
            p.role,
            p.public_key,
            p.endpoint.as_deref().unwrap_or("(none)"),
            p.allowed_ips.join(", "),
            p.latest_handshake.map_or_else(|| "(none)".into(), ago),
            p.rx_bytes,
            p.tx_bytes
        ));
    }
    out
}

/// Stops the node running from `dir` (SIGTERM to the PID it recorded) and
/// waits up to 10 s for it to exit.
///
/// # Errors
/// A message when no node runs from that state dir or it does not stop.
pub async fn down(dir: &Path) -> Result<String, String> {
    let pid_file = dir.join("node.pid");
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| format!("no node is running from {}", dir.display()))?;
    let proc_dir = format!("/proc/{pid}");
    let cmdline = std::fs::read(format!("{proc_dir}/cmdline")).unwrap_or_default();
    if !String::from_utf8_lossy(&cmdline).contains("overlay-node") {
        let _ = std::fs::remove_file(&pid_file);
        return Err(format!(
            "no node is running from {} (stale PID file removed)",
            dir.display()
        ));
    }
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        return Err(format!("could not signal PID {pid}"));
    }
    for _ in 0..100 {
        if !Path::new(&proc_dir).exists() {
            return Ok(format!("stopped the node (PID {pid})\n"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("PID {pid} did not stop within 10 s"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_uapi_get() {
        let (port, peers) = parse_get("listen_port=5\npublic_key=ab\nallowed_ip=a\nallowed_ip=b\nrx_bytes=3\npublic_key=cd\nerrno=0\n\n");
        assert_eq!(port, Some(5));
        assert_eq!(peers.len(), 2);
        assert_eq!(peers[0]["allowed_ip"], vec!["a", "b"]);
        assert_eq!(hex_to_b64("ab"), "qw==");
    }
}
