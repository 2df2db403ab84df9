//! An admin approves a changed tool definition: the pin moves to what the
//! server lists now, and the decision goes to the session log.

use serde_json::json;

use crate::session_log::{Record, RecordKind, SessionLog};

use super::pins::{Pin, Pins};
use super::record::exchange_id;

/// Why an approval failed.
#[derive(Debug, thiserror::Error)]
pub enum ApproveError {
    /// The tool was never listed through the gateway.
    #[error("no pin for tool `{1}` of MCP server `{0}`: it was never listed through the gateway")]
    Unknown(String, String),
    /// The database failed.
    #[error("MCP pins: {0}")]
    Db(#[from] sqlx::Error),
    /// The decision could not be logged (the pin did move).
    #[error("{0}")]
    Log(#[from] crate::session_log::LogError),
}

/// Approves the last listed definition of `server`'s `tool` on behalf of
/// `by`; returns the pin as it is now.
///
/// # Errors
/// [`ApproveError`].
pub async fn approve(
    pins: &Pins,
    log: &SessionLog,
    enclave: &str,
    (server, tool): (&str, &str),
    by: &str,
) -> Result<Pin, ApproveError> {
    let before = pins
        .approve(server, tool)
        .await?
        .ok_or_else(|| ApproveError::Unknown(server.to_owned(), tool.to_owned()))?;
    let now = Pin {
        approved: before.seen.clone(),
        ..before.clone()
    };
    log.append(Record {
        exchange: exchange_id(),
        kind: RecordKind::Request,
        at_ms: crate::proxy::exchange::now_ms(),
        agent: by.to_owned(),
        enclave: enclave.to_owned(),
        provider: format!("mcp:{server}"),
        operation: "pins/approve".into(),
        model: tool.to_owned(),
        decision: "approved".into(),
        body: bytes::Bytes::new(),
        detail: json!({"previous": before.approved, "approved": now.approved}),
    })
    .await?;
    tracing::info!(server, tool, by, "changed MCP tool definition approved");
    Ok(now)
}
