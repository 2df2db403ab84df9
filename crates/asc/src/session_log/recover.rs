//! Folding in the journals of processes that ended before their writer
//! committed everything they had journaled (see [`super::journal`]).

use std::path::Path;

use super::append::Appender;
use super::journal;
use super::LogError;

/// Commits, through `appender`, the entries of every orphaned journal of
/// the log at `db` that its mark says were not committed, then removes
/// the journal; returns how many records were folded in.
///
/// A crash between the commit and the removal leaves a journal whose mark
/// says everything is committed: the next recovery removes it.
///
/// # Errors
/// When a journal cannot be read or removed, or SQLite fails.
pub fn fold(appender: &mut Appender, db: &Path) -> Result<usize, LogError> {
    let sql = |e: rusqlite::Error| LogError::Write(e.to_string());
    let mut folded = 0;
    for orphan in journal::orphans(db)? {
        let done = appender.committed(&orphan.name).map_err(sql)?;
        let entries: Vec<_> = orphan
            .entries()?
            .into_iter()
            .filter(|(n, _)| *n > done)
            .collect();
        if let Some(&(last, _)) = entries.last() {
            appender
                .append(entries.iter().map(|(_, r)| r), Some((&orphan.name, last)))
                .map_err(sql)?;
            tracing::warn!(
                journal = orphan.name,
                records = entries.len(),
                "session log: records journaled by a process that ended are now committed"
            );
        }
        let name = orphan.name.clone();
        orphan.remove()?;
        appender.forget(&name).map_err(sql)?;
        folded += entries.len();
    }
    Ok(folded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session_log::journal::{has_any, Journal};
    use crate::session_log::tests::rec;
    use crate::session_log::{show, verify, Appending, SessionLog};
    use std::sync::Arc;

    #[tokio::test]
    async fn what_an_ended_process_journaled_is_committed_once_by_the_next() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("log.db");
        let log = SessionLog::open(&path).await.expect("open");
        log.append(rec(0)).await.expect("append");
        // A process journaled five records, its writer committed the first
        // three (the mark says so), and it died.
        let mut dead = Journal::create(&path).expect("journal");
        let mut appender = Appender::open(&path, Arc::default()).expect("appender");
        for i in 1..=5 {
            assert_eq!(dead.write(&rec(i)).expect("write"), i as u64);
        }
        appender
            .append(
                (1..=3).map(rec).collect::<Vec<_>>().iter(),
                Some((dead.name(), 3)),
            )
            .expect("commit");
        let name = dead.name().to_owned();
        // Held while its owner lives: not touched.
        assert_eq!(fold(&mut appender, &path).expect("fold"), 0);
        drop(dead);
        // `asc log` folds in the two that were not committed, once.
        let pool = SessionLog::open_read(&path).await.expect("read");
        let v = verify(&pool).await.expect("verify");
        assert_eq!((v.records, v.broken_at), (6, None));
        for i in 0..=5 {
            assert_eq!(
                show(&pool, &format!("x{i}")).await.expect("show").len(),
                1,
                "x{i}"
            );
        }
        assert!(!has_any(&path).expect("scan"));
        assert_eq!(appender.committed(&name).expect("mark"), 0, "mark left");
        assert_eq!(fold(&mut appender, &path).expect("fold"), 0);
    }

    #[tokio::test]
    async fn a_journaled_log_reopened_after_a_crash_holds_every_record() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("log.db");
        // The journal of a process killed before its writer ran at all,
        // its last entry torn.
        let mut dead = Journal::create(&path).expect("journal");
        for i in 0..4 {
            dead.write(&rec(i)).expect("write");
        }
        let file = dir.path().join(dead.name());
        drop(dead);
        let len = std::fs::metadata(&file).expect("meta").len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .expect("open")
            .set_len(len - 3)
            .expect("tear");
        let log = SessionLog::open_with(&path, Appending::Journaled)
            .await
            .expect("reopen");
        log.append(rec(9)).await.expect("append");
        log.close().await.expect("close");
        let v = verify(log.pool()).await.expect("verify");
        assert_eq!((v.records, v.broken_at), (4, None), "three whole + one new");
        assert!(show(log.pool(), "x3").await.expect("show").is_empty());
    }
}
