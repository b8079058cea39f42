//! Submitting an alert from this agency's operators: validation, signing,
//! committing it with one outbox entry per recipient; resubmission by id.

use crate::Error;
use crate::views;
use prost::Message;
use tocsin_core::{Alert, AlertId, Identity, ValidationError, to_timestamp};
use tocsin_proto::{ALERT_PAYLOAD_TYPE, pb};
use tocsin_store::Direction;

use super::{Node, outbound_row};

impl Node {
    /// Accepts an alert from one of this agency's operators. Returns once the
    /// alert and its outbox entries are committed; delivery follows.
    pub(crate) async fn submit(
        &self,
        operator: &Identity,
        mut wire: pb::Alert,
    ) -> Result<pb::AlertRecord, Error> {
        if operator.agency() != &self.agency {
            return Err(Error::PermissionDenied(format!(
                "{operator} cannot act for {}",
                self.agency
            )));
        }
        if !wire.originator.is_empty() && wire.originator != self.agency.as_str() {
            return Err(Error::PermissionDenied(format!(
                "originator {:?} is not this node's agency {}: an operator sends only for its own agency",
                wire.originator, self.agency
            )));
        }
        let now = tocsin_core::clock::truncate_ms(self.clock.now());
        let client_id = !wire.id.is_empty();
        if !client_id {
            wire.id = AlertId::generate().to_string();
        }
        wire.originator = self.agency.to_string();
        wire.created_at = Some(to_timestamp(now));
        let alert = Alert::try_from(wire)?;
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
        views::record(&stored)
    }

    /// If an alert with this id is stored: the stored record when it is the
    /// same alert (a retried submission), `AlreadyExists` otherwise.
    async fn resubmission(&self, alert: &Alert) -> Result<Option<pb::AlertRecord>, Error> {
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
        Ok(Some(views::record(&history)?))
    }
}
