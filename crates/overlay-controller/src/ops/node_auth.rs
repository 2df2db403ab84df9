//! Node tokens: `cn1.<member id>.<secret>`, issued at join, stored hashed.

use proto::{Name, Role};
use sqlx::Row;

use crate::controller::Controller;
use crate::error::{Error, Result};
use crate::rows;
use crate::secret::{random_token, verify_secret};

/// Prefix of node tokens.
pub const PREFIX: &str = "cn1.";

/// The member a valid node token belongs to.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    /// Member id.
    pub member_id: i64,
    /// Member name.
    pub member: Name,
    /// Member role.
    pub role: Role,
    /// Enclave id.
    pub enclave_id: i64,
    /// Enclave name.
    pub enclave: Name,
    /// When the node last talked to the controller.
    pub last_seen: i64,
}

/// A new node token for `member_id`: `(token, secret)`; store the secret's hash.
pub fn issue(member_id: i64) -> (String, String) {
    let secret = random_token(32);
    (format!("{PREFIX}{member_id}.{secret}"), secret)
}

/// Authenticates a node token. Every failure is the same
/// [`Error::Unauthorized`]: unknown member, wrong secret, removed member.
///
/// # Errors
/// [`Error::Unauthorized`] or storage errors.
pub async fn authenticate(ctl: &Controller, token: &str) -> Result<NodeIdentity> {
    let rest = token.strip_prefix(PREFIX).ok_or(Error::Unauthorized)?;
    let (id, secret) = rest.split_once('.').ok_or(Error::Unauthorized)?;
    let member_id: i64 = id.parse().map_err(|_| Error::Unauthorized)?;
    let row = sqlx::query(
        "SELECT m.name, m.role, m.node_token_hash, m.last_seen, m.enclave_id, e.name AS enclave \
         FROM members m JOIN enclaves e ON e.id = m.enclave_id WHERE m.id = $1",
    )
    .bind(member_id)
    .fetch_optional(ctl.store.pool())
    .await?
    .ok_or(Error::Unauthorized)?;
    let hash: String = row.try_get("node_token_hash")?;
    if !verify_secret(secret, &hash) {
        return Err(Error::Unauthorized);
    }
    Ok(NodeIdentity {
        member_id,
        member: rows::parse(&row, "name")?,
        role: rows::parse(&row, "role")?,
        enclave_id: row.try_get("enclave_id")?,
        enclave: rows::parse(&row, "enclave")?,
        last_seen: row.try_get("last_seen")?,
    })
}

/// Records that the node was seen, at most once a minute per member; the
/// time is written with the next batch ([`crate::seen`]).
pub fn touch(ctl: &Controller, node: &NodeIdentity, now: i64) {
    if now - node.last_seen >= 60 {
        ctl.seen.note(node.member_id, now);
    }
}
