//! One LLM exchange, request side: route, authenticate, read, inspect,
//! log, forward. The response side is in [`super::respond`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde_json::json;

use crate::adapter::error::DenyKind;
use crate::adapter::route::RouteError;
use crate::adapter::{error_for, Route};
use crate::credential::{presented_key, scrub};
use crate::pipeline::{inspect_request, Denial, Located};
use crate::provider::Provider;
use crate::session_log::{Record, RecordKind};
use crate::sigv4;

use super::body::{full, Body};
use super::outbound;
use super::respond;
use super::state::{Counters, State};

/// How a request reached the ASC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingress {
    /// `/openai/…` etc. on the reverse listener.
    Reverse,
    /// Through the forward proxy to this provider's host.
    Forward(Provider),
}

/// Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Facts about an exchange, filled in as it goes.
pub struct Exchange {
    /// Its id.
    pub id: String,
    /// Where it goes.
    pub route: Route,
    /// The agent.
    pub agent: String,
    /// The model.
    pub model: String,
    /// When it started.
    pub started: Instant,
}

impl Exchange {
    /// A record of this exchange.
    pub fn record(
        &self,
        state: &State,
        kind: RecordKind,
        decision: &str,
        body: impl Into<Bytes>,
        detail: serde_json::Value,
    ) -> Record {
        Record {
            exchange: self.id.clone(),
            kind,
            at_ms: now_ms(),
            agent: self.agent.clone(),
            enclave: state.config.enclave.clone(),
            provider: self.route.provider.as_str().into(),
            operation: self.route.operation.as_str().into(),
            model: self.model.clone(),
            decision: decision.into(),
            body: body.into(),
            detail,
        }
    }
}

/// A denial in the provider's shape, marked not to be retried.
pub fn deny(provider: Provider, exchange: &str, kind: DenyKind, reason: &str) -> Response<Body> {
    let e = error_for(provider, kind, reason);
    let mut b = Response::builder()
        .status(e.status)
        .header("content-type", "application/json")
        .header("x-should-retry", "false")
        .header("x-cordon-exchange", exchange);
    for (k, v) in e.headers {
        b = b.header(k, v);
    }
    b.body(full(e.body))
        .unwrap_or_else(|_| Response::new(full("")))
}

/// The interception CA's certificate (public), for agents' trust stores.
fn ca_certificate(state: &State) -> Response<Body> {
    let mut r = Response::new(full(state.ca.ca_pem.clone()));
    r.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/x-pem-file"),
    );
    r
}

fn plain_not_found(reason: &str) -> Response<Body> {
    let mut r = Response::new(full(
        json!({"error": {"message": reason, "code": DenyKind::NotFound.code()}}).to_string(),
    ));
    *r.status_mut() = hyper::StatusCode::NOT_FOUND;
    r.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

/// Findings for the log: where, which rule, the redacted excerpt.
pub fn findings_json(found: &[Located]) -> serde_json::Value {
    found
        .iter()
        .map(|f| {
            json!({"rule": f.finding.rule, "severity": f.finding.severity, "part": f.part, "pointer": f.pointer,
                   "excerpt": f.finding.excerpt, "decoded": f.finding.decoded})
        })
        .collect()
}

/// `raw` with every finding's span replaced, so a blocked secret is not
/// stored in the log either.
pub fn redacted_for_log(raw: &[u8], found: &[Located]) -> String {
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(raw) else {
        return String::from_utf8_lossy(raw).into_owned();
    };
    let mut pointers: Vec<&str> = found.iter().map(|f| f.pointer.as_str()).collect();
    pointers.dedup();
    for p in pointers {
        let mine: Vec<dlp::Finding> = found
            .iter()
            .filter(|f| f.pointer == p)
            .map(|f| f.finding.clone())
            .collect();
        if let Some(text) = v.pointer(p).and_then(|s| s.as_str()).map(str::to_owned) {
            // Findings inside encoded content span the whole encoded run.
            let red = dlp::redact(text.as_bytes(), &mine);
            crate::adapter::set_string(&mut v, p, String::from_utf8_lossy(&red).into_owned());
        }
    }
    v.to_string()
}

fn headers_of(req: &Request<Incoming>) -> Vec<(String, String)> {
    req.headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect()
}

/// Handles one request to an LLM provider.
pub async fn handle(
    state: Arc<State>,
    ingress: Ingress,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Response<Body> {
    Counters::bump(&state.counters.requests);
    let id = format!("ex-{}", hex::encode(rand::random::<[u8; 8]>()));
    let pq = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    if ingress == Ingress::Reverse && pq.starts_with("/mcp/") {
        return crate::mcp::http::handle(state, peer, req).await;
    }
    if ingress == Ingress::Reverse && pq == proto::gateway::CA_PATH && req.method() == Method::GET {
        return ca_certificate(&state);
    }
    let route = match ingress {
        Ingress::Reverse => Route::reverse(&pq),
        Ingress::Forward(p) => Route::forward(p, &pq),
    };
    let route = match route {
        Ok(r) => r,
        Err(e @ RouteError::UnknownProvider) => {
            Counters::bump(&state.counters.rejected);
            return plain_not_found(&e.to_string());
        }
        Err(e @ RouteError::Unsupported(p, _)) => {
            Counters::bump(&state.counters.rejected);
            let provider = p.parse().unwrap_or(Provider::Openai);
            return deny(provider, &id, DenyKind::NotFound, &e.to_string());
        }
    };
    let provider = route.provider;
    let reject = |kind: DenyKind, reason: &str| {
        Counters::bump(&state.counters.rejected);
        deny(provider, &id, kind, reason)
    };
    if req.method() != Method::POST {
        return reject(DenyKind::NotFound, "only POST is forwarded");
    }
    let headers = headers_of(&req);
    let ctype = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.to_ascii_lowercase());
    if ctype.is_some_and(|c| !c.starts_with("application/json")) {
        return reject(
            DenyKind::BadRequest,
            "content-type must be application/json",
        );
    }
    let Some(upstream) = state.config.upstreams.get(&provider).cloned() else {
        return reject(
            DenyKind::NotFound,
            &format!("no upstream is configured for {provider}"),
        );
    };
    let key = match presented_key(provider, &headers) {
        Ok(k) => k,
        Err(e) => return reject(DenyKind::Unauthenticated, &e.to_string()),
    };
    let agent = match state.agents().identify(&key, peer.ip()) {
        Ok(a) => a.name.clone(),
        Err(e) => {
            tracing::warn!(peer = %peer, provider = %provider, "unknown substitute key");
            return reject(DenyKind::Unauthenticated, &e.to_string());
        }
    };
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let body = match Limited::new(req.into_body(), state.config.max_body)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return reject(
                DenyKind::TooLarge,
                &format!(
                    "request body is larger than {} bytes",
                    state.config.max_body
                ),
            )
        }
        Err(_) => return reject(DenyKind::BadRequest, "request body could not be read"),
    };
    let mut signing_region = None;
    if provider == Provider::Bedrock {
        // The agent signs with its substitute key as both access key id
        // and secret: the signature proves it holds the key and that the
        // body is what it sent.
        let check = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            .ok_or(sigv4::SigError::Malformed)
            .and_then(|(_, v)| sigv4::Authorization::parse(v))
            .and_then(|auth| {
                let r = sigv4::Request {
                    method: "POST",
                    path: &path,
                    query: &query,
                    headers: &headers,
                    body: &body,
                };
                sigv4::verify(&r, &auth, &key, now_ms() / 1000).map(|()| auth)
            });
        match check {
            Ok(auth) => signing_region = Some(auth.region),
            Err(e) => return reject(DenyKind::Unauthenticated, &format!("SigV4: {e}")),
        }
    }
    let ex = Exchange {
        id,
        route,
        agent,
        model: String::new(),
        started: Instant::now(),
    };
    forward(state, ex, &headers, body, signing_region, &upstream).await
}

async fn forward(
    state: Arc<State>,
    mut ex: Exchange,
    headers: &[(String, String)],
    body: Bytes,
    signing_region: Option<String>,
    upstream: &crate::config::Upstream,
) -> Response<Body> {
    let provider = ex.route.provider;
    let active = match state.active() {
        Ok(a) => a,
        Err(_) => {
            Counters::bump(&state.counters.blocked);
            return deny(
                provider,
                &ex.id,
                DenyKind::Forbidden,
                "the gateway's policy is invalid: every request is refused until it is fixed",
            );
        }
    };
    if let Some(budget) = &active.policy.budget {
        let over = state
            .ledger
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .check(budget, &ex.agent, Instant::now());
        if let Err(e) = over {
            Counters::bump(&state.counters.blocked);
            let detail = json!({"reason": e.to_string()});
            let _ = state
                .log
                .append(ex.record(
                    &state,
                    RecordKind::Request,
                    "budget_exhausted",
                    String::new(),
                    detail,
                ))
                .await;
            return deny(provider, &ex.id, DenyKind::Budget, &e.to_string());
        }
    }
    let passed = match inspect_request(&active.policy, &active.inspector, &ex.route, &body) {
        Ok(p) => p,
        Err(d) => return blocked(&state, &ex, RecordKind::Request, &body, d).await,
    };
    ex.model = passed.model.clone();
    let decision = if passed.redacted.is_empty() {
        "forwarded"
    } else {
        "redacted"
    };
    let detail = json!({"removed_tools": passed.removed_tools, "findings": findings_json(&passed.redacted), "stream": passed.stream});
    let logged = passed.body.clone();
    if let Err(e) = state
        .log
        .append(ex.record(&state, RecordKind::Request, decision, logged, detail))
        .await
    {
        tracing::error!(error = %e, "session log unavailable: refusing to forward unlogged");
        return deny(
            provider,
            &ex.id,
            DenyKind::Upstream,
            "the gateway cannot log this exchange, so it does not forward it",
        );
    }
    let Some(key) = state.key_for(provider) else {
        return deny(
            provider,
            &ex.id,
            DenyKind::Upstream,
            "the gateway has no key for this provider",
        );
    };
    let out = match outbound::build(
        &ex.route,
        upstream,
        headers,
        passed.body,
        &key,
        signing_region.as_deref(),
        now_ms() / 1000,
    ) {
        Ok(r) => r,
        Err(e) => return deny(provider, &ex.id, DenyKind::Upstream, &e.to_string()),
    };
    Counters::bump(&state.counters.forwarded);
    let sent = tokio::time::timeout(state.config.upstream_timeout, state.client.request(out)).await;
    let resp = match sent {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::warn!(error = ?e, provider = %provider, "upstream request failed");
            return respond::failed(
                &state,
                &ex,
                DenyKind::Upstream,
                "the upstream could not be reached",
            )
            .await;
        }
        Err(_) => {
            return respond::failed(
                &state,
                &ex,
                DenyKind::Timeout,
                "the upstream did not answer in time",
            )
            .await
        }
    };
    if !resp.status().is_success() {
        return respond::upstream_error(&state, &ex, resp).await;
    }
    if passed.stream {
        respond::stream(state, ex, active, resp).await
    } else {
        respond::whole(&state, &ex, &active, resp).await
    }
}

/// Logs a policy refusal (the offending spans redacted in the stored
/// body) and answers with the provider's error.
pub async fn blocked(
    state: &State,
    ex: &Exchange,
    kind: RecordKind,
    raw: &[u8],
    d: Denial,
) -> Response<Body> {
    Counters::bump(&state.counters.blocked);
    let detail = json!({"reason": d.reason, "findings": findings_json(&d.findings), "status": d.kind.status(),
                        "duration_ms": ex.started.elapsed().as_millis() as u64});
    let logged = redacted_for_log(raw, &d.findings);
    let _ = state
        .log
        .append(ex.record(state, kind, "blocked", logged, detail))
        .await;
    deny(ex.route.provider, &ex.id, d.kind, &d.reason)
}

/// Scrubs real keys from an upstream's error body.
pub fn scrub_keys(state: &State, body: &[u8]) -> Vec<u8> {
    let keys = state.real_keys();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    scrub(body, &keys)
}

/// The idle limit between two pieces of an upstream body.
pub fn idle(state: &State) -> Duration {
    state.config.upstream_timeout
}
