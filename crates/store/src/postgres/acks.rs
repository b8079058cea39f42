//! [`crate::AckStore`] on PostgreSQL; the trait says what each method
//! promises. Also the twins of the SQLite helpers other kinds use:
//! [`acks_of`] (an alert's history) and [`refused_ack_event`] (the outbox
//! of messages).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::db::{Client, Postgres, Tx, code};
use super::log::{insert_event, insert_event_with};
use super::records::narrow;
use crate::acks::*;
use crate::audit::{Evidence, EvidenceKind};
use crate::codes::{DeliveryState, Direction, EventKind, MessageKind};
use crate::conditions::sql;
use crate::error::Error;
use crate::events::NewEvent;
use crate::millis::{from_ms, ms};

async fn insert_ack(client: &Client, a: &NewAck) -> Result<(), Error> {
    let statement = client
        .prepare_cached(
            "INSERT INTO acknowledgements (id, alert_id, agency, operator, disposition, note, acknowledged_at, stored_at, envelope)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .await?;
    client
        .execute(
            &statement,
            &[
                &a.id,
                &a.alert_id,
                &a.agency,
                &a.operator,
                &i64::from(a.disposition),
                &a.note,
                &ms(a.acknowledged_at),
                &ms(a.stored_at),
                &a.envelope,
            ],
        )
        .await?;
    Ok(())
}

/// The acknowledgements of one alert, oldest first; on a write's
/// connection ([`Tx::client`]) or a read's.
pub(crate) async fn acks_of(client: &Client, alert_id: &str) -> Result<Vec<AckRow>, Error> {
    let statement = client
        .prepare_cached(sql!(
            "SELECT k.id, k.alert_id, k.agency, k.operator, k.disposition, k.note, k.acknowledged_at, k.stored_at, k.envelope, m.state,
                    CASE m.state WHEN {rejected} THEN COALESCE(m.last_error, 'refused') END
             FROM acknowledgements k LEFT JOIN messages m ON m.id = k.id
             WHERE k.alert_id = $1 ORDER BY k.acknowledged_at, k.id",
            rejected = DeliveryState::Rejected.code(),
        ))
        .await?;
    client
        .query(&statement, &[&alert_id])
        .await?
        .iter()
        .map(ack_row)
        .collect()
}

fn ack_row(r: &Row) -> Result<AckRow, Error> {
    let state: Option<i64> = r.try_get(9)?;
    let state = state.map(DeliveryState::decode).transpose()?;
    Ok(AckRow {
        ack: NewAck {
            id: r.try_get(0)?,
            alert_id: r.try_get(1)?,
            agency: r.try_get(2)?,
            operator: r.try_get(3)?,
            disposition: narrow(r.try_get(4)?, "acknowledgements.disposition")?,
            note: r.try_get(5)?,
            acknowledged_at: from_ms(r.try_get(6)?),
            stored_at: from_ms(r.try_get(7)?),
            envelope: r.try_get(8)?,
        },
        delivered: state.is_none_or(|state| state == DeliveryState::Delivered),
        refusal: r.try_get(10)?,
    })
}

/// If message `id` is one of our acknowledgements, records that its
/// originator refused it for good: a REJECTED event of the inbound alert.
pub(crate) async fn refused_ack_event(
    tx: &mut Tx,
    id: &str,
    error: &str,
    at: DateTime<Utc>,
    words: fn(originator: &str, ack_id: &str, error: &str) -> String,
) -> Result<(), Error> {
    let statement = tx
        .client()
        .prepare_cached(
            "SELECT k.alert_id, m.peer FROM messages m JOIN acknowledgements k ON k.id = m.id
             WHERE m.id = $1 AND m.kind = $2",
        )
        .await?;
    let ack = tx
        .client()
        .query_opt(&statement, &[&id, &MessageKind::Ack.code()])
        .await?;
    if let Some(row) = ack {
        let (alert_id, originator): (String, String) = (row.try_get(0)?, row.try_get(1)?);
        insert_event(
            tx,
            NewEvent {
                at,
                kind: EventKind::Rejected,
                alert_id: &alert_id,
                agency: &originator,
                direction: Direction::Inbound,
                detail: &words(&originator, id, error),
            },
        )
        .await?;
    }
    Ok(())
}

#[async_trait]
impl AckStore for Postgres {
    async fn insert_own_ack(&self, ack: NewAck, peer: String, detail: String) -> Result<(), Error> {
        self.write(move |tx| {
            Box::pin(async move {
                let statement = tx
                    .client()
                    .prepare_cached("SELECT direction FROM alerts WHERE id = $1")
                    .await?;
                let direction = match tx.client().query_opt(&statement, &[&ack.alert_id]).await? {
                    Some(row) => Some(code(&row, 0, Direction::decode)?),
                    None => None,
                };
                if direction != Some(Direction::Inbound) {
                    return Err(Error::NotFound(format!(
                        "no received alert {}",
                        ack.alert_id
                    )));
                }
                // An id taken (a retried call's, or another message's): the
                // caller decides.
                let statement = tx
                    .client()
                    .prepare_cached(
                        "SELECT 1 FROM acknowledgements WHERE id = $1
                         UNION ALL SELECT 1 FROM messages WHERE id = $1",
                    )
                    .await?;
                if !tx.client().query(&statement, &[&ack.id]).await?.is_empty() {
                    return Err(Error::Conflict(ack.id.clone()));
                }
                insert_ack(tx.client(), &ack).await?;
                let statement = tx
                    .client()
                    .prepare_cached(
                        "INSERT INTO messages (id, peer, kind, envelope, state, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .await?;
                tx.client()
                    .execute(
                        &statement,
                        &[
                            &ack.id,
                            &peer,
                            &MessageKind::Ack.code(),
                            &ack.envelope,
                            &DeliveryState::Pending.code(),
                            &0i64,
                        ],
                    )
                    .await?;
                insert_event_with(
                    tx,
                    NewEvent {
                        at: ack.stored_at,
                        kind: EventKind::Acknowledged,
                        alert_id: &ack.alert_id,
                        agency: &peer,
                        direction: Direction::Inbound,
                        detail: &detail,
                    },
                    &[
                        Evidence {
                            kind: EvidenceKind::Acknowledgement,
                            key: &ack.id,
                            key2: "",
                            bytes: &ack.envelope,
                        },
                        Evidence {
                            kind: EvidenceKind::Message,
                            key: &ack.id,
                            key2: "",
                            bytes: &ack.envelope,
                        },
                    ],
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn record_received_ack(&self, ack: NewAck, detail: String) -> Result<AckOutcome, Error> {
        self.write(move |tx| {
            Box::pin(async move {
                let statement = tx
                    .client()
                    .prepare_cached(
                        "SELECT 1 FROM deliveries d JOIN alerts a ON a.id = d.alert_id
                         WHERE d.alert_id = $1 AND d.recipient = $2 AND a.direction = $3",
                    )
                    .await?;
                let is_recipient = tx
                    .client()
                    .query_opt(
                        &statement,
                        &[&ack.alert_id, &ack.agency, &Direction::Outbound.code()],
                    )
                    .await?
                    .is_some();
                if !is_recipient {
                    return Err(Error::NotFound(format!(
                        "{} is not a recipient of an alert {} sent by this agency",
                        ack.agency, ack.alert_id
                    )));
                }
                let statement = tx
                    .client()
                    .prepare_cached("SELECT envelope FROM acknowledgements WHERE id = $1")
                    .await?;
                let existing: Option<Vec<u8>> = tx
                    .client()
                    .query_opt(&statement, &[&ack.id])
                    .await?
                    .map(|r| r.try_get(0))
                    .transpose()?;
                match existing {
                    Some(env) if env == ack.envelope => Ok(AckOutcome::Duplicate),
                    Some(_) => Err(Error::Conflict(ack.id.clone())),
                    None => {
                        insert_ack(tx.client(), &ack).await?;
                        insert_event_with(
                            tx,
                            NewEvent {
                                at: ack.stored_at,
                                kind: EventKind::Acknowledged,
                                alert_id: &ack.alert_id,
                                agency: &ack.agency,
                                direction: Direction::Outbound,
                                detail: &detail,
                            },
                            &[Evidence {
                                kind: EvidenceKind::Acknowledgement,
                                key: &ack.id,
                                key2: "",
                                bytes: &ack.envelope,
                            }],
                        )
                        .await?;
                        Ok(AckOutcome::Stored)
                    }
                }
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
    use crate::{EventRow, EventStore, MessageStore, RecordStore};

    fn ack(id: &str, alert_id: &str, agency: &str, minutes: i64, envelope: &str) -> NewAck {
        NewAck {
            id: id.into(),
            alert_id: alert_id.into(),
            agency: agency.into(),
            operator: "duty officer".into(),
            disposition: 2,
            note: format!("{id}: seen"),
            acknowledged_at: at(minutes),
            stored_at: at(minutes + 1),
            envelope: envelope.as_bytes().to_vec(),
        }
    }

    /// `acks_of` on each backend, asserted equal.
    async fn acks(both: &Both, alert_id: &str) -> Vec<AckRow> {
        let id = alert_id.to_owned();
        let sqlite = both
            .sqlite
            .read(move |conn| Ok(crate::sqlite::acks::acks_of(conn, &id)?))
            .await
            .unwrap();
        let id = alert_id.to_owned();
        let postgres = both
            .postgres
            .read(move |client| Box::pin(async move { acks_of(client, &id).await }))
            .await
            .unwrap();
        assert_eq!(sqlite, postgres);
        // What an alert's history shows of them, read by the records'
        // code through this module's `acks_of`.
        let history = both.postgres.alert_history(alert_id).await.unwrap();
        assert_eq!(history.expect("the alert is stored").acks, postgres);
        sqlite
    }

    fn alert(id: &'static str, originator: &'static str) -> Alert {
        Alert {
            id,
            originator,
            precedence: 3,
            due_at: at(60),
            first_step_at: Some(at(30)),
        }
    }

    /// Our own acknowledgement of a received alert: refused for an alert
    /// not received, stored and queued once, with its event and evidence.
    #[tokio::test]
    async fn own_acks_answer_alike_on_both_backends() {
        let Some(both) = Both::start().await else {
            return;
        };
        inbound(&both, alert("A-IN", "FR-DGSI")).await;
        outbound(&both, alert("A-OUT", "UK-SS"), &["BE-VSSE"]).await;
        same!(both, s => s.next_deadline().await);

        let refused = on_both!(both, s => s.insert_own_ack(ack("K0", "A-NONE", "UK-SS", 1, "k0"), "FR-DGSI".into(), "d".into()).await);
        assert_eq!(same_error(refused.0, refused.1), "no received alert A-NONE");
        let refused = on_both!(both, s => s.insert_own_ack(ack("K0", "A-OUT", "UK-SS", 1, "k0"), "BE-VSSE".into(), "d".into()).await);
        assert_eq!(same_error(refused.0, refused.1), "no received alert A-OUT");

        same!(both, s => s.insert_own_ack(ack("K1", "A-IN", "UK-SS", 1, "k1"), "FR-DGSI".into(), "we have it".into()).await);
        // The id is taken: both refuse (each in its own words), and
        // nothing is written.
        let again = on_both!(both, s => s.insert_own_ack(ack("K1", "A-IN", "UK-SS", 2, "k1 again"), "FR-DGSI".into(), "again".into()).await);
        assert!(again.0.is_err() && again.1.is_err());

        let stored = acks(&both, "A-IN").await;
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].ack, ack("K1", "A-IN", "UK-SS", 1, "k1"));
        assert!(!stored[0].delivered, "queued, not yet with the originator");
        assert_eq!(stored[0].refusal, None);
        let due = same!(both, s => s.due_messages("FR-DGSI", at(0), 10).await.map(|m| {
            m.into_iter().map(|m| (m.id, m.kind, m.envelope, m.attempts)).collect::<Vec<_>>()
        }));
        assert_eq!(
            due,
            [("K1".to_owned(), Ok(MessageKind::Ack), b"k1".to_vec(), 0)]
        );
        // Our deadline on the received alert is answered: only the sent
        // alert's first step is left.
        assert_eq!(same!(both, s => s.next_deadline().await), Some(at(30)));

        // After the two alerts' own events.
        let events = same!(both, s => s.events_after(2, 10).await);
        assert_eq!(
            events,
            [EventRow {
                id: 3,
                at: at(2),
                kind: EventKind::Acknowledged,
                alert_id: "A-IN".into(),
                agency: "FR-DGSI".into(),
                direction: Direction::Inbound,
                detail: "we have it".into(),
            }]
        );
        same_state(&both).await;
        same_audit_chain(&both, 3).await;
    }

    /// A recipient's acknowledgement: stored once, a repeat is a
    /// duplicate, other content under its id a conflict, and only a
    /// recipient of an alert we sent may send one.
    #[tokio::test]
    async fn received_acks_answer_alike_on_both_backends() {
        let Some(both) = Both::start().await else {
            return;
        };
        outbound(&both, alert("A-OUT", "UK-SS"), &["BE-VSSE", "DE-BfV"]).await;
        inbound(&both, alert("A-IN", "FR-DGSI")).await;

        let outcome = same!(both, s => s.record_received_ack(ack("K2", "A-OUT", "BE-VSSE", 5, "k2"), "BE-VSSE acknowledges".into()).await);
        assert_eq!(outcome, AckOutcome::Stored);
        let outcome = same!(both, s => s.record_received_ack(ack("K2", "A-OUT", "BE-VSSE", 5, "k2"), "again".into()).await);
        assert_eq!(outcome, AckOutcome::Duplicate);
        let conflict = on_both!(both, s => s.record_received_ack(ack("K2", "A-OUT", "BE-VSSE", 5, "other"), "x".into()).await);
        assert!(matches!(conflict.0, Err(Error::Conflict(ref id)) if id == "K2"));
        same_error(conflict.0, conflict.1);
        for (alert_id, agency) in [
            ("A-OUT", "NL-AIVD"),
            ("A-IN", "FR-DGSI"),
            ("A-NONE", "BE-VSSE"),
        ] {
            let refused = on_both!(both, s => s.record_received_ack(ack("K9", alert_id, agency, 5, "k9"), "x".into()).await);
            assert!(matches!(refused.0, Err(Error::NotFound(_))));
            same_error(refused.0, refused.1);
        }
        // Oldest first by the signed time, then by id.
        same!(both, s => s.record_received_ack(ack("K3", "A-OUT", "DE-BfV", 3, "k3"), "DE-BfV acknowledges".into()).await);
        same!(both, s => s.record_received_ack(ack("K1", "A-OUT", "DE-BfV", 3, "k1"), "DE-BfV again".into()).await);
        let stored = acks(&both, "A-OUT").await;
        let ids: Vec<&str> = stored.iter().map(|a| a.ack.id.as_str()).collect();
        assert_eq!(ids, ["K1", "K3", "K2"]);
        assert!(stored.iter().all(|a| a.delivered && a.refusal.is_none()));
        assert_eq!(acks(&both, "A-IN").await, []);

        let events = same!(both, s => s.events_after(2, 10).await);
        let kinds: Vec<(EventKind, &str, &str)> = events
            .iter()
            .map(|e| (e.kind, e.agency.as_str(), e.detail.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                (EventKind::Acknowledged, "BE-VSSE", "BE-VSSE acknowledges"),
                (EventKind::Acknowledged, "DE-BfV", "DE-BfV acknowledges"),
                (EventKind::Acknowledged, "DE-BfV", "DE-BfV again"),
            ]
        );
        // Both recipients answered: their deadlines and steps are settled.
        assert_eq!(same!(both, s => s.next_deadline().await), Some(at(60)));
        same_state(&both).await;
        same_audit_chain(&both, 5).await;
    }
}
