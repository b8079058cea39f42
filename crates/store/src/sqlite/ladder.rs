//! [`crate::LadderStore`] on SQLite; the trait says what each method promises.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use crate::audit::{Evidence, EvidenceKind};
use crate::codes::{DeliveryState, Direction, EventKind, MessageKind};
use async_trait::async_trait;

use super::db::Sqlite;
use super::events::insert_event_with;
use super::sql::{OPEN_STEP, from_ms, ms, sql};
use crate::error::Error;
use crate::events::NewEvent;
use crate::ladder::*;

#[async_trait]
impl LadderStore for Sqlite {
    async fn due_steps(&self, now: DateTime<Utc>) -> Result<Vec<DueStep>, Error> {
        self.read(move |conn| {
            let rows = conn
                .prepare_cached(sql!(
                    "SELECT d.alert_id, d.recipient, d.ladder, d.state, a.precedence, a.category, a.digest, d.due_at, d.next_step_at
                     FROM deliveries d INDEXED BY deliveries_next_step JOIN alerts a ON a.id = d.alert_id
                     WHERE {open} AND d.next_step_at <= ?1
                     ORDER BY d.next_step_at, d.alert_id, d.recipient",
                    open = *OPEN_STEP,
                ))?
                .query_map([ms(now)], |r| {
                    Ok(DueStep {
                        alert_id: r.get(0)?,
                        recipient: r.get(1)?,
                        ladder: r.get(2)?,
                        delivered: r.get::<_, DeliveryState>(3)? == DeliveryState::Delivered,
                        precedence: r.get(4)?,
                        category: r.get(5)?,
                        digest: r.get(6)?,
                        due_at: from_ms(r.get::<_, Option<i64>>(7)?.unwrap_or(0)),
                        step_at: from_ms(r.get(8)?),
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn take_steps(&self, steps: Vec<StepTaken>) -> Result<usize, Error> {
        let taken = self
            .write(move |conn| {
                let mut taken = 0;
                for s in &steps {
                    let changed = conn
                        .prepare_cached(sql!(
                            "UPDATE deliveries AS d SET ladder = ?3, next_step_at = ?4
                             WHERE d.alert_id = ?1 AND d.recipient = ?2 AND d.ladder < ?3 AND {open}",
                            open = *OPEN_STEP,
                        ))?
                        .execute(params![s.alert_id, s.recipient, s.ladder, s.next_step_at.map(ms)])?;
                    if changed == 0 {
                        continue;
                    }
                    taken += 1;
                    for m in &s.messages {
                        conn.prepare_cached(
                            "INSERT INTO messages (id, peer, kind, envelope, state, next_attempt_at) VALUES (?1, ?2, ?3, ?4, ?5, 0)",
                        )?
                        .execute(params![m.id, m.peer, m.kind, m.envelope, DeliveryState::Pending])?;
                    }
                    let evidence: Vec<Evidence<'_>> = s
                        .messages
                        .iter()
                        .map(|m| Evidence { kind: EvidenceKind::Message, key: &m.id, key2: "", bytes: &m.envelope })
                        .collect();
                    insert_event_with(conn, NewEvent { at: s.at, kind: s.event_kind, alert_id: &s.alert_id, agency: &s.recipient, direction: Direction::Outbound, detail: &s.detail }, &evidence)?;
                }
                Ok(taken)
            })
            .await?;
        if taken > 0 {
            self.notify_events();
        }
        Ok(taken)
    }

    async fn record_reminder(&self, reminder: ReceivedReminder) -> Result<bool, Error> {
        let stored = self
            .write(move |conn| {
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
                let ours: Option<String> = conn
                    .prepare_cached("SELECT originator FROM alerts WHERE id = ?1 AND direction = ?2")?
                    .query_row(params![alert_id, Direction::Inbound], |r| r.get(0))
                    .optional()?;
                if ours.as_deref() != Some(originator.as_str()) {
                    return Err(Error::NotFound(format!("no alert {alert_id} received from {originator}")));
                }
                let inserted = conn
                    .prepare_cached(
                        "INSERT OR IGNORE INTO received_messages (id, kind, alert_id, agency, received_at, envelope)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?
                    .execute(params![id, MessageKind::Reminder, alert_id, originator, ms(at), envelope])?;
                if inserted == 0 {
                    return Ok(false);
                }
                conn.prepare_cached("UPDATE alerts SET reminders = reminders + 1 WHERE id = ?1")?
                    .execute([alert_id])?;
                let kind = if *escalated { EventKind::Escalated } else { EventKind::Reminded };
                insert_event_with(conn, NewEvent { at, kind, alert_id, agency: originator, direction: Direction::Inbound, detail }, &[Evidence { kind: EvidenceKind::ReceivedMessage, key: id, key2: "", bytes: envelope }])?;
                Ok(true)
            })
            .await?;
        if stored {
            self.notify_events();
        }
        Ok(stored)
    }

    async fn record_notice(&self, notice: ReceivedNotice) -> Result<bool, Error> {
        let stored = self
            .write(move |conn| {
                let ReceivedNotice {
                    id,
                    alert_id,
                    laggard,
                    envelope,
                    at,
                    detail,
                } = &notice;
                let at = *at;
                let inserted = conn
                    .prepare_cached(
                        "INSERT OR IGNORE INTO received_messages (id, kind, alert_id, agency, received_at, envelope)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?
                    .execute(params![id, MessageKind::Notice, alert_id, laggard, ms(at), envelope])?;
                if inserted == 0 {
                    return Ok(false);
                }
                insert_event_with(conn, NewEvent { at, kind: EventKind::Escalated, alert_id, agency: laggard, direction: Direction::Inbound, detail }, &[Evidence { kind: EvidenceKind::ReceivedMessage, key: id, key2: "", bytes: envelope }])?;
                Ok(true)
            })
            .await?;
        if stored {
            self.notify_events();
        }
        Ok(stored)
    }
}
