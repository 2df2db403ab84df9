//! The change log: every membership change is a row written in the same
//! transaction as the change itself, and every replica (the writer included)
//! applies the log in order to its in-memory registry. One path for the
//! writer and for the replicas that learn of it by LISTEN/NOTIFY or polling.

use sqlx::{AnyConnection, Row};

use crate::db::Backend;
use crate::error::{Error, Result};

/// The PostgreSQL channel replicas listen on.
pub const CHANNEL: &str = "cordon_changes";

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An enclave was created; the subject is its id.
    EnclaveCreated,
    /// An enclave was deleted with all its members; the subject is its id.
    EnclaveDeleted,
    /// A member joined; the subject is its id.
    MemberJoined,
    /// A member was removed or expired; the subject is its id.
    MemberRemoved,
    /// A chamber was created; the subject is its id.
    ChamberCreated,
    /// A new policy version was stored; the subject is the version.
    PolicySet,
    /// A vault credential was stored or replaced (recorded for every
    /// enclave, whose gateways refetch their keys); the subject is 0.
    CredentialSet,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::EnclaveCreated => "enclave_created",
            Kind::EnclaveDeleted => "enclave_deleted",
            Kind::MemberJoined => "member_joined",
            Kind::MemberRemoved => "member_removed",
            Kind::ChamberCreated => "chamber_created",
            Kind::PolicySet => "policy_set",
            Kind::CredentialSet => "credential_set",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Kind::EnclaveCreated,
            Kind::EnclaveDeleted,
            Kind::MemberJoined,
            Kind::MemberRemoved,
            Kind::ChamberCreated,
            Kind::PolicySet,
            Kind::CredentialSet,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One row of the log.
#[derive(Debug, Clone)]
pub struct Change {
    /// Position in the log.
    pub seq: i64,
    /// The enclave it happened in.
    pub enclave_id: i64,
    /// The enclave version it produced.
    pub version: u64,
    /// What happened.
    pub kind: Kind,
    /// The id of what it happened to.
    pub subject: i64,
}

/// Records a change inside the caller's write transaction: bumps the
/// enclave's version (unless the enclave is being deleted) and appends the
/// log row. Returns the new version.
///
/// # Errors
/// Storage errors.
pub async fn record(
    conn: &mut AnyConnection,
    backend: Backend,
    enclave_id: i64,
    kind: Kind,
    subject: i64,
    now: i64,
) -> Result<u64> {
    let version: i64 = if kind == Kind::EnclaveDeleted {
        0
    } else {
        sqlx::query_scalar(
            "UPDATE enclaves SET version = version + 1 WHERE id = $1 RETURNING version",
        )
        .bind(enclave_id)
        .fetch_one(&mut *conn)
        .await?
    };
    sqlx::query(
        "INSERT INTO changes (enclave_id, version, kind, subject, at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(enclave_id)
    .bind(version)
    .bind(kind.as_str())
    .bind(subject)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(CHANNEL)
            .execute(&mut *conn)
            .await?;
    }
    Ok(u64::try_from(version).unwrap_or(0))
}

/// The highest sequence number in the log.
///
/// # Errors
/// Storage errors.
pub async fn head(conn: &mut AnyConnection) -> Result<i64> {
    let seq: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM changes")
        .fetch_one(conn)
        .await?;
    Ok(seq.unwrap_or(0))
}

/// Up to `limit` changes after `after`, in order.
///
/// # Errors
/// Storage errors, or [`Error::Corrupt`] for an unknown kind.
pub async fn since(conn: &mut AnyConnection, after: i64, limit: i64) -> Result<Vec<Change>> {
    let rows = sqlx::query(
        "SELECT seq, enclave_id, version, kind, subject FROM changes \
         WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let kind: String = r.try_get("kind")?;
            Ok(Change {
                seq: r.try_get("seq")?,
                enclave_id: r.try_get("enclave_id")?,
                version: u64::try_from(r.try_get::<i64, _>("version")?).unwrap_or(0),
                kind: Kind::parse(&kind).ok_or_else(|| Error::Corrupt("change kind".into()))?,
                subject: r.try_get("subject")?,
            })
        })
        .collect()
}
