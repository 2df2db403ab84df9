//! The forward proxy (`HTTPS_PROXY`): `CONNECT` to a provider host is
//! intercepted (TLS terminated with a leaf from the enclave CA, then the
//! same exchange handler as the reverse proxy); `CONNECT` to a host the
//! policy passes through is tunnelled untouched; everything else is
//! refused.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

use crate::glob::any_match;
use crate::provider::Provider;

use super::body::{full, Body};
use super::exchange::{handle, Ingress};
use super::listen::HEADER_TIMEOUT;
use super::state::State;

fn refuse(status: StatusCode, reason: &str) -> Response<Body> {
    let mut r = Response::new(full(format!("{reason}\n")));
    *r.status_mut() = status;
    r
}

/// Which provider `host` belongs to.
fn provider_of(state: &State, host: &str) -> Option<Provider> {
    state
        .config
        .upstreams
        .iter()
        .find(|(_, u)| u.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)))
        .map(|(p, _)| *p)
}

/// Handles one request on the forward listener.
pub async fn handle_proxy(
    state: Arc<State>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Response<Body> {
    if req.method() != Method::CONNECT {
        return refuse(
            StatusCode::FORBIDDEN,
            "this proxy only accepts CONNECT to the enclave's LLM providers",
        );
    }
    let Some(authority) = req.uri().authority().cloned() else {
        return refuse(StatusCode::BAD_REQUEST, "CONNECT needs host:port");
    };
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let port = authority.port_u16().unwrap_or(443);
    if let Some(provider) = provider_of(&state, &host).filter(|_| port == 443) {
        let tls = match state.ca.server_config(&host) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "interception TLS configuration");
                return refuse(StatusCode::BAD_GATEWAY, "interception is not available");
            }
        };
        tokio::spawn(async move {
            let Ok(upgraded) = hyper::upgrade::on(req).await else {
                return;
            };
            let acceptor = tokio_rustls::TlsAcceptor::from(tls);
            let Ok(Ok(stream)) =
                tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(TokioIo::new(upgraded))).await
            else {
                tracing::debug!(peer = %peer, host = %host, "TLS handshake with the agent failed");
                return;
            };
            let svc = hyper::service::service_fn(move |inner| {
                let s = state.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(
                        handle(s, Ingress::Forward(provider), peer, inner).await,
                    )
                }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
        return Response::new(full(""));
    }
    let passthrough = state
        .active()
        .map(|a| any_match(&a.policy.passthrough, &host))
        .unwrap_or(false);
    // A tunnel carries no API key to identify the caller by: only an agent
    // bound to this source address (every agent, in controller mode) may
    // open one, not any other peer of the enclave.
    let agent = state.agents().by_source(peer.ip()).map(|a| a.name.clone());
    if passthrough && agent.is_none() {
        tracing::warn!(peer = %peer, host = %host, port, "CONNECT refused: pass-through is for agents bound to a source address");
        return refuse(
            StatusCode::FORBIDDEN,
            &format!("{host}:{port} is passed through only for the enclave's agents"),
        );
    }
    if passthrough {
        tracing::info!(peer = %peer, agent = ?agent, host = %host, port, "CONNECT passed through untouched by policy");
        tokio::spawn(async move {
            let Ok(upgraded) = hyper::upgrade::on(req).await else {
                return;
            };
            let Ok(mut remote) = tokio::net::TcpStream::connect((host.as_str(), port)).await else {
                return;
            };
            let mut client = TokioIo::new(upgraded);
            let _ = tokio::io::copy_bidirectional(&mut client, &mut remote).await;
        });
        return Response::new(full(""));
    }
    tracing::warn!(peer = %peer, host = %host, port, "CONNECT refused: not a provider host and not passed through");
    refuse(
        StatusCode::FORBIDDEN,
        &format!("{host}:{port} is not reachable from this enclave (not an LLM provider host, not passed through by policy)"),
    )
}

/// Serves the forward listener (HTTP/1.1 with upgrades).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let limit = Arc::new(tokio::sync::Semaphore::new(state.config.max_connections));
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let (tcp, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            r = listener.accept() => match r { Ok(x) => x, Err(_) => continue },
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            continue;
        };
        let st = state.clone();
        conns.spawn(async move {
            let _permit = permit;
            let svc = hyper::service::service_fn(move |req| {
                let s = st.clone();
                async move { Ok::<_, std::convert::Infallible>(handle_proxy(s, peer, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(tcp), svc)
                .with_upgrades()
                .await;
        });
        while conns.try_join_next().is_some() {}
    }
    conns.abort_all();
}
