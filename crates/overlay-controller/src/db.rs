//! Storage: one sqlx `Any` pool over an SQLite file or a PostgreSQL database,
//! migrations for both, and serialized write transactions.
//!
//! Every write goes through [`Store::begin_write`], which takes a process-wide
//! lock and, on PostgreSQL, a transaction-scoped advisory lock, so writes from
//! several controller replicas are applied one at a time. That total order is
//! what keeps enclave versions, the change log and the audit chain gap-free.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyConnection, AnyPool, Connection, Executor, Transaction};
use tokio::sync::{Mutex, MutexGuard, Semaphore, SemaphorePermit};

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file (single controller).
    Sqlite,
    /// PostgreSQL (one or more controller replicas).
    Postgres,
}

/// Why storage failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed a query.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A migration failed.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The URL names neither `sqlite:` nor `postgres:`.
    #[error("unsupported database URL (expected sqlite:… or postgres://…)")]
    Url,
    /// More than [`WRITE_QUEUE`] writes are already running or waiting.
    #[error("too many writes waiting")]
    Busy,
}

/// Writes that may run or wait at once; one more is refused at once
/// ([`StoreError::Busy`], answered 503) instead of queueing without bound.
pub const WRITE_QUEUE: usize = 64;

impl StoreError {
    /// Whether this is contention, not a fault: no pooled connection came
    /// free in time, or SQLite stayed busy or locked past its timeout. The
    /// request may be retried.
    pub fn is_overload(&self) -> bool {
        match self {
            StoreError::Busy | StoreError::Db(sqlx::Error::PoolTimedOut) => true,
            StoreError::Db(sqlx::Error::Database(e)) => {
                // SQLITE_BUSY (5), SQLITE_LOCKED (6) and their extended codes.
                e.code()
                    .and_then(|c| c.parse::<i64>().ok())
                    .is_some_and(|c| matches!(c & 0xff, 5 | 6))
                    && e.message().contains("locked")
            }
            _ => false,
        }
    }
}

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Pool options for `backend` with at most `max` connections.
fn pool_options(backend: Backend, max: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    conn.execute(
                        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; \
                         PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON;",
                    )
                    .await?;
                }
                Ok(())
            })
        })
}

/// Arbitrary constant naming Cordon's advisory lock on PostgreSQL.
const PG_WRITE_LOCK: i64 = 0x636f_7264_6f6e;

/// The database: a pool for reads and one connection for serialized writes.
pub struct Store {
    pool: AnyPool,
    writer: AnyPool,
    backend: Backend,
    url: String,
    write_lock: Mutex<()>,
    write_queue: Semaphore,
}

/// A write transaction holding the write lock until commit or drop.
pub struct WriteTx<'a> {
    _guard: MutexGuard<'a, ()>,
    _slot: SemaphorePermit<'a>,
    /// The transaction; run queries on `&mut *tx.tx`.
    pub tx: Transaction<'static, Any>,
}

impl WriteTx<'_> {
    /// Commits and releases the lock.
    ///
    /// # Errors
    /// The database error if the commit fails (nothing was written).
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }
}

impl Store {
    /// The SQLite URL for `data_dir/controller.db`.
    pub fn sqlite_url(data_dir: &Path) -> String {
        format!(
            "sqlite://{}?mode=rwc",
            data_dir.join("controller.db").display()
        )
    }

    /// Opens (creating if needed) and migrates the database at `url`.
    ///
    /// # Errors
    /// [`StoreError`] if it cannot connect or migrate.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Url);
        };
        let opts = AnyConnectOptions::from_str(url)?;
        let readers = if backend == Backend::Sqlite { 4 } else { 16 };
        let pool = pool_options(backend, readers)
            .connect_with(opts.clone())
            .await?;
        let migrator = match backend {
            Backend::Sqlite => &SQLITE,
            Backend::Postgres => &POSTGRES,
        };
        if backend == Backend::Postgres {
            // Two replicas starting together must not both migrate.
            let mut conn = pool.acquire().await?;
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(PG_WRITE_LOCK)
                .execute(&mut *conn)
                .await?;
            let res = migrator.run(&mut *conn).await;
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(PG_WRITE_LOCK)
                .execute(&mut *conn)
                .await?;
            res?;
        } else {
            migrator.run(&pool).await?;
        }
        // Writes are serialized anyway: they get their own connection, so
        // a join or a removal never queues behind a crowd of long-polls
        // waiting for a reader.
        let writer = pool_options(backend, 1).connect_with(opts).await?;
        Ok(Self {
            pool,
            writer,
            backend,
            url: url.to_owned(),
            write_lock: Mutex::new(()),
            write_queue: Semaphore::new(WRITE_QUEUE),
        })
    }

    /// The pool, for reads.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL it was opened with (for the PostgreSQL listener).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Begins a serialized write transaction.
    ///
    /// # Errors
    /// The database error if it cannot begin or lock.
    pub async fn begin_write(&self) -> Result<WriteTx<'_>, StoreError> {
        let slot = self
            .write_queue
            .try_acquire()
            .map_err(|_| StoreError::Busy)?;
        let guard = self.write_lock.lock().await;
        // On SQLite the write lock is taken at BEGIN: a deferred transaction
        // that read first could not upgrade after a write outside this lock
        // (a node's `last_seen`) committed (SQLITE_BUSY_SNAPSHOT), and the
        // busy timeout would not help.
        let mut tx = match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.writer.begin().await?,
        };
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(PG_WRITE_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        Ok(WriteTx {
            _guard: guard,
            _slot: slot,
            tx,
        })
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }
}

/// Reads a setting.
///
/// # Errors
/// The database error.
pub async fn get_setting(
    conn: &mut AnyConnection,
    key: &str,
) -> Result<Option<String>, StoreError> {
    let v: Option<(String,)> = sqlx::query_as("SELECT value FROM settings WHERE key = $1")
        .bind(key)
        .fetch_optional(conn)
        .await?;
    Ok(v.map(|(v,)| v))
}

/// Writes a setting (insert or replace).
///
/// # Errors
/// The database error.
pub async fn put_setting(
    conn: &mut AnyConnection,
    key: &str,
    value: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO settings (key, value) VALUES ($1, $2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(key)
    .bind(value)
    .execute(conn)
    .await?;
    Ok(())
}

/// Opens a single connection (for `audit verify`, which must not migrate).
///
/// # Errors
/// The database error.
pub async fn connect_once(url: &str) -> Result<AnyConnection, StoreError> {
    sqlx::any::install_default_drivers();
    Ok(AnyConnection::connect(url).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_beyond_the_queue_are_refused_at_once() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|_| StoreError::Url)?;
        let store = Store::open(&Store::sqlite_url(dir.path())).await?;
        let first = store.begin_write().await?;
        // The others wait for the lock; hold their places in the queue.
        let waiting: Vec<_> = (1..WRITE_QUEUE)
            .map(|_| Box::pin(store.begin_write()))
            .collect();
        let mut waiting = waiting;
        for w in &mut waiting {
            // Poll once so each takes its slot, then leave it waiting.
            assert!(futures_poll_once(w.as_mut()).await.is_none());
        }
        assert!(matches!(store.begin_write().await, Err(StoreError::Busy)));
        drop(waiting);
        first.commit().await?;
        // The queue is free again.
        store.begin_write().await?.commit().await?;
        Ok(())
    }

    /// Polls a future once: `Some` if it finished.
    async fn futures_poll_once<F: std::future::Future + Unpin>(f: F) -> Option<F::Output> {
        let mut f = f;
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut f).poll(cx) {
                std::task::Poll::Ready(v) => Some(v),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }
}
