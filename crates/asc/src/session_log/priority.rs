//! The writer thread's CPU priority. Commits run under `SCHED_IDLE`, on
//! CPU time nothing else wants, so a commit never delays the conversation
//! it logs nor the client and server on the same cores: on the 2-core
//! bench machine a writer at normal priority committing every 10 ms
//! slowed the direct path's calls measurably (14-39 -> 67-206 of 3,000
//! over 0.85 ms), and at `SCHED_IDLE` it did not (docs/PERFORMANCE.md,
//! MCP, session 11). Waiting for a CPU delays only when records show in
//! `asc log`; they are in the journal already.
//!
//! The writer must be able to come back: when it falls behind, and while
//! it holds the journal's lock, it runs at normal priority (nice 0), so a
//! busy machine cannot starve it into stalling appends. Leaving
//! `SCHED_IDLE` needs `CAP_SYS_NICE` or an `RLIMIT_NICE` of 20, so
//! [`Priority::new`] first tries the round trip on a throwaway thread;
//! where it fails, the writer stays at normal priority throughout.

use thread_priority::{
    set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy, ThreadPriority,
    ThreadPriorityValue, ThreadSchedulePolicy,
};

/// The calling thread's policy, changed only when it has to be.
pub struct Priority {
    /// Whether a thread can leave `SCHED_IDLE` again here.
    usable: bool,
    idle: bool,
}

impl Priority {
    /// The calling thread at normal priority, and whether it may idle.
    pub fn new() -> Self {
        let usable = std::thread::spawn(|| set(true).and_then(|()| set(false)).is_ok())
            .join()
            .unwrap_or(false);
        if !usable {
            tracing::debug!("session log writer stays at normal priority: SCHED_IDLE could not be left again here");
        }
        Self {
            usable,
            idle: false,
        }
    }

    /// Runs the calling thread at `SCHED_IDLE` when `idle` (and usable),
    /// else at normal priority.
    pub fn set(&mut self, idle: bool) {
        let idle = idle && self.usable;
        if idle == self.idle {
            return;
        }
        match set(idle) {
            Ok(()) => self.idle = idle,
            Err(e) => {
                if self.usable {
                    tracing::warn!(error = e, idle, "session log writer priority unchanged");
                }
                self.usable = false;
            }
        }
    }
}

/// Puts the calling thread under `SCHED_IDLE`, or `SCHED_OTHER` at nice 0.
fn set(idle: bool) -> Result<(), String> {
    let (policy, priority) = if idle {
        (NormalThreadSchedulePolicy::Idle, ThreadPriority::Min)
    } else {
        // The crate's 0..=99 scale, mapped onto nice 19..=-20: 48 is nice 0
        // (the test reads the nice value back).
        let nice_0 = ThreadPriorityValue::try_from(48u8)?;
        (
            NormalThreadSchedulePolicy::Other,
            ThreadPriority::Crossplatform(nice_0),
        )
    };
    set_thread_priority_and_policy(
        thread_native_id(),
        priority,
        ThreadSchedulePolicy::Normal(policy),
    )
    .map_err(|e| format!("{e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calling thread's scheduling policy (0 normal, 5 idle) and nice
    /// value, from procfs (fields 41 and 19 of its `stat`).
    fn policy_and_nice() -> (u32, i32) {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("stat");
        // Fields after the command name, which is in parentheses.
        let rest: Vec<&str> = stat[stat.rfind(')').expect("comm") + 2..]
            .split(' ')
            .collect();
        (
            rest[38].parse().expect("policy"),
            rest[16].parse().expect("nice"),
        )
    }

    #[test]
    fn the_writer_idles_only_where_it_can_come_back() {
        std::thread::spawn(|| {
            let mut p = Priority::new();
            assert_eq!(policy_and_nice(), (0, 0));
            p.set(true);
            if p.usable {
                assert_eq!(policy_and_nice().0, 5, "idle when allowed");
                p.set(false);
                assert_eq!(policy_and_nice(), (0, 0), "back to normal at nice 0");
                p.set(true);
                assert_eq!(policy_and_nice().0, 5);
            } else {
                assert_eq!(policy_and_nice(), (0, 0), "never idle without a way back");
            }
        })
        .join()
        .expect("thread");
    }
}
