//! Appending to the session log: one synchronous SQLite connection that
//! chains a batch of records onto the newest one and commits them in one
//! immediate transaction.
//!
//! The head is read inside the transaction, so another process appending
//! to the same file (`asc serve` and `asc mcp-stdio` share it) is simply
//! chained after: the write lock orders the two.

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{body_text, chain_hash, Record, BUSY_TIMEOUT, CONNECTION_PRAGMAS, GENESIS};

const INSERT: &str = "INSERT INTO records (seq, exchange, kind, at_ms, agent, enclave, \
    provider, operation, model, decision, body, detail, prev, hash) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

const HEAD: &str = "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1";

const MARK: &str = "INSERT INTO journal_marks (journal, committed) VALUES (?1, ?2) \
    ON CONFLICT (journal) DO UPDATE SET committed = excluded.committed";

/// A journal's name and the number of its last entry among the records
/// being appended, committed with them (see [`super::journal`]).
pub type Mark<'a> = (&'a str, u64);

/// The appending connection.
pub struct Appender {
    conn: Connection,
    /// Raised by the background checkpoint when the WAL has grown past
    /// its catch-up size (see [`super::checkpoint`]).
    catch_up: Arc<AtomicBool>,
}

/// Runs a pragma that may or may not answer with a row.
fn pragma(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.query_row(sql, [], |_| Ok(())).optional().map(|_| ())
}

impl Appender {
    /// Opens the existing log database at `path` (its schema already made)
    /// for appending; `catch_up` is raised when a checkpoint needs it.
    ///
    /// # Errors
    /// When SQLite cannot open it.
    pub fn open(path: &Path, catch_up: Arc<AtomicBool>) -> rusqlite::Result<Self> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        for (key, value) in CONNECTION_PRAGMAS {
            pragma(&conn, &format!("PRAGMA {key} = {value}"))?;
        }
        Ok(Self { conn, catch_up })
    }

    /// When the background checkpoint asked for it, copies what it left
    /// (the frames appended since it began) with a PASSIVE checkpoint on
    /// this connection, so the next append starts the WAL over. Called
    /// after a commit; a failure is logged only (the records are
    /// committed).
    pub fn catch_up(&self) {
        if !self.catch_up.swap(false, Ordering::AcqRel) {
            return;
        }
        if let Err(e) = pragma(&self.conn, "PRAGMA wal_checkpoint(PASSIVE)") {
            tracing::warn!(error = %e, "session log checkpoint failed");
        }
    }

    /// Chains `records` after the newest record and commits them together,
    /// with `mark` when they come from a journal. Nothing is written when
    /// it fails.
    ///
    /// # Errors
    /// When SQLite fails (the transaction is rolled back).
    pub fn append<'a>(
        &mut self,
        records: impl IntoIterator<Item = &'a Record>,
        mark: Option<Mark<'_>>,
    ) -> rusqlite::Result<()> {
        // Cached statements throughout: parsing BEGIN, COMMIT and the head
        // query on every append cost more than the inserts.
        self.conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        let result = self.insert(records).and_then(|()| {
            if let Some((journal, last)) = mark {
                self.conn
                    .prepare_cached(MARK)?
                    .execute(params![journal, last as i64])?;
            }
            self.conn.prepare_cached("COMMIT")?.execute([])?;
            Ok(())
        });
        if result.is_err() && !self.conn.is_autocommit() {
            if let Err(e) = self.conn.execute_batch("ROLLBACK") {
                tracing::error!(error = %e, "session log rollback failed");
            }
        }
        result
    }

    /// The number of the last entry of `journal` committed (0 for none).
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn committed(&self, journal: &str) -> rusqlite::Result<u64> {
        let n: Option<i64> = self
            .conn
            .query_row(
                "SELECT committed FROM journal_marks WHERE journal = ?1",
                [journal],
                |r| r.get(0),
            )
            .optional()?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }

    /// Drops the mark of a journal that is gone.
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn forget(&self, journal: &str) -> rusqlite::Result<()> {
        self.conn
            .execute("DELETE FROM journal_marks WHERE journal = ?1", [journal])
            .map(|_| ())
    }

    /// The inserts of [`Appender::append`], inside its transaction.
    fn insert<'a>(&self, records: impl IntoIterator<Item = &'a Record>) -> rusqlite::Result<()> {
        let head: Option<(i64, String)> = self
            .conn
            .prepare_cached(HEAD)?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let (mut seq, mut prev) = head.unwrap_or((0, GENESIS.to_owned()));
        let mut insert = self.conn.prepare_cached(INSERT)?;
        for r in records {
            seq += 1;
            let detail = r.detail.to_string();
            let hash = chain_hash(&prev, seq, r, &detail);
            insert.execute(params![
                seq,
                r.exchange,
                r.kind.as_str(),
                r.at_ms,
                r.agent,
                r.enclave,
                r.provider,
                r.operation,
                r.model,
                r.decision,
                body_text(&r.body),
                detail,
                prev,
                hash,
            ])?;
            prev = hash;
        }
        Ok(())
    }
}
