//! Anthropic Messages (also the body of Claude models on Bedrock
//! InvokeModel).

use serde_json::{json, Value};

use super::error::{DenyKind, ErrorResponse};
use super::{named_tools, ToolDef};

/// `tools[].name` (server tools by `type` when unnamed).
pub fn tools(body: &Value) -> Vec<ToolDef> {
    named_tools(body, "/tools", |t| {
        t.get("name")
            .or_else(|| t.get("type"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    })
}

fn error_type(kind: DenyKind) -> &'static str {
    match kind {
        DenyKind::BadRequest => "invalid_request_error",
        DenyKind::Unauthenticated => "authentication_error",
        DenyKind::Forbidden => "permission_error",
        DenyKind::NotFound => "not_found_error",
        DenyKind::TooLarge => "request_too_large",
        DenyKind::Budget => "rate_limit_error",
        DenyKind::Upstream | DenyKind::Timeout => "api_error",
    }
}

fn body(kind: DenyKind, message: &str) -> Value {
    json!({"type": "error", "error": {"type": error_type(kind), "message": message}})
}

/// The error body Anthropic sends.
pub fn error(kind: DenyKind, message: &str) -> ErrorResponse {
    ErrorResponse {
        status: kind.status(),
        headers: vec![],
        body: body(kind, message).to_string(),
    }
}

/// The `error` SSE event that ends a stream.
pub fn stream_error(kind: DenyKind, message: &str) -> Vec<u8> {
    format!("event: error\ndata: {}\n\n", body(kind, message)).into_bytes()
}
