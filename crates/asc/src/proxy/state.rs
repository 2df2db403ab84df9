//! What every request of a running ASC shares.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use crate::approval::Approvals;
use crate::budget::Ledger;
use crate::ca::InterceptionCa;
use crate::config::{Config, Source};
use crate::credential::{Agents, RealKey};
use crate::inspector::Inspector;
use crate::mcp::pins::Pins;
use crate::policy::Policy;
use crate::provider::Provider;
use crate::session_log::SessionLog;

use super::upstream::Upstream;

/// A loaded policy with its compiled DLP engine.
pub struct Active {
    /// The policy.
    pub policy: Policy,
    /// Its engine.
    pub inspector: Inspector,
}

/// Loads and compiles the policy file.
///
/// # Errors
/// A message saying what is wrong with it.
pub fn load_policy(path: &Path) -> Result<Active, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    compile_policy(
        &text,
        path.parent().unwrap_or(Path::new(".")),
        &path.display().to_string(),
    )
}

/// Compiles policy text; relative paths in it are relative to `base`, and
/// errors name `origin`.
///
/// # Errors
/// A message saying what is wrong with it.
pub fn compile_policy(text: &str, base: &Path, origin: &str) -> Result<Active, String> {
    let mut policy = Policy::parse(text).map_err(|e| format!("{origin}: {e}"))?;
    policy.resolve_paths(base);
    let inspector = Inspector::new(&policy.dlp).map_err(|e| format!("{origin}: dlp: {e}"))?;
    Ok(Active { policy, inspector })
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Exchanges started.
    pub requests: AtomicU64,
    /// Forwarded upstream.
    pub forwarded: AtomicU64,
    /// Refused by policy (request or response).
    pub blocked: AtomicU64,
    /// Refused before policy (authentication, malformed, too large).
    pub rejected: AtomicU64,
    /// Upstream failures.
    pub upstream_errors: AtomicU64,
}

impl Counters {
    /// Adds one.
    pub fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// The policy in force (or why none is) and the file time it came from.
type Loaded = (Result<Arc<Active>, String>, Option<SystemTime>);

/// Shared state.
pub struct State {
    /// The configuration.
    pub config: Config,
    active: RwLock<Loaded>,
    agents: RwLock<Arc<Agents>>,
    keys: RwLock<Arc<BTreeMap<Provider, RealKey>>>,
    /// The outbound client.
    pub client: Upstream,
    /// The session log.
    pub log: SessionLog,
    /// Token spending.
    pub ledger: Mutex<Ledger>,
    /// Held tool calls.
    pub approvals: Approvals,
    /// The interception CA.
    pub ca: Arc<InterceptionCa>,
    /// Counters.
    pub counters: Counters,
    /// Pinned MCP tool definitions.
    pub mcp_pins: Pins,
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

impl State {
    /// Assembles the state; `active` is the policy loaded at start (or why
    /// there is none yet: then every request is refused).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: Config,
        active: Result<Active, String>,
        agents: Agents,
        keys: BTreeMap<Provider, RealKey>,
        client: Upstream,
        log: SessionLog,
        ca: Arc<InterceptionCa>,
        mcp_pins: Pins,
    ) -> Self {
        let stamp = match &config.source {
            Source::File(f) => mtime(f),
            Source::Controller(_) => None,
        };
        Self {
            config,
            active: RwLock::new((active.map(Arc::new), stamp)),
            agents: RwLock::new(Arc::new(agents)),
            keys: RwLock::new(Arc::new(keys)),
            client,
            log,
            ledger: Mutex::new(Ledger::default()),
            approvals: Approvals::default(),
            ca,
            counters: Counters::default(),
            mcp_pins,
        }
    }

    /// The policy in force, or why none is (then everything is refused).
    pub fn active(&self) -> Result<Arc<Active>, String> {
        self.active
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone()
    }

    /// The version of the policy in force (empty when none is).
    pub fn policy_version(&self) -> String {
        self.active()
            .map(|a| a.policy.version.clone())
            .unwrap_or_default()
    }

    /// The agents known now.
    pub fn agents(&self) -> Arc<Agents> {
        self.agents
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The real key for `provider`, if the gateway holds one.
    pub fn key_for(&self, provider: Provider) -> Option<RealKey> {
        self.keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&provider)
            .cloned()
    }

    /// Replaces policy, agents and keys at once (controller mode). A policy
    /// that does not compile refuses everything until a good one arrives.
    pub fn apply_enclave(
        &self,
        active: Result<Active, String>,
        agents: Agents,
        keys: BTreeMap<Provider, RealKey>,
    ) {
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
        *self.agents.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(agents);
        *self.active.write().unwrap_or_else(|p| p.into_inner()) = (active.map(Arc::new), None);
    }

    /// Replaces the agents only (a netmap change in controller mode).
    pub fn set_agents(&self, agents: Agents) {
        *self.agents.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(agents);
    }

    /// Reloads the policy file if it changed (standalone mode). A broken
    /// file replaces the policy with "refuse everything" until it is fixed:
    /// fail closed.
    pub fn reload_if_changed(&self) {
        let Source::File(file) = &self.config.source else {
            return;
        };
        let now = mtime(file);
        if self.active.read().unwrap_or_else(|p| p.into_inner()).1 == now {
            return;
        }
        let next = load_policy(file).map(Arc::new);
        match &next {
            Ok(a) => tracing::info!(version = %a.policy.version, "policy reloaded"),
            Err(e) => {
                tracing::error!(error = %e, "policy invalid: refusing every request until it is fixed")
            }
        }
        *self.active.write().unwrap_or_else(|p| p.into_inner()) = (next, now);
    }

    /// Every real key (to scrub them from anything an upstream echoes).
    pub fn real_keys(&self) -> Vec<String> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner()).clone();
        let mut v = vec![];
        for k in keys.values() {
            v.push(k.expose().to_owned());
            // Bedrock's secret is `ACCESS_KEY_ID:SECRET`: scrub both halves.
            if let Some((a, s)) = k.expose().split_once(':') {
                v.push(a.to_owned());
                v.push(s.to_owned());
            }
        }
        v
    }
}
