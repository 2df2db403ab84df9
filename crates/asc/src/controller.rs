//! Controller mode (`[policy] controller = true`): the ASC of an enclave's
//! gateway member takes its policy, the real keys from the vault and the
//! list of agent members from the controller, with the node credentials in
//! the member's state dir, and follows them without a restart.
//!
//! The member's netmap is long-polled: a removed agent disappears from it
//! at once and is refused from the next request; every netmap change (a new
//! policy bumps the gateway's) refetches the gateway configuration, and a
//! slow refresh picks up rotated keys. If this gateway is itself removed,
//! everything is refused. While the controller is unreachable the last
//! configuration stays in force.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use control_client::follow::{follow, Update};
use control_client::{Client, Method, StatusCode, Trust};
use ipnet::Ipv4Net;
use proto::api::GatewayConfig;
use proto::{Name, Netmap};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::credential::{Agents, RealKey};
use crate::provider::Provider;
use crate::proxy::state::{compile_policy, Active};
use crate::proxy::State;

/// How often the gateway configuration is refetched without a netmap
/// change (key rotation in the vault reaches the gateway within this).
pub const REFRESH: Duration = Duration::from_secs(300);

/// How soon a failed fetch is retried.
const RETRY: Duration = Duration::from_secs(2);

/// The part of the node's `membership.json` the ASC needs.
#[derive(Debug, Deserialize)]
struct MembershipFile {
    controller: String,
    ca_sha256: String,
    enclave: Name,
    member: Name,
    address: Ipv4Net,
}

/// The gateway member's link to its controller.
#[derive(Clone)]
pub struct Link {
    client: Client,
    /// The enclave.
    pub enclave: Name,
    /// The gateway member's name.
    pub member: Name,
    /// Its overlay address (the only address the proxies listen on).
    pub address: Ipv4Addr,
}

/// Why the gateway configuration could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The controller no longer knows this member.
    #[error("this gateway is no longer a member of its enclave")]
    Revoked,
    /// No usable answer.
    #[error("controller: {0}")]
    Unavailable(String),
}

impl Link {
    /// Reads the member's state dir: `membership.json` and `node.token`
    /// (which must be 0600).
    ///
    /// # Errors
    /// A message naming the file and what is wrong.
    pub fn open(state_dir: &Path) -> anyhow::Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let mp = state_dir.join("membership.json");
        let m: MembershipFile = serde_json::from_slice(&std::fs::read(&mp).map_err(|e| {
            anyhow::anyhow!("{}: {e} (is the gateway member joined?)", mp.display())
        })?)
        .map_err(|e| anyhow::anyhow!("{}: {e}", mp.display()))?;
        let tp = state_dir.join("node.token");
        let meta = std::fs::metadata(&tp).map_err(|e| anyhow::anyhow!("{}: {e}", tp.display()))?;
        if meta.permissions().mode() & 0o077 != 0 {
            anyhow::bail!("{} is readable by group or others", tp.display());
        }
        let token = std::fs::read_to_string(&tp)
            .map_err(|e| anyhow::anyhow!("{}: {e}", tp.display()))?
            .trim()
            .to_owned();
        let client = Client::with_trust(&m.controller, Trust::Pinned(m.ca_sha256), Some(token))
            .map_err(|e| anyhow::anyhow!("{}: controller {}: {e}", mp.display(), m.controller))?;
        Ok(Self {
            client,
            enclave: m.enclave,
            member: m.member,
            address: m.address.addr(),
        })
    }

    /// Fetches the gateway configuration (`GET /api/v1/node/gateway-config`).
    ///
    /// # Errors
    /// [`FetchError`].
    pub async fn gateway_config(&self) -> Result<GatewayConfig, FetchError> {
        let res = tokio::time::timeout(
            Duration::from_secs(20),
            self.client
                .send(Method::GET, "/api/v1/node/gateway-config", None),
        )
        .await
        .map_err(|_| FetchError::Unavailable("no answer within 20 s".into()))?
        .map_err(|e| FetchError::Unavailable(e.to_string()))?;
        match res {
            (StatusCode::OK, body) => serde_json::from_slice(&body)
                .map_err(|e| FetchError::Unavailable(format!("unreadable configuration: {e}"))),
            (StatusCode::UNAUTHORIZED, _) => Err(FetchError::Revoked),
            (status, _) => Err(FetchError::Unavailable(format!("status {status}"))),
        }
    }
}

/// Policy and keys from a gateway configuration. Without a policy nothing
/// passes; a policy that does not compile refuses everything until fixed.
pub fn compile(
    cfg: &GatewayConfig,
    base: &Path,
) -> (Result<Active, String>, BTreeMap<Provider, RealKey>) {
    let active = match &cfg.policy {
        None => Err(format!(
            "enclave {} has no policy yet (overlay-controller policy set {} FILE): refusing every request",
            cfg.enclave, cfg.enclave
        )),
        Some(p) => compile_policy(
            &p.content,
            base,
            &format!("policy v{} of enclave {}", p.version, cfg.enclave),
        ),
    };
    let keys = cfg
        .credentials
        .iter()
        .filter_map(|c| {
            let p = c.provider.as_str().parse::<Provider>().ok()?;
            Some((p, RealKey::from(c.secret.clone())))
        })
        .collect();
    (active, keys)
}

/// The enclave's policy as the controller has it now (for `asc mcp-stdio`,
/// which runs once per server process).
///
/// # Errors
/// When the state dir, the controller or the policy is unusable.
pub async fn fetch_policy(state_dir: &Path, base: &Path) -> anyhow::Result<Active> {
    let link = Link::open(state_dir)?;
    let cfg = link.gateway_config().await?;
    compile(&cfg, base).0.map_err(|e| anyhow::anyhow!("{e}"))
}

/// What the follower holds between updates.
struct Follower {
    state: Arc<State>,
    link: Link,
    base: PathBuf,
    config: Option<GatewayConfig>,
    netmap: Option<Netmap>,
}

impl Follower {
    fn agents(&self) -> Agents {
        self.config.as_ref().map_or_else(Agents::default, |c| {
            Agents::from_enclave(&c.agents, self.netmap.as_ref())
        })
    }

    /// A new netmap: removals take effect at once, before any refetch.
    fn netmap(&mut self, m: Netmap) {
        self.netmap = Some(m);
        self.state.set_agents(self.agents());
    }

    /// Refetches and applies. Netmaps that arrive meanwhile are applied
    /// as they come (a slow controller does not delay a removal); `Ok(false)`
    /// when the follower ended (this gateway was revoked).
    async fn refresh(&mut self, rx: &mut mpsc::Receiver<Update>) -> Result<bool, FetchError> {
        let link = self.link.clone();
        let fetch = link.gateway_config();
        tokio::pin!(fetch);
        let cfg = loop {
            tokio::select! {
                biased;
                r = &mut fetch => break r?,
                update = rx.recv() => match update {
                    Some(Update::Netmap(m)) => self.netmap(*m),
                    Some(Update::Revoked) | None => return Ok(false),
                },
            }
        };
        let (active, keys) = compile(&cfg, &self.base);
        if let Err(e) = &active {
            tracing::error!(error = %e, "no usable policy: refusing every request");
        }
        self.config = Some(cfg);
        let agents = self.agents();
        tracing::info!(
            policy = %active.as_ref().map(|a| a.policy.version.clone()).unwrap_or_default(),
            agents = agents.len(),
            keys = keys.len(),
            "gateway configuration applied"
        );
        self.state.apply_enclave(active, agents, keys);
        Ok(true)
    }

    fn revoke(&self) {
        tracing::error!("this gateway was removed from its enclave: refusing every request");
        self.state.apply_enclave(
            Err("this gateway was removed from its enclave".into()),
            Agents::default(),
            BTreeMap::new(),
        );
    }
}

/// Follows the controller until `stop` or until this gateway is removed.
/// `base` anchors relative paths in the policy (fingerprint directories).
pub async fn run(state: Arc<State>, link: Link, base: PathBuf, stop: CancellationToken) {
    let (tx, mut rx) = mpsc::channel(4);
    let poll = tokio::spawn(follow(link.client.clone(), 0, tx, stop.child_token()));
    let mut f = Follower {
        state,
        link,
        base,
        config: None,
        netmap: None,
    };
    let mut next = Duration::ZERO;
    loop {
        tokio::select! {
            // Shutting down is not a revocation.
            biased;
            () = stop.cancelled() => break,
            update = rx.recv() => match update {
                Some(Update::Netmap(m)) => {
                    f.netmap(*m);
                    next = Duration::ZERO;
                }
                Some(Update::Revoked) | None => {
                    f.revoke();
                    break;
                }
            },
            () = tokio::time::sleep(next), if f.netmap.is_some() => {
                next = match tokio::select! {
                    biased;
                    () = stop.cancelled() => break,
                    r = f.refresh(&mut rx) => r,
                } {
                    Ok(true) => REFRESH,
                    Ok(false) | Err(FetchError::Revoked) => {
                        f.revoke();
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in = ?RETRY, "gateway configuration not refreshed; keeping the last one");
                        RETRY
                    }
                };
            }
        }
    }
    poll.abort();
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::api::{GatewayAgent, GatewayCredential, PolicyInfo};
    use sha2::{Digest, Sha256};

    fn config(policy: Option<&str>) -> GatewayConfig {
        let name = |s: &str| s.parse::<Name>().unwrap_or_else(|e| panic!("{e}"));
        GatewayConfig {
            enclave: name("e"),
            policy: policy.map(|p| PolicyInfo {
                enclave: name("e"),
                version: 3,
                content: p.to_owned(),
                updated_at: 0,
            }),
            credentials: vec![GatewayCredential {
                name: name("openai-prod"),
                provider: proto::api::Provider::Openai,
                secret: "sk-real".into(),
            }],
            agents: vec![GatewayAgent {
                name: name("a"),
                address: Ipv4Addr::new(100, 64, 0, 5),
                substitute_sha256: hex::encode(Sha256::digest(b"sub-key")),
            }],
        }
    }

    #[test]
    fn no_policy_or_a_broken_one_refuses_everything() {
        let (active, keys) = compile(&config(None), Path::new("/"));
        assert!(active.err().is_some_and(|e| e.contains("has no policy")));
        assert_eq!(
            keys.get(&Provider::Openai).map(RealKey::expose),
            Some("sk-real")
        );
        let (active, _) = compile(&config(Some("[models\n")), Path::new("/"));
        assert!(active
            .err()
            .is_some_and(|e| e.contains("policy v3 of enclave e")));
        let (active, _) = compile(
            &config(Some("[models]\nallow = [\"gpt-*\"]\n")),
            Path::new("/"),
        );
        assert!(active.is_ok_and(|a| a.policy.model_allowed("gpt-4o")));
    }

    #[test]
    fn an_agent_counts_only_while_its_netmap_lists_it_at_its_address() {
        let cfg = config(None);
        let ip = "100.64.0.5".parse().unwrap_or_else(|e| panic!("{e}"));
        let netmap = |addr: &str, role: &str| -> Netmap {
            serde_json::from_value(serde_json::json!({
                "version": 1, "enclave": "e", "member": "gw", "address": "100.64.0.1/32",
                "cidr": "100.64.0.0/24",
                "peers": [{"name": "a", "role": role, "public_key": "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                           "preshared_key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                           "endpoint": null, "allowed_ips": [addr]}]
            }))
            .unwrap_or_else(|e| panic!("{e}"))
        };
        let listed = Agents::from_enclave(&cfg.agents, Some(&netmap("100.64.0.5/32", "agent")));
        assert!(listed.identify("sub-key", ip).is_ok());
        assert!(listed
            .identify("sub-key", "100.64.0.6".parse().unwrap_or(ip))
            .is_err());
        assert!(listed.identify("sub-other", ip).is_err());
        for absent in [
            Agents::from_enclave(&cfg.agents, None),
            Agents::from_enclave(&cfg.agents, Some(&netmap("100.64.0.9/32", "agent"))),
            Agents::from_enclave(&cfg.agents, Some(&netmap("100.64.0.5/32", "asset"))),
        ] {
            assert!(absent.is_empty());
            assert!(absent.identify("sub-key", ip).is_err());
        }
    }
}
