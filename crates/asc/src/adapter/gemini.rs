//! Gemini generateContent and streamGenerateContent.

use serde_json::{json, Value};

use super::error::{DenyKind, ErrorResponse};
use super::ToolDef;

/// `tools[].functionDeclarations[].name` (also snake case); other tool
/// kinds (`googleSearch`, `codeExecution`…) by their key.
pub fn tools(body: &Value) -> Vec<ToolDef> {
    let mut out = vec![];
    let Some(Value::Array(tools)) = body.get("tools") else {
        return out;
    };
    for (i, t) in tools.iter().enumerate() {
        let Some(o) = t.as_object() else { continue };
        for (key, v) in o {
            match (key.as_str(), v) {
                ("functionDeclarations" | "function_declarations", Value::Array(decls)) => {
                    for (j, d) in decls.iter().enumerate() {
                        out.push(ToolDef {
                            name: d
                                .get("name")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned(),
                            pointer: format!("/tools/{i}/{key}/{j}"),
                        });
                    }
                }
                _ => out.push(ToolDef {
                    name: key.clone(),
                    pointer: format!("/tools/{i}"),
                }),
            }
        }
    }
    out
}

fn status(kind: DenyKind) -> &'static str {
    match kind {
        DenyKind::BadRequest | DenyKind::TooLarge => "INVALID_ARGUMENT",
        DenyKind::Unauthenticated => "UNAUTHENTICATED",
        DenyKind::Forbidden => "PERMISSION_DENIED",
        DenyKind::NotFound => "NOT_FOUND",
        DenyKind::Budget => "RESOURCE_EXHAUSTED",
        DenyKind::Upstream => "UNAVAILABLE",
        DenyKind::Timeout => "DEADLINE_EXCEEDED",
    }
}

fn body(kind: DenyKind, message: &str) -> Value {
    json!({"error": {"code": kind.status(), "message": message, "status": status(kind)}})
}

/// The error body Google APIs send.
pub fn error(kind: DenyKind, message: &str) -> ErrorResponse {
    ErrorResponse {
        status: kind.status(),
        headers: vec![],
        body: body(kind, message).to_string(),
    }
}

/// The SSE event that ends a stream with an error.
pub fn stream_error(kind: DenyKind, message: &str) -> Vec<u8> {
    format!("data: {}\r\n\r\n", body(kind, message)).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations_and_builtins() {
        let b = json!({"tools": [{"functionDeclarations": [{"name": "a"}, {"name": "b"}]}, {"googleSearch": {}}]});
        let t = tools(&b);
        let n: Vec<_> = t
            .iter()
            .map(|t| (t.name.as_str(), t.pointer.as_str()))
            .collect();
        assert_eq!(
            n,
            [
                ("a", "/tools/0/functionDeclarations/0"),
                ("b", "/tools/0/functionDeclarations/1"),
                ("googleSearch", "/tools/1")
            ]
        );
    }
}
