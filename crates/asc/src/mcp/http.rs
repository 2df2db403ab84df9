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
use serde_json::Value;

use crate::approval::Decision;
use crate::proxy::body::{channel, full, Body};
use crate::proxy::State;
use crate::stream::sse::SseDecoder;

use super::conversation::{ClientStep, Conversation};
use super::gate::Gate;
use super::message;
use super::record::McpLog;

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

fn identify(state: &State, peer: SocketAddr, headers: &hyper::HeaderMap) -> Option<String> {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let agents = state.agents();
    match bearer {
        Some(key) => agents.identify(key, peer.ip()).ok().map(|a| a.name.clone()),
        None => agents.by_source(peer.ip()).map(|a| a.name.clone()),
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
    let mut conv = Conversation::new(
        Gate::new(
            &server,
            srv.clone(),
            state.mcp_pins.clone(),
            active.inspector.clone(),
        ),
        McpLog {
            log: state.log.clone(),
            enclave: state.config.enclave.clone(),
            agent,
            server: server.clone(),
        },
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
    // The request a POST carries, whose answer the client waits for.
    let mut asked: Option<Value> = None;
    let forward_body = if method == Method::POST {
        let Ok(msg) = serde_json::from_slice::<Value>(&body) else {
            return refuse(StatusCode::BAD_REQUEST, -32700, "parse error");
        };
        let mut step = conv.client(msg).await;
        if let ClientStep::Approval {
            request,
            tool,
            arguments,
        } = step
        {
            let (id, decision) = state
                .approvals
                .hold(
                    conv.agent(),
                    &tool,
                    &arguments,
                    &active.policy.version,
                    active.policy.approval_timeout,
                    || state.policy_version(),
                )
                .await;
            let reason = format!("the call to tool `{tool}` ({id}) was not approved");
            step = conv
                .decided(request, decision == Decision::Approved, &reason)
                .await;
        }
        match step {
            ClientStep::Forward(m) => {
                if message::kind(&m) == message::Kind::Request {
                    asked = m.get("id").cloned();
                }
                Bytes::from(m.to_string())
            }
            ClientStep::Reply(Some(r)) => return json_reply(StatusCode::OK, &r),
            ClientStep::Reply(None) | ClientStep::Approval { .. } => {
                return Response::builder()
                    .status(StatusCode::ACCEPTED)
                    .body(full(""))
                    .unwrap_or_else(|_| Response::new(full("")))
            }
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
                            let Some(m) = conv.server(msg).await else {
                                continue;
                            };
                            if m.get("id") == asked.as_ref()
                                && message::kind(&m) == message::Kind::Response
                            {
                                asked = None;
                            }
                            sse_event(ev.event.as_deref(), &m)
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
            // The stream ended without the answer: the server died
            // mid-call. The client gets a clean error, not a hang.
            if asked.is_some() {
                for e in conv.abandon("the MCP server ended the stream before answering") {
                    let _ = tx.send(Bytes::from(sse_event(None, &e))).await;
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
    if raw.is_empty() {
        return rb
            .body(full(""))
            .unwrap_or_else(|_| Response::new(full("")));
    }
    if !ctype.starts_with("application/json") {
        // Only what the gate can read reaches the agent.
        return refuse(
            StatusCode::BAD_GATEWAY,
            message::INTERNAL_ERROR,
            "the MCP server answered with a body that is neither JSON nor an event stream",
        );
    }
    let relayed = match serde_json::from_slice::<Value>(&raw) {
        Ok(msg) => conv.server(msg).await,
        Err(_) => None,
    };
    match relayed {
        Some(m) => rb
            .body(full(m.to_string()))
            .unwrap_or_else(|_| Response::new(full(""))),
        None => refuse(
            StatusCode::BAD_GATEWAY,
            message::INTERNAL_ERROR,
            "the MCP server answered malformed or unsolicited JSON",
        ),
    }
}

/// One SSE event carrying `msg`.
fn sse_event(event: Option<&str>, msg: &Value) -> Vec<u8> {
    format!("event: {}\ndata: {msg}\n\n", event.unwrap_or("message")).into_bytes()
}
