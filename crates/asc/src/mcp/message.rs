//! JSON-RPC 2.0 messages as MCP uses them, kept as JSON so fields the
//! gateway does not know pass through untouched.

use serde_json::{json, Value};

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Has `method` and `id`.
    Request,
    /// Has `method`, no `id`.
    Notification,
    /// Has `id` and `result` or `error`.
    Response,
    /// Anything else (a batch array, garbage).
    Invalid,
}

/// The kind of `v`.
pub fn kind(v: &Value) -> Kind {
    let Some(o) = v.as_object() else {
        return Kind::Invalid;
    };
    match (
        o.get("method").and_then(Value::as_str),
        o.contains_key("id"),
    ) {
        (Some(_), true) => Kind::Request,
        (Some(_), false) => Kind::Notification,
        (None, true) if o.contains_key("result") || o.contains_key("error") => Kind::Response,
        _ => Kind::Invalid,
    }
}

/// The method of a request or notification.
pub fn method(v: &Value) -> &str {
    v.get("method").and_then(Value::as_str).unwrap_or("")
}

/// The id as a map key (its JSON text).
pub fn id_key(v: &Value) -> Option<String> {
    v.get("id").map(Value::to_string)
}

/// JSON-RPC "invalid params": what a refused tool call gets, so clients
/// report it like any other bad call.
pub const INVALID_PARAMS: i64 = -32602;
/// JSON-RPC "invalid request".
pub const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC "internal error": a result the gateway withheld.
pub const INTERNAL_ERROR: i64 = -32603;

/// An error response to the request with `id`.
pub fn error(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(
            kind(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})),
            Kind::Request
        );
        assert_eq!(
            kind(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"})),
            Kind::Notification
        );
        assert_eq!(
            kind(&json!({"jsonrpc": "2.0", "id": "a", "result": {}})),
            Kind::Response
        );
        assert_eq!(kind(&json!([{"id": 1}])), Kind::Invalid);
        assert_eq!(kind(&json!({"id": 1})), Kind::Invalid);
        assert_eq!(id_key(&json!({"id": "x"})).as_deref(), Some("\"x\""));
    }
}
