//! Wake-ups for long-polling nodes: one watch channel per member that is
//! waiting, so a change wakes exactly the members it affected; and the
//! pacing of netmaps under churn: a poller that was just given the latest
//! version gets the next one no sooner than [`MIN_INTERVAL`] later, so a
//! burst of changes costs each member a few netmaps, not one per change.
//! The first change after a quiet interval goes out at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// Shortest time between two netmaps to a poller that is up to date.
pub const MIN_INTERVAL: Duration = Duration::from_millis(500);

/// The per-member wake-up channels and the last delivery to each member.
#[derive(Default)]
pub struct Hub {
    senders: Mutex<HashMap<i64, watch::Sender<u64>>>,
    delivered: Mutex<HashMap<i64, (u64, Instant)>>,
}

impl Hub {
    /// A receiver that sees every notification for `member` from now on.
    pub fn subscribe(&self, member: i64) -> watch::Receiver<u64> {
        let mut map = self.senders.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(member)
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Wakes the waiters of `members`; returns how many receivers were woken.
    pub fn notify(&self, members: &[i64], version: u64) -> usize {
        let mut map = self.senders.lock().unwrap_or_else(|p| p.into_inner());
        let mut woken = 0;
        for id in members {
            if let Some(tx) = map.get(id) {
                woken += tx.receiver_count();
                tx.send_replace(version);
            }
        }
        // Channels nobody waits on any more are dropped on the way.
        map.retain(|_, tx| tx.receiver_count() > 0);
        woken
    }

    /// Drops `member`'s channel: its waiters wake and find it gone.
    pub fn forget(&self, members: &[i64]) {
        let mut map = self.senders.lock().unwrap_or_else(|p| p.into_inner());
        let mut delivered = self.delivered.lock().unwrap_or_else(|p| p.into_inner());
        for id in members {
            map.remove(id);
            delivered.remove(id);
        }
    }

    /// How long a poller of `member` that has version `since` must wait
    /// before its next netmap: it was given that version (or a later one)
    /// less than [`MIN_INTERVAL`] ago. `None`: answer now.
    pub fn hold(&self, member: i64, since: u64) -> Option<Duration> {
        let delivered = self.delivered.lock().unwrap_or_else(|p| p.into_inner());
        let (version, at) = delivered.get(&member)?;
        if since < *version {
            return None;
        }
        MIN_INTERVAL
            .checked_sub(at.elapsed())
            .filter(|d| !d.is_zero())
    }

    /// Notes that `member` was given `version` now.
    pub fn delivered(&self, member: i64, version: u64) {
        let mut delivered = self.delivered.lock().unwrap_or_else(|p| p.into_inner());
        delivered.insert(member, (version, Instant::now()));
    }

    /// Number of members with at least one waiter.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        let map = self.senders.lock().unwrap_or_else(|p| p.into_inner());
        map.values().filter(|tx| tx.receiver_count() > 0).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wakes_only_affected_members() {
        let hub = Hub::default();
        let mut a = hub.subscribe(1);
        let mut b = hub.subscribe(2);
        assert_eq!(hub.notify(&[1], 7), 1);
        assert!(a.has_changed().unwrap_or(false));
        assert!(!b.has_changed().unwrap_or(true));
        assert_eq!(*a.borrow_and_update(), 7);
        hub.forget(&[2]);
        assert!(
            b.changed().await.is_err(),
            "a forgotten member's waiter wakes with an error"
        );
        drop(a);
        hub.notify(&[1], 8);
        assert_eq!(hub.waiting(), 0);
    }

    #[test]
    fn only_an_up_to_date_poller_is_held_and_not_for_long() {
        let hub = Hub::default();
        assert_eq!(hub.hold(1, 0), None, "nothing delivered yet");
        hub.delivered(1, 5);
        // Another poller of the member that has not seen 5 yet: at once.
        assert_eq!(hub.hold(1, 4), None);
        // The one that has 5: held, at most MIN_INTERVAL.
        let held = hub.hold(1, 5).unwrap_or_default();
        assert!(held > Duration::ZERO && held <= MIN_INTERVAL, "{held:?}");
        assert_eq!(hub.hold(2, 5), None, "other members are not held");
        hub.forget(&[1]);
        assert_eq!(hub.hold(1, 5), None, "a removed member's record goes");
    }
}
