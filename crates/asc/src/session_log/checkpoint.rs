//! Folding the WAL back into the database without holding up appends.
//!
//! A background task runs a PASSIVE checkpoint every second on its own
//! connection: it copies the bulk and syncs, while appends go on. Under a
//! steady stream of appends it never finds the whole WAL copied (frames
//! arrive while it runs, and the appender's next transaction already began
//! before it ended), and SQLite starts a WAL over only when a write
//! transaction begins on a wholly copied WAL, so the WAL would grow
//! without end (measured: 37 MB after 4,000 records, never reused). Past
//! [`CATCH_UP_FRAMES`] the task asks the appender to catch up: right after
//! its next commit the appender runs a PASSIVE checkpoint on its own
//! connection, which copies the few frames that came in meanwhile with no
//! append of this process in between; the next append then starts the WAL
//! from the beginning. A RESTART checkpoint, which holds appends while it
//! runs, is left as a safety valve for a WAL past [`WAL_RESTART_FRAMES`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::SqlitePool;

/// How often the background checkpoint runs.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// WAL frames (pages) past which the appender is asked to catch up: 64 MiB
/// at 4 KiB pages. Its catch-up syncs on the path of the record just
/// committed (it added ~0.5 ms to the MCP bench's p99 when asked every
/// second), so a lightly loaded log, whose WAL starts over by itself in a
/// pause, never pays it.
const CATCH_UP_FRAMES: i64 = 16_384;

/// WAL frames (pages) past which a checkpoint restarts the WAL: 1 GiB at
/// 4 KiB pages. Set high because the restart holds appends while it copies
/// and syncs (at 64 MiB it took the ASC bench's p99 at 2,000 req/s from
/// 45 ms to 382 ms).
const WAL_RESTART_FRAMES: i64 = 262_144;

/// The WAL's size once it is started over (SQLite truncates it to this),
/// so a burst does not leave a large WAL file behind.
pub const WAL_SIZE_LIMIT: &str = "67108864";

/// WAL sizes, in frames, that call for more than a passive checkpoint.
struct Thresholds {
    /// Ask the appender to catch up.
    catch_up: i64,
    /// Restart the WAL, holding appends.
    restart: i64,
}

/// The thresholds the background task runs with.
const LIMITS: Thresholds = Thresholds {
    catch_up: CATCH_UP_FRAMES,
    restart: WAL_RESTART_FRAMES,
};

/// One background round: a PASSIVE checkpoint, then `catch_up` raised for
/// the appender or a RESTART, as `limits` say.
async fn checkpoint(
    pool: &SqlitePool,
    catch_up: &AtomicBool,
    limits: &Thresholds,
) -> Result<(), sqlx::Error> {
    let (_busy, frames, _copied): (i64, i64, i64) =
        sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(pool)
            .await?;
    if frames > limits.restart {
        sqlx::query("PRAGMA wal_checkpoint(RESTART)")
            .execute(pool)
            .await?;
    } else if frames > limits.catch_up {
        // Even when it reports every frame copied, that is every frame of
        // the WAL as it was when it began: appends that came in while it
        // ran keep the WAL from being started over.
        catch_up.store(true, Ordering::Release);
    }
    Ok(())
}

/// Starts the background checkpoint task for the log behind `pool`; it
/// raises `catch_up` for the appender. It ends when the pool is closed.
pub fn spawn(pool: SqlitePool, catch_up: Arc<AtomicBool>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(CHECKPOINT_EVERY).await;
            if pool.is_closed() {
                break;
            }
            if let Err(e) = checkpoint(&pool, &catch_up, &LIMITS).await {
                tracing::warn!(error = %e, "session log checkpoint failed");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session_log::append::Appender;
    use crate::session_log::tests::rec;
    use crate::session_log::{verify, Appending, SessionLog};

    /// Appends 4,000 records one every ~0.2 ms (like a busy gateway) from
    /// a thread while a checkpoint round runs every 100 ms; returns the
    /// largest WAL file seen. `connected`: the appender catches up when
    /// asked.
    async fn largest_wal(limits: Thresholds, connected: bool) -> u64 {
        const RECORDS: usize = 4_000;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("log.db");
        let log = SessionLog::open_with(&path, Appending::Batched)
            .await
            .expect("open");
        let asked = Arc::new(AtomicBool::new(false));
        let mut appender = Appender::open(&path, asked.clone()).expect("appender");
        let writer = std::thread::spawn(move || {
            for i in 0..RECORDS {
                appender.append([&rec(i)], None).expect("append");
                if connected {
                    appender.catch_up();
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        });
        let wal = dir.path().join("log.db-wal");
        let mut largest = 0;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !writer.is_finished() && std::time::Instant::now() < deadline {
            checkpoint(log.pool(), &asked, &limits)
                .await
                .expect("checkpoint");
            largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        writer.join().expect("writer");
        let v = verify(log.pool()).await.expect("verify");
        assert_eq!((v.records, v.broken_at), (RECORDS as i64, None));
        largest
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_catch_up_or_restart_the_wal_grows_with_every_record() {
        // 4,000 records x 2 pages x 4 KiB = 32 MiB.
        let largest = largest_wal(
            Thresholds {
                catch_up: 0,
                restart: i64::MAX,
            },
            false,
        )
        .await;
        assert!(largest > 16 << 20, "WAL reached only {largest} bytes");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_appender_catching_up_keeps_the_wal_small() {
        let largest = largest_wal(
            Thresholds {
                catch_up: 0,
                restart: i64::MAX,
            },
            true,
        )
        .await;
        assert!(largest < 8 << 20, "WAL reached {largest} bytes");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restart_past_the_threshold_keeps_the_wal_small() {
        let largest = largest_wal(
            Thresholds {
                catch_up: i64::MAX,
                restart: 64,
            },
            false,
        )
        .await;
        assert!(largest < 8 << 20, "WAL reached {largest} bytes");
    }
}
