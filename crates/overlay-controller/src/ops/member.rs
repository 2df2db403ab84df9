//! Listing members and removing them: by an admin, or by the controller
//! when a just-in-time membership expires. Both are the same one step.

use proto::api::Member;
use proto::Name;
use serde_json::json;
use sqlx::Row;

use crate::audit::{self, Actor};
use crate::changes::Kind;
use crate::controller::Controller;
use crate::error::{Error, Result};
use crate::rows::{self, MEMBER_COLUMNS};

/// The members of an enclave, by name.
///
/// # Errors
/// [`Error::NotFound`], storage errors.
pub async fn list(ctl: &Controller, enclave: &Name) -> Result<Vec<Member>> {
    let mut conn = ctl.store.pool().acquire().await?;
    let id = super::enclave_id(&mut conn, enclave).await?;
    let sql = format!("SELECT {MEMBER_COLUMNS} FROM members WHERE enclave_id = $1 ORDER BY name");
    let rows = sqlx::query(&sql).bind(id).fetch_all(&mut *conn).await?;
    rows.iter().map(rows::member).collect()
}

/// Removes a member: it leaves every peer's netmap, its node token stops
/// working, and its long-polls get 401, all from this one call.
///
/// # Errors
/// [`Error::NotFound`], storage errors.
pub async fn remove(ctl: &Controller, enclave: &Name, member: &Name, now: i64) -> Result<()> {
    let mut w = ctl.store.begin_write().await?;
    let conn = &mut *w.tx;
    let enclave_id = super::enclave_id(conn, enclave).await?;
    let id: i64 = sqlx::query_scalar("SELECT id FROM members WHERE enclave_id = $1 AND name = $2")
        .bind(enclave_id)
        .bind(member.as_str())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| Error::NotFound(format!("member {member} of {enclave}")))?;
    remove_in(ctl, conn, enclave_id, id, now).await?;
    audit::append(
        conn,
        now,
        &Actor::Admin,
        "member.remove",
        &format!("{enclave}/{member}"),
        json!({}),
    )
    .await?;
    w.commit().await?;
    ctl.replay().await
}

async fn remove_in(
    ctl: &Controller,
    conn: &mut sqlx::AnyConnection,
    enclave_id: i64,
    id: i64,
    now: i64,
) -> Result<()> {
    sqlx::query("DELETE FROM members WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    ctl.record_change(conn, enclave_id, Kind::MemberRemoved, id, now)
        .await?;
    Ok(())
}

/// Removes every member whose just-in-time membership ended at or before
/// `now`; returns how many. Safe to run on several replicas at once.
///
/// # Errors
/// Storage errors.
pub async fn expire(ctl: &Controller, now: i64) -> Result<usize> {
    // A cheap read first: most seconds nothing expires, and no write lock
    // should be taken for nothing.
    let due: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM members WHERE expires_at IS NOT NULL AND expires_at <= $1 LIMIT 1",
    )
    .bind(now)
    .fetch_optional(ctl.store.pool())
    .await?;
    if due.is_none() {
        return Ok(0);
    }
    let mut w = ctl.store.begin_write().await?;
    let conn = &mut *w.tx;
    let rows = sqlx::query(
        "SELECT m.id, m.enclave_id, m.name, e.name AS enclave FROM members m \
         JOIN enclaves e ON e.id = m.enclave_id \
         WHERE m.expires_at IS NOT NULL AND m.expires_at <= $1",
    )
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    for r in &rows {
        let (id, enclave_id): (i64, i64) = (r.try_get("id")?, r.try_get("enclave_id")?);
        let target = format!(
            "{}/{}",
            r.try_get::<String, _>("enclave")?,
            r.try_get::<String, _>("name")?
        );
        remove_in(ctl, conn, enclave_id, id, now).await?;
        audit::append(
            conn,
            now,
            &Actor::Controller,
            "member.expire",
            &target,
            json!({}),
        )
        .await?;
    }
    w.commit().await?;
    ctl.replay().await?;
    Ok(rows.len())
}
