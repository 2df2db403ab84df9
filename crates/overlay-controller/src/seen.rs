//! When nodes were last seen: noted in memory on each authenticated node
//! request (at most once a minute per member) and written to storage in
//! one serialized transaction every few seconds, so a crowd of long-polls
//! never turns into a crowd of competing writes.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::controller::Controller;
use crate::error::Result;

/// Last-seen times waiting to be written.
#[derive(Default)]
pub struct Seen {
    pending: Mutex<HashMap<i64, i64>>,
}

impl Seen {
    /// Notes that `member` was seen at `now` (the later time wins).
    pub fn note(&self, member: i64, now: i64) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let t = p.entry(member).or_insert(now);
        *t = (*t).max(now);
    }

    fn take(&self) -> Vec<(i64, i64)> {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.drain().collect()
    }

    fn put_back(&self, seen: &[(i64, i64)]) {
        for (m, t) in seen {
            self.note(*m, *t);
        }
    }
}

/// Writes the noted times in one write transaction; returns how many. On
/// failure they are kept for the next attempt.
///
/// # Errors
/// Storage errors.
pub async fn flush(ctl: &Controller) -> Result<usize> {
    let seen = ctl.seen.take();
    if seen.is_empty() {
        return Ok(0);
    }
    let res = async {
        let mut w = ctl.store.begin_write().await?;
        for (member, t) in &seen {
            sqlx::query("UPDATE members SET last_seen = $1 WHERE id = $2 AND last_seen < $1")
                .bind(t)
                .bind(member)
                .execute(&mut *w.tx)
                .await?;
        }
        w.commit().await?;
        Ok(seen.len())
    }
    .await;
    if res.is_err() {
        ctl.seen.put_back(&seen);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_keep_the_latest_time_and_survive_a_failed_flush() {
        let s = Seen::default();
        s.note(1, 100);
        s.note(1, 90);
        s.note(2, 5);
        let mut taken = s.take();
        taken.sort_unstable();
        assert_eq!(taken, vec![(1, 100), (2, 5)]);
        assert!(s.take().is_empty());
        s.put_back(&taken);
        s.note(1, 120);
        let mut again = s.take();
        again.sort_unstable();
        assert_eq!(again, vec![(1, 120), (2, 5)]);
    }
}
