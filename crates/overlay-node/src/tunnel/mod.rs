//! The data plane's sans-IO core: the peer table that turns packets read
//! from the TUN device and datagrams read from the UDP socket into packets
//! to write to either, with WireGuard cryptokey routing in between.
//!
//! Nothing here touches a socket or a clock it was not given; the async
//! shell in [`crate::device`] moves the bytes.

pub mod cookie;
pub mod icmp;
pub mod limiter;
pub mod outbox;
pub mod packet;
pub mod peers;

pub use outbox::Outbox;
pub use peers::{Counters, PeerInfo, PeerTable};

#[cfg(test)]
mod pair_tests;
