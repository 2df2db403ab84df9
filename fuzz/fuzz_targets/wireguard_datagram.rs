//! Datagrams from the network and packets from the TUN device, around
//! boringtun: nothing may panic, whatever arrives.
#![no_main]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use boringtun::x25519::{PublicKey, StaticSecret};
use overlay_node::tunnel::{Outbox, PeerTable};

fn table() -> PeerTable {
    let me = StaticSecret::from([1u8; 32]);
    let peer = StaticSecret::from([2u8; 32]);
    let mut t = PeerTable::new(me, Ipv4Addr::new(100, 64, 0, 1));
    let map = serde_json::json!({
        "version": 1, "enclave": "e", "member": "m",
        "address": "100.64.0.1/32", "cidr": "100.64.0.0/24",
        "peers": [{
            "name": "p", "role": "asset",
            "public_key": proto::PublicKey::from_bytes(PublicKey::from(&peer).to_bytes()).to_string(),
            "preshared_key": "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
            "endpoint": "198.18.0.2:51820",
            "allowed_ips": ["100.64.0.2/32"]
        }]
    });
    if let Ok(n) = serde_json::from_value::<proto::Netmap>(map) {
        t.apply_netmap(&n);
    }
    t
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut t = table();
    let mut scratch = vec![0u8; 65_536];
    let from: SocketAddr = SocketAddr::from(([198, 18, 0, 2], 51820));
    let (first, rest) = data.split_at(data.len().min(1));
    let mut out = Outbox::default();
    if first.first().is_some_and(|b| b & 1 == 0) {
        t.from_network(rest, from, Instant::now(), &mut scratch, &mut out);
    } else {
        t.from_tunnel(rest, &mut scratch, &mut out);
    }
    t.tick(Instant::now(), &mut scratch, &mut out);
});
