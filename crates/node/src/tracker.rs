//! The deadline tracker: flags every delivery (originator side) and every
//! received alert (recipient side) whose deadline passes without an
//! acknowledgement.
//!
//! Deadlines are absolute times in the store. The tracker asks the store for
//! the earliest open one and sleeps on the node's clock until it falls, or
//! until a new alert (perhaps with an earlier deadline) wakes it. At
//! start-up the first pass flags, in deadline order, everything that fell
//! while the node was down.

use std::sync::Arc;

use tocsin_core::Clock;
use tocsin_store::Store;
use tokio::sync::{Notify, watch};

pub(crate) struct Tracker {
    pub(crate) node: crate::domain::Node,
    pub(crate) store: Store,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) wake: Arc<Notify>,
    pub(crate) shutdown: watch::Receiver<bool>,
}

impl Tracker {
    pub(crate) async fn run(mut self) {
        loop {
            if *self.shutdown.borrow() {
                return;
            }
            // Register for wake-ups before looking, so none is missed.
            let woken = self.wake.clone();
            let woken = woken.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();

            let now = self.clock.now();
            match self.store.flag_overdue(now).await {
                Ok(flagged) => {
                    if !flagged.is_empty()
                        && let Err(e) = self.node.check_repeated(&flagged, now).await
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
            if let Err(e) = self.node.take_ladder_steps(now).await {
                tracing::error!(error = %e, "tracker cannot take escalation steps");
            }
            let next = match self.store.next_deadline().await {
                Ok(next) => next,
                Err(e) => {
                    tracing::error!(error = %e, "tracker cannot read deadlines");
                    Some(now + chrono::Duration::seconds(5))
                }
            };
            let sleep = match next {
                Some(at) => self.clock.sleep_until(at),
                None => Box::pin(std::future::pending()),
            };
            tokio::select! {
                _ = sleep => {}
                _ = &mut woken => {}
                _ = self.shutdown.changed() => return,
            }
        }
    }
}
