//! The provider-independent walk over a JSON body: every string worth
//! inspecting, tool calls in any provider's shape, usage in any provider's
//! names.

use serde_json::{Map, Value};

use super::{ToolCall, Usage};

/// Where a piece of text sits in the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartKind {
    /// System prompt or Responses-API `instructions`.
    System,
    /// A user turn.
    User,
    /// A model turn.
    Assistant,
    /// Arguments of a tool call.
    ToolCall,
    /// What a tool returned.
    ToolResult,
    /// An embedded document (data URL, base64 file or image).
    Document,
}

/// One string of the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// JSON pointer to the string.
    pub pointer: String,
    /// Its role in the exchange.
    pub kind: PartKind,
    /// The string (JSON escapes already decoded).
    pub text: String,
}

/// Keys whose values are identifiers or enums, not content.
const SKIP: &[&str] = &[
    "model",
    "role",
    "type",
    "id",
    "object",
    "tool_call_id",
    "tool_use_id",
    "toolUseId",
    "call_id",
    "finish_reason",
    "stop_reason",
    "stopReason",
    "finishReason",
    "media_type",
    "mime_type",
    "mimeType",
    "anthropic_version",
    "status",
    "service_tier",
    "signature",
    "encrypted_content",
    "thoughtSignature",
];

/// Shorter strings cannot hold anything a rule finds.
const MIN_LEN: usize = 3;

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Whether `obj` is a tool call in any provider's shape; its name and
/// arguments (as JSON text) if so.
pub fn as_tool_call(obj: &Map<String, Value>) -> Option<ToolCall> {
    let name_of = |o: &Map<String, Value>| o.get("name").and_then(Value::as_str).map(str::to_owned);
    let text_of = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => "{}".into(),
    };
    let ty = obj.get("type").and_then(Value::as_str);
    // OpenAI Chat: {"type":"function","function":{"name","arguments"}}.
    if let Some(Value::Object(f)) = obj.get("function") {
        if f.contains_key("arguments") {
            return Some(ToolCall {
                name: name_of(f)?,
                arguments: text_of(f.get("arguments")),
            });
        }
    }
    match ty {
        // OpenAI Responses.
        Some("function_call") => {
            return Some(ToolCall {
                name: name_of(obj)?,
                arguments: text_of(obj.get("arguments")),
            })
        }
        // Anthropic.
        Some("tool_use") | Some("server_tool_use") => {
            return Some(ToolCall {
                name: name_of(obj)?,
                arguments: text_of(obj.get("input")),
            })
        }
        _ => {}
    }
    // Gemini.
    if let Some(Value::Object(f)) = obj.get("functionCall") {
        return Some(ToolCall {
            name: name_of(f)?,
            arguments: text_of(f.get("args")),
        });
    }
    // Bedrock Converse.
    if let Some(Value::Object(f)) = obj.get("toolUse") {
        if f.contains_key("input") {
            return Some(ToolCall {
                name: name_of(f)?,
                arguments: text_of(f.get("input")),
            });
        }
    }
    None
}

fn is_tool_result(obj: &Map<String, Value>) -> bool {
    matches!(
        obj.get("type").and_then(Value::as_str),
        Some("tool_result") | Some("function_call_output")
    ) || obj.get("role").and_then(Value::as_str) == Some("tool")
        || obj.contains_key("functionResponse")
        || obj.contains_key("toolResult")
}

fn role_kind(role: &str) -> Option<PartKind> {
    match role {
        "user" => Some(PartKind::User),
        "assistant" | "model" => Some(PartKind::Assistant),
        "system" | "developer" => Some(PartKind::System),
        "tool" | "function" => Some(PartKind::ToolResult),
        _ => None,
    }
}

struct Walker {
    out: Vec<Part>,
}

impl Walker {
    fn value(&mut self, v: &Value, ptr: &mut String, key: &str, kind: PartKind) {
        match v {
            Value::String(s) if s.len() >= MIN_LEN => {
                let kind = if kind != PartKind::ToolCall
                    && (s.starts_with("data:")
                        || (s.len() > 256 && matches!(key, "data" | "bytes" | "file_data")))
                {
                    PartKind::Document
                } else {
                    kind
                };
                self.out.push(Part {
                    pointer: ptr.clone(),
                    kind,
                    text: s.clone(),
                });
            }
            Value::Array(a) => {
                for (i, item) in a.iter().enumerate() {
                    let len = ptr.len();
                    ptr.push('/');
                    ptr.push_str(&i.to_string());
                    self.value(item, ptr, key, kind);
                    ptr.truncate(len);
                }
            }
            Value::Object(o) => {
                let mut kind = o
                    .get("role")
                    .and_then(Value::as_str)
                    .and_then(role_kind)
                    .unwrap_or(kind);
                if is_tool_result(o) {
                    kind = PartKind::ToolResult;
                }
                let call = as_tool_call(o).is_some();
                for (k, item) in o {
                    if SKIP.contains(&k.as_str()) {
                        continue;
                    }
                    let child = if call
                        && matches!(
                            k.as_str(),
                            "function"
                                | "arguments"
                                | "input"
                                | "functionCall"
                                | "toolUse"
                                | "args"
                        ) {
                        PartKind::ToolCall
                    } else if ptr.is_empty()
                        && matches!(
                            k.as_str(),
                            "system" | "instructions" | "systemInstruction" | "system_instruction"
                        )
                    {
                        PartKind::System
                    } else {
                        kind
                    };
                    let len = ptr.len();
                    ptr.push('/');
                    ptr.push_str(&escape(k));
                    self.value(item, ptr, k, child);
                    ptr.truncate(len);
                }
            }
            _ => {}
        }
    }
}

/// Every string of `body` worth inspecting, with its pointer and kind.
pub fn parts(body: &Value) -> Vec<Part> {
    let mut w = Walker { out: vec![] };
    w.value(body, &mut String::new(), "", PartKind::User);
    w.out
}

/// Every tool call in `body`, in document order.
pub fn tool_calls(body: &Value, out: &mut Vec<ToolCall>) {
    match body {
        Value::Array(a) => a.iter().for_each(|v| tool_calls(v, out)),
        Value::Object(o) => {
            if let Some(c) = as_tool_call(o) {
                out.push(c);
                return;
            }
            o.values().for_each(|v| tool_calls(v, out));
        }
        _ => {}
    }
}

fn first_u64(o: &Map<String, Value>, keys: &[&str]) -> Option<u64> {
    keys.iter().find_map(|k| o.get(*k).and_then(Value::as_u64))
}

/// Token usage under any provider's field names (`usage`,
/// `usageMetadata`, Bedrock's `inputTokens`…), searched at the top level
/// and one level down (Responses streams nest it in `response`).
pub fn usage(body: &Value) -> Option<Usage> {
    let o = body.as_object()?;
    for key in ["usage", "usageMetadata", "amazon-bedrock-invocationMetrics"] {
        if let Some(Value::Object(u)) = o.get(key) {
            let input = first_u64(
                u,
                &[
                    "prompt_tokens",
                    "input_tokens",
                    "inputTokens",
                    "promptTokenCount",
                    "inputTokenCount",
                ],
            );
            let output = first_u64(
                u,
                &[
                    "completion_tokens",
                    "output_tokens",
                    "outputTokens",
                    "candidatesTokenCount",
                    "outputTokenCount",
                ],
            );
            if input.is_some() || output.is_some() {
                return Some(Usage {
                    input: input.unwrap_or(0),
                    output: output.unwrap_or(0),
                });
            }
        }
    }
    for key in ["response", "message", "metadata"] {
        if let Some(inner) = o.get(key) {
            if let Some(u) = usage(inner) {
                return Some(u);
            }
        }
    }
    None
}

/// Tool names a request forces (`tool_choice`, Gemini's
/// `allowedFunctionNames`, Bedrock's `toolChoice`).
pub fn forced_tools(body: &Value) -> Vec<String> {
    let mut out = vec![];
    let mut add = |v: Option<&Value>| {
        if let Some(v) = v {
            collect_names(v, &mut out);
        }
    };
    add(body.get("tool_choice"));
    add(body.pointer("/toolConfig/toolChoice"));
    add(body.pointer("/toolConfig/functionCallingConfig/allowedFunctionNames"));
    out
}

fn collect_names(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let Some(n) = o.get("name").and_then(Value::as_str) {
                out.push(n.to_owned());
            }
            o.values().for_each(|v| collect_names(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| match v {
            Value::String(s) => out.push(s.clone()),
            other => collect_names(other, out),
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_and_pointers() {
        let body = json!({
            "model": "gpt-4o",
            "instructions": "be terse",
            "messages": [
                {"role": "system", "content": "sys prompt"},
                {"role": "user", "content": [{"type": "text", "text": "hello there"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
                {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                    "function": {"name": "get_x", "arguments": "{\"q\":\"abc\"}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "result text"}
            ],
            "x/unknown": "also inspected"
        });
        let p = parts(&body);
        let find = |ptr: &str| p.iter().find(|x| x.pointer == ptr).map(|x| x.kind);
        assert_eq!(find("/instructions"), Some(PartKind::System));
        assert_eq!(find("/messages/0/content"), Some(PartKind::System));
        assert_eq!(find("/messages/1/content/0/text"), Some(PartKind::User));
        assert_eq!(
            find("/messages/1/content/1/image_url/url"),
            Some(PartKind::Document)
        );
        assert_eq!(
            find("/messages/2/tool_calls/0/function/arguments"),
            Some(PartKind::ToolCall)
        );
        assert_eq!(find("/messages/3/content"), Some(PartKind::ToolResult));
        assert_eq!(find("/x~1unknown"), Some(PartKind::User));
        assert_eq!(find("/model"), None);
        assert!(body.pointer("/x~1unknown").is_some());
    }

    #[test]
    fn tool_calls_in_every_shape() {
        let body = json!([
            {"type": "function", "function": {"name": "a", "arguments": "{}"}},
            {"type": "function_call", "name": "b", "arguments": "{\"x\":1}"},
            {"type": "tool_use", "name": "c", "input": {"x": 1}},
            {"functionCall": {"name": "d", "args": {"x": 1}}},
            {"toolUse": {"name": "e", "input": {}, "toolUseId": "t"}}
        ]);
        let mut out = vec![];
        tool_calls(&body, &mut out);
        let names: Vec<_> = out.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "d", "e"]);
        assert_eq!(out[2].arguments, "{\"x\":1}");
    }

    #[test]
    fn usage_names() {
        assert_eq!(
            usage(&json!({"usage": {"prompt_tokens": 3, "completion_tokens": 4}})),
            Some(Usage {
                input: 3,
                output: 4
            })
        );
        assert_eq!(
            usage(&json!({"usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 6}})),
            Some(Usage {
                input: 5,
                output: 6
            })
        );
        assert_eq!(
            usage(&json!({"response": {"usage": {"input_tokens": 1, "output_tokens": 2}}})),
            Some(Usage {
                input: 1,
                output: 2
            })
        );
        assert_eq!(
            usage(&json!({"usage": {"inputTokens": 7, "outputTokens": 8}})),
            Some(Usage {
                input: 7,
                output: 8
            })
        );
        assert_eq!(usage(&json!({"x": 1})), None);
    }

    #[test]
    fn forced() {
        let b = json!({"tool_choice": {"type": "function", "function": {"name": "zap"}}});
        assert_eq!(forced_tools(&b), ["zap"]);
        let b =
            json!({"toolConfig": {"functionCallingConfig": {"allowedFunctionNames": ["a", "b"]}}});
        assert_eq!(forced_tools(&b), ["a", "b"]);
        assert!(forced_tools(&json!({"tool_choice": "auto"})).is_empty());
    }
}
