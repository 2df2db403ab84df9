//! Cordon's shared vocabulary: the types that cross a process boundary.
//!
//! Enclaves, members, roles, join tokens, netmaps, policy envelopes, the
//! admin and node API bodies and the API error shape, with serde and
//! validated constructors. This crate does no I/O and knows nothing of HTTP,
//! storage or the data plane; every other crate depends on it, it depends on
//! none of them.

pub mod api;
pub mod error;
pub mod gateway;
pub mod glob;
pub mod inventory;
pub mod key;
pub mod name;
pub mod netmap;
pub mod policy;
pub mod role;
pub mod token;

pub use error::{ApiError, ErrorBody};
pub use key::PublicKey;
pub use name::Name;
pub use netmap::{Netmap, Peer};
pub use policy::PolicyDocument;
pub use role::Role;
pub use token::JoinToken;
