//! Journaled appending: a record is written to this process's journal on
//! the caller's path and committed to SQLite by a writer thread behind it,
//! in batches, each batch with the journal's mark (see [`super::journal`]).
//!
//! The caller learns of a failed commit on its next append: while the
//! writer cannot commit, it keeps the records it holds, retries every
//! [`RETRY_AFTER`], and every new append is refused, so nothing goes on
//! unlogged. Records the writer still held when the process ended are
//! in the journal, and the next process to open the log folds them in.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::append::Appender;
use super::journal::Journal;
use super::{LogError, Record};

/// How long the writer waits before trying a failed commit again.
const RETRY_AFTER: Duration = Duration::from_millis(200);

/// The most records committed in one transaction.
const BATCH: usize = 512;

/// Journal bytes past which it is emptied once everything in it is
/// committed.
const RESET_AT: u64 = 1 << 20;

/// What the writer is asked to do.
enum Job {
    /// Commit journal entry `.1`.
    Record(Record, u64),
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
        let number = journal.as_mut().ok_or(LogError::Closed)?.write(&r)?;
        self.tx
            .send(Job::Record(r, number))
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
    /// transaction with the journal's mark, until closed.
    fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let mut pending: Vec<(Record, u64)> = vec![];
        let mut close = None;
        loop {
            if pending.is_empty() && close.is_none() {
                match rx.blocking_recv() {
                    Some(Job::Record(r, n)) => pending.push((r, n)),
                    Some(Job::Close(j, reply)) => close = Some((j, reply)),
                    None => return,
                }
            }
            while pending.len() < BATCH && close.is_none() {
                match rx.try_recv() {
                    Ok(Job::Record(r, n)) => pending.push((r, n)),
                    Ok(Job::Close(j, reply)) => close = Some((j, reply)),
                    Err(_) => break,
                }
            }
            if let Err(e) = self.commit(&pending) {
                tracing::error!(error = %e, "session log commit failed; appends refused until it succeeds");
                if let Some((_, reply)) = close.take() {
                    // The journal stays, locked until this process ends.
                    let _ = reply.send(Err(e));
                    return;
                }
                std::thread::sleep(RETRY_AFTER);
                continue;
            }
            pending.clear();
            if let Some((journal, reply)) = close.take() {
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
        }
    }

    /// Commits `pending` with the journal's mark, records whether it
    /// failed for the appending side, and empties the journal when it
    /// has grown and holds nothing uncommitted.
    fn commit(&mut self, pending: &[(Record, u64)]) -> Result<(), String> {
        let Some(&(_, last)) = pending.last() else {
            return Ok(());
        };
        let result = self
            .appender
            .append(pending.iter().map(|(r, _)| r), Some((&self.name, last)))
            .map_err(|e| e.to_string());
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = result.clone().err();
        result?;
        self.appender.catch_up();
        // Never wait for the lock: its holder may be waiting for room in
        // the queue this thread empties. The next batch tries again.
        if let Ok(mut journal) = self.journal.try_lock() {
            if let Some(j) = journal
                .as_mut()
                .filter(|j| j.len() > RESET_AT && j.last() == last)
            {
                if let Err(e) = j.reset() {
                    tracing::warn!(error = %e, "session log journal could not be emptied");
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::session_log::tests::rec;
    use crate::session_log::{verify, Appending, SessionLog};

    #[tokio::test]
    async fn the_journal_is_emptied_once_committed_instead_of_growing() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("log.db");
        let log = SessionLog::open_with(&path, Appending::Journaled)
            .await
            .expect("open");
        let journal = || {
            std::fs::read_dir(dir.path())
                .expect("dir")
                .filter_map(Result::ok)
                .find(|e| e.file_name().to_string_lossy().contains(".journal-"))
                .map(|e| e.metadata().expect("meta").len())
                .expect("journal")
        };
        let mut largest = 0;
        for i in 0..64 {
            let mut r = rec(i);
            r.body = bytes::Bytes::from(vec![b'a'; 64 << 10]);
            log.append(r).await.expect("append");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            largest = largest.max(journal());
        }
        // 4 MiB appended; emptied past 1 MiB once the writer caught up.
        assert!(largest < 2 << 20, "journal reached {largest} bytes");
        log.close().await.expect("close");
        assert_eq!(verify(log.pool()).await.expect("verify").records, 64);
    }
}
