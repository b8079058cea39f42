//! Submitting an alert from this agency's operators: validation, signing,
//! committing it with one outbox entry per recipient; resubmission by id.

use crate::Error;
use crate::views::{self, AlertView};
use prost::Message;
use tocsin_core::{Alert, Identity, ValidationError};
use tocsin_proto::{ALERT_PAYLOAD_TYPE, pb};
use tocsin_store::Direction;

use super::{Node, outbound_row};

/// An alert an operator submits, as the operator service received it:
/// validated, with this node as originator and its creation time set.
#[derive(Debug, Clone)]
pub(crate) struct Submission {
    /// The alert.
    pub(crate) alert: Alert,
    /// Whether the operator chose its id: a retried submission of the
    /// same alert then gets the stored record back.
    pub(crate) client_id: bool,
}

impl Node {
    /// Accepts an alert from one of this agency's operators. Returns once the
    /// alert and its outbox entries are committed; delivery follows.
    pub(crate) async fn submit(
        &self,
        operator: &Identity,
        submission: Submission,
    ) -> Result<AlertView, Error> {
        let Submission { alert, client_id } = submission;
        if operator.agency() != &self.agency {
            return Err(Error::PermissionDenied(format!(
                "{operator} cannot act for {}",
                self.agency
            )));
        }
        if alert.originator != self.agency {
            return Err(Error::PermissionDenied(format!(
                "originator {:?} is not this node's agency {}: an operator sends only for its own agency",
                alert.originator.as_str(),
                self.agency
            )));
        }
        if alert.hit.is_some() {
            // A hit report states what this node's own screen found; an
            // operator asks for one by screening, not by writing it.
            return Err(ValidationError::new(
                "hit",
                "hit reports are sent by screening (WatchlistDesk.Screen), not submitted",
            )
            .into());
        }
        // The creation time is the node's, set as the alert was submitted.
        let now = alert.created_at;
        alert.check_timely(now)?;
        for (i, r) in alert.recipients.iter().enumerate() {
            if !self.federation.is_member(r) {
                return Err(ValidationError::new(
                    format!("recipients[{i}]"),
                    format!(
                        "{r} is not an agency of federation {}",
                        self.federation.id()
                    ),
                )
                .into());
            }
        }
        // An alert may update, supersede or cancel only this agency's own
        // earlier alerts.
        for (i, r) in alert.references.iter().enumerate() {
            let ours = self
                .store
                .alert(&r.alert_id.to_string())
                .await?
                .is_some_and(|row| row.direction == Direction::Outbound);
            if !ours {
                return Err(ValidationError::new(
                    format!("references[{i}].alert_id"),
                    format!("{} sent no alert {}", self.agency, r.alert_id),
                )
                .into());
            }
        }
        if client_id && let Some(existing) = self.resubmission(&alert).await? {
            return Ok(existing);
        }

        let payload = pb::Alert::from(&alert).encode_to_vec();
        let envelope = self.signer.sign(ALERT_PAYLOAD_TYPE, payload);
        let row = outbound_row(&self.federation, &alert, &envelope, now);
        // The first ladder step never comes before the deadline (the
        // federation file is checked for that), so the deadline is what the
        // tracker may have to wake for.
        let due_at = row.due_at;
        let recipients: Vec<String> = alert.recipients.iter().map(ToString::to_string).collect();
        let stored = match self.store.insert_outbound(row, recipients).await {
            Ok(stored) => stored,
            Err(tocsin_store::Error::Conflict(_)) => {
                // Lost a race with an identical resubmission, or the id is taken.
                return match self.resubmission(&alert).await? {
                    Some(existing) => Ok(existing),
                    None => Err(Error::AlreadyExists(format!(
                        "alert {} already exists",
                        alert.id
                    ))),
                };
            }
            Err(e) => return Err(e.into()),
        };
        tracing::info!(alert = %alert.id, precedence = %alert.precedence, recipients = alert.recipients.len(), "alert accepted");
        self.outbox.wake(&alert.recipients);
        self.tracker.deadline(due_at);
        views::alert(&stored)
    }

    /// If an alert with this id is stored: the stored record when it is the
    /// same alert (a retried submission), `AlreadyExists` otherwise.
    async fn resubmission(&self, alert: &Alert) -> Result<Option<AlertView>, Error> {
        let Some(history) = self.store.alert_history(&alert.id.to_string()).await? else {
            return Ok(None);
        };
        let row = &history.alert;
        let same = row.direction == Direction::Outbound
            && views::decode_alert(&row.envelope)
                .map(|stored| {
                    let mut candidate = alert.clone();
                    candidate.created_at = stored.created_at;
                    candidate == stored
                })
                .unwrap_or(false);
        if !same {
            return Err(Error::AlreadyExists(format!(
                "alert {} already exists with different content",
                alert.id
            )));
        }
        Ok(Some(views::alert(&history)?))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Fixture, flash_about};
    use crate::Error;
    use crate::views::DeliveryStatus;
    use tocsin_store::{Direction, EventKind};

    #[tokio::test]
    async fn an_unknown_recipient_is_refused_by_its_field() {
        let f = Fixture::new();
        let submission = f.submission(flash_about("Ahmet Yilmaz", &["TR-MIT", "DE-BND"]));
        let err = f
            .node
            .submit(&f.operator(), submission)
            .await
            .expect_err("DE-BND is no member");
        let Error::InvalidArgument(message) = err else {
            panic!("not INVALID_ARGUMENT: {err:?}");
        };
        assert_eq!(
            message,
            "invalid field `recipients[1]`: DE-BND is not an agency of federation test.tocsin"
        );
        assert!(f.node.list(None, 10).await.unwrap().is_empty());
        assert!(f.events().await.is_empty());
    }

    #[tokio::test]
    async fn an_accepted_alert_is_stored_with_its_deadline_and_outbox_entry() {
        let f = Fixture::new();
        let submission = f.submission(flash_about("Ahmet Yilmaz", &["TR-MIT"]));
        let id = submission.alert.id;
        let view = f.node.submit(&f.operator(), submission).await.unwrap();
        assert_eq!(view.alert.id, id);
        assert_eq!(view.direction, Direction::Outbound);
        assert_eq!(
            view.due_at,
            Some(view.alert.created_at + chrono::Duration::minutes(5))
        );
        assert_eq!(view.deliveries.len(), 1);
        assert_eq!(view.deliveries[0].recipient, "TR-MIT");
        assert_eq!(view.deliveries[0].status, DeliveryStatus::Pending);
        assert!(view.submission_warnings().is_empty());
        let events = f.events().await;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, EventKind::Submitted);
    }

    #[tokio::test]
    async fn a_resubmission_by_id_gets_the_stored_alert_and_other_content_is_refused() {
        let f = Fixture::new();
        let mut wire = flash_about("Ahmet Yilmaz", &["TR-MIT"]);
        wire.id = tocsin_core::AlertId::generate().to_string();
        let first = f.send(wire.clone()).await;
        // A retry a minute later, as after a lost answer.
        f.clock.advance(chrono::Duration::minutes(1));
        let again = f.send(wire.clone()).await;
        assert_eq!(again.alert, first.alert);
        assert_eq!(again.envelope, first.envelope);
        wire.text = "Something else.".into();
        let err = f
            .node
            .submit(&f.operator(), f.submission(wire))
            .await
            .expect_err("same id, other content");
        assert!(
            matches!(&err, Error::AlreadyExists(m) if m.ends_with("already exists with different content")),
            "{err:?}"
        );
        assert_eq!(f.node.list(None, 10).await.unwrap().len(), 1);
    }
}
