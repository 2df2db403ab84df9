//! Admin routes (`Authorization: Bearer <admin token>`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use proto::api::{
    AuditRecord, Chamber, CreateEnclave, CreateToken, CredentialInfo, Enclave, Member, PolicyInfo,
    PutCredential, PutPolicy, TokenCreated, Topology,
};
use proto::inventory::HostInventory;
use proto::ErrorBody;
use serde::Deserialize;

use crate::controller::unix_now;
use crate::error::Result;
use crate::ops::{self, name_param};

use super::auth::Admin;
use super::extract::{Body, P, Q};
use super::AppState;

/// `POST /api/v1/enclaves`
#[utoipa::path(post, path = "/api/v1/enclaves", tag = "enclaves", security(("admin" = [])),
    request_body = CreateEnclave,
    responses((status = 201, body = Enclave), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_enclave(
    State(s): State<AppState>,
    _: Admin,
    Body(req): Body<CreateEnclave>,
) -> Result<(StatusCode, Json<Enclave>)> {
    let e = ops::enclave::create(&s.ctl, req, unix_now()).await?;
    Ok((StatusCode::CREATED, Json(e)))
}

/// `GET /api/v1/enclaves`
#[utoipa::path(get, path = "/api/v1/enclaves", tag = "enclaves", security(("admin" = [])),
    responses((status = 200, body = Vec<Enclave>)))]
pub async fn list_enclaves(State(s): State<AppState>, _: Admin) -> Result<Json<Vec<Enclave>>> {
    Ok(Json(ops::enclave::list(&s.ctl).await?))
}

/// `GET /api/v1/enclaves/{name}`
#[utoipa::path(get, path = "/api/v1/enclaves/{name}", tag = "enclaves", security(("admin" = [])),
    params(("name" = String, Path)), responses((status = 200, body = Enclave), (status = 404, body = ErrorBody)))]
pub async fn show_enclave(
    State(s): State<AppState>,
    _: Admin,
    P(name): P<String>,
) -> Result<Json<Enclave>> {
    let name = name_param("enclave", &name)?;
    Ok(Json(ops::enclave::show(&s.ctl, &name).await?))
}

/// `DELETE /api/v1/enclaves/{name}`: revokes every member.
#[utoipa::path(delete, path = "/api/v1/enclaves/{name}", tag = "enclaves", security(("admin" = [])),
    params(("name" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_enclave(
    State(s): State<AppState>,
    _: Admin,
    P(name): P<String>,
) -> Result<StatusCode> {
    let name = name_param("enclave", &name)?;
    ops::enclave::delete(&s.ctl, &name, unix_now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/enclaves/{name}/tokens`
#[utoipa::path(post, path = "/api/v1/enclaves/{name}/tokens", tag = "tokens", security(("admin" = [])),
    params(("name" = String, Path)), request_body = CreateToken,
    responses((status = 201, body = TokenCreated), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_token(
    State(s): State<AppState>,
    _: Admin,
    P(name): P<String>,
    Body(req): Body<CreateToken>,
) -> Result<(StatusCode, Json<TokenCreated>)> {
    let name = name_param("enclave", &name)?;
    let t = ops::token::create(&s.ctl, &name, req, unix_now()).await?;
    Ok((StatusCode::CREATED, Json(t)))
}

/// `GET /api/v1/enclaves/{name}/members`
#[utoipa::path(get, path = "/api/v1/enclaves/{name}/members", tag = "members", security(("admin" = [])),
    params(("name" = String, Path)), responses((status = 200, body = Vec<Member>), (status = 404, body = ErrorBody)))]
pub async fn list_members(
    State(s): State<AppState>,
    _: Admin,
    P(name): P<String>,
) -> Result<Json<Vec<Member>>> {
    let name = name_param("enclave", &name)?;
    Ok(Json(ops::member::list(&s.ctl, &name).await?))
}

/// `DELETE /api/v1/enclaves/{name}/members/{member}`: decommission in one step.
#[utoipa::path(delete, path = "/api/v1/enclaves/{name}/members/{member}", tag = "members", security(("admin" = [])),
    params(("name" = String, Path), ("member" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn remove_member(
    State(s): State<AppState>,
    _: Admin,
    P((name, member)): P<(String, String)>,
) -> Result<StatusCode> {
    let name = name_param("enclave", &name)?;
    let member = name_param("member", &member)?;
    ops::member::remove(&s.ctl, &name, &member, unix_now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/enclaves/{name}/chambers`
#[utoipa::path(post, path = "/api/v1/enclaves/{name}/chambers", tag = "chambers", security(("admin" = [])),
    params(("name" = String, Path)), request_body = Chamber,
    responses((status = 201, body = Chamber), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_chamber(
    State(s): State<AppState>,
    _: Admin,
    P(name): P<String>,
    Body(req): Body<Chamber>,
) -> Result<(StatusCode, Json<Chamber>)> {
    let name = name_param("enclave", &name)?;
    let c = ops::chamber::create(&s.ctl, &name, req, unix_now()).await?;
    Ok((StatusCode::CREATED, Json(c)))
}

/// `GET /api/v1/enclaves/{name}/chambers`
#[utoipa::path(get, path = "/api/v1/enclaves/{name}/chambers", tag = "chambers", security(("admin" = [])),
    params(("name" = String, Path)), responses((status = 200, body = Vec<Chamber>), (status = 404, body = ErrorBody)))]
pub async fn list_chambers(
    State(s): State<AppState>,
    _: Admin,
    P(name): P<String>,
) -> Result<Json<Vec<Chamber>>> {
    let name = name_param("enclave", &name)?;
    Ok(Json(ops::chamber::list(&s.ctl, &name).await?))
}

/// `GET /api/v1/enclaves/{name}/topology`: who can reach whom.
#[utoipa::path(get, path = "/api/v1/enclaves/{name}/topology", tag = "enclaves", security(("admin" = [])),
    params(("name" = String, Path)), responses((status = 200, body = Topology), (status = 404, body = ErrorBody)))]
pub async fn topology(
    State(s): State<AppState>,
    _: Admin,
    P(name): P<String>,
) -> Result<Json<Topology>> {
    let name = name_param("enclave", &name)?;
    Ok(Json(ops::netmap::topology(&s.ctl, &name).await?))
}

/// `PUT /api/v1/enclaves/{name}/policy`
#[utoipa::path(put, path = "/api/v1/enclaves/{name}/policy", tag = "policy", security(("admin" = [])),
    params(("name" = String, Path)), request_body = PutPolicy,
    responses((status = 200, body = PolicyInfo), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_policy(
    State(s): State<AppState>,
    _: Admin,
    P(name): P<String>,
    Body(req): Body<PutPolicy>,
) -> Result<Json<PolicyInfo>> {
    let name = name_param("enclave", &name)?;
    Ok(Json(
        ops::policy::set(&s.ctl, &name, req.content, unix_now()).await?,
    ))
}

/// `GET /api/v1/enclaves/{name}/policy`
#[utoipa::path(get, path = "/api/v1/enclaves/{name}/policy", tag = "policy", security(("admin" = [])),
    params(("name" = String, Path)), responses((status = 200, body = PolicyInfo), (status = 404, body = ErrorBody)))]
pub async fn get_policy(
    State(s): State<AppState>,
    _: Admin,
    P(name): P<String>,
) -> Result<Json<PolicyInfo>> {
    let name = name_param("enclave", &name)?;
    Ok(Json(ops::policy::show(&s.ctl, &name).await?))
}

/// `PUT /api/v1/credentials/{name}`: the secret is stored sealed and never returned.
#[utoipa::path(put, path = "/api/v1/credentials/{name}", tag = "vault", security(("admin" = [])),
    params(("name" = String, Path)), request_body = PutCredential,
    responses((status = 200, body = CredentialInfo), (status = 422, body = ErrorBody)))]
pub async fn put_credential(
    State(s): State<AppState>,
    _: Admin,
    P(name): P<String>,
    Body(req): Body<PutCredential>,
) -> Result<Json<CredentialInfo>> {
    let name = name_param("credential", &name)?;
    Ok(Json(
        ops::credential::put(&s.ctl, &name, req, unix_now()).await?,
    ))
}

/// Paging of the audit log.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AuditQuery {
    /// Only records after this sequence number.
    pub after: Option<i64>,
    /// At most this many records (default and maximum 1000).
    pub limit: Option<i64>,
}

/// `GET /api/v1/audit`
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", security(("admin" = [])),
    params(AuditQuery), responses((status = 200, body = Vec<AuditRecord>)))]
pub async fn list_audit(
    State(s): State<AppState>,
    _: Admin,
    Q(q): Q<AuditQuery>,
) -> Result<Json<Vec<AuditRecord>>> {
    let limit = q.limit.unwrap_or(1000).clamp(1, 1000);
    let mut conn = s.ctl.store.pool().acquire().await?;
    Ok(Json(
        crate::audit::list(&mut conn, q.after.unwrap_or(0), limit).await?,
    ))
}

/// Inventory filter.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct InventoryQuery {
    /// Only agents that no enclave governs.
    pub unmanaged: Option<bool>,
}

/// `GET /api/v1/inventory`: the newest inventory of every host.
#[utoipa::path(get, path = "/api/v1/inventory", tag = "inventory", security(("admin" = [])),
    params(InventoryQuery), responses((status = 200, body = Vec<HostInventory>)))]
pub async fn list_inventory(
    State(s): State<AppState>,
    _: Admin,
    Q(q): Q<InventoryQuery>,
) -> Result<Json<Vec<HostInventory>>> {
    Ok(Json(
        ops::inventory::list(&s.ctl, q.unmanaged.unwrap_or(false)).await?,
    ))
}
