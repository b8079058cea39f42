//! What falls due: when the tracker wakes, this flags every deadline that
//! passed unanswered (OVERDUE, UNDELIVERED), checks the subjects of what it
//! flagged for REPEATED_UNANSWERED, takes the ladder steps that are due,
//! and says when the next thing falls.

use chrono::{DateTime, Utc};

use super::Node;
use crate::tracker::Due;

impl Due for Node {
    fn take_due(
        &self,
        now: DateTime<Utc>,
    ) -> futures::future::BoxFuture<'_, Option<DateTime<Utc>>> {
        Box::pin(async move {
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
                Err(e) => tracing::error!(error = %e, "tracker cannot flag deadlines"),
            }
            // Saturating: a node's clock may run anywhere, up to the end of
            // time.
            let retry = now
                .checked_add_signed(chrono::Duration::seconds(5))
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            let ladder = self.take_ladder_steps(now).await;
            if let Err(e) = &ladder {
                tracing::error!(error = %e, "tracker cannot take escalation steps");
            }
            match self.store.next_deadline().await {
                // A step left untaken is still due: look again later, not
                // at once and forever.
                Ok(next) if ladder.is_err() => next.map(|at| at.max(retry)),
                Ok(next) => next,
                Err(e) => {
                    tracing::error!(error = %e, "tracker cannot read deadlines");
                    Some(retry)
                }
            }
        })
    }
}
