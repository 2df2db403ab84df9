//! The admin API (loopback by default; bearer token from the admin token
//! file): approvals, session log queries, policy reload, health, metrics.
//! Never on an address agents can reach unless configured so, and never
//! without the token.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Path, Query, Request, State as AxState};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::mcp;
use crate::proxy::State;
use crate::session_log;

/// Loads the admin token, creating a random one (0600) on first start.
///
/// # Errors
/// When the file cannot be read or written, or others can read it.
pub fn load_or_create_token(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if path.exists() {
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!("{} is readable by others; chmod 600 it", path.display()),
            ));
        }
        return Ok(std::fs::read_to_string(path)?.trim().to_owned());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let token = format!("ascadm-{}", hex::encode(rand::random::<[u8; 24]>()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(token.as_bytes())?;
    Ok(token)
}

#[derive(Clone)]
struct Admin {
    state: Arc<State>,
    token: Arc<String>,
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

async fn auth(AxState(a): AxState<Admin>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let ok = presented.len() == a.token.len()
        && bool::from(presented.as_bytes().ct_eq(a.token.as_bytes()));
    if !ok {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "admin token required",
        );
    }
    next.run(req).await
}

async fn approvals(AxState(a): AxState<Admin>) -> Response {
    Json(json!({"approvals": a.state.approvals.list()})).into_response()
}

async fn decide(a: &Admin, id: &str, approve: bool) -> Response {
    match a.state.approvals.decide(id, approve) {
        Ok(p) => {
            tracing::info!(approval = %p.id, tool = %p.tool, agent = %p.agent, approve, "approval decided");
            Json(json!({"decided": p, "approved": approve})).into_response()
        }
        Err(e) => error(StatusCode::NOT_FOUND, "not_found", &e.to_string()),
    }
}

async fn approve(AxState(a): AxState<Admin>, Path(id): Path<String>) -> Response {
    decide(&a, &id, true).await
}

async fn deny(AxState(a): AxState<Admin>, Path(id): Path<String>) -> Response {
    decide(&a, &id, false).await
}

#[derive(Deserialize)]
struct TailQuery {
    n: Option<i64>,
}

async fn tail(AxState(a): AxState<Admin>, Query(q): Query<TailQuery>) -> Response {
    match session_log::tail(a.state.log.pool(), q.n.unwrap_or(20).clamp(1, 1000)).await {
        Ok(r) => Json(json!({"records": r})).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "log", &e.to_string()),
    }
}

async fn show(AxState(a): AxState<Admin>, Path(id): Path<String>) -> Response {
    match session_log::show(a.state.log.pool(), &id).await {
        Ok(r) if r.is_empty() => error(StatusCode::NOT_FOUND, "not_found", "no such exchange"),
        Ok(r) => Json(json!({"records": r})).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "log", &e.to_string()),
    }
}

async fn verify(AxState(a): AxState<Admin>) -> Response {
    match session_log::verify(a.state.log.pool()).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "log", &e.to_string()),
    }
}

/// The agents the gateway accepts right now (names and bound addresses,
/// never keys).
async fn agents(AxState(a): AxState<Admin>) -> Response {
    let list: Vec<serde_json::Value> = a
        .state
        .agents()
        .iter()
        .map(|g| json!({"name": g.name, "source": g.source().map(|s| s.to_string())}))
        .collect();
    Json(json!({"agents": list, "policy": a.state.policy_version()})).into_response()
}

async fn pins(AxState(a): AxState<Admin>) -> Response {
    match a.state.mcp_pins.list().await {
        Ok(p) => Json(json!({"pins": p})).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "pins", &e.to_string()),
    }
}

async fn approve_pin(
    AxState(a): AxState<Admin>,
    Path((server, tool)): Path<(String, String)>,
) -> Response {
    let s = &a.state;
    match mcp::approve::approve(
        &s.mcp_pins,
        &s.log,
        &s.config.enclave,
        (&server, &tool),
        "admin",
    )
    .await
    {
        Ok(p) => Json(json!({"pin": p})).into_response(),
        Err(e @ mcp::approve::ApproveError::Unknown(..)) => {
            error(StatusCode::NOT_FOUND, "not_found", &e.to_string())
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "pins", &e.to_string()),
    }
}

async fn reload(AxState(a): AxState<Admin>) -> Response {
    a.state.reload_if_changed();
    match a.state.active() {
        Ok(p) => Json(json!({"policy_version": p.policy.version})).into_response(),
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, "policy_invalid", &e),
    }
}

async fn metrics(AxState(a): AxState<Admin>) -> Response {
    let c = &a.state.counters;
    let lines = [
        ("asc_requests_total", c.requests.load(Ordering::Relaxed)),
        ("asc_forwarded_total", c.forwarded.load(Ordering::Relaxed)),
        ("asc_blocked_total", c.blocked.load(Ordering::Relaxed)),
        ("asc_rejected_total", c.rejected.load(Ordering::Relaxed)),
        (
            "asc_upstream_errors_total",
            c.upstream_errors.load(Ordering::Relaxed),
        ),
        (
            "asc_pending_approvals",
            a.state.approvals.list().len() as u64,
        ),
    ];
    let mut out = String::new();
    for (name, v) in lines {
        out.push_str(&format!(
            "# TYPE {name} {}\n{name} {v}\n",
            if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            }
        ));
    }
    ([("content-type", "text/plain; version=0.0.4")], out).into_response()
}

/// The admin router.
pub fn router(state: Arc<State>, token: String) -> Router {
    let a = Admin {
        state,
        token: Arc::new(token),
    };
    let protected = Router::new()
        .route("/api/v1/approvals", get(approvals))
        .route("/api/v1/approvals/{id}/approve", post(approve))
        .route("/api/v1/approvals/{id}/deny", post(deny))
        .route("/api/v1/log", get(tail))
        .route("/api/v1/log/verify", get(verify))
        .route("/api/v1/log/{id}", get(show))
        .route("/api/v1/policy/reload", post(reload))
        .route("/api/v1/agents", get(agents))
        .route("/api/v1/mcp/pins", get(pins))
        .route(
            "/api/v1/mcp/pins/{server}/{tool}/approve",
            post(approve_pin),
        )
        .layer(middleware::from_fn_with_state(a.clone(), auth));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .merge(protected)
        .with_state(a)
}
