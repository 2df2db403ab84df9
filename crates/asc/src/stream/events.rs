//! What one streamed event means, per provider: text deltas, tool-call
//! pieces, usage, the end.

use base64::Engine as _;
use serde_json::Value;

use crate::adapter::{walk, Operation, ToolCall, Usage};

/// A piece of a tool call, keyed by the provider's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolPiece {
    /// A call started.
    Start {
        /// Block or call index.
        key: String,
        /// Tool name.
        name: String,
    },
    /// More argument text.
    Args {
        /// Block or call index.
        key: String,
        /// JSON text fragment.
        delta: String,
    },
    /// The call is complete.
    End {
        /// Block or call index.
        key: String,
    },
    /// All open calls are complete (end of a choice).
    EndAll,
    /// A whole call in one event (Gemini, Responses `output_item.done`).
    Whole {
        /// Replaces a started call with this key, if any.
        key: Option<String>,
        /// The call.
        call: ToolCall,
    },
}

/// The meaning of one event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meaning {
    /// Model text it adds.
    pub text: String,
    /// Tool-call pieces.
    pub tools: Vec<ToolPiece>,
    /// Usage it reports.
    pub usage: Option<Usage>,
}

fn s(v: &Value, p: &str) -> Option<String> {
    v.pointer(p).and_then(Value::as_str).map(str::to_owned)
}

fn key_of(v: &Value, p: &str) -> String {
    v.pointer(p).map(|k| k.to_string()).unwrap_or_default()
}

fn openai_chat(v: &Value, m: &mut Meaning) {
    for c in v
        .get("choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(t) = s(c, "/delta/content") {
            m.text.push_str(&t);
        }
        for tc in c
            .pointer("/delta/tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = format!("{}:{}", key_of(c, "/index"), key_of(tc, "/index"));
            if let Some(name) = s(tc, "/function/name") {
                m.tools.push(ToolPiece::Start {
                    key: key.clone(),
                    name,
                });
            }
            if let Some(delta) = s(tc, "/function/arguments") {
                m.tools.push(ToolPiece::Args { key, delta });
            }
        }
        if c.get("finish_reason").is_some_and(|f| !f.is_null()) {
            m.tools.push(ToolPiece::EndAll);
        }
    }
}

fn openai_responses(v: &Value, m: &mut Meaning) {
    let key = key_of(v, "/output_index");
    match v.get("type").and_then(Value::as_str).unwrap_or("") {
        "response.output_text.delta" | "response.refusal.delta" => {
            m.text.push_str(&s(v, "/delta").unwrap_or_default());
        }
        "response.output_item.added" if s(v, "/item/type").as_deref() == Some("function_call") => {
            m.tools.push(ToolPiece::Start {
                key,
                name: s(v, "/item/name").unwrap_or_default(),
            });
        }
        "response.function_call_arguments.delta" => m.tools.push(ToolPiece::Args {
            key,
            delta: s(v, "/delta").unwrap_or_default(),
        }),
        "response.output_item.done" if s(v, "/item/type").as_deref() == Some("function_call") => {
            m.tools.push(ToolPiece::Whole {
                key: Some(key),
                call: ToolCall {
                    name: s(v, "/item/name").unwrap_or_default(),
                    arguments: s(v, "/item/arguments").unwrap_or_default(),
                },
            });
        }
        _ => {}
    }
    m.usage = walk::usage(v);
}

fn anthropic(v: &Value, m: &mut Meaning) {
    let key = key_of(v, "/index");
    match v.get("type").and_then(Value::as_str).unwrap_or("") {
        "content_block_start" => {
            let block = v.get("content_block").cloned().unwrap_or(Value::Null);
            match block.get("type").and_then(Value::as_str) {
                Some("tool_use") | Some("server_tool_use") => m.tools.push(ToolPiece::Start {
                    key,
                    name: s(&block, "/name").unwrap_or_default(),
                }),
                Some("text") => m.text.push_str(&s(&block, "/text").unwrap_or_default()),
                _ => {}
            }
        }
        "content_block_delta" => match s(v, "/delta/type").as_deref() {
            Some("text_delta") => m.text.push_str(&s(v, "/delta/text").unwrap_or_default()),
            Some("input_json_delta") => m.tools.push(ToolPiece::Args {
                key,
                delta: s(v, "/delta/partial_json").unwrap_or_default(),
            }),
            Some("thinking_delta") => m
                .text
                .push_str(&s(v, "/delta/thinking").unwrap_or_default()),
            _ => {}
        },
        "content_block_stop" => m.tools.push(ToolPiece::End { key }),
        "message_stop" => m.tools.push(ToolPiece::EndAll),
        _ => {}
    }
    m.usage = walk::usage(v);
}

fn gemini(v: &Value, m: &mut Meaning) {
    for c in v
        .get("candidates")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for p in c
            .pointer("/content/parts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(t) = s(p, "/text") {
                m.text.push_str(&t);
            }
            if let Some(o) = p.as_object() {
                if let Some(call) = walk::as_tool_call(o) {
                    m.tools.push(ToolPiece::Whole { key: None, call });
                }
            }
        }
    }
    m.usage = walk::usage(v);
}

fn bedrock_converse(event_type: &str, v: &Value, m: &mut Meaning) {
    let key = key_of(v, "/contentBlockIndex");
    match event_type {
        "contentBlockStart" => {
            if let Some(name) = s(v, "/start/toolUse/name") {
                m.tools.push(ToolPiece::Start { key, name });
            }
        }
        "contentBlockDelta" => {
            if let Some(t) = s(v, "/delta/text") {
                m.text.push_str(&t);
            }
            if let Some(delta) = s(v, "/delta/toolUse/input") {
                m.tools.push(ToolPiece::Args { key, delta });
            }
        }
        "contentBlockStop" => m.tools.push(ToolPiece::End { key }),
        "messageStop" => m.tools.push(ToolPiece::EndAll),
        _ => {}
    }
    m.usage = walk::usage(v);
}

/// Why an event cannot be understood (the stream is then ended: an event
/// the guard cannot read is an event it cannot vouch for).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The data is not JSON.
    #[error("streamed event is not JSON")]
    NotJson,
    /// A Bedrock chunk's `bytes` is not base64 of JSON.
    #[error("streamed chunk is not base64 JSON")]
    BadChunk,
}

/// The meaning of an SSE event's data (`[DONE]` ends OpenAI streams).
///
/// # Errors
/// [`EventError::NotJson`].
pub fn sse_meaning(op: Operation, data: &str) -> Result<Meaning, EventError> {
    let mut m = Meaning::default();
    let data = data.trim();
    if data.is_empty() {
        return Ok(m);
    }
    if data == "[DONE]" {
        m.tools.push(ToolPiece::EndAll);
        return Ok(m);
    }
    let v: Value = serde_json::from_str(data).map_err(|_| EventError::NotJson)?;
    match op {
        Operation::OpenAiChat => openai_chat(&v, &mut m),
        Operation::OpenAiResponses => openai_responses(&v, &mut m),
        Operation::GeminiStream | Operation::GeminiGenerate => gemini(&v, &mut m),
        _ => anthropic(&v, &mut m),
    }
    if op == Operation::OpenAiChat {
        m.usage = walk::usage(&v);
    }
    Ok(m)
}

/// The meaning of a Bedrock event-stream frame.
///
/// # Errors
/// [`EventError`] when its payload is unreadable.
pub fn frame_meaning(
    op: Operation,
    event_type: &str,
    payload: &[u8],
) -> Result<Meaning, EventError> {
    let mut m = Meaning::default();
    let v: Value = serde_json::from_slice(payload).map_err(|_| EventError::NotJson)?;
    if op == Operation::BedrockInvokeStream {
        if event_type == "chunk" {
            let b64 = v
                .get("bytes")
                .and_then(Value::as_str)
                .ok_or(EventError::BadChunk)?;
            let inner = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| EventError::BadChunk)?;
            let inner: Value = serde_json::from_slice(&inner).map_err(|_| EventError::BadChunk)?;
            anthropic(&inner, &mut m);
        }
    } else {
        bedrock_converse(event_type, &v, &mut m);
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_chat_pieces() {
        let m = sse_meaning(
            Operation::OpenAiChat,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","function":{"name":"f","arguments":""}}]}}]}"#,
        )
        .expect("json");
        assert_eq!(
            m.tools[0],
            ToolPiece::Start {
                key: "0:0".into(),
                name: "f".into()
            }
        );
        let m = sse_meaning(
            Operation::OpenAiChat,
            r#"{"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}"#,
        )
        .expect("json");
        assert_eq!(m.text, "hi");
        assert_eq!(m.tools, [ToolPiece::EndAll]);
        assert!(sse_meaning(Operation::OpenAiChat, "{bad").is_err());
    }

    #[test]
    fn anthropic_pieces() {
        let m = sse_meaning(
            Operation::AnthropicMessages,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}}"#,
        )
        .expect("json");
        assert_eq!(
            m.tools,
            [ToolPiece::Args {
                key: "1".into(),
                delta: "{\"a\":".into()
            }]
        );
        let m = sse_meaning(
            Operation::AnthropicMessages,
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9}}"#,
        )
        .expect("json");
        assert_eq!(
            m.usage,
            Some(Usage {
                input: 0,
                output: 9
            })
        );
    }

    #[test]
    fn bedrock_chunk() {
        let inner =
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"yo"}}"#;
        let b64 = base64::engine::general_purpose::STANDARD.encode(inner);
        let payload = serde_json::json!({ "bytes": b64 }).to_string();
        let m = frame_meaning(Operation::BedrockInvokeStream, "chunk", payload.as_bytes())
            .expect("chunk");
        assert_eq!(m.text, "yo");
        assert!(frame_meaning(
            Operation::BedrockInvokeStream,
            "chunk",
            b"{\"bytes\":\"!!\"}"
        )
        .is_err());
    }
}
