//! A per-approver circuit breaker: after `threshold` consecutive provider failures the judge
//! is not called for `cooldown`, and every request in that window is denied at once.
//!
//! After the cooldown the next calls go through again; the failure count is kept, so one more
//! failure opens the circuit again immediately, and one success closes it. The caller passes
//! the time: core reads no clock.

use std::time::{Duration, Instant};

/// Consecutive failures that open the circuit by default.
pub const DEFAULT_THRESHOLD: u32 = 5;
/// How long an open circuit denies by default.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(30);

/// The breaker state of one approver.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    threshold: u32,
    cooldown: Duration,
    failures: u32,
    open_until: Option<Instant>,
}

impl Default for CircuitBreaker {
    fn default() -> CircuitBreaker {
        CircuitBreaker::new(DEFAULT_THRESHOLD, DEFAULT_COOLDOWN)
    }
}

impl CircuitBreaker {
    /// A closed breaker opening after `threshold` (at least 1) consecutive failures.
    pub fn new(threshold: u32, cooldown: Duration) -> CircuitBreaker {
        CircuitBreaker {
            threshold: threshold.max(1),
            cooldown,
            failures: 0,
            open_until: None,
        }
    }

    /// Whether a call may be made at `now` (`false` while the circuit is open).
    pub fn allows(&self, now: Instant) -> bool {
        self.open_until.is_none_or(|until| now >= until)
    }

    /// Records a successful provider call: closes the circuit.
    pub fn record_success(&mut self) {
        self.failures = 0;
        self.open_until = None;
    }

    /// Records a failed provider call at `now`; returns `true` when this opened the circuit.
    pub fn record_failure(&mut self, now: Instant) -> bool {
        self.failures = self.failures.saturating_add(1);
        if self.failures >= self.threshold && self.allows(now) {
            self.open_until = now.checked_add(self.cooldown);
            return true;
        }
        false
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_recovers() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut b = CircuitBreaker::new(3, s(30));
        assert!(!b.record_failure(t0));
        assert!(!b.record_failure(t0));
        assert!(b.allows(t0));
        assert!(b.record_failure(t0));
        assert!(!b.allows(t0));
        assert!(!b.allows(t0 + s(29)));
        // Failures reported by calls that started before the circuit opened do not extend it.
        assert!(!b.record_failure(t0 + s(1)));
        assert!(b.allows(t0 + s(30)));
        // Half-open: one more failure reopens at once.
        assert!(b.record_failure(t0 + s(31)));
        assert!(!b.allows(t0 + s(32)));
        b.record_success();
        assert!(b.allows(t0 + s(32)));
        assert_eq!(b.failures(), 0);
    }

    #[test]
    fn success_resets_the_count() {
        let t0 = Instant::now();
        let mut b = CircuitBreaker::default();
        for _ in 0..4 {
            b.record_failure(t0);
        }
        b.record_success();
        for _ in 0..4 {
            assert!(!b.record_failure(t0));
        }
        assert!(b.allows(t0));
        assert!(b.record_failure(t0));
    }
}
