//! Per-source handshake limiting: a flood of handshake initiations from one
//! address is dropped before any Diffie-Hellman is spent on it, so it cannot
//! starve other peers' handshakes (boringtun's own limiter is global).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Token bucket per source address.
#[derive(Debug)]
pub struct SourceLimiter {
    per_second: f64,
    burst: f64,
    buckets: HashMap<IpAddr, (f64, Instant)>,
    max_sources: usize,
}

impl SourceLimiter {
    /// `per_second` initiations per source, bursts up to `burst`.
    pub fn new(per_second: f64, burst: f64) -> Self {
        Self {
            per_second,
            burst,
            buckets: HashMap::new(),
            max_sources: 65_536,
        }
    }

    /// Whether one more initiation from `src` at `now` is allowed.
    pub fn allow(&mut self, src: IpAddr, now: Instant) -> bool {
        if self.buckets.len() >= self.max_sources && !self.buckets.contains_key(&src) {
            self.forget_idle(now);
            if self.buckets.len() >= self.max_sources {
                return false;
            }
        }
        let (tokens, last) = self.buckets.entry(src).or_insert((self.burst, now));
        let elapsed = now.saturating_duration_since(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * self.per_second).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Drops sources that have refilled completely (they are not flooding).
    pub fn forget_idle(&mut self, now: Instant) {
        let full = Duration::from_secs_f64(self.burst / self.per_second);
        self.buckets
            .retain(|_, (_, last)| now.saturating_duration_since(*last) < full);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_one_source_not_the_others() {
        let mut l = SourceLimiter::new(10.0, 5.0);
        let t = Instant::now();
        let a: IpAddr = [198, 18, 0, 1].into();
        let b: IpAddr = [198, 18, 0, 2].into();
        let allowed = (0..100).filter(|_| l.allow(a, t)).count();
        assert_eq!(allowed, 5, "burst only");
        assert!(l.allow(b, t), "another source is unaffected");
        assert!(
            l.allow(a, t + Duration::from_millis(150)),
            "refills over time"
        );
        l.forget_idle(t + Duration::from_secs(10));
        assert!(l.buckets.is_empty());
    }
}
