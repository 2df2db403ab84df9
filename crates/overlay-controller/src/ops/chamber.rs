//! Chambers: least privilege inside an enclave.

use proto::api::Chamber;
use proto::{Name, Role};
use serde_json::json;

use crate::audit::{self, Actor};
use crate::changes::Kind;
use crate::controller::Controller;
use crate::error::{Error, Result};
use crate::rows;

/// Most rules in one chamber's allow list.
pub const MAX_RULES: usize = 256;

/// Creates a chamber. The asset may join later: the chamber then protects
/// it from its first packet, so creating chambers before issuing tokens
/// leaves no window in which the asset is open to the whole enclave.
///
/// # Errors
/// [`Error::NotFound`], [`Error::Conflict`] if the name is taken or the
/// asset already has a chamber, [`Error::Invalid`] if the named member is
/// not an asset or the list is too long, storage errors.
pub async fn create(
    ctl: &Controller,
    enclave: &Name,
    chamber: Chamber,
    now: i64,
) -> Result<Chamber> {
    if chamber.allow.len() > MAX_RULES {
        return Err(Error::Invalid(format!(
            "a chamber allows at most {MAX_RULES} rules"
        )));
    }
    let mut w = ctl.store.begin_write().await?;
    let conn = &mut *w.tx;
    let enclave_id = super::enclave_id(conn, enclave).await?;
    let clash: Option<(String, String)> = sqlx::query_as(
        "SELECT name, asset FROM chambers WHERE enclave_id = $1 AND (name = $2 OR asset = $3)",
    )
    .bind(enclave_id)
    .bind(chamber.name.as_str())
    .bind(chamber.asset.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    if let Some((name, asset)) = clash {
        return Err(Error::Conflict(if name == chamber.name.as_str() {
            format!("chamber {name} already exists")
        } else {
            format!("asset {asset} is already protected by chamber {name}")
        }));
    }
    let role: Option<String> =
        sqlx::query_scalar("SELECT role FROM members WHERE enclave_id = $1 AND name = $2")
            .bind(enclave_id)
            .bind(chamber.asset.as_str())
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(role) = role {
        if role != Role::Asset.as_str() {
            return Err(Error::Invalid(format!(
                "{} is a {role}, and a chamber protects an asset",
                chamber.asset
            )));
        }
    }
    let allow = serde_json::to_string(&chamber.allow)
        .map_err(|_| Error::Corrupt("chamber allow list".into()))?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO chambers (enclave_id, name, asset, allow, created_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(enclave_id)
    .bind(chamber.name.as_str())
    .bind(chamber.asset.as_str())
    .bind(&allow)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    ctl.record_change(conn, enclave_id, Kind::ChamberCreated, id, now)
        .await?;
    audit::append(
        conn,
        now,
        &Actor::Admin,
        "chamber.create",
        &format!("{enclave}/{}", chamber.name),
        json!({"asset": chamber.asset, "allow": chamber.allow}),
    )
    .await?;
    w.commit().await?;
    ctl.replay().await?;
    Ok(chamber)
}

/// The chambers of an enclave, by name.
///
/// # Errors
/// [`Error::NotFound`], storage errors.
pub async fn list(ctl: &Controller, enclave: &Name) -> Result<Vec<Chamber>> {
    let mut conn = ctl.store.pool().acquire().await?;
    let id = super::enclave_id(&mut conn, enclave).await?;
    let rows =
        sqlx::query("SELECT name, asset, allow FROM chambers WHERE enclave_id = $1 ORDER BY name")
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
    rows.iter().map(rows::chamber).collect()
}
