//! The escalation ladder: taking the steps that are due (reminders,
//! escalations, notices to observers, LAPSED), and receiving reminders and
//! notices from others.

use crate::Error;
use prost::Message;
use tocsin_core::{AgencyId, AlertId, to_timestamp};
use tocsin_proto::pb;
use tocsin_store::LadderStep;

use super::Node;

impl Node {
    /// Takes every escalation step that is due: reminds, escalates (a
    /// reminder one precedence higher and notices to the observers), and
    /// finally marks the delivery LAPSED. Each step is recorded with its
    /// messages and event in one transaction.
    pub(crate) async fn take_ladder_steps(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<usize, Error> {
        use tocsin_core::alert::Precedence;
        let due = self.store.due_steps(now).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let mut steps = Vec::with_capacity(due.len());
        let mut corrupt = None;
        for d in due {
            let precedence = Precedence::from_wire(d.precedence)?;
            let allowance = self.federation.deadlines.for_precedence(precedence);
            // The store lists only deliveries with a rung left.
            let Some(ladder) = d.ladder.next() else {
                continue;
            };
            let rung = ladder.code();
            let next_step_at = (ladder != LadderStep::Lapsed).then(|| {
                self.federation.escalation.step_at(
                    u8::try_from(rung + 1).unwrap_or(3),
                    d.due_at,
                    allowance,
                )
            });
            // A reminder names the alert by its digest: with none to name,
            // the step waits rather than signing a placeholder.
            let digest = match crate::views::stored_digest(&d.digest) {
                Ok(digest) => digest,
                Err(e) => {
                    tracing::error!(alert = %d.alert_id, recipient = %d.recipient, error = %e, "escalation step not taken");
                    corrupt.get_or_insert(e);
                    continue;
                }
            };
            let mut messages = Vec::new();
            let (event_kind, detail) = match ladder {
                LadderStep::Reminded | LadderStep::Escalated => {
                    let raised = if ladder == LadderStep::Escalated {
                        raise(precedence)
                    } else {
                        precedence
                    };
                    if d.delivered {
                        messages.push(self.reminder(&d, digest, rung, raised, now));
                    }
                    let mut notified = Vec::new();
                    if ladder == LadderStep::Escalated {
                        for observer in self.federation.agencies.iter().filter(|a| {
                            a.observer && a.id != self.agency && a.id.as_str() != d.recipient
                        }) {
                            messages.push(self.notice(&d, precedence, &observer.id, now));
                            notified.push(observer.id.to_string());
                        }
                    }
                    let reminder = if d.delivered {
                        format!("reminder sent to {} at {raised}", d.recipient)
                    } else {
                        format!(
                            "{} never received the alert; no reminder possible",
                            d.recipient
                        )
                    };
                    if ladder == LadderStep::Reminded {
                        (tocsin_store::EventKind::Reminded, reminder)
                    } else {
                        let told = if notified.is_empty() {
                            "no observers to notify".to_owned()
                        } else {
                            format!("observers notified: {}", notified.join(", "))
                        };
                        (
                            tocsin_store::EventKind::Escalated,
                            format!("escalated: {reminder}; {told}"),
                        )
                    }
                }
                _ => (
                    tocsin_store::EventKind::Lapsed,
                    format!(
                        "LAPSED: the ladder ran out with no acknowledgement from {} (deadline {})",
                        d.recipient,
                        d.due_at.format("%Y-%m-%d %H:%M UTC")
                    ),
                ),
            };
            tracing::warn!(alert = %d.alert_id, recipient = %d.recipient, step = rung, "{detail}");
            steps.push(tocsin_store::StepTaken {
                alert_id: d.alert_id.clone(),
                recipient: d.recipient.clone(),
                ladder,
                next_step_at,
                messages,
                event_kind,
                detail,
                at: d.step_at.min(now),
            });
        }
        let peers: Vec<AgencyId> = steps
            .iter()
            .flat_map(|s| s.messages.iter().map(|m| m.peer.clone()))
            .filter_map(|p| AgencyId::new(p).ok())
            .collect();
        let taken = self.store.take_steps(steps).await?;
        self.outbox.wake(&peers);
        match corrupt {
            Some(e) => Err(e),
            None => Ok(taken),
        }
    }

    fn reminder(
        &self,
        d: &tocsin_store::DueStep,
        digest: [u8; 32],
        step: i64,
        precedence: tocsin_core::alert::Precedence,
        now: chrono::DateTime<chrono::Utc>,
    ) -> tocsin_store::NewMessage {
        let id = AlertId::generate().to_string();
        let reminder = pb::Reminder {
            id: id.clone(),
            alert_id: d.alert_id.clone(),
            alert_digest: digest.to_vec(),
            originator: self.agency.to_string(),
            recipient: d.recipient.clone(),
            step: u32::try_from(step).unwrap_or(1),
            precedence: precedence.to_wire(),
            due_at: Some(to_timestamp(d.due_at)),
            sent_at: Some(to_timestamp(now)),
        };
        let envelope = tocsin_trust::reminder::sign(&self.signer, &reminder);
        tocsin_store::NewMessage {
            id,
            peer: d.recipient.clone(),
            kind: tocsin_store::MessageKind::Reminder,
            envelope: envelope.encode_to_vec(),
        }
    }

    fn notice(
        &self,
        d: &tocsin_store::DueStep,
        precedence: tocsin_core::alert::Precedence,
        observer: &AgencyId,
        now: chrono::DateTime<chrono::Utc>,
    ) -> tocsin_store::NewMessage {
        let id = AlertId::generate().to_string();
        let notice = pb::EscalationNotice {
            id: id.clone(),
            alert_id: d.alert_id.clone(),
            originator: self.agency.to_string(),
            recipient: d.recipient.clone(),
            precedence: precedence.to_wire(),
            category: d.category.clone(),
            due_at: Some(to_timestamp(d.due_at)),
            escalated_at: Some(to_timestamp(now)),
            delivered: d.delivered,
        };
        let envelope = tocsin_trust::notice::sign(&self.signer, &notice);
        tocsin_store::NewMessage {
            id,
            peer: observer.to_string(),
            kind: tocsin_store::MessageKind::Notice,
            envelope: envelope.encode_to_vec(),
        }
    }

    /// Receives a reminder from the originator of an alert this agency has
    /// not acknowledged.
    pub(crate) async fn receive_reminder(
        &self,
        caller: &AgencyId,
        envelope: pb::Envelope,
    ) -> Result<(), Error> {
        use tocsin_trust::reminder::ReminderError;
        let expected = tocsin_trust::reminder::Expected {
            originator: Some(caller.as_str()),
            recipient: Some(self.agency.as_str()),
            id: None,
        };
        let r = tocsin_trust::reminder::verify(&self.verifier, &envelope, expected).map_err(
            |e| match e {
                ReminderError::Signer { signer, .. } => Error::PermissionDenied(format!(
                    "reminder signed by {signer} cannot be delivered by {caller}"
                )),
                ReminderError::Decode(e) => {
                    Error::InvalidArgument(format!("envelope payload is not a reminder: {e}"))
                }
                ReminderError::Parties {
                    originator,
                    recipient,
                    ..
                } => Error::PermissionDenied(format!(
                    "a reminder from {originator} to {recipient} cannot come from {caller} to {}",
                    self.agency
                )),
                other => Error::InvalidArgument(other.to_string()),
            },
        )?;
        let precedence = tocsin_core::alert::Precedence::from_wire(r.precedence)?;
        let escalated = r.step >= 2;
        let detail = if escalated {
            format!(
                "ESCALATED reminder from {caller}, now {precedence}: still no acknowledgement from us"
            )
        } else {
            format!("reminder from {caller}: we have not acknowledged by the deadline")
        };
        let now = tocsin_core::clock::truncate_ms(self.clock.now());
        self.store
            .record_reminder(tocsin_store::ReceivedReminder {
                id: r.id,
                alert_id: r.alert_id,
                originator: caller.to_string(),
                envelope: envelope.encode_to_vec(),
                at: now,
                escalated,
                detail,
            })
            .await?;
        Ok(())
    }

    /// Receives an escalation notice, as an observer of the federation.
    pub(crate) async fn receive_notice(
        &self,
        caller: &AgencyId,
        envelope: pb::Envelope,
    ) -> Result<(), Error> {
        use tocsin_trust::notice::NoticeError;
        let expected = tocsin_trust::notice::Expected {
            originator: Some(caller.as_str()),
            id: None,
        };
        let checked = tocsin_trust::notice::verify(&self.verifier, &envelope, expected);
        let refusal = |e: NoticeError| match e {
            NoticeError::Signer { signer, .. } => Error::PermissionDenied(format!(
                "notice signed by {signer} cannot be delivered by {caller}"
            )),
            NoticeError::Decode(e) => {
                Error::InvalidArgument(format!("envelope payload is not a notice: {e}"))
            }
            NoticeError::Originator { originator, .. } => Error::PermissionDenied(format!(
                "a notice about {originator}'s alert cannot come from {caller}"
            )),
            other => Error::InvalidArgument(other.to_string()),
        };
        // Who signed it is checked before whether we take notices at all,
        // what it says after, as ever.
        let checked = match checked {
            Err(e @ (NoticeError::Signature(_) | NoticeError::Signer { .. })) => {
                return Err(refusal(e));
            }
            other => other,
        };
        let observer = self
            .federation
            .agency(&self.agency)
            .is_some_and(|a| a.observer);
        if !observer {
            return Err(Error::PermissionDenied(format!(
                "{} is not an observer of federation {}",
                self.agency,
                self.federation.id()
            )));
        }
        let n = checked.map_err(refusal)?;
        let precedence = tocsin_core::alert::Precedence::from_wire(n.precedence)?;
        let detail = format!(
            "ESCALATION from {caller}: {} left a {precedence} {} alert {} past its deadline",
            n.recipient,
            n.category,
            if n.delivered {
                "unanswered"
            } else {
                "undelivered"
            }
        );
        let now = tocsin_core::clock::truncate_ms(self.clock.now());
        self.store
            .record_notice(tocsin_store::ReceivedNotice {
                id: n.id,
                alert_id: n.alert_id,
                laggard: n.recipient,
                envelope: envelope.encode_to_vec(),
                at: now,
                detail,
            })
            .await?;
        Ok(())
    }
}

/// One precedence level higher (FLASH stays FLASH).
fn raise(p: tocsin_core::alert::Precedence) -> tocsin_core::alert::Precedence {
    use tocsin_core::alert::Precedence::*;
    match p {
        Routine => Priority,
        Priority => Immediate,
        Immediate | Flash => Flash,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Fixture, flash_about};
    use tocsin_store::EventKind;

    #[tokio::test]
    async fn the_first_step_is_taken_at_the_deadline_and_only_then() {
        let f = Fixture::new();
        let sent = f.send(flash_about("Jean Dupont", &["TR-MIT"])).await;
        let id = sent.alert.id.to_string();
        let due = sent.due_at.expect("a deadline");
        assert_eq!(sent.deliveries[0].next_step_at, Some(due));

        // A second early: nothing is due.
        f.clock.set(due - chrono::Duration::seconds(1));
        assert_eq!(f.node.take_ladder_steps(f.node.now()).await.unwrap(), 0);
        f.clock.set(due);
        assert_eq!(f.node.take_ladder_steps(f.node.now()).await.unwrap(), 1);
        // Taken once.
        assert_eq!(f.node.take_ladder_steps(f.node.now()).await.unwrap(), 0);

        let last = f.events().await.pop().unwrap();
        assert_eq!(last.kind, EventKind::Reminded);
        assert_eq!(last.at, due);
        // TR-MIT never had it, so there is nobody to remind.
        assert_eq!(
            last.detail,
            "TR-MIT never received the alert; no reminder possible"
        );
        let view = f.node.get(&id).await.unwrap().unwrap();
        assert_eq!(
            view.deliveries[0].ladder,
            tocsin_store::LadderStep::Reminded
        );
        // The escalation comes half an allowance (2m30s) later.
        assert_eq!(
            view.deliveries[0].next_step_at,
            Some(due + chrono::Duration::seconds(150))
        );
        assert!(
            f.store
                .due_messages("TR-MIT", f.node.now(), 10)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn escalation_raises_the_precedence_one_level() {
        use tocsin_core::alert::Precedence::*;
        assert_eq!(super::raise(Routine), Priority);
        assert_eq!(super::raise(Priority), Immediate);
        assert_eq!(super::raise(Immediate), Flash);
        assert_eq!(super::raise(Flash), Flash);
    }
}
