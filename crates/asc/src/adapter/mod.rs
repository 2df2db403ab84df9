//! Provider adapters: one normalized view of a request or response of any
//! supported API, and edits written back into the original JSON.
//!
//! The view is built by walking the whole JSON document, so every string is
//! inspected, also in fields no adapter knows (fail closed); the adapters
//! add what only they know: where tool definitions are, which operation a
//! path is, and how each provider shapes its errors.

pub mod anthropic;
pub mod bedrock;
pub mod error;
pub mod gemini;
pub mod openai;
pub mod route;
pub mod walk;

use serde_json::Value;

pub use route::{Operation, Route};
pub use walk::{Part, PartKind};

/// A tool definition offered to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolDef {
    /// The tool's name (for built-in tools without one, their `type`).
    pub name: String,
    /// JSON pointer of the definition's object (an array element).
    pub pointer: String,
}

/// A tool call made by the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    /// The tool's name.
    pub name: String,
    /// The arguments as JSON text.
    pub arguments: String,
}

/// Token usage reported by the provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    /// Prompt tokens.
    pub input: u64,
    /// Completion tokens.
    pub output: u64,
}

impl Usage {
    /// Both together.
    pub fn total(&self) -> u64 {
        self.input.saturating_add(self.output)
    }
}

/// The normalized view of a request.
#[derive(Debug, Clone)]
pub struct RequestView {
    /// The model asked for.
    pub model: Option<String>,
    /// Whether the response will be streamed.
    pub stream: bool,
    /// Every text-bearing string with its role.
    pub parts: Vec<Part>,
    /// The tools offered to the model.
    pub tools: Vec<ToolDef>,
    /// Tool names the request forces or restricts the model to.
    pub forced_tools: Vec<String>,
}

/// The normalized view of a (non-streamed) response.
#[derive(Debug, Clone, Default)]
pub struct ResponseView {
    /// Every text-bearing string.
    pub parts: Vec<Part>,
    /// Tool calls the model made.
    pub tool_calls: Vec<ToolCall>,
    /// Token usage, if reported.
    pub usage: Option<Usage>,
}

/// Builds the view of a request body for `route`.
pub fn request_view(route: &Route, body: &Value) -> RequestView {
    let dialect = route.operation.dialect();
    let model = route
        .model
        .clone()
        .or_else(|| body.get("model").and_then(Value::as_str).map(str::to_owned));
    let stream = route.operation.path_streams()
        || body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    RequestView {
        model,
        stream,
        parts: walk::parts(body),
        tools: match dialect {
            Dialect::OpenAiChat => openai::chat_tools(body),
            Dialect::OpenAiResponses => openai::responses_tools(body),
            Dialect::Anthropic => anthropic::tools(body),
            Dialect::Gemini => gemini::tools(body),
            Dialect::BedrockConverse => bedrock::tools(body),
        },
        forced_tools: walk::forced_tools(body),
    }
}

/// Builds the view of a response body.
pub fn response_view(body: &Value) -> ResponseView {
    let mut calls = vec![];
    walk::tool_calls(body, &mut calls);
    ResponseView {
        parts: walk::parts(body),
        tool_calls: calls,
        usage: walk::usage(body),
    }
}

/// The JSON dialect of a body (InvokeModel carries a model-native body:
/// Claude models on Bedrock speak Anthropic's Messages format).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// OpenAI Chat Completions.
    OpenAiChat,
    /// OpenAI Responses.
    OpenAiResponses,
    /// Anthropic Messages (also Bedrock InvokeModel).
    Anthropic,
    /// Gemini generateContent.
    Gemini,
    /// Bedrock Converse.
    BedrockConverse,
}

/// Replaces the string at `pointer` with `text`. Returns false when the
/// pointer no longer names a string.
pub fn set_string(body: &mut Value, pointer: &str, text: String) -> bool {
    match body.pointer_mut(pointer) {
        Some(v @ Value::String(_)) => {
            *v = Value::String(text);
            true
        }
        _ => false,
    }
}

/// Removes the array elements at `pointers` (each `…/array/index`); the
/// rest of the document, unknown fields included, is untouched.
pub fn remove_elements(body: &mut Value, pointers: &[String]) {
    let mut split: Vec<(&str, usize)> = pointers
        .iter()
        .filter_map(|p| {
            let (parent, idx) = p.rsplit_once('/')?;
            Some((parent, idx.parse().ok()?))
        })
        .collect();
    // Highest index first so earlier removals do not shift later ones.
    split.sort_by_key(|s| std::cmp::Reverse(s.1));
    for (parent, idx) in split {
        if let Some(Value::Array(a)) = body.pointer_mut(parent) {
            if idx < a.len() {
                a.remove(idx);
            }
        }
    }
}

/// Tool definitions: the elements of the array at `array`, named by `name`.
pub(crate) fn named_tools(
    body: &Value,
    array: &str,
    name: impl Fn(&Value) -> Option<String>,
) -> Vec<ToolDef> {
    let Some(Value::Array(a)) = body.pointer(array) else {
        return vec![];
    };
    a.iter()
        .enumerate()
        .map(|(i, t)| ToolDef {
            name: name(t).unwrap_or_default(),
            pointer: format!("{array}/{i}"),
        })
        .collect()
}

/// A denial in `provider`'s error shape.
pub fn error_for(
    provider: crate::provider::Provider,
    kind: error::DenyKind,
    message: &str,
) -> error::ErrorResponse {
    use crate::provider::Provider;
    match provider {
        Provider::Openai => openai::error(kind, message),
        Provider::Anthropic => anthropic::error(kind, message),
        Provider::Gemini => gemini::error(kind, message),
        Provider::Bedrock => bedrock::error(kind, message),
    }
}

/// The event that ends a stream of `op` with an error, in its framing.
pub fn stream_error(op: Operation, kind: error::DenyKind, message: &str) -> Vec<u8> {
    match op {
        Operation::OpenAiChat => openai::chat_stream_error(kind, message),
        Operation::OpenAiResponses => openai::responses_stream_error(kind, message),
        Operation::AnthropicMessages => anthropic::stream_error(kind, message),
        Operation::GeminiGenerate | Operation::GeminiStream => gemini::stream_error(kind, message),
        Operation::BedrockConverse
        | Operation::BedrockConverseStream
        | Operation::BedrockInvoke
        | Operation::BedrockInvokeStream => {
            let ty = match kind {
                error::DenyKind::Budget => "throttlingException",
                error::DenyKind::Upstream | error::DenyKind::Timeout => {
                    "serviceUnavailableException"
                }
                _ => "validationException",
            };
            crate::stream::eventstream::exception(ty, message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn remove_keeps_unknown_fields() {
        let mut v =
            json!({"tools": [{"name": "a"}, {"name": "b"}, {"name": "c"}], "x_unknown": {"k": 1}});
        remove_elements(&mut v, &["/tools/0".into(), "/tools/2".into()]);
        assert_eq!(v, json!({"tools": [{"name": "b"}], "x_unknown": {"k": 1}}));
    }

    #[test]
    fn set_string_only_replaces_strings() {
        let mut v = json!({"a": ["x", 1]});
        assert!(set_string(&mut v, "/a/0", "y".into()));
        assert!(!set_string(&mut v, "/a/1", "y".into()));
        assert!(!set_string(&mut v, "/b", "y".into()));
        assert_eq!(v, json!({"a": ["y", 1]}));
    }
}
