//! Credential substitution: agents present a substitute key, the ASC
//! recognises it (in constant time, bound to the agent's source address),
//! strips it, and puts the real key on the outbound request.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{AgentEntry, KeySource, Upstream};
use crate::provider::Provider;
use proto::api::GatewayAgent;
use proto::{Netmap, Role};

/// A known agent.
#[derive(Debug, Clone)]
pub struct Agent {
    /// Its name.
    pub name: String,
    key_digest: [u8; 32],
    source: Option<IpAddr>,
}

impl Agent {
    /// The only source address it is accepted from, if bound to one.
    pub fn source(&self) -> Option<IpAddr> {
        self.source
    }
}

/// Agents by substitute key.
#[derive(Debug, Clone, Default)]
pub struct Agents {
    list: Vec<Agent>,
}

/// Why a caller is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdentifyError {
    /// The request carries no key where the provider puts it.
    #[error("no API key on the request")]
    NoKey,
    /// The key is not a substitute key of this enclave (or comes from the
    /// wrong source address: the two are not told apart, so a probe learns
    /// nothing).
    #[error("the API key is not valid for this gateway")]
    Unknown,
}

impl Agents {
    /// From the configuration's agent list.
    pub fn new(entries: &[AgentEntry]) -> Self {
        Self {
            list: entries
                .iter()
                .map(|a| Agent {
                    name: a.name.clone(),
                    key_digest: Sha256::digest(a.substitute_key.as_bytes()).into(),
                    source: a.source,
                })
                .collect(),
        }
    }

    /// The agent holding `key` and calling from `peer`. Every entry is
    /// compared (digests, constant time), whatever matches first.
    ///
    /// # Errors
    /// [`IdentifyError::Unknown`].
    pub fn identify(&self, key: &str, peer: IpAddr) -> Result<&Agent, IdentifyError> {
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let mut found = None;
        for a in &self.list {
            let same = bool::from(a.key_digest.ct_eq(&digest));
            let from_ok = a.source.is_none_or(|s| s == canonical(peer));
            if same && from_ok && found.is_none() {
                found = Some(a);
            }
        }
        found.ok_or(IdentifyError::Unknown)
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl Agents {
    /// The enclave's agent members (controller mode): each key is accepted
    /// only from the member's overlay address, and only while the member
    /// is in `netmap` (a removed member is refused as soon as the netmap
    /// says so). Without a netmap, nobody.
    pub fn from_enclave(agents: &[GatewayAgent], netmap: Option<&Netmap>) -> Self {
        let Some(netmap) = netmap else {
            return Self::default();
        };
        let list = agents
            .iter()
            .filter(|a| {
                netmap.peers.iter().any(|p| {
                    p.name == a.name
                        && p.role == Role::Agent
                        && p.allowed_ips.iter().any(|n| n.addr() == a.address)
                })
            })
            .filter_map(|a| {
                let digest: [u8; 32] = hex::decode(&a.substitute_sha256).ok()?.try_into().ok()?;
                Some(Agent {
                    name: a.name.to_string(),
                    key_digest: digest,
                    source: Some(IpAddr::V4(a.address)),
                })
            })
            .collect();
        Self { list }
    }

    /// The agents, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Agent> {
        self.list.iter()
    }

    /// How many agents are known.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether no agent is known.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The agent bound to source address `peer` (MCP callers carry no key).
    pub fn by_source(&self, peer: IpAddr) -> Option<&Agent> {
        self.list.iter().find(|a| a.source == Some(canonical(peer)))
    }
}

/// Headers that carry a key (or hop-by-hop state) and are never copied
/// from the agent's request to the upstream.
pub const STRIPPED: &[&str] = &[
    "authorization",
    "x-api-key",
    "x-goog-api-key",
    "proxy-authorization",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
    "accept-encoding",
];

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The substitute key as each provider's SDK sends it. Bedrock's is the
/// access key id of the SigV4 `Authorization` header (the signature is
/// checked separately).
pub fn presented_key(
    provider: Provider,
    headers: &[(String, String)],
) -> Result<String, IdentifyError> {
    let bearer = || {
        header(headers, "authorization")
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .map(str::to_owned)
    };
    let found = match provider {
        Provider::Openai => bearer(),
        Provider::Anthropic => header(headers, "x-api-key")
            .map(str::to_owned)
            .or_else(bearer),
        Provider::Gemini => header(headers, "x-goog-api-key")
            .map(str::to_owned)
            .or_else(bearer),
        Provider::Bedrock => header(headers, "authorization")
            .and_then(|v| crate::sigv4::Authorization::parse(v).ok())
            .map(|a| a.access_key),
    };
    found.filter(|k| !k.is_empty()).ok_or(IdentifyError::NoKey)
}

/// The real-key header for `provider` (Bedrock signs instead).
pub fn key_header(provider: Provider, key: &str) -> Option<(&'static str, String)> {
    match provider {
        Provider::Openai => Some(("authorization", format!("Bearer {key}"))),
        Provider::Anthropic => Some(("x-api-key", key.to_owned())),
        Provider::Gemini => Some(("x-goog-api-key", key.to_owned())),
        Provider::Bedrock => None,
    }
}

/// A real key. It is never formatted (`Debug` prints a placeholder) and
/// only [`RealKey::expose`] hands it out, to the outbound request.
#[derive(Clone)]
pub struct RealKey(String);

impl From<String> for RealKey {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl RealKey {
    /// The key.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for RealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RealKey(…)")
    }
}

/// Why a real key cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The environment variable is unset or empty.
    #[error("credential {0}: environment variable {1} is not set")]
    Env(String, String),
    /// The file cannot be read.
    #[error("credential {0}: {1}")]
    File(String, std::io::Error),
    /// The file is readable by others than its owner.
    #[error("credential {0}: {1} must not be readable by group or others (chmod 600)")]
    Mode(String, String),
}

fn load_one(name: &str, source: &KeySource) -> Result<RealKey, KeyError> {
    let text = match source {
        KeySource::Env(var) => std::env::var(var)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| KeyError::Env(name.into(), var.clone()))?,
        KeySource::File(path) => read_private(name, path)?,
    };
    Ok(RealKey(text.trim().to_owned()))
}

fn read_private(name: &str, path: &Path) -> Result<String, KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| KeyError::File(name.into(), e))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(KeyError::Mode(name.into(), path.display().to_string()));
    }
    std::fs::read_to_string(path).map_err(|e| KeyError::File(name.into(), e))
}

/// Loads every configured real key; all problems at once.
///
/// # Errors
/// One message per key that could not be loaded.
pub fn load_keys(
    sources: &BTreeMap<String, KeySource>,
) -> Result<BTreeMap<String, RealKey>, Vec<KeyError>> {
    let mut keys = BTreeMap::new();
    let mut errors = vec![];
    for (name, source) in sources {
        match load_one(name, source) {
            Ok(k) => {
                keys.insert(name.clone(), k);
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(keys)
    } else {
        Err(errors)
    }
}

/// The standalone keys by provider: each upstream's `credential`.
pub fn by_provider(
    upstreams: &BTreeMap<Provider, Upstream>,
    keys: &BTreeMap<String, RealKey>,
) -> BTreeMap<Provider, RealKey> {
    upstreams
        .iter()
        .filter_map(|(p, u)| Some((*p, keys.get(&u.credential)?.clone())))
        .collect()
}

/// Removes every occurrence of any real key from `text` (upstream error
/// bodies sometimes echo the key they were sent).
pub fn scrub(text: &[u8], keys: &[&str]) -> Vec<u8> {
    let mut out = text.to_vec();
    for k in keys.iter().filter(|k| k.len() >= 8) {
        let needle = k.as_bytes();
        let mut res = Vec::with_capacity(out.len());
        let mut i = 0;
        while i < out.len() {
            if out[i..].starts_with(needle) {
                res.extend_from_slice(b"[REDACTED:api-key]");
                i += needle.len();
            } else {
                res.push(out[i]);
                i += 1;
            }
        }
        out = res;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agents() -> Agents {
        Agents::new(&[
            AgentEntry {
                name: "a1".into(),
                substitute_key: "sub-aaaaaaaaaaaaaaaa".into(),
                source: Some("127.0.0.1".parse().expect("ip")),
            },
            AgentEntry {
                name: "a2".into(),
                substitute_key: "sub-bbbbbbbbbbbbbbbb".into(),
                source: None,
            },
        ])
    }

    #[test]
    fn identify_by_key_and_source() {
        let a = agents();
        let lo: IpAddr = "127.0.0.1".parse().expect("ip");
        let other: IpAddr = "127.0.0.2".parse().expect("ip");
        assert_eq!(
            a.identify("sub-aaaaaaaaaaaaaaaa", lo).expect("a1").name,
            "a1"
        );
        assert_eq!(
            a.identify("sub-aaaaaaaaaaaaaaaa", other).err(),
            Some(IdentifyError::Unknown)
        );
        assert_eq!(
            a.identify("sub-bbbbbbbbbbbbbbbb", other).expect("a2").name,
            "a2"
        );
        assert_eq!(
            a.identify("sub-cccccccccccccccc", lo).err(),
            Some(IdentifyError::Unknown)
        );
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().expect("ip");
        assert_eq!(
            a.identify("sub-aaaaaaaaaaaaaaaa", mapped).expect("a1").name,
            "a1"
        );
    }

    #[test]
    fn keys_where_sdks_put_them() {
        let h = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
        assert_eq!(
            presented_key(Provider::Openai, &h("Authorization", "Bearer k1")),
            Ok("k1".into())
        );
        assert_eq!(
            presented_key(Provider::Anthropic, &h("x-api-key", "k2")),
            Ok("k2".into())
        );
        assert_eq!(
            presented_key(Provider::Anthropic, &h("authorization", "Bearer k3")),
            Ok("k3".into())
        );
        assert_eq!(
            presented_key(Provider::Gemini, &h("x-goog-api-key", "k4")),
            Ok("k4".into())
        );
        assert_eq!(
            presented_key(Provider::Openai, &h("x-api-key", "k")),
            Err(IdentifyError::NoKey)
        );
        assert_eq!(
            presented_key(Provider::Openai, &h("authorization", "Bearer ")),
            Err(IdentifyError::NoKey)
        );
        let sig = "AWS4-HMAC-SHA256 Credential=SUBKEY/20261127/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=".to_owned()
            + &"0".repeat(64);
        assert_eq!(
            presented_key(Provider::Bedrock, &h("Authorization", &sig)),
            Ok("SUBKEY".into())
        );
    }

    #[test]
    fn scrub_and_debug() {
        assert_eq!(
            scrub(b"bad key sk-real-12345678 given", &["sk-real-12345678"]),
            b"bad key [REDACTED:api-key] given"
        );
        assert_eq!(format!("{:?}", RealKey("secret".into())), "RealKey(…)");
    }
}
