//! Host inventories of AI agents (`overlay-node discover --report`): each
//! node's latest report is kept, replaced by the next and removed with its
//! member; admins read the newest one per host.

use std::collections::BTreeMap;

use proto::inventory::{HostInventory, Inventory};

use crate::controller::Controller;
use crate::error::{Error, Result};

use super::node_auth::NodeIdentity;

/// Stores `inv` as `node`'s latest report.
///
/// # Errors
/// [`Error::Invalid`] when it is over a limit or names a value where a
/// name belongs; storage errors.
pub async fn report(
    ctl: &Controller,
    node: &NodeIdentity,
    inv: &Inventory,
    now: i64,
) -> Result<()> {
    inv.check_limits().map_err(Error::Invalid)?;
    let body = serde_json::to_string(inv).map_err(|e| Error::Invalid(e.to_string()))?;
    let mut w = ctl.store.begin_write().await?;
    sqlx::query("DELETE FROM inventories WHERE member_id = $1")
        .bind(node.member_id)
        .execute(&mut *w.tx)
        .await?;
    sqlx::query(
        "INSERT INTO inventories (member_id, host, reported_at, body) VALUES ($1, $2, $3, $4)",
    )
    .bind(node.member_id)
    .bind(&inv.host)
    .bind(now)
    .bind(body)
    .execute(&mut *w.tx)
    .await?;
    w.commit().await?;
    Ok(())
}

/// The newest inventory of every host; with `unmanaged`, only the agents
/// no enclave governs (hosts with none left are omitted).
///
/// # Errors
/// Storage errors; [`Error::Corrupt`] for a stored report that no longer
/// parses.
pub async fn list(ctl: &Controller, unmanaged: bool) -> Result<Vec<HostInventory>> {
    let rows: Vec<(String, String, String, i64, String)> = sqlx::query_as(
        "SELECT e.name, m.name, i.host, i.reported_at, i.body FROM inventories i \
         JOIN members m ON m.id = i.member_id JOIN enclaves e ON e.id = m.enclave_id \
         ORDER BY i.host, i.reported_at",
    )
    .fetch_all(ctl.store.pool())
    .await?;
    let mut newest: BTreeMap<String, HostInventory> = BTreeMap::new();
    for (enclave, member, host, reported_at, body) in rows {
        let inventory: Inventory = serde_json::from_str(&body)
            .map_err(|e| Error::Corrupt(format!("inventory of {host}: {e}")))?;
        // Ordered by time: a later row replaces an earlier one.
        newest.insert(
            host,
            HostInventory {
                enclave,
                member,
                reported_at,
                inventory,
            },
        );
    }
    Ok(newest
        .into_values()
        .map(|mut h| {
            if unmanaged {
                h.inventory = h.inventory.unmanaged();
            }
            h
        })
        .filter(|h| !unmanaged || !h.inventory.agents.is_empty())
        .collect())
}
