//! The deadline tracker: flags every delivery (originator side) and every
//! received alert (recipient side) whose deadline passes without an
//! acknowledgement.
//!
//! Deadlines are absolute times in the store. The tracker asks the store for
//! the earliest open one and sleeps on the node's clock until it falls, or
//! until a new alert (perhaps with an earlier deadline) wakes it. At
//! start-up the first pass flags, in deadline order, everything that fell
//! while the node was down.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

/// Wakes the tracker, but only when a new deadline falls before the one it
/// sleeps until: a steady stream of alerts with later deadlines costs the
/// tracker nothing.
#[derive(Debug)]
pub(crate) struct TrackerWake {
    notify: Notify,
    /// What the tracker sleeps until, in ms; `i64::MIN` while it is
    /// looking (so anything new wakes it again), `i64::MAX` when nothing
    /// is open.
    sleeping_until: AtomicI64,
}

impl Default for TrackerWake {
    fn default() -> Self {
        Self {
            notify: Notify::new(),
            sleeping_until: AtomicI64::new(i64::MIN),
        }
    }
}

impl TrackerWake {
    /// A deadline or ladder step at `at` was committed.
    pub(crate) fn deadline(&self, at: DateTime<Utc>) {
        if at.timestamp_millis() < self.sleeping_until.load(Ordering::SeqCst) {
            self.notify.notify_one();
        }
    }
}

/// Runs the tracker of `node` until the node shuts down.
pub(crate) async fn run(node: crate::domain::Node) {
    let (store, clock, wake) = (node.store.clone(), node.clock.clone(), node.tracker.clone());
    let mut shutdown = node.shutdown.clone();
    loop {
        if *shutdown.borrow() {
            return;
        }
        // Register for wake-ups before looking, so none is missed.
        wake.sleeping_until.store(i64::MIN, Ordering::SeqCst);
        let woken = wake.notify.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();

        let now = clock.now();
        match store.flag_overdue(now).await {
            Ok(flagged) => {
                if !flagged.is_empty()
                    && let Err(e) = node.check_repeated(&flagged, now).await
                {
                    tracing::error!(error = %e, "tracker cannot check repeated warnings");
                }
                for f in &flagged {
                    tracing::warn!(
                        alert = %f.alert_id,
                        agency = %f.agency,
                        flag = if f.flag == tocsin_store::flag::UNDELIVERED { "UNDELIVERED" } else { "OVERDUE" },
                        due = %f.due_at,
                        "deadline passed without acknowledgement"
                    );
                }
            }
            Err(e) => tracing::error!(error = %e, "tracker cannot flag deadlines"),
        }
        if let Err(e) = node.take_ladder_steps(now).await {
            tracing::error!(error = %e, "tracker cannot take escalation steps");
        }
        let next = match store.next_deadline().await {
            Ok(next) => next,
            Err(e) => {
                tracing::error!(error = %e, "tracker cannot read deadlines");
                Some(now + chrono::Duration::seconds(5))
            }
        };
        // A deadline committed after the read above either saw MIN and
        // woke us, or sees this and wakes us only if it comes first.
        wake.sleeping_until.store(
            next.map_or(i64::MAX, |at| at.timestamp_millis()),
            Ordering::SeqCst,
        );
        let sleep = match next {
            Some(at) => clock.sleep_until(at),
            None => Box::pin(std::future::pending()),
        };
        tokio::select! {
            _ = sleep => {}
            _ = &mut woken => {}
            _ = shutdown.changed() => return,
        }
    }
}
