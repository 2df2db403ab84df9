//! Prometheus metrics of a node (`up --metrics-listen ADDR`): bytes and
//! handshakes per peer, drops by reason, netmap version. A few lines of the
//! text format over a minimal HTTP responder: the node needs no web stack.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::tunnel::{Counters, PeerInfo};

/// Renders the metrics in the Prometheus text format.
pub fn render(peers: &[PeerInfo], c: &Counters, version: u64) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# TYPE cordon_node_netmap_version gauge\ncordon_node_netmap_version {version}"
    );
    let _ = writeln!(
        s,
        "# TYPE cordon_node_peers gauge\ncordon_node_peers {}",
        peers.len()
    );
    let _ = writeln!(s, "# TYPE cordon_node_peer_rx_bytes counter");
    for p in peers {
        let _ = writeln!(
            s,
            "cordon_node_peer_rx_bytes{{peer=\"{}\"}} {}",
            p.name, p.rx_bytes
        );
    }
    let _ = writeln!(s, "# TYPE cordon_node_peer_tx_bytes counter");
    for p in peers {
        let _ = writeln!(
            s,
            "cordon_node_peer_tx_bytes{{peer=\"{}\"}} {}",
            p.name, p.tx_bytes
        );
    }
    let _ = writeln!(s, "# TYPE cordon_node_peer_last_handshake_seconds gauge");
    for p in peers {
        let t = p
            .last_handshake
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        let _ = writeln!(
            s,
            "cordon_node_peer_last_handshake_seconds{{peer=\"{}\"}} {t}",
            p.name
        );
    }
    let _ = writeln!(s, "# TYPE cordon_node_dropped_total counter");
    for (reason, n) in [
        ("no_route", c.no_route),
        ("not_ipv4", c.not_ipv4),
        ("oversized", c.oversized),
        ("spoofed_source", c.spoofed_source),
        ("malformed", c.malformed),
        ("unknown_peer", c.unknown_peer),
        ("rejected", c.rejected),
        ("handshake_flood", c.handshake_flood),
    ] {
        let _ = writeln!(s, "cordon_node_dropped_total{{reason=\"{reason}\"}} {n}");
    }
    let _ = writeln!(
        s,
        "# TYPE cordon_node_cookies_sent_total counter\ncordon_node_cookies_sent_total {}",
        c.cookies_sent
    );
    s
}

/// Serves `GET /metrics` on `addr` until `stop`.
///
/// # Errors
/// I/O errors binding the listener.
pub async fn serve(
    addr: SocketAddr,
    snapshot: impl Fn() -> String + Send + Sync + 'static,
    stop: CancellationToken,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(addr).await?;
    let snapshot = std::sync::Arc::new(snapshot);
    Ok(tokio::spawn(async move {
        loop {
            let (mut stream, _) = tokio::select! {
                () = stop.cancelled() => return,
                r = listener.accept() => match r { Ok(s) => s, Err(_) => continue },
            };
            let snapshot = snapshot.clone();
            tokio::spawn(async move {
                // Read the request head (bounded in size and time), answer, close.
                let mut head = [0u8; 2048];
                let read =
                    tokio::time::timeout(Duration::from_secs(5), stream.read(&mut head)).await;
                let Ok(Ok(n)) = read else { return };
                let ok = head[..n].starts_with(b"GET /metrics ");
                let (status, body) = if ok {
                    ("200 OK", snapshot())
                } else {
                    ("404 Not Found", String::new())
                };
                let reply = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes()).await;
            });
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters() {
        let c = Counters {
            spoofed_source: 3,
            ..Default::default()
        };
        let text = render(&[], &c, 7);
        assert!(text.contains("cordon_node_netmap_version 7\n"));
        assert!(text.contains("cordon_node_dropped_total{reason=\"spoofed_source\"} 3\n"));
        assert!(text.contains("cordon_node_peers 0\n"));
    }
}
