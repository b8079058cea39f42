//! What falls due: when the tracker wakes, this flags every deadline that
//! passed unanswered (OVERDUE, UNDELIVERED), checks the subjects of what it
//! flagged for REPEATED_UNANSWERED, takes the ladder steps that are due,
//! and says when the next thing falls.

use chrono::{DateTime, Utc};

use super::Node;
use crate::tracker::Due;

/// How long the tracker's lease lasts on the node's clock, on a store
/// that several front nodes share (PostgreSQL): a front node that dies
/// holding it leaves deadlines unflagged for at most this long.
const TRACKER_LEASE_TTL: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

impl Due for Node {
    fn take_due(
        &self,
        now: DateTime<Utc>,
    ) -> futures::future::BoxFuture<'_, Option<DateTime<Utc>>> {
        Box::pin(async move {
            // Several front nodes of one agency (PostgreSQL) share the
            // tracker's work: only the lease's holder does a pass. Another
            // node looks again when the lease may have lapsed; the holder
            // renews it at half its life. A write refused because the
            // lease was lost (fencing) ends the pass.
            let standby = now
                .checked_add_signed(TRACKER_LEASE_TTL)
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            let renew_by = match self
                .store
                .hold_lease(tocsin_store::TRACKER_LEASE, now, TRACKER_LEASE_TTL)
                .await
            {
                Ok(Some(lease)) => lease.expires_at.map(|_| {
                    now.checked_add_signed(TRACKER_LEASE_TTL / 2)
                        .unwrap_or(standby)
                }),
                Ok(None) => {
                    tracing::debug!("another front node holds the tracker's lease");
                    return Some(standby);
                }
                Err(e) => {
                    tracing::error!(error = %e, "tracker cannot take its lease");
                    return Some(standby);
                }
            };
            match self.store.flag_overdue(now, super::wording::flagged).await {
                Ok(flagged) => {
                    if !flagged.is_empty()
                        && let Err(e) = self.check_repeated(&flagged, now).await
                    {
                        tracing::error!(error = %e, "tracker cannot check repeated warnings");
                    }
                    for f in &flagged {
                        let flag = if f.flag == tocsin_store::DeadlineFlag::Undelivered {
                            "UNDELIVERED"
                        } else {
                            "OVERDUE"
                        };
                        tracing::warn!(
                            alert = %f.alert_id,
                            agency = %f.agency,
                            flag,
                            due = %f.due_at,
                            "deadline passed without acknowledgement"
                        );
                    }
                }
                Err(tocsin_store::Error::LeaseLost { .. }) => {
                    tracing::warn!("tracker lost its lease to another front node");
                    return Some(standby);
                }
                Err(e) => tracing::error!(error = %e, "tracker cannot flag deadlines"),
            }
            // Saturating: a node's clock may run anywhere, up to the end of
            // time.
            let retry = now
                .checked_add_signed(chrono::Duration::seconds(5))
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            let ladder = self.take_ladder_steps(now).await;
            if let Err(crate::error::Error::Store(tocsin_store::Error::LeaseLost { .. })) = &ladder
            {
                tracing::warn!("tracker lost its lease to another front node");
                return Some(standby);
            }
            if let Err(e) = &ladder {
                tracing::error!(error = %e, "tracker cannot take escalation steps");
            }
            let next = match self.store.next_deadline().await {
                // A step left untaken is still due: look again later, not
                // at once and forever.
                Ok(next) if ladder.is_err() => next.map(|at| at.max(retry)),
                Ok(next) => next,
                Err(e) => {
                    tracing::error!(error = %e, "tracker cannot read deadlines");
                    Some(retry)
                }
            };
            // SQLite's lease never lapses: nothing to renew.
            match (next, renew_by) {
                (Some(next), Some(renew)) => Some(next.min(renew)),
                (next, renew) => next.or(renew),
            }
        })
    }
}
