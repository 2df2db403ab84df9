//! `asc serve`: load everything, fail early and loudly, then listen.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::admin;
use crate::ca::InterceptionCa;
use crate::config::{Config, Source};
use crate::controller::{self, Link};
use crate::credential::{by_provider, load_keys, Agents};
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
    match &config.source {
        Source::File(f) => {
            if let Err(e) = load_policy(f) {
                problems.push(e);
            }
            if let Err(errs) = load_keys(&config.credentials) {
                problems.extend(errs.iter().map(ToString::to_string));
            }
        }
        Source::Controller(dir) => {
            if let Err(e) = Link::open(dir) {
                problems.push(e.to_string());
            }
        }
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

/// Controller mode listens on the gateway's overlay address only: the
/// proxies default to it and may also be on loopback; the admin API (the
/// session log, approvals) only on loopback, never where enclave peers
/// reach it. Any other address is refused.
fn on_overlay(config: &mut Config, overlay: Ipv4Addr) -> anyhow::Result<()> {
    let ip = IpAddr::V4(overlay);
    config.reverse = config
        .reverse
        .or(Some(SocketAddr::new(ip, proto::gateway::REVERSE_PORT)));
    config.forward = config
        .forward
        .or(Some(SocketAddr::new(ip, proto::gateway::FORWARD_PORT)));
    for (what, a) in [
        ("listen.reverse", config.reverse),
        ("listen.forward", config.forward),
    ] {
        if let Some(a) = a {
            if a.ip() != ip && !a.ip().is_loopback() {
                anyhow::bail!(
                    "{what} = {a}: a gateway listens only on its overlay address {overlay} (or loopback)"
                );
            }
        }
    }
    if let Some(a) = config.admin.filter(|a| !a.ip().is_loopback()) {
        anyhow::bail!(
            "listen.admin = {a}: a gateway's admin API listens only on loopback, out of the enclave's reach"
        );
    }
    Ok(())
}

/// Runs the ASC until `shutdown`.
///
/// # Errors
/// When anything it needs cannot be loaded or bound.
pub async fn serve(mut config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let (active, agents, keys, link) = match &config.source {
        Source::File(f) => {
            let active = load_policy(f).map_err(|e| anyhow::anyhow!("{e}"))?;
            let keys = load_keys(&config.credentials).map_err(|errs| {
                anyhow::anyhow!(
                    "{}",
                    errs.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("\n")
                )
            })?;
            let keys = by_provider(&config.upstreams, &keys);
            (Ok(active), Agents::new(&config.agents), keys, None)
        }
        Source::Controller(dir) => {
            let link = Link::open(dir)?;
            on_overlay(&mut config, link.address)?;
            config.enclave = link.enclave.to_string();
            let waiting = Err("waiting for the first configuration from the controller".into());
            (waiting, Agents::default(), BTreeMap::new(), Some(link))
        }
    };
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
        agents,
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
    match link {
        None => {
            tasks.spawn(async move {
                loop {
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(POLICY_POLL) => st.reload_if_changed(),
                    }
                }
            });
        }
        Some(link) => {
            tracing::info!(enclave = %link.enclave, member = %link.member, "following the controller");
            tasks.spawn(controller::run(st, link, config.base_dir.clone(), stop));
        }
    }
    tracing::info!(enclave = %config.enclave, policy = %state.policy_version(), "asc ready");
    while tasks.join_next().await.is_some() {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn controller_config(listen: &str) -> Config {
        Config::parse(
            &format!("{listen}[policy]\ncontroller = true\n[controller]\nstate_dir = \"gw\"\n"),
            Path::new("/x/asc.toml"),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_gateway_listens_on_its_overlay_address_only() {
        let overlay = Ipv4Addr::new(100, 64, 0, 2);
        let mut c = controller_config("[listen]\nadmin = \"127.0.0.1:8081\"\n");
        on_overlay(&mut c, overlay).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.reverse, Some(SocketAddr::from((overlay, 8080))));
        assert_eq!(c.forward, Some(SocketAddr::from((overlay, 3128))));
        let mut c = controller_config("[listen]\nreverse = \"100.64.0.2:9000\"\n");
        assert!(on_overlay(&mut c, overlay).is_ok());
        for bad in [
            "[listen]\nreverse = \"0.0.0.0:8080\"\n",
            "[listen]\nforward = \"198.18.0.1:3128\"\n",
        ] {
            let mut c = controller_config(bad);
            let e = on_overlay(&mut c, overlay).err().map(|e| e.to_string());
            assert!(
                e.as_deref()
                    .is_some_and(|e| e.contains("only on its overlay address")),
                "{bad}: {e:?}"
            );
        }
        for bad in ["100.64.0.2:8081", "100.64.0.3:8081", "0.0.0.0:8081"] {
            let mut c = controller_config(&format!("[listen]\nadmin = \"{bad}\"\n"));
            let e = on_overlay(&mut c, overlay).err().map(|e| e.to_string());
            assert!(
                e.as_deref().is_some_and(|e| e.contains("only on loopback")),
                "{bad}: {e:?}"
            );
        }
    }
}
