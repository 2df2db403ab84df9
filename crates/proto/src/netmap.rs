//! The netmap: what one member needs to know to reach exactly its peers.

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::{Name, PublicKey, Role};

/// One member's view of its enclave: its own address and the peers it may
/// reach. A member that is not listed here has no key the member accepts
/// and no route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Netmap {
    /// Monotonic version; a node long-polls with `since=version`.
    pub version: u64,
    /// The enclave this netmap belongs to.
    pub enclave: Name,
    /// The member this netmap was computed for.
    pub member: Name,
    /// The member's overlay address, always a `/32`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "100.64.0.2/32"))]
    pub address: Ipv4Net,
    /// The enclave's whole CIDR (the route the node installs).
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "100.64.0.0/24"))]
    pub cidr: Ipv4Net,
    /// The peers this member may reach, sorted by name.
    pub peers: Vec<Peer>,
}

/// One peer in a netmap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Peer {
    /// The peer's member name.
    pub name: Name,
    /// The peer's role.
    pub role: Role,
    /// The peer's WireGuard public key.
    pub public_key: PublicKey,
    /// The preshared key for this pair, base64 (derived from the enclave
    /// secret and both public keys, so both ends compute the same value).
    pub preshared_key: String,
    /// The peer's underlay `ip:port`, when it reported one.
    pub endpoint: Option<String>,
    /// Overlay addresses the peer may send from and be sent to.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub allowed_ips: Vec<Ipv4Net>,
}
