//! Shared by the load test and the scale bench (included with `#[path]`):
//! one admin API call with a JSON body, and a percentile of sorted
//! durations.

use std::time::Duration;

use anyhow::Result;
use control_client::Client;
use hyper::{Method, StatusCode};
use serde_json::Value;

/// The `p` quantile (0.0–1.0) of `sorted`; zero when it is empty.
pub fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// `m path` with `body` as JSON; the status and the answer as JSON
/// (`Null` when it is empty or not JSON).
pub async fn call(
    c: &Client,
    m: Method,
    path: &str,
    body: Option<Value>,
) -> Result<(StatusCode, Value)> {
    let (s, b) = c
        .send(m, path, body.map(|b| serde_json::to_vec(&b)).transpose()?)
        .await?;
    Ok((s, serde_json::from_slice(&b).unwrap_or(Value::Null)))
}
