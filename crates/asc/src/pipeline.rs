//! The policy pipeline, without I/O: a request body goes in, a decision
//! comes out (forward these bytes, or deny with this reason); the same for
//! a whole (non-streamed) response.

use bytes::Bytes;
use dlp::Finding;
use serde::Serialize;
use serde_json::Value;

use crate::adapter::error::DenyKind;
use crate::adapter::{self, remove_elements, set_string, Part, PartKind, Route, ToolCall, Usage};
use crate::inspector::Inspector;
use crate::policy::{DlpAction, Policy, ToolVerdict};

/// A finding with where it was.
#[derive(Debug, Clone, Serialize)]
pub struct Located {
    /// JSON pointer of the string.
    pub pointer: String,
    /// Its role.
    pub part: PartKind,
    /// The finding (span within the string; excerpt redacted).
    pub finding: Finding,
}

/// A refusal.
#[derive(Debug, Clone)]
pub struct Denial {
    /// Its class.
    pub kind: DenyKind,
    /// What the agent is told (never the matched text).
    pub reason: String,
    /// The findings behind it.
    pub findings: Vec<Located>,
}

impl Denial {
    fn new(kind: DenyKind, reason: impl Into<String>) -> Self {
        Self {
            kind,
            reason: reason.into(),
            findings: vec![],
        }
    }
}

/// A request that may go on.
#[derive(Debug, Clone)]
pub struct Passed {
    /// The body to forward (the original bytes when nothing changed).
    pub body: Bytes,
    /// The model.
    pub model: String,
    /// Whether the response streams.
    pub stream: bool,
    /// Tools removed from the request.
    pub removed_tools: Vec<String>,
    /// Findings that were redacted.
    pub redacted: Vec<Located>,
}

fn scan(inspector: &Inspector, parts: &[Part]) -> Vec<Located> {
    let texts: Vec<&[u8]> = parts.iter().map(|p| p.text.as_bytes()).collect();
    let found = inspector.scan_parts(&texts);
    parts
        .iter()
        .zip(found)
        .flat_map(|(p, fs)| {
            fs.into_iter().map(|f| Located {
                pointer: p.pointer.clone(),
                part: p.kind,
                finding: f,
            })
        })
        .collect()
}

fn rules_of(found: &[Located]) -> String {
    let mut rules: Vec<&str> = found.iter().map(|f| f.finding.rule.as_str()).collect();
    rules.sort_unstable();
    rules.dedup();
    rules.join(", ")
}

/// Applies DLP to `parts` of `body`: block, or redact in place.
fn apply_dlp(
    policy: &Policy,
    inspector: &Inspector,
    body: &mut Value,
    parts: &[Part],
    what: &str,
) -> Result<Vec<Located>, Denial> {
    let found = scan(inspector, parts);
    if found.is_empty() {
        return Ok(found);
    }
    // Encoded content cannot be rewritten without breaking what encloses
    // it, and a redact policy must not let it through: those block.
    let encoded = found.iter().any(|f| !f.finding.decoded.is_empty());
    if policy.dlp.action == DlpAction::Block || encoded {
        return Err(Denial {
            kind: DenyKind::Forbidden,
            reason: format!(
                "blocked by policy: {what} matched DLP rules {}",
                rules_of(&found)
            ),
            findings: found,
        });
    }
    for p in parts {
        let mine: Vec<Finding> = found
            .iter()
            .filter(|f| f.pointer == p.pointer)
            .map(|f| f.finding.clone())
            .collect();
        if !mine.is_empty() {
            let red = dlp::redact(p.text.as_bytes(), &mine);
            set_string(body, &p.pointer, String::from_utf8_lossy(&red).into_owned());
        }
    }
    Ok(found)
}

/// Drops arrays emptied by tool removal, and the tool choice with them,
/// so the upstream never sees `tools: []`.
fn prune_empty_tools(body: &mut Value) {
    if let Some(Value::Array(tools)) = body.get_mut("tools") {
        tools.retain(|t| {
            let decls = t
                .get("functionDeclarations")
                .or_else(|| t.get("function_declarations"));
            !matches!(decls, Some(Value::Array(d)) if d.is_empty())
        });
    }
    let Some(obj) = body.as_object_mut() else {
        return;
    };
    if matches!(obj.get("tools"), Some(Value::Array(t)) if t.is_empty()) {
        obj.remove("tools");
        obj.remove("tool_choice");
    }
    if matches!(obj.get("functions"), Some(Value::Array(t)) if t.is_empty()) {
        obj.remove("functions");
        obj.remove("function_call");
    }
    if let Some(Value::Object(tc)) = obj.get_mut("toolConfig") {
        if matches!(tc.get("tools"), Some(Value::Array(t)) if t.is_empty()) {
            obj.remove("toolConfig");
        }
    }
}

/// Inspects a request body.
///
/// # Errors
/// A [`Denial`] saying why it may not go on.
pub fn inspect_request(
    policy: &Policy,
    inspector: &Inspector,
    route: &Route,
    raw: &Bytes,
) -> Result<Passed, Denial> {
    let mut body: Value = serde_json::from_slice(raw).map_err(|e| {
        Denial::new(
            DenyKind::BadRequest,
            format!("request body is not valid JSON: {e}"),
        )
    })?;
    if !body.is_object() {
        return Err(Denial::new(
            DenyKind::BadRequest,
            "request body must be a JSON object",
        ));
    }
    let view = adapter::request_view(route, &body);
    let model = view
        .model
        .clone()
        .ok_or_else(|| Denial::new(DenyKind::BadRequest, "request names no model"))?;
    if !policy.model_allowed(&model) {
        return Err(Denial::new(
            DenyKind::Forbidden,
            format!("blocked by policy: model `{model}` is not allowed in this enclave"),
        ));
    }
    for forced in &view.forced_tools {
        if policy.tools.verdict(forced) == ToolVerdict::Hidden {
            return Err(Denial::new(
                DenyKind::Forbidden,
                format!("blocked by policy: tool `{forced}` is not allowed in this enclave"),
            ));
        }
    }
    let hidden: Vec<&adapter::ToolDef> = view
        .tools
        .iter()
        .filter(|t| policy.tools.verdict(&t.name) == ToolVerdict::Hidden)
        .collect();
    let removed_tools: Vec<String> = hidden.iter().map(|t| t.name.clone()).collect();
    let mut changed = false;
    if !hidden.is_empty() {
        let pointers: Vec<String> = hidden.iter().map(|t| t.pointer.clone()).collect();
        remove_elements(&mut body, &pointers);
        prune_empty_tools(&mut body);
        changed = true;
    }
    // Parts are taken after tool removal: a removed definition is not
    // forwarded, so it need not be inspected.
    let parts = if changed {
        adapter::walk::parts(&body)
    } else {
        view.parts
    };
    let redacted = apply_dlp(policy, inspector, &mut body, &parts, "the request")?;
    changed |= !redacted.is_empty();
    let out = if changed {
        Bytes::from(
            serde_json::to_vec(&body)
                .map_err(|e| Denial::new(DenyKind::BadRequest, e.to_string()))?,
        )
    } else {
        raw.clone()
    };
    Ok(Passed {
        body: out,
        model,
        stream: view.stream,
        removed_tools,
        redacted,
    })
}

/// A response that may be delivered.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// The body (original bytes unless redacted).
    pub body: Bytes,
    /// Tool calls in it.
    pub tool_calls: Vec<ToolCall>,
    /// Calls that need approval before delivery.
    pub needs_approval: Vec<ToolCall>,
    /// Usage.
    pub usage: Option<Usage>,
    /// Findings redacted.
    pub redacted: Vec<Located>,
}

/// Inspects a whole response body.
///
/// # Errors
/// A [`Denial`] when it may not reach the agent.
pub fn inspect_response(
    policy: &Policy,
    inspector: &Inspector,
    raw: &Bytes,
) -> Result<Delivered, Denial> {
    let mut body: Value = serde_json::from_slice(raw)
        .map_err(|_| Denial::new(DenyKind::Upstream, "upstream response is not valid JSON"))?;
    let view = adapter::response_view(&body);
    let mut needs_approval = vec![];
    for call in &view.tool_calls {
        match policy.tools.verdict(&call.name) {
            ToolVerdict::Hidden => {
                return Err(Denial::new(
                    DenyKind::Forbidden,
                    format!(
                    "blocked by policy: the model called tool `{}`, which policy does not allow",
                    call.name
                ),
                ))
            }
            ToolVerdict::NeedsApproval => needs_approval.push(call.clone()),
            ToolVerdict::Allowed => {}
        }
    }
    let redacted = apply_dlp(policy, inspector, &mut body, &view.parts, "the response")?;
    let out = if redacted.is_empty() {
        raw.clone()
    } else {
        Bytes::from(
            serde_json::to_vec(&body)
                .map_err(|e| Denial::new(DenyKind::Upstream, e.to_string()))?,
        )
    };
    Ok(Delivered {
        body: out,
        tool_calls: view.tool_calls,
        needs_approval,
        usage: view.usage,
        redacted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn setup(policy: &str) -> (Policy, Inspector) {
        let p = Policy::parse(policy).expect("policy");
        let i = Inspector::new(&p.dlp).expect("inspector");
        (p, i)
    }

    const BASE: &str = "[models]\nallow = [\"gpt-4o*\"]\n[tools]\ndeny = [\"delete_*\"]\napprove = [\"deploy_*\"]\n";

    fn chat(body: Value) -> Bytes {
        Bytes::from(serde_json::to_vec(&body).expect("json"))
    }

    #[test]
    fn model_and_tools() {
        let (p, i) = setup(BASE);
        let route = Route::reverse("/openai/v1/chat/completions").expect("route");
        let d = inspect_request(
            &p,
            &i,
            &route,
            &chat(json!({"model": "gpt-3.5", "messages": []})),
        )
        .expect_err("model");
        assert_eq!(d.kind, DenyKind::Forbidden);
        let body = chat(
            json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "delete_repo"}}, {"type": "function", "function": {"name": "get_x"}}],
            "vendor_field": {"keep": true}}),
        );
        let ok = inspect_request(&p, &i, &route, &body).expect("passes");
        assert_eq!(ok.removed_tools, ["delete_repo"]);
        let out: Value = serde_json::from_slice(&ok.body).expect("json");
        assert_eq!(out["tools"].as_array().map(Vec::len), Some(1));
        assert_eq!(out["vendor_field"]["keep"], true);
        let only_denied = chat(
            json!({"model": "gpt-4o", "messages": [], "tool_choice": "auto",
            "tools": [{"type": "function", "function": {"name": "delete_repo"}}]}),
        );
        let out: Value = serde_json::from_slice(
            &inspect_request(&p, &i, &route, &only_denied)
                .expect("ok")
                .body,
        )
        .expect("json");
        assert!(
            out.get("tools").is_none() && out.get("tool_choice").is_none(),
            "{out}"
        );
        let forced = chat(
            json!({"model": "gpt-4o", "messages": [], "tool_choice": {"type": "function", "function": {"name": "delete_repo"}}}),
        );
        assert!(inspect_request(&p, &i, &route, &forced).is_err());
    }

    #[test]
    fn unchanged_requests_forward_original_bytes() {
        let (p, i) = setup(BASE);
        let route = Route::reverse("/openai/v1/chat/completions").expect("route");
        let raw = Bytes::from_static(br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hello"}],"zzz":1,  "aaa":2}"#);
        assert_eq!(inspect_request(&p, &i, &route, &raw).expect("ok").body, raw);
    }

    #[test]
    fn dlp_block_and_redact() {
        let route = Route::reverse("/anthropic/v1/messages").expect("route");
        let secret = "AKIAIOSFODNN7EXAMPLF";
        let body = chat(
            json!({"model": "claude-x", "system": format!("key {secret}"), "messages": [], "unknown": {"x": 1}}),
        );
        let (p, i) = setup("[models]\nallow = [\"claude-*\"]\n");
        let d = inspect_request(&p, &i, &route, &body).expect_err("blocked");
        assert!(d.reason.contains("aws"), "{}", d.reason);
        assert!(!d.reason.contains(secret));
        assert_eq!(d.findings[0].part, PartKind::System);
        let (p, i) = setup(
            "[models]\nallow = [\"claude-*\"]\n[dlp]\npacks = [\"secrets\"]\naction = \"redact\"\n",
        );
        let ok = inspect_request(&p, &i, &route, &body).expect("redacted");
        let out: Value = serde_json::from_slice(&ok.body).expect("json");
        assert!(out["system"]
            .as_str()
            .is_some_and(|s| s.contains("[REDACTED:") && !s.contains(secret)));
        assert_eq!(out["unknown"]["x"], 1);
        // Base64-hidden: blocks even in redact mode.
        use base64::Engine as _;
        let doc = base64::engine::general_purpose::STANDARD
            .encode(format!("config: aws_key = {secret}\n"));
        let body = chat(
            json!({"model": "claude-x", "messages": [{"role": "user", "content": [
            {"type": "document", "source": {"type": "base64", "media_type": "text/plain", "data": doc}}]}]}),
        );
        let d = inspect_request(&p, &i, &route, &body).expect_err("encoded blocks");
        assert!(!d.findings[0].finding.decoded.is_empty());
    }

    #[test]
    fn malformed_bodies() {
        let (p, i) = setup(BASE);
        let route = Route::reverse("/openai/v1/chat/completions").expect("route");
        for bad in [&b"{"[..], b"[]", b"\"x\"", b"{\"messages\": []}"] {
            let bad = &Bytes::from_static(bad);
            assert_eq!(
                inspect_request(&p, &i, &route, bad).expect_err("bad").kind,
                DenyKind::BadRequest
            );
        }
    }

    #[test]
    fn responses_with_tool_calls() {
        let (p, i) = setup(BASE);
        let ok = &Bytes::from_static(br#"{"choices":[{"message":{"tool_calls":[{"type":"function","function":{"name":"deploy_prod","arguments":"{}"}}]}}],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#);
        let d = inspect_response(&p, &i, ok).expect("delivers");
        assert_eq!(d.needs_approval.len(), 1);
        assert_eq!(d.usage.map(|u| u.total()), Some(3));
        let bad = &Bytes::from_static(
            br#"{"content":[{"type":"tool_use","name":"delete_all","input":{}}]}"#,
        );
        assert_eq!(
            inspect_response(&p, &i, bad).expect_err("hidden").kind,
            DenyKind::Forbidden
        );
        assert_eq!(
            inspect_response(&p, &i, &Bytes::from_static(b"<html>"))
                .expect_err("garbage")
                .kind,
            DenyKind::Upstream
        );
    }
}
