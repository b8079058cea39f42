//! [`crate::EventStore`] on SQLite; the trait says what each method promises.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Row, params};

use crate::audit::{AuditEvent, Evidence};
use crate::codes::{DeadlineFlag, DeliveryState, Direction, EventKind};
use async_trait::async_trait;

use super::db::Sqlite;
use super::sql::{OPEN_DELIVERY_DEADLINE, OPEN_INBOUND_DEADLINE, OPEN_STEP, from_ms, ms, sql};
use crate::error::Error;
use crate::events::*;

/// Inserts an event and its audit entry (see [`crate::audit`]); for steps
/// that store no signed envelope.
pub(crate) fn insert_event(conn: &Connection, event: NewEvent<'_>) -> Result<(), Error> {
    insert_event_with(conn, event, &[])
}

/// Inserts an event and its audit entry, which commits to the signed
/// envelopes the same step stored (`evidence`).
pub(crate) fn insert_event_with(
    conn: &Connection,
    e: NewEvent<'_>,
    evidence: &[Evidence<'_>],
) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO events (at, kind, alert_id, agency, direction, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![ms(e.at), e.kind, e.alert_id, e.agency, e.direction, e.detail])?;
    let event = AuditEvent {
        id: conn.last_insert_rowid(),
        at: ms(e.at),
        kind: e.kind.code(),
        alert_id: e.alert_id.to_owned(),
        agency: e.agency.to_owned(),
        direction: e.direction.code(),
        detail: e.detail.to_owned(),
    };
    crate::audit::append(conn, &event, evidence)
}

fn event_row(r: &Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        id: r.get::<_, i64>(0)?.try_into().unwrap_or(0),
        at: from_ms(r.get(1)?),
        kind: r.get(2)?,
        alert_id: r.get(3)?,
        agency: r.get(4)?,
        direction: r.get(5)?,
        detail: r.get(6)?,
    })
}

#[async_trait]
impl EventStore for Sqlite {
    async fn events_after(&self, after: u64, limit: u32) -> Result<Vec<EventRow>, Error> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let rows = conn
                .prepare_cached(
                    "SELECT id, at, kind, alert_id, agency, direction, detail FROM events
                     WHERE id > ?1 ORDER BY id LIMIT ?2",
                )?
                .query_map(params![after, limit], event_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn last_event_id(&self) -> Result<u64, Error> {
        self.read(|conn| {
            let id: Option<i64> = conn
                .prepare_cached("SELECT MAX(id) FROM events")?
                .query_row([], |r| r.get(0))?;
            Ok(id.and_then(|i| u64::try_from(i).ok()).unwrap_or(0))
        })
        .await
    }

    async fn next_deadline(&self) -> Result<Option<DateTime<Utc>>, Error> {
        self.read(|conn| {
            let next: Option<i64> = conn
                .prepare_cached(sql!(
                    "SELECT MIN(t) FROM (
                        SELECT * FROM (SELECT d.due_at AS t FROM deliveries d INDEXED BY deliveries_open_deadlines
                         WHERE {delivery} ORDER BY d.due_at LIMIT 1)
                        UNION ALL
                        SELECT * FROM (SELECT a.due_at AS t FROM alerts a INDEXED BY alerts_open_deadlines
                         WHERE {inbound} ORDER BY a.due_at LIMIT 1)
                        UNION ALL
                        SELECT * FROM (SELECT d.next_step_at AS t FROM deliveries d INDEXED BY deliveries_next_step
                         WHERE {step} ORDER BY d.next_step_at LIMIT 1))",
                    delivery = *OPEN_DELIVERY_DEADLINE,
                    inbound = *OPEN_INBOUND_DEADLINE,
                    step = *OPEN_STEP,
                ))?
                .query_row([], |r| r.get(0))?;
            Ok(next.map(from_ms))
        })
        .await
    }

    async fn flag_overdue(
        &self,
        now: DateTime<Utc>,
        detail: for<'f> fn(&'f Flagged) -> String,
    ) -> Result<Vec<Flagged>, Error> {
        let flagged = self
            .write(move |conn| {
                let mut found: Vec<Flagged> = conn
                    .prepare_cached(sql!(
                        "SELECT d.alert_id, d.recipient, d.state, d.due_at FROM deliveries d INDEXED BY deliveries_open_deadlines
                         WHERE {open} AND d.due_at <= ?1",
                        open = *OPEN_DELIVERY_DEADLINE,
                    ))?
                    .query_map([ms(now)], |r| {
                        Ok(Flagged {
                            alert_id: r.get(0)?,
                            agency: r.get(1)?,
                            direction: Direction::Outbound,
                            flag: if r.get::<_, DeliveryState>(2)? == DeliveryState::Pending {
                                DeadlineFlag::Undelivered
                            } else {
                                DeadlineFlag::Overdue
                            },
                            due_at: from_ms(r.get(3)?),
                        })
                    })?
                    .collect::<Result<_, _>>()?;
                let inbound: Vec<Flagged> = conn
                    .prepare_cached(sql!(
                        "SELECT a.id, a.originator, a.due_at FROM alerts a INDEXED BY alerts_open_deadlines
                         WHERE {open} AND a.due_at <= ?1",
                        open = *OPEN_INBOUND_DEADLINE,
                    ))?
                    .query_map([ms(now)], |r| {
                        Ok(Flagged {
                            alert_id: r.get(0)?,
                            agency: r.get(1)?,
                            direction: Direction::Inbound,
                            flag: DeadlineFlag::Overdue,
                            due_at: from_ms(r.get(2)?),
                        })
                    })?
                    .collect::<Result<_, _>>()?;
                found.extend(inbound);
                // Fire in the order the deadlines fell, also after downtime.
                found.sort_by(|a, b| (a.due_at, &a.alert_id, &a.agency).cmp(&(b.due_at, &b.alert_id, &b.agency)));
                for f in &found {
                    match f.direction {
                        Direction::Outbound => {
                            conn.prepare_cached(
                                "UPDATE deliveries SET flag = ?3, flagged_at = ?4 WHERE alert_id = ?1 AND recipient = ?2",
                            )?
                            .execute(params![f.alert_id, f.agency, f.flag, ms(now)])?;
                        }
                        Direction::Inbound => {
                            conn.prepare_cached("UPDATE alerts SET flag = ?2, flagged_at = ?3 WHERE id = ?1")?
                                .execute(params![f.alert_id, f.flag, ms(now)])?;
                        }
                    }
                    let kind = if f.flag == DeadlineFlag::Undelivered {
                        EventKind::Undelivered
                    } else {
                        EventKind::Overdue
                    };
                    insert_event(conn, NewEvent { at: f.due_at, kind, alert_id: &f.alert_id, agency: &f.agency, direction: f.direction, detail: &detail(f) })?;
                }
                Ok(found)
            })
            .await?;
        if !flagged.is_empty() {
            self.notify_events();
        }
        Ok(flagged)
    }
}
