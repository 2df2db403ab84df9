//! The ASC's configuration file (`configs/asc.example.toml`): where it
//! listens, where each provider is, the real keys (standalone mode), the
//! agents and their substitute keys, the policy and the session log.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::provider::Provider;
use serde::Deserialize;

use crate::duration;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListen {
    reverse: Option<String>,
    #[serde(default)]
    reverse_tls: bool,
    forward: Option<String>,
    admin: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    base_url: String,
    ca_file: Option<PathBuf>,
    credential: Option<String>,
    #[serde(default)]
    hosts: Vec<String>,
    region: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCredential {
    env: Option<String>,
    file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    name: String,
    substitute_key: String,
    source: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInterception {
    ca_dir: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicyRef {
    file: Option<PathBuf>,
    #[serde(default)]
    controller: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawController {
    state_dir: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    database: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    token_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_body: Option<usize>,
    upstream_timeout: Option<String>,
    max_connections: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    enclave: Option<String>,
    #[serde(default)]
    listen: RawListen,
    #[serde(default)]
    upstream: BTreeMap<String, RawUpstream>,
    #[serde(default)]
    credentials: BTreeMap<String, RawCredential>,
    #[serde(default)]
    agent: Vec<RawAgent>,
    #[serde(default)]
    interception: RawInterception,
    #[serde(default)]
    policy: RawPolicyRef,
    #[serde(default)]
    controller: RawController,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    admin: RawAdmin,
    #[serde(default)]
    limits: RawLimits,
}

/// Where a real key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// An environment variable of the ASC process.
    Env(String),
    /// A file readable by the owner only.
    File(PathBuf),
}

/// One provider's upstream.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// `https://api.openai.com` (a path prefix is kept).
    pub base_url: String,
    /// Extra CA to trust for it.
    pub ca_file: Option<PathBuf>,
    /// Name of its real key in `[credentials]` (standalone mode; with a
    /// controller, the key the enclave's policy names for the provider).
    pub credential: String,
    /// Host names the forward proxy intercepts for this provider.
    pub hosts: Vec<String>,
    /// AWS region (Bedrock; default: the agent's signing region).
    pub region: Option<String>,
}

/// An agent allowed through (standalone mode).
#[derive(Debug, Clone)]
pub struct AgentEntry {
    /// Its name in logs and budgets.
    pub name: String,
    /// The substitute key it presents.
    pub substitute_key: String,
    /// The only source address it may come from.
    pub source: Option<IpAddr>,
}

/// Where the policy, the agents and the real keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Standalone: a policy file (reloaded when it changes), and the
    /// `[credentials]` and `[[agent]]` tables.
    File(PathBuf),
    /// The enclave's controller, reached with the node credentials in the
    /// gateway member's state dir: policy, vault keys and agent members
    /// follow the controller without a restart.
    Controller(PathBuf),
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The enclave this gateway serves (for logs).
    pub enclave: String,
    /// Reverse proxy address.
    pub reverse: Option<SocketAddr>,
    /// Serve the reverse proxy over TLS from the interception CA.
    pub reverse_tls: bool,
    /// Forward proxy address.
    pub forward: Option<SocketAddr>,
    /// Admin API address.
    pub admin: Option<SocketAddr>,
    /// Upstreams by provider.
    pub upstreams: BTreeMap<Provider, Upstream>,
    /// Real keys by name.
    pub credentials: BTreeMap<String, KeySource>,
    /// Agents.
    pub agents: Vec<AgentEntry>,
    /// Interception CA directory.
    pub ca_dir: PathBuf,
    /// Where policy, agents and keys come from.
    pub source: Source,
    /// The configuration file's directory (anchors relative paths).
    pub base_dir: PathBuf,
    /// Session log database.
    pub log_database: PathBuf,
    /// Admin token file (created 0600 if missing).
    pub admin_token_file: PathBuf,
    /// Largest request or response body accepted.
    pub max_body: usize,
    /// How long to wait for an upstream's response headers.
    pub upstream_timeout: Duration,
    /// Concurrent connections per listener.
    pub max_connections: usize,
}

/// Why a configuration is refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// Not TOML or unknown keys.
    #[error("{0}: {1}")]
    Parse(PathBuf, String),
    /// Values are wrong (every problem, one per line).
    #[error("{0}:\n{1}")]
    Invalid(PathBuf, String),
}

/// The host names each provider's API is reached by.
pub fn default_hosts(p: Provider) -> Vec<String> {
    match p {
        Provider::Openai => vec!["api.openai.com".into()],
        Provider::Anthropic => vec!["api.anthropic.com".into()],
        Provider::Gemini => vec!["generativelanguage.googleapis.com".into()],
        Provider::Bedrock => [
            "us-east-1",
            "us-west-2",
            "eu-central-1",
            "eu-west-1",
            "ap-northeast-1",
        ]
        .iter()
        .map(|r| format!("bedrock-runtime.{r}.amazonaws.com"))
        .collect(),
    }
}

fn resolve(base: &Path, p: PathBuf) -> PathBuf {
    if p.is_absolute() {
        p
    } else {
        base.join(p)
    }
}

impl Config {
    /// Reads and validates `path`; relative paths in it are relative to
    /// its directory.
    ///
    /// # Errors
    /// A [`ConfigError`] listing every problem.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io(path.into(), e))?;
        Self::parse(&text, path)
    }

    /// Validates config text; `path` names it and anchors relative paths.
    ///
    /// # Errors
    /// A [`ConfigError`] listing every problem.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| ConfigError::Parse(path.into(), e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let mut problems: Vec<String> = vec![];
        let mut addr = |key: &str, v: Option<String>| {
            v.and_then(|s| match s.parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    problems.push(format!("listen.{key}: `{s}` is not an address:port"));
                    None
                }
            })
        };
        let reverse = addr("reverse", raw.listen.reverse);
        let forward = addr("forward", raw.listen.forward);
        let admin = addr("admin", raw.listen.admin);
        let controller = raw.policy.controller;
        if reverse.is_none() && forward.is_none() && !controller {
            problems.push("listen: set reverse, forward or both".into());
        }
        let mut credentials = BTreeMap::new();
        for (name, c) in raw.credentials {
            match (c.env, c.file) {
                (Some(e), None) => {
                    credentials.insert(name, KeySource::Env(e));
                }
                (None, Some(f)) => {
                    credentials.insert(name, KeySource::File(resolve(&base, f)));
                }
                _ => problems.push(format!(
                    "credentials.{name}: set exactly one of env or file"
                )),
            }
        }
        let mut upstreams = BTreeMap::new();
        for (name, u) in raw.upstream {
            let Ok(p) = name.parse::<Provider>() else {
                problems.push(format!(
                    "upstream.{name}: unknown provider (openai, anthropic, gemini, bedrock)"
                ));
                continue;
            };
            if !(u.base_url.starts_with("https://") || u.base_url.starts_with("http://")) {
                problems.push(format!(
                    "upstream.{name}.base_url: must start with https:// or http://"
                ));
            }
            let credential = u.credential.unwrap_or_default();
            if !controller && !credentials.contains_key(&credential) {
                problems.push(format!(
                    "upstream.{name}.credential: `{credential}` is not in [credentials]"
                ));
            }
            upstreams.insert(
                p,
                Upstream {
                    base_url: u.base_url.trim_end_matches('/').to_owned(),
                    ca_file: u.ca_file.map(|f| resolve(&base, f)),
                    credential,
                    hosts: if u.hosts.is_empty() {
                        default_hosts(p)
                    } else {
                        u.hosts
                    },
                    region: u.region,
                },
            );
        }
        let mut agents = vec![];
        for a in raw.agent {
            if a.substitute_key.len() < 16 {
                problems.push(format!(
                    "agent {}: substitute_key needs at least 16 characters",
                    a.name
                ));
            }
            if agents.iter().any(|b: &AgentEntry| b.name == a.name) {
                problems.push(format!("agent {}: listed twice", a.name));
            }
            let source = match a.source.map(|s| s.parse::<IpAddr>()) {
                Some(Ok(ip)) => Some(ip),
                Some(Err(_)) => {
                    problems.push(format!("agent {}: source is not an IP address", a.name));
                    None
                }
                None => None,
            };
            agents.push(AgentEntry {
                name: a.name,
                substitute_key: a.substitute_key,
                source,
            });
        }
        let source = match (controller, raw.policy.file, raw.controller.state_dir) {
            (false, Some(f), None) => Source::File(resolve(&base, f)),
            (false, None, _) => {
                problems.push("policy.file: required (or policy.controller = true)".into());
                Source::File(PathBuf::new())
            }
            (false, Some(_), Some(_)) => {
                problems.push("controller.state_dir: only with policy.controller = true".into());
                Source::File(PathBuf::new())
            }
            (true, Some(_), _) => {
                problems.push("policy: set either file or controller = true, not both".into());
                Source::File(PathBuf::new())
            }
            (true, None, None) => {
                problems.push(
                    "controller.state_dir: required with policy.controller = true \
                     (the gateway member's overlay-node state dir)"
                        .into(),
                );
                Source::File(PathBuf::new())
            }
            (true, None, Some(d)) => {
                if !agents.is_empty() || !credentials.is_empty() {
                    problems.push(
                        "with policy.controller = true, agents and keys come from the \
                         enclave: remove [[agent]] and [credentials]"
                            .into(),
                    );
                }
                Source::Controller(resolve(&base, d))
            }
        };
        let upstream_timeout = match raw.limits.upstream_timeout.as_deref().map(duration::parse) {
            None => Duration::from_secs(300),
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                problems.push(format!("limits.upstream_timeout: {e}"));
                Duration::ZERO
            }
        };
        if !problems.is_empty() {
            return Err(ConfigError::Invalid(path.into(), problems.join("\n")));
        }
        let state = |name: &str| base.join(name);
        Ok(Self {
            enclave: raw.enclave.unwrap_or_else(|| "standalone".into()),
            reverse,
            reverse_tls: raw.listen.reverse_tls,
            forward,
            admin,
            upstreams,
            credentials,
            agents,
            ca_dir: raw
                .interception
                .ca_dir
                .map_or_else(|| state("asc-ca"), |d| resolve(&base, d)),
            source,
            base_dir: base.clone(),
            log_database: raw
                .log
                .database
                .map_or_else(|| state("asc-log.db"), |d| resolve(&base, d)),
            admin_token_file: raw
                .admin
                .token_file
                .map_or_else(|| state("asc-admin.token"), |d| resolve(&base, d)),
            max_body: raw.limits.max_body.unwrap_or(32 << 20),
            upstream_timeout,
            max_connections: raw.limits.max_connections.unwrap_or(4096),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("/etc/cordon/asc.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn controller_mode_needs_the_state_dir_and_nothing_local() {
        let ok = parse(
            "[upstream.openai]\nbase_url = \"https://api.openai.com\"\n\
             [policy]\ncontroller = true\n[controller]\nstate_dir = \"gw\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            ok.source,
            Source::Controller(PathBuf::from("/etc/cordon/gw"))
        );
        assert!(
            ok.reverse.is_none() && ok.forward.is_none(),
            "set at start from the overlay address"
        );
        for (text, needle) in [
            ("[policy]\ncontroller = true\n", "controller.state_dir: required"),
            (
                "[policy]\ncontroller = true\n[controller]\nstate_dir = \"gw\"\n\
                 [[agent]]\nname = \"a\"\nsubstitute_key = \"sub-0123456789abcdef\"\n",
                "remove [[agent]] and [credentials]",
            ),
            (
                "[policy]\ncontroller = true\n[controller]\nstate_dir = \"gw\"\n\
                 [credentials]\nk = { env = \"K\" }\n",
                "remove [[agent]] and [credentials]",
            ),
            (
                "[listen]\nreverse = \"127.0.0.1:1\"\n[policy]\nfile = \"p.toml\"\ncontroller = true\n",
                "not both",
            ),
            (
                "[listen]\nreverse = \"127.0.0.1:1\"\n[policy]\nfile = \"p.toml\"\n[controller]\nstate_dir = \"gw\"\n",
                "only with policy.controller",
            ),
            ("[policy]\nfile = \"p.toml\"\n", "listen: set reverse"),
            (
                "[listen]\nreverse = \"127.0.0.1:1\"\n[upstream.openai]\nbase_url = \"https://x\"\n\
                 [policy]\nfile = \"p.toml\"\n",
                "upstream.openai.credential",
            ),
        ] {
            let e = parse(text).err().unwrap_or_default();
            assert!(e.contains(needle), "{needle} not in: {e}");
        }
    }
}
