//! Where the core puts what the shell must send: one growing buffer reused
//! for every batch, so the hot path allocates nothing after warm-up.

use std::net::SocketAddr;
use std::ops::Range;

/// Where a packet goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    /// A UDP datagram to this peer endpoint.
    Network(SocketAddr),
    /// An IP packet for the local TUN device.
    Tunnel,
}

/// Packets produced by one call (or one batch) of the core.
#[derive(Debug, Default)]
pub struct Outbox {
    buf: Vec<u8>,
    items: Vec<(Dest, Range<usize>)>,
}

impl Outbox {
    /// Queues a datagram for `to`.
    pub fn to_network(&mut self, to: SocketAddr, data: &[u8]) {
        self.push(Dest::Network(to), data);
    }

    /// Queues a packet for the TUN device.
    pub fn to_tunnel(&mut self, data: &[u8]) {
        self.push(Dest::Tunnel, data);
    }

    fn push(&mut self, d: Dest, data: &[u8]) {
        let start = self.buf.len();
        self.buf.extend_from_slice(data);
        self.items.push((d, start..self.buf.len()));
    }

    /// Everything queued, in order.
    pub fn iter(&self) -> impl Iterator<Item = (Dest, &[u8])> {
        self.items.iter().map(|(d, r)| (*d, &self.buf[r.clone()]))
    }

    /// Number of queued packets.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Empties the outbox, keeping its memory.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.items.clear();
    }
}
