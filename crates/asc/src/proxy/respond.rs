//! One LLM exchange, response side: a whole response inspected at once, a
//! stream through the guard, upstream errors passed on with real keys
//! scrubbed, and every outcome logged.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::Response;
use serde_json::json;

use crate::adapter::error::DenyKind;
use crate::adapter::{ToolCall, Usage};
use crate::approval::Decision;
use crate::pipeline::inspect_response;
use crate::session_log::RecordKind;
use crate::stream::{Step, StreamGuard};

use super::body::{channel, full, Body};
use super::exchange::{blocked, deny, findings_json, idle, scrub_keys, Exchange};
use super::state::{Active, Counters, State};

/// Response headers passed from the upstream to the agent.
const PASSED: &[&str] = &[
    "content-type",
    "x-request-id",
    "request-id",
    "openai-processing-ms",
    "x-amzn-requestid",
    "x-amzn-errortype",
    "x-amzn-bedrock-content-type",
];

fn builder(
    ex: &Exchange,
    status: hyper::StatusCode,
    from: &hyper::HeaderMap,
) -> hyper::http::response::Builder {
    let mut b = Response::builder()
        .status(status)
        .header("x-cordon-exchange", ex.id.as_str());
    for name in PASSED {
        if let Some(v) = from.get(*name) {
            b = b.header(*name, v);
        }
    }
    b
}

fn account(state: &State, ex: &Exchange, usage: Option<Usage>) {
    let Some(u) = usage else { return };
    let Ok(active) = state.active() else { return };
    state
        .ledger
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .record(
            active.policy.budget.as_ref(),
            &ex.agent,
            u.total(),
            Instant::now(),
        );
}

fn ms(ex: &Exchange) -> u64 {
    ex.started.elapsed().as_millis() as u64
}

/// The upstream could not be reached or timed out.
pub async fn failed(state: &State, ex: &Exchange, kind: DenyKind, reason: &str) -> Response<Body> {
    Counters::bump(&state.counters.upstream_errors);
    let detail = json!({"reason": reason, "duration_ms": ms(ex)});
    let _ = state
        .log
        .append(ex.record(
            state,
            RecordKind::Response,
            "upstream_failed",
            String::new(),
            detail,
        ))
        .await;
    deny(ex.route.provider, &ex.id, kind, reason)
}

/// The upstream answered with an error: passed on (status, provider
/// shape), with any real key it echoes removed.
pub async fn upstream_error(
    state: &State,
    ex: &Exchange,
    resp: Response<Incoming>,
) -> Response<Body> {
    Counters::bump(&state.counters.upstream_errors);
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = match Limited::new(resp.into_body(), state.config.max_body)
        .collect()
        .await
    {
        Ok(b) => scrub_keys(state, &b.to_bytes()),
        Err(_) => {
            return failed(
                state,
                ex,
                DenyKind::Upstream,
                "the upstream's error response could not be read",
            )
            .await
        }
    };
    let body = Bytes::from(body);
    let text = body.clone();
    let detail = json!({"status": status.as_u16(), "duration_ms": ms(ex)});
    let _ = state
        .log
        .append(ex.record(state, RecordKind::Response, "upstream_error", text, detail))
        .await;
    builder(ex, status, &headers)
        .body(full(body))
        .unwrap_or_else(|_| Response::new(full("")))
}

/// Waits for a human on each call; the first that is not approved ends it.
async fn approve_all(
    state: &State,
    ex: &Exchange,
    active: &Active,
    calls: &[ToolCall],
) -> Result<(), String> {
    for call in calls {
        let (id, decision) = state
            .approvals
            .hold(
                &ex.agent,
                &call.name,
                &call.arguments,
                &active.policy.version,
                active.policy.approval_timeout,
                || state.policy_version(),
            )
            .await;
        let why = match decision {
            Decision::Approved => continue,
            Decision::Denied => "was denied",
            Decision::TimedOut => "was not approved in time",
            Decision::PolicyChanged => "was approved under a policy that has since changed",
        };
        return Err(format!(
            "blocked by policy: the call to tool `{}` ({id}) {why}",
            call.name
        ));
    }
    Ok(())
}

/// A whole response: inspected, approvals waited for, delivered or denied.
pub async fn whole(
    state: &State,
    ex: &Exchange,
    active: &Active,
    resp: Response<Incoming>,
) -> Response<Body> {
    let status = resp.status();
    let headers = resp.headers().clone();
    let collected = tokio::time::timeout(
        idle(state),
        Limited::new(resp.into_body(), state.config.max_body).collect(),
    )
    .await;
    let raw: Bytes = match collected {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(_)) => {
            return failed(
                state,
                ex,
                DenyKind::Upstream,
                "the upstream's response could not be read",
            )
            .await
        }
        Err(_) => {
            return failed(
                state,
                ex,
                DenyKind::Timeout,
                "the upstream's response did not complete in time",
            )
            .await
        }
    };
    let delivered = match inspect_response(&active.policy, &active.inspector, &raw) {
        Ok(d) => d,
        Err(d) => return blocked(state, ex, RecordKind::Response, &raw, d).await,
    };
    account(state, ex, delivered.usage);
    let calls: Vec<_> = delivered
        .tool_calls
        .iter()
        .map(|c| json!({"name": c.name, "arguments": c.arguments}))
        .collect();
    if let Err(reason) = approve_all(state, ex, active, &delivered.needs_approval).await {
        Counters::bump(&state.counters.blocked);
        let detail = json!({"reason": reason, "tool_calls": calls, "usage": delivered.usage, "duration_ms": ms(ex)});
        let _ = state
            .log
            .append(ex.record(
                state,
                RecordKind::Response,
                "blocked",
                String::from_utf8_lossy(&raw).into_owned(),
                detail,
            ))
            .await;
        return deny(ex.route.provider, &ex.id, DenyKind::Forbidden, &reason);
    }
    let decision = if delivered.redacted.is_empty() {
        "delivered"
    } else {
        "redacted"
    };
    let detail = json!({"tool_calls": calls, "usage": delivered.usage, "findings": findings_json(&delivered.redacted),
                        "approved": delivered.needs_approval.len(), "duration_ms": ms(ex)});
    let text = delivered.body.clone();
    if state
        .log
        .append(ex.record(state, RecordKind::Response, decision, text, detail))
        .await
        .is_err()
    {
        return deny(
            ex.route.provider,
            &ex.id,
            DenyKind::Upstream,
            "the gateway cannot log this response, so it does not deliver it",
        );
    }
    builder(ex, status, &headers)
        .body(full(delivered.body))
        .unwrap_or_else(|_| Response::new(full("")))
}

/// A streamed response: a task reads the upstream, the guard decides what
/// the agent gets, the log gets the assembled response at the end.
pub async fn stream(
    state: Arc<State>,
    ex: Exchange,
    active: Arc<Active>,
    resp: Response<Incoming>,
) -> Response<Body> {
    let status = resp.status();
    let headers = resp.headers().clone();
    let (tx, body) = channel();
    let reply = builder(&ex, status, &headers)
        .body(body)
        .unwrap_or_else(|_| Response::new(full("")));
    tokio::spawn(async move {
        let mut upstream = resp.into_body();
        let mut guard = StreamGuard::new(
            ex.route.operation,
            &active.inspector,
            active.policy.tools.clone(),
        );
        let first_byte = Instant::now();
        let mut outcome = "delivered";
        let mut reason = String::new();
        let mut done = false;
        while !done {
            let steps = match tokio::time::timeout(idle(&state), upstream.frame()).await {
                Ok(Some(Ok(frame))) => match frame.into_data() {
                    Ok(d) => guard.push(&d),
                    Err(_) => continue,
                },
                Ok(None) => {
                    done = true;
                    guard.finish()
                }
                Ok(Some(Err(_))) | Err(_) => {
                    // Upstream reset or stalled: end the stream with the
                    // provider's error rather than a silent truncation.
                    done = true;
                    outcome = "upstream_failed";
                    reason = "the upstream stream broke off".into();
                    let ev = crate::adapter::stream_error(
                        ex.route.operation,
                        DenyKind::Upstream,
                        &reason,
                    );
                    vec![Step::Forward(ev)]
                }
            };
            let mut queue: std::collections::VecDeque<Step> = steps.into();
            while let Some(step) = queue.pop_front() {
                match step {
                    Step::Forward(b) => {
                        if tx.send(Bytes::from(b)).await.is_err() {
                            outcome = "client_disconnected";
                            done = true;
                            break;
                        }
                    }
                    Step::Block {
                        reason: r, event, ..
                    } => {
                        Counters::bump(&state.counters.blocked);
                        outcome = "blocked";
                        reason = r;
                        let _ = tx.send(Bytes::from(event)).await;
                        done = true;
                        break;
                    }
                    Step::Approval(call) => {
                        let verdict =
                            approve_all(&state, &ex, &active, std::slice::from_ref(&call)).await;
                        let (ok, why) = match verdict {
                            Ok(()) => (true, String::new()),
                            Err(w) => (false, w),
                        };
                        queue.extend(guard.resolve(ok, &why));
                    }
                }
            }
        }
        drop(tx);
        account(&state, &ex, guard.usage);
        // What blocked the stream is not stored in the clear either.
        let calls: Vec<_> = guard
            .calls
            .iter()
            .map(|c| {
                let f = active.inspector.scan(c.arguments.as_bytes());
                let args =
                    String::from_utf8_lossy(&dlp::redact(c.arguments.as_bytes(), &f)).into_owned();
                json!({"name": c.name, "arguments": args})
            })
            .collect();
        let found: Vec<_> = guard
            .findings
            .iter()
            .map(|f| json!({"rule": f.rule, "excerpt": f.excerpt}))
            .collect();
        let transcript = dlp::redact(
            guard.transcript.as_bytes(),
            &active.inspector.scan(guard.transcript.as_bytes()),
        );
        let detail = json!({"stream": true, "reason": reason, "tool_calls": calls, "usage": guard.usage, "findings": found,
                            "duration_ms": first_byte.elapsed().as_millis() as u64});
        let body = json!({"text": String::from_utf8_lossy(&transcript)}).to_string();
        let _ = state
            .log
            .append(ex.record(&state, RecordKind::Response, outcome, body, detail))
            .await;
    });
    reply
}
