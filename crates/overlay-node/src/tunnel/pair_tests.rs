//! Two peer tables wired back to back, no sockets: the core's behaviour on
//! good traffic, spoofed sources, removed peers, garbage and floods.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use boringtun::x25519::StaticSecret;
use proto::{Name, Netmap, Peer, PublicKey, Role};

use super::outbox::Dest;
use super::{Outbox, PeerTable};

const A_EP: &str = "198.18.0.1:51820";
const B_EP: &str = "198.18.0.2:51820";

fn secret() -> StaticSecret {
    StaticSecret::random_from_rng(rand::rngs::OsRng)
}

fn peer(name: &str, key: &StaticSecret, addr: [u8; 4], ep: &str) -> Peer {
    Peer {
        name: Name::new(name).unwrap_or_else(|_| unreachable!()),
        role: Role::Agent,
        public_key: PublicKey::from_bytes(boringtun::x25519::PublicKey::from(key).to_bytes()),
        preshared_key: STANDARD.encode([7u8; 32]),
        endpoint: Some(ep.into()),
        allowed_ips: vec![format!("{}/32", Ipv4Addr::from(addr))
            .parse()
            .unwrap_or_else(|_| unreachable!())],
    }
}

fn netmap(version: u64, peers: Vec<Peer>) -> Netmap {
    Netmap {
        version,
        enclave: Name::new("e").unwrap_or_else(|_| unreachable!()),
        member: Name::new("m").unwrap_or_else(|_| unreachable!()),
        address: "100.64.0.1/32".parse().unwrap_or_else(|_| unreachable!()),
        cidr: "100.64.0.0/24".parse().unwrap_or_else(|_| unreachable!()),
        peers,
    }
}

/// An IPv4/UDP-ish packet from `src` to `dst` with a payload.
fn ip(src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 20];
    p[0] = 0x45;
    let len = (20 + payload.len()) as u16;
    p[2..4].copy_from_slice(&len.to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&src);
    p[16..20].copy_from_slice(&dst);
    p.extend_from_slice(payload);
    p
}

struct Pair {
    a: PeerTable,
    b: PeerTable,
    ka: StaticSecret,
    kb: StaticSecret,
    scratch: Vec<u8>,
}

#[derive(Default)]
struct Delivered {
    to_a_tun: Vec<Vec<u8>>,
    to_b_tun: Vec<Vec<u8>>,
}

impl Pair {
    fn new() -> Self {
        let (ka, kb) = (secret(), secret());
        let mut a = PeerTable::new(ka.clone(), Ipv4Addr::new(100, 64, 0, 1));
        let mut b = PeerTable::new(kb.clone(), Ipv4Addr::new(100, 64, 0, 2));
        a.apply_netmap(&netmap(1, vec![peer("b", &kb, [100, 64, 0, 2], B_EP)]));
        b.apply_netmap(&netmap(1, vec![peer("a", &ka, [100, 64, 0, 1], A_EP)]));
        Self {
            a,
            b,
            ka,
            kb,
            scratch: vec![0u8; 65_536],
        }
    }

    /// Delivers datagrams between the two until nothing is left in flight.
    fn pump(&mut self, mut from_a: Outbox, mut from_b: Outbox) -> Delivered {
        let mut got = Delivered::default();
        let (a_ep, b_ep): (SocketAddr, SocketAddr) = (
            A_EP.parse().unwrap_or_else(|_| unreachable!()),
            B_EP.parse().unwrap_or_else(|_| unreachable!()),
        );
        for _ in 0..32 {
            if from_a.is_empty() && from_b.is_empty() {
                break;
            }
            let mut next_a = Outbox::default();
            let mut next_b = Outbox::default();
            for (d, bytes) in from_a.iter() {
                match d {
                    Dest::Network(to) if to == b_ep => self.b.from_network(
                        bytes,
                        a_ep,
                        Instant::now(),
                        &mut self.scratch,
                        &mut next_b,
                    ),
                    Dest::Network(_) => {}
                    Dest::Tunnel => got.to_a_tun.push(bytes.to_vec()),
                }
            }
            for (d, bytes) in from_b.iter() {
                match d {
                    Dest::Network(to) if to == a_ep => self.a.from_network(
                        bytes,
                        b_ep,
                        Instant::now(),
                        &mut self.scratch,
                        &mut next_a,
                    ),
                    Dest::Network(_) => {}
                    Dest::Tunnel => got.to_b_tun.push(bytes.to_vec()),
                }
            }
            from_a = next_a;
            from_b = next_b;
        }
        got
    }

    /// The first datagram A emits for a packet from its TUN device (an
    /// initiation before the handshake, a data packet after).
    fn a_emits(&mut self, packet: &[u8]) -> Vec<u8> {
        let mut out = Outbox::default();
        self.a.from_tunnel(packet, &mut self.scratch, &mut out);
        let first = out.iter().next().map(|(_, b)| b.to_vec());
        first.unwrap_or_default()
    }

    fn a_sends(&mut self, packet: &[u8]) -> Delivered {
        let mut out = Outbox::default();
        self.a.from_tunnel(packet, &mut self.scratch, &mut out);
        self.pump(out, Outbox::default())
    }
}

#[test]
fn packets_cross_after_a_handshake() {
    let mut p = Pair::new();
    let pkt = ip([100, 64, 0, 1], [100, 64, 0, 2], b"hello");
    let got = p.a_sends(&pkt);
    assert_eq!(
        got.to_b_tun,
        vec![pkt.clone()],
        "queued during the handshake, then delivered"
    );
    let back = ip([100, 64, 0, 2], [100, 64, 0, 1], b"world");
    let mut out = Outbox::default();
    p.b.from_tunnel(&back, &mut p.scratch, &mut out);
    let got = p.pump(Outbox::default(), out);
    assert_eq!(got.to_a_tun, vec![back]);
    assert!(p.a.peers()[0].last_handshake.is_some());
    assert_eq!(p.b.peers()[0].rx_bytes, pkt.len() as u64);
    assert_eq!(p.a.counters, Default::default());
}

#[test]
fn spoofed_inner_source_is_dropped_and_counted() {
    let mut p = Pair::new();
    p.a_sends(&ip([100, 64, 0, 1], [100, 64, 0, 2], b"hi"));
    // A forges the source of a packet it tunnels to B.
    let got = p.a_sends(&ip([100, 64, 0, 9], [100, 64, 0, 2], b"forged"));
    assert!(got.to_b_tun.is_empty());
    assert_eq!(p.b.counters.spoofed_source, 1);
}

#[test]
fn a_removed_peer_stops_working() {
    let mut p = Pair::new();
    assert_eq!(
        p.a_sends(&ip([100, 64, 0, 1], [100, 64, 0, 2], b"1"))
            .to_b_tun
            .len(),
        1
    );
    p.b.apply_netmap(&netmap(2, vec![]));
    let got = p.a_sends(&ip([100, 64, 0, 1], [100, 64, 0, 2], b"2"));
    assert!(got.to_b_tun.is_empty());
    assert!(p.b.counters.unknown_peer >= 1, "{:?}", p.b.counters);
    // And B has no route back to A any more: host unreachable locally.
    let mut out = Outbox::default();
    p.b.from_tunnel(
        &ip([100, 64, 0, 2], [100, 64, 0, 1], b"x"),
        &mut p.scratch,
        &mut out,
    );
    assert_eq!(p.b.counters.no_route, 1);
    let replies: Vec<(Dest, Vec<u8>)> = out.iter().map(|(d, b)| (d, b.to_vec())).collect();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].0, Dest::Tunnel);
    assert_eq!(
        (replies[0].1[20], replies[0].1[21]),
        (3, 1),
        "ICMP host unreachable"
    );
}

#[test]
fn unchanged_peers_keep_their_session_across_netmaps() {
    let mut p = Pair::new();
    p.a_sends(&ip([100, 64, 0, 1], [100, 64, 0, 2], b"1"));
    let b_key = p.a.peers()[0].public_key;
    // A newer netmap with the same b and an extra peer: b's session stays.
    let same_b = Peer {
        public_key: b_key,
        ..peer("b", &secret(), [100, 64, 0, 2], B_EP)
    };
    let extra = peer("c", &secret(), [100, 64, 0, 3], "198.18.0.3:51820");
    p.a.apply_netmap(&netmap(2, vec![same_b, extra]));
    assert_eq!(p.a.peers().len(), 2);
    let mut out = Outbox::default();
    p.a.from_tunnel(
        &ip([100, 64, 0, 1], [100, 64, 0, 2], b"2"),
        &mut p.scratch,
        &mut out,
    );
    assert_eq!(out.len(), 1);
    let first = out.iter().next().map(|(_, b)| b[0]);
    assert_eq!(
        first,
        Some(4),
        "a data packet on the existing session, not a new handshake"
    );
}

#[test]
fn garbage_truncated_and_replayed_datagrams_are_counted() {
    let mut p = Pair::new();
    p.a_sends(&ip([100, 64, 0, 1], [100, 64, 0, 2], b"1"));
    let from: SocketAddr = A_EP.parse().unwrap_or_else(|_| unreachable!());
    let mut out = Outbox::default();
    for junk in [&b""[..], &[1, 2, 3], &[9; 200], &[4, 0, 0, 0, 1, 0, 0, 0]] {
        p.b.from_network(junk, from, Instant::now(), &mut p.scratch, &mut out);
    }
    assert!(out.is_empty());
    assert!(
        p.b.counters.malformed + p.b.counters.unknown_peer + p.b.counters.rejected >= 4,
        "{:?}",
        p.b.counters
    );
    // Capture one data packet and deliver it twice: the replay is refused.
    let datagram = p.a_emits(&ip([100, 64, 0, 1], [100, 64, 0, 2], b"once"));
    let mut first = Outbox::default();
    p.b.from_network(&datagram, from, Instant::now(), &mut p.scratch, &mut first);
    assert_eq!(first.len(), 1);
    let before = p.b.counters.rejected;
    let mut second = Outbox::default();
    p.b.from_network(&datagram, from, Instant::now(), &mut p.scratch, &mut second);
    assert!(second.is_empty());
    assert_eq!(p.b.counters.rejected, before + 1);
    // Truncated copy of a real packet.
    let mut third = Outbox::default();
    p.b.from_network(
        &datagram[..datagram.len() - 5],
        from,
        Instant::now(),
        &mut p.scratch,
        &mut third,
    );
    assert!(third.is_empty());
}

#[test]
fn a_handshake_flood_from_one_source_is_cut_off() {
    let mut p = Pair::new();
    // Capture a genuine handshake initiation from A and replay it en masse.
    let init = p.a_emits(&ip([100, 64, 0, 1], [100, 64, 0, 2], b"x"));
    assert_eq!(init.first(), Some(&1));
    let flooder: SocketAddr = "198.18.0.66:4000"
        .parse()
        .unwrap_or_else(|_| unreachable!());
    let now = Instant::now();
    for _ in 0..1000 {
        let mut o = Outbox::default();
        p.b.from_network(&init, flooder, now, &mut p.scratch, &mut o);
    }
    assert!(p.b.counters.handshake_flood >= 980, "{:?}", p.b.counters);
    // A (restarted, so with a fresh initiation) still gets through from its
    // own address: the flood cost the flooder's source only.
    let mut a = PeerTable::new(p.ka.clone(), Ipv4Addr::new(100, 64, 0, 1));
    a.apply_netmap(&netmap(1, vec![peer("b", &p.kb, [100, 64, 0, 2], B_EP)]));
    p.a = a;
    let got = p.a_sends(&ip([100, 64, 0, 1], [100, 64, 0, 2], b"y"));
    assert_eq!(
        got.to_b_tun,
        vec![ip([100, 64, 0, 1], [100, 64, 0, 2], b"y")]
    );
}

/// Captures `n` data datagrams from A to B (after the handshake).
fn capture(p: &mut Pair, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|k| {
            p.a_emits(&ip(
                [100, 64, 0, 1],
                [100, 64, 0, 2],
                format!("packet {k}").as_bytes(),
            ))
        })
        .collect()
}

/// The anti-replay window (boringtun: 1024 counters; the maintained forks
/// made theirs larger because multi-queue devices reorder more). Packets
/// reordered within the window are all accepted once, every replay is
/// refused, and a packet older than the window is refused too.
#[test]
fn reordering_within_the_window_is_accepted_and_replays_are_not() {
    let mut p = Pair::new();
    p.a_sends(&ip([100, 64, 0, 1], [100, 64, 0, 2], b"hello"));
    let from: SocketAddr = A_EP.parse().unwrap_or_else(|_| unreachable!());
    let batch = capture(&mut p, 1000);
    let mut accepted = 0;
    for d in batch.iter().rev() {
        let mut o = Outbox::default();
        p.b.from_network(d, from, Instant::now(), &mut p.scratch, &mut o);
        accepted += o.len();
    }
    assert_eq!(accepted, 1000, "reordered by up to 999 packets");
    let before = p.b.counters.rejected;
    for d in &batch {
        let mut o = Outbox::default();
        p.b.from_network(d, from, Instant::now(), &mut p.scratch, &mut o);
        assert!(o.is_empty());
    }
    assert_eq!(p.b.counters.rejected, before + 1000, "every replay refused");
    // 2000 newer packets later, a held-back one is outside the window.
    let old = capture(&mut p, 1);
    let newer = capture(&mut p, 2000);
    for d in &newer {
        let mut o = Outbox::default();
        p.b.from_network(d, from, Instant::now(), &mut p.scratch, &mut o);
    }
    let mut o = Outbox::default();
    p.b.from_network(&old[0], from, Instant::now(), &mut p.scratch, &mut o);
    assert!(o.is_empty(), "a packet older than the window is refused");
}

/// Oversized input on both sides (a boringtun fork fixed a panic on an
/// oversized datagram): dropped and counted, never a panic.
#[test]
fn oversized_packets_and_datagrams_do_not_panic() {
    let mut p = Pair::new();
    p.a_sends(&ip([100, 64, 0, 1], [100, 64, 0, 2], b"hello"));
    let from: SocketAddr = A_EP.parse().unwrap_or_else(|_| unreachable!());
    // A datagram of the largest UDP size, with a data-packet header.
    let mut huge = vec![0u8; 65_507];
    huge[0] = 4;
    let mut o = Outbox::default();
    p.b.from_network(&huge, from, Instant::now(), &mut p.scratch, &mut o);
    assert!(o.is_empty());
    // A packet from the TUN device larger than the scratch buffer allows.
    let big = ip([100, 64, 0, 1], [100, 64, 0, 2], &vec![7u8; 65_515]);
    let mut o = Outbox::default();
    let mut small_scratch = vec![0u8; 2048];
    p.a.from_tunnel(&big, &mut small_scratch, &mut o);
    assert!(o.is_empty());
    assert_eq!(p.a.counters.oversized, 1);
    p.b.from_network(&huge, from, Instant::now(), &mut small_scratch, &mut o);
    assert_eq!(p.b.counters.oversized, 1);
    // And the pair still works.
    let got = p.a_sends(&ip([100, 64, 0, 1], [100, 64, 0, 2], b"after"));
    assert_eq!(got.to_b_tun.len(), 1);
}

/// Under load, a handshake needs a cookie bound to its sender's IP *and
/// port* (boringtun binds cookies to the IP only; the maintained forks fixed
/// that): without one it gets a cookie reply that a stock implementation
/// accepts; with one it is processed; the same cookie from another port of
/// the same IP is not enough.
#[test]
fn cookies_are_bound_to_the_source_port() {
    let mut p = Pair::new();
    let init = p.a_emits(&ip([100, 64, 0, 1], [100, 64, 0, 2], b"x"));
    assert_eq!(init.first(), Some(&1));
    let a_ep: SocketAddr = A_EP.parse().unwrap_or_else(|_| unreachable!());
    let other_port = SocketAddr::new(a_ep.ip(), a_ep.port() + 1);
    let now = Instant::now();
    p.b.cookies.count(1000);
    assert!(p.b.cookies.under_load());

    // No mac2: a cookie reply, nothing processed.
    let mut o = Outbox::default();
    p.b.from_network(&init, a_ep, now, &mut p.scratch, &mut o);
    let replies: Vec<(Dest, Vec<u8>)> = o.iter().map(|(d, b)| (d, b.to_vec())).collect();
    assert_eq!(replies.len(), 1);
    assert!(matches!(replies[0].0, Dest::Network(to) if to == a_ep));
    assert_eq!(replies[0].1.len(), super::cookie::REPLY_LEN);
    assert_eq!(replies[0].1[0], 3, "a cookie reply");
    assert_eq!(p.b.counters.cookies_sent, 1);
    // A's boringtun accepts it (a bad cookie reply would count as rejected).
    let before = p.a.counters.rejected;
    let mut o = Outbox::default();
    p.a.from_network(
        &replies[0].1,
        B_EP.parse().unwrap_or_else(|_| unreachable!()),
        now,
        &mut p.scratch,
        &mut o,
    );
    assert_eq!(p.a.counters.rejected, before, "{:?}", p.a.counters);
    let mut bad = replies[0].1.clone();
    bad[40] ^= 1;
    p.a.from_network(
        &bad,
        B_EP.parse().unwrap_or_else(|_| unreachable!()),
        now,
        &mut p.scratch,
        &mut o,
    );
    assert_eq!(p.a.counters.rejected, before + 1);

    // With mac2 for A's address and port: processed (a handshake response).
    let cookie = p.b.cookies.cookie_for(a_ep, now);
    let signed = super::cookie::with_mac2(&init, &cookie);
    // From another port of the same IP, the same cookie is refused.
    let mut o = Outbox::default();
    p.b.from_network(&signed, other_port, now, &mut p.scratch, &mut o);
    let got: Vec<Vec<u8>> = o.iter().map(|(_, b)| b.to_vec()).collect();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0][0], 3,
        "another port gets a cookie reply, not a handshake"
    );
    let mut o = Outbox::default();
    p.b.from_network(&signed, a_ep, now, &mut p.scratch, &mut o);
    let got: Vec<Vec<u8>> = o.iter().map(|(_, b)| b.to_vec()).collect();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0][0], 2, "a handshake response");
}
