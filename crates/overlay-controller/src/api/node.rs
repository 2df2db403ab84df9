//! Node routes: join (authenticated by the join token in the body), then
//! `Authorization: Bearer <node token>`.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use proto::api::{GatewayConfig, JoinRequest, JoinResponse};
use proto::inventory::Inventory;
use proto::{ErrorBody, Netmap};
use serde::Deserialize;

use crate::controller::unix_now;
use crate::error::Result;
use crate::ops;

use super::auth::Node;
use super::extract::{Body, Q};
use super::AppState;

/// `POST /api/v1/join`
#[utoipa::path(post, path = "/api/v1/join", tag = "node", request_body = JoinRequest,
    responses((status = 200, body = JoinResponse), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn join(
    State(s): State<AppState>,
    Body(req): Body<JoinRequest>,
) -> Result<Json<JoinResponse>> {
    Ok(Json(ops::join::join(&s.ctl, req, unix_now()).await?))
}

/// Long-poll parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct NetmapQuery {
    /// The version the node has; the call returns once the netmap is newer.
    pub since: Option<u64>,
    /// Seconds to wait at most (default and maximum 30).
    pub timeout: Option<u64>,
}

/// `GET /api/v1/node/netmap?since=V`: 200 with a newer netmap, 204 after the
/// wait without a change, 401 once the member is removed.
#[utoipa::path(get, path = "/api/v1/node/netmap", tag = "node", security(("node" = [])),
    params(NetmapQuery),
    responses((status = 200, body = Netmap), (status = 204, description = "no change within the wait"), (status = 401, body = ErrorBody)))]
pub async fn netmap(
    State(s): State<AppState>,
    Node(node): Node,
    Q(q): Q<NetmapQuery>,
) -> Result<Response> {
    ops::node_auth::touch(&s.ctl, &node, unix_now());
    let wait = Duration::from_secs(q.timeout.unwrap_or(30));
    match ops::netmap::wait(&s.ctl, node.member_id, q.since.unwrap_or(0), wait).await? {
        Some(map) => Ok(Json(map).into_response()),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// `GET /api/v1/node/gateway-config`: gateway members only.
#[utoipa::path(get, path = "/api/v1/node/gateway-config", tag = "node", security(("node" = [])),
    responses((status = 200, body = GatewayConfig), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn gateway_config(
    State(s): State<AppState>,
    Node(node): Node,
) -> Result<Json<GatewayConfig>> {
    Ok(Json(
        ops::credential::gateway_config(&s.ctl, &node, unix_now()).await?,
    ))
}

/// `POST /api/v1/node/inventory`: the node's host inventory (names, never
/// values; see `proto::inventory`).
#[utoipa::path(post, path = "/api/v1/node/inventory", tag = "node", security(("node" = [])),
    request_body = Inventory,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn report_inventory(
    State(s): State<AppState>,
    Node(node): Node,
    Body(inv): Body<Inventory>,
) -> Result<StatusCode> {
    let now = unix_now();
    ops::node_auth::touch(&s.ctl, &node, now);
    ops::inventory::report(&s.ctl, &node, &inv, now).await?;
    Ok(StatusCode::NO_CONTENT)
}
