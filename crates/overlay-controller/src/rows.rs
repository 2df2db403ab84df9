//! Decoding stored rows into model types. A row that does not decode means
//! the database was edited outside the controller: it is reported as
//! corrupt, never guessed at.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use proto::api::{Chamber, ChamberRule, Member};
use proto::{Name, PublicKey, Role};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::error::{Error, Result};
use crate::model::{EnclaveView, MemberEntry};
use crate::vault::Vault;

fn corrupt(what: &str) -> Error {
    Error::Corrupt(what.to_owned())
}

/// Parses a stored text column.
pub fn parse<T: std::str::FromStr>(row: &AnyRow, col: &str) -> Result<T> {
    row.try_get::<String, _>(col)?
        .parse()
        .map_err(|_| corrupt(col))
}

/// The columns [`member_entry`] and [`member`] read.
pub const MEMBER_COLUMNS: &str = "id, enclave_id, name, role, public_key, address, endpoint, \
     hostname, joined_at, expires_at, last_seen";

/// A member row as the model's entry.
pub fn member_entry(row: &AnyRow) -> Result<MemberEntry> {
    Ok(MemberEntry {
        id: row.try_get("id")?,
        name: parse::<Name>(row, "name")?,
        role: parse::<Role>(row, "role")?,
        public_key: PublicKey::parse(&row.try_get::<String, _>("public_key")?)
            .map_err(|_| corrupt("public_key"))?,
        address: parse::<Ipv4Addr>(row, "address")?,
        endpoint: row.try_get("endpoint")?,
        expires_at: row.try_get("expires_at")?,
    })
}

/// A member row as the admin API shows it.
pub fn member(row: &AnyRow) -> Result<Member> {
    let e = member_entry(row)?;
    Ok(Member {
        name: e.name,
        role: e.role,
        address: Ipv4Net::from(e.address),
        public_key: e.public_key,
        endpoint: e.endpoint,
        hostname: row.try_get("hostname")?,
        joined_at: row.try_get("joined_at")?,
        expires_at: e.expires_at,
        last_seen: row.try_get("last_seen")?,
    })
}

/// A chamber row.
pub fn chamber(row: &AnyRow) -> Result<Chamber> {
    let allow: Vec<ChamberRule> = serde_json::from_str(&row.try_get::<String, _>("allow")?)
        .map_err(|_| corrupt("chamber allow"))?;
    Ok(Chamber {
        name: parse(row, "name")?,
        asset: parse(row, "asset")?,
        allow,
    })
}

/// The associated data binding an enclave secret to its enclave.
pub fn enclave_secret_aad(id: i64) -> String {
    format!("enclave-secret:{id}")
}

/// Loads one enclave with its members and chambers.
pub async fn load_enclave(
    conn: &mut AnyConnection,
    vault: &Vault,
    id: i64,
) -> Result<Option<EnclaveView>> {
    let Some(row) = sqlx::query(
        "SELECT id, name, cidr, agent_to_agent, secret, version FROM enclaves WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let sealed: Vec<u8> = row.try_get("secret")?;
    let secret: [u8; 32] = vault
        .open(&enclave_secret_aad(id), &sealed)?
        .try_into()
        .map_err(|_| corrupt("enclave secret"))?;
    let version: i64 = row.try_get("version")?;
    let version = u64::try_from(version).map_err(|_| corrupt("enclave version"))?;
    let mut view = EnclaveView::new(
        id,
        parse(&row, "name")?,
        parse(&row, "cidr")?,
        row.try_get::<i64, _>("agent_to_agent")? != 0,
        secret,
        version,
    );
    for r in sqlx::query("SELECT name, asset, allow FROM chambers WHERE enclave_id = $1")
        .bind(id)
        .fetch_all(&mut *conn)
        .await?
    {
        view.add_chamber(chamber(&r)?, version);
    }
    let sql = format!("SELECT {MEMBER_COLUMNS} FROM members WHERE enclave_id = $1");
    for r in sqlx::query(&sql).bind(id).fetch_all(&mut *conn).await? {
        view.add_member(member_entry(&r)?, version);
    }
    Ok(Some(view))
}
