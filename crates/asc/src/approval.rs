//! Tool calls held for a human: each is bound to the agent, tool, a hash
//! of its arguments and the policy version; a decision resolves exactly
//! one call; no decision before the deadline is a denial.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

/// A pending approval as the admin API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Pending {
    /// Its id.
    pub id: String,
    /// The agent whose model made the call.
    pub agent: String,
    /// The tool.
    pub tool: String,
    /// The arguments (what the human approves).
    pub arguments: String,
    /// SHA-256 of the arguments.
    pub arguments_sha256: String,
    /// The policy version it was held under.
    pub policy_version: String,
    /// Unix seconds when it is denied if undecided.
    pub expires_at: u64,
}

/// The decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Approved by a human.
    Approved,
    /// Denied by a human.
    Denied,
    /// Nobody decided in time.
    TimedOut,
    /// The policy changed while it waited.
    PolicyChanged,
}

/// Why a decision is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    /// No pending approval has this id (already decided, expired, or never
    /// existed).
    #[error("no pending approval with this id")]
    NotFound,
}

struct Entry {
    pending: Pending,
    reply: oneshot::Sender<Decision>,
}

/// The pending approvals.
#[derive(Clone, Default)]
pub struct Approvals {
    inner: Arc<Mutex<HashMap<String, Entry>>>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Approvals {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Holds a call and waits for its decision, at most `timeout`.
    pub async fn hold(
        &self,
        agent: &str,
        tool: &str,
        arguments: &str,
        policy_version: &str,
        timeout: Duration,
        current_version: impl Fn() -> String,
    ) -> (String, Decision) {
        let id = format!("apr-{}", hex::encode(rand::random::<[u8; 8]>()));
        let (tx, rx) = oneshot::channel();
        let pending = Pending {
            id: id.clone(),
            agent: agent.to_owned(),
            tool: tool.to_owned(),
            arguments: arguments.to_owned(),
            arguments_sha256: hex::encode(Sha256::digest(arguments.as_bytes())),
            policy_version: policy_version.to_owned(),
            expires_at: now_secs() + timeout.as_secs(),
        };
        tracing::info!(approval = %id, agent, tool, "tool call held for approval");
        self.lock().insert(id.clone(), Entry { pending, reply: tx });
        let decision = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(d)) => d,
            _ => Decision::TimedOut,
        };
        self.lock().remove(&id);
        let decision = if decision == Decision::Approved && current_version() != policy_version {
            Decision::PolicyChanged
        } else {
            decision
        };
        (id, decision)
    }

    /// Everything waiting.
    pub fn list(&self) -> Vec<Pending> {
        let mut v: Vec<Pending> = self.lock().values().map(|e| e.pending.clone()).collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Decides one pending call (single use).
    ///
    /// # Errors
    /// [`ApprovalError::NotFound`].
    pub fn decide(&self, id: &str, approve: bool) -> Result<Pending, ApprovalError> {
        let entry = self.lock().remove(id).ok_or(ApprovalError::NotFound)?;
        let _ = entry.reply.send(if approve {
            Decision::Approved
        } else {
            Decision::Denied
        });
        Ok(entry.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn approve_deny_timeout_single_use() {
        let a = Approvals::default();
        let a2 = a.clone();
        let waiter = tokio::spawn(async move {
            a2.hold("ag", "deploy", "{}", "v1", Duration::from_secs(30), || {
                "v1".into()
            })
            .await
        });
        let id = loop {
            if let Some(p) = a.list().first() {
                break p.id.clone();
            }
            tokio::task::yield_now().await;
        };
        let p = a.decide(&id, true).expect("pending");
        assert_eq!(p.tool, "deploy");
        assert_eq!(a.decide(&id, true), Err(ApprovalError::NotFound));
        assert_eq!(waiter.await.expect("join").1, Decision::Approved);

        tokio::time::pause();
        let (_, d) = a
            .hold("ag", "deploy", "{}", "v1", Duration::from_secs(5), || {
                "v1".into()
            })
            .await;
        assert_eq!(d, Decision::TimedOut);
        assert!(a.list().is_empty());
    }

    #[tokio::test]
    async fn policy_change_voids_approval() {
        let a = Approvals::default();
        let a2 = a.clone();
        let waiter = tokio::spawn(async move {
            a2.hold("ag", "t", "{}", "v1", Duration::from_secs(30), || {
                "v2".into()
            })
            .await
        });
        let id = loop {
            if let Some(p) = a.list().first() {
                break p.id.clone();
            }
            tokio::task::yield_now().await;
        };
        a.decide(&id, true).expect("pending");
        assert_eq!(waiter.await.expect("join").1, Decision::PolicyChanged);
    }
}
