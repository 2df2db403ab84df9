//! Token budgets over a sliding window, per agent and per enclave,
//! counted from the usage the providers report. Time is passed in.
//!
//! Spending is kept in one-second buckets with a running total, so memory
//! is bounded by the window's length in seconds (not by the number of
//! requests) and a check costs only the buckets that expired; nothing is
//! kept for a budget the policy does not set. A bucket expires whole, so
//! spending leaves the window up to a second early.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::policy::Budget;

/// Width of one bucket.
const BUCKET: Duration = Duration::from_secs(1);

/// Spending so far.
#[derive(Debug, Default)]
pub struct Ledger {
    agents: HashMap<String, Window>,
    enclave: Window,
}

/// Tokens spent over time: one-second buckets and their total.
#[derive(Debug, Default)]
struct Window {
    buckets: VecDeque<(Instant, u64)>,
    total: u64,
}

impl Window {
    /// Tokens spent in the `window` before `now`.
    fn spent(&mut self, window: Duration, now: Instant) -> u64 {
        while let Some(&(t, n)) = self.buckets.front() {
            if now.saturating_duration_since(t) >= window {
                self.buckets.pop_front();
                self.total -= n;
            } else {
                break;
            }
        }
        self.total
    }

    fn add(&mut self, tokens: u64, window: Duration, now: Instant) {
        match self.buckets.back_mut() {
            Some((t, n)) if now.saturating_duration_since(*t) < BUCKET => *n += tokens,
            _ => self.buckets.push_back((now, tokens)),
        }
        self.total += tokens;
        self.spent(window, now);
    }
}

/// Which budget is exhausted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverBudget {
    /// The agent's.
    #[error("token budget of agent {0} exhausted ({1} of {2} tokens in the last {3:?})")]
    Agent(String, u64, u64, Duration),
    /// The enclave's.
    #[error("token budget of the enclave exhausted ({0} of {1} tokens in the last {2:?})")]
    Enclave(u64, u64, Duration),
}

impl Ledger {
    /// Whether `agent` may start another exchange at `now`.
    ///
    /// # Errors
    /// [`OverBudget`] naming the exhausted budget.
    pub fn check(&mut self, budget: &Budget, agent: &str, now: Instant) -> Result<(), OverBudget> {
        if let Some(limit) = budget.per_agent {
            let s = self
                .agents
                .get_mut(agent)
                .map_or(0, |w| w.spent(budget.window, now));
            if s >= limit {
                return Err(OverBudget::Agent(agent.to_owned(), s, limit, budget.window));
            }
        }
        if let Some(limit) = budget.per_enclave {
            let s = self.enclave.spent(budget.window, now);
            if s >= limit {
                return Err(OverBudget::Enclave(s, limit, budget.window));
            }
        }
        Ok(())
    }

    /// Records `tokens` spent by `agent` at `now`, for the budgets
    /// `budget` sets (nothing without one).
    pub fn record(&mut self, budget: Option<&Budget>, agent: &str, tokens: u64, now: Instant) {
        let Some(b) = budget else { return };
        if tokens == 0 {
            return;
        }
        if b.per_agent.is_some() {
            self.agents
                .entry(agent.to_owned())
                .or_default()
                .add(tokens, b.window, now);
        }
        if b.per_enclave.is_some() {
            self.enclave.add(tokens, b.window, now);
        }
    }

    /// Buckets held, for tests of the bound.
    #[cfg(test)]
    fn buckets(&self) -> usize {
        self.enclave.buckets.len() + self.agents.values().map(|w| w.buckets.len()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_slides() {
        let b = Budget {
            per_agent: Some(100),
            per_enclave: Some(150),
            window: Duration::from_secs(60),
        };
        let t0 = Instant::now();
        let mut l = Ledger::default();
        l.check(&b, "a", t0).expect("fresh");
        l.record(Some(&b), "a", 100, t0);
        assert!(matches!(l.check(&b, "a", t0), Err(OverBudget::Agent(..))));
        l.check(&b, "b", t0).expect("b has its own");
        l.record(Some(&b), "b", 60, t0 + Duration::from_secs(30));
        assert!(matches!(
            l.check(&b, "c", t0 + Duration::from_secs(31)),
            Err(OverBudget::Enclave(160, 150, _))
        ));
        // After the window, a's spending has expired; b's is still there.
        l.check(&b, "a", t0 + Duration::from_secs(60))
            .expect("a again");
        l.check(&b, "c", t0 + Duration::from_secs(60))
            .expect("enclave below");
    }

    #[test]
    fn memory_is_bounded_by_the_window_not_the_requests() {
        let b = Budget {
            per_agent: Some(u64::MAX),
            per_enclave: Some(u64::MAX),
            window: Duration::from_secs(10),
        };
        let t0 = Instant::now();
        let mut l = Ledger::default();
        // 100,000 requests over 50 s: a 10 s window keeps ~11 buckets each.
        for i in 0..100_000u64 {
            let now = t0 + Duration::from_micros(i * 500);
            l.check(&b, "a", now).expect("unlimited");
            l.record(Some(&b), "a", 3, now);
        }
        assert!(l.buckets() <= 2 * 12, "{} buckets", l.buckets());
        let end = t0 + Duration::from_secs(50);
        // What is left is the last ten seconds' spending (20,000 requests),
        // less at most the one second a bucket's granularity lets expire
        // early.
        let left = l.enclave.spent(b.window, end);
        assert!((54_000..=60_003).contains(&left), "{left}");

        // No budget in the policy: nothing is kept at all.
        let mut none = Ledger::default();
        none.record(None, "a", 5, t0);
        let agent_only = Budget {
            per_enclave: None,
            ..b
        };
        none.record(Some(&agent_only), "a", 5, t0);
        assert_eq!(none.buckets(), 1);
        assert_eq!(none.enclave.total, 0);
    }
}
