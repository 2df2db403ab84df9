//! Issuing join tokens.

use proto::api::{CreateToken, TokenCreated};
use proto::{JoinToken, Name};
use serde_json::json;

use crate::audit::{self, Actor};
use crate::controller::Controller;
use crate::error::{Error, Result};
use crate::secret::{hash_secret, random_token};

/// Default token lifetime.
pub const DEFAULT_TTL: u64 = 3600;
/// Longest token lifetime.
pub const MAX_TTL: u64 = 30 * 24 * 3600;
/// Most joins one token may allow.
pub const MAX_USES: u32 = 10_000;
/// Longest just-in-time membership.
pub const MAX_MEMBER_TTL: u64 = 365 * 24 * 3600;

/// Checks a token request's numbers; returns `(ttl, uses)`.
fn check(req: &CreateToken) -> Result<(u64, u32)> {
    let ttl = req.ttl_seconds.unwrap_or(DEFAULT_TTL);
    if ttl == 0 || ttl > MAX_TTL {
        return Err(Error::Invalid(format!("ttl_seconds must be 1..={MAX_TTL}")));
    }
    let uses = req.uses.unwrap_or(1);
    if uses == 0 || uses > MAX_USES {
        return Err(Error::Invalid(format!("uses must be 1..={MAX_USES}")));
    }
    if req.member_name.is_some() && uses != 1 {
        return Err(Error::Invalid(
            "member_name needs a single-use token (uses = 1)".into(),
        ));
    }
    if let Some(t) = req.member_ttl_seconds {
        if t == 0 || t > MAX_MEMBER_TTL {
            return Err(Error::Invalid(format!(
                "member_ttl_seconds must be 1..={MAX_MEMBER_TTL}"
            )));
        }
    }
    Ok((ttl, uses))
}

/// Issues a join token for `enclave`. The secret is returned once and only
/// its hash is stored.
///
/// # Errors
/// [`Error::NotFound`], [`Error::Invalid`] for out-of-range numbers,
/// [`Error::Conflict`] when `member_name` is already a member, storage errors.
pub async fn create(
    ctl: &Controller,
    enclave: &Name,
    req: CreateToken,
    now: i64,
) -> Result<TokenCreated> {
    let (ttl, uses) = check(&req)?;
    let mut w = ctl.store.begin_write().await?;
    let conn = &mut *w.tx;
    let enclave_id = super::enclave_id(conn, enclave).await?;
    if let Some(name) = &req.member_name {
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT id FROM members WHERE enclave_id = $1 AND name = $2")
                .bind(enclave_id)
                .bind(name.as_str())
                .fetch_optional(&mut *conn)
                .await?;
        if exists.is_some() {
            return Err(Error::Conflict(format!(
                "{enclave} already has a member {name}"
            )));
        }
    }
    let token = JoinToken {
        controller: ctl.identity.url.clone(),
        ca_sha256: ctl.identity.ca_sha256.clone(),
        id: random_token(9),
        secret: random_token(24),
    };
    let expires_at = now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX));
    sqlx::query(
        "INSERT INTO join_tokens (id, enclave_id, secret_hash, role, uses_left, expires_at, \
         member_name, member_ttl, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&token.id)
    .bind(enclave_id)
    .bind(hash_secret(&token.secret))
    .bind(req.role.as_str())
    .bind(i64::from(uses))
    .bind(expires_at)
    .bind(req.member_name.as_ref().map(|n| n.to_string()))
    .bind(
        req.member_ttl_seconds
            .map(|t| i64::try_from(t).unwrap_or(i64::MAX)),
    )
    .bind(now)
    .execute(&mut *conn)
    .await?;
    audit::append(
        conn,
        now,
        &Actor::Admin,
        "token.create",
        enclave.as_str(),
        json!({"token_id": token.id, "role": req.role, "uses": uses, "expires_at": expires_at,
               "member_name": req.member_name, "member_ttl_seconds": req.member_ttl_seconds}),
    )
    .await?;
    w.commit().await?;
    Ok(TokenCreated {
        token: token.encode(),
        id: token.id,
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::Role;

    fn req(ttl: Option<u64>, uses: Option<u32>, name: Option<&str>) -> CreateToken {
        CreateToken {
            role: Role::Agent,
            ttl_seconds: ttl,
            uses,
            member_name: name.and_then(|n| Name::new(n).ok()),
            member_ttl_seconds: None,
        }
    }

    #[test]
    fn numbers_are_bounded() {
        assert!(matches!(check(&req(None, None, None)), Ok((3600, 1))));
        assert!(check(&req(Some(0), None, None)).is_err());
        assert!(check(&req(Some(MAX_TTL + 1), None, None)).is_err());
        assert!(check(&req(None, Some(0), None)).is_err());
        assert!(check(&req(None, Some(MAX_USES + 1), None)).is_err());
        assert!(check(&req(None, Some(2), Some("a"))).is_err());
        assert!(check(&req(None, Some(1), Some("a"))).is_ok());
    }
}
