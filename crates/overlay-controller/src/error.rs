//! The controller's error type and its one mapping to HTTP.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use proto::{ApiError, ErrorBody};

use crate::db::StoreError;
use crate::vault::VaultError;

/// Everything an operation of the controller can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The named thing does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// It exists already, or the request contradicts stored state.
    #[error("{0}")]
    Conflict(String),
    /// The request is well-formed but its values are not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// The request body or query could not be parsed.
    #[error("{0}")]
    BadRequest(String),
    /// Missing, unknown, spent, expired or revoked credentials. Deliberately
    /// says nothing about which.
    #[error("missing or invalid credentials")]
    Unauthorized,
    /// Authenticated, but not allowed to do this.
    #[error("{0}")]
    Forbidden(String),
    /// The body is over the size limit.
    #[error("request body is larger than 1 MiB")]
    TooLarge,
    /// Too many concurrent requests of this kind.
    #[error("{0}")]
    TooMany(String),
    /// Storage failed (details are logged, never sent).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A sealed value did not open (details are logged, never sent).
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// A stored row does not parse: the database was edited by hand.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Store(StoreError::Db(e))
    }
}

impl Error {
    /// The HTTP status and stable code of this error.
    pub fn status(&self) -> (StatusCode, &'static str) {
        match self {
            Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Error::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Error::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            Error::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Error::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Error::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            Error::TooMany(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
            Error::Store(e) if e.is_overload() => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Error::Store(_) | Error::Vault(_) | Error::Corrupt(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = self.status();
        let message = if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(error = %self, "request refused: storage busy");
            "the controller is busy; retry shortly".to_owned()
        } else if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
            "internal error; see the controller log".to_owned()
        } else {
            self.to_string()
        };
        let body = ErrorBody {
            error: ApiError {
                code: code.to_owned(),
                message,
            },
        };
        let mut resp = (status, axum::Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

/// Result with the controller's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contention_is_503_with_retry_after_and_faults_are_500() {
        let busy = Error::Store(StoreError::Db(sqlx::Error::PoolTimedOut));
        assert_eq!(
            busy.status(),
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        );
        let resp = busy.into_response();
        assert_eq!(
            resp.headers().get("retry-after").map(|v| v.as_bytes()),
            Some(&b"1"[..])
        );
        assert_eq!(
            Error::Store(StoreError::Busy).status().0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        let fault = Error::Store(StoreError::Db(sqlx::Error::RowNotFound));
        assert_eq!(
            fault.status(),
            (StatusCode::INTERNAL_SERVER_ERROR, "internal")
        );
        assert_eq!(
            Error::Corrupt("x".into()).status().0,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
