//! Talking to the controller: join once, then follow the netmap by
//! long-poll, retrying with backoff while the controller is away.

use std::time::Duration;

pub use control_client::follow::{follow, follow_within, Update, POLL_TIMEOUT};
use control_client::{Client, ClientError, Trust};
use hyper::{Method, StatusCode};
use proto::api::{JoinRequest, JoinResponse};
use proto::{ErrorBody, JoinToken, PublicKey};

/// Why talking to the controller failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The join token does not parse.
    #[error("join token: {0}")]
    Token(#[from] proto::token::TokenError),
    /// No HTTP answer (unreachable, TLS or pin failure).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The controller refused the token (unknown, spent or expired).
    #[error("the controller refused the join token (unknown, already used or expired)")]
    Refused,
    /// The controller answered with an error.
    #[error("controller: {0}")]
    Api(String),
    /// The controller answered something that is not the API.
    #[error("the controller sent an unexpected response: {0}")]
    Garbage(String),
    /// The controller accepted the connection but did not answer in time.
    #[error("the controller did not answer within {0:?}")]
    Timeout(Duration),
}

/// How long a join may take.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(20);

fn api_error(status: StatusCode, body: &[u8]) -> ControlError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) => ControlError::Api(format!("{status}: {}", b.error.message)),
        Err(_) => ControlError::Garbage(format!("{status}")),
    }
}

/// Redeems `token` with our public key, within [`JOIN_TIMEOUT`].
///
/// # Errors
/// [`ControlError`].
pub async fn join(
    token: &str,
    public_key: PublicKey,
    endpoint: Option<std::net::SocketAddr>,
    hostname: Option<String>,
) -> Result<(JoinToken, JoinResponse), ControlError> {
    join_within(token, public_key, endpoint, hostname, JOIN_TIMEOUT).await
}

/// [`join`] with another time limit.
///
/// # Errors
/// [`ControlError`].
pub async fn join_within(
    token: &str,
    public_key: PublicKey,
    endpoint: Option<std::net::SocketAddr>,
    hostname: Option<String>,
    limit: Duration,
) -> Result<(JoinToken, JoinResponse), ControlError> {
    let parsed = JoinToken::decode(token)?;
    let client = Client::with_trust(
        &parsed.controller,
        Trust::Pinned(parsed.ca_sha256.clone()),
        None,
    )?;
    let req = JoinRequest {
        token: token.trim().to_owned(),
        public_key,
        endpoint,
        hostname,
    };
    let body = serde_json::to_vec(&req).map_err(|e| ControlError::Garbage(e.to_string()))?;
    let (status, bytes) =
        tokio::time::timeout(limit, client.send(Method::POST, "/api/v1/join", Some(body)))
            .await
            .map_err(|_| ControlError::Timeout(limit))??;
    match status {
        StatusCode::OK => serde_json::from_slice(&bytes)
            .map(|r| (parsed, r))
            .map_err(|e| ControlError::Garbage(e.to_string())),
        StatusCode::UNAUTHORIZED => Err(ControlError::Refused),
        s => Err(api_error(s, &bytes)),
    }
}

/// Reports this host's inventory as the member whose state dir is given
/// (`POST /api/v1/node/inventory`, node token, controller pinned).
///
/// # Errors
/// [`ControlError`]; a removed member gets [`ControlError::Refused`].
pub async fn report_inventory(
    state: &crate::state::StateDir,
    inventory: &proto::inventory::Inventory,
) -> Result<(), ControlError> {
    let (_, token, m) = state.load().map_err(|e| ControlError::Api(e.to_string()))?;
    let client = Client::with_trust(
        &m.controller,
        Trust::Pinned(m.ca_sha256.clone()),
        Some(token),
    )?;
    let body = serde_json::to_vec(inventory).map_err(|e| ControlError::Garbage(e.to_string()))?;
    let (status, bytes) = tokio::time::timeout(
        JOIN_TIMEOUT,
        client.send(Method::POST, "/api/v1/node/inventory", Some(body)),
    )
    .await
    .map_err(|_| ControlError::Timeout(JOIN_TIMEOUT))??;
    match status {
        s if s.is_success() => Ok(()),
        StatusCode::UNAUTHORIZED => Err(ControlError::Refused),
        s => Err(api_error(s, &bytes)),
    }
}
