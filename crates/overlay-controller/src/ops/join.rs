//! Redeeming a join token: the node brings its public key, the controller
//! hands back an address, a node token and the first netmap.

use proto::api::{JoinRequest, JoinResponse};
use proto::{JoinToken, Name, Role};
use serde_json::json;
use sqlx::{AnyConnection, Row};
use subtle::ConstantTimeEq;

use crate::audit::{self, Actor};
use crate::changes::Kind;
use crate::controller::Controller;
use crate::error::{Error, Result};
use crate::rows;
use crate::secret::{hash_secret, random_token, verify_secret};

use super::node_auth;

/// Longest host name kept.
const MAX_HOSTNAME: usize = 253;

async fn name_taken(conn: &mut AnyConnection, enclave_id: i64, name: &str) -> Result<bool> {
    let id: Option<i64> =
        sqlx::query_scalar("SELECT id FROM members WHERE enclave_id = $1 AND name = $2")
            .bind(enclave_id)
            .bind(name)
            .fetch_optional(conn)
            .await?;
    Ok(id.is_some())
}

/// Picks a member name: the token's, else the host name's first label if it
/// is a valid unused name, else `<role>-<n>` with `n` from the member count
/// (a few probes past it), else `<role>-<random>`.
async fn pick_name(
    conn: &mut AnyConnection,
    enclave_id: i64,
    given: Option<String>,
    hostname: Option<&str>,
    role: Role,
    members: usize,
) -> Result<Name> {
    if let Some(n) = given {
        let name = Name::new(n).map_err(|_| Error::Corrupt("token member name".into()))?;
        if name_taken(conn, enclave_id, name.as_str()).await? {
            return Err(Error::Conflict(format!("member {name} already exists")));
        }
        return Ok(name);
    }
    let from_host = hostname
        .and_then(|h| h.split('.').next())
        .and_then(|h| Name::new(h.to_ascii_lowercase()).ok());
    if let Some(name) = from_host {
        if !name_taken(conn, enclave_id, name.as_str()).await? {
            return Ok(name);
        }
    }
    let numbered = (members + 1..members + 9).map(|n| format!("{role}-{n}"));
    let random = (0..8).map(|_| {
        format!(
            "{role}-{}",
            random_token(6).to_ascii_lowercase().replace('_', "x")
        )
    });
    for candidate in numbered.chain(random) {
        let Ok(name) = Name::new(candidate) else {
            continue;
        };
        if !name_taken(conn, enclave_id, name.as_str()).await? {
            return Ok(name);
        }
    }
    Err(Error::Conflict(
        "could not pick a free member name; give one in the token".into(),
    ))
}

/// Redeems a token. Exactly one of several concurrent redemptions of a
/// single-use token succeeds: the check and the use-count decrement run in
/// one serialized transaction.
///
/// # Errors
/// [`Error::Unauthorized`] for a malformed, unknown, wrong, spent or
/// expired token (indistinguishable on purpose), [`Error::Conflict`] if the
/// key or name is already in the enclave or the enclave is full,
/// [`Error::Invalid`] for a bad host name, storage errors.
pub async fn join(ctl: &Controller, req: JoinRequest, now: i64) -> Result<JoinResponse> {
    let token = JoinToken::decode(&req.token).map_err(|_| Error::Unauthorized)?;
    if !bool::from(
        token
            .ca_sha256
            .as_bytes()
            .ct_eq(ctl.identity.ca_sha256.as_bytes()),
    ) {
        return Err(Error::Unauthorized);
    }
    if let Some(h) = &req.hostname {
        if h.is_empty() || h.len() > MAX_HOSTNAME || h.chars().any(|c| c.is_control()) {
            return Err(Error::Invalid(
                "hostname must be 1-253 printable characters".into(),
            ));
        }
    }
    let mut w = ctl.store.begin_write().await?;
    let conn = &mut *w.tx;
    let row = sqlx::query(
        "SELECT t.enclave_id, t.secret_hash, t.role, t.uses_left, t.expires_at, t.member_name, \
         t.member_ttl, e.name AS enclave FROM join_tokens t JOIN enclaves e ON e.id = t.enclave_id \
         WHERE t.id = $1",
    )
    .bind(&token.id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Err(Error::Unauthorized);
    };
    let secret_hash: String = row.try_get("secret_hash")?;
    let valid = verify_secret(&token.secret, &secret_hash);
    let uses_left: i64 = row.try_get("uses_left")?;
    let expires_at: i64 = row.try_get("expires_at")?;
    if !valid || uses_left <= 0 || expires_at <= now {
        return Err(Error::Unauthorized);
    }
    let enclave_id: i64 = row.try_get("enclave_id")?;
    let enclave: Name = rows::parse(&row, "enclave")?;
    let role: Role = rows::parse(&row, "role")?;
    let key_taken: Option<i64> =
        sqlx::query_scalar("SELECT id FROM members WHERE enclave_id = $1 AND public_key = $2")
            .bind(enclave_id)
            .bind(req.public_key.to_string())
            .fetch_optional(&mut *conn)
            .await?;
    if key_taken.is_some() {
        return Err(Error::Conflict(
            "this public key is already a member of the enclave".into(),
        ));
    }
    // Bring the registry up to date under the write lock, so the address
    // picked here is free also of what other replicas allocated.
    ctl.replay().await?;
    let (address, members) = {
        let reg = ctl.registry();
        let view = reg.get(enclave_id);
        (
            view.and_then(|v| v.next_address()),
            view.map_or(0, |v| v.len()),
        )
    };
    let address =
        address.ok_or_else(|| Error::Conflict(format!("enclave {enclave} has no free address")))?;
    let name = pick_name(
        conn,
        enclave_id,
        row.try_get("member_name")?,
        req.hostname.as_deref(),
        role,
        members,
    )
    .await?;
    let used = sqlx::query(
        "UPDATE join_tokens SET uses_left = uses_left - 1 WHERE id = $1 AND uses_left > 0",
    )
    .bind(&token.id)
    .execute(&mut *conn)
    .await?;
    if used.rows_affected() != 1 {
        return Err(Error::Unauthorized);
    }
    let member_expiry = row
        .try_get::<Option<i64>, _>("member_ttl")?
        .map(|ttl| now.saturating_add(ttl));
    let member_id: i64 = sqlx::query_scalar(
        "INSERT INTO members (enclave_id, name, role, public_key, address, endpoint, hostname, \
         node_token_hash, joined_at, expires_at, last_seen) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, '', $8, $9, $8) RETURNING id",
    )
    .bind(enclave_id)
    .bind(name.as_str())
    .bind(role.as_str())
    .bind(req.public_key.to_string())
    .bind(address.to_string())
    .bind(req.endpoint.map(|e| e.to_string()))
    .bind(req.hostname.clone())
    .bind(now)
    .bind(member_expiry)
    .fetch_one(&mut *conn)
    .await?;
    let (node_token, node_secret) = node_auth::issue(member_id);
    let substitute_key = (role == Role::Agent).then(substitute_key);
    sqlx::query("UPDATE members SET node_token_hash = $1, substitute_sha256 = $2 WHERE id = $3")
        .bind(hash_secret(&node_secret))
        .bind(substitute_key.as_deref().map(hash_secret))
        .bind(member_id)
        .execute(&mut *conn)
        .await?;
    ctl.record_change(conn, enclave_id, Kind::MemberJoined, member_id, now)
        .await?;
    audit::append(
        conn,
        now,
        &Actor::Node(enclave.to_string(), name.to_string()),
        "member.join",
        &format!("{enclave}/{name}"),
        json!({"role": role, "address": address.to_string(), "token_id": token.id,
               "public_key": req.public_key.to_string(), "expires_at": member_expiry}),
    )
    .await?;
    w.commit().await?;
    ctl.replay().await?;
    ctl.metrics.joins.inc();
    let netmap = ctl
        .registry()
        .get(enclave_id)
        .and_then(|v| v.netmap(member_id))
        .ok_or_else(|| Error::Conflict("the member was removed while joining".into()))?;
    Ok(JoinResponse {
        member: name,
        enclave,
        address: netmap.address,
        node_token,
        substitute_key,
        netmap,
    })
}

/// A new substitute key: `sub-` and 32 random bytes. What an agent's SDKs
/// present to the enclave's ASC in place of a real API key.
fn substitute_key() -> String {
    format!("sub-{}", random_token(32))
}
