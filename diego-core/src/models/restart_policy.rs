//! The crash restart policy, as a pure function of the crash count and time.
//!
//! Crashes 1–2 restart at once; from crash 3 an instance waits `30 s × 2^(count − 3)`,
//! capped at 16 min; from crash 200 on it is never restarted. The count resets to 1 when
//! the crashing instance had been RUNNING for more than 5 minutes.

use std::time::Duration;

use crate::time::Timestamp;

/// Diego's restart policy, with its defaults; change them with the `with_*` setters
/// (`RestartCalculator::default().with_immediate_restarts(5)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestartCalculator {
    /// Crash counts below this restart at once (3).
    pub immediate_restarts: i32,
    /// Crash counts at or above this are never restarted (200).
    pub max_restart_attempts: i32,
    /// The first delayed restart's wait (30 s).
    pub min_backoff: Duration,
    /// The longest wait (16 min).
    pub max_backoff: Duration,
    /// A crash after this long RUNNING resets the count to 1 (5 min).
    pub crash_reset_timeout: Duration,
}

impl Default for RestartCalculator {
    fn default() -> Self {
        RestartCalculator {
            immediate_restarts: 3,
            max_restart_attempts: 200,
            min_backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(16 * 60),
            crash_reset_timeout: Duration::from_secs(5 * 60),
        }
    }
}

/// What happens to an instance after a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartDecision {
    /// Unclaim and auction it now.
    Immediately,
    /// Keep it CRASHED; convergence restarts it at this time.
    At(Timestamp),
    /// Keep it CRASHED for good.
    Never,
}

impl RestartCalculator {
    crate::setter!(with_immediate_restarts => immediate_restarts: i32);
    crate::setter!(with_max_restart_attempts => max_restart_attempts: i32);
    crate::setter!(with_min_backoff => min_backoff: Duration);
    crate::setter!(with_max_backoff => max_backoff: Duration);
    crate::setter!(with_crash_reset_timeout => crash_reset_timeout: Duration);

    /// The crash count after a crash of an instance that had `previous_count` crashes,
    /// was `was_running` and in its state since `since`.
    pub fn next_crash_count(
        &self,
        previous_count: i32,
        was_running: bool,
        since: Timestamp,
        now: Timestamp,
    ) -> i32 {
        if was_running && now.since(since) > self.crash_reset_timeout {
            1
        } else {
            previous_count.saturating_add(1)
        }
    }

    /// How long an instance with `crash_count` crashes waits before its restart, or
    /// `None` when it is never restarted. Zero means at once.
    pub fn backoff(&self, crash_count: i32) -> Option<Duration> {
        if crash_count < self.immediate_restarts {
            return Some(Duration::ZERO);
        }
        if crash_count >= self.max_restart_attempts {
            return None;
        }
        let exponent = (crash_count - self.immediate_restarts).min(31) as u32;
        let wait = self
            .min_backoff
            .checked_mul(1u32 << exponent)
            .unwrap_or(self.max_backoff);
        Some(wait.min(self.max_backoff))
    }

    /// What to do with an instance that crashed at `crashed_at` with `crash_count`
    /// crashes (the count including this crash).
    pub fn decide(&self, crash_count: i32, crashed_at: Timestamp) -> RestartDecision {
        match self.backoff(crash_count) {
            Some(d) if d.is_zero() => RestartDecision::Immediately,
            Some(d) => RestartDecision::At(crashed_at + d),
            None => RestartDecision::Never,
        }
    }

    /// Whether a CRASHED instance with `crash_count` crashes, crashed at `crashed_at`,
    /// may be restarted at `now` (convergence's question).
    pub fn should_restart(&self, crash_count: i32, crashed_at: Timestamp, now: Timestamp) -> bool {
        match self.decide(crash_count, crashed_at) {
            RestartDecision::Immediately => true,
            RestartDecision::At(at) => now >= at,
            RestartDecision::Never => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60;

    #[test]
    fn the_schedule_at_every_boundary() {
        let r = RestartCalculator::default();
        let table: &[(i32, Option<u64>)] = &[
            (1, Some(0)),
            (2, Some(0)),
            (3, Some(30)),
            (4, Some(MIN)),
            (5, Some(2 * MIN)),
            (6, Some(4 * MIN)),
            (7, Some(8 * MIN)),
            (8, Some(16 * MIN)),
            (9, Some(16 * MIN)),
            (50, Some(16 * MIN)),
            (199, Some(16 * MIN)),
            (200, None),
            (201, None),
            (i32::MAX, None),
        ];
        for &(count, secs) in table {
            assert_eq!(
                r.backoff(count),
                secs.map(Duration::from_secs),
                "crash count {count}"
            );
        }
    }

    #[test]
    fn decisions_and_convergence_checks() {
        let r = RestartCalculator::default();
        let t = Timestamp(1_000_000_000_000);
        assert_eq!(r.decide(1, t), RestartDecision::Immediately);
        assert_eq!(
            r.decide(3, t),
            RestartDecision::At(t + Duration::from_secs(30))
        );
        assert_eq!(r.decide(200, t), RestartDecision::Never);
        assert!(!r.should_restart(3, t, t + Duration::from_secs(29)));
        assert!(r.should_restart(3, t, t + Duration::from_secs(30)));
        assert!(!r.should_restart(4, t, t + Duration::from_secs(59)));
        assert!(r.should_restart(4, t, t + Duration::from_secs(60)));
        assert!(!r.should_restart(200, t, t + Duration::from_secs(1_000_000)));
    }

    #[test]
    fn count_resets_after_five_minutes_running() {
        let r = RestartCalculator::default();
        let since = Timestamp(0);
        let five = Timestamp(0) + Duration::from_secs(300);
        let later = five + Duration::from_nanos(1);
        assert_eq!(r.next_crash_count(7, true, since, five), 8);
        assert_eq!(r.next_crash_count(7, true, since, later), 1);
        assert_eq!(r.next_crash_count(7, false, since, later), 8);
        assert_eq!(r.next_crash_count(199, true, since, later), 1);
    }
}
