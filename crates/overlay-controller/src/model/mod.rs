//! The in-memory model of the enclaves: who is in which enclave, who may
//! reach whom, and which members a change affects.
//!
//! Plain data and functions, no I/O: the storage layer feeds it changes, the
//! API reads netmaps from it. Every change reports the members whose netmap
//! it altered, so the cost of a change is the cost of finding those members
//! and waking only their long-polls.

pub mod alloc;
pub mod psk;
pub mod reach;
pub mod view;

pub use view::{EnclaveView, MemberEntry};
