//! Provider credentials in the vault, and the gateway's view of them.

use proto::api::{
    CredentialInfo, GatewayAgent, GatewayConfig, GatewayCredential, Provider, PutCredential,
};
use proto::{Name, PolicyDocument, Role};
use serde_json::json;
use sqlx::Row;

use crate::audit::{self, Actor};
use crate::changes::Kind;
use crate::controller::Controller;
use crate::error::{Error, Result};
use crate::rows;

use super::node_auth::NodeIdentity;

/// Longest secret accepted.
pub const MAX_SECRET: usize = 8 * 1024;

fn aad(name: &Name, provider: Provider) -> String {
    format!("credential:{name}:{provider}")
}

/// Stores (or replaces) a credential, sealed. The secret is never logged,
/// audited or returned.
///
/// # Errors
/// [`Error::Invalid`] for an empty, oversized or multi-line secret, storage errors.
pub async fn put(
    ctl: &Controller,
    name: &Name,
    req: PutCredential,
    now: i64,
) -> Result<CredentialInfo> {
    let secret = req.secret.trim();
    if secret.is_empty() || secret.len() > MAX_SECRET || secret.chars().any(|c| c.is_control()) {
        return Err(Error::Invalid(format!(
            "secret must be 1..={MAX_SECRET} bytes on one line"
        )));
    }
    let sealed = ctl.vault.seal(&aad(name, req.provider), secret.as_bytes());
    let mut w = ctl.store.begin_write().await?;
    let conn = &mut *w.tx;
    sqlx::query(
        "INSERT INTO credentials (name, provider, sealed, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name) DO UPDATE SET provider = excluded.provider, sealed = excluded.sealed, \
         updated_at = excluded.updated_at",
    )
    .bind(name.as_str())
    .bind(req.provider.as_str())
    .bind(sealed)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    audit::append(
        conn,
        now,
        &Actor::Admin,
        "credential.set",
        name.as_str(),
        json!({"provider": req.provider}),
    )
    .await?;
    // Every enclave's gateways refetch, so a rotated key is in use at once.
    let enclaves: Vec<i64> = sqlx::query_scalar("SELECT id FROM enclaves")
        .fetch_all(&mut *conn)
        .await?;
    for id in enclaves {
        ctl.record_change(conn, id, Kind::CredentialSet, 0, now)
            .await?;
    }
    w.commit().await?;
    ctl.replay().await?;
    Ok(CredentialInfo {
        name: name.clone(),
        provider: req.provider,
        updated_at: now,
    })
}

/// The enclave's policy and the decrypted credentials it names, for a
/// gateway member of that enclave only. Every fetch is audited.
///
/// # Errors
/// [`Error::Forbidden`] for a node that is not a gateway, storage and vault errors.
pub async fn gateway_config(
    ctl: &Controller,
    node: &NodeIdentity,
    now: i64,
) -> Result<GatewayConfig> {
    if node.role != Role::Gateway {
        return Err(Error::Forbidden(
            "only a gateway member may fetch its enclave's gateway configuration".into(),
        ));
    }
    let mut conn = ctl.store.pool().acquire().await?;
    let policy = super::policy::current(&mut conn, node.enclave_id, &node.enclave).await?;
    let mut credentials = Vec::new();
    if let Some(p) = &policy {
        let doc = PolicyDocument::parse(&p.content)
            .map_err(|_| Error::Corrupt("stored policy".into()))?;
        for (provider, name) in doc.credentials() {
            let row = sqlx::query("SELECT provider, sealed FROM credentials WHERE name = $1")
                .bind(name.as_str())
                .fetch_optional(&mut *conn)
                .await?;
            let Some(row) = row else {
                tracing::warn!(enclave = %node.enclave, credential = %name, "policy names a credential the vault does not hold");
                continue;
            };
            let stored: Provider = rows::parse(&row, "provider")?;
            if stored != *provider {
                tracing::warn!(enclave = %node.enclave, credential = %name, "policy names a credential of another provider");
                continue;
            }
            let secret = ctl
                .vault
                .open(&aad(name, stored), &row.try_get::<Vec<u8>, _>("sealed")?)?;
            credentials.push(GatewayCredential {
                name: name.clone(),
                provider: stored,
                secret: String::from_utf8(secret)
                    .map_err(|_| Error::Corrupt("credential".into()))?,
            });
        }
    }
    let agent_rows = sqlx::query(
        "SELECT name, address, substitute_sha256 FROM members \
         WHERE enclave_id = $1 AND role = 'agent' AND substitute_sha256 IS NOT NULL ORDER BY name",
    )
    .bind(node.enclave_id)
    .fetch_all(&mut *conn)
    .await?;
    drop(conn);
    let mut agents = Vec::with_capacity(agent_rows.len());
    for row in &agent_rows {
        agents.push(GatewayAgent {
            name: rows::parse(row, "name")?,
            address: rows::parse(row, "address")?,
            substitute_sha256: row.try_get("substitute_sha256")?,
        });
    }
    let names: Vec<String> = credentials.iter().map(|c| c.name.to_string()).collect();
    let mut w = ctl.store.begin_write().await?;
    audit::append(
        &mut w.tx,
        now,
        &Actor::Node(node.enclave.to_string(), node.member.to_string()),
        "gateway.config",
        node.enclave.as_str(),
        json!({"credentials": names, "policy_version": policy.as_ref().map(|p| p.version)}),
    )
    .await?;
    w.commit().await?;
    Ok(GatewayConfig {
        enclave: node.enclave.clone(),
        policy,
        credentials,
        agents,
    })
}
