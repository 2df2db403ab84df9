//! The hash-chained audit log of every admin and node action.
//!
//! Record `n` stores `hash_n = SHA-256(JSON [seq, at, actor, action, target,
//! detail, hash_{n-1}])`, and `audit_head` keeps the last `(seq, hash)`.
//! Editing a record breaks its hash; deleting or reordering breaks the
//! sequence or the links; cutting records off the end disagrees with the
//! head. (Someone who can rewrite the whole table and the head consistently
//! can forge history: ship the log off the box for that threat.)

use proto::api::AuditRecord;
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};

use crate::error::{Error, Result};

/// The hash of the record before the first.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who performed an action.
#[derive(Debug, Clone)]
pub enum Actor {
    /// The holder of the admin token.
    Admin,
    /// A node, by enclave and member name.
    Node(String, String),
    /// The controller itself (expiry).
    Controller,
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Admin => f.write_str("admin"),
            Actor::Node(e, m) => write!(f, "node:{e}/{m}"),
            Actor::Controller => f.write_str("controller"),
        }
    }
}

fn chain_hash(
    seq: i64,
    at: i64,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
    prev: &str,
) -> String {
    let canonical = serde_json::json!([seq, at, actor, action, target, detail, prev]);
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

/// Appends a record inside the caller's write transaction.
///
/// # Errors
/// Storage errors.
pub async fn append(
    conn: &mut AnyConnection,
    at: i64,
    actor: &Actor,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> Result<()> {
    let head: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_optional(&mut *conn)
            .await?;
    let (prev_seq, prev_hash) = head.unwrap_or((0, GENESIS.to_owned()));
    let seq = prev_seq + 1;
    let actor = actor.to_string();
    let detail = detail.to_string();
    let hash = chain_hash(seq, at, &actor, action, target, &detail, &prev_hash);
    sqlx::query(
        "INSERT INTO audit (seq, at, actor, action, target, detail, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(seq)
    .bind(at)
    .bind(&actor)
    .bind(action)
    .bind(target)
    .bind(&detail)
    .bind(&prev_hash)
    .bind(&hash)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO audit_head (id, seq, hash) VALUES (1, $1, $2) \
         ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
    )
    .bind(seq)
    .bind(&hash)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records with `seq > after`, oldest first, at most `limit`.
///
/// # Errors
/// Storage errors, or [`Error::Corrupt`] for a detail that is not JSON.
pub async fn list(conn: &mut AnyConnection, after: i64, limit: i64) -> Result<Vec<AuditRecord>> {
    let rows = sqlx::query(
        "SELECT seq, at, actor, action, target, detail, hash FROM audit \
         WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let detail: String = r.try_get("detail")?;
            Ok(AuditRecord {
                seq: u64::try_from(r.try_get::<i64, _>("seq")?).unwrap_or(0),
                at: r.try_get("at")?,
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                target: r.try_get("target")?,
                detail: serde_json::from_str(&detail)
                    .map_err(|_| Error::Corrupt("audit detail".into()))?,
                hash: r.try_get("hash")?,
            })
        })
        .collect()
}

/// What `audit verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every record links to the previous one and the head matches.
    Intact {
        /// Number of records checked.
        records: u64,
    },
    /// The first problem found.
    Broken {
        /// Sequence number where the chain breaks.
        seq: i64,
        /// What is wrong there.
        reason: String,
    },
}

/// Walks the whole chain.
///
/// # Errors
/// Storage errors only; a broken chain is a [`Verdict::Broken`].
pub async fn verify(conn: &mut AnyConnection) -> Result<Verdict> {
    let rows = sqlx::query(
        "SELECT seq, at, actor, action, target, detail, prev_hash, hash FROM audit ORDER BY seq",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut prev = GENESIS.to_owned();
    let mut expected_seq = 1i64;
    for r in &rows {
        let seq: i64 = r.try_get("seq")?;
        let broken = |reason: &str| Verdict::Broken {
            seq,
            reason: reason.to_owned(),
        };
        if seq != expected_seq {
            return Ok(Verdict::Broken {
                seq: expected_seq,
                reason: format!("record {expected_seq} is missing (next is {seq})"),
            });
        }
        let prev_hash: String = r.try_get("prev_hash")?;
        if prev_hash != prev {
            return Ok(broken("does not link to the previous record"));
        }
        let hash: String = r.try_get("hash")?;
        let computed = chain_hash(
            seq,
            r.try_get("at")?,
            &r.try_get::<String, _>("actor")?,
            &r.try_get::<String, _>("action")?,
            &r.try_get::<String, _>("target")?,
            &r.try_get::<String, _>("detail")?,
            &prev_hash,
        );
        if computed != hash {
            return Ok(broken(
                "content does not match its hash (record was altered)",
            ));
        }
        prev = hash;
        expected_seq += 1;
    }
    let head: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_optional(&mut *conn)
            .await?;
    let last = expected_seq - 1;
    match head {
        None if rows.is_empty() => {}
        Some((s, h)) if s == last && h == prev => {}
        Some((s, _)) => {
            return Ok(Verdict::Broken {
                seq: s,
                reason: format!("the head says {s} records, the table ends at {last}"),
            })
        }
        None => {
            return Ok(Verdict::Broken {
                seq: last,
                reason: "the chain head is missing".into(),
            })
        }
    }
    Ok(Verdict::Intact {
        records: u64::try_from(last).unwrap_or(0),
    })
}
