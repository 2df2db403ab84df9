//! The async shell around the peer table: a TUN interface, a UDP socket and
//! three loops (TUN → peers → UDP, UDP → peers → TUN, timers). The table
//! does the thinking; these loops only move bytes, in batches: the TUN
//! device hands over TCP super-packets (offload) split into a batch of
//! segments, the table encrypts the batch under one lock, and runs of equal
//! datagrams to one peer leave in one `sendmsg` (UDP segmentation offload);
//! the way back reads several coalesced datagram groups per system call
//! (UDP receive offload) and writes the decrypted packets to the TUN device
//! coalesced again.

use std::io::IoSliceMut;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;
use proto::Netmap;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::tunnel::{Counters, Outbox, PeerInfo, PeerTable};

/// MTU of the overlay: 1500 minus IPv4 (20), UDP (8) and WireGuard (32) overhead,
/// with room to spare for an IPv6 underlay.
pub const MTU: u16 = 1420;
/// Largest datagram or packet handled (the UDP maximum).
const BUF: usize = 65_536;
/// Socket buffer size asked for (the kernel may cap it at rmem_max).
const SOCKET_BUFFER: usize = 4 << 20;
/// Headroom before each packet written to the TUN device (virtio-net header).
const TUN_OFFSET: usize = 16;
/// Datagram groups read from the UDP socket per system call.
const UDP_BATCH: usize = 8;
/// Packets gathered (draining what is already queued, without waiting)
/// before a batch is flushed: bigger batches coalesce better on both ends.
const MAX_BATCH: usize = 128;

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
    threads: Vec<std::thread::JoinHandle<()>>,
    /// The bound UDP address.
    pub local_addr: SocketAddr,
    /// The interface name.
    pub interface: String,
}

fn lock(core: &Mutex<Core>) -> MutexGuard<'_, Core> {
    core.lock().unwrap_or_else(|p| p.into_inner())
}

/// A UDP socket with large buffers and, through quinn-udp, segmentation
/// and receive offload.
fn udp_socket(port: u16) -> std::io::Result<(std::net::UdpSocket, quinn_udp::UdpSocketState)> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    // Large buffers: with the default ~200 KB a burst drops datagrams.
    let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(SOCKET_BUFFER);
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)).into())?;
    let std: std::net::UdpSocket = s.into();
    let state = quinn_udp::UdpSocketState::new((&std).into())?;
    Ok((std, state))
}

/// The sockets every loop writes to.
#[derive(Clone)]
struct Io {
    tun: Arc<tun_rs::AsyncDevice>,
    udp: Arc<UdpSocket>,
    state: Arc<quinn_udp::UdpSocketState>,
}

/// Writes an outbox: each datagram run with one `sendmsg`, all tunnel
/// packets with one coalescing TUN write. Its buffers are reused.
struct Flusher {
    gro: tun_rs::GROTable,
    pool: Vec<Vec<u8>>,
}

impl Flusher {
    fn new() -> Self {
        Self {
            gro: tun_rs::GROTable::default(),
            pool: Vec::new(),
        }
    }

    async fn flush(&mut self, out: &mut Outbox, io: &Io) {
        for (to, range, seg) in out.network_runs(io.state.max_gso_segments()) {
            let contents = out.bytes(&range);
            let transmit = quinn_udp::Transmit {
                destination: to,
                ecn: None,
                contents,
                segment_size: (contents.len() > seg).then_some(seg),
                src_ip: None,
            };
            let res = io
                .udp
                .async_io(Interest::WRITABLE, || {
                    io.state.try_send((&*io.udp).into(), &transmit)
                })
                .await;
            if let Err(e) = res {
                debug!(error = %e, %to, "send failed");
            }
        }
        let mut n = 0;
        for p in out.tunnel_packets() {
            if self.pool.len() == n {
                self.pool.push(Vec::with_capacity(TUN_OFFSET + 2048));
            }
            let b = &mut self.pool[n];
            b.clear();
            b.resize(TUN_OFFSET, 0);
            b.extend_from_slice(p);
            n += 1;
        }
        if n > 0 {
            if let Err(e) = io
                .tun
                .send_multiple(&mut self.gro, &mut self.pool[..n], TUN_OFFSET)
                .await
            {
                debug!(error = %e, "TUN write failed");
            }
        }
        out.clear();
    }
}

/// TUN → peers → UDP, a batch of segments per read.
async fn tun_to_udp(core: Arc<Mutex<Core>>, io: Io, stop: CancellationToken) {
    let mut original = vec![0u8; tun_rs::VIRTIO_NET_HDR_LEN + BUF];
    let mut bufs = vec![vec![0u8; 2048]; tun_rs::IDEAL_BATCH_SIZE];
    let mut sizes = vec![0usize; tun_rs::IDEAL_BATCH_SIZE];
    let mut out = Outbox::default();
    let mut flusher = Flusher::new();
    loop {
        let n = tokio::select! {
            () = stop.cancelled() => return,
            r = io.tun.recv_multiple(&mut original, &mut bufs, &mut sizes, 0) => match r {
                Ok(n) => n,
                Err(e) => { debug!(error = %e, "TUN read failed"); continue; }
            },
        };
        let mut n = n;
        let mut gathered = 0;
        loop {
            {
                let mut c = lock(&core);
                let Core { table, scratch } = &mut *c;
                for (b, len) in bufs.iter().zip(&sizes).take(n) {
                    table.from_tunnel(&b[..*len], scratch, &mut out);
                }
            }
            gathered += n;
            if gathered >= MAX_BATCH {
                break;
            }
            match io
                .tun
                .try_recv_multiple(&mut original, &mut bufs, &mut sizes, 0)
            {
                Ok(more) => n = more,
                Err(_) => break,
            }
        }
        flusher.flush(&mut out, &io).await;
    }
}

/// UDP → peers → TUN, several coalesced datagram groups per read.
async fn udp_to_tun(core: Arc<Mutex<Core>>, io: Io, stop: CancellationToken) {
    let mut bufs = vec![vec![0u8; BUF]; UDP_BATCH];
    let mut metas = vec![quinn_udp::RecvMeta::default(); UDP_BATCH];
    let mut out = Outbox::default();
    let mut flusher = Flusher::new();
    loop {
        let recv = io.udp.async_io(Interest::READABLE, || {
            let mut iovs: Vec<IoSliceMut<'_>> =
                bufs.iter_mut().map(|b| IoSliceMut::new(b)).collect();
            io.state.recv((&*io.udp).into(), &mut iovs, &mut metas)
        });
        let n = tokio::select! {
            () = stop.cancelled() => return,
            r = recv => match r {
                Ok(n) => n,
                // ICMP errors from the underlay surface here: not fatal.
                Err(e) => { debug!(error = %e, "UDP read error"); continue; }
            },
        };
        let mut n = n;
        let mut gathered = 0;
        loop {
            {
                let mut c = lock(&core);
                let Core { table, scratch } = &mut *c;
                let now = Instant::now();
                for (b, meta) in bufs.iter().zip(&metas).take(n) {
                    let stride = meta.stride.max(1);
                    for datagram in b[..meta.len].chunks(stride) {
                        table.from_network(datagram, meta.addr, now, scratch, &mut out);
                        gathered += 1;
                    }
                }
            }
            if gathered >= MAX_BATCH {
                break;
            }
            // The socket is non-blocking: this returns WouldBlock when empty.
            let mut iovs: Vec<IoSliceMut<'_>> =
                bufs.iter_mut().map(|b| IoSliceMut::new(b)).collect();
            match io.state.recv((&*io.udp).into(), &mut iovs, &mut metas) {
                Ok(more) => n = more,
                Err(_) => break,
            }
        }
        flusher.flush(&mut out, &io).await;
    }
}

/// WireGuard's timers every 250 ms, the handshake limiter every second.
async fn timers(core: Arc<Mutex<Core>>, io: Io, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut out = Outbox::default();
    let mut flusher = Flusher::new();
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
            if n.is_multiple_of(4) {
                table.reset_rate();
            }
        }
        flusher.flush(&mut out, &io).await;
    }
}

impl Device {
    /// Creates the interface and socket and starts the loops.
    ///
    /// The three loops run on one dedicated thread with a single-threaded
    /// runtime that owns both descriptors: every wake-up comes from that
    /// thread's own epoll. (On a multi-threaded runtime most of the data
    /// path's time went into waking tasks across threads.)
    ///
    /// # Errors
    /// I/O errors creating the TUN device (needs CAP_NET_ADMIN) or the socket.
    pub fn start(
        cfg: &DeviceConfig,
        table: PeerTable,
        stop: &CancellationToken,
    ) -> std::io::Result<Self> {
        // Offload: the kernel hands over TCP super-packets up to 64 KB
        // (split into segments by recv_multiple) and takes coalesced ones.
        let tun = tun_rs::DeviceBuilder::new()
            .name(&cfg.interface)
            .ipv4(cfg.address, cfg.cidr.prefix_len(), None)
            .mtu(MTU)
            .offload(true)
            .build_sync()?;
        let (udp, state) = udp_socket(cfg.listen_port)?;
        let local_addr = udp.local_addr()?;
        let core = Arc::new(Mutex::new(Core {
            table,
            scratch: vec![0u8; BUF],
        }));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let io = {
            let _guard = rt.enter();
            Io {
                tun: Arc::new(tun_rs::AsyncDevice::new(tun)?),
                udp: Arc::new(UdpSocket::from_std(udp)?),
                state: Arc::new(state),
            }
        };
        let (c, s) = (core.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("cordon-data".into())
            .spawn(move || {
                rt.block_on(async move {
                    tokio::join!(
                        tun_to_udp(c.clone(), io.clone(), s.clone()),
                        udp_to_tun(c.clone(), io.clone(), s.clone()),
                        timers(c, io, s),
                    );
                });
            })?;
        Ok(Self {
            core,
            threads: vec![thread],
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
    /// interface disappears when the last descriptor of it is closed.
    pub async fn join(self) {
        let threads = self.threads;
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}
