//! [`crate::MessageStore`] on PostgreSQL; the trait says what each method
//! promises.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::acks::refused_ack_event;
use super::db::Postgres;
use crate::codes::{DeliveryState, MessageKind};
use crate::conditions::sql;
use crate::error::Error;
use crate::messages::*;
use crate::millis::ms;
use crate::records::{AttemptOutcome, OutcomeWords};

#[async_trait]
impl MessageStore for Postgres {
    /// Claims what it returns for this front node, as `due_deliveries`
    /// does (see [`super::db::CLAIM_LEASE`]).
    async fn due_messages(
        &self,
        peer: &str,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DueMessage>, Error> {
        let peer = peer.to_owned();
        let holder = self.holder().to_owned();
        self.write(move |tx| {
            Box::pin(async move {
                let until = ms(now + super::db::CLAIM_LEASE);
                let statement = tx
                    .client()
                    .prepare_cached(sql!(
                        "WITH due AS (
                            SELECT id FROM messages
                             WHERE peer = $1 AND state = {pending} AND next_attempt_at <= $2
                               AND (claimed_by IS NULL OR claimed_by = $4 OR claimed_until <= $2)
                             ORDER BY next_attempt_at, id LIMIT $3
                             FOR UPDATE SKIP LOCKED)
                         UPDATE messages m SET claimed_by = $4, claimed_until = $5
                           FROM due WHERE m.id = due.id
                         RETURNING m.id, m.kind, m.envelope, m.attempts, m.next_attempt_at",
                        pending = DeliveryState::Pending.code(),
                    ))
                    .await?;
                let mut due = tx
                    .client()
                    .query(
                        &statement,
                        &[&peer, &ms(now), &i64::from(limit), &holder, &until],
                    )
                    .await?
                    .iter()
                    .map(|r| {
                        Ok((
                            r.try_get::<_, i64>(4)?,
                            DueMessage {
                                id: r.try_get(0)?,
                                // Kept as found: the caller refuses a corrupt
                                // row for good instead of stopping the queue.
                                kind: MessageKind::decode(r.try_get(1)?),
                                envelope: r.try_get(2)?,
                                attempts: r.try_get::<_, i64>(3)?.try_into().unwrap_or(u32::MAX),
                            },
                        ))
                    })
                    .collect::<Result<Vec<_>, Error>>()?;
                // RETURNING keeps no order: oldest due first, as SQLite.
                due.sort_by(|(a, x), (b, y)| (a, &x.id).cmp(&(b, &y.id)));
                Ok(due.into_iter().map(|(_, m)| m).collect())
            })
        })
        .await
    }

    async fn record_message_attempts(
        &self,
        outcomes: Vec<(String, AttemptOutcome)>,
        at: DateTime<Utc>,
        words: OutcomeWords,
    ) -> Result<(), Error> {
        let holder = self.holder().to_owned();
        self.write(move |tx| {
            Box::pin(async move {
                for (id, outcome) in &outcomes {
                    // Whatever the outcome, this node's claim ends (see
                    // `record_attempts`).
                    tx.client()
                        .execute(
                            "UPDATE messages SET claimed_by = NULL, claimed_until = NULL
                              WHERE id = $1 AND claimed_by = $2",
                            &[id, &holder],
                        )
                        .await?;
                    match outcome {
                        AttemptOutcome::Delivered { delivered_at, .. } => {
                            let statement = tx
                                .client()
                                .prepare_cached(sql!(
                                    "UPDATE messages SET state = {delivered}, attempts = attempts + 1, next_attempt_at = NULL, delivered_at = $2
                                     WHERE id = $1 AND state = {pending}",
                                    delivered = DeliveryState::Delivered.code(),
                                    pending = DeliveryState::Pending.code(),
                                ))
                                .await?;
                            tx.client()
                                .execute(&statement, &[id, &ms(*delivered_at)])
                                .await?;
                        }
                        AttemptOutcome::Retry {
                            error,
                            next_attempt_at,
                        } => {
                            let statement = tx
                                .client()
                                .prepare_cached(sql!(
                                    "UPDATE messages SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3
                                     WHERE id = $1 AND state = {pending}",
                                    pending = DeliveryState::Pending.code(),
                                ))
                                .await?;
                            tx.client()
                                .execute(&statement, &[id, error, &ms(*next_attempt_at)])
                                .await?;
                        }
                        AttemptOutcome::Rejected { error } => {
                            let statement = tx
                                .client()
                                .prepare_cached(sql!(
                                    "UPDATE messages SET state = {rejected}, attempts = attempts + 1, last_error = $2, next_attempt_at = NULL
                                     WHERE id = $1 AND state = {pending}",
                                    rejected = DeliveryState::Rejected.code(),
                                    pending = DeliveryState::Pending.code(),
                                ))
                                .await?;
                            let changed = tx.client().execute(&statement, &[id, error]).await?;
                            if changed > 0 {
                                refused_ack_event(tx, id, error, at, words.refused_ack).await?;
                            }
                        }
                    }
                }
                Ok(())
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use crate::codes::UnknownCode;
    use crate::codes::{Direction, EventKind, LadderStep, MessageKind};
    use crate::postgres::fixtures::*;
    use crate::postgres::testing::Both;
    use crate::records::AttemptOutcome;
    use crate::{AckStore, EventStore, LadderStore, MessageStore, NewAck, NewMessage, StepTaken};

    fn own_ack(id: &str, alert_id: &str, minutes: i64) -> NewAck {
        NewAck {
            id: id.into(),
            alert_id: alert_id.into(),
            agency: "UK-SS".into(),
            operator: "duty officer".into(),
            disposition: 1,
            note: String::new(),
            acknowledged_at: at(minutes),
            stored_at: at(minutes),
            envelope: id.as_bytes().to_vec(),
        }
    }

    fn alert(id: &'static str, originator: &'static str) -> Alert {
        Alert {
            id,
            originator,
            precedence: 2,
            due_at: at(60),
            first_step_at: Some(at(30)),
        }
    }

    type Due = Vec<(String, Result<MessageKind, UnknownCode>, Vec<u8>, u32)>;

    /// A message's id, kind, envelope and attempts: [`crate::DueMessage`]
    /// has no `PartialEq`.
    fn due(messages: Vec<crate::DueMessage>) -> Due {
        messages
            .into_iter()
            .map(|m| (m.id, m.kind, m.envelope, m.attempts))
            .collect()
    }

    fn ids(due: &Due) -> Vec<&str> {
        due.iter().map(|m| m.0.as_str()).collect()
    }

    /// The outbox: what is due for a peer (by time then id, within the
    /// limit), and each outcome of an attempt, on both backends alike.
    #[tokio::test]
    async fn message_outbox_answers_alike_on_both_backends() {
        let Some(both) = Both::start().await else {
            return;
        };
        inbound(&both, alert("A1", "FR-DGSI")).await;
        inbound(&both, alert("A2", "FR-DGSI")).await;
        inbound(&both, alert("A3", "NL-AIVD")).await;
        outbound(&both, alert("A4", "UK-SS"), &["FR-DGSI"]).await;
        for (id, alert_id, peer, minutes) in [
            ("K-b", "A1", "FR-DGSI", 2),
            ("K-a", "A2", "FR-DGSI", 1),
            ("K-c", "A3", "NL-AIVD", 3),
        ] {
            same!(both, s => s.insert_own_ack(own_ack(id, alert_id, minutes), peer.into(), format!("{id} queued")).await);
        }
        // A reminder, queued by the ladder, to the same peer.
        let step = || StepTaken {
            alert_id: "A4".into(),
            recipient: "FR-DGSI".into(),
            ladder: LadderStep::Reminded,
            next_step_at: Some(at(45)),
            messages: vec![NewMessage {
                id: "R-1".into(),
                peer: "FR-DGSI".into(),
                kind: MessageKind::Reminder,
                envelope: b"reminder".to_vec(),
            }],
            event_kind: EventKind::Reminded,
            detail: "reminded".into(),
            at: at(30),
        };
        assert_eq!(same!(both, s => s.take_steps(vec![step()]).await), 1);

        let all = same!(both, s => s.due_messages("FR-DGSI", at(0), 10).await.map(due));
        assert_eq!(ids(&all), ["K-a", "K-b", "R-1"]);
        assert_eq!(all[2].1, Ok(MessageKind::Reminder));
        let first = same!(both, s => s.due_messages("FR-DGSI", at(0), 1).await.map(due));
        assert_eq!(ids(&first), ["K-a"]);
        assert_eq!(
            same!(both, s => s.due_messages("FR-DGSI", at(0), 0).await.map(due)),
            []
        );
        let other = same!(both, s => s.due_messages("NL-AIVD", at(0), u32::MAX).await.map(due));
        assert_eq!(ids(&other), ["K-c"]);
        assert_eq!(
            same!(both, s => s.due_messages("DE-BfV", at(0), 10).await.map(due)),
            []
        );

        let outcomes = || {
            vec![
                (
                    "K-a".to_owned(),
                    AttemptOutcome::Retry {
                        error: "unavailable".into(),
                        next_attempt_at: at(10),
                    },
                ),
                (
                    "K-b".to_owned(),
                    AttemptOutcome::Delivered {
                        delivered_at: at(3),
                        receipt: Vec::new(),
                    },
                ),
                (
                    "K-c".to_owned(),
                    AttemptOutcome::Rejected {
                        error: "unknown alert".into(),
                    },
                ),
                (
                    "R-1".to_owned(),
                    AttemptOutcome::Rejected {
                        error: "no such alert".into(),
                    },
                ),
                (
                    "K-none".to_owned(),
                    AttemptOutcome::Rejected {
                        error: "whatever".into(),
                    },
                ),
            ]
        };
        same!(both, s => s.record_message_attempts(outcomes(), at(4), WORDS).await);
        // Only K-a is still pending, and due again at 10.
        assert_eq!(
            same!(both, s => s.due_messages("FR-DGSI", at(9), 10).await.map(due)),
            []
        );
        let again = same!(both, s => s.due_messages("FR-DGSI", at(10), 10).await.map(due));
        assert_eq!(
            again,
            [("K-a".to_owned(), Ok(MessageKind::Ack), b"K-a".to_vec(), 1)]
        );
        assert_eq!(
            same!(both, s => s.due_messages("NL-AIVD", at(10), 10).await.map(due)),
            []
        );

        // Outcomes for messages no longer pending change nothing, and
        // write no second REJECTED.
        same!(both, s => s.record_message_attempts(outcomes(), at(5), WORDS).await);
        let events = same!(both, s => s.events_after(4, 100).await);
        let rejections: Vec<_> = events
            .iter()
            .filter(|e| e.kind == EventKind::Rejected)
            .map(|e| {
                (
                    e.at,
                    e.alert_id.as_str(),
                    e.agency.as_str(),
                    e.direction,
                    e.detail.as_str(),
                )
            })
            .collect();
        assert_eq!(
            rejections,
            [(
                at(4),
                "A3",
                "NL-AIVD",
                Direction::Inbound,
                "NL-AIVD refused K-c: unknown alert"
            )]
        );
        assert_eq!(events.len(), 5, "three acks, one step, one refusal");
        same_state(&both).await;
        same_audit_chain(&both, 9).await;
    }

    /// A message whose stored kind names nothing is handed out with the
    /// code found, so the caller can refuse it for good, alike on both.
    #[tokio::test]
    async fn an_unknown_message_kind_is_handed_out_as_found() {
        let Some(both) = Both::start().await else {
            return;
        };
        inbound(&both, alert("A1", "FR-DGSI")).await;
        same!(both, s => s.insert_own_ack(own_ack("K-1", "A1", 1), "FR-DGSI".into(), "queued".into()).await);
        exec_both(
            &both,
            "UPDATE messages SET kind = 99 WHERE id = 'K-1'",
            "UPDATE messages SET kind = 99 WHERE id = 'K-1'",
        )
        .await;
        let found = same!(both, s => s.due_messages("FR-DGSI", at(1), 10).await.map(due));
        assert_eq!(
            found[0].1,
            Err(UnknownCode {
                what: "MessageKind",
                code: 99
            })
        );
        // Its refusal is no acknowledgement's: no event.
        same!(both, s => s.record_message_attempts(
            vec![("K-1".into(), AttemptOutcome::Rejected { error: "corrupt".into() })],
            at(2),
            WORDS,
        ).await);
        assert_eq!(same!(both, s => s.last_event_id().await), 2);
        same_state(&both).await;
        same_audit_chain(&both, 2).await;
    }
}
