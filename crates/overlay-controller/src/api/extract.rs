//! Extractors that turn every bad request into the API's JSON error.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::Error;

use super::AppState;

/// Largest request body, in bytes.
pub const MAX_BODY: usize = 1024 * 1024;

/// A JSON body: 400 for malformed JSON, 422 for wrong types, unknown fields
/// or invalid values, 413 over [`MAX_BODY`], 400 if it arrives too slowly.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes =
            match tokio::time::timeout(state.client_timeout, Bytes::from_request(req, state)).await
            {
                Err(_) => {
                    return Err(Error::BadRequest(
                        "request body was not received in time".into(),
                    ))
                }
                Ok(Err(rej)) if rej.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    return Err(Error::TooLarge)
                }
                Ok(Err(_)) => {
                    return Err(Error::BadRequest("request body could not be read".into()))
                }
                Ok(Ok(b)) => b,
            };
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| match e.classify() {
                serde_json::error::Category::Data => {
                    Error::Invalid(format!("invalid request body: {e}"))
                }
                _ => Error::BadRequest(format!("malformed JSON: {e}")),
            })
    }
}

/// Path parameters, with a JSON error when they do not decode.
pub struct P<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for P<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| P(t))
            .map_err(|e| Error::BadRequest(format!("bad path: {e}")))
    }
}

/// Query parameters, with a JSON error when they do not decode.
pub struct Q<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Q<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(t)| Q(t))
            .map_err(|e| Error::BadRequest(format!("bad query: {e}")))
    }
}
