//! Creating, listing, showing and deleting enclaves.

use ipnet::Ipv4Net;
use proto::api::{CreateEnclave, Enclave};
use proto::Name;
use serde_json::json;
use sqlx::{AnyConnection, Row};

use crate::audit::{self, Actor};
use crate::changes::Kind;
use crate::controller::Controller;
use crate::error::{Error, Result};
use crate::model::alloc::{self, CidrError};
use crate::rows::{self, enclave_secret_aad};
use crate::secret::random_key;

/// Prefix of enclaves allocated from the pool.
pub const DEFAULT_PREFIX: u8 = 24;

const ENCLAVE_SELECT: &str = "SELECT e.name, e.cidr, e.agent_to_agent, e.version, e.created_at, \
     (SELECT COUNT(*) FROM members m WHERE m.enclave_id = e.id) AS members FROM enclaves e";

fn enclave(row: &sqlx::any::AnyRow) -> Result<Enclave> {
    Ok(Enclave {
        name: rows::parse(row, "name")?,
        cidr: rows::parse(row, "cidr")?,
        agent_to_agent: row.try_get::<i64, _>("agent_to_agent")? != 0,
        version: u64::try_from(row.try_get::<i64, _>("version")?).unwrap_or(0),
        members: u64::try_from(row.try_get::<i64, _>("members")?).unwrap_or(0),
        created_at: row.try_get("created_at")?,
    })
}

async fn existing_cidrs(conn: &mut AnyConnection) -> Result<Vec<(String, Ipv4Net)>> {
    let rows = sqlx::query("SELECT name, cidr FROM enclaves")
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("name")?, rows::parse(r, "cidr")?)))
        .collect()
}

/// Creates an enclave.
///
/// # Errors
/// [`Error::Conflict`] if the name exists or the CIDR overlaps another
/// enclave, [`Error::Invalid`] for a CIDR that is too small or outside the
/// pool, storage errors.
pub async fn create(ctl: &Controller, req: CreateEnclave, now: i64) -> Result<Enclave> {
    let mut w = ctl.store.begin_write().await?;
    let conn = &mut *w.tx;
    let taken: Option<i64> = sqlx::query_scalar("SELECT id FROM enclaves WHERE name = $1")
        .bind(req.name.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    if taken.is_some() {
        return Err(Error::Conflict(format!(
            "enclave {} already exists",
            req.name
        )));
    }
    let existing = existing_cidrs(conn).await?;
    let pool = ctl.identity.pool;
    let cidr = match req.cidr {
        Some(c) => {
            alloc::check_cidr(c, pool, existing.iter().map(|(n, c)| (n.as_str(), *c))).map_err(
                |e| match e {
                    CidrError::Overlap(..) => Error::Conflict(e.to_string()),
                    _ => Error::Invalid(e.to_string()),
                },
            )?;
            c
        }
        None => {
            let taken: Vec<Ipv4Net> = existing.iter().map(|(_, c)| *c).collect();
            alloc::next_cidr(pool, DEFAULT_PREFIX.max(pool.prefix_len()), &taken)
                .map_err(|e| Error::Conflict(e.to_string()))?
        }
    };
    let agent_to_agent = req.agent_to_agent.unwrap_or(true);
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO enclaves (name, cidr, agent_to_agent, secret, version, created_at) \
         VALUES ($1, $2, $3, $4, 0, $5) RETURNING id",
    )
    .bind(req.name.as_str())
    .bind(cidr.to_string())
    .bind(i64::from(agent_to_agent))
    .bind(Vec::<u8>::new())
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    // The secret is sealed with the row id as associated data, so it can
    // only be written once the id is known.
    let sealed = ctl.vault.seal(&enclave_secret_aad(id), &random_key());
    sqlx::query("UPDATE enclaves SET secret = $1 WHERE id = $2")
        .bind(sealed)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let version = ctl
        .record_change(conn, id, Kind::EnclaveCreated, id, now)
        .await?;
    audit::append(
        conn,
        now,
        &Actor::Admin,
        "enclave.create",
        req.name.as_str(),
        json!({"cidr": cidr.to_string(), "agent_to_agent": agent_to_agent}),
    )
    .await?;
    w.commit().await?;
    ctl.replay().await?;
    Ok(Enclave {
        name: req.name,
        cidr,
        agent_to_agent,
        version,
        members: 0,
        created_at: now,
    })
}

/// Every enclave, by name.
///
/// # Errors
/// Storage errors.
pub async fn list(ctl: &Controller) -> Result<Vec<Enclave>> {
    let sql = format!("{ENCLAVE_SELECT} ORDER BY e.name");
    let rows = sqlx::query(&sql).fetch_all(ctl.store.pool()).await?;
    rows.iter().map(enclave).collect()
}

/// One enclave.
///
/// # Errors
/// [`Error::NotFound`], storage errors.
pub async fn show(ctl: &Controller, name: &Name) -> Result<Enclave> {
    let sql = format!("{ENCLAVE_SELECT} WHERE e.name = $1");
    let row = sqlx::query(&sql)
        .bind(name.as_str())
        .fetch_optional(ctl.store.pool())
        .await?
        .ok_or_else(|| Error::NotFound(format!("enclave {name}")))?;
    enclave(&row)
}

/// Deletes an enclave and everything in it: every member is revoked (its
/// node token stops working and it leaves every netmap) in one step.
///
/// # Errors
/// [`Error::NotFound`], storage errors.
pub async fn delete(ctl: &Controller, name: &Name, now: i64) -> Result<()> {
    let mut w = ctl.store.begin_write().await?;
    let conn = &mut *w.tx;
    let id = super::enclave_id(conn, name).await?;
    let members: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM members WHERE enclave_id = $1")
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    for table in ["members", "join_tokens", "chambers", "policies"] {
        let sql = format!("DELETE FROM {table} WHERE enclave_id = $1");
        sqlx::query(&sql).bind(id).execute(&mut *conn).await?;
    }
    sqlx::query("DELETE FROM enclaves WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    ctl.record_change(conn, id, Kind::EnclaveDeleted, id, now)
        .await?;
    audit::append(
        conn,
        now,
        &Actor::Admin,
        "enclave.delete",
        name.as_str(),
        json!({"members_revoked": members}),
    )
    .await?;
    w.commit().await?;
    ctl.replay().await
}
