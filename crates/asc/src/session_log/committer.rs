//! Journaled appending: a record is written to this process's journal on
//! the caller's path and committed to SQLite by a writer thread behind it,
//! in batches, each batch with the journal's mark (see [`super::journal`]).
//! The writer commits at most once per [`COMMIT_EVERY`] and at the lowest
//! CPU priority while it keeps up (see [`super::priority`]): the records
//! are durable once journaled, so the commit is bookkeeping that should
//! cost the conversation as little as possible.
//!
//! The caller learns of a failed commit on its next append: while the
//! writer cannot commit, it keeps the records it holds, retries every
//! [`RETRY_AFTER`], and every new append is refused, so nothing goes on
//! unlogged. Records the writer still held when the process ended are
//! in the journal, and the next process to open the log folds them in.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::append::Appender;
use super::journal::Journal;
use super::priority::Priority;
use super::{LogError, Record};

/// How long the writer waits before trying a failed commit again.
const RETRY_AFTER: Duration = Duration::from_millis(200);

/// The most records committed in one transaction.
const BATCH: usize = 512;

/// Journal bytes past which it is emptied once everything in it is
/// committed.
const RESET_AT: u64 = 1 << 20;

/// Attempts at the journal's lock before an emptying is put off.
const LOCK_TRIES: usize = 20;

/// The pause between two attempts at the journal's lock.
const LOCK_PAUSE: Duration = Duration::from_micros(50);

/// Records taken in one batch at or past which the writer counts as
/// behind and commits at normal priority.
const BEHIND: usize = 128;

/// Whether the writer idles while it keeps up (see [`super::priority`]).
/// Not in this crate's unit tests: they run many writers beside busy test
/// threads, where an idle writer is starved at random, and their journal
/// sizes and timings should not depend on that; the priority itself is
/// tested in its module.
const IDLE: bool = !cfg!(test);

/// The shortest time between the starts of two commits. Under a steady
/// stream of records the writer waits out the rest of it, so one commit
/// carries everything that came in meanwhile: most of a commit's cost is
/// per commit (WAL frames rewriting the same table and index pages, WAL
/// locks), and committing each record alone cost the `asc mcp-stdio`
/// wrapper more CPU than the conversation it logs (docs/PERFORMANCE.md,
/// MCP, session 11). The records are in the journal before this wait, so
/// it only delays when they show in `asc log`, not their durability.
const COMMIT_EVERY: Duration = Duration::from_millis(10);

/// What the writer is asked to do.
enum Job {
    /// Commit journal entry `.1`, which ends at byte `.2` of the journal.
    Record(Record, u64, u64),
    /// Answer once everything before is committed, then remove the
    /// journal and stop.
    Close(Journal, oneshot::Sender<Result<(), String>>),
}

/// Why commits fail, while they do.
type Failure = Arc<Mutex<Option<String>>>;

/// This process's journal; `None` once closed. Held across the hand-off
/// to the writer so entries reach it in the order of their numbers (the
/// mark is the last number of a batch).
type Shared = Arc<tokio::sync::Mutex<Option<Journal>>>;

/// The appending side, shared by every clone of the log.
pub struct Journaled {
    journal: Shared,
    tx: mpsc::Sender<Job>,
    failure: Failure,
}

impl Journaled {
    /// Starts the writer thread committing through `appender`.
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub fn start(appender: Appender, journal: Journal) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel(4 * BATCH);
        let failure = Failure::default();
        let name = journal.name().to_owned();
        let journal = Shared::new(tokio::sync::Mutex::new(Some(journal)));
        let writer = Writer {
            appender,
            name,
            failure: failure.clone(),
            journal: journal.clone(),
        };
        std::thread::Builder::new()
            .name("session-log".into())
            .spawn(move || writer.run(rx))?;
        Ok(Self {
            journal,
            tx,
            failure,
        })
    }

    fn failing(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Writes `r` to the journal and hands it to the writer.
    ///
    /// # Errors
    /// [`LogError::Write`] while commits fail, [`LogError::Io`] when the
    /// journal cannot be written, [`LogError::Closed`] after
    /// [`Journaled::close`].
    pub async fn append(&self, r: Record) -> Result<(), LogError> {
        if let Some(e) = self.failing() {
            return Err(LogError::Write(e));
        }
        let mut journal = self.journal.lock().await;
        let journal = journal.as_mut().ok_or(LogError::Closed)?;
        let number = journal.write(&r)?;
        self.tx
            .send(Job::Record(r, number, journal.len()))
            .await
            .map_err(|_| LogError::Closed)
    }

    /// Waits until every record appended is committed, then removes the
    /// journal; later appends fail. When the last commit fails the
    /// journal stays for the next process to fold in.
    ///
    /// # Errors
    /// [`LogError::Write`] when the records could not be committed.
    pub async fn close(&self) -> Result<(), LogError> {
        let Some(journal) = self.journal.lock().await.take() else {
            return Ok(());
        };
        let (reply, done) = oneshot::channel();
        self.tx
            .send(Job::Close(journal, reply))
            .await
            .map_err(|_| LogError::Closed)?;
        done.await
            .map_err(|_| LogError::Closed)?
            .map_err(LogError::Write)
    }
}

/// The writer thread's side.
struct Writer {
    appender: Appender,
    /// The journal's name, the key of its mark.
    name: String,
    failure: Failure,
    journal: Shared,
}

impl Writer {
    /// Commits what is waiting (up to [`BATCH`] records) in one
    /// transaction with the journal's mark, at most once per
    /// [`COMMIT_EVERY`] unless behind, until closed.
    fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let mut batch = Batch::default();
        let mut last_commit: Option<Instant> = None;
        let mut priority = Priority::new();
        loop {
            if batch.records.is_empty() && batch.close.is_none() {
                match rx.blocking_recv() {
                    Some(job) => batch.take(job),
                    None => return,
                }
            }
            // A full batch is a backlog: no waiting then.
            let wait = last_commit
                .filter(|_| batch.records.len() < BATCH)
                .and_then(|t| (t + COMMIT_EVERY).checked_duration_since(Instant::now()));
            if let (Some(wait), None) = (wait, &batch.close) {
                std::thread::sleep(wait);
            }
            batch.drain(&mut rx);
            priority.set(IDLE && batch.records.len() < BEHIND);
            last_commit = Some(Instant::now());
            if let Err(e) = self.commit(&batch.records) {
                tracing::error!(error = %e, "session log commit failed; appends refused until it succeeds");
                if let Some((_, reply)) = batch.close.take() {
                    // The journal's file stays for the next process to fold in.
                    let _ = reply.send(Err(e));
                    return;
                }
                std::thread::sleep(RETRY_AFTER);
                continue;
            }
            batch.records.clear();
            if let Some((journal, reply)) = batch.close.take() {
                let removed = journal
                    .remove()
                    .and_then(|()| {
                        self.appender
                            .forget(&self.name)
                            .map_err(std::io::Error::other)
                    })
                    .map_err(|e| e.to_string());
                let _ = reply.send(removed);
                return;
            }
            if batch.end > RESET_AT {
                // Never at SCHED_IDLE while holding a lock appends wait for.
                priority.set(false);
                batch.restart(&mut rx, &self.journal);
            }
        }
    }

    /// Commits `records` with the journal's mark and records whether it
    /// failed for the appending side.
    fn commit(&mut self, records: &[(Record, u64)]) -> Result<(), String> {
        let Some(&(_, last)) = records.last() else {
            return Ok(());
        };
        let result = self
            .appender
            .append(records.iter().map(|(r, _)| r), Some((&self.name, last)))
            .map_err(|e| e.to_string());
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = result.clone().err();
        result?;
        self.appender.catch_up();
        Ok(())
    }
}

/// What the writer gathered for its next commit.
#[derive(Default)]
struct Batch {
    records: Vec<(Record, u64)>,
    /// The journal's size after the newest record taken.
    end: u64,
    close: Option<(Journal, oneshot::Sender<Result<(), String>>)>,
}

impl Batch {
    fn take(&mut self, job: Job) {
        match job {
            Job::Record(r, n, end) => {
                self.records.push((r, n));
                self.end = end;
            }
            Job::Close(j, reply) => self.close = Some((j, reply)),
        }
    }

    /// Takes what is queued (up to [`BATCH`] records), stopping at a close.
    fn drain(&mut self, rx: &mut mpsc::Receiver<Job>) {
        while self.records.len() < BATCH && self.close.is_none() {
            match rx.try_recv() {
                Ok(job) => self.take(job),
                Err(_) => break,
            }
        }
    }

    /// Empties the journal, keeping the entries not committed yet. Under
    /// its lock nothing new is journaled and every entry journaled before
    /// is queued (the appender sends under the lock), so once the queue is
    /// drained, the records taken since the last commit are all that the
    /// journal holds uncommitted; they stay taken, for the next commit. The
    /// lock is held for file writes only, never a commit, and taken only
    /// when free: its holder may be waiting for room in the queue, which
    /// draining makes. After [`LOCK_TRIES`] the next commit tries again.
    fn restart(&mut self, rx: &mut mpsc::Receiver<Job>, shared: &Shared) {
        for _ in 0..LOCK_TRIES {
            self.drain(rx);
            if let Ok(mut held) = shared.try_lock() {
                self.drain(rx);
                // A full batch may have left entries queued.
                if self.records.len() >= BATCH {
                    return;
                }
                if let Some(j) = held.as_mut() {
                    match j.restart(&self.records) {
                        Ok(()) => self.end = j.len(),
                        Err(e) => {
                            tracing::warn!(error = %e, "session log journal could not be emptied");
                        }
                    }
                }
                return;
            }
            std::thread::sleep(LOCK_PAUSE);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::session_log::tests::rec;
    use crate::session_log::{verify, Appending, SessionLog};

    /// The size of the one journal in `dir`.
    fn journal_len(dir: &std::path::Path) -> u64 {
        std::fs::read_dir(dir)
            .expect("dir")
            .filter_map(Result::ok)
            .find(|e| e.file_name().to_string_lossy().contains(".journal-"))
            .map(|e| e.metadata().expect("meta").len())
            .expect("journal")
    }

    /// Appends `n` records of 64 KiB, `gap` apart; returns the largest
    /// size the journal reached; the log is closed and verified.
    async fn stream(n: usize, gap: std::time::Duration) -> u64 {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("log.db");
        let log = SessionLog::open_with(&path, Appending::Journaled)
            .await
            .expect("open");
        let mut largest = 0;
        for i in 0..n {
            let mut r = rec(i);
            r.body = bytes::Bytes::from(vec![b'a'; 64 << 10]);
            log.append(r).await.expect("append");
            // The writer is a thread of its own: blocking here is fine.
            std::thread::sleep(gap);
            largest = largest.max(journal_len(dir.path()));
        }
        log.close().await.expect("close");
        let records = verify(log.pool()).await.expect("verify").records;
        assert_eq!(usize::try_from(records).ok(), Some(n));
        largest
    }

    #[tokio::test]
    async fn the_journal_is_emptied_once_committed_instead_of_growing() {
        // 4 MiB appended in pauses longer than a commit's wait.
        let largest = stream(64, std::time::Duration::from_millis(15)).await;
        assert!(largest < 2 << 20, "journal reached {largest} bytes");
    }

    #[tokio::test]
    async fn a_steady_stream_empties_the_journal_too() {
        // 19 MiB appended with no pause as long as a commit: the writer
        // never finds the journal all committed by itself.
        let largest = stream(300, std::time::Duration::from_micros(300)).await;
        assert!(largest < 4 << 20, "journal reached {largest} bytes");
    }
}
