//! OpenAI Chat Completions and Responses.

use serde_json::{json, Value};

use super::error::{DenyKind, ErrorResponse};
use super::{named_tools, ToolDef};

fn str_at(v: &Value, p: &str) -> Option<String> {
    v.pointer(p).and_then(Value::as_str).map(str::to_owned)
}

/// Chat Completions: `tools[].function.name` (custom tools: `name`,
/// built-ins: `type`) and the legacy `functions[].name`.
pub fn chat_tools(body: &Value) -> Vec<ToolDef> {
    let mut t = named_tools(body, "/tools", |t| {
        str_at(t, "/function/name")
            .or_else(|| str_at(t, "/custom/name"))
            .or_else(|| str_at(t, "/name"))
            .or_else(|| str_at(t, "/type"))
    });
    t.extend(named_tools(body, "/functions", |t| str_at(t, "/name")));
    t
}

/// Responses: `tools[].name`, built-in tools by `type` (`web_search`…).
pub fn responses_tools(body: &Value) -> Vec<ToolDef> {
    named_tools(body, "/tools", |t| {
        str_at(t, "/name").or_else(|| str_at(t, "/type"))
    })
}

fn error_type(kind: DenyKind) -> &'static str {
    match kind {
        DenyKind::BadRequest | DenyKind::NotFound | DenyKind::TooLarge => "invalid_request_error",
        DenyKind::Unauthenticated => "authentication_error",
        DenyKind::Forbidden => "permission_error",
        DenyKind::Budget => "rate_limit_error",
        DenyKind::Upstream | DenyKind::Timeout => "server_error",
    }
}

fn error_object(kind: DenyKind, message: &str) -> Value {
    json!({"message": message, "type": error_type(kind), "param": null, "code": kind.code()})
}

/// The error body OpenAI sends, so the SDK raises its usual exception.
pub fn error(kind: DenyKind, message: &str) -> ErrorResponse {
    ErrorResponse {
        status: kind.status(),
        headers: vec![],
        body: json!({"error": error_object(kind, message)}).to_string(),
    }
}

/// The SSE event that ends a Chat Completions stream with an error.
pub fn chat_stream_error(kind: DenyKind, message: &str) -> Vec<u8> {
    format!(
        "data: {}\n\n",
        json!({"error": error_object(kind, message)})
    )
    .into_bytes()
}

/// The SSE event that ends a Responses stream with an error.
pub fn responses_stream_error(kind: DenyKind, message: &str) -> Vec<u8> {
    // The SDK raises only on a payload with an `error` object; the flat
    // fields keep the Responses event shape.
    let ev = json!({"type": "error", "code": kind.code(), "message": message, "param": null,
                    "error": error_object(kind, message)});
    format!("event: error\ndata: {ev}\n\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools() {
        let b = json!({"tools": [{"type": "function", "function": {"name": "a"}}, {"type": "web_search"}],
                       "functions": [{"name": "b"}]});
        let t = chat_tools(&b);
        let n: Vec<_> = t
            .iter()
            .map(|t| (t.name.as_str(), t.pointer.as_str()))
            .collect();
        assert_eq!(
            n,
            [
                ("a", "/tools/0"),
                ("web_search", "/tools/1"),
                ("b", "/functions/0")
            ]
        );
        let r = responses_tools(
            &json!({"tools": [{"type": "function", "name": "x"}, {"type": "file_search"}]}),
        );
        assert_eq!(r[0].name, "x");
        assert_eq!(r[1].name, "file_search");
    }

    #[test]
    fn error_shape() {
        let e = error(DenyKind::Forbidden, "no");
        assert_eq!(e.status, 403);
        let v: Value = serde_json::from_str(&e.body).expect("json");
        assert_eq!(v["error"]["type"], "permission_error");
        assert_eq!(v["error"]["code"], "cordon_policy_denied");
    }
}
