//! The deadline tracker: decides *when* to look at what falls due, and owns
//! its loop and its wake-up handle ([`TrackerHandle`]). *What* it does when it
//! wakes (flag deadlines that passed unanswered, take ladder steps) is the
//! domain's, behind [`Due`]: the tracker knows nothing of the node.
//!
//! Deadlines are absolute times in the store. Each pass ends with the
//! earliest open one, and the tracker sleeps on the node's clock until it
//! falls, or until a new alert (perhaps with an earlier deadline) wakes it.
//! At start-up the first pass flags, in deadline order, everything that
//! fell while the node was down.
//!
//! The tracker is the only part of a node that sleeps on its clock, and
//! between passes it always does (until the end of time when nothing is
//! open): a clock that watches its sleepers knows when the tracker is
//! idle, which is how a scenario replayed on a `ManualClock` waits for
//! every flag and ladder step due at a time to be taken.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};
use tocsin_core::Clock;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::shutdown::Stopping;

/// Wakes the tracker, but only when a new deadline falls before the one it
/// sleeps until: a steady stream of alerts with later deadlines costs the
/// tracker nothing. Cheap to clone; the domain holds one.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrackerHandle(Arc<TrackerWake>);

#[derive(Debug)]
struct TrackerWake {
    notify: Notify,
    /// What the tracker sleeps until, in ms; `i64::MAX` while it is
    /// looking (so that anything new wakes it again) and when nothing is
    /// open.
    sleeping_until: AtomicI64,
}

impl Default for TrackerWake {
    fn default() -> Self {
        Self {
            notify: Notify::new(),
            sleeping_until: AtomicI64::new(i64::MAX),
        }
    }
}

impl TrackerHandle {
    /// A deadline or ladder step at `at` was committed.
    pub(crate) fn deadline(&self, at: DateTime<Utc>) {
        if at.timestamp_millis() < self.0.sleeping_until.load(Ordering::SeqCst) {
            self.0.notify.notify_one();
        }
    }
}

/// What the tracker does when it wakes: everything due at `now`, then the
/// time of the next deadline or step, if any. The domain implements it
/// (`domain::due`); the tracker only decides when.
pub(crate) trait Due: Send + Sync + 'static {
    /// Takes everything due at `now`; returns when the next thing falls.
    fn take_due(&self, now: DateTime<Utc>)
    -> futures::future::BoxFuture<'_, Option<DateTime<Utc>>>;
}

/// The deadline tracker, before it starts: its [`handle`](Self::handle)
/// goes to whoever commits deadlines (the domain, which is also what the
/// tracker calls, so the handle comes first), then [`start`](Self::start)
/// runs it.
#[derive(Debug)]
pub(crate) struct Tracker {
    clock: Arc<dyn Clock>,
    wake: TrackerHandle,
}

impl Tracker {
    /// A tracker that sleeps on `clock`.
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            wake: TrackerHandle::default(),
        }
    }

    /// The handle that wakes this tracker.
    pub(crate) fn handle(&self) -> TrackerHandle {
        self.wake.clone()
    }

    /// Runs the tracker in a task of its own until the node stops: `due`
    /// takes what falls due.
    pub(crate) fn start(self, due: impl Due, stopping: Stopping) -> JoinHandle<()> {
        tokio::spawn(self.run(due, stopping))
    }

    async fn run(self, due: impl Due, mut stopping: Stopping) {
        let Self { clock, wake } = self;
        let wake = wake.0;
        loop {
            if stopping.is_stopped() {
                return;
            }
            // Register for wake-ups before looking, so none is missed: while
            // it looks, every new deadline wakes it (a deadline committed after
            // the read below would otherwise be slept through).
            wake.sleeping_until.store(i64::MAX, Ordering::SeqCst);
            let woken = wake.notify.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();

            let next = due.take_due(clock.now()).await;
            // A deadline committed after the pass read the store either saw
            // MAX and woke us, or sees this and wakes us only if it comes first.
            wake.sleeping_until.store(
                next.map_or(i64::MAX, |at| at.timestamp_millis()),
                Ordering::SeqCst,
            );
            // With nothing open it still sleeps on the clock (until the end of
            // time): a test's clock then sees, by its sleepers, that the
            // tracker has finished its pass.
            let sleep = clock.sleep_until(next.unwrap_or(DateTime::<Utc>::MAX_UTC));
            tokio::select! {
                _ = sleep => {}
                _ = &mut woken => {}
                _ = stopping.stopped() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deadline committed while the tracker looks (after it read the
    /// store, before it went to sleep) must wake it: it was slept through
    /// once, and the delivery was never flagged.
    #[test]
    fn a_deadline_while_looking_wakes_the_tracker() {
        let handle = TrackerHandle::default();
        let wake = &handle.0;
        let notified = wake.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // As at the start of each pass.
        wake.sleeping_until.store(i64::MAX, Ordering::SeqCst);
        handle.deadline(Utc::now());
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(notified.as_mut().poll(&mut cx).is_ready());

        // Sleeping until a later time: an earlier deadline wakes it, a
        // later one does not.
        let now = Utc::now();
        wake.sleeping_until
            .store(now.timestamp_millis(), Ordering::SeqCst);
        let later = wake.notify.notified();
        tokio::pin!(later);
        later.as_mut().enable();
        handle.deadline(now + chrono::Duration::minutes(1));
        assert!(later.as_mut().poll(&mut cx).is_pending());
        handle.deadline(now - chrono::Duration::minutes(1));
        assert!(later.as_mut().poll(&mut cx).is_ready());
    }
}
