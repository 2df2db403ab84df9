//! The on-premises session log: every exchange's request and response
//! (redacted where policy redacted), decision, findings, tool calls, usage
//! and timings, in SQLite, each record hash-chained to the one before.
//!
//! Records are committed by one synchronous SQLite connection on a writer
//! thread, one transaction per batch, so a record is either whole or
//! absent. Either the caller waits for the commit (`asc serve`: the writer
//! takes concurrent appends in batches), or the record is first written
//! to this process's journal and the caller goes on while the writer
//! commits behind it (`asc mcp-stdio`: one conversation, where waiting for
//! each commit was most of the wrapper's added latency). Either way a
//! request record is as durable as a commit before the request is
//! forwarded.

mod append;
mod checkpoint;
mod committer;
mod journal;
mod priority;
mod recover;

use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::Row;
use tokio::sync::{mpsc, oneshot};

/// What a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordKind {
    /// The request as forwarded (or refused).
    Request,
    /// The response as delivered (or the denial sent instead).
    Response,
}

impl RecordKind {
    fn as_str(self) -> &'static str {
        match self {
            RecordKind::Request => "request",
            RecordKind::Response => "response",
        }
    }
}

/// One record to append.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// Exchange id (shared by its request and response records).
    pub exchange: String,
    /// Request or response.
    pub kind: RecordKind,
    /// Unix milliseconds.
    pub at_ms: i64,
    /// The agent (or `unknown`).
    pub agent: String,
    /// The enclave.
    pub enclave: String,
    /// Provider or MCP server.
    pub provider: String,
    /// Operation.
    pub operation: String,
    /// Model (or tool).
    pub model: String,
    /// `forwarded`, `redacted`, `blocked`, `error`…
    pub decision: String,
    /// The body (request or response; redacted text where policy redacted).
    #[serde(serialize_with = "as_text")]
    pub body: Bytes,
    /// Findings, tool calls, usage, timings, reasons (JSON).
    pub detail: serde_json::Value,
}

fn as_text<S: Serializer>(b: &Bytes, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&body_text(b))
}

/// A record body as text: borrowed when it is valid UTF-8 (checked with
/// the standard library's word-at-a-time validation, several times faster
/// on large bodies than `from_utf8_lossy`'s scan), replacement characters
/// otherwise.
pub(crate) fn body_text(b: &[u8]) -> std::borrow::Cow<'_, str> {
    std::str::from_utf8(b).map_or_else(|_| String::from_utf8_lossy(b), std::borrow::Cow::Borrowed)
}

/// A stored record.
#[derive(Debug, Clone, Serialize)]
pub struct Stored {
    /// Position in the chain.
    pub seq: i64,
    /// The record.
    #[serde(flatten)]
    pub record: Record,
    /// This record's hash.
    pub hash: String,
}

/// Why the log failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The database failed.
    #[error("session log database: {0}")]
    Db(#[from] sqlx::Error),
    /// The writer is gone (shutting down).
    #[error("session log writer stopped")]
    Closed,
    /// A record could not be committed.
    #[error("session log write: {0}")]
    Write(String),
    /// Setting the file mode failed.
    #[error("session log file: {0}")]
    Io(#[from] std::io::Error),
}

type Job = (Record, oneshot::Sender<Result<(), String>>);

/// How an append reaches the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appending {
    /// The caller waits while a writer thread commits concurrent appends
    /// in batches.
    Batched,
    /// The caller waits for one write to this process's journal; a writer
    /// thread commits behind it (the journal is one file per process beside
    /// the database; whatever a process left in it is committed by the next
    /// one to open the log).
    Journaled,
}

#[derive(Clone)]
enum Writer {
    Thread(mpsc::Sender<Job>),
    Journaled(Arc<committer::Journaled>),
}

/// The log.
#[derive(Clone)]
pub struct SessionLog {
    pool: SqlitePool,
    writer: Writer,
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    exchange TEXT NOT NULL,
    kind TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    agent TEXT NOT NULL,
    enclave TEXT NOT NULL,
    provider TEXT NOT NULL,
    operation TEXT NOT NULL,
    model TEXT NOT NULL,
    decision TEXT NOT NULL,
    body TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_exchange ON records(exchange);
CREATE TABLE IF NOT EXISTS journal_marks (
    journal TEXT PRIMARY KEY,
    committed INTEGER NOT NULL
);";

/// The chain hash of `r` (its `detail` serialised as `detail`) after
/// `prev`: SHA-256 over `prev` and every field, each length-prefixed.
pub fn chain_hash(prev: &str, seq: i64, r: &Record, detail: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(seq.to_le_bytes());
    h.update(r.at_ms.to_le_bytes());
    for f in r.fields(detail) {
        h.update((f.len() as u64).to_le_bytes());
        h.update(f);
    }
    hex::encode(h.finalize())
}

impl Record {
    /// Every field but the time, in the order the chain hash and the
    /// journal take them, with `detail` serialised.
    fn fields<'a>(&'a self, detail: &'a str) -> [&'a [u8]; 10] {
        [
            self.exchange.as_bytes(),
            self.kind.as_str().as_bytes(),
            self.agent.as_bytes(),
            self.enclave.as_bytes(),
            self.provider.as_bytes(),
            self.operation.as_bytes(),
            self.model.as_bytes(),
            self.decision.as_bytes(),
            &self.body,
            detail.as_bytes(),
        ]
    }
}

/// The hash before the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The settings of every connection to the log, the pool's and the
/// appender's: WAL, commits not synced (checkpoints are), no automatic
/// checkpoint inside a commit that requests wait for ([`checkpoint`] runs
/// them), and the WAL trimmed when it starts over.
const CONNECTION_PRAGMAS: [(&str, &str); 4] = [
    ("journal_mode", "WAL"),
    ("synchronous", "NORMAL"),
    ("wal_autocheckpoint", "0"),
    ("journal_size_limit", checkpoint::WAL_SIZE_LIMIT),
];

/// How long a connection waits for another one's write lock.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Makes the log's tables and index where they are missing.
async fn create_schema(pool: &SqlitePool) -> Result<(), LogError> {
    for stmt in SCHEMA.split(';').filter(|s| !s.trim().is_empty()) {
        sqlx::query(stmt).execute(pool).await?;
    }
    Ok(())
}

async fn open_pool(path: &Path, create: bool) -> Result<SqlitePool, LogError> {
    let opts = CONNECTION_PRAGMAS.iter().fold(
        SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(create)
            .busy_timeout(BUSY_TIMEOUT),
        |o, (k, v)| o.pragma(*k, *v),
    );
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        // A local file does not drop connections: no ping before each use
        // (a round trip to the database thread on every append).
        .test_before_acquire(false)
        .connect_with(opts)
        .await?;
    Ok(pool)
}

fn kind_of(s: &str) -> RecordKind {
    if s == "request" {
        RecordKind::Request
    } else {
        RecordKind::Response
    }
}

fn row_to_stored(row: &sqlx::sqlite::SqliteRow) -> Result<(Stored, String), sqlx::Error> {
    let detail: String = row.try_get("detail")?;
    let kind: String = row.try_get("kind")?;
    Ok((
        Stored {
            seq: row.try_get("seq")?,
            record: Record {
                exchange: row.try_get("exchange")?,
                kind: kind_of(&kind),
                at_ms: row.try_get("at_ms")?,
                agent: row.try_get("agent")?,
                enclave: row.try_get("enclave")?,
                provider: row.try_get("provider")?,
                operation: row.try_get("operation")?,
                model: row.try_get("model")?,
                decision: row.try_get("decision")?,
                body: Bytes::from(row.try_get::<String, _>("body")?),
                detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail)),
            },
            hash: row.try_get("hash")?,
        },
        row.try_get("prev")?,
    ))
}

/// The writer thread: commits whatever appends are waiting (up to 512) in
/// one transaction, until every sender is gone.
fn write_batches(mut appender: append::Appender, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < 512 {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let result = appender
            .append(jobs.iter().map(|(r, _)| r), None)
            .map_err(|e| e.to_string());
        for (_, reply) in jobs {
            let _ = reply.send(result.clone());
        }
        appender.catch_up();
    }
}

impl Record {
    /// `request` or `response`.
    pub fn kind_str(&self) -> &'static str {
        self.kind.as_str()
    }
}

impl SessionLog {
    /// Opens (creating, mode 0600) the log at `path` with a batching
    /// writer thread.
    ///
    /// # Errors
    /// [`LogError`] when the database cannot be opened.
    pub async fn open(path: &Path) -> Result<Self, LogError> {
        Self::open_with(path, Appending::Batched).await
    }

    /// Opens (creating, mode 0600) the log at `path`, committing as
    /// `appending` says.
    ///
    /// # Errors
    /// [`LogError`] when the database cannot be opened.
    pub async fn open_with(path: &Path, appending: Appending) -> Result<Self, LogError> {
        use std::os::unix::fs::PermissionsExt;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        if !path.exists() {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        let pool = open_pool(path, true).await?;
        create_schema(&pool).await?;
        let catch_up = Arc::new(AtomicBool::new(false));
        let mut appender = append::Appender::open(path, catch_up.clone())
            .map_err(|e| LogError::Write(e.to_string()))?;
        recover::fold(&mut appender, path)?;
        checkpoint::spawn(pool.clone(), catch_up);
        let writer = match appending {
            Appending::Journaled => Writer::Journaled(Arc::new(committer::Journaled::start(
                appender,
                journal::Journal::create(path)?,
            )?)),
            Appending::Batched => {
                let (tx, rx) = mpsc::channel::<Job>(4096);
                std::thread::Builder::new()
                    .name("session-log".into())
                    .spawn(move || write_batches(appender, rx))?;
                Writer::Thread(tx)
            }
        };
        Ok(Self { pool, writer })
    }

    /// Opens an existing log for reading (`asc log …`), first folding in
    /// what processes that ended left in their journals.
    ///
    /// # Errors
    /// [`LogError`] when it cannot be opened.
    pub async fn open_read(path: &Path) -> Result<SqlitePool, LogError> {
        let pool = open_pool(path, false).await?;
        if journal::has_any(path)? {
            create_schema(&pool).await?;
            let mut appender = append::Appender::open(path, Arc::default())
                .map_err(|e| LogError::Write(e.to_string()))?;
            recover::fold(&mut appender, path)?;
        }
        Ok(pool)
    }

    /// Appends `r`; returns once it is committed, or journaled (see
    /// [`Appending`]).
    ///
    /// # Errors
    /// [`LogError`] when it could not be written: the caller must not
    /// forward what it could not log.
    pub async fn append(&self, r: Record) -> Result<(), LogError> {
        let result = match &self.writer {
            Writer::Journaled(j) => j.append(r).await,
            Writer::Thread(tx) => {
                let (reply, rx) = oneshot::channel();
                tx.send((r, reply)).await.map_err(|_| LogError::Closed)?;
                let committed = rx.await.map_err(|_| LogError::Closed)?;
                committed.map_err(LogError::Write)
            }
        };
        result.inspect_err(|e| tracing::error!(error = %e, "session log write failed"))
    }

    /// Waits until everything appended is committed and, for a journaled
    /// log, removes the journal; later appends fail. A journaled log whose
    /// last commit failed keeps its journal for the next process.
    ///
    /// # Errors
    /// [`LogError`] when the last records could not be committed.
    pub async fn close(&self) -> Result<(), LogError> {
        match &self.writer {
            Writer::Journaled(j) => j.close().await,
            // Each batched append returned after its commit.
            Writer::Thread(_) => Ok(()),
        }
    }

    /// The pool, for queries.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

fn records(rows: &[sqlx::sqlite::SqliteRow]) -> Result<Vec<Stored>, LogError> {
    Ok(rows
        .iter()
        .map(|r| row_to_stored(r).map(|(s, _)| s))
        .collect::<Result<_, _>>()?)
}

/// The last `n` records, oldest first.
///
/// # Errors
/// [`LogError::Db`].
pub async fn tail(pool: &SqlitePool, n: i64) -> Result<Vec<Stored>, LogError> {
    let rows =
        sqlx::query("SELECT * FROM (SELECT * FROM records ORDER BY seq DESC LIMIT ?) ORDER BY seq")
            .bind(n)
            .fetch_all(pool)
            .await?;
    records(&rows)
}

/// The records of one exchange.
///
/// # Errors
/// [`LogError::Db`].
pub async fn show(pool: &SqlitePool, exchange: &str) -> Result<Vec<Stored>, LogError> {
    let rows = sqlx::query("SELECT * FROM records WHERE exchange = ? ORDER BY seq")
        .bind(exchange)
        .fetch_all(pool)
        .await?;
    records(&rows)
}

/// The outcome of a chain check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Records checked.
    pub records: i64,
    /// The first record whose hash or link is wrong, if any.
    pub broken_at: Option<i64>,
}

/// Recomputes the whole chain.
///
/// # Errors
/// [`LogError::Db`].
pub async fn verify(pool: &SqlitePool) -> Result<Verification, LogError> {
    use futures_util::TryStreamExt;
    let mut rows = sqlx::query("SELECT * FROM records ORDER BY seq").fetch(pool);
    let mut prev = GENESIS.to_owned();
    let mut count = 0;
    let mut broken_at = None;
    while let Some(row) = rows.try_next().await? {
        count += 1;
        if broken_at.is_some() {
            continue;
        }
        let (s, stored_prev) = row_to_stored(&row)?;
        let detail: String = row.try_get("detail")?;
        if s.seq != count
            || stored_prev != prev
            || chain_hash(&prev, s.seq, &s.record, &detail) != s.hash
        {
            broken_at = Some(s.seq);
        }
        prev = s.hash;
    }
    Ok(Verification {
        records: count,
        broken_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_stored_as_text_borrowed_when_valid_replaced_when_not() {
        let valid = "prompt é ✓".repeat(1000);
        assert!(matches!(body_text(valid.as_bytes()), std::borrow::Cow::Borrowed(t) if t == valid));
        let mut broken = b"abc".to_vec();
        broken.extend_from_slice(&[0xff, 0xc3]);
        broken.extend_from_slice(b"def");
        assert_eq!(body_text(&broken), "abc\u{fffd}\u{fffd}def");
    }

    pub(super) fn rec(i: usize) -> Record {
        Record {
            exchange: format!("x{i}"),
            kind: RecordKind::Request,
            at_ms: i as i64,
            agent: "a".into(),
            enclave: "e".into(),
            provider: "openai".into(),
            operation: "chat.completions".into(),
            model: "m".into(),
            decision: "forwarded".into(),
            body: Bytes::from(format!("{{\"n\":{i}}}")),
            detail: serde_json::json!({"i": i}),
        }
    }

    #[tokio::test]
    async fn two_writers_on_one_file_keep_one_chain() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("log.db");
        // `asc serve` (batched) and `asc mcp-stdio` (journaled) on one file.
        let a = SessionLog::open(&path).await.expect("open a");
        let b = SessionLog::open_with(&path, Appending::Journaled)
            .await
            .expect("open b");
        for i in 0..20 {
            let w = if i % 3 == 0 { &a } else { &b };
            w.append(rec(i)).await.expect("append");
        }
        b.close().await.expect("close b");
        assert!(!journal::has_any(&path).expect("scan"), "journal left");
        let v = verify(a.pool()).await.expect("verify");
        assert_eq!((v.records, v.broken_at), (20, None), "{v:?}");
    }

    /// A trigger that refuses every insert stands in for a full disk.
    async fn refuse_inserts(log: &SessionLog, refuse: bool) {
        let sql = if refuse {
            "CREATE TRIGGER refuse BEFORE INSERT ON records BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        } else {
            "DROP TRIGGER refuse"
        };
        sqlx::query(sql).execute(log.pool()).await.expect("trigger");
    }

    #[tokio::test]
    async fn a_record_that_cannot_be_committed_is_an_error() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("log.db");
        let log = SessionLog::open(&path).await.expect("open");
        log.append(rec(1)).await.expect("append");
        refuse_inserts(&log, true).await;
        let err = log.append(rec(2)).await.expect_err("must fail");
        assert!(err.to_string().contains("disk full"), "{err}");
        refuse_inserts(&log, false).await;
        // Nothing half-written; the writer goes on after the failure.
        log.append(rec(3)).await.expect("append after failure");
        let v = verify(log.pool()).await.expect("verify");
        assert_eq!((v.records, v.broken_at), (2, None));
    }

    /// Appends until one is refused or `tries` ran out; returns how many
    /// were taken.
    async fn append_until_refused(log: &SessionLog, tries: usize) -> (usize, Option<LogError>) {
        for taken in 0..tries {
            if let Err(e) = log.append(rec(100 + taken)).await {
                return (taken, Some(e));
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        (tries, None)
    }

    #[tokio::test]
    async fn while_journaled_commits_fail_appends_are_refused_and_nothing_is_lost() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("log.db");
        let log = SessionLog::open_with(&path, Appending::Journaled)
            .await
            .expect("open");
        log.append(rec(1)).await.expect("append");
        refuse_inserts(&log, true).await;
        // Taken into the journal; its commit fails behind the caller, and
        // from then on appends are refused.
        log.append(rec(2)).await.expect("journaled");
        let (taken, refused) = append_until_refused(&log, 300).await;
        let err = refused.expect("appends must be refused while commits fail");
        assert!(err.to_string().contains("disk full"), "{err}");
        refuse_inserts(&log, false).await;
        // The writer retries; appends are taken again once it succeeded.
        let mut later = 0;
        for _ in 0..300 {
            if log.append(rec(500)).await.is_ok() {
                later += 1;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(later, 1, "appends still refused after the disk came back");
        log.close().await.expect("close");
        // Every append that was taken is committed, in one chain.
        let v = verify(log.pool()).await.expect("verify");
        assert_eq!((v.records, v.broken_at), ((2 + taken + later) as i64, None));
        assert!(!journal::has_any(&path).expect("scan"));
    }

    #[tokio::test]
    async fn chain_appends_verifies_and_detects_tampering() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("log.db");
        let log = SessionLog::open(&path).await.expect("open");
        let mut handles = vec![];
        for i in 0..50 {
            let l = log.clone();
            handles.push(tokio::spawn(async move { l.append(rec(i)).await }));
        }
        for h in handles {
            h.await.expect("join").expect("append");
        }
        let v = verify(log.pool()).await.expect("verify");
        assert_eq!(
            v,
            Verification {
                records: 50,
                broken_at: None
            }
        );
        assert_eq!(show(log.pool(), "x7").await.expect("show").len(), 1);
        assert_eq!(tail(log.pool(), 5).await.expect("tail").len(), 5);
        drop(log);
        // Reopen: the chain continues.
        let log = SessionLog::open(&path).await.expect("reopen");
        log.append(rec(99)).await.expect("append");
        assert_eq!(verify(log.pool()).await.expect("verify").broken_at, None);
        sqlx::query("UPDATE records SET body = 'edited' WHERE seq = 20")
            .execute(log.pool())
            .await
            .expect("tamper");
        assert_eq!(
            verify(log.pool()).await.expect("verify").broken_at,
            Some(20)
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
