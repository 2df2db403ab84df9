//! The controller's state and the operations on it, independent of HTTP.
//!
//! Storage is the source of truth; the [`Registry`] is the in-memory view
//! that netmaps are computed from, kept current by replaying the change log
//! (see [`crate::changes`]). Operations live in [`crate::ops`], one file per
//! domain noun.

use std::sync::{RwLock, RwLockReadGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use ipnet::Ipv4Net;
use tokio::sync::Mutex;

use crate::changes::{self, Kind};
use crate::db::Store;
use crate::error::Result;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::rows;
use crate::vault::Vault;

/// What the controller says about itself in join tokens.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The HTTPS URL nodes reach the API at.
    pub url: String,
    /// Hex SHA-256 of the CA certificate.
    pub ca_sha256: String,
    /// The pool enclave CIDRs are allocated from.
    pub pool: Ipv4Net,
}

/// The controller.
pub struct Controller {
    /// Storage.
    pub store: Store,
    /// The vault.
    pub vault: Vault,
    /// URL, CA fingerprint and pool.
    pub identity: Identity,
    /// Counters and gauges.
    pub metrics: Metrics,
    /// Long-poll wake-ups.
    pub hub: Hub,
    /// Last-seen times waiting to be written.
    pub seen: crate::seen::Seen,
    registry: RwLock<Registry>,
    applied: Mutex<i64>,
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Controller {
    /// Loads every enclave from storage.
    ///
    /// # Errors
    /// Storage errors, or a sealed enclave secret that does not open with
    /// this vault key.
    pub async fn load(store: Store, vault: Vault, identity: Identity) -> Result<Self> {
        let mut conn = store.pool().acquire().await?;
        // Read the log head first: changes committed while loading are then
        // replayed on top, which is harmless because applying is idempotent.
        let head = changes::head(&mut conn).await?;
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM enclaves")
            .fetch_all(&mut *conn)
            .await?;
        let mut registry = Registry::default();
        for id in ids {
            if let Some(view) = rows::load_enclave(&mut conn, &vault, id).await? {
                registry.insert(view);
            }
        }
        drop(conn);
        let metrics = Metrics::default();
        let ctl = Self {
            store,
            vault,
            identity,
            metrics,
            hub: Hub::default(),
            seen: crate::seen::Seen::default(),
            registry: RwLock::new(registry),
            applied: Mutex::new(head),
        };
        ctl.update_gauges();
        Ok(ctl)
    }

    /// Read access to the registry.
    pub fn registry(&self) -> RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(|p| p.into_inner())
    }

    fn update_gauges(&self) {
        let reg = self.registry();
        self.metrics.enclaves.set(reg.iter().count() as i64);
        self.metrics
            .members
            .set(reg.iter().map(|e| e.len() as i64).sum());
    }

    /// Applies every change in the log not yet applied here, waking the
    /// long-polls of the members each one affected.
    ///
    /// # Errors
    /// Storage errors; what was applied before the error stays applied.
    pub async fn replay(&self) -> Result<()> {
        let mut applied = self.applied.lock().await;
        let mut conn = self.store.pool().acquire().await?;
        loop {
            let batch = changes::since(&mut conn, *applied, 1000).await?;
            if batch.is_empty() {
                break;
            }
            for change in batch {
                self.apply(&mut conn, &change).await?;
                *applied = change.seq;
                self.metrics.changes_applied.inc();
            }
        }
        drop(conn);
        self.update_gauges();
        Ok(())
    }

    async fn apply(&self, conn: &mut sqlx::AnyConnection, c: &changes::Change) -> Result<()> {
        match c.kind {
            Kind::EnclaveCreated => {
                if let Some(view) = rows::load_enclave(conn, &self.vault, c.enclave_id).await? {
                    self.registry_mut().insert(view);
                }
            }
            Kind::EnclaveDeleted => {
                let removed = self.registry_mut().remove(c.enclave_id);
                if let Some(view) = removed {
                    self.hub.forget(&view.member_ids());
                }
            }
            Kind::MemberJoined => {
                let sql = format!("SELECT {} FROM members WHERE id = $1", rows::MEMBER_COLUMNS);
                let row = sqlx::query(&sql)
                    .bind(c.subject)
                    .fetch_optional(conn)
                    .await?;
                if let Some(row) = row {
                    let entry = rows::member_entry(&row)?;
                    let affected = {
                        let mut reg = self.registry_mut();
                        reg.set_member_enclave(entry.id, c.enclave_id);
                        reg.get_mut(c.enclave_id)
                            .map(|v| v.add_member(entry, c.version))
                            .unwrap_or_default()
                    };
                    self.hub.notify(&affected, c.version);
                }
            }
            Kind::MemberRemoved => {
                let affected = {
                    let mut reg = self.registry_mut();
                    reg.forget_member(c.subject);
                    reg.get_mut(c.enclave_id)
                        .map(|v| v.remove_member(c.subject, c.version))
                        .unwrap_or_default()
                };
                self.hub.notify(&affected, c.version);
                self.hub.forget(&[c.subject]);
            }
            Kind::ChamberCreated => {
                let row = sqlx::query("SELECT name, asset, allow FROM chambers WHERE id = $1")
                    .bind(c.subject)
                    .fetch_optional(conn)
                    .await?;
                if let Some(row) = row {
                    let chamber = rows::chamber(&row)?;
                    let affected = self
                        .registry_mut()
                        .get_mut(c.enclave_id)
                        .map(|v| v.add_chamber(chamber, c.version))
                        .unwrap_or_default();
                    self.hub.notify(&affected, c.version);
                }
            }
            Kind::PolicySet | Kind::CredentialSet => {
                let affected = self
                    .registry_mut()
                    .get_mut(c.enclave_id)
                    .map(|v| v.touch_gateways(c.version))
                    .unwrap_or_default();
                self.hub.notify(&affected, c.version);
            }
        }
        Ok(())
    }

    fn registry_mut(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.registry.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a change in the caller's transaction (see [`changes::record`]).
    ///
    /// # Errors
    /// Storage errors.
    pub async fn record_change(
        &self,
        conn: &mut sqlx::AnyConnection,
        enclave_id: i64,
        kind: Kind,
        subject: i64,
        now: i64,
    ) -> Result<u64> {
        changes::record(conn, self.store.backend(), enclave_id, kind, subject, now).await
    }
}
