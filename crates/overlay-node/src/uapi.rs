//! The WireGuard cross-platform UAPI (`get` only) on
//! `/var/run/wireguard/<interface>.sock`, so `wg show <interface>` reads a
//! Cordon interface. The private key is left out of `get` on purpose: the
//! state dir holds it, and nothing that reads status needs it. `set` is
//! refused: the controller is the only source of configuration.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

use crate::tunnel::PeerInfo;

/// Directory of UAPI sockets.
pub const DIR: &str = "/var/run/wireguard";

/// The socket path for an interface.
pub fn socket_path(interface: &str) -> PathBuf {
    Path::new(DIR).join(format!("{interface}.sock"))
}

/// Renders the answer to `get=1` (without the private key).
pub fn render_get(listen_port: u16, peers: &[PeerInfo]) -> String {
    let mut s = format!("listen_port={listen_port}\n");
    for p in peers {
        let _ = writeln!(s, "public_key={}", hex(p.public_key.as_bytes()));
        let _ = writeln!(s, "preshared_key={}", hex(&p.preshared_key));
        if let Some(ep) = p.endpoint {
            let _ = writeln!(s, "endpoint={ep}");
        }
        // Absolute time, as `wg` expects (boringtun-cli reports an age here,
        // which `wg show` prints as "56 years ago").
        let (sec, nsec) = p
            .last_handshake
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or((0, 0), |d| (d.as_secs(), d.subsec_nanos()));
        let _ = writeln!(
            s,
            "last_handshake_time_sec={sec}\nlast_handshake_time_nsec={nsec}"
        );
        let _ = writeln!(s, "rx_bytes={}\ntx_bytes={}", p.rx_bytes, p.tx_bytes);
        let _ = writeln!(s, "persistent_keepalive_interval=25");
        for net in &p.allowed_ips {
            let _ = writeln!(s, "allowed_ip={net}");
        }
        s.push_str("protocol_version=1\n");
    }
    s.push_str("errno=0\n\n");
    s
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .fold(String::with_capacity(b.len() * 2), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}

/// Serves the socket until `stop`; `snapshot` gives the current peers.
///
/// # Errors
/// I/O errors creating the socket.
pub fn serve(
    interface: &str,
    listen_port: u16,
    snapshot: impl Fn() -> Vec<PeerInfo> + Send + Sync + 'static,
    stop: CancellationToken,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(DIR)?;
    let path = socket_path(interface);
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    let snapshot = std::sync::Arc::new(snapshot);
    Ok(tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                () = stop.cancelled() => break,
                r = listener.accept() => match r { Ok((s, _)) => s, Err(_) => continue },
            };
            let snapshot = snapshot.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    answer(stream, listen_port, &*snapshot),
                )
                .await;
            });
        }
        let _ = std::fs::remove_file(&path);
    }))
}

async fn answer(
    stream: UnixStream,
    listen_port: u16,
    snapshot: &(dyn Fn() -> Vec<PeerInfo> + Send + Sync),
) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    let Some(first) = lines.next_line().await? else {
        return Ok(());
    };
    // Read the rest of the request (up to the blank line).
    while let Some(l) = lines.next_line().await? {
        if l.is_empty() {
            break;
        }
    }
    let reply = if first == "get=1" {
        render_get(listen_port, &snapshot())
    } else {
        // EPERM: configuration comes from the controller only.
        "errno=1\n\n".to_owned()
    };
    w.write_all(reply.as_bytes()).await
}

/// Reads `get=1` from a running node's socket.
///
/// # Errors
/// I/O errors (no node running on that interface).
pub async fn query(interface: &str) -> std::io::Result<String> {
    use tokio::io::AsyncReadExt;
    let mut s = UnixStream::connect(socket_path(interface)).await?;
    s.write_all(b"get=1\n\n").await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{Name, PublicKey, Role};

    #[test]
    fn get_has_the_fields_wg_reads_and_no_private_key() {
        let p = PeerInfo {
            name: Name::new("b").unwrap_or_else(|_| unreachable!()),
            role: Role::Asset,
            public_key: PublicKey::from_bytes([0xab; 32]),
            endpoint: Some(
                "198.18.0.2:51820"
                    .parse()
                    .unwrap_or_else(|_| unreachable!()),
            ),
            allowed_ips: vec!["100.64.0.2/32".parse().unwrap_or_else(|_| unreachable!())],
            last_handshake: Some(UNIX_EPOCH + std::time::Duration::new(1_800_000_000, 5)),
            rx_bytes: 10,
            tx_bytes: 20,
            preshared_key: [1; 32],
        };
        let s = render_get(51820, &[p]);
        assert!(s.starts_with("listen_port=51820\npublic_key=abab"));
        assert!(s.contains("endpoint=198.18.0.2:51820\n"));
        assert!(s.contains("last_handshake_time_sec=1800000000\nlast_handshake_time_nsec=5\n"));
        assert!(s.contains("allowed_ip=100.64.0.2/32\n"));
        assert!(s.ends_with("errno=0\n\n"));
        assert!(!s.contains("private_key"));
    }
}
