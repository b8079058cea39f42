//! [`crate::AckStore`] on SQLite; the trait says what each method promises.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::audit::{Evidence, EvidenceKind};
use crate::codes::{DeliveryState, Direction, EventKind, MessageKind};
use async_trait::async_trait;

use super::db::Sqlite;
use super::events::{insert_event, insert_event_with};
use super::sql::{from_ms, ms, sql};
use crate::acks::*;
use crate::error::Error;
use crate::events::NewEvent;

fn insert_ack(conn: &Connection, a: &NewAck) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO acknowledgements (id, alert_id, agency, operator, disposition, note, acknowledged_at, stored_at, envelope)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        a.id,
        a.alert_id,
        a.agency,
        a.operator,
        a.disposition,
        a.note,
        ms(a.acknowledged_at),
        ms(a.stored_at),
        a.envelope
    ])?;
    Ok(())
}

/// The acknowledgements of one alert, oldest first.
pub(crate) fn acks_of(
    conn: &rusqlite::Connection,
    alert_id: &str,
) -> rusqlite::Result<Vec<AckRow>> {
    conn.prepare_cached(sql!(
        "SELECT k.id, k.alert_id, k.agency, k.operator, k.disposition, k.note, k.acknowledged_at, k.stored_at, k.envelope, m.state,
                CASE m.state WHEN {rejected} THEN COALESCE(m.last_error, 'refused') END
         FROM acknowledgements k LEFT JOIN messages m ON m.id = k.id
         WHERE k.alert_id = ?1 ORDER BY k.acknowledged_at, k.id",
        rejected = DeliveryState::Rejected.code(),
    ))?
    .query_map([alert_id], ack_row)?
    .collect()
}

fn ack_row(r: &Row<'_>) -> rusqlite::Result<AckRow> {
    Ok(AckRow {
        ack: NewAck {
            id: r.get(0)?,
            alert_id: r.get(1)?,
            agency: r.get(2)?,
            operator: r.get(3)?,
            disposition: r.get(4)?,
            note: r.get(5)?,
            acknowledged_at: from_ms(r.get(6)?),
            stored_at: from_ms(r.get(7)?),
            envelope: r.get(8)?,
        },
        delivered: r
            .get::<_, Option<DeliveryState>>(9)?
            .is_none_or(|state| state == DeliveryState::Delivered),
        refusal: r.get(10)?,
    })
}

/// If message `id` is one of our acknowledgements, records that its
/// originator refused it for good: a REJECTED event of the inbound alert.
pub(crate) fn refused_ack_event(
    conn: &Connection,
    id: &str,
    error: &str,
    at: DateTime<Utc>,
    words: fn(originator: &str, ack_id: &str, error: &str) -> String,
) -> Result<(), Error> {
    let ack: Option<(String, String)> = conn
        .prepare_cached(
            "SELECT k.alert_id, m.peer FROM messages m JOIN acknowledgements k ON k.id = m.id
             WHERE m.id = ?1 AND m.kind = ?2",
        )?
        .query_row(params![id, MessageKind::Ack], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    if let Some((alert_id, originator)) = ack {
        insert_event(
            conn,
            NewEvent {
                at,
                kind: EventKind::Rejected,
                alert_id: &alert_id,
                agency: &originator,
                direction: Direction::Inbound,
                detail: &words(&originator, id, error),
            },
        )?;
    }
    Ok(())
}

#[async_trait]
impl AckStore for Sqlite {
    async fn insert_own_ack(&self, ack: NewAck, peer: String, detail: String) -> Result<(), Error> {
        self.write(move |conn| {
            let direction: Option<Direction> = conn
                .prepare_cached("SELECT direction FROM alerts WHERE id = ?1")?
                .query_row([&ack.alert_id], |r| r.get(0))
                .optional()?;
            if direction != Some(Direction::Inbound) {
                return Err(Error::NotFound(format!("no received alert {}", ack.alert_id)));
            }
            // An id taken (a retried call's, or another message's): the
            // caller decides.
            if conn
                .prepare_cached(
                    "SELECT 1 FROM acknowledgements WHERE id = ?1
                     UNION ALL SELECT 1 FROM messages WHERE id = ?1",
                )?
                .exists([&ack.id])?
            {
                return Err(Error::Conflict(ack.id.clone()));
            }
            insert_ack(conn, &ack)?;
            conn.prepare_cached(
                "INSERT INTO messages (id, peer, kind, envelope, state, next_attempt_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![ack.id, peer, MessageKind::Ack, ack.envelope, DeliveryState::Pending, 0i64])?;
            insert_event_with(conn, NewEvent { at: ack.stored_at, kind: EventKind::Acknowledged, alert_id: &ack.alert_id, agency: &peer, direction: Direction::Inbound, detail: &detail }, &[
                    Evidence { kind: EvidenceKind::Acknowledgement, key: &ack.id, key2: "", bytes: &ack.envelope },
                    Evidence { kind: EvidenceKind::Message, key: &ack.id, key2: "", bytes: &ack.envelope },
                ])?;
            Ok(())
        })
        .await?;
        self.notify_events();
        Ok(())
    }

    async fn record_received_ack(&self, ack: NewAck, detail: String) -> Result<AckOutcome, Error> {
        self.write(move |conn| {
            let is_recipient = conn
                .prepare_cached(
                    "SELECT 1 FROM deliveries d JOIN alerts a ON a.id = d.alert_id
                     WHERE d.alert_id = ?1 AND d.recipient = ?2 AND a.direction = ?3",
                )?
                .exists(params![ack.alert_id, ack.agency, Direction::Outbound])?;
            if !is_recipient {
                return Err(Error::NotFound(format!(
                    "{} is not a recipient of an alert {} sent by this agency",
                    ack.agency, ack.alert_id
                )));
            }
            let existing: Option<Vec<u8>> = conn
                .prepare_cached("SELECT envelope FROM acknowledgements WHERE id = ?1")?
                .query_row([&ack.id], |r| r.get(0))
                .optional()?;
            match existing {
                Some(env) if env == ack.envelope => Ok(AckOutcome::Duplicate),
                Some(_) => Err(Error::Conflict(ack.id.clone())),
                None => {
                    insert_ack(conn, &ack)?;
                    insert_event_with(
                        conn,
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
                    )?;
                    Ok(AckOutcome::Stored)
                }
            }
        })
        .await
        .inspect(|outcome| {
            if *outcome == AckOutcome::Stored {
                self.notify_events();
            }
        })
    }
}
