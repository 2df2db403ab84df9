//! The role a member plays inside its enclave.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a member is, which decides whom it may reach (see the netmap rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub enum Role {
    /// An AI agent: reaches assets and gateways, other agents only when the
    /// enclave allows agent-to-agent traffic.
    Agent,
    /// Something agents work on (a file server, a build host).
    Asset,
    /// The enclave's AI Session Controller: every member's peer.
    Gateway,
}

impl Role {
    /// Every role, in a stable order.
    pub const ALL: [Role; 3] = [Role::Agent, Role::Asset, Role::Gateway];

    /// The lower-case name used on the wire and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Asset => "asset",
            Role::Gateway => "gateway",
        }
    }
}

/// The string is not one of `agent`, `asset`, `gateway`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?} (expected agent, asset or gateway)")]
pub struct UnknownRole(pub String);

impl std::str::FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_str_and_json() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
            let json = serde_json::to_string(&r).unwrap_or_default();
            assert_eq!(json, format!("\"{r}\""));
        }
        assert!("Agent".parse::<Role>().is_err());
        assert!(serde_json::from_str::<Role>("\"admin\"").is_err());
    }
}
