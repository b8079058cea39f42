//! How long a worker waits after a failure that may pass: exponential
//! backoff with equal jitter, capped, reset when the peer answers.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::RngExt;

use crate::config::OutboxOptions;

/// A worker's backoff: none while the peer answers; after each pass that
/// failed, doubled from the last, from `initial_backoff` up to
/// `max_backoff`.
#[derive(Debug, Clone)]
pub(super) struct Backoff {
    /// The backoff of the last failed pass; `None` while the peer answers.
    current: Option<Duration>,
    initial: Duration,
    max: Duration,
}

/// What a pass does should it fail, fixed when it starts: failed work is
/// due again `at`, after the worker has waited `delay`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Retry {
    /// The backoff this failure makes current.
    pub(super) next: Duration,
    /// `next` with jitter: how long the worker waits.
    pub(super) delay: Duration,
    /// When what failed is due again.
    pub(super) at: DateTime<Utc>,
}

impl Backoff {
    /// No backoff yet.
    pub(super) fn new(options: &OutboxOptions) -> Self {
        Self {
            current: None,
            initial: options.initial_backoff,
            max: options.max_backoff,
        }
    }

    /// Whether the last pass failed, so the peer looks down.
    pub(super) fn active(&self) -> bool {
        self.current.is_some()
    }

    /// The backoff after the current one (none: the first failure):
    /// doubled, up to the maximum. Saturates rather than overflows,
    /// whatever the options say.
    pub(super) fn next(&self) -> Duration {
        self.current
            .map(|b| b.saturating_mul(2).min(self.max))
            .unwrap_or(self.initial)
    }

    /// What a pass starting `now` does should it fail.
    pub(super) fn plan(&self, now: DateTime<Utc>) -> Retry {
        let next = self.next();
        let delay = jittered(next);
        Retry {
            next,
            delay,
            at: retry_at(now, delay),
        }
    }

    /// A pass failed, as `retry` planned.
    pub(super) fn failed(&mut self, retry: &Retry) {
        self.current = Some(retry.next);
    }

    /// The peer answered, or said it is up: the next failure starts over.
    pub(super) fn reset(&mut self) {
        self.current = None;
    }
}

/// When work that failed `now` is due again after `delay`; the end of time
/// if that lies beyond what a date can hold.
pub(super) fn retry_at(now: DateTime<Utc>, delay: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(delay)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `base` with "equal jitter": half fixed, half random, so peers that
/// failed together do not retry in lockstep, and no delay collapses to
/// zero.
pub(super) fn jittered(base: Duration) -> Duration {
    let half = base / 2;
    half + rand::rng().random_range(Duration::ZERO..=half)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff(initial: Duration, max: Duration) -> Backoff {
        Backoff::new(&OutboxOptions {
            initial_backoff: initial,
            max_backoff: max,
            ..OutboxOptions::default()
        })
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum_and_starts_over_when_reset() {
        let mut b = backoff(Duration::from_millis(250), Duration::from_secs(1));
        assert!(!b.active());
        let mut seen = Vec::new();
        for _ in 0..4 {
            let retry = b.plan(Utc::now());
            seen.push(retry.next.as_millis());
            b.failed(&retry);
            assert!(b.active());
        }
        assert_eq!(seen, [250, 500, 1000, 1000]);
        b.reset();
        assert!(!b.active());
        assert_eq!(b.next(), Duration::from_millis(250));
    }

    #[test]
    fn the_delay_is_half_fixed_half_random_and_failed_work_waits_it_out() {
        let b = backoff(Duration::from_secs(8), Duration::from_secs(60));
        let now = Utc::now();
        for _ in 0..200 {
            let retry = b.plan(now);
            assert_eq!(retry.next, Duration::from_secs(8));
            assert!(
                (Duration::from_secs(4)..=Duration::from_secs(8)).contains(&retry.delay),
                "{:?}",
                retry.delay
            );
            assert_eq!(retry.at, retry_at(now, retry.delay));
        }
        assert_eq!(jittered(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn huge_backoffs_saturate_instead_of_panicking() {
        // Found by the configuration fuzz target: `initial_backoff =
        // "400000y"` made every outbox worker panic as it started.
        let now = Utc::now();
        let year = Duration::from_secs(365 * 24 * 3600);
        assert_eq!(retry_at(now, year * 400_000), DateTime::<Utc>::MAX_UTC);
        assert_eq!(retry_at(now, Duration::MAX), DateTime::<Utc>::MAX_UTC);
        assert_eq!(
            retry_at(now, Duration::from_secs(10)),
            now + chrono::Duration::seconds(10)
        );
        let mut b = backoff(Duration::MAX, Duration::MAX);
        let first = b.plan(now);
        b.failed(&first);
        assert_eq!(b.next(), Duration::MAX);
        let _ = jittered(Duration::MAX);
    }
}
