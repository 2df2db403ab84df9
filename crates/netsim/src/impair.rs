//! A user-space stand-in for `tc netem` on the underlay. This machine's
//! kernel has no `sch_netem` and no nftables or iptables to drop a share of
//! packets, so the impairment sits in a UDP relay that two WireGuard nodes
//! talk through: each node is told (`overlay-node up --endpoint`) that its
//! public endpoint is the relay's *face* for it, and every datagram between
//! them crosses the relay, where it is dropped with probability `loss` or
//! held for `delay` — per direction, like a netem qdisc on one interface's
//! egress.
//!
//! A datagram from node `j` to face `i` leaves through face `j` towards
//! node `i`, so each node sees the other at the one endpoint the controller
//! gave it, also when it roams to an authenticated packet's source.
//! Datagrams from anyone but the expected node are dropped and counted.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use rand::{Rng, SeedableRng};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Datagrams one direction may hold in its delay line (netem's default
/// `limit`); more are dropped and counted as overflow.
pub const QUEUE_LIMIT: usize = 1000;

/// What one direction does to the datagrams crossing it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Impairment {
    /// Share of datagrams dropped, 0.0–1.0.
    pub loss: f64,
    /// How long every other datagram is held.
    pub delay: Duration,
}

impl Impairment {
    /// Passes everything at once.
    pub const NONE: Self = Self {
        loss: 0.0,
        delay: Duration::ZERO,
    };
}

/// What one direction saw.
#[derive(Debug, Default)]
pub struct DirectionStats {
    /// Datagrams from the expected sender.
    pub received: AtomicU64,
    /// Of those, dropped by the loss draw.
    pub dropped: AtomicU64,
    /// Of those, dropped because the delay line was full.
    pub overflow: AtomicU64,
    /// Datagrams from anyone else (dropped).
    pub strangers: AtomicU64,
    /// WireGuard handshake initiations and responses forwarded.
    pub handshakes: AtomicU64,
}

/// A snapshot of [`DirectionStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// See [`DirectionStats::received`].
    pub received: u64,
    /// See [`DirectionStats::dropped`].
    pub dropped: u64,
    /// See [`DirectionStats::overflow`].
    pub overflow: u64,
    /// See [`DirectionStats::strangers`].
    pub strangers: u64,
    /// See [`DirectionStats::handshakes`].
    pub handshakes: u64,
}

impl Counts {
    /// The share of received datagrams the loss draw dropped.
    pub fn loss_ratio(&self) -> f64 {
        if self.received == 0 {
            0.0
        } else {
            self.dropped as f64 / self.received as f64
        }
    }
}

impl DirectionStats {
    fn snapshot(&self) -> Counts {
        Counts {
            received: self.received.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            overflow: self.overflow.load(Ordering::Relaxed),
            strangers: self.strangers.load(Ordering::Relaxed),
            handshakes: self.handshakes.load(Ordering::Relaxed),
        }
    }
}

/// The running relay; dropping it stops it.
pub struct Relay {
    /// Face `i` is the endpoint node `i` must advertise.
    pub faces: [SocketAddrV4; 2],
    stats: [Arc<DirectionStats>; 2],
    tasks: Vec<JoinHandle<()>>,
}

impl Relay {
    /// Binds both faces on `bind` (ephemeral ports), ready for the nodes
    /// whose real endpoints are set with [`Relay::connect`].
    ///
    /// # Errors
    /// When a socket cannot be bound.
    pub async fn bind(bind: Ipv4Addr) -> Result<(Self, [Arc<UdpSocket>; 2])> {
        let a = Arc::new(UdpSocket::bind((bind, 0)).await.context("relay face 0")?);
        let b = Arc::new(UdpSocket::bind((bind, 0)).await.context("relay face 1")?);
        let face = |s: &UdpSocket| -> Result<SocketAddrV4> {
            match s.local_addr()? {
                std::net::SocketAddr::V4(v) => Ok(v),
                std::net::SocketAddr::V6(_) => anyhow::bail!("relay bound to IPv6"),
            }
        };
        let faces = [face(&a)?, face(&b)?];
        Ok((
            Self {
                faces,
                stats: Default::default(),
                tasks: vec![],
            },
            [a, b],
        ))
    }

    /// Starts relaying between nodes at `real[0]` and `real[1]`;
    /// `impair[i]` applies to datagrams travelling *to* node `i`. `seed`
    /// makes the loss draws repeatable.
    pub fn connect(
        &mut self,
        sockets: [Arc<UdpSocket>; 2],
        real: [SocketAddrV4; 2],
        impair: [Impairment; 2],
        seed: u64,
    ) {
        for to in 0..2 {
            let from = 1 - to;
            let (tx, rx) = mpsc::channel(QUEUE_LIMIT);
            let dir = Direction {
                inbound: sockets[to].clone(),
                sender: real[from],
                impair: impair[to],
                stats: self.stats[to].clone(),
                rng: rand::rngs::StdRng::seed_from_u64(seed ^ to as u64),
            };
            self.tasks.push(tokio::spawn(dir.run(tx)));
            self.tasks
                .push(tokio::spawn(deliver(rx, sockets[from].clone(), real[to])));
        }
    }

    /// What each direction saw so far: `[to node 0, to node 1]`.
    pub fn counts(&self) -> [Counts; 2] {
        [self.stats[0].snapshot(), self.stats[1].snapshot()]
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// One direction's intake: draws the loss and schedules the rest.
struct Direction {
    inbound: Arc<UdpSocket>,
    sender: SocketAddrV4,
    impair: Impairment,
    stats: Arc<DirectionStats>,
    rng: rand::rngs::StdRng,
}

impl Direction {
    async fn run(mut self, tx: mpsc::Sender<(Instant, Vec<u8>)>) {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, from)) = self.inbound.recv_from(&mut buf).await {
            let s = &self.stats;
            if from != std::net::SocketAddr::V4(self.sender) {
                s.strangers.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            s.received.fetch_add(1, Ordering::Relaxed);
            if self.impair.loss > 0.0 && self.rng.gen_bool(self.impair.loss.min(1.0)) {
                s.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            // WireGuard message types 1 and 2: handshake initiation and
            // response (little-endian u32 type, first byte).
            if n > 0 && matches!(buf[0], 1 | 2) {
                s.handshakes.fetch_add(1, Ordering::Relaxed);
            }
            let at = Instant::now() + self.impair.delay;
            if tx.try_send((at, buf[..n].to_vec())).is_err() {
                s.overflow.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// One direction's delay line: a constant delay keeps the queue in
/// deadline order, so it is a FIFO.
async fn deliver(
    mut rx: mpsc::Receiver<(Instant, Vec<u8>)>,
    out: Arc<UdpSocket>,
    to: SocketAddrV4,
) {
    while let Some((at, pkt)) = rx.recv().await {
        tokio::time::sleep_until(at).await;
        let _ = out.send_to(&pkt, to).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pair() -> Result<(Relay, UdpSocket, UdpSocket)> {
        let lo = Ipv4Addr::LOCALHOST;
        let n0 = UdpSocket::bind((lo, 0)).await?;
        let n1 = UdpSocket::bind((lo, 0)).await?;
        let v4 = |s: &UdpSocket| -> Result<SocketAddrV4> {
            match s.local_addr()? {
                std::net::SocketAddr::V4(v) => Ok(v),
                std::net::SocketAddr::V6(_) => anyhow::bail!("v6"),
            }
        };
        let real = [v4(&n0)?, v4(&n1)?];
        let (mut relay, socks) = Relay::bind(lo).await?;
        relay.connect(
            socks,
            real,
            [
                Impairment::NONE,
                Impairment {
                    loss: 0.1,
                    delay: Duration::from_millis(50),
                },
            ],
            7,
        );
        Ok((relay, n0, n1))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn drops_about_the_share_asked_delays_the_rest_and_keeps_faces_stable() -> Result<()> {
        let (relay, n0, n1) = pair().await?;
        // Node 0 sends to node 1's face; what arrives comes from node 0's face.
        let face0 = std::net::SocketAddr::V4(relay.faces[0]);
        let reader = tokio::spawn(async move {
            let mut got = vec![];
            let mut buf = [0u8; 16];
            while let Ok(Ok((n, from))) =
                tokio::time::timeout(Duration::from_millis(500), n1.recv_from(&mut buf)).await
            {
                if from != face0 || n != 4 {
                    break;
                }
                got.push(u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]));
            }
            (got, n1)
        });
        let t0 = std::time::Instant::now();
        let sent = 1000u32;
        for i in 0..sent {
            n0.send_to(&i.to_be_bytes(), relay.faces[1]).await?;
            if i % 20 == 0 {
                // Paced, so no socket buffer overflows on the way.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        let (got, n1) = reader.await?;
        let mut buf = [0u8; 16];
        assert!(
            t0.elapsed() >= Duration::from_millis(50),
            "held for the delay"
        );
        let c = relay.counts()[1];
        assert_eq!(c.received, u64::from(sent));
        assert_eq!(c.dropped + got.len() as u64, u64::from(sent));
        assert!((70..=130).contains(&c.dropped), "dropped {}", c.dropped);
        // Order is kept (a FIFO delay line) and nothing is duplicated.
        assert!(got.windows(2).all(|w| w[0] < w[1]));

        // The other direction is untouched, and only the expected sender
        // is relayed.
        n1.send_to(b"back", relay.faces[0]).await?;
        let (n, from) = n0.recv_from(&mut buf).await?;
        assert_eq!(
            (&buf[..n], from),
            (&b"back"[..], std::net::SocketAddr::V4(relay.faces[1]))
        );
        let stranger = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        stranger.send_to(b"x", relay.faces[0]).await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(relay.counts()[0].strangers, 1);
        assert_eq!(relay.counts()[0].received, 1);
        Ok(())
    }

    #[test]
    fn loss_ratio_of_nothing_is_zero() {
        assert!(Counts::default().loss_ratio().abs() < f64::EPSILON);
        let c = Counts {
            received: 10,
            dropped: 1,
            ..Counts::default()
        };
        assert!((c.loss_ratio() - 0.1).abs() < 1e-9);
    }
}
