//! [`crate::RecordStore`] on SQLite; the trait says what each method promises.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::audit::{Evidence, EvidenceKind};
use crate::codes::{AlertStatus, DeadlineFlag, DeliveryState, Direction, EventKind};
use async_trait::async_trait;

use super::db::Sqlite;
use super::events::{insert_event, insert_event_with};
use super::sql::{from_ms, ms, sql};
use crate::error::Error;
use crate::events::NewEvent;
use crate::records::*;

/// Closes the earlier alerts `a` refers to, if they are `direction` alerts
/// of `a`'s originator, with one event each. Their clocks stop.
fn close_earlier(conn: &Connection, a: &NewAlert, direction: Direction) -> Result<(), Error> {
    for Closing {
        alert_id: earlier,
        status,
        detail,
    } in &a.closes
    {
        let changed = conn
            .prepare_cached(sql!(
                "UPDATE alerts SET status = ?3, closed_by = ?4
                 WHERE id = ?1 AND direction = ?2 AND originator = ?5 AND status != {cancelled}",
                cancelled = AlertStatus::Cancelled.code()
            ))?
            .execute(params![earlier, direction, status, a.id, a.originator])?;
        if changed == 0 {
            continue;
        }
        let kind = if *status == AlertStatus::Cancelled {
            EventKind::Cancelled
        } else {
            EventKind::Superseded
        };
        insert_event(
            conn,
            NewEvent {
                at: a.stored_at,
                kind,
                alert_id: earlier,
                agency: &a.originator,
                direction,
                detail,
            },
        )?;
    }
    Ok(())
}

pub(crate) const ALERT_COLUMNS: &str = "id, direction, originator, created_at, stored_at, precedence, category, summary, digest, envelope, receipt, due_at, flag, flagged_at, reminders, status, closed_by";

pub(crate) fn alert_row(r: &Row<'_>) -> rusqlite::Result<AlertRow> {
    Ok(AlertRow {
        id: r.get(0)?,
        direction: r.get(1)?,
        originator: r.get(2)?,
        created_at: from_ms(r.get(3)?),
        stored_at: from_ms(r.get(4)?),
        precedence: r.get(5)?,
        category: r.get(6)?,
        summary: r.get(7)?,
        digest: r.get(8)?,
        envelope: r.get(9)?,
        receipt: r.get(10)?,
        due_at: r.get::<_, Option<i64>>(11)?.map(from_ms),
        flag: r.get(12)?,
        flagged_at: r.get::<_, Option<i64>>(13)?.map(from_ms),
        reminders: r.get(14)?,
        status: r.get(15)?,
        closed_by: r.get(16)?,
    })
}

/// The columns [`delivery_row`] reads, from `deliveries d` joined with
/// `peer_blocks b` (only a pending delivery reads as blocked).
macro_rules! delivery_columns {
    () => {
        "d.alert_id, d.recipient, d.state, d.attempts, d.last_error, d.next_attempt_at, d.delivered_at, d.receipt, d.due_at, d.flag, d.flagged_at, d.ladder, d.next_step_at, CASE d.state WHEN {pending} THEN b.reason END"
    };
}

/// One alert row.
pub(crate) fn alert_by_id(conn: &Connection, id: &str) -> rusqlite::Result<Option<AlertRow>> {
    conn.prepare_cached(sql!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?1"))?
        .query_row([id], alert_row)
        .optional()
}

/// The deliveries of one alert, by recipient.
pub(crate) fn deliveries_of(
    conn: &Connection,
    alert_id: &str,
) -> rusqlite::Result<Vec<DeliveryRow>> {
    conn.prepare_cached(sql!(
        concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM deliveries d LEFT JOIN peer_blocks b ON b.peer = d.recipient
             WHERE d.alert_id = ?1 ORDER BY d.recipient"
        ),
        pending = DeliveryState::Pending.code()
    ))?
    .query_map([alert_id], delivery_row)?
    .collect()
}

/// Adds each alert's history, on the same connection (so in the same read
/// transaction when the caller holds one).
pub(crate) fn with_history(
    conn: &Connection,
    alerts: Vec<AlertRow>,
) -> rusqlite::Result<Vec<AlertHistory>> {
    alerts
        .into_iter()
        .map(|alert| {
            Ok(AlertHistory {
                deliveries: deliveries_of(conn, &alert.id)?,
                acks: super::acks::acks_of(conn, &alert.id)?,
                alert,
            })
        })
        .collect()
}

fn delivery_row(r: &Row<'_>) -> rusqlite::Result<DeliveryRow> {
    Ok(DeliveryRow {
        alert_id: r.get(0)?,
        recipient: r.get(1)?,
        state: r.get(2)?,
        attempts: r.get::<_, i64>(3)?.try_into().unwrap_or(u32::MAX),
        last_error: r.get(4)?,
        next_attempt_at: r.get::<_, Option<i64>>(5)?.map(from_ms),
        delivered_at: r.get::<_, Option<i64>>(6)?.map(from_ms),
        receipt: r.get(7)?,
        due_at: r.get::<_, Option<i64>>(8)?.map(from_ms),
        flag: r.get(9)?,
        flagged_at: r.get::<_, Option<i64>>(10)?.map(from_ms),
        ladder: r.get(11)?,
        next_step_at: r.get::<_, Option<i64>>(12)?.map(from_ms),
        blocked: r.get(13)?,
    })
}

fn insert_alert(
    conn: &Connection,
    a: &NewAlert,
    direction: Direction,
    receipt: Option<&[u8]>,
) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO alerts (id, direction, originator, created_at, stored_at, precedence, category, summary, digest, envelope, receipt, due_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        a.id,
        direction,
        a.originator,
        ms(a.created_at),
        ms(a.stored_at),
        a.precedence,
        a.category,
        a.summary,
        a.digest,
        a.envelope,
        receipt,
        ms(a.due_at),
    ])?;
    super::subjects::insert_keys(conn, &a.id, &a.keys)?;
    close_earlier(conn, a, direction)?;
    Ok(())
}

/// Stores `alert` as sent to `recipients`, with one pending delivery each,
/// in the caller's transaction; returns it as stored.
pub(crate) fn insert_outbound_in(
    conn: &Connection,
    alert: &NewAlert,
    recipients: &[String],
) -> Result<AlertHistory, Error> {
    let exists: bool = conn
        .prepare_cached("SELECT 1 FROM alerts WHERE id = ?1")?
        .exists([&alert.id])?;
    if exists {
        return Err(Error::Conflict(alert.id.clone()));
    }
    insert_alert(conn, alert, Direction::Outbound, None)?;
    let mut stmt = conn.prepare_cached(
        "INSERT INTO deliveries (alert_id, recipient, state, next_attempt_at, due_at, next_step_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    // Due at once whatever the clock says: retry pacing is real time.
    for r in recipients {
        stmt.execute(params![
            alert.id,
            r,
            DeliveryState::Pending,
            0i64,
            ms(alert.due_at),
            alert.first_step_at.map(ms)
        ])?;
    }
    insert_event_with(
        conn,
        NewEvent {
            at: alert.stored_at,
            kind: EventKind::Submitted,
            alert_id: &alert.id,
            agency: &recipients.join(","),
            direction: Direction::Outbound,
            detail: &alert.detail,
        },
        &[Evidence {
            kind: EvidenceKind::Alert,
            key: &alert.id,
            key2: "",
            bytes: &alert.envelope,
        }],
    )?;
    // Read back in the same transaction, from the writer's warm
    // cache: what the operator is told is exactly what was stored.
    // A new alert has no acknowledgements yet.
    let row =
        alert_by_id(conn, &alert.id)?.ok_or_else(|| Error::Commit("alert not stored".into()))?;
    Ok(AlertHistory {
        deliveries: deliveries_of(conn, &alert.id)?,
        acks: Vec::new(),
        alert: row,
    })
}

#[async_trait]
impl RecordStore for Sqlite {
    async fn insert_outbound(
        &self,
        alert: NewAlert,
        recipients: Vec<String>,
    ) -> Result<AlertHistory, Error> {
        let stored = self
            .write(move |conn| insert_outbound_in(conn, &alert, &recipients))
            .await?;
        self.notify_events();
        Ok(stored)
    }

    async fn insert_inbound(
        &self,
        alert: NewAlert,
        receipt: Vec<u8>,
    ) -> Result<InboundOutcome, Error> {
        self.write(move |conn| {
            let existing: Option<(Vec<u8>, Option<Vec<u8>>)> = conn
                .prepare_cached("SELECT digest, receipt FROM alerts WHERE id = ?1")?
                .query_row([&alert.id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            match existing {
                Some((digest, Some(receipt))) if digest == alert.digest => {
                    Ok(InboundOutcome::Duplicate(receipt))
                }
                Some(_) => Err(Error::Conflict(alert.id.clone())),
                None => {
                    insert_alert(conn, &alert, Direction::Inbound, Some(&receipt))?;
                    insert_event_with(
                        conn,
                        NewEvent {
                            at: alert.stored_at,
                            kind: EventKind::Received,
                            alert_id: &alert.id,
                            agency: &alert.originator,
                            direction: Direction::Inbound,
                            detail: &alert.detail,
                        },
                        &[
                            Evidence {
                                kind: EvidenceKind::Alert,
                                key: &alert.id,
                                key2: "",
                                bytes: &alert.envelope,
                            },
                            Evidence {
                                kind: EvidenceKind::ReceiptIssued,
                                key: &alert.id,
                                key2: "",
                                bytes: &receipt,
                            },
                        ],
                    )?;
                    Ok(InboundOutcome::Stored)
                }
            }
        })
        .await
        .inspect(|outcome| {
            if *outcome == InboundOutcome::Stored {
                self.notify_events();
            }
        })
    }

    async fn record_attempts(
        &self,
        outcomes: Vec<(String, String, AttemptOutcome)>,
        at: DateTime<Utc>,
        words: OutcomeWords,
    ) -> Result<(), Error> {
        let final_outcomes = outcomes
            .iter()
            .any(|(_, _, o)| !matches!(o, AttemptOutcome::Retry { .. }));
        self.write(move |conn| {
            for (alert_id, recipient, outcome) in &outcomes {
                match outcome {
                    AttemptOutcome::Delivered { delivered_at, receipt } => {
                        // A delivery that missed its deadline is no longer
                        // undelivered, but still overdue.
                        let changed = conn
                            .prepare_cached(sql!(
                                "UPDATE deliveries SET state = {delivered}, attempts = attempts + 1, next_attempt_at = NULL,
                                     delivered_at = ?3, receipt = ?4,
                                     flag = CASE flag WHEN {undelivered} THEN {overdue} ELSE flag END
                                 WHERE alert_id = ?1 AND recipient = ?2 AND state = {pending}",
                                delivered = DeliveryState::Delivered.code(),
                                undelivered = DeadlineFlag::Undelivered.code(),
                                overdue = DeadlineFlag::Overdue.code(),
                                pending = DeliveryState::Pending.code(),
                            ))?
                            .execute(params![alert_id, recipient, ms(*delivered_at), receipt])?;
                        if changed > 0 {
                            insert_event_with(conn, NewEvent { at, kind: EventKind::Delivered, alert_id, agency: recipient, direction: Direction::Outbound, detail: &(words.delivered)(recipient, *delivered_at) }, &[Evidence { kind: EvidenceKind::ReceiptReceived, key: alert_id, key2: recipient, bytes: receipt }])?;
                        }
                    }
                    AttemptOutcome::Retry { error, next_attempt_at } => {
                        conn.prepare_cached(sql!(
                            "UPDATE deliveries SET attempts = attempts + 1, last_error = ?3, next_attempt_at = ?4
                             WHERE alert_id = ?1 AND recipient = ?2 AND state = {pending}",
                            pending = DeliveryState::Pending.code(),
                        ))?
                        .execute(params![alert_id, recipient, error, ms(*next_attempt_at)])?;
                    }
                    AttemptOutcome::Rejected { error } => {
                        let changed = conn
                            .prepare_cached(sql!(
                                "UPDATE deliveries SET state = {rejected}, attempts = attempts + 1, last_error = ?3, next_attempt_at = NULL
                                 WHERE alert_id = ?1 AND recipient = ?2 AND state = {pending}",
                                rejected = DeliveryState::Rejected.code(),
                                pending = DeliveryState::Pending.code(),
                            ))?
                            .execute(params![alert_id, recipient, error])?;
                        if changed > 0 {
                            insert_event(conn, NewEvent { at, kind: EventKind::Rejected, alert_id, agency: recipient, direction: Direction::Outbound, detail: &(words.rejected)(recipient, error) })?;
                        }
                    }
                }
            }
            Ok(())
        })
        .await?;
        if final_outcomes {
            self.notify_events();
        }
        Ok(())
    }

    async fn retry_now(&self, recipient: &str, now: DateTime<Utc>) -> Result<usize, Error> {
        let recipient = recipient.to_owned();
        self.write(move |conn| {
            let deliveries = conn
                .prepare_cached(sql!(
                    "UPDATE deliveries SET next_attempt_at = ?2
                     WHERE recipient = ?1 AND state = {pending} AND next_attempt_at > ?2",
                    pending = DeliveryState::Pending.code(),
                ))?
                .execute(params![recipient, ms(now)])?;
            let messages = conn
                .prepare_cached(sql!(
                    "UPDATE messages SET next_attempt_at = ?2
                     WHERE peer = ?1 AND state = {pending} AND next_attempt_at > ?2",
                    pending = DeliveryState::Pending.code(),
                ))?
                .execute(params![recipient, ms(now)])?;
            Ok(deliveries + messages)
        })
        .await
    }

    async fn alert(&self, id: &str) -> Result<Option<AlertRow>, Error> {
        let id = id.to_owned();
        self.read(move |conn| Ok(alert_by_id(conn, &id)?)).await
    }

    async fn alert_history(&self, id: &str) -> Result<Option<AlertHistory>, Error> {
        let id = id.to_owned();
        self.read_snapshot(move |conn| {
            let row = alert_by_id(conn, &id)?;
            Ok(with_history(conn, row.into_iter().collect())?.pop())
        })
        .await
    }

    async fn list_alerts(
        &self,
        direction: Option<Direction>,
        limit: u32,
    ) -> Result<Vec<AlertHistory>, Error> {
        self.read_snapshot(move |conn| {
            let alerts = match direction {
                Some(direction) => conn
                    .prepare_cached(sql!(
                        "SELECT {ALERT_COLUMNS} FROM alerts WHERE direction = ?1 ORDER BY stored_at DESC, id DESC LIMIT ?2"
                    ))?
                    .query_map(params![direction, limit], alert_row)?
                    .collect::<Result<Vec<_>, _>>()?,
                None => conn
                    .prepare_cached(sql!(
                        "SELECT {ALERT_COLUMNS} FROM alerts ORDER BY stored_at DESC, id DESC LIMIT ?1"
                    ))?
                    .query_map(params![limit], alert_row)?
                    .collect::<Result<Vec<_>, _>>()?,
            };
            Ok(with_history(conn, alerts)?)
        })
        .await
    }

    async fn due_deliveries(
        &self,
        recipient: &str,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, Error> {
        let recipient = recipient.to_owned();
        self.read(move |conn| {
            let rows = conn
                .prepare_cached(sql!(
                    "SELECT d.alert_id, a.envelope, d.attempts FROM deliveries d JOIN alerts a ON a.id = d.alert_id
                     WHERE d.recipient = ?1 AND d.state = {pending} AND d.next_attempt_at <= ?2
                     ORDER BY d.next_attempt_at, d.alert_id LIMIT ?3",
                    pending = DeliveryState::Pending.code(),
                ))?
                .query_map(params![recipient, ms(now), limit], |r| {
                    Ok(DueDelivery {
                        alert_id: r.get(0)?,
                        envelope: r.get(1)?,
                        attempts: r.get::<_, i64>(2)?.try_into().unwrap_or(u32::MAX),
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn next_due(&self, recipient: &str) -> Result<Option<DateTime<Utc>>, Error> {
        let recipient = recipient.to_owned();
        self.read(move |conn| {
            let next: Option<i64> = conn
                .prepare_cached(sql!(
                    "SELECT MIN(t) FROM (
                        SELECT MIN(next_attempt_at) AS t FROM deliveries WHERE recipient = ?1 AND state = {pending}
                        UNION ALL
                        SELECT MIN(next_attempt_at) AS t FROM messages WHERE peer = ?1 AND state = {pending})",
                    pending = DeliveryState::Pending.code(),
                ))?
                .query_row([&recipient], |r| r.get(0))?;
            Ok(next.map(from_ms))
        })
        .await
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{Store, StoreOptions};

    /// Plain words for the store's own tests.
    pub(crate) const WORDS: OutcomeWords = OutcomeWords {
        delivered: |recipient, _| format!("receipt from {recipient}"),
        rejected: |recipient, error| format!("{recipient} refused: {error}"),
        refused_ack: |originator, id, error| format!("{originator} refused {id}: {error}"),
    };

    /// An outbound alert of TR-MIT's, due in 12 h, whose digest is
    /// `digest` repeated: what the store's own tests insert.
    pub(crate) fn alert(id: &str, digest: u8) -> NewAlert {
        let now = Utc::now();
        NewAlert {
            id: id.into(),
            originator: "TR-MIT".into(),
            created_at: now,
            stored_at: now,
            precedence: 3,
            category: "terrorism".into(),
            summary: "X".into(),
            digest: vec![digest; 32],
            envelope: vec![1, 2, 3],
            due_at: now + chrono::Duration::hours(12),
            first_step_at: None,
            keys: vec![],
            closes: vec![],
            detail: format!("stored {id}"),
        }
    }

    fn ack(alert_id: &str, agency: &str) -> crate::NewAck {
        crate::NewAck {
            id: format!("K-{alert_id}-{agency}"),
            alert_id: alert_id.into(),
            agency: agency.into(),
            operator: "analyst".into(),
            disposition: 1,
            note: String::new(),
            acknowledged_at: Utc::now(),
            stored_at: Utc::now(),
            envelope: vec![9],
        }
    }

    #[tokio::test]
    async fn answered_and_closed_deadlines_leave_the_open_set() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let mut a1 = alert("A1", 1);
        a1.due_at = Utc::now() + chrono::Duration::hours(1);
        let a1_due = a1.due_at.timestamp_millis();
        store
            .insert_outbound(a1, vec!["FR-DGSI".into(), "BE-VSSE".into()])
            .await
            .unwrap();
        let a2 = alert("A2", 2);
        let a2_due = a2.due_at.timestamp_millis();
        store
            .insert_outbound(a2, vec!["FR-DGSI".into()])
            .await
            .unwrap();
        let next = || async {
            store
                .next_deadline()
                .await
                .unwrap()
                .map(|t| t.timestamp_millis())
        };
        assert_eq!(next().await, Some(a1_due));

        // One recipient answers: the other's deadline still stands.
        store
            .record_received_ack(ack("A1", "FR-DGSI"), "ok".into())
            .await
            .unwrap();
        assert_eq!(next().await, Some(a1_due));
        store
            .record_received_ack(ack("A1", "BE-VSSE"), "ok".into())
            .await
            .unwrap();
        assert_eq!(next().await, Some(a2_due));

        // Cancelling A2 closes its deadline too.
        let mut a3 = alert("A3", 3);
        a3.due_at = Utc::now() + chrono::Duration::hours(24);
        let a3_due = a3.due_at.timestamp_millis();
        a3.closes = vec![Closing {
            alert_id: "A2".into(),
            status: AlertStatus::Cancelled,
            detail: "cancelled by A3".into(),
        }];
        store
            .insert_outbound(a3, vec!["FR-DGSI".into()])
            .await
            .unwrap();
        assert_eq!(next().await, Some(a3_due));
        assert_eq!(store.list_awaiting(10).await.unwrap().len(), 1);

        // Nothing answered is ever flagged, however late it gets.
        let flagged = store
            .flag_overdue(Utc::now() + chrono::Duration::hours(12), |f| {
                format!("{} flagged", f.alert_id)
            })
            .await
            .unwrap();
        assert!(flagged.is_empty(), "{flagged:?}");
    }

    #[tokio::test]
    async fn outbound_alerts_queue_one_delivery_per_recipient() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        store
            .insert_outbound(alert("A1", 1), vec!["FR-DGSI".into(), "BE-VSSE".into()])
            .await
            .unwrap();
        let due = store
            .due_deliveries("FR-DGSI", Utc::now(), 10)
            .await
            .unwrap();
        assert_eq!(due.len(), 1);
        assert!(matches!(
            store.insert_outbound(alert("A1", 1), vec![]).await,
            Err(Error::Conflict(_))
        ));

        let later = Utc::now() + chrono::Duration::seconds(30);
        store
            .record_attempts(
                vec![(
                    "A1".into(),
                    "FR-DGSI".into(),
                    AttemptOutcome::Retry {
                        error: "unavailable".into(),
                        next_attempt_at: later,
                    },
                )],
                Utc::now(),
                WORDS,
            )
            .await
            .unwrap();
        assert!(
            store
                .due_deliveries("FR-DGSI", Utc::now(), 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store
                .next_due("FR-DGSI")
                .await
                .unwrap()
                .map(|t| t.timestamp_millis()),
            Some(later.timestamp_millis())
        );
        let d = store.alert_history("A1").await.unwrap().unwrap().deliveries;
        let dgsi = d.iter().find(|d| d.recipient == "FR-DGSI").unwrap();
        assert_eq!(
            (dgsi.attempts, dgsi.last_error.as_deref()),
            (1, Some("unavailable"))
        );
    }

    #[tokio::test]
    async fn inbound_is_idempotent_and_conflicts_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        assert_eq!(
            store
                .insert_inbound(alert("B1", 7), b"r1".to_vec())
                .await
                .unwrap(),
            InboundOutcome::Stored
        );
        assert_eq!(
            store
                .insert_inbound(alert("B1", 7), b"r2".to_vec())
                .await
                .unwrap(),
            InboundOutcome::Duplicate(b"r1".to_vec())
        );
        assert!(matches!(
            store.insert_inbound(alert("B1", 8), b"r3".to_vec()).await,
            Err(Error::Conflict(_))
        ));
    }

    #[tokio::test]
    async fn commits_survive_reopening_and_concurrent_writes_all_land() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
            let mut tasks = Vec::new();
            for i in 0..200 {
                let s = store.clone();
                tasks.push(tokio::spawn(async move {
                    s.insert_inbound(alert(&format!("C{i:03}"), 1), vec![])
                        .await
                }));
            }
            for t in tasks {
                t.await.unwrap().unwrap();
            }
            store.close().await;
            assert!(matches!(
                store.insert_inbound(alert("late", 1), vec![]).await,
                Err(Error::Closed)
            ));
        }
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let all = store
            .list_alerts(Some(Direction::Inbound), 1000)
            .await
            .unwrap();
        assert_eq!(all.len(), 200);
    }

    /// A code the store never writes, found in a row, is corrupt data:
    /// reading the row fails with [`Error::Corrupt`] naming the code's
    /// enum, whichever column holds it.
    #[tokio::test]
    async fn an_unknown_code_in_a_row_reads_as_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        store
            .insert_outbound(alert("A1", 1), vec!["FR-DGSI".into()])
            .await
            .unwrap();
        let edit = |sql: &str| {
            let conn = Connection::open(Store::database_path(dir.path())).unwrap();
            conn.execute_batch(sql).unwrap();
        };
        let read = || async { store.alert_history("A1").await };
        assert!(read().await.is_ok());
        for (sql, what, code) in [
            ("UPDATE deliveries SET ladder = 7", "LadderStep", 7),
            (
                "UPDATE deliveries SET ladder = 0, flag = 9",
                "DeadlineFlag",
                9,
            ),
            (
                "UPDATE deliveries SET flag = 0; UPDATE alerts SET status = 5",
                "AlertStatus",
                5,
            ),
        ] {
            edit(sql);
            match read().await {
                Err(Error::Corrupt { what: w, code: c }) => {
                    assert_eq!((w, c), (what, code), "{sql}")
                }
                other => panic!("{sql}: {other:?}"),
            }
        }
        edit("UPDATE alerts SET status = 0");
        assert!(read().await.is_ok());
        // The event log likewise (events may be added, not edited).
        edit(
            "INSERT INTO events (at, kind, alert_id, agency, direction, detail) VALUES (0, 99, 'A1', 'X', 1, '')",
        );
        assert!(matches!(
            store.events_after(0, 100).await,
            Err(Error::Corrupt {
                what: "EventKind",
                code: 99
            })
        ));
    }

    #[test]
    fn migrations_are_valid() {
        rusqlite_migration::Migrations::new(super::super::db::migrations())
            .validate()
            .unwrap();
    }
}
