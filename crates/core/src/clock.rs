//! The source of wall-clock time. Everything in a node that stamps or
//! compares times asks a [`Clock`], so tests (and, later, scenario replays)
//! can run on a time of their choosing.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use tokio::sync::Notify;

/// A future that resolves when a clock reaches a time.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A source of the current time.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;

    /// Resolves once [`Clock::now`] has reached `t` (at once if it has).
    fn sleep_until(&self, t: DateTime<Utc>) -> Sleep;
}

/// The system's real-time clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, t: DateTime<Utc>) -> Sleep {
        let wait = (t - Utc::now()).to_std().unwrap_or_default();
        Box::pin(tokio::time::sleep(wait))
    }
}

/// A stretch of scenario time that runs at its own pace, to slow down
/// around dense moments (minutes apart) in a scenario that otherwise
/// crosses months.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pace {
    /// Scenario time where the stretch begins.
    pub from: DateTime<Utc>,
    /// Scenario time where it ends.
    pub until: DateTime<Utc>,
    /// Scenario seconds per real second within it.
    pub speed: f64,
}

/// Scenario time: a clock that reads `start` at the real instant `origin`
/// and runs `speed` times faster than real time (or at each [`Pace`]'s own
/// speed within it), so a year of events and deadlines can play in about a
/// minute. Nodes given the same start, origin, speed and paces agree on the
/// time whenever each of them was started.
#[derive(Debug, Clone)]
pub struct ScaledClock {
    start: DateTime<Utc>,
    origin: DateTime<Utc>,
    speed: f64,
    /// Stretches of scenario time, each `(from, until, speed)`, contiguous
    /// from `start`; the last runs forever.
    pieces: Arc<Vec<Piece>>,
}

/// A stretch `(from, until, speed)` of a [`ScaledClock`]; the last has no end.
type Piece = (DateTime<Utc>, Option<DateTime<Utc>>, f64);

fn sane(speed: f64) -> f64 {
    if speed.is_finite() {
        speed.max(1.0)
    } else {
        1.0
    }
}

fn micros(d: Duration) -> f64 {
    d.num_microseconds().unwrap_or(i64::MAX) as f64
}

fn from_micros(m: f64) -> Duration {
    Duration::microseconds(m.clamp(i64::MIN as f64, i64::MAX as f64) as i64)
}

/// `t + d`, held at the ends of time rather than overflowing: a fast
/// enough clock (a speed of 1e19 is a valid float) runs past them.
fn plus(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t.checked_add_signed(d).unwrap_or(if d < Duration::zero() {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

impl ScaledClock {
    /// A clock reading `start` at real time `origin`, running `speed`
    /// times real time (at least 1).
    pub fn new(start: DateTime<Utc>, origin: DateTime<Utc>, speed: f64) -> Self {
        Self::with_pace(start, origin, speed, &[])
    }

    /// The same, with stretches that run at their own pace. Stretches before
    /// `start` or overlapping an earlier one are cut to fit.
    pub fn with_pace(
        start: DateTime<Utc>,
        origin: DateTime<Utc>,
        speed: f64,
        pace: &[Pace],
    ) -> Self {
        let speed = sane(speed);
        let mut sorted: Vec<Pace> = pace.to_vec();
        sorted.sort_by_key(|p| p.from);
        let mut pieces = Vec::new();
        let mut cursor = start;
        for p in sorted {
            let from = p.from.max(cursor);
            if p.until <= from {
                continue;
            }
            if from > cursor {
                pieces.push((cursor, Some(from), speed));
            }
            pieces.push((from, Some(p.until), sane(p.speed)));
            cursor = p.until;
        }
        pieces.push((cursor, None, speed));
        Self {
            start,
            origin,
            speed,
            pieces: Arc::new(pieces),
        }
    }

    /// The scenario time at real time `real`.
    pub fn at(&self, real: DateTime<Utc>) -> DateTime<Utc> {
        let mut left = micros(real - self.origin);
        if left < 0.0 {
            return plus(self.start, from_micros(left * self.speed));
        }
        for (from, until, speed) in self.pieces.iter() {
            match until {
                Some(until) => {
                    let span = micros(*until - *from) / speed;
                    if left < span {
                        return plus(*from, from_micros(left * speed));
                    }
                    left -= span;
                }
                None => return plus(*from, from_micros(left * speed)),
            }
        }
        self.start
    }

    /// The real time at which the scenario clock reads `t`.
    pub fn real_time_of(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        if t < self.start {
            return plus(
                self.origin,
                from_micros(micros(t - self.start) / self.speed),
            );
        }
        let mut real = 0.0;
        for (from, until, speed) in self.pieces.iter() {
            match until {
                Some(until) if t >= *until => real += micros(*until - *from) / speed,
                _ => return plus(self.origin, from_micros(real + micros(t - *from) / speed)),
            }
        }
        plus(self.origin, from_micros(real))
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> DateTime<Utc> {
        self.at(Utc::now())
    }

    fn sleep_until(&self, t: DateTime<Utc>) -> Sleep {
        let wait = (self.real_time_of(t) - Utc::now())
            .to_std()
            .unwrap_or_default();
        Box::pin(tokio::time::sleep(wait))
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
    moved: Arc<Notify>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
            moved: Arc::new(Notify::new()),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        {
            let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
            *now += by;
        }
        self.moved.notify_waiters();
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = to;
        self.moved.notify_waiters();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sleep_until(&self, t: DateTime<Utc>) -> Sleep {
        let clock = self.clone();
        Box::pin(async move {
            loop {
                // Register before checking, so a move in between is not missed.
                let moved = clock.moved.notified();
                tokio::pin!(moved);
                moved.as_mut().enable();
                if clock.now() >= t {
                    return;
                }
                moved.await;
            }
        })
    }
}

/// Tocsin keeps times to the millisecond: signed times and stored times
/// must compare equal, and the store keeps milliseconds.
pub fn truncate_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_clock_wakes_sleepers_when_it_passes_their_time() {
        let start = Utc::now();
        let clock = ManualClock::new(start);
        let sleeper = tokio::spawn(clock.sleep_until(start + Duration::minutes(10)));
        clock.advance(Duration::minutes(5));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(Duration::minutes(5));
        tokio::time::timeout(std::time::Duration::from_secs(5), sleeper)
            .await
            .expect("woken")
            .unwrap();
    }

    #[test]
    fn a_scaled_clock_maps_real_time_to_scenario_time_and_back() {
        let start: DateTime<Utc> = "2014-12-01T00:00:00Z".parse().unwrap();
        let origin: DateTime<Utc> = "2026-11-23T10:00:00Z".parse().unwrap();
        let clock = ScaledClock::new(start, origin, 500_000.0);
        // One real minute is almost a year of scenario time.
        let later = clock.at(origin + Duration::minutes(1));
        assert_eq!(later, start + Duration::seconds(30_000_000));
        let t: DateTime<Utc> = "2015-06-01T00:00:00Z".parse().unwrap();
        let back = clock.at(clock.real_time_of(t));
        assert!((back - t).num_seconds().abs() <= 1, "{back} vs {t}");
        // Two nodes started apart still agree: the clock depends on origin,
        // not on when it was made.
        let again = ScaledClock::new(start, origin, 500_000.0);
        assert_eq!(
            again.at(origin + Duration::seconds(7)),
            clock.at(origin + Duration::seconds(7))
        );
    }

    #[test]
    fn paced_stretches_slow_the_clock_down_and_stay_consistent() {
        let start: DateTime<Utc> = "2015-01-01T00:00:00Z".parse().unwrap();
        let origin: DateTime<Utc> = "2026-11-23T10:00:00Z".parse().unwrap();
        let pace = Pace {
            from: "2015-01-02T00:00:00Z".parse().unwrap(),
            until: "2015-01-02T01:00:00Z".parse().unwrap(),
            speed: 60.0,
        };
        let clock = ScaledClock::with_pace(start, origin, 86_400.0, &[pace]);
        // One real second to reach the stretch, one real minute through it.
        assert_eq!(clock.at(origin + Duration::seconds(1)), pace.from);
        assert_eq!(clock.at(origin + Duration::seconds(61)), pace.until);
        assert_eq!(
            clock.at(origin + Duration::seconds(62)),
            pace.until + Duration::days(1)
        );
        for t in [
            "2015-01-01T12:00:00Z",
            "2015-01-02T00:30:00Z",
            "2015-01-05T00:00:00Z",
        ] {
            let t: DateTime<Utc> = t.parse().unwrap();
            let back = clock.at(clock.real_time_of(t));
            assert!((back - t).num_milliseconds().abs() <= 100, "{back} vs {t}");
        }
    }

    #[test]
    fn a_clock_too_fast_for_the_calendar_stops_at_the_end_of_time() {
        // Found by the configuration fuzz target: `speed = 0.1e20` in a
        // node's [clock] made the first reading of the clock panic.
        let start: DateTime<Utc> = "2014-12-01T00:00:00Z".parse().unwrap();
        let origin: DateTime<Utc> = "2026-11-23T10:00:00Z".parse().unwrap();
        let pace = Pace {
            from: "2015-01-01T00:00:00Z".parse().unwrap(),
            until: "2015-01-02T00:00:00Z".parse().unwrap(),
            speed: 1e19,
        };
        let clock = ScaledClock::with_pace(start, origin, 1e19, &[pace]);
        assert_eq!(
            clock.at(origin + Duration::seconds(1)),
            DateTime::<Utc>::MAX_UTC
        );
        assert_eq!(
            clock.at(origin - Duration::seconds(1)),
            DateTime::<Utc>::MIN_UTC
        );
        let _ = clock.now();
        // And back: the real time of any scenario time is a time.
        let slow = ScaledClock::new(DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MIN_UTC, 1.0);
        assert_eq!(slow.real_time_of(start), DateTime::<Utc>::MIN_UTC);
        let late = ScaledClock::new(DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC, 1.0);
        assert_eq!(late.real_time_of(start), DateTime::<Utc>::MAX_UTC);
    }

    #[test]
    fn truncation_drops_sub_millisecond_digits() {
        let t = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
        assert_eq!(truncate_ms(t).timestamp_subsec_nanos(), 123_000_000);
    }
}
