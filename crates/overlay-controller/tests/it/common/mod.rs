//! Test harness: a real controller (HTTPS, real database) started in-process
//! on port 0, against SQLite or a fresh PostgreSQL database.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use control_client::Client;
use hyper::{Method, StatusCode};
use overlay_controller::controller::Controller;
use overlay_controller::server::{self, ServeConfig};
use proto::PublicKey;
use serde_json::Value;
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Server URL of the PostgreSQL the tests create their databases in.
pub fn pg_admin_url() -> String {
    std::env::var("CORDON_TEST_PG")
        .unwrap_or_else(|_| "postgres://cordon:cordon@127.0.0.1:5432/postgres".into())
}

/// A throw-away PostgreSQL database, dropped when the test ends.
pub struct PgDb {
    name: String,
    pub url: String,
}

impl PgDb {
    pub async fn create() -> Result<Self> {
        let admin = pg_admin_url();
        let mut conn = sqlx::PgConnection::connect(&admin).await.context(
            "PostgreSQL is not reachable: run scripts/setup.sh (CORDON_TEST_PG overrides the URL)",
        )?;
        let name = format!(
            "cordon_t_{}",
            overlay_controller::secret::random_token(9)
                .to_lowercase()
                .replace(['-', '_'], "x")
        );
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await?;
        let base = admin
            .rsplit_once('/')
            .map_or(admin.as_str(), |(b, _)| b)
            .to_owned();
        Ok(Self {
            url: format!("{base}/{name}"),
            name,
        })
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside async: a short-lived runtime on its own thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    if let Ok(mut c) = sqlx::PgConnection::connect(&pg_admin_url()).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut c)
                                .await;
                    }
                });
            }
        })
        .join();
    }
}

/// A running controller and an admin client for it.
pub struct Harness {
    pub dir: Arc<tempfile::TempDir>,
    pub addr: SocketAddr,
    pub metrics: Option<SocketAddr>,
    pub ctl: Arc<Controller>,
    pub admin: Client,
    pub ca: Vec<u8>,
    pub db: Db,
    pub pg: Option<Arc<PgDb>>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

pub fn config(dir: &std::path::Path, url: Option<String>) -> ServeConfig {
    ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!()),
        data_dir: dir.to_path_buf(),
        database_url: url,
        advertise_url: None,
        pool: "100.64.0.0/10".parse().unwrap_or_else(|_| unreachable!()),
        metrics_listen: Some("127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!())),
        max_connections: 4096,
        client_timeout: Duration::from_secs(2),
    }
}

impl Harness {
    pub async fn start(db: Db) -> Result<Self> {
        let dir = Arc::new(tempfile::tempdir()?);
        let pg = match db {
            Db::Sqlite => None,
            Db::Postgres => Some(Arc::new(PgDb::create().await?)),
        };
        Self::start_on(db, dir, pg).await
    }

    /// Another controller on the same data dir and database (a replica, or
    /// a restart after `stop`).
    pub async fn start_on(
        db: Db,
        dir: Arc<tempfile::TempDir>,
        pg: Option<Arc<PgDb>>,
    ) -> Result<Self> {
        let cfg = config(dir.path(), pg.as_ref().map(|p| p.url.clone()));
        let shutdown = CancellationToken::new();
        let running = server::start(cfg, shutdown.clone()).await?;
        let (addr, metrics, ctl) = (running.addr, running.metrics_addr, running.ctl.clone());
        let task = tokio::spawn(running.wait());
        let ca = std::fs::read(dir.path().join("ca.pem"))?;
        let token = std::fs::read_to_string(dir.path().join("admin.token"))?;
        let admin = Client::new(
            &format!("https://{addr}"),
            &ca,
            Some(token.trim().to_owned()),
        )?;
        Ok(Self {
            dir,
            addr,
            metrics,
            ctl,
            admin,
            ca,
            db,
            pg,
            shutdown,
            task,
        })
    }

    pub async fn replica(&self) -> Result<Self> {
        Self::start_on(self.db, self.dir.clone(), self.pg.clone()).await
    }

    pub async fn stop(self) -> Result<(Arc<tempfile::TempDir>, Option<Arc<PgDb>>)> {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(20), self.task).await??;
        Ok((self.dir, self.pg))
    }

    pub fn client(&self, token: Option<&str>) -> Result<Client> {
        Ok(Client::new(
            &format!("https://{}", self.addr),
            &self.ca,
            token.map(str::to_owned),
        )?)
    }

    pub async fn call(
        &self,
        c: &Client,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value)> {
        let body = body.map(|b| serde_json::to_vec(&b)).transpose()?;
        let (status, bytes) = c.send(method, path, body).await?;
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok((status, v))
    }

    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value)> {
        self.call(&self.admin, method, path, body).await
    }

    /// Admin call that must answer `want`.
    pub async fn expect(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        want: StatusCode,
    ) -> Result<Value> {
        let (status, v) = self.admin(method.clone(), path, body).await?;
        if status != want {
            bail!("{method} {path}: expected {want}, got {status}: {v}");
        }
        Ok(v)
    }

    pub async fn create_enclave(&self, body: Value) -> Result<Value> {
        self.expect(
            Method::POST,
            "/api/v1/enclaves",
            Some(body),
            StatusCode::CREATED,
        )
        .await
    }

    pub async fn token(&self, enclave: &str, body: Value) -> Result<String> {
        let v = self
            .expect(
                Method::POST,
                &format!("/api/v1/enclaves/{enclave}/tokens"),
                Some(body),
                StatusCode::CREATED,
            )
            .await?;
        Ok(v["token"].as_str().context("no token")?.to_owned())
    }

    /// Joins with a fresh random key; returns (status, body).
    pub async fn join(&self, token: &str) -> Result<(StatusCode, Value)> {
        let c = self.client(None)?;
        let body = serde_json::json!({"token": token, "public_key": random_key().to_string()});
        self.call(&c, Method::POST, "/api/v1/join", Some(body))
            .await
    }

    /// Joins and expects success; returns the join response.
    pub async fn joined(&self, enclave: &str, role: &str, name: &str) -> Result<Value> {
        let t = self
            .token(
                enclave,
                serde_json::json!({"role": role, "member_name": name}),
            )
            .await?;
        let (status, v) = self.join(&t).await?;
        if status != StatusCode::OK {
            bail!("join of {name} failed: {status} {v}");
        }
        Ok(v)
    }

    /// Long-polls the node's netmap.
    pub async fn poll(
        &self,
        node_token: &str,
        since: u64,
        timeout: u64,
    ) -> Result<(StatusCode, Value)> {
        let c = self.client(Some(node_token))?;
        self.call(
            &c,
            Method::GET,
            &format!("/api/v1/node/netmap?since={since}&timeout={timeout}"),
            None,
        )
        .await
    }
}

pub fn random_key() -> PublicKey {
    let mut k = overlay_controller::secret::random_key();
    k[0] |= 1;
    PublicKey::from_bytes(k)
}

/// Peer names in a netmap or join response's netmap.
pub fn peers(netmap: &Value) -> Vec<String> {
    let mut v: Vec<String> = netmap["peers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Polls `f` until it returns true or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, mut f: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if f().await? {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("condition not met within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs an `async fn(Db) -> Result<()>` against SQLite and PostgreSQL.
#[macro_export]
macro_rules! both {
    ($f:ident) => {
        mod $f {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() -> anyhow::Result<()> {
                super::$f($crate::common::Db::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() -> anyhow::Result<()> {
                super::$f($crate::common::Db::Postgres).await
            }
        }
    };
}
