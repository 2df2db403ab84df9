//! The peer table: one boringtun [`Tunn`] per peer of the netmap, cryptokey
//! routing (destination address → peer, inbound source must belong to the
//! sending peer) and the counters a security team asks about.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use boringtun::noise::handshake::parse_handshake_anon;
use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::noise::{Packet, Tunn, TunnResult};
use boringtun::x25519::{PublicKey as XPublic, StaticSecret};
use ipnet::Ipv4Net;
use proto::{Name, Netmap, Peer, PublicKey, Role};

use super::cookie::CookieGuard;
use super::icmp;
use super::limiter::SourceLimiter;
use super::outbox::Outbox;
use super::packet::ipv4_addrs;

/// Handshakes per second across all peers before cookies are demanded.
const HANDSHAKES_BEFORE_COOKIES: u64 = 100;
/// Keepalive so that peers behind NAT stay reachable (seconds).
const KEEPALIVE: u16 = 25;

/// Why packets were dropped, and other things worth counting.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counters {
    /// Outbound packets whose destination no peer's allowed IPs cover.
    pub no_route: u64,
    /// Outbound packets that are not IPv4.
    pub not_ipv4: u64,
    /// Packets too large to encrypt or datagrams too large to decrypt into
    /// the buffer (boringtun panics instead of refusing them).
    pub oversized: u64,
    /// Inbound packets whose inner source is outside the sender's allowed IPs.
    pub spoofed_source: u64,
    /// Datagrams that are not WireGuard messages (too short, unknown type).
    pub malformed: u64,
    /// Datagrams for no peer we know (unknown index or unknown static key).
    pub unknown_peer: u64,
    /// Datagrams boringtun refused (bad MAC, replay, decryption failure).
    pub rejected: u64,
    /// Handshake initiations dropped by the per-source limit.
    pub handshake_flood: u64,
    /// Cookie replies sent because handshakes came in too fast.
    pub cookies_sent: u64,
}

/// What `status` and UAPI show about one peer.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// Member name.
    pub name: Name,
    /// Role.
    pub role: Role,
    /// Public key.
    pub public_key: PublicKey,
    /// Current endpoint.
    pub endpoint: Option<SocketAddr>,
    /// Allowed IPs.
    pub allowed_ips: Vec<Ipv4Net>,
    /// Wall-clock time of the last completed handshake (filled in by
    /// [`PeerTable::peers`] from the session, never stored).
    pub last_handshake: Option<SystemTime>,
    /// Bytes received (decrypted).
    pub rx_bytes: u64,
    /// Bytes sent (before encryption).
    pub tx_bytes: u64,
    /// Preshared key (for UAPI `get`).
    pub preshared_key: [u8; 32],
}

struct PeerState {
    info: PeerInfo,
    tunn: Tunn,
}

/// All peers of one membership.
pub struct PeerTable {
    private: StaticSecret,
    public: XPublic,
    address: Ipv4Addr,
    /// boringtun's limiter, kept for mac1 only (never under load: its
    /// cookies are bound to the IP alone).
    rate: Arc<RateLimiter>,
    /// Our cookies, bound to IP and port.
    pub(crate) cookies: CookieGuard,
    sources: SourceLimiter,
    peers: HashMap<u32, PeerState>,
    by_key: HashMap<[u8; 32], u32>,
    routes: HashMap<Ipv4Addr, u32>,
    wide_routes: Vec<(Ipv4Net, u32)>,
    next_index: u32,
    version: u64,
    /// Drop and event counters.
    pub counters: Counters,
}

fn psk_bytes(p: &Peer) -> [u8; 32] {
    STANDARD
        .decode(&p.preshared_key)
        .ok()
        .and_then(|v| v.try_into().ok())
        .unwrap_or([0; 32])
}

impl PeerTable {
    /// A table for the member with `private` key and overlay `address`.
    pub fn new(private: StaticSecret, address: Ipv4Addr) -> Self {
        let public = XPublic::from(&private);
        Self {
            rate: Arc::new(RateLimiter::new(&public, u64::MAX)),
            cookies: CookieGuard::new(public.as_bytes(), HANDSHAKES_BEFORE_COOKIES, Instant::now()),
            private,
            public,
            address,
            sources: SourceLimiter::new(5.0, 10.0),
            peers: HashMap::new(),
            by_key: HashMap::new(),
            routes: HashMap::new(),
            wide_routes: Vec::new(),
            next_index: 1,
            version: 0,
            counters: Counters::default(),
        }
    }

    /// The version of the last netmap applied.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Every peer, sorted by name, with its last handshake as wall-clock time.
    pub fn peers(&self) -> Vec<PeerInfo> {
        let now = SystemTime::now();
        let mut v: Vec<PeerInfo> = self
            .peers
            .values()
            .map(|p| PeerInfo {
                last_handshake: p.tunn.stats().0.and_then(|since| now.checked_sub(since)),
                ..p.info.clone()
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    fn alloc_index(&mut self) -> u32 {
        // 24-bit indices (boringtun shifts them left by 8), never 0, never reused
        // while in use.
        loop {
            let i = self.next_index;
            self.next_index = if i >= 0x00ff_ffff { 1 } else { i + 1 };
            if !self.peers.contains_key(&i) {
                return i;
            }
        }
    }

    /// Brings the peer set in line with `netmap`: new peers are added,
    /// removed ones dropped (with their sessions and routes), changed
    /// endpoints and routes updated; unchanged peers keep their sessions.
    pub fn apply_netmap(&mut self, netmap: &Netmap) {
        self.version = netmap.version;
        let wanted: HashMap<[u8; 32], &Peer> = netmap
            .peers
            .iter()
            .filter(|p| *p.public_key.as_bytes() != self.public.to_bytes())
            .map(|p| (*p.public_key.as_bytes(), p))
            .collect();
        let gone: Vec<u32> = self
            .by_key
            .iter()
            .filter(|(k, idx)| {
                wanted.get(*k).is_none_or(|p| {
                    // A new PSK means a new peer: sessions keyed with the old one must go.
                    self.peers
                        .get(idx)
                        .is_some_and(|s| s.info.preshared_key != psk_bytes(p))
                })
            })
            .map(|(_, idx)| *idx)
            .collect();
        for idx in gone {
            if let Some(p) = self.peers.remove(&idx) {
                self.by_key.remove(p.info.public_key.as_bytes());
            }
        }
        for (key, p) in wanted {
            let endpoint = p.endpoint.as_deref().and_then(|e| e.parse().ok());
            if let Some(idx) = self.by_key.get(&key) {
                if let Some(state) = self.peers.get_mut(idx) {
                    // Keep a roamed endpoint unless the controller knows a new one.
                    if endpoint.is_some() {
                        state.info.endpoint = endpoint;
                    }
                    state.info.allowed_ips = p.allowed_ips.clone();
                    state.info.name = p.name.clone();
                    state.info.role = p.role;
                }
                continue;
            }
            let idx = self.alloc_index();
            let psk = psk_bytes(p);
            let tunn = Tunn::new(
                self.private.clone(),
                XPublic::from(key),
                Some(psk),
                Some(KEEPALIVE),
                idx,
                Some(self.rate.clone()),
            );
            self.peers.insert(
                idx,
                PeerState {
                    info: PeerInfo {
                        name: p.name.clone(),
                        role: p.role,
                        public_key: p.public_key,
                        endpoint,
                        allowed_ips: p.allowed_ips.clone(),
                        last_handshake: None,
                        rx_bytes: 0,
                        tx_bytes: 0,
                        preshared_key: psk,
                    },
                    tunn,
                },
            );
            self.by_key.insert(key, idx);
        }
        self.rebuild_routes();
    }

    fn rebuild_routes(&mut self) {
        self.routes.clear();
        self.wide_routes.clear();
        for (idx, p) in &self.peers {
            for net in &p.info.allowed_ips {
                if net.prefix_len() == 32 {
                    self.routes.insert(net.addr(), *idx);
                } else {
                    self.wide_routes.push((*net, *idx));
                }
            }
        }
        // Longest prefix first.
        self.wide_routes
            .sort_by_key(|(net, _)| std::cmp::Reverse(net.prefix_len()));
    }

    fn route(&self, dst: Ipv4Addr) -> Option<u32> {
        self.routes.get(&dst).copied().or_else(|| {
            self.wide_routes
                .iter()
                .find(|(n, _)| n.contains(&dst))
                .map(|(_, i)| *i)
        })
    }

    /// A packet read from the TUN device: encrypt it for the peer that owns
    /// its destination, or answer "host unreachable" if none does.
    pub fn from_tunnel(&mut self, packet: &[u8], scratch: &mut [u8], out: &mut Outbox) {
        // Data header and AEAD tag: boringtun asserts the room is there.
        if packet.len() + 32 > scratch.len() {
            self.counters.oversized += 1;
            return;
        }
        let Some((_, dst)) = ipv4_addrs(packet) else {
            self.counters.not_ipv4 += 1;
            return;
        };
        let Some(idx) = self.route(dst) else {
            self.counters.no_route += 1;
            if let Some(n) = icmp::host_unreachable(self.address, packet, scratch) {
                out.to_tunnel(&scratch[..n]);
            }
            return;
        };
        let Some(peer) = self.peers.get_mut(&idx) else {
            return;
        };
        match peer.tunn.encapsulate(packet, scratch) {
            TunnResult::WriteToNetwork(b) => {
                peer.info.tx_bytes += packet.len() as u64;
                if let Some(ep) = peer.info.endpoint {
                    out.to_network(ep, b);
                }
            }
            TunnResult::Err(_) => self.counters.rejected += 1,
            _ => {}
        }
    }

    /// A datagram read from the UDP socket.
    pub fn from_network(
        &mut self,
        datagram: &[u8],
        from: SocketAddr,
        now: Instant,
        scratch: &mut [u8],
        out: &mut Outbox,
    ) {
        if datagram.len() > scratch.len() {
            self.counters.oversized += 1;
            return;
        }
        let idx = match Tunn::parse_incoming_packet(datagram) {
            Err(_) => {
                self.counters.malformed += 1;
                return;
            }
            Ok(Packet::HandshakeInit(init)) => {
                if !self.sources.allow(from.ip(), now) {
                    self.counters.handshake_flood += 1;
                    return;
                }
                // MAC and load check first: no Diffie-Hellman for a packet
                // that does not even carry our MAC, or, under load, a
                // cookie for its address and port.
                if !self.handshake_admitted(datagram, from, now, scratch, out) {
                    return;
                }
                match parse_handshake_anon(&self.private, &self.public, &init) {
                    Ok(half) => match self.by_key.get(&half.peer_static_public) {
                        Some(idx) => *idx,
                        None => {
                            self.counters.unknown_peer += 1;
                            return;
                        }
                    },
                    Err(_) => {
                        self.counters.rejected += 1;
                        return;
                    }
                }
            }
            Ok(Packet::HandshakeResponse(p)) => {
                if !self.handshake_admitted(datagram, from, now, scratch, out) {
                    return;
                }
                p.receiver_idx >> 8
            }
            Ok(Packet::PacketCookieReply(p)) => p.receiver_idx >> 8,
            Ok(Packet::PacketData(p)) => p.receiver_idx >> 8,
        };
        let Some(peer) = self.peers.get_mut(&idx) else {
            self.counters.unknown_peer += 1;
            return;
        };
        let mut input = datagram;
        loop {
            match peer.tunn.decapsulate(Some(from.ip()), input, scratch) {
                TunnResult::Done => break,
                TunnResult::Err(_) => {
                    self.counters.rejected += 1;
                    break;
                }
                TunnResult::WriteToNetwork(b) => {
                    // Authenticated: the peer may have roamed.
                    peer.info.endpoint = Some(from);
                    out.to_network(from, b);
                    input = &[];
                }
                TunnResult::WriteToTunnelV4(p, src) => {
                    if peer.info.allowed_ips.iter().any(|n| n.contains(&src)) {
                        peer.info.endpoint = Some(from);
                        peer.info.rx_bytes += p.len() as u64;
                        out.to_tunnel(p);
                    } else {
                        self.counters.spoofed_source += 1;
                    }
                    break;
                }
                TunnResult::WriteToTunnelV6(..) => {
                    self.counters.spoofed_source += 1;
                    break;
                }
            }
        }
    }

    /// mac1, then (under load) mac2 with a cookie bound to `from`; sends a
    /// cookie reply when that is what is missing. Counts what it refuses.
    fn handshake_admitted(
        &mut self,
        datagram: &[u8],
        from: SocketAddr,
        now: Instant,
        scratch: &mut [u8],
        out: &mut Outbox,
    ) -> bool {
        if self
            .rate
            .verify_packet(Some(from.ip()), datagram, scratch)
            .is_err()
        {
            self.counters.rejected += 1;
            return false;
        }
        match self.cookies.check(datagram, from, now, scratch) {
            Ok(()) => true,
            Err(n) => {
                if n > 0 {
                    self.counters.cookies_sent += 1;
                    out.to_network(from, &scratch[..n]);
                }
                false
            }
        }
    }

    /// Drives every peer's timers (call every ~250 ms): handshakes,
    /// retransmissions, keepalives, session expiry.
    pub fn tick(&mut self, now: Instant, scratch: &mut [u8], out: &mut Outbox) {
        for p in self.peers.values_mut() {
            if let (TunnResult::WriteToNetwork(b), Some(ep)) =
                (p.tunn.update_timers(scratch), p.info.endpoint)
            {
                out.to_network(ep, b);
            }
        }
        self.sources.forget_idle(now);
    }

    /// Resets the global handshake counter (call every second).
    pub fn reset_rate(&mut self) {
        self.rate.reset_count();
        self.cookies.reset_count();
    }
}
