//! Request and response bodies of the controller's admin and node APIs.
//!
//! Request bodies refuse unknown fields: a misspelt `agent_to_agent` must be
//! an error, not a silently ignored option.

use std::fmt;
use std::net::SocketAddr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::{Name, Netmap, PublicKey, Role};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// `POST /api/v1/enclaves`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CreateEnclave {
    /// Enclave name.
    pub name: Name,
    /// Its address space; allocated from the pool when absent.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "100.64.0.0/24"))]
    pub cidr: Option<Ipv4Net>,
    /// Whether agents of this enclave may reach each other (default true).
    pub agent_to_agent: Option<bool>,
}

/// An enclave as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Enclave {
    /// Enclave name.
    pub name: Name,
    /// Its address space.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub cidr: Ipv4Net,
    /// Whether agents may reach each other.
    pub agent_to_agent: bool,
    /// Current netmap version of the enclave.
    pub version: u64,
    /// Number of current members.
    pub members: u64,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

/// `POST /api/v1/enclaves/{name}/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CreateToken {
    /// Role of the member(s) the token admits.
    pub role: Role,
    /// Token lifetime (default 3600, at most 30 days).
    pub ttl_seconds: Option<u64>,
    /// How many joins it allows (default 1, at most 10,000).
    pub uses: Option<u32>,
    /// Name the joining member gets (only with `uses` = 1).
    pub member_name: Option<Name>,
    /// Just-in-time membership: the member is removed this long after it joins.
    pub member_ttl_seconds: Option<u64>,
}

/// Response to a token creation: the only time the token is shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct TokenCreated {
    /// The join token, `cordon1.…`.
    pub token: String,
    /// Token id (not secret).
    pub id: String,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
}

/// A member as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Member {
    /// Member name, unique in its enclave.
    pub name: Name,
    /// Its role.
    pub role: Role,
    /// Its overlay address (`/32`).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub address: Ipv4Net,
    /// Its WireGuard public key.
    pub public_key: PublicKey,
    /// Its underlay endpoint, when reported.
    pub endpoint: Option<String>,
    /// The host name it reported.
    pub hostname: Option<String>,
    /// Join time, Unix seconds.
    pub joined_at: i64,
    /// Just-in-time expiry, Unix seconds.
    pub expires_at: Option<i64>,
    /// Last time its node talked to the controller, Unix seconds.
    pub last_seen: i64,
}

/// `POST /api/v1/join`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct JoinRequest {
    /// The join token string.
    pub token: String,
    /// The node's WireGuard public key (the private key never leaves the node).
    pub public_key: PublicKey,
    /// The node's underlay `ip:port`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "198.18.0.7:51820"))]
    pub endpoint: Option<SocketAddr>,
    /// The node's host name (used for the member name when the token names none).
    pub hostname: Option<String>,
}

impl fmt::Debug for JoinRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinRequest")
            .field("token", &"<redacted>")
            .field("public_key", &self.public_key)
            .field("endpoint", &self.endpoint)
            .field("hostname", &self.hostname)
            .finish()
    }
}

/// Response to a successful join.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct JoinResponse {
    /// The member name given to this node.
    pub member: Name,
    /// The enclave it joined.
    pub enclave: Name,
    /// Its overlay address.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub address: Ipv4Net,
    /// The bearer token for the node API; shown once, stored hashed.
    pub node_token: String,
    /// Agents only: the substitute key its SDKs present to the enclave's
    /// ASC instead of a real API key; shown once, stored hashed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub substitute_key: Option<String>,
    /// Its first netmap.
    pub netmap: Netmap,
}

impl fmt::Debug for JoinResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinResponse")
            .field("member", &self.member)
            .field("enclave", &self.enclave)
            .field("address", &self.address)
            .field("node_token", &"<redacted>")
            .field(
                "substitute_key",
                &self.substitute_key.as_ref().map(|_| "<redacted>"),
            )
            .field("netmap", &self.netmap)
            .finish()
    }
}

/// Who a chamber lets in: one member by name, or every member of a role.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ChamberRule {
    /// The member with this name.
    Member(Name),
    /// Every member with this role.
    Role(Role),
}

/// A chamber rule string is neither a member name nor `role:ROLE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("chamber rule {0:?} is neither a member name nor role:agent|asset|gateway")]
pub struct BadChamberRule(pub String);

impl TryFrom<String> for ChamberRule {
    type Error = BadChamberRule;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl std::str::FromStr for ChamberRule {
    type Err = BadChamberRule;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadChamberRule(s.to_owned());
        match s.strip_prefix("role:") {
            Some(r) => r.parse().map(ChamberRule::Role).map_err(|_| bad()),
            None => Name::new(s).map(ChamberRule::Member).map_err(|_| bad()),
        }
    }
}

impl From<ChamberRule> for String {
    fn from(r: ChamberRule) -> Self {
        r.to_string()
    }
}

impl fmt::Display for ChamberRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChamberRule::Member(n) => write!(f, "{n}"),
            ChamberRule::Role(r) => write!(f, "role:{r}"),
        }
    }
}

/// `POST /api/v1/enclaves/{name}/chambers`, and a chamber as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Chamber {
    /// Chamber name, unique in the enclave.
    pub name: Name,
    /// The protected asset's member name (it may join later: the chamber
    /// then protects it from its first packet).
    pub asset: Name,
    /// Who may reach the asset: member names or `role:agent|asset|gateway`.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>, example = json!(["agent-1", "role:gateway"])))]
    pub allow: Vec<ChamberRule>,
}

/// One member's line in the topology view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct TopologyEntry {
    /// Member name.
    pub name: Name,
    /// Its role.
    pub role: Role,
    /// Its overlay address.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub address: Ipv4Net,
    /// The members it may reach, sorted.
    pub peers: Vec<Name>,
}

/// `GET /api/v1/enclaves/{name}/topology`: who can reach whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Topology {
    /// The enclave.
    pub enclave: Name,
    /// Its netmap version.
    pub version: u64,
    /// Every member with its peers, sorted by name.
    pub members: Vec<TopologyEntry>,
}

/// An LLM provider whose key the vault can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[non_exhaustive]
pub enum Provider {
    /// OpenAI.
    Openai,
    /// Anthropic.
    Anthropic,
    /// Google Gemini.
    Gemini,
    /// AWS Bedrock (secret is `ACCESS_KEY_ID:SECRET_ACCESS_KEY`).
    Bedrock,
}

impl Provider {
    /// Every provider, in a stable order.
    pub const ALL: [Provider; 4] = [
        Provider::Openai,
        Provider::Anthropic,
        Provider::Gemini,
        Provider::Bedrock,
    ];

    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Openai => "openai",
            Provider::Anthropic => "anthropic",
            Provider::Gemini => "gemini",
            Provider::Bedrock => "bedrock",
        }
    }
}

/// The string is not a known provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider {0:?} (expected openai, anthropic, gemini or bedrock)")]
pub struct UnknownProvider(pub String);

impl std::str::FromStr for Provider {
    type Err = UnknownProvider;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Provider::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownProvider(s.to_owned()))
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `PUT /api/v1/credentials/{name}`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PutCredential {
    /// Which provider the key is for.
    pub provider: Provider,
    /// The real API key. Stored encrypted, never returned by the admin API.
    pub secret: String,
}

impl fmt::Debug for PutCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PutCredential")
            .field("provider", &self.provider)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// What the admin API says about a stored credential (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CredentialInfo {
    /// Credential name.
    pub name: Name,
    /// Its provider.
    pub provider: Provider,
    /// Last change, Unix seconds.
    pub updated_at: i64,
}

/// `PUT /api/v1/enclaves/{name}/policy`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PutPolicy {
    /// The policy document, TOML text.
    pub content: String,
}

/// A stored policy document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PolicyInfo {
    /// The enclave it governs.
    pub enclave: Name,
    /// Increments on every change, starting at 1.
    pub version: u64,
    /// The policy document, TOML text.
    pub content: String,
    /// Time of this version, Unix seconds.
    pub updated_at: i64,
}

/// A credential as handed to a gateway member.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct GatewayCredential {
    /// Credential name.
    pub name: Name,
    /// Its provider.
    pub provider: Provider,
    /// The decrypted secret.
    pub secret: String,
}

impl fmt::Debug for GatewayCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayCredential")
            .field("name", &self.name)
            .field("provider", &self.provider)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// `GET /api/v1/node/gateway-config`: what the enclave's ASC needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct GatewayConfig {
    /// The gateway's enclave.
    pub enclave: Name,
    /// The enclave's policy, if one was set.
    pub policy: Option<PolicyInfo>,
    /// The credentials the policy's `[credentials]` table names.
    pub credentials: Vec<GatewayCredential>,
    /// The enclave's agent members and the digests of their substitute keys.
    #[serde(default)]
    pub agents: Vec<GatewayAgent>,
}

/// An agent member as its enclave's gateway knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct GatewayAgent {
    /// Member name.
    pub name: Name,
    /// Its overlay address (the only source its key is accepted from).
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "100.64.0.2"))]
    pub address: std::net::Ipv4Addr,
    /// Hex SHA-256 of its substitute key.
    pub substitute_sha256: String,
}

/// One record of the admin audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// Time, Unix seconds.
    pub at: i64,
    /// Who acted: `admin`, `node:<enclave>/<member>` or `controller`.
    pub actor: String,
    /// What was done, e.g. `enclave.create`.
    pub action: String,
    /// What it was done to.
    pub target: String,
    /// Non-secret details (JSON).
    pub detail: serde_json::Value,
    /// Hex SHA-256 linking this record to the previous one.
    pub hash: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chamber_rules_parse() {
        assert_eq!(
            "role:agent".parse::<ChamberRule>(),
            Ok(ChamberRule::Role(Role::Agent))
        );
        assert!(matches!(
            "agent-1".parse::<ChamberRule>(),
            Ok(ChamberRule::Member(_))
        ));
        assert!("role:admin".parse::<ChamberRule>().is_err());
        assert!("Bad Name".parse::<ChamberRule>().is_err());
        let r: ChamberRule = "role:gateway"
            .parse()
            .unwrap_or(ChamberRule::Role(Role::Agent));
        assert_eq!(r.to_string(), "role:gateway");
    }

    #[test]
    fn requests_refuse_unknown_fields() {
        let e = serde_json::from_str::<CreateEnclave>(r#"{"name":"a","agent_to_agnet":false}"#);
        assert!(e.is_err());
        let ok = serde_json::from_str::<CreateEnclave>(r#"{"name":"a","cidr":"100.64.1.0/24"}"#);
        assert!(ok.is_ok());
    }

    #[test]
    fn secrets_hidden_from_debug() {
        let c = PutCredential {
            provider: Provider::Openai,
            secret: "sk-real".into(),
        };
        assert!(!format!("{c:?}").contains("sk-real"));
    }
}
