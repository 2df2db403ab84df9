//! Wake-ups for long-polling nodes: one watch channel per member that is
//! waiting, so a change wakes exactly the members it affected.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

/// The per-member wake-up channels.
#[derive(Default)]
pub struct Hub {
    senders: Mutex<HashMap<i64, watch::Sender<u64>>>,
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
        for id in members {
            map.remove(id);
        }
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
}
