//! Bearer-token authentication of admins and nodes.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::error::Error;
use crate::ops::node_auth::{self, NodeIdentity};
use crate::secret::verify_secret;

use super::AppState;

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Proof that the request carries the admin token.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        match bearer(parts) {
            Some(t) if verify_secret(t, &state.admin_hash) => Ok(Admin),
            _ => {
                state.ctl.metrics.auth_failures.inc();
                Err(Error::Unauthorized)
            }
        }
    }
}

/// The member whose node token the request carries.
pub struct Node(pub NodeIdentity);

impl FromRequestParts<AppState> for Node {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let token = bearer(parts).ok_or(Error::Unauthorized);
        let res = match token {
            Ok(t) => node_auth::authenticate(&state.ctl, t).await,
            Err(e) => Err(e),
        };
        if matches!(res, Err(Error::Unauthorized)) {
            state.ctl.metrics.auth_failures.inc();
        }
        res.map(Node)
    }
}
