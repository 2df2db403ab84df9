//! Session-log records of one MCP conversation (either transport).

use serde_json::Value;

use crate::proxy::exchange::now_ms;
use crate::session_log::{LogError, Record, RecordKind, SessionLog};

/// Who and where, for every record of one conversation.
pub struct McpLog {
    /// The log.
    pub log: SessionLog,
    /// The enclave.
    pub enclave: String,
    /// The calling agent.
    pub agent: String,
    /// The MCP server's name in the policy.
    pub server: String,
}

/// A fresh exchange id.
pub fn exchange_id() -> String {
    format!("ex-{}", hex::encode(rand::random::<[u8; 8]>()))
}

impl McpLog {
    /// Appends one record (`provider` = `mcp:SERVER`, `model` = the tool,
    /// prompt or resource).
    ///
    /// # Errors
    /// When the record could not be committed: the caller must not forward
    /// what it could not log.
    pub async fn write(
        &self,
        exchange: &str,
        kind: RecordKind,
        (method, tool): (&str, &str),
        decision: &str,
        body: &Value,
        detail: Value,
    ) -> Result<(), LogError> {
        let r = Record {
            exchange: exchange.to_owned(),
            kind,
            at_ms: now_ms(),
            agent: self.agent.clone(),
            enclave: self.enclave.clone(),
            provider: format!("mcp:{}", self.server),
            operation: method.to_owned(),
            model: tool.to_owned(),
            decision: decision.to_owned(),
            body: body.to_string().into(),
            detail,
        };
        self.log.append(r).await.map(|_| ())
    }
}
