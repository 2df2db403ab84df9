//! Token budgets over a sliding window, per agent and per enclave,
//! counted from the usage the providers report. Time is passed in.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::policy::Budget;

/// Spending so far.
#[derive(Debug, Default)]
pub struct Ledger {
    agents: HashMap<String, VecDeque<(Instant, u64)>>,
    enclave: VecDeque<(Instant, u64)>,
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

fn spent(q: &mut VecDeque<(Instant, u64)>, window: Duration, now: Instant) -> u64 {
    while let Some((t, _)) = q.front() {
        if now.saturating_duration_since(*t) >= window {
            q.pop_front();
        } else {
            break;
        }
    }
    q.iter().map(|(_, n)| n).sum()
}

impl Ledger {
    /// Whether `agent` may start another exchange at `now`.
    ///
    /// # Errors
    /// [`OverBudget`] naming the exhausted budget.
    pub fn check(&mut self, budget: &Budget, agent: &str, now: Instant) -> Result<(), OverBudget> {
        if let Some(limit) = budget.per_agent {
            let q = self.agents.entry(agent.to_owned()).or_default();
            let s = spent(q, budget.window, now);
            if s >= limit {
                return Err(OverBudget::Agent(agent.to_owned(), s, limit, budget.window));
            }
        }
        if let Some(limit) = budget.per_enclave {
            let s = spent(&mut self.enclave, budget.window, now);
            if s >= limit {
                return Err(OverBudget::Enclave(s, limit, budget.window));
            }
        }
        Ok(())
    }

    /// Records `tokens` spent by `agent` at `now`.
    pub fn record(&mut self, agent: &str, tokens: u64, now: Instant) {
        if tokens == 0 {
            return;
        }
        self.agents
            .entry(agent.to_owned())
            .or_default()
            .push_back((now, tokens));
        self.enclave.push_back((now, tokens));
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
        l.record("a", 100, t0);
        assert!(matches!(l.check(&b, "a", t0), Err(OverBudget::Agent(..))));
        l.check(&b, "b", t0).expect("b has its own");
        l.record("b", 60, t0 + Duration::from_secs(30));
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
}
