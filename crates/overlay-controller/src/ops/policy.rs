//! Per-enclave policy documents, stored with every version kept.

use proto::api::PolicyInfo;
use proto::{Name, PolicyDocument};
use serde_json::json;
use sqlx::{AnyConnection, Row};

use crate::audit::{self, Actor};
use crate::changes::Kind;
use crate::controller::Controller;
use crate::error::{Error, Result};

/// Stores a new version of the enclave's policy after checking its envelope.
///
/// # Errors
/// [`Error::NotFound`], [`Error::Invalid`] for a document whose envelope
/// is wrong, storage errors.
pub async fn set(
    ctl: &Controller,
    enclave: &Name,
    content: String,
    now: i64,
) -> Result<PolicyInfo> {
    let doc = PolicyDocument::parse(&content).map_err(|e| Error::Invalid(e.to_string()))?;
    let mut w = ctl.store.begin_write().await?;
    let conn = &mut *w.tx;
    let enclave_id = super::enclave_id(conn, enclave).await?;
    let last: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM policies WHERE enclave_id = $1")
            .bind(enclave_id)
            .fetch_one(&mut *conn)
            .await?;
    let version = last.unwrap_or(0) + 1;
    sqlx::query(
        "INSERT INTO policies (enclave_id, version, content, updated_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(enclave_id)
    .bind(version)
    .bind(doc.text())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let credentials: Vec<String> = doc
        .credentials()
        .iter()
        .map(|(_, n)| n.to_string())
        .collect();
    audit::append(
        conn,
        now,
        &Actor::Admin,
        "policy.set",
        enclave.as_str(),
        json!({"version": version, "bytes": content.len(), "credentials": credentials}),
    )
    .await?;
    ctl.record_change(conn, enclave_id, Kind::PolicySet, version, now)
        .await?;
    w.commit().await?;
    ctl.replay().await?;
    Ok(PolicyInfo {
        enclave: enclave.clone(),
        version: u64::try_from(version).unwrap_or(0),
        content,
        updated_at: now,
    })
}

/// The current policy of an enclave, if one was set.
///
/// # Errors
/// Storage errors.
pub async fn current(
    conn: &mut AnyConnection,
    enclave_id: i64,
    enclave: &Name,
) -> Result<Option<PolicyInfo>> {
    let row = sqlx::query(
        "SELECT version, content, updated_at FROM policies WHERE enclave_id = $1 \
         ORDER BY version DESC LIMIT 1",
    )
    .bind(enclave_id)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(PolicyInfo {
            enclave: enclave.clone(),
            version: u64::try_from(r.try_get::<i64, _>("version")?).unwrap_or(0),
            content: r.try_get("content")?,
            updated_at: r.try_get("updated_at")?,
        })
    })
    .transpose()
}

/// The current policy of an enclave.
///
/// # Errors
/// [`Error::NotFound`] if the enclave has none, storage errors.
pub async fn show(ctl: &Controller, enclave: &Name) -> Result<PolicyInfo> {
    let mut conn = ctl.store.pool().acquire().await?;
    let id = super::enclave_id(&mut conn, enclave).await?;
    current(&mut conn, id, enclave)
        .await?
        .ok_or_else(|| Error::NotFound(format!("policy of enclave {enclave}")))
}
