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
    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = (Dest, &[u8])> {
        self.items.iter().map(|(d, r)| (*d, &self.buf[r.clone()]))
    }

    /// Datagrams for the network grouped for UDP segmentation offload: each
    /// run is consecutive datagrams to one destination, all `segment` bytes
    /// long except possibly the last, at most `max_segments` of them and at
    /// most 64 000 bytes in all. Runs of one are plain datagrams.
    pub fn network_runs(&self, max_segments: usize) -> Vec<(SocketAddr, Range<usize>, usize)> {
        let mut runs: Vec<(SocketAddr, Range<usize>, usize)> = Vec::new();
        let mut open = false;
        for (dest, r) in &self.items {
            let Dest::Network(to) = dest else {
                open = false;
                continue;
            };
            let len = r.len();
            if let Some((rto, rr, seg)) = runs.last_mut() {
                let count = rr.len().div_ceil(*seg);
                let closed_by_short = rr.len() % *seg != 0;
                if open
                    && *rto == *to
                    && rr.end == r.start
                    && len <= *seg
                    && !closed_by_short
                    && count < max_segments
                    && rr.len() + len <= 64_000
                {
                    rr.end = r.end;
                    continue;
                }
            }
            runs.push((*to, r.clone(), len.max(1)));
            open = true;
        }
        runs
    }

    /// The bytes of a range returned by [`Outbox::network_runs`].
    pub fn bytes(&self, r: &Range<usize>) -> &[u8] {
        &self.buf[r.clone()]
    }

    /// Packets for the TUN device, in order.
    pub fn tunnel_packets(&self) -> impl Iterator<Item = &[u8]> {
        self.items
            .iter()
            .filter(|(d, _)| *d == Dest::Tunnel)
            .map(|(_, r)| &self.buf[r.clone()])
    }

    /// Number of queued packets.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is queued.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Empties the outbox, keeping its memory.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.items.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_equal_datagrams_per_destination() {
        let a: SocketAddr = "198.18.0.1:1".parse().unwrap_or_else(|_| unreachable!());
        let b: SocketAddr = "198.18.0.2:1".parse().unwrap_or_else(|_| unreachable!());
        let mut o = Outbox::default();
        for _ in 0..3 {
            o.to_network(a, &[1; 100]);
        }
        o.to_network(a, &[2; 40]); // a short last segment closes the run
        o.to_network(a, &[3; 100]);
        o.to_tunnel(&[9; 10]);
        o.to_network(b, &[4; 100]);
        o.to_network(a, &[5; 100]);
        let runs: Vec<(SocketAddr, usize, usize)> = o
            .network_runs(64)
            .into_iter()
            .map(|(d, r, s)| (d, r.len(), s))
            .collect();
        assert_eq!(
            runs,
            vec![(a, 340, 100), (a, 100, 100), (b, 100, 100), (a, 100, 100)]
        );
        let capped: Vec<usize> = o
            .network_runs(2)
            .into_iter()
            .map(|(_, r, _)| r.len())
            .collect();
        assert_eq!(capped, vec![200, 140, 100, 100, 100]);
        assert_eq!(o.tunnel_packets().count(), 1);
    }
}
