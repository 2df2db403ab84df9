//! Responses in each provider's real wire format, whole and streamed.

use base64::Engine as _;
use serde_json::{json, Value};

use asc::stream::eventstream;

/// What the fake model answers.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Text.
    Text(String),
    /// A call to this tool with these arguments (JSON text).
    Tool(String, String),
}

/// Usage reported.
pub const OUTPUT_TOKENS: u64 = 7;

/// The API a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// OpenAI Chat Completions.
    Chat,
    /// OpenAI Responses.
    Responses,
    /// Anthropic Messages.
    Messages,
    /// Gemini.
    Gemini,
    /// Bedrock Converse.
    Converse,
    /// Bedrock InvokeModel (Anthropic body).
    Invoke,
}

fn pieces(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(6).map(|c| c.iter().collect()).collect()
}

/// A whole response body.
pub fn whole(api: Api, model: &str, reply: &Reply, input: u64) -> Value {
    let out = OUTPUT_TOKENS;
    match (api, reply) {
        (Api::Chat, r) => {
            let message = match r {
                Reply::Text(t) => json!({"role": "assistant", "content": t}),
                Reply::Tool(n, a) => json!({"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": n, "arguments": a}}]}),
            };
            let finish = if matches!(r, Reply::Tool(..)) {
                "tool_calls"
            } else {
                "stop"
            };
            json!({"id": "chatcmpl-fake", "object": "chat.completion", "created": 1, "model": model,
                   "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                   "usage": {"prompt_tokens": input, "completion_tokens": out, "total_tokens": input + out}})
        }
        (Api::Responses, r) => {
            let item = match r {
                Reply::Text(t) => {
                    json!({"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                                         "content": [{"type": "output_text", "text": t, "annotations": []}]})
                }
                Reply::Tool(n, a) => {
                    json!({"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": n,
                                            "arguments": a, "status": "completed"})
                }
            };
            json!({"id": "resp_fake", "object": "response", "created_at": 1, "model": model, "status": "completed",
                   "parallel_tool_calls": true, "tool_choice": "auto", "tools": [], "output": [item],
                   "usage": {"input_tokens": input, "output_tokens": out, "total_tokens": input + out,
                             "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                             "output_tokens_details": {"reasoning_tokens": 0}}})
        }
        (Api::Messages | Api::Invoke, r) => {
            let (block, stop) = match r {
                Reply::Text(t) => (json!({"type": "text", "text": t}), "end_turn"),
                Reply::Tool(n, a) => (
                    json!({"type": "tool_use", "id": "toolu_1", "name": n,
                           "input": serde_json::from_str::<Value>(a).unwrap_or(json!({}))}),
                    "tool_use",
                ),
            };
            json!({"id": "msg_fake", "type": "message", "role": "assistant", "model": model, "stop_reason": stop,
                   "stop_sequence": null, "content": [block], "usage": {"input_tokens": input, "output_tokens": out}})
        }
        (Api::Gemini, r) => {
            let part = match r {
                Reply::Text(t) => json!({"text": t}),
                Reply::Tool(n, a) => {
                    json!({"functionCall": {"name": n, "args": serde_json::from_str::<Value>(a).unwrap_or(json!({}))}})
                }
            };
            json!({"candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}],
                   "usageMetadata": {"promptTokenCount": input, "candidatesTokenCount": out, "totalTokenCount": input + out},
                   "modelVersion": model, "responseId": "r1"})
        }
        (Api::Converse, r) => {
            let (block, stop) = match r {
                Reply::Text(t) => (json!({"text": t}), "end_turn"),
                Reply::Tool(n, a) => (
                    json!({"toolUse": {"toolUseId": "tu_1", "name": n, "input": serde_json::from_str::<Value>(a).unwrap_or(json!({}))}}),
                    "tool_use",
                ),
            };
            json!({"output": {"message": {"role": "assistant", "content": [block]}}, "stopReason": stop,
                   "usage": {"inputTokens": input, "outputTokens": out, "totalTokens": input + out}, "metrics": {"latencyMs": 1}})
        }
    }
}

fn sse(event: Option<&str>, data: &Value) -> Vec<u8> {
    match event {
        Some(e) => format!("event: {e}\ndata: {data}\n\n").into_bytes(),
        None => format!("data: {data}\n\n").into_bytes(),
    }
}

fn anthropic_events(model: &str, reply: &Reply, input: u64) -> Vec<Value> {
    let mut ev = vec![
        json!({"type": "message_start", "message": {"id": "msg_fake", "type": "message", "role": "assistant",
        "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": input, "output_tokens": 1}}}),
    ];
    match reply {
        Reply::Text(t) => {
            ev.push(json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}));
            for p in pieces(t) {
                ev.push(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}));
            }
        }
        Reply::Tool(n, a) => {
            ev.push(json!({"type": "content_block_start", "index": 0,
                           "content_block": {"type": "tool_use", "id": "toolu_1", "name": n, "input": {}}}));
            for p in pieces(a) {
                ev.push(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": p}}));
            }
        }
    }
    let stop = if matches!(reply, Reply::Tool(..)) {
        "tool_use"
    } else {
        "end_turn"
    };
    ev.push(json!({"type": "content_block_stop", "index": 0}));
    ev.push(
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
                   "usage": {"output_tokens": OUTPUT_TOKENS}}),
    );
    ev.push(json!({"type": "message_stop"}));
    ev
}

/// A streamed response as a list of wire chunks, one per event.
pub fn streamed(api: Api, model: &str, reply: &Reply, input: u64) -> Vec<Vec<u8>> {
    let out = OUTPUT_TOKENS;
    match api {
        Api::Chat => {
            let chunk = |delta: Value, finish: Value| {
                sse(
                    None,
                    &json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": model,
                                  "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}),
                )
            };
            let mut v = vec![chunk(
                json!({"role": "assistant", "content": ""}),
                Value::Null,
            )];
            match reply {
                Reply::Text(t) => pieces(t)
                    .into_iter()
                    .for_each(|p| v.push(chunk(json!({"content": p}), Value::Null))),
                Reply::Tool(n, a) => {
                    v.push(chunk(json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                                        "function": {"name": n, "arguments": ""}}]}), Value::Null));
                    for p in pieces(a) {
                        v.push(chunk(
                            json!({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}),
                            Value::Null,
                        ));
                    }
                }
            }
            let finish = if matches!(reply, Reply::Tool(..)) {
                "tool_calls"
            } else {
                "stop"
            };
            v.push(chunk(json!({}), json!(finish)));
            v.push(sse(None, &json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": model,
                "choices": [], "usage": {"prompt_tokens": input, "completion_tokens": out, "total_tokens": input + out}})));
            v.push(b"data: [DONE]\n\n".to_vec());
            v
        }
        Api::Responses => {
            let mut seq = 0;
            let mut ev = |e: &str, mut d: Value| {
                d["type"] = json!(e);
                d["sequence_number"] = json!(seq);
                seq += 1;
                sse(Some(e), &d)
            };
            let mut v = vec![ev(
                "response.created",
                json!({"response": {"id": "resp_fake", "object": "response", "created_at": 1,
                "model": model, "status": "in_progress", "output": [], "parallel_tool_calls": true, "tool_choice": "auto", "tools": []}}),
            )];
            match reply {
                Reply::Text(t) => {
                    v.push(ev(
                        "response.output_item.added",
                        json!({"output_index": 0, "item": {"type": "message", "id": "msg_1",
                        "role": "assistant", "status": "in_progress", "content": []}}),
                    ));
                    v.push(ev(
                        "response.content_part.added",
                        json!({"output_index": 0, "item_id": "msg_1", "content_index": 0,
                        "part": {"type": "output_text", "text": "", "annotations": []}}),
                    ));
                    for p in pieces(t) {
                        v.push(ev("response.output_text.delta", json!({"output_index": 0, "item_id": "msg_1", "content_index": 0, "delta": p})));
                    }
                }
                Reply::Tool(n, a) => {
                    v.push(ev(
                        "response.output_item.added",
                        json!({"output_index": 0, "item": {"type": "function_call", "id": "fc_1",
                        "call_id": "call_1", "name": n, "arguments": "", "status": "in_progress"}}),
                    ));
                    for p in pieces(a) {
                        v.push(ev(
                            "response.function_call_arguments.delta",
                            json!({"output_index": 0, "item_id": "fc_1", "delta": p}),
                        ));
                    }
                    v.push(ev(
                        "response.output_item.done",
                        json!({"output_index": 0, "item": {"type": "function_call", "id": "fc_1",
                        "call_id": "call_1", "name": n, "arguments": a, "status": "completed"}}),
                    ));
                }
            }
            let done = whole(Api::Responses, model, reply, input);
            v.push(ev("response.completed", json!({"response": done})));
            v
        }
        Api::Messages => anthropic_events(model, reply, input)
            .iter()
            .map(|e| sse(e["type"].as_str(), e))
            .collect(),
        Api::Gemini => {
            let mut v = vec![];
            match reply {
                Reply::Text(t) => {
                    for p in pieces(t) {
                        v.push(json!({"candidates": [{"content": {"role": "model", "parts": [{"text": p}]}, "index": 0}]}));
                    }
                }
                Reply::Tool(..) => v.push(whole(Api::Gemini, model, reply, input)),
            }
            v.push(json!({"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]}, "finishReason": "STOP", "index": 0}],
                          "usageMetadata": {"promptTokenCount": input, "candidatesTokenCount": out, "totalTokenCount": input + out}}));
            v.iter()
                .map(|c| format!("data: {c}\r\n\r\n").into_bytes())
                .collect()
        }
        Api::Converse => {
            let mut v = vec![eventstream::event(
                "messageStart",
                json!({"role": "assistant"}).to_string().as_bytes(),
            )];
            match reply {
                Reply::Text(t) => {
                    for p in pieces(t) {
                        v.push(eventstream::event(
                            "contentBlockDelta",
                            json!({"contentBlockIndex": 0, "delta": {"text": p}})
                                .to_string()
                                .as_bytes(),
                        ));
                    }
                }
                Reply::Tool(n, a) => {
                    v.push(eventstream::event("contentBlockStart",
                        json!({"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "tu_1", "name": n}}}).to_string().as_bytes()));
                    for p in pieces(a) {
                        v.push(eventstream::event(
                            "contentBlockDelta",
                            json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": p}}})
                                .to_string()
                                .as_bytes(),
                        ));
                    }
                }
            }
            v.push(eventstream::event(
                "contentBlockStop",
                json!({"contentBlockIndex": 0}).to_string().as_bytes(),
            ));
            let stop = if matches!(reply, Reply::Tool(..)) {
                "tool_use"
            } else {
                "end_turn"
            };
            v.push(eventstream::event(
                "messageStop",
                json!({"stopReason": stop}).to_string().as_bytes(),
            ));
            v.push(eventstream::event(
                "metadata",
                json!({"usage": {"inputTokens": input, "outputTokens": out,
                "totalTokens": input + out}, "metrics": {"latencyMs": 1}})
                .to_string()
                .as_bytes(),
            ));
            v
        }
        Api::Invoke => anthropic_events(model, reply, input)
            .iter()
            .map(|e| {
                let b64 = base64::engine::general_purpose::STANDARD.encode(e.to_string());
                eventstream::event("chunk", json!({"bytes": b64}).to_string().as_bytes())
            })
            .collect(),
    }
}
