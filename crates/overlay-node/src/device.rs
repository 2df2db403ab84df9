//! The async shell around the peer table: a TUN interface, a UDP socket and
//! three loops (TUN → peers → UDP, UDP → peers → TUN, timers). The table
//! does the thinking; these loops only move bytes.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;
use proto::Netmap;
use tokio::net::UdpSocket;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::tunnel::outbox::Dest;
use crate::tunnel::{Counters, Outbox, PeerInfo, PeerTable};

/// MTU of the overlay: 1500 minus IPv4 (20), UDP (8) and WireGuard (32) overhead,
/// with room to spare for an IPv6 underlay.
pub const MTU: u16 = 1420;
/// Largest datagram or packet handled (the UDP maximum).
const BUF: usize = 65_536;
/// Socket buffer size asked for (the kernel may cap it at rmem_max).
const SOCKET_BUFFER: usize = 4 << 20;

/// What the device needs to come up.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    /// Interface name.
    pub interface: String,
    /// The member's address.
    pub address: Ipv4Addr,
    /// The enclave CIDR, routed to the interface.
    pub cidr: Ipv4Net,
    /// UDP port to listen on (0: any).
    pub listen_port: u16,
}

struct Core {
    table: PeerTable,
    scratch: Vec<u8>,
}

/// A running device.
pub struct Device {
    core: Arc<Mutex<Core>>,
    tasks: JoinSet<()>,
    /// The bound UDP address.
    pub local_addr: SocketAddr,
    /// The interface name.
    pub interface: String,
}

fn lock(core: &Mutex<Core>) -> MutexGuard<'_, Core> {
    core.lock().unwrap_or_else(|p| p.into_inner())
}

fn udp_socket(port: u16) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    // Large buffers: with the default ~200 KB a burst drops datagrams.
    let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(SOCKET_BUFFER);
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)).into())?;
    UdpSocket::from_std(s.into())
}

async fn flush(out: &mut Outbox, udp: &UdpSocket, tun: &tun_rs::AsyncDevice) {
    for (dest, bytes) in out.iter() {
        let res = match dest {
            Dest::Network(to) => udp.send_to(bytes, to).await.map(|_| ()),
            Dest::Tunnel => tun.send(bytes).await.map(|_| ()),
        };
        if let Err(e) = res {
            debug!(error = %e, ?dest, "send failed");
        }
    }
    out.clear();
}

impl Device {
    /// Creates the interface and socket and starts the loops.
    ///
    /// # Errors
    /// I/O errors creating the TUN device (needs CAP_NET_ADMIN) or the socket.
    pub fn start(
        cfg: &DeviceConfig,
        table: PeerTable,
        stop: &CancellationToken,
    ) -> std::io::Result<Self> {
        let tun = tun_rs::DeviceBuilder::new()
            .name(&cfg.interface)
            .ipv4(cfg.address, cfg.cidr.prefix_len(), None)
            .mtu(MTU)
            .build_async()?;
        let tun = Arc::new(tun);
        let udp = Arc::new(udp_socket(cfg.listen_port)?);
        let local_addr = udp.local_addr()?;
        let core = Arc::new(Mutex::new(Core {
            table,
            scratch: vec![0u8; BUF],
        }));
        let mut tasks = JoinSet::new();

        // TUN → peers → UDP.
        {
            let (core, tun, udp, stop) = (core.clone(), tun.clone(), udp.clone(), stop.clone());
            tasks.spawn(async move {
                let mut buf = vec![0u8; BUF];
                let mut out = Outbox::default();
                loop {
                    let n = tokio::select! {
                        () = stop.cancelled() => return,
                        r = tun.recv(&mut buf) => match r {
                            Ok(n) => n,
                            Err(e) => { warn!(error = %e, "TUN read failed"); return; }
                        },
                    };
                    {
                        let mut c = lock(&core);
                        let Core { table, scratch } = &mut *c;
                        table.from_tunnel(&buf[..n], scratch, &mut out);
                    }
                    flush(&mut out, &udp, &tun).await;
                }
            });
        }
        // UDP → peers → TUN.
        {
            let (core, tun, udp, stop) = (core.clone(), tun.clone(), udp.clone(), stop.clone());
            tasks.spawn(async move {
                let mut buf = vec![0u8; BUF];
                let mut out = Outbox::default();
                loop {
                    let (n, from) = tokio::select! {
                        () = stop.cancelled() => return,
                        r = udp.recv_from(&mut buf) => match r {
                            Ok(x) => x,
                            // ICMP errors from the underlay surface here: not fatal.
                            Err(e) => { debug!(error = %e, "UDP read error"); continue; }
                        },
                    };
                    {
                        let mut c = lock(&core);
                        let Core { table, scratch } = &mut *c;
                        table.from_network(&buf[..n], from, Instant::now(), scratch, &mut out);
                    }
                    flush(&mut out, &udp, &tun).await;
                }
            });
        }
        // Timers: WireGuard's every 250 ms, the handshake limiter every second.
        {
            let (core, tun, udp, stop) = (core.clone(), tun.clone(), udp.clone(), stop.clone());
            tasks.spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(250));
                let mut out = Outbox::default();
                let mut n = 0u32;
                loop {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        _ = tick.tick() => {}
                    }
                    {
                        let mut c = lock(&core);
                        let Core { table, scratch } = &mut *c;
                        table.tick(Instant::now(), scratch, &mut out);
                        n = n.wrapping_add(1);
                        if n % 4 == 0 {
                            table.reset_rate();
                        }
                    }
                    flush(&mut out, &udp, &tun).await;
                }
            });
        }
        Ok(Self {
            core,
            tasks,
            local_addr,
            interface: cfg.interface.clone(),
        })
    }

    /// Applies a new netmap without disturbing unchanged peers.
    pub fn apply_netmap(&self, netmap: &Netmap) {
        lock(&self.core).table.apply_netmap(netmap);
    }

    /// Peers and counters right now.
    pub fn snapshot(&self) -> (Vec<PeerInfo>, Counters, u64) {
        let c = lock(&self.core);
        (c.table.peers(), c.table.counters.clone(), c.table.version())
    }

    /// Waits for the loops to stop (after the stop token fired); the
    /// interface disappears when the last handle to it is dropped.
    pub async fn join(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}
