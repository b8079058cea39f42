//! [`crate::LadderStore`] on PostgreSQL; the trait says what each method
//! promises.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::db::{Postgres, code};
use super::log::insert_event_with;
use super::records::narrow;
use crate::audit::{Evidence, EvidenceKind};
use crate::codes::{DeliveryState, Direction, EventKind, LadderStep, MessageKind};
use crate::conditions::{OPEN_STEP, sql};
use crate::error::Error;
use crate::events::NewEvent;
use crate::ladder::*;
use crate::millis::{from_ms, ms};

/// Stores a received reminder or notice unless its id is already stored;
/// whether it was new.
async fn insert_received(
    tx: &mut super::db::Tx,
    id: &str,
    kind: MessageKind,
    alert_id: &str,
    agency: &str,
    at: DateTime<Utc>,
    envelope: &[u8],
) -> Result<bool, Error> {
    let statement = tx
        .client()
        .prepare_cached(
            "INSERT INTO received_messages (id, kind, alert_id, agency, received_at, envelope)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
        )
        .await?;
    let inserted = tx
        .client()
        .execute(
            &statement,
            &[&id, &kind.code(), &alert_id, &agency, &ms(at), &envelope],
        )
        .await?;
    Ok(inserted > 0)
}

#[async_trait]
impl LadderStore for Postgres {
    async fn due_steps(&self, now: DateTime<Utc>) -> Result<Vec<DueStep>, Error> {
        self.read(move |client| {
            Box::pin(async move {
                let statement = client
                    .prepare_cached(sql!(
                        "SELECT d.alert_id, d.recipient, d.ladder, d.state, a.precedence, a.category, a.digest, d.due_at, d.next_step_at
                         FROM deliveries d JOIN alerts a ON a.id = d.alert_id
                         WHERE {open} AND d.next_step_at <= $1
                         ORDER BY d.next_step_at, d.alert_id, d.recipient",
                        open = *OPEN_STEP,
                    ))
                    .await?;
                client
                    .query(&statement, &[&ms(now)])
                    .await?
                    .iter()
                    .map(|r| {
                        Ok(DueStep {
                            alert_id: r.try_get(0)?,
                            recipient: r.try_get(1)?,
                            ladder: code(r, 2, LadderStep::decode)?,
                            delivered: code(r, 3, DeliveryState::decode)?
                                == DeliveryState::Delivered,
                            precedence: narrow(r.try_get(4)?, "alerts.precedence")?,
                            category: r.try_get(5)?,
                            digest: r.try_get(6)?,
                            due_at: from_ms(r.try_get::<_, Option<i64>>(7)?.unwrap_or(0)),
                            step_at: from_ms(r.try_get(8)?),
                        })
                    })
                    .collect()
            })
        })
        .await
    }

    async fn take_steps(&self, steps: Vec<StepTaken>) -> Result<usize, Error> {
        // The tracker's write: only the lease's holder makes it.
        let fence = self.tracker_fence();
        self.write(move |tx| {
            Box::pin(async move {
                fence.check(tx).await?;
                let mut taken = 0;
                for s in &steps {
                    let statement = tx
                        .client()
                        .prepare_cached(sql!(
                            "UPDATE deliveries AS d SET ladder = $3, next_step_at = $4
                             WHERE d.alert_id = $1 AND d.recipient = $2 AND d.ladder < $3 AND {open}",
                            open = *OPEN_STEP,
                        ))
                        .await?;
                    let changed = tx
                        .client()
                        .execute(
                            &statement,
                            &[
                                &s.alert_id,
                                &s.recipient,
                                &s.ladder.code(),
                                &s.next_step_at.map(ms),
                            ],
                        )
                        .await?;
                    if changed == 0 {
                        continue;
                    }
                    taken += 1;
                    let statement = tx
                        .client()
                        .prepare_cached(
                            "INSERT INTO messages (id, peer, kind, envelope, state, next_attempt_at) VALUES ($1, $2, $3, $4, $5, 0)",
                        )
                        .await?;
                    for m in &s.messages {
                        tx.client()
                            .execute(
                                &statement,
                                &[
                                    &m.id,
                                    &m.peer,
                                    &m.kind.code(),
                                    &m.envelope,
                                    &DeliveryState::Pending.code(),
                                ],
                            )
                            .await?;
                    }
                    let evidence: Vec<Evidence<'_>> = s
                        .messages
                        .iter()
                        .map(|m| Evidence {
                            kind: EvidenceKind::Message,
                            key: &m.id,
                            key2: "",
                            bytes: &m.envelope,
                        })
                        .collect();
                    insert_event_with(
                        tx,
                        NewEvent {
                            at: s.at,
                            kind: s.event_kind,
                            alert_id: &s.alert_id,
                            agency: &s.recipient,
                            direction: Direction::Outbound,
                            detail: &s.detail,
                        },
                        &evidence,
                    )
                    .await?;
                }
                Ok(taken)
            })
        })
        .await
    }

    async fn record_reminder(&self, reminder: ReceivedReminder) -> Result<bool, Error> {
        self.write(move |tx| {
            Box::pin(async move {
                let ReceivedReminder {
                    id,
                    alert_id,
                    originator,
                    envelope,
                    at,
                    escalated,
                    detail,
                } = &reminder;
                let at = *at;
                let statement = tx
                    .client()
                    .prepare_cached(
                        "SELECT originator FROM alerts WHERE id = $1 AND direction = $2",
                    )
                    .await?;
                let ours: Option<String> = tx
                    .client()
                    .query_opt(&statement, &[alert_id, &Direction::Inbound.code()])
                    .await?
                    .map(|r| r.try_get(0))
                    .transpose()?;
                if ours.as_deref() != Some(originator.as_str()) {
                    return Err(Error::NotFound(format!(
                        "no alert {alert_id} received from {originator}"
                    )));
                }
                if !insert_received(
                    tx,
                    id,
                    MessageKind::Reminder,
                    alert_id,
                    originator,
                    at,
                    envelope,
                )
                .await?
                {
                    return Ok(false);
                }
                let statement = tx
                    .client()
                    .prepare_cached("UPDATE alerts SET reminders = reminders + 1 WHERE id = $1")
                    .await?;
                tx.client().execute(&statement, &[alert_id]).await?;
                let kind = if *escalated {
                    EventKind::Escalated
                } else {
                    EventKind::Reminded
                };
                insert_event_with(
                    tx,
                    NewEvent {
                        at,
                        kind,
                        alert_id,
                        agency: originator,
                        direction: Direction::Inbound,
                        detail,
                    },
                    &[Evidence {
                        kind: EvidenceKind::ReceivedMessage,
                        key: id,
                        key2: "",
                        bytes: envelope,
                    }],
                )
                .await?;
                Ok(true)
            })
        })
        .await
    }

    async fn record_notice(&self, notice: ReceivedNotice) -> Result<bool, Error> {
        self.write(move |tx| {
            Box::pin(async move {
                let ReceivedNotice {
                    id,
                    alert_id,
                    laggard,
                    envelope,
                    at,
                    detail,
                } = &notice;
                let at = *at;
                if !insert_received(tx, id, MessageKind::Notice, alert_id, laggard, at, envelope)
                    .await?
                {
                    return Ok(false);
                }
                insert_event_with(
                    tx,
                    NewEvent {
                        at,
                        kind: EventKind::Escalated,
                        alert_id,
                        agency: laggard,
                        direction: Direction::Inbound,
                        detail,
                    },
                    &[Evidence {
                        kind: EvidenceKind::ReceivedMessage,
                        key: id,
                        key2: "",
                        bytes: envelope,
                    }],
                )
                .await?;
                Ok(true)
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::fixtures::*;
    use crate::postgres::testing::Both;
    use crate::{AckStore, EventStore, MessageStore, NewAck, RecordStore};

    fn alert(
        id: &'static str,
        originator: &'static str,
        first_step_at: Option<DateTime<Utc>>,
    ) -> Alert {
        Alert {
            id,
            originator,
            precedence: 4,
            due_at: at(60),
            first_step_at,
        }
    }

    fn step(
        alert_id: &str,
        recipient: &str,
        ladder: LadderStep,
        next: Option<i64>,
        message: Option<&str>,
    ) -> StepTaken {
        StepTaken {
            alert_id: alert_id.into(),
            recipient: recipient.into(),
            ladder,
            next_step_at: next.map(at),
            messages: message
                .into_iter()
                .map(|id| NewMessage {
                    id: id.into(),
                    peer: recipient.into(),
                    kind: MessageKind::Reminder,
                    envelope: id.as_bytes().to_vec(),
                })
                .collect(),
            event_kind: match ladder {
                LadderStep::Lapsed => EventKind::Lapsed,
                LadderStep::Escalated => EventKind::Escalated,
                _ => EventKind::Reminded,
            },
            detail: format!("{alert_id} {recipient} {ladder:?}"),
            at: at(35),
        }
    }

    fn due_keys(steps: &[DueStep]) -> Vec<(&str, &str, LadderStep, DateTime<Utc>)> {
        steps
            .iter()
            .map(|s| {
                (
                    s.alert_id.as_str(),
                    s.recipient.as_str(),
                    s.ladder,
                    s.step_at,
                )
            })
            .collect()
    }

    /// Steps fall due in time order, a step is taken once and only while
    /// the delivery is open, its messages are queued, and each taken step
    /// is an event with its messages as evidence; alike on both.
    #[tokio::test]
    async fn ladder_steps_answer_alike_on_both_backends() {
        let Some(both) = Both::start().await else {
            return;
        };
        outbound(
            &both,
            alert("O1", "UK-SS", Some(at(30))),
            &["DE-BfV", "BE-VSSE"],
        )
        .await;
        outbound(&both, alert("O2", "UK-SS", Some(at(20))), &["BE-VSSE"]).await;
        outbound(&both, alert("O3", "UK-SS", None), &["NL-AIVD"]).await;
        delivered(&both, "O1", "DE-BfV", 1).await;

        assert_eq!(same!(both, s => s.due_steps(at(19)).await), []);
        assert_eq!(same!(both, s => s.next_deadline().await), Some(at(20)));
        let due = same!(both, s => s.due_steps(at(30)).await);
        assert_eq!(
            due_keys(&due),
            [
                ("O2", "BE-VSSE", LadderStep::None, at(20)),
                ("O1", "BE-VSSE", LadderStep::None, at(30)),
                ("O1", "DE-BfV", LadderStep::None, at(30)),
            ]
        );
        assert_eq!(
            due[0],
            DueStep {
                alert_id: "O2".into(),
                recipient: "BE-VSSE".into(),
                ladder: LadderStep::None,
                delivered: false,
                precedence: 4,
                category: "TERRORISM".into(),
                digest: b"digest O2".to_vec(),
                due_at: at(60),
                step_at: at(20),
            }
        );
        assert!(due[2].delivered);

        // DE-BfV answers: its step is no longer open.
        same!(both, s => s.record_received_ack(
            NewAck {
                id: "K1".into(),
                alert_id: "O1".into(),
                agency: "DE-BfV".into(),
                operator: "op".into(),
                disposition: 1,
                note: String::new(),
                acknowledged_at: at(31),
                stored_at: at(31),
                envelope: b"k1".to_vec(),
            },
            "answered".into(),
        ).await);
        let steps = || {
            vec![
                step("O2", "BE-VSSE", LadderStep::Reminded, Some(40), Some("R-2")),
                step(
                    "O1",
                    "BE-VSSE",
                    LadderStep::Escalated,
                    Some(50),
                    Some("R-1"),
                ),
                // Not above the rung just reached: skipped.
                step("O1", "BE-VSSE", LadderStep::Reminded, Some(40), Some("R-x")),
                // Answered, and no ladder at all: skipped.
                step("O1", "DE-BfV", LadderStep::Reminded, Some(40), Some("R-y")),
                step("O3", "NL-AIVD", LadderStep::Reminded, Some(40), Some("R-z")),
            ]
        };
        assert_eq!(same!(both, s => s.take_steps(steps()).await), 2);
        // The same steps again: all taken already.
        assert_eq!(same!(both, s => s.take_steps(steps()).await), 0);
        assert_eq!(same!(both, s => s.take_steps(Vec::new()).await), 0);
        let due = same!(both, s => s.due_steps(at(100)).await);
        assert_eq!(
            due_keys(&due),
            [
                ("O2", "BE-VSSE", LadderStep::Reminded, at(40)),
                ("O1", "BE-VSSE", LadderStep::Escalated, at(50)),
            ]
        );
        let queued = same!(both, s => s.due_messages("BE-VSSE", at(35), 10).await.map(|m| {
            m.into_iter().map(|m| (m.id, m.kind, m.envelope)).collect::<Vec<_>>()
        }));
        assert_eq!(
            queued,
            [
                ("R-1".to_owned(), Ok(MessageKind::Reminder), b"R-1".to_vec()),
                ("R-2".to_owned(), Ok(MessageKind::Reminder), b"R-2".to_vec()),
            ]
        );
        // The last rung: no step after it.
        let last = || vec![step("O2", "BE-VSSE", LadderStep::Lapsed, None, None)];
        assert_eq!(same!(both, s => s.take_steps(last()).await), 1);
        let due = same!(both, s => s.due_steps(at(100)).await);
        assert_eq!(
            due_keys(&due),
            [("O1", "BE-VSSE", LadderStep::Escalated, at(50))]
        );
        assert_eq!(same!(both, s => s.next_deadline().await), Some(at(50)));

        let events = same!(both, s => s.events_after(0, 100).await);
        let kinds: Vec<_> = events
            .iter()
            .map(|e| (e.kind, e.alert_id.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                (EventKind::Submitted, "O1"),
                (EventKind::Submitted, "O2"),
                (EventKind::Submitted, "O3"),
                (EventKind::Delivered, "O1"),
                (EventKind::Acknowledged, "O1"),
                (EventKind::Reminded, "O2"),
                (EventKind::Escalated, "O1"),
                (EventKind::Lapsed, "O2"),
            ]
        );
        assert!(events.iter().all(|e| e.direction == Direction::Outbound));
        same_state(&both).await;
        same_audit_chain(&both, 8).await;
    }

    /// A rung code that names nothing is corrupt data on both.
    #[tokio::test]
    async fn an_unknown_rung_is_corrupt_on_both_backends() {
        let Some(both) = Both::start().await else {
            return;
        };
        outbound(&both, alert("O1", "UK-SS", Some(at(30))), &["BE-VSSE"]).await;
        exec_both(
            &both,
            "UPDATE deliveries SET ladder = -1",
            "UPDATE deliveries SET ladder = -1",
        )
        .await;
        let corrupt = on_both!(both, s => s.due_steps(at(30)).await);
        assert!(matches!(
            corrupt.0,
            Err(Error::Corrupt {
                what: "LadderStep",
                code: -1
            })
        ));
        same_error(corrupt.0, corrupt.1);
    }

    fn reminder(id: &str, alert_id: &str, originator: &str, escalated: bool) -> ReceivedReminder {
        ReceivedReminder {
            id: id.into(),
            alert_id: alert_id.into(),
            originator: originator.into(),
            envelope: id.as_bytes().to_vec(),
            at: at(40),
            escalated,
            detail: format!("{originator} reminds us ({id})"),
        }
    }

    fn notice(id: &str, alert_id: &str, laggard: &str) -> ReceivedNotice {
        ReceivedNotice {
            id: id.into(),
            alert_id: alert_id.into(),
            laggard: laggard.into(),
            envelope: id.as_bytes().to_vec(),
            at: at(41),
            detail: format!("{laggard} has not answered ({id})"),
        }
    }

    /// Reminders are taken only from the originator of an alert we
    /// received, each once; notices once each; alike on both.
    #[tokio::test]
    async fn reminders_and_notices_answer_alike_on_both_backends() {
        let Some(both) = Both::start().await else {
            return;
        };
        inbound(&both, alert("I1", "FR-DGSI", None)).await;
        outbound(&both, alert("O1", "UK-SS", None), &["FR-DGSI"]).await;

        for (alert_id, originator) in [("I-none", "FR-DGSI"), ("I1", "NL-AIVD"), ("O1", "UK-SS")] {
            let refused = on_both!(both, s => s.record_reminder(reminder("M0", alert_id, originator, false)).await);
            assert!(matches!(refused.0, Err(Error::NotFound(_))));
            same_error(refused.0, refused.1);
        }
        assert!(same!(both, s => s.record_reminder(reminder("M1", "I1", "FR-DGSI", false)).await));
        assert!(!same!(both, s => s.record_reminder(reminder("M1", "I1", "FR-DGSI", false)).await));
        assert!(same!(both, s => s.record_reminder(reminder("M2", "I1", "FR-DGSI", true)).await));
        // A notice id already taken by a reminder is not stored again.
        assert!(!same!(both, s => s.record_notice(notice("M1", "I1", "BE-VSSE")).await));
        assert!(same!(both, s => s.record_notice(notice("N1", "X9", "BE-VSSE")).await));
        assert!(!same!(both, s => s.record_notice(notice("N1", "X9", "BE-VSSE")).await));

        let events = same!(both, s => s.events_after(2, 100).await);
        let seen: Vec<_> = events
            .iter()
            .map(|e| {
                (
                    e.id,
                    e.kind,
                    e.alert_id.as_str(),
                    e.agency.as_str(),
                    e.direction,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (3, EventKind::Reminded, "I1", "FR-DGSI", Direction::Inbound),
                (4, EventKind::Escalated, "I1", "FR-DGSI", Direction::Inbound),
                (5, EventKind::Escalated, "X9", "BE-VSSE", Direction::Inbound),
            ]
        );
        let stored = same!(both, s => s.alert("I1").await).expect("I1 is stored");
        assert_eq!(stored.reminders, 2);
        same_state(&both).await;
        same_audit_chain(&both, 5).await;
    }
}
