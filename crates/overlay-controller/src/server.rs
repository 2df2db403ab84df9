//! Starting the controller: data dir, PKI, vault, storage, the HTTPS
//! listener, the metrics listener and the background tasks (expiry, replica
//! sync), all stopped by one cancellation token.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use ipnet::Ipv4Net;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn, Instrument};

use crate::api::{self, AppState};
use crate::controller::{unix_now, Controller, Identity};
use crate::db::{self, Backend, Store, StoreError};
use crate::pki::{Pki, PkiError};
use crate::secret::{hash_secret, random_token, write_private};
use crate::vault::{Vault, VaultError};
use crate::{changes, ops};

/// How long open connections get to finish at shutdown.
const GRACE: Duration = Duration::from_secs(5);

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// HTTPS listen address (port 0 picks one).
    pub listen: SocketAddr,
    /// Data directory (CA, vault key, admin token, SQLite file).
    pub data_dir: PathBuf,
    /// `postgres://…` to use PostgreSQL instead of the SQLite file.
    pub database_url: Option<String>,
    /// The URL nodes reach the API at (default `https://<listen>`).
    pub advertise_url: Option<String>,
    /// Pool enclave CIDRs come from.
    pub pool: Ipv4Net,
    /// Plain-HTTP listen address for `/metrics`.
    pub metrics_listen: Option<SocketAddr>,
    /// Most concurrent connections (long-polls included).
    pub max_connections: usize,
    /// How long a client may take for its TLS handshake, its headers or its body.
    pub client_timeout: Duration,
}

/// Why the controller could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data dir or a listener could not be set up.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    /// The CA could not be loaded or created.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// The vault key could not be loaded or created.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Loading state failed.
    #[error("loading state: {0}")]
    Load(#[from] crate::error::Error),
    /// The database belongs to a controller with another CA or vault key.
    #[error("{0}")]
    Mismatch(String),
    /// The advertise URL is not `https://host[:port]`.
    #[error("--advertise-url must look like https://host:port")]
    AdvertiseUrl,
}

/// A started controller.
pub struct Running {
    /// The bound HTTPS address.
    pub addr: SocketAddr,
    /// The bound metrics address.
    pub metrics_addr: Option<SocketAddr>,
    /// The admin token, when this start created it (show it once).
    pub new_admin_token: Option<String>,
    /// The controller.
    pub ctl: Arc<Controller>,
    tasks: JoinSet<()>,
    shutdown: CancellationToken,
}

impl Running {
    /// Waits until the shutdown token fires and every task has stopped.
    pub async fn wait(mut self) {
        self.shutdown.cancelled().await;
        info!("shutting down");
        while self.tasks.join_next().await.is_some() {}
        self.ctl.store.close().await;
    }
}

fn host_of(url: &str) -> Option<String> {
    let rest = url.strip_prefix("https://")?;
    let authority = rest.split('/').next()?;
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    (!host.is_empty()).then(|| host.to_owned())
}

/// Makes sure the database belongs to this data dir's CA and vault key, and
/// creates the admin token on first start.
async fn init_settings(
    store: &Store,
    pki: &Pki,
    vault: &Vault,
    dir: &Path,
) -> Result<(String, Option<String>), StartError> {
    let mut w = store.begin_write().await?;
    let conn = &mut *w.tx;
    match db::get_setting(conn, "ca_sha256").await? {
        None => db::put_setting(conn, "ca_sha256", &pki.ca_sha256).await?,
        Some(ca) if ca == pki.ca_sha256 => {}
        Some(_) => {
            return Err(StartError::Mismatch(
                "this database belongs to a controller with another CA: copy ca.pem, ca.key and \
                 vault.key from that controller's data dir"
                    .into(),
            ))
        }
    }
    match db::get_setting(conn, "vault_check").await? {
        None => {
            let sealed = STANDARD.encode(vault.seal("vault-check", b"cordon"));
            db::put_setting(conn, "vault_check", &sealed).await?;
        }
        Some(s) => {
            let ok = STANDARD
                .decode(s)
                .ok()
                .and_then(|b| vault.open("vault-check", &b).ok())
                .is_some();
            if !ok {
                return Err(StartError::Mismatch(
                    "the vault key does not open this database's secrets (wrong vault.key or \
                     CORDON_VAULT_KEY)"
                        .into(),
                ));
            }
        }
    }
    let (hash, created) = match db::get_setting(conn, "admin_token_hash").await? {
        Some(h) => (h, None),
        None => {
            let token = format!("cadm_{}", random_token(32));
            let path = dir.join("admin.token");
            // A leftover token file from an earlier database is stale.
            let _ = std::fs::remove_file(&path);
            write_private(&path, format!("{token}\n").as_bytes())
                .map_err(|e| StartError::Io(path.display().to_string(), e))?;
            let h = hash_secret(&token);
            db::put_setting(conn, "admin_token_hash", &h).await?;
            (h, Some(token))
        }
    };
    w.commit().await?;
    Ok((hash, created))
}

/// Starts the controller; it runs until `shutdown` is cancelled.
///
/// # Errors
/// [`StartError`] saying what could not be set up.
pub async fn start(cfg: ServeConfig, shutdown: CancellationToken) -> Result<Running, StartError> {
    let dir = &cfg.data_dir;
    std::fs::create_dir_all(dir).map_err(|e| StartError::Io(dir.display().to_string(), e))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| StartError::Io(dir.display().to_string(), e))?;
    }
    let listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| StartError::Io(format!("listen on {}", cfg.listen), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Io("listener".into(), e))?;
    let url = match &cfg.advertise_url {
        Some(u) => u.trim_end_matches('/').to_owned(),
        None if addr.ip().is_unspecified() => format!("https://127.0.0.1:{}", addr.port()),
        None => format!("https://{addr}"),
    };
    let advertised_host = host_of(&url).ok_or(StartError::AdvertiseUrl)?;
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        advertised_host,
    ];
    if !addr.ip().is_unspecified() {
        names.push(addr.ip().to_string());
    }
    names.sort();
    names.dedup();
    let pki = Pki::load_or_create(dir, &names)?;
    let vault = Vault::load_or_create(dir)?;
    let db_url = cfg
        .database_url
        .clone()
        .unwrap_or_else(|| Store::sqlite_url(dir));
    let store = Store::open(&db_url).await?;
    let (admin_hash, new_admin_token) = init_settings(&store, &pki, &vault, dir).await?;
    let identity = Identity {
        url,
        ca_sha256: pki.ca_sha256.clone(),
        pool: cfg.pool,
    };
    let ctl = Arc::new(Controller::load(store, vault, identity).await?);
    let state = AppState {
        ctl: ctl.clone(),
        admin_hash: admin_hash.into(),
        client_timeout: cfg.client_timeout,
    };
    let app = api::router(state);
    let mut tasks = JoinSet::new();

    let acceptor = TlsAcceptor::from(pki.server_config.clone());
    tasks.spawn(
        serve_tls(
            listener,
            acceptor,
            app,
            cfg.max_connections,
            cfg.client_timeout,
            shutdown.clone(),
        )
        .instrument(tracing::info_span!("https", %addr)),
    );
    let metrics_addr = match cfg.metrics_listen {
        Some(m) => {
            let l = TcpListener::bind(m)
                .await
                .map_err(|e| StartError::Io(format!("listen on {m}"), e))?;
            let bound = l
                .local_addr()
                .map_err(|e| StartError::Io("metrics".into(), e))?;
            let ctl = ctl.clone();
            let app = Router::new().route(
                "/metrics",
                axum::routing::get(move || {
                    let ctl = ctl.clone();
                    async move { ctl.metrics.encode() }
                }),
            );
            let stop = shutdown.clone();
            tasks.spawn(async move {
                let res = axum::serve(l, app)
                    .with_graceful_shutdown(async move { stop.cancelled().await })
                    .await;
                if let Err(e) = res {
                    warn!(error = %e, "metrics listener failed");
                }
            });
            Some(bound)
        }
        None => None,
    };
    tasks.spawn(
        expiry_loop(ctl.clone(), shutdown.clone()).instrument(tracing::info_span!("expiry")),
    );
    tasks.spawn(seen_loop(ctl.clone(), shutdown.clone()).instrument(tracing::info_span!("seen")));
    if ctl.store.backend() == Backend::Postgres {
        tasks.spawn(
            replica_sync(ctl.clone(), shutdown.clone())
                .instrument(tracing::info_span!("replica-sync")),
        );
    }
    info!(%addr, url = %ctl.identity.url, ca_sha256 = %ctl.identity.ca_sha256, "controller listening");
    Ok(Running {
        addr,
        metrics_addr,
        new_admin_token,
        ctl,
        tasks,
        shutdown,
    })
}

async fn serve_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: Router,
    max_connections: usize,
    client_timeout: Duration,
    shutdown: CancellationToken,
) {
    let limit = Arc::new(Semaphore::new(max_connections));
    let mut conns = JoinSet::new();
    loop {
        let (tcp, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            warn!(%peer, "connection limit reached; refusing connection");
            continue;
        };
        let acceptor = acceptor.clone();
        let svc = TowerToHyperService::new(app.clone());
        let stop = shutdown.clone();
        conns.spawn(async move {
            let _permit = permit;
            let tls = match tokio::time::timeout(client_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(client_timeout)
                .serve_connection(TokioIo::new(tls), svc);
            tokio::pin!(conn);
            tokio::select! {
                res = conn.as_mut() => {
                    if let Err(e) = res {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
                () = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(GRACE, conn).await;
                }
            }
        });
        // Reap finished connections so the set does not grow.
        while conns.try_join_next().is_some() {}
    }
    let _ = tokio::time::timeout(GRACE * 2, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    conns.abort_all();
}

/// Writes the nodes' last-seen times every few seconds, and once more on
/// shutdown.
async fn seen_loop(ctl: Arc<Controller>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stop = tokio::select! {
            () = shutdown.cancelled() => true,
            _ = tick.tick() => false,
        };
        if let Err(e) = crate::seen::flush(&ctl).await {
            warn!(error = %e, "writing last-seen times failed; kept for the next pass");
        }
        if stop {
            return;
        }
    }
}

async fn expiry_loop(ctl: Arc<Controller>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match ops::member::expire(&ctl, unix_now()).await {
            Ok(0) => {}
            Ok(n) => info!(members = n, "just-in-time memberships expired"),
            Err(e) => warn!(error = %e, "expiry pass failed"),
        }
    }
}

/// Follows changes made by other replicas: LISTEN/NOTIFY wakes us at once,
/// and a slow poll covers notifications lost while reconnecting.
async fn replica_sync(ctl: Arc<Controller>, shutdown: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let listener = async {
            let mut l = sqlx::postgres::PgListener::connect(ctl.store.url()).await?;
            l.listen(changes::CHANNEL).await?;
            Ok::<_, sqlx::Error>(l)
        };
        let mut listener = match listener.await {
            Ok(l) => l,
            Err(e) => {
                warn!(error = %e, "cannot LISTEN; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        // Catch up on anything committed before LISTEN took effect.
        if let Err(e) = ctl.replay().await {
            warn!(error = %e, "replay failed");
        }
        loop {
            let woke = tokio::select! {
                () = shutdown.cancelled() => return,
                n = listener.recv() => n.map(|_| ()),
                () = tokio::time::sleep(Duration::from_secs(2)) => Ok(()),
            };
            if let Err(e) = woke {
                warn!(error = %e, "LISTEN connection lost; reconnecting");
                break;
            }
            if let Err(e) = ctl.replay().await {
                warn!(error = %e, "replay failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn host_of_urls() {
        assert_eq!(
            host_of("https://127.0.0.1:7443").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(
            host_of("https://ctl.example:7443/x").as_deref(),
            Some("ctl.example")
        );
        assert_eq!(host_of("https://[::1]:7443").as_deref(), Some("::1"));
        assert_eq!(host_of("https://host").as_deref(), Some("host"));
        assert_eq!(host_of("http://host"), None);
        assert_eq!(host_of("https://:1"), None);
    }
}
