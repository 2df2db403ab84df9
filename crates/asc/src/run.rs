//! `asc serve`: load everything, fail early and loudly, then listen.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::admin;
use crate::ca::InterceptionCa;
use crate::config::Config;
use crate::credential::{load_keys, Agents};
use crate::mcp::pins::Pins;
use crate::proxy::state::load_policy;
use crate::proxy::{exchange, forward, listen, upstream, State};
use crate::session_log::SessionLog;

/// How often the policy file is checked for changes.
pub const POLICY_POLL: Duration = Duration::from_secs(2);

/// Checks everything `serve` would load, without listening.
///
/// # Errors
/// Every problem found, as one message.
pub fn check(config: &Config) -> anyhow::Result<()> {
    let mut problems = vec![];
    if let Err(e) = load_policy(&config.policy_file) {
        problems.push(e);
    }
    if let Err(errs) = load_keys(&config.credentials) {
        problems.extend(errs.iter().map(ToString::to_string));
    }
    let cas: Vec<&std::path::Path> = config
        .upstreams
        .values()
        .filter_map(|u| u.ca_file.as_deref())
        .collect();
    if let Err(e) = upstream::client(&cas) {
        problems.push(format!("upstream CA: {e}"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{}", problems.join("\n"))
    }
}

async fn bind(
    addr: Option<std::net::SocketAddr>,
    what: &str,
) -> anyhow::Result<Option<TcpListener>> {
    match addr {
        None => Ok(None),
        Some(a) => {
            let l = TcpListener::bind(a)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen for {what} on {a}: {e}"))?;
            tracing::info!(address = %l.local_addr()?, "{what} listening");
            Ok(Some(l))
        }
    }
}

/// Runs the ASC until `shutdown`.
///
/// # Errors
/// When anything it needs cannot be loaded or bound.
pub async fn serve(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let active = load_policy(&config.policy_file).map_err(|e| anyhow::anyhow!("{e}"))?;
    let keys = load_keys(&config.credentials).map_err(|errs| {
        anyhow::anyhow!(
            "{}",
            errs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    })?;
    let cas: Vec<&std::path::Path> = config
        .upstreams
        .values()
        .filter_map(|u| u.ca_file.as_deref())
        .collect();
    let client = upstream::client(&cas)?;
    let log = SessionLog::open(&config.log_database).await?;
    let pins = Pins::open(log.pool().clone()).await?;
    let ca = Arc::new(InterceptionCa::load_or_create(&config.ca_dir)?);
    let token = admin::load_or_create_token(&config.admin_token_file)?;
    let reverse = bind(config.reverse, "reverse proxy").await?;
    let fwd = bind(config.forward, "forward proxy").await?;
    let adm = bind(config.admin, "admin API").await?;
    let reverse_tls = if config.reverse_tls {
        let name = config
            .reverse
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        Some(ca.server_config(&name)?)
    } else {
        None
    };
    let state = Arc::new(State::new(
        config.clone(),
        active,
        Agents::new(&config.agents),
        keys,
        client,
        log,
        ca,
        pins,
    ));
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(l) = reverse {
        let st = state.clone();
        let svc =
            move |peer, req| exchange::handle(st.clone(), exchange::Ingress::Reverse, peer, req);
        tasks.spawn(listen::serve(
            l,
            reverse_tls,
            config.max_connections,
            shutdown.clone(),
            svc,
        ));
    }
    if let Some(l) = fwd {
        tasks.spawn(forward::serve(l, state.clone(), shutdown.clone()));
    }
    if let Some(l) = adm {
        let app = admin::router(state.clone(), token);
        let stop = shutdown.clone();
        tasks.spawn(async move {
            let _ = axum::serve(l, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
    }
    let st = state.clone();
    let stop = shutdown.clone();
    tasks.spawn(async move {
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(POLICY_POLL) => st.reload_if_changed(),
            }
        }
    });
    tracing::info!(enclave = %config.enclave, policy = %state.policy_version(), "asc ready");
    while tasks.join_next().await.is_some() {}
    Ok(())
}
