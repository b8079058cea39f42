//! Acknowledgements: this agency's, signed and queued for the originator,
//! and recipients' received from peers.

use crate::Error;
use crate::views::{self, AckView};
use tocsin_core::alert::Disposition;
use tocsin_core::{AgencyId, AlertId, Identity};
use tocsin_proto::pb;
use tocsin_store::Direction;

use super::{Node, ack_row};

/// What a retried acknowledgement must match to be the same call.
struct Retried {
    id: AlertId,
    operator: String,
    disposition: Disposition,
    note: String,
}

impl Node {
    /// An operator of this agency acknowledges an alert it received. The
    /// acknowledgement is signed, stored and queued for the originator in one
    /// transaction. With an `id` of the caller's choosing the call is safe
    /// to retry: the same id and content again answers with what the first
    /// call stored (see [`Node::reacknowledgement`]).
    pub(crate) async fn acknowledge(
        &self,
        operator: &Identity,
        alert_id: &str,
        disposition: Disposition,
        note: String,
        id: Option<AlertId>,
    ) -> Result<AckView, Error> {
        let Identity::Operator { agency, name } = operator else {
            return Err(Error::PermissionDenied(format!(
                "{operator} is not an operator"
            )));
        };
        if agency != &self.agency {
            return Err(Error::PermissionDenied(format!(
                "{operator} cannot act for {}",
                self.agency
            )));
        }
        tocsin_core::ack::check_note(&note)?;
        let Some(row) = self.store.alert(alert_id).await? else {
            return Err(Error::NotFound(format!(
                "no alert {alert_id:?} on {}",
                self.agency
            )));
        };
        if row.direction != Direction::Inbound {
            return Err(Error::PermissionDenied(format!(
                "alert {alert_id} was sent by {}: only its recipients acknowledge it",
                self.agency
            )));
        }
        let retry = id.map(|id| Retried {
            id,
            operator: name.clone(),
            disposition,
            note: note.clone(),
        });
        if let Some(retry) = &retry
            && let Some(earlier) = self.reacknowledgement(alert_id, retry).await?
        {
            return Ok(earlier);
        }
        let alert = views::decode_alert(&row.envelope)?;
        let digest = views::stored_digest(&row.digest)?;
        let now = tocsin_core::clock::truncate_ms(self.clock.now());
        let ack = tocsin_core::ack::Acknowledgement {
            id: retry.as_ref().map_or_else(AlertId::generate, |r| r.id),
            alert_id: alert.id,
            alert_digest: digest,
            recipient: self.agency.clone(),
            operator: name.clone(),
            disposition,
            note,
            acknowledged_at: now,
        };
        let envelope = tocsin_trust::ack::sign(&self.signer, &ack);
        let stored = ack_row(&ack, &envelope, now);
        let late = row.due_at.map(|due| now - due).unwrap_or_default();
        let detail = format!("we acknowledged {disposition}{}", late_phrase(late));
        match self
            .store
            .insert_own_ack(stored.clone(), alert.originator.to_string(), detail)
            .await
        {
            Ok(()) => {}
            // The id is taken: by a retry of this call that won the race
            // (on another front node), or by another acknowledgement.
            Err(tocsin_store::Error::Conflict(_)) => {
                let earlier = match &retry {
                    Some(retry) => self.reacknowledgement(alert_id, retry).await?,
                    None => None,
                };
                return earlier.ok_or_else(|| {
                    Error::AlreadyExists(format!("acknowledgement {} already exists", ack.id))
                });
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(alert = %alert.id, disposition = %disposition, operator = %name, "alert acknowledged");
        self.outbox.wake(std::slice::from_ref(&alert.originator));
        views::ack(
            &tocsin_store::AckRow {
                ack: stored,
                delivered: false,
                refusal: None,
            },
            row.due_at,
        )
    }

    /// If this alert already holds an acknowledgement with the retried
    /// call's id: it, when it is the same (a retried call), and
    /// `AlreadyExists` when it says something else.
    async fn reacknowledgement(
        &self,
        alert_id: &str,
        retry: &Retried,
    ) -> Result<Option<AckView>, Error> {
        let Some(history) = self.store.alert_history(alert_id).await? else {
            return Ok(None);
        };
        let id = retry.id.to_string();
        let Some(earlier) = history.acks.iter().find(|a| a.ack.id == id) else {
            return Ok(None);
        };
        let same = earlier.ack.operator == retry.operator
            && earlier.ack.disposition == retry.disposition.to_wire()
            && earlier.ack.note == retry.note;
        if !same {
            return Err(Error::AlreadyExists(format!(
                "acknowledgement {id} already exists with different content"
            )));
        }
        views::ack(earlier, history.alert.due_at).map(Some)
    }

    /// Receives a recipient's signed acknowledgement of an alert this agency
    /// sent.
    pub(crate) async fn receive_ack(
        &self,
        caller: &AgencyId,
        envelope: pb::Envelope,
    ) -> Result<(), Error> {
        use tocsin_trust::ack::AckError;
        let expected = tocsin_trust::ack::Expected {
            recipient: Some(caller.as_str()),
            ..Default::default()
        };
        let ack =
            tocsin_trust::ack::verify(&self.verifier, &envelope, expected).map_err(
                |e| match e {
                    AckError::Signer { signer, .. } => Error::PermissionDenied(format!(
                        "acknowledgement signed by {signer} cannot be delivered by {caller}"
                    )),
                    AckError::Decode(e) => Error::InvalidArgument(format!(
                        "envelope payload is not an acknowledgement: {e}"
                    )),
                    AckError::Recipient { recipient, .. } => Error::PermissionDenied(format!(
                        "acknowledgement by {recipient} cannot come from {caller}"
                    )),
                    other => Error::InvalidArgument(other.to_string()),
                },
            )?;
        let Some(row) = self.store.alert(&ack.alert_id.to_string()).await? else {
            return Err(Error::NotFound(format!(
                "no alert {} on {}",
                ack.alert_id, self.agency
            )));
        };
        if tocsin_trust::ack::check_digest(&ack, &row.digest).is_err() {
            return Err(Error::InvalidArgument(format!(
                "acknowledgement of alert {} does not match the alert sent (digest differs)",
                ack.alert_id
            )));
        }
        let now = tocsin_core::clock::truncate_ms(self.clock.now());
        let late = row
            .due_at
            .map(|due| ack.acknowledged_at - due)
            .unwrap_or_default();
        let detail = format!(
            "{caller} acknowledged {}{}",
            ack.disposition,
            late_phrase(late)
        );
        match self
            .store
            .record_received_ack(ack_row(&ack, &envelope, now), detail)
            .await
        {
            Ok(tocsin_store::AckOutcome::Stored) => {
                tracing::info!(alert = %ack.alert_id, from = %caller, disposition = %ack.disposition, "acknowledgement received");
                Ok(())
            }
            Ok(tocsin_store::AckOutcome::Duplicate) => Ok(()),
            Err(tocsin_store::Error::NotFound(m)) => Err(Error::PermissionDenied(m)),
            Err(tocsin_store::Error::Conflict(id)) => Err(Error::AlreadyExists(format!(
                "acknowledgement {id} was already received with different content"
            ))),
            Err(e) => Err(e.into()),
        }
    }
}

fn late_phrase(late: chrono::Duration) -> String {
    if late <= chrono::Duration::zero() {
        return String::new();
    }
    let minutes = u64::try_from(late.num_minutes()).unwrap_or(0);
    format!(
        " (late by {})",
        humantime::format_duration(std::time::Duration::from_secs(minutes.max(1) * 60))
    )
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Fixture, agency, flash_about};
    use crate::Error;
    use tocsin_core::alert::Disposition;
    use tocsin_store::{EventKind, MessageKind};

    /// A node that received a FLASH alert from TR-MIT, and the alert's id.
    async fn received_flash() -> (Fixture, String) {
        let f = Fixture::new();
        let tr = f.signer_of("TR-MIT");
        let envelope = f.signed_alert(&tr, "TR-MIT", flash_about("Jean Dupont", &["FR-DGSI"]));
        f.node.receive(&agency("TR-MIT"), envelope).await.unwrap();
        let id = f.node.list(None, 1).await.unwrap()[0].alert.id.to_string();
        (f, id)
    }

    #[tokio::test]
    async fn an_acknowledgement_is_recorded_and_queued_for_the_originator() {
        let (f, id) = received_flash().await;
        // Seven minutes on: two minutes past the FLASH deadline.
        f.clock.advance(chrono::Duration::minutes(7));
        let ack = f
            .node
            .acknowledge(
                &f.operator(),
                &id,
                Disposition::Actioned,
                "on it".into(),
                None,
            )
            .await
            .unwrap();
        assert_eq!(ack.ack.disposition, Disposition::Actioned);
        assert_eq!(ack.ack.operator, "analyst");
        assert_eq!(ack.late_by_seconds, 120);
        assert!(!ack.delivered);

        let queued = f
            .store
            .due_messages("TR-MIT", f.node.now(), 10)
            .await
            .unwrap();
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].kind, Ok(MessageKind::Ack));
        assert_eq!(queued[0].id, ack.ack.id.to_string());
        let view = f.node.get(&id).await.unwrap().unwrap();
        assert_eq!(view.acknowledgements.len(), 1);
        let last = f.events().await.pop().unwrap();
        assert_eq!(last.kind, EventKind::Acknowledged);
        assert!(
            last.detail.starts_with("we acknowledged"),
            "{}",
            last.detail
        );
        assert!(last.detail.ends_with("(late by 2m)"), "{}", last.detail);
    }

    #[tokio::test]
    async fn only_a_recipient_acknowledges() {
        let f = Fixture::new();
        let sent = f.send(flash_about("Jean Dupont", &["TR-MIT"])).await;
        let err = f
            .node
            .acknowledge(
                &f.operator(),
                &sent.alert.id.to_string(),
                Disposition::Noted,
                String::new(),
                None,
            )
            .await
            .expect_err("our own alert");
        assert!(matches!(err, Error::PermissionDenied(_)), "{err:?}");
        assert!(
            f.store
                .due_messages("TR-MIT", f.node.now(), 10)
                .await
                .unwrap()
                .is_empty()
        );
    }

    /// A call retried with its id, after its answer was lost, answers with
    /// the acknowledgement the first stored and stores nothing more; the
    /// same id saying something else is refused.
    #[tokio::test]
    async fn an_acknowledgement_retried_with_its_id_is_stored_once() {
        let (f, id) = received_flash().await;
        let ack_id = tocsin_core::AlertId::generate();
        let operator = f.operator();
        let ack = |disposition, note: &str| {
            f.node
                .acknowledge(&operator, &id, disposition, note.to_owned(), Some(ack_id))
        };
        let first = ack(Disposition::Noted, "seen").await.unwrap();
        assert_eq!(first.ack.id, ack_id);
        f.clock.advance(chrono::Duration::minutes(1));
        let again = ack(Disposition::Noted, "seen").await.unwrap();
        assert_eq!(again.ack, first.ack);
        let other = ack(Disposition::Actioned, "seen")
            .await
            .expect_err("other content");
        assert!(
            matches!(&other, Error::AlreadyExists(m) if m.ends_with("with different content")),
            "{other:?}"
        );
        let view = f.node.get(&id).await.unwrap().unwrap();
        assert_eq!(view.acknowledgements.len(), 1);
        let queued = f
            .store
            .due_messages("TR-MIT", f.node.now(), 10)
            .await
            .unwrap();
        assert_eq!(queued.len(), 1);
        let acks = f
            .events()
            .await
            .into_iter()
            .filter(|e| e.kind == EventKind::Acknowledged)
            .count();
        assert_eq!(acks, 1);
    }
}
