//! The Cordon node: joins an enclave with a join token and turns its netmap
//! into a WireGuard overlay on a TUN interface, in which the member reaches
//! exactly its peers and nothing else.
//!
//! [`tunnel`] is the sans-IO core (peer table, cryptokey routing, boringtun
//! sessions); [`device`] moves bytes between it, the TUN device and a UDP
//! socket; [`control`] follows the controller; [`state`] keeps identity and
//! the last netmap across restarts. It does not decide who may reach whom:
//! the controller does, through the netmap.

pub mod agent_env;
pub mod cli;
pub mod control;
pub mod device;
pub mod discover;
pub mod gateway_ca;
pub mod metrics;
pub mod run;
pub mod sandbox;
pub mod state;
pub mod status;
pub mod test_hook;
pub mod tunnel;
pub mod uapi;
