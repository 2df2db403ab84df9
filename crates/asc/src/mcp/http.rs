//! `/mcp/<server>` on the reverse listener: a streamable-HTTP proxy to the
//! upstream MCP server the policy names, with every message through the
//! [`Gate`]. Both protocol eras pass: the session headers
//! (`Mcp-Session-Id`, `MCP-Protocol-Version`) and the 2026-07-28 routing
//! headers (`Mcp-Method`, `Mcp-Name`) are relayed; JSON and SSE responses
//! are filtered message by message. The caller is the agent its overlay
//! source address (or substitute key) identifies.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use crate::approval::Decision;
use crate::proxy::body::{channel, full, Body};
use crate::proxy::State;
use crate::session_log::RecordKind;
use crate::stream::sse::SseDecoder;

use super::gate::{FromClient, FromServer, Gate};
use super::message;
use super::record::{exchange_id, McpLog};

/// Request headers relayed to the upstream (all `mcp-*` headers too).
const RELAYED: &[&str] = &["content-type", "accept", "last-event-id", "cache-control"];
/// Response headers relayed to the client.
const RETURNED: &[&str] = &[
    "content-type",
    "mcp-session-id",
    "cache-control",
    "x-accel-buffering",
];

fn json_reply(status: StatusCode, v: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(full(v.to_string()))
        .unwrap_or_else(|_| Response::new(full("")))
}

/// What the log records of this conversation.
struct Ctx {
    rec: McpLog,
}

impl Ctx {
    /// Passes one server message through the gate and logs what matters.
    async fn relay(&self, gate: &mut Gate, msg: Value, call: (&str, &str)) -> Value {
        match gate.from_server(msg) {
            FromServer::Forward { message, hidden } => {
                if !hidden.is_empty() {
                    self.rec
                        .write(
                            &exchange_id(),
                            RecordKind::Response,
                            ("tools/list", ""),
                            "filtered",
                            &message,
                            json!({"hidden": hidden}),
                        )
                        .await;
                } else if call.0 == "tools/call" {
                    self.rec
                        .write(
                            &exchange_id(),
                            RecordKind::Response,
                            call,
                            "delivered",
                            &message,
                            json!({}),
                        )
                        .await;
                }
                message
            }
            FromServer::Withhold {
                reply,
                reason,
                findings,
            } => {
                let rules: Vec<&str> = findings.iter().map(|f| f.rule.as_str()).collect();
                self.rec
                    .write(
                        &exchange_id(),
                        RecordKind::Response,
                        call,
                        "blocked",
                        &reply,
                        json!({"reason": reason, "findings": rules}),
                    )
                    .await;
                reply
            }
        }
    }
}

fn identify(state: &State, peer: SocketAddr, headers: &hyper::HeaderMap) -> Option<String> {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match bearer {
        Some(key) => state
            .agents
            .identify(key, peer.ip())
            .ok()
            .map(|a| a.name.clone()),
        None => state.agents.by_source(peer.ip()).map(|a| a.name.clone()),
    }
}

/// Handles a request under `/mcp/`.
pub async fn handle(state: Arc<State>, peer: SocketAddr, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let server = path
        .trim_start_matches("/mcp/")
        .split('/')
        .next()
        .unwrap_or("")
        .to_owned();
    let refuse =
        |status, code, msg: &str| json_reply(status, &message::error(Value::Null, code, msg));
    let Ok(active) = state.active() else {
        return refuse(
            StatusCode::FORBIDDEN,
            message::INVALID_REQUEST,
            "the gateway's policy is invalid",
        );
    };
    let Some(srv) = active.policy.mcp.get(&server).cloned() else {
        return refuse(
            StatusCode::NOT_FOUND,
            -32601,
            "no such MCP server in this enclave's policy",
        );
    };
    let Some(url) = srv.url.clone() else {
        return refuse(
            StatusCode::NOT_FOUND,
            -32601,
            "this MCP server is stdio-only",
        );
    };
    let Some(agent) = identify(&state, peer, req.headers()) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            message::INVALID_REQUEST,
            "caller is not an agent of this enclave",
        );
    };
    let ctx = Arc::new(Ctx {
        rec: McpLog {
            log: state.log.clone(),
            enclave: state.config.enclave.clone(),
            agent,
            server: server.clone(),
        },
    });
    let mut gate = Gate::new(
        &server,
        srv.tools.clone(),
        state.mcp_pins.clone(),
        active.inspector.clone(),
    );
    let method = req.method().clone();
    let mut headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter(|(k, _)| RELAYED.contains(&k.as_str()) || k.as_str().starts_with("mcp-"))
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let body = match Limited::new(req.into_body(), state.config.max_body)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                message::INVALID_REQUEST,
                "request body too large or unreadable",
            )
        }
    };
    let mut call = (String::new(), String::new());
    let forward_body = if method == Method::POST {
        let Ok(msg) = serde_json::from_slice::<Value>(&body) else {
            return refuse(StatusCode::BAD_REQUEST, -32700, "parse error");
        };
        call = (
            message::method(&msg).to_owned(),
            msg.pointer("/params/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        );
        let mut step = gate.from_client(msg);
        if let FromClient::Approval {
            request,
            tool,
            arguments,
        } = step
        {
            let (id, decision) = state
                .approvals
                .hold(
                    &ctx.rec.agent,
                    &tool,
                    &arguments,
                    &active.policy.version,
                    active.policy.approval_timeout,
                    || state.policy_version(),
                )
                .await;
            step = if decision == Decision::Approved {
                FromClient::Forward(request)
            } else {
                let reason = format!("the call to tool `{tool}` ({id}) was not approved");
                FromClient::Refuse {
                    reply: Some(gate.refusal(&request, &reason)),
                    reason,
                    findings: vec![],
                }
            };
        }
        match step {
            FromClient::Forward(m) => {
                if call.0 == "tools/call" {
                    ctx.rec
                        .write(
                            &exchange_id(),
                            RecordKind::Request,
                            (&call.0, &call.1),
                            "forwarded",
                            &m,
                            json!({}),
                        )
                        .await;
                }
                Bytes::from(m.to_string())
            }
            FromClient::Refuse {
                reply,
                reason,
                findings,
            } => {
                let rules: Vec<&str> = findings.iter().map(|f| f.rule.as_str()).collect();
                let logged = if findings.is_empty() {
                    json!({"method": call.0, "params": {"name": call.1}})
                } else {
                    json!({"method": call.0})
                };
                ctx.rec
                    .write(
                        &exchange_id(),
                        RecordKind::Request,
                        (&call.0, &call.1),
                        "blocked",
                        &logged,
                        json!({"reason": reason, "findings": rules}),
                    )
                    .await;
                return match reply {
                    Some(r) => json_reply(StatusCode::OK, &r),
                    None => Response::builder()
                        .status(StatusCode::ACCEPTED)
                        .body(full(""))
                        .unwrap_or_else(|_| Response::new(full(""))),
                };
            }
            FromClient::Approval { .. } => unreachable!("resolved above"),
        }
    } else {
        body
    };
    // The upstream sees its own authority as Host (its DNS-rebinding check
    // wants that), never the agent's credentials.
    headers.retain(|(k, _)| k != "host");
    let mut b = Request::builder().method(method).uri(url.as_str());
    for (k, v) in &headers {
        b = b.header(k.as_str(), v.as_str());
    }
    let Ok(out) = b.body(Full::new(forward_body)) else {
        return refuse(
            StatusCode::BAD_GATEWAY,
            message::INTERNAL_ERROR,
            "cannot build the upstream request",
        );
    };
    let resp = match tokio::time::timeout(state.config.upstream_timeout, state.client.request(out))
        .await
    {
        Ok(Ok(r)) => r,
        _ => {
            return refuse(
                StatusCode::BAD_GATEWAY,
                message::INTERNAL_ERROR,
                "the MCP server could not be reached",
            )
        }
    };
    let status = resp.status();
    let mut rb = Response::builder().status(status);
    for name in RETURNED {
        if let Some(v) = resp.headers().get(*name) {
            rb = rb.header(*name, v);
        }
    }
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ctype.starts_with("text/event-stream") {
        let (tx, body) = channel();
        tokio::spawn(async move {
            let mut upstream = resp.into_body();
            let mut dec = SseDecoder::new(crate::stream::guard::MAX_EVENT);
            while let Some(Ok(frame)) = upstream.frame().await {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                let Ok(events) = dec.push(&data) else { break };
                for ev in events {
                    let out = match serde_json::from_str::<Value>(&ev.data) {
                        Ok(msg) => {
                            let m = ctx.relay(&mut gate, msg, (&call.0, &call.1)).await;
                            format!(
                                "event: {}\ndata: {m}\n\n",
                                ev.event.as_deref().unwrap_or("message")
                            )
                            .into_bytes()
                        }
                        // Pings and priming events carry no message.
                        Err(_) if ev.data.trim().is_empty() => ev.raw,
                        Err(_) => continue,
                    };
                    if tx.send(Bytes::from(out)).await.is_err() {
                        return;
                    }
                }
            }
        });
        return rb.body(body).unwrap_or_else(|_| Response::new(full("")));
    }
    let raw = match Limited::new(resp.into_body(), state.config.max_body)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return refuse(
                StatusCode::BAD_GATEWAY,
                message::INTERNAL_ERROR,
                "the MCP server's answer could not be read",
            )
        }
    };
    if ctype.starts_with("application/json") && !raw.is_empty() {
        if let Ok(msg) = serde_json::from_slice::<Value>(&raw) {
            let m = ctx.relay(&mut gate, msg, (&call.0, &call.1)).await;
            return rb
                .body(full(m.to_string()))
                .unwrap_or_else(|_| Response::new(full("")));
        }
        return refuse(
            StatusCode::BAD_GATEWAY,
            message::INTERNAL_ERROR,
            "the MCP server answered malformed JSON",
        );
    }
    rb.body(full(raw))
        .unwrap_or_else(|_| Response::new(full("")))
}
