//! The HTTPS API: admin routes, node routes, health and the OpenAPI
//! document generated from the handlers themselves.

pub mod admin;
pub mod auth;
pub mod extract;
pub mod node;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::controller::Controller;
use crate::metrics::RequestLabels;

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    /// The controller.
    pub ctl: Arc<Controller>,
    /// Hex SHA-256 of the admin token.
    pub admin_hash: Arc<str>,
    /// How long a client may take to send its body.
    pub client_timeout: std::time::Duration,
}

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for name in ["admin", "node"] {
            components.add_security_scheme(
                name,
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Cordon controller API", description = "Enclaves, join tokens, netmaps, vault and audit."),
    modifiers(&Security),
    components(schemas(proto::ErrorBody))
)]
struct ApiDoc;

/// `GET /healthz`: liveness, no authentication.
#[utoipa::path(get, path = "/healthz", tag = "meta", responses((status = 200, description = "alive")))]
async fn healthz() -> &'static str {
    "ok\n"
}

async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let resp = next.run(req).await;
    state
        .ctl
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            route,
            status: resp.status().as_u16(),
        })
        .inc();
    resp
}

/// The router and its OpenAPI document.
pub fn router(state: AppState) -> Router {
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(admin::create_enclave, admin::list_enclaves))
        .routes(routes!(admin::show_enclave, admin::delete_enclave))
        .routes(routes!(admin::create_token))
        .routes(routes!(admin::list_members))
        .routes(routes!(admin::remove_member))
        .routes(routes!(admin::create_chamber, admin::list_chambers))
        .routes(routes!(admin::topology))
        .routes(routes!(admin::put_policy, admin::get_policy))
        .routes(routes!(admin::put_credential))
        .routes(routes!(admin::list_audit))
        .routes(routes!(node::join))
        .routes(routes!(node::netmap))
        .routes(routes!(node::gateway_config))
        .routes(routes!(node::report_inventory))
        .routes(routes!(admin::list_inventory))
        .split_for_parts();
    let openapi = Arc::new(openapi);
    router
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let doc = openapi.clone();
                async move { Json(doc) }
            }),
        )
        .fallback(|| async { crate::error::Error::NotFound("route".into()) })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .layer(DefaultBodyLimit::max(extract::MAX_BODY))
        .with_state(state)
}
