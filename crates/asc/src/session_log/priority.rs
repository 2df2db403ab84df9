//! The writer thread's CPU priority. Commits run under `SCHED_IDLE`, on
//! CPU time nothing else wants, so a commit never delays the conversation
//! it logs nor the client and server on the same cores: on the 2-core
//! bench machine a writer at normal priority committing every 10 ms took
//! the direct path's calls from ~20 to ~130 per 3,000 over 0.85 ms, and at
//! `SCHED_IDLE` it did not (docs/PERFORMANCE.md, MCP, session 11). Waiting
//! for a CPU delays only when records show in `asc log`; they are in the
//! journal already. On a machine busy enough that the writer falls
//! behind, it goes back to normal priority until it has caught up, so a
//! starved writer cannot stall the appends waiting for room in its queue.

use thread_priority::{
    set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy, ThreadPriority,
    ThreadSchedulePolicy,
};

/// Records taken in one batch at or past which the writer counts as
/// behind.
pub const BEHIND: usize = 128;

/// The calling thread's policy, changed only when it has to be.
pub struct Priority {
    idle: Option<bool>,
}

impl Priority {
    /// The calling thread at its policy as inherited.
    pub fn new() -> Self {
        Self { idle: None }
    }

    /// Runs the calling thread at `SCHED_IDLE` unless the batch it just
    /// took (`taken` records) says it is behind.
    pub fn after(&mut self, taken: usize) {
        let idle = taken < BEHIND;
        if self.idle == Some(idle) {
            return;
        }
        let policy = if idle {
            NormalThreadSchedulePolicy::Idle
        } else {
            NormalThreadSchedulePolicy::Other
        };
        match set_thread_priority_and_policy(
            thread_native_id(),
            ThreadPriority::Min,
            ThreadSchedulePolicy::Normal(policy),
        ) {
            Ok(()) => self.idle = Some(idle),
            Err(e) => {
                // It still commits, only at the priority it has.
                tracing::debug!(error = ?e, idle, "session log writer priority unchanged");
                self.idle = Some(idle);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scheduling policy of the calling thread, from procfs (field 41
    /// of its `stat`: 0 normal, 5 idle).
    fn policy() -> u32 {
        let tid = std::fs::read_link("/proc/thread-self")
            .expect("thread-self")
            .file_name()
            .expect("tid")
            .to_string_lossy()
            .into_owned();
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).expect("stat");
        // Fields after the command name, which is in parentheses.
        let rest = &stat[stat.rfind(')').expect("comm") + 2..];
        rest.split(' ')
            .nth(38)
            .expect("policy")
            .parse()
            .expect("number")
    }

    #[test]
    fn the_writer_idles_until_it_falls_behind() {
        std::thread::spawn(|| {
            let mut p = Priority::new();
            assert_eq!(policy(), 0);
            p.after(3);
            assert_eq!(policy(), 5, "a writer keeping up runs at SCHED_IDLE");
            p.after(BEHIND);
            assert_eq!(policy(), 0, "a writer behind runs at normal priority");
            p.after(0);
            assert_eq!(policy(), 5);
        })
        .join()
        .expect("thread");
    }
}
