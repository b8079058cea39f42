//! [`crate::RecordStore`] on PostgreSQL; the trait says what each method
//! promises, and `sqlite/records.rs` is the behaviour this matches.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::db::{Client, Postgres, Tx, code};
use super::log::{insert_event, insert_event_with};
use crate::audit::{Evidence, EvidenceKind};
use crate::codes::{AlertStatus, DeadlineFlag, DeliveryState, Direction, EventKind, LadderStep};
use crate::error::Error;
use crate::events::NewEvent;
use crate::millis::{from_ms, ms};
use crate::records::*;
use crate::sqlite::sql::sql;

/// Closes the earlier alerts `a` refers to, if they are `direction` alerts
/// of `a`'s originator, with one event each. Their clocks stop (the
/// `settle_on_close` trigger).
async fn close_earlier(tx: &mut Tx, a: &NewAlert, direction: Direction) -> Result<(), Error> {
    for Closing {
        alert_id: earlier,
        status,
        detail,
    } in &a.closes
    {
        let changed = tx
            .client()
            .execute(
                sql!(
                    "UPDATE alerts SET status = $3, closed_by = $4
                     WHERE id = $1 AND direction = $2 AND originator = $5 AND status != {cancelled}",
                    cancelled = AlertStatus::Cancelled.code()
                ),
                &[
                    earlier,
                    &direction.code(),
                    &status.code(),
                    &a.id,
                    &a.originator,
                ],
            )
            .await?;
        if changed == 0 {
            continue;
        }
        let kind = if *status == AlertStatus::Cancelled {
            EventKind::Cancelled
        } else {
            EventKind::Superseded
        };
        insert_event(
            tx,
            NewEvent {
                at: a.stored_at,
                kind,
                alert_id: earlier,
                agency: &a.originator,
                direction,
                detail,
            },
        )
        .await?;
    }
    Ok(())
}

/// The columns [`alert_row`] reads, in its order.
pub(crate) const ALERT_COLUMNS: &str = "id, direction, originator, created_at, stored_at, precedence, category, summary, digest, envelope, receipt, due_at, flag, flagged_at, reminders, status, closed_by";

/// An alert row read from [`ALERT_COLUMNS`].
pub(crate) fn alert_row(r: &Row) -> Result<AlertRow, Error> {
    Ok(AlertRow {
        id: r.try_get(0)?,
        direction: code(r, 1, Direction::decode)?,
        originator: r.try_get(2)?,
        created_at: from_ms(r.try_get(3)?),
        stored_at: from_ms(r.try_get(4)?),
        precedence: narrow(r.try_get(5)?, "alerts.precedence")?,
        category: r.try_get(6)?,
        summary: r.try_get(7)?,
        digest: r.try_get(8)?,
        envelope: r.try_get(9)?,
        receipt: r.try_get(10)?,
        due_at: r.try_get::<_, Option<i64>>(11)?.map(from_ms),
        flag: code(r, 12, DeadlineFlag::decode)?,
        flagged_at: r.try_get::<_, Option<i64>>(13)?.map(from_ms),
        reminders: r.try_get(14)?,
        status: code(r, 15, AlertStatus::decode)?,
        closed_by: r.try_get(16)?,
    })
}

/// A BIGINT column that holds an `i32` field (a wire number): a value out
/// of range was never written by this store. SQLite refuses it on reading
/// too.
pub(crate) fn narrow(v: i64, column: &str) -> Result<i32, Error> {
    i32::try_from(v).map_err(|_| Error::Damaged(format!("{column} holds {v}, not a wire number")))
}

/// The columns [`delivery_row`] reads, from `deliveries d` joined with
/// `peer_blocks b` (only a pending delivery reads as blocked).
macro_rules! delivery_columns {
    () => {
        "d.alert_id, d.recipient, d.state, d.attempts, d.last_error, d.next_attempt_at, d.delivered_at, d.receipt, d.due_at, d.flag, d.flagged_at, d.ladder, d.next_step_at, CASE d.state WHEN {pending} THEN b.reason END"
    };
}

fn delivery_row(r: &Row) -> Result<DeliveryRow, Error> {
    Ok(DeliveryRow {
        alert_id: r.try_get(0)?,
        recipient: r.try_get(1)?,
        state: code(r, 2, DeliveryState::decode)?,
        attempts: r.try_get::<_, i64>(3)?.try_into().unwrap_or(u32::MAX),
        last_error: r.try_get(4)?,
        next_attempt_at: r.try_get::<_, Option<i64>>(5)?.map(from_ms),
        delivered_at: r.try_get::<_, Option<i64>>(6)?.map(from_ms),
        receipt: r.try_get(7)?,
        due_at: r.try_get::<_, Option<i64>>(8)?.map(from_ms),
        flag: code(r, 9, DeadlineFlag::decode)?,
        flagged_at: r.try_get::<_, Option<i64>>(10)?.map(from_ms),
        ladder: code(r, 11, LadderStep::decode)?,
        next_step_at: r.try_get::<_, Option<i64>>(12)?.map(from_ms),
        blocked: r.try_get(13)?,
    })
}

/// One alert row.
pub(crate) async fn alert_by_id(client: &Client, id: &str) -> Result<Option<AlertRow>, Error> {
    client
        .query_opt(
            sql!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1"),
            &[&id],
        )
        .await?
        .map(|r| alert_row(&r))
        .transpose()
}

/// The deliveries of one alert, by recipient.
pub(crate) async fn deliveries_of(
    client: &Client,
    alert_id: &str,
) -> Result<Vec<DeliveryRow>, Error> {
    client
        .query(
            sql!(
                concat!(
                    "SELECT ",
                    delivery_columns!(),
                    " FROM deliveries d LEFT JOIN peer_blocks b ON b.peer = d.recipient
                     WHERE d.alert_id = $1 ORDER BY d.recipient"
                ),
                pending = DeliveryState::Pending.code()
            ),
            &[&alert_id],
        )
        .await?
        .iter()
        .map(delivery_row)
        .collect()
}

/// Adds each alert's history, on the same connection (so in the same
/// snapshot when the caller holds one).
pub(crate) async fn with_history(
    client: &Client,
    alerts: Vec<AlertRow>,
) -> Result<Vec<AlertHistory>, Error> {
    let mut out = Vec::with_capacity(alerts.len());
    for alert in alerts {
        out.push(AlertHistory {
            deliveries: deliveries_of(client, &alert.id).await?,
            acks: super::acks::acks_of(client, &alert.id).await?,
            alert,
        });
    }
    Ok(out)
}

async fn insert_alert(
    tx: &mut Tx,
    a: &NewAlert,
    direction: Direction,
    receipt: Option<&[u8]>,
) -> Result<(), Error> {
    tx.client()
        .execute(
            "INSERT INTO alerts (id, direction, originator, created_at, stored_at, precedence, category, summary, digest, envelope, receipt, due_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            &[
                &a.id,
                &direction.code(),
                &a.originator,
                &ms(a.created_at),
                &ms(a.stored_at),
                &i64::from(a.precedence),
                &a.category,
                &a.summary,
                &a.digest,
                &a.envelope,
                &receipt,
                &ms(a.due_at),
            ],
        )
        .await?;
    super::subjects::insert_keys(tx, &a.id, &a.keys).await?;
    close_earlier(tx, a, direction).await?;
    Ok(())
}

/// Stores `alert` as sent to `recipients`, with one pending delivery each,
/// in the caller's transaction; returns it as stored.
pub(crate) async fn insert_outbound_in(
    tx: &mut Tx,
    alert: &NewAlert,
    recipients: &[String],
) -> Result<AlertHistory, Error> {
    // Writes are serialised (see `db`), so no other can insert the id
    // between this check and the insert.
    let exists = tx
        .client()
        .query_opt("SELECT 1 FROM alerts WHERE id = $1", &[&alert.id])
        .await?
        .is_some();
    if exists {
        return Err(Error::Conflict(alert.id.clone()));
    }
    insert_alert(tx, alert, Direction::Outbound, None).await?;
    // Due at once whatever the clock says: retry pacing is real time.
    for r in recipients {
        tx.client()
            .execute(
                "INSERT INTO deliveries (alert_id, recipient, state, next_attempt_at, due_at, next_step_at) VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &alert.id,
                    r,
                    &DeliveryState::Pending.code(),
                    &0i64,
                    &ms(alert.due_at),
                    &alert.first_step_at.map(ms),
                ],
            )
            .await?;
    }
    insert_event_with(
        tx,
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
    )
    .await?;
    // Read back in the same transaction: what the operator is told is
    // exactly what was stored. A new alert has no acknowledgements yet.
    let row = alert_by_id(tx.client(), &alert.id)
        .await?
        .ok_or_else(|| Error::Commit("alert not stored".into()))?;
    Ok(AlertHistory {
        deliveries: deliveries_of(tx.client(), &alert.id).await?,
        acks: Vec::new(),
        alert: row,
    })
}

/// Records one attempt's outcome, with its event if it was final and the
/// delivery was still pending.
async fn record_attempt(
    tx: &mut Tx,
    (alert_id, recipient, outcome): &(String, String, AttemptOutcome),
    at: DateTime<Utc>,
    words: OutcomeWords,
) -> Result<(), Error> {
    match outcome {
        AttemptOutcome::Delivered {
            delivered_at,
            receipt,
        } => {
            // A delivery that missed its deadline is no longer
            // undelivered, but still overdue.
            let changed = tx
                .client()
                .execute(
                    sql!(
                        "UPDATE deliveries SET state = {delivered}, attempts = attempts + 1, next_attempt_at = NULL,
                             delivered_at = $3, receipt = $4,
                             flag = CASE flag WHEN {undelivered} THEN {overdue} ELSE flag END
                         WHERE alert_id = $1 AND recipient = $2 AND state = {pending}",
                        delivered = DeliveryState::Delivered.code(),
                        undelivered = DeadlineFlag::Undelivered.code(),
                        overdue = DeadlineFlag::Overdue.code(),
                        pending = DeliveryState::Pending.code(),
                    ),
                    &[alert_id, recipient, &ms(*delivered_at), receipt],
                )
                .await?;
            if changed > 0 {
                insert_event_with(
                    tx,
                    NewEvent {
                        at,
                        kind: EventKind::Delivered,
                        alert_id,
                        agency: recipient,
                        direction: Direction::Outbound,
                        detail: &(words.delivered)(recipient, *delivered_at),
                    },
                    &[Evidence {
                        kind: EvidenceKind::ReceiptReceived,
                        key: alert_id,
                        key2: recipient,
                        bytes: receipt,
                    }],
                )
                .await?;
            }
        }
        AttemptOutcome::Retry {
            error,
            next_attempt_at,
        } => {
            tx.client()
                .execute(
                    sql!(
                        "UPDATE deliveries SET attempts = attempts + 1, last_error = $3, next_attempt_at = $4
                         WHERE alert_id = $1 AND recipient = $2 AND state = {pending}",
                        pending = DeliveryState::Pending.code(),
                    ),
                    &[alert_id, recipient, error, &ms(*next_attempt_at)],
                )
                .await?;
        }
        AttemptOutcome::Rejected { error } => {
            let changed = tx
                .client()
                .execute(
                    sql!(
                        "UPDATE deliveries SET state = {rejected}, attempts = attempts + 1, last_error = $3, next_attempt_at = NULL
                         WHERE alert_id = $1 AND recipient = $2 AND state = {pending}",
                        rejected = DeliveryState::Rejected.code(),
                        pending = DeliveryState::Pending.code(),
                    ),
                    &[alert_id, recipient, error],
                )
                .await?;
            if changed > 0 {
                insert_event(
                    tx,
                    NewEvent {
                        at,
                        kind: EventKind::Rejected,
                        alert_id,
                        agency: recipient,
                        direction: Direction::Outbound,
                        detail: &(words.rejected)(recipient, error),
                    },
                )
                .await?;
            }
        }
    }
    Ok(())
}

#[async_trait]
impl RecordStore for Postgres {
    async fn insert_outbound(
        &self,
        alert: NewAlert,
        recipients: Vec<String>,
    ) -> Result<AlertHistory, Error> {
        self.write(move |tx| {
            Box::pin(async move { insert_outbound_in(tx, &alert, &recipients).await })
        })
        .await
    }

    async fn insert_inbound(
        &self,
        alert: NewAlert,
        receipt: Vec<u8>,
    ) -> Result<InboundOutcome, Error> {
        self.write(move |tx| {
            Box::pin(async move {
                let existing = tx
                    .client()
                    .query_opt(
                        "SELECT digest, receipt FROM alerts WHERE id = $1",
                        &[&alert.id],
                    )
                    .await?
                    .map(|r| -> Result<(Vec<u8>, Option<Vec<u8>>), Error> {
                        Ok((r.try_get(0)?, r.try_get(1)?))
                    })
                    .transpose()?;
                match existing {
                    Some((digest, Some(receipt))) if digest == alert.digest => {
                        Ok(InboundOutcome::Duplicate(receipt))
                    }
                    Some(_) => Err(Error::Conflict(alert.id.clone())),
                    None => {
                        insert_alert(tx, &alert, Direction::Inbound, Some(&receipt)).await?;
                        insert_event_with(
                            tx,
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
                        )
                        .await?;
                        Ok(InboundOutcome::Stored)
                    }
                }
            })
        })
        .await
    }

    async fn record_attempts(
        &self,
        outcomes: Vec<(String, String, AttemptOutcome)>,
        at: DateTime<Utc>,
        words: OutcomeWords,
    ) -> Result<(), Error> {
        let holder = self.holder().to_owned();
        self.write(move |tx| {
            Box::pin(async move {
                for outcome in &outcomes {
                    record_attempt(tx, outcome, at, words).await?;
                    // Whatever the outcome, this node's claim ends: a
                    // retry is due again to any front node. A claim that
                    // lapsed and another node took is left to it.
                    let (alert_id, recipient, _) = outcome;
                    tx.client()
                        .execute(
                            "UPDATE deliveries SET claimed_by = NULL, claimed_until = NULL
                              WHERE alert_id = $1 AND recipient = $2 AND claimed_by = $3",
                            &[alert_id, recipient, &holder],
                        )
                        .await?;
                }
                Ok(())
            })
        })
        .await
    }

    async fn retry_now(&self, recipient: &str, now: DateTime<Utc>) -> Result<usize, Error> {
        let recipient = recipient.to_owned();
        self.write(move |tx| {
            Box::pin(async move {
                let deliveries = tx
                    .client()
                    .execute(
                        sql!(
                            "UPDATE deliveries SET next_attempt_at = $2
                             WHERE recipient = $1 AND state = {pending} AND next_attempt_at > $2",
                            pending = DeliveryState::Pending.code(),
                        ),
                        &[&recipient, &ms(now)],
                    )
                    .await?;
                let messages = tx
                    .client()
                    .execute(
                        sql!(
                            "UPDATE messages SET next_attempt_at = $2
                             WHERE peer = $1 AND state = {pending} AND next_attempt_at > $2",
                            pending = DeliveryState::Pending.code(),
                        ),
                        &[&recipient, &ms(now)],
                    )
                    .await?;
                Ok(usize::try_from(deliveries + messages).unwrap_or(usize::MAX))
            })
        })
        .await
    }

    async fn alert(&self, id: &str) -> Result<Option<AlertRow>, Error> {
        let id = id.to_owned();
        self.read(move |client| Box::pin(async move { alert_by_id(client, &id).await }))
            .await
    }

    async fn alert_history(&self, id: &str) -> Result<Option<AlertHistory>, Error> {
        let id = id.to_owned();
        self.read_snapshot(move |client| {
            Box::pin(async move {
                let row = alert_by_id(client, &id).await?;
                Ok(with_history(client, row.into_iter().collect()).await?.pop())
            })
        })
        .await
    }

    async fn list_alerts(
        &self,
        direction: Option<Direction>,
        limit: u32,
    ) -> Result<Vec<AlertHistory>, Error> {
        self.read_snapshot(move |client| {
            Box::pin(async move {
                let limit = i64::from(limit);
                let rows = match direction {
                    Some(direction) => {
                        client
                            .query(
                                sql!(
                                    "SELECT {ALERT_COLUMNS} FROM alerts WHERE direction = $1 ORDER BY stored_at DESC, id DESC LIMIT $2"
                                ),
                                &[&direction.code(), &limit],
                            )
                            .await?
                    }
                    None => {
                        client
                            .query(
                                sql!(
                                    "SELECT {ALERT_COLUMNS} FROM alerts ORDER BY stored_at DESC, id DESC LIMIT $1"
                                ),
                                &[&limit],
                            )
                            .await?
                    }
                };
                let alerts = rows.iter().map(alert_row).collect::<Result<Vec<_>, _>>()?;
                with_history(client, alerts).await
            })
        })
        .await
    }

    /// Claims what it returns for this front node (see
    /// [`super::db::CLAIM_LEASE`]): a row another front node claimed, and
    /// whose claim is live, is not due here. Our own claims do not hide a
    /// row from us (the outbox's window keeps us from sending it twice).
    async fn due_deliveries(
        &self,
        recipient: &str,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, Error> {
        let recipient = recipient.to_owned();
        let holder = self.holder().to_owned();
        self.write(move |tx| {
            Box::pin(async move {
                let until = ms(now + super::db::CLAIM_LEASE);
                let mut due = tx
                    .client()
                    .query(
                        sql!(
                            "WITH due AS (
                                SELECT alert_id FROM deliveries
                                 WHERE recipient = $1 AND state = {pending} AND next_attempt_at <= $2
                                   AND (claimed_by IS NULL OR claimed_by = $4 OR claimed_until <= $2)
                                 ORDER BY next_attempt_at, alert_id LIMIT $3
                                 FOR UPDATE SKIP LOCKED)
                             UPDATE deliveries d SET claimed_by = $4, claimed_until = $5
                               FROM due, alerts a
                              WHERE d.recipient = $1 AND d.alert_id = due.alert_id AND a.id = d.alert_id
                             RETURNING d.alert_id, a.envelope, d.attempts, d.next_attempt_at",
                            pending = DeliveryState::Pending.code(),
                        ),
                        &[&recipient, &ms(now), &i64::from(limit), &holder, &until],
                    )
                    .await?
                    .iter()
                    .map(|r| {
                        Ok((
                            r.try_get::<_, i64>(3)?,
                            DueDelivery {
                                alert_id: r.try_get(0)?,
                                envelope: r.try_get(1)?,
                                attempts: r.try_get::<_, i64>(2)?.try_into().unwrap_or(u32::MAX),
                            },
                        ))
                    })
                    .collect::<Result<Vec<_>, Error>>()?;
                // RETURNING keeps no order: oldest due first, as SQLite.
                due.sort_by(|(a, x), (b, y)| (a, &x.alert_id).cmp(&(b, &y.alert_id)));
                Ok(due.into_iter().map(|(_, d)| d).collect())
            })
        })
        .await
    }

    /// What another front node has claimed, and whose claim is live, is
    /// due here only when the claim lapses: this node does not wake for
    /// it before.
    async fn next_due(&self, recipient: &str) -> Result<Option<DateTime<Utc>>, Error> {
        let recipient = recipient.to_owned();
        let holder = self.holder().to_owned();
        self.read(move |client| {
            Box::pin(async move {
                // LEAST ignores NULLs: either side may have nothing pending.
                let next: Option<i64> = client
                    .query_one(
                        sql!(
                            "SELECT LEAST(
                                (SELECT MIN({due}) FROM deliveries WHERE recipient = $1 AND state = {pending}),
                                (SELECT MIN({due}) FROM messages WHERE peer = $1 AND state = {pending}))",
                            pending = DeliveryState::Pending.code(),
                            due = "CASE WHEN claimed_by IS NOT NULL AND claimed_by <> $2
                                        THEN GREATEST(next_attempt_at, claimed_until)
                                        ELSE next_attempt_at END",
                        ),
                        &[&recipient, &holder],
                    )
                    .await?
                    .try_get(0)?;
                Ok(next.map(from_ms))
            })
        })
        .await
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! Differential tests: the same calls on SQLite and on PostgreSQL give
    //! the same answers and write the same event log and audit chain. The
    //! helpers are `pub(crate)` for the other kinds' tests.

    use chrono::{DateTime, TimeZone, Utc};

    use super::super::db::Postgres;
    use super::super::testing::Both;
    use crate::audit::{AuditEntry, AuditEvent, ChainCheck, decode_evidence};
    use crate::records::*;
    use crate::sqlite::Sqlite;
    use crate::{AlertStatus, BlockStore, Direction, Error};

    /// A fixed instant, so both backends get the very same times.
    pub(crate) fn t0() -> DateTime<Utc> {
        Utc.timestamp_millis_opt(1_800_000_000_000).unwrap()
    }

    /// `t0` plus `s` seconds.
    pub(crate) fn at(s: i64) -> DateTime<Utc> {
        t0() + chrono::Duration::seconds(s)
    }

    /// An alert of `originator`'s stored at `t0`, due an hour later.
    pub(crate) fn new_alert(id: &str, originator: &str, digest: u8) -> NewAlert {
        NewAlert {
            id: id.into(),
            originator: originator.into(),
            created_at: at(-5),
            stored_at: t0(),
            precedence: 3,
            category: "terrorism".into(),
            summary: format!("about {id}"),
            digest: vec![digest; 32],
            envelope: vec![digest, 1, 2, 3],
            due_at: at(3600),
            first_step_at: Some(at(1800)),
            keys: vec![],
            closes: vec![],
            detail: format!("stored {id}"),
        }
    }

    /// Runs `$call` on each backend (as `$s`, a `&dyn $kinds`), asserts
    /// that both answer alike (by their `Debug`, as not every answer is
    /// `PartialEq`), and gives SQLite's answer.
    macro_rules! same {
        ($both:expr, $kinds:path, |$s:ident| $call:expr) => {{
            let a = {
                let $s: &dyn $kinds = &$both.sqlite;
                $call.await
            };
            let b = {
                let $s: &dyn $kinds = &$both.postgres;
                $call.await
            };
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "{}", stringify!($call));
            a
        }};
    }
    pub(crate) use same;

    /// Runs raw SQL on each backend (the first on SQLite, the second on
    /// PostgreSQL): for what another kind's methods would write, or a
    /// damaged row.
    pub(crate) async fn exec_both(both: &Both, sqlite: &'static str, postgres: &'static str) {
        both.sqlite
            .write(move |conn| Ok(conn.execute_batch(sqlite)?))
            .await
            .unwrap();
        both.postgres
            .write(move |tx| {
                Box::pin(async move {
                    tx.client().batch_execute(postgres).await?;
                    Ok(())
                })
            })
            .await
            .unwrap();
    }

    /// The events and audit entries, as raw column values, oldest first.
    pub(crate) type Log = (Vec<AuditEvent>, Vec<RawEntry>);
    pub(crate) type RawEntry = (i64, AuditEvent, Vec<u8>, Vec<u8>, Vec<u8>);

    const EVENTS: &str =
        "SELECT id, at, kind, alert_id, agency, direction, detail FROM events ORDER BY id";
    const ENTRIES: &str = "SELECT seq, event_id, at, kind, alert_id, agency, direction, detail, evidence, prev_hash, hash FROM audit_log ORDER BY seq";

    async fn sqlite_log(s: &Sqlite) -> Log {
        s.read(|conn| {
            let event = |r: &rusqlite::Row<'_>, i: usize| -> rusqlite::Result<AuditEvent> {
                Ok(AuditEvent {
                    id: r.get(i)?,
                    at: r.get(i + 1)?,
                    kind: r.get(i + 2)?,
                    alert_id: r.get(i + 3)?,
                    agency: r.get(i + 4)?,
                    direction: r.get(i + 5)?,
                    detail: r.get(i + 6)?,
                })
            };
            let events = conn
                .prepare(EVENTS)?
                .query_map([], |r| event(r, 0))?
                .collect::<Result<_, _>>()?;
            let entries = conn
                .prepare(ENTRIES)?
                .query_map([], |r| {
                    Ok((r.get(0)?, event(r, 1)?, r.get(8)?, r.get(9)?, r.get(10)?))
                })?
                .collect::<Result<_, _>>()?;
            Ok((events, entries))
        })
        .await
        .unwrap()
    }

    pub(crate) async fn postgres_log(s: &Postgres) -> Log {
        s.read(|client| {
            Box::pin(async move {
                let event = |r: &tokio_postgres::Row, i: usize| AuditEvent {
                    id: r.get(i),
                    at: r.get(i + 1),
                    kind: r.get(i + 2),
                    alert_id: r.get(i + 3),
                    agency: r.get(i + 4),
                    direction: r.get(i + 5),
                    detail: r.get(i + 6),
                };
                let events = client
                    .query(EVENTS, &[])
                    .await?
                    .iter()
                    .map(|r| event(r, 0))
                    .collect();
                let entries = client
                    .query(ENTRIES, &[])
                    .await?
                    .iter()
                    .map(|r| (r.get(0), event(r, 1), r.get(8), r.get(9), r.get(10)))
                    .collect();
                Ok((events, entries))
            })
        })
        .await
        .unwrap()
    }

    /// Checks a chain of raw entries; the findings (none if it verifies).
    pub(crate) fn chain_findings(entries: &[RawEntry]) -> Vec<crate::audit::Finding> {
        let mut chain = ChainCheck::new();
        for (seq, event, evidence, prev, hash) in entries {
            chain.push(&AuditEntry {
                seq: u64::try_from(*seq).unwrap(),
                event: event.clone(),
                evidence: decode_evidence(evidence).unwrap(),
                prev_hash: prev.as_slice().try_into().unwrap(),
                hash: hash.as_slice().try_into().unwrap(),
            });
        }
        chain.finish()
    }

    /// Both backends hold the same event log and the same audit chain,
    /// entry for entry, hashes included, and PostgreSQL's verifies; gives
    /// the events, for the caller's own assertions.
    pub(crate) async fn assert_same_log(both: &Both) -> Vec<AuditEvent> {
        let (sqlite, postgres) = (
            sqlite_log(&both.sqlite).await,
            postgres_log(&both.postgres).await,
        );
        assert_eq!(sqlite.0, postgres.0, "the events differ");
        assert_eq!(sqlite.1, postgres.1, "the audit entries differ");
        assert_eq!(postgres.0.len(), postgres.1.len(), "one entry per event");
        let findings = chain_findings(&postgres.1);
        assert!(findings.is_empty(), "{findings:?}");
        postgres.0
    }

    /// The same words on both backends.
    pub(crate) const WORDS: OutcomeWords = crate::sqlite::records::tests::WORDS;

    /// Storing alerts, both ways: conflicts, duplicates, what a new alert
    /// closes (and what it may not), and the events of each.
    #[tokio::test]
    async fn storing_alerts_answers_alike_on_both_backends() {
        let Some(both) = Both::start().await else {
            return;
        };
        let recipients = vec!["FR-DGSI".to_owned(), "BE-VSSE".to_owned()];
        let mut a1 = new_alert("A1", "TR-MIT", 1);
        a1.keys = vec!["doc:X".into(), "person:ismael mostefai|1985".into()];
        let stored = same!(both, RecordStore, |s| s
            .insert_outbound(a1.clone(), recipients.clone()));
        let stored = stored.unwrap();
        assert_eq!(stored.deliveries.len(), 2);
        assert_eq!(stored.deliveries[0].recipient, "BE-VSSE");
        let again = same!(both, RecordStore, |s| s.insert_outbound(a1.clone(), vec![]));
        assert!(matches!(again, Err(Error::Conflict(id)) if id == "A1"));
        // No recipients: stored, with no deliveries.
        same!(both, RecordStore, |s| s
            .insert_outbound(new_alert("A0", "TR-MIT", 9), vec![]))
        .unwrap();

        // Inbound: stored, the same again is a duplicate with the first
        // receipt, other content is a conflict.
        let b1 = new_alert("B1", "FR-DGSI", 7);
        let first = same!(both, RecordStore, |s| s
            .insert_inbound(b1.clone(), b"r1".to_vec()));
        assert_eq!(first.unwrap(), InboundOutcome::Stored);
        let dup = same!(both, RecordStore, |s| s
            .insert_inbound(b1.clone(), b"r2".to_vec()));
        assert_eq!(dup.unwrap(), InboundOutcome::Duplicate(b"r1".to_vec()));
        let conflict = same!(both, RecordStore, |s| s
            .insert_inbound(new_alert("B1", "FR-DGSI", 8), b"r3".to_vec()));
        assert!(matches!(conflict, Err(Error::Conflict(_))));
        // An inbound alert whose id is one of ours: stored without a
        // receipt, so never a duplicate.
        let ours = same!(both, RecordStore, |s| s
            .insert_inbound(new_alert("A1", "TR-MIT", 1), b"r4".to_vec()));
        assert!(matches!(ours, Err(Error::Conflict(_))));

        // Closing: A2 supersedes A1; it also names B1 (inbound, not ours)
        // and an unknown alert, which it may not close.
        let mut a2 = new_alert("A2", "TR-MIT", 2);
        a2.stored_at = at(10);
        a2.closes = ["A1", "B1", "nowhere"]
            .into_iter()
            .map(|id| Closing {
                alert_id: id.into(),
                status: AlertStatus::Superseded,
                detail: format!("{id} superseded by A2"),
            })
            .collect();
        same!(both, RecordStore, |s| s
            .insert_outbound(a2.clone(), vec!["FR-DGSI".into()]))
        .unwrap();
        // B2 cancels B1; B3 then cannot supersede a cancelled alert, and
        // another originator's B4 cannot close B2.
        let mut b2 = new_alert("B2", "FR-DGSI", 3);
        b2.stored_at = at(20);
        b2.closes = vec![Closing {
            alert_id: "B1".into(),
            status: AlertStatus::Cancelled,
            detail: "B1 cancelled by B2".into(),
        }];
        let mut b3 = new_alert("B3", "FR-DGSI", 4);
        b3.stored_at = at(30);
        b3.closes = vec![Closing {
            alert_id: "B1".into(),
            status: AlertStatus::Superseded,
            detail: "B1 superseded by B3".into(),
        }];
        let mut b4 = new_alert("B4", "BE-VSSE", 5);
        b4.stored_at = at(40);
        b4.closes = vec![Closing {
            alert_id: "B2".into(),
            status: AlertStatus::Cancelled,
            detail: "B2 cancelled by B4".into(),
        }];
        for b in [b2, b3, b4] {
            same!(both, RecordStore, |s| s
                .insert_inbound(b.clone(), b"r".to_vec()))
            .unwrap();
        }

        for id in ["A1", "A2", "B1", "B2", "nowhere"] {
            same!(both, RecordStore, |s| s.alert(id)).unwrap();
            same!(both, RecordStore, |s| s.alert_history(id)).unwrap();
        }
        let a1 = same!(both, RecordStore, |s| s.alert("A1"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (a1.status, a1.closed_by.as_deref()),
            (AlertStatus::Superseded, Some("A2"))
        );
        let b1 = same!(both, RecordStore, |s| s.alert("B1"))
            .unwrap()
            .unwrap();
        assert_eq!(b1.status, AlertStatus::Cancelled);
        assert_eq!(b1.closed_by.as_deref(), Some("B2"));

        // Listings: newest first, by direction, within the limit.
        for direction in [None, Some(Direction::Outbound), Some(Direction::Inbound)] {
            for limit in [0, 1, 2, 100, u32::MAX] {
                let list = same!(both, RecordStore, |s| s.list_alerts(direction, limit)).unwrap();
                assert!(list.len() <= limit as usize);
            }
        }
        let all = same!(both, RecordStore, |s| s.list_alerts(None, 100)).unwrap();
        let ids: Vec<&str> = all.iter().map(|h| h.alert.id.as_str()).collect();
        assert_eq!(ids, ["B4", "B3", "B2", "A2", "B1", "A1", "A0"]);

        let events = assert_same_log(&both).await;
        // 3 SUBMITTED, 4 RECEIVED, A1 superseded and B1 cancelled.
        assert_eq!(events.len(), 9, "{events:?}");
    }

    /// The outbox's side: due deliveries, attempts and their outcomes,
    /// retrying at once, what is next due, and a blocked recipient.
    #[tokio::test]
    async fn deliveries_answer_alike_on_both_backends() {
        let Some(both) = Both::start().await else {
            return;
        };
        let recipients = vec!["FR-DGSI".to_owned(), "BE-VSSE".to_owned()];
        for (id, digest) in [("A1", 1), ("A2", 2), ("A3", 3)] {
            same!(both, RecordStore, |s| s.insert_outbound(
                new_alert(id, "TR-MIT", digest),
                recipients.clone()
            ))
            .unwrap();
        }
        for limit in [0, 2, 10] {
            let due = same!(both, RecordStore, |s| s.due_deliveries(
                "FR-DGSI",
                t0(),
                limit
            ))
            .unwrap();
            assert_eq!(due.len(), limit.min(3) as usize);
        }
        same!(both, RecordStore, |s| s.next_due("FR-DGSI")).unwrap();
        assert_eq!(
            same!(both, RecordStore, |s| s.next_due("nobody")).unwrap(),
            None
        );

        // A2's delivery to BE-VSSE missed its deadline: delivering it
        // keeps it overdue.
        exec_both(
            &both,
            "UPDATE deliveries SET flag = 2, flagged_at = 1 WHERE alert_id = 'A2' AND recipient = 'BE-VSSE'",
            "UPDATE deliveries SET flag = 2, flagged_at = 1 WHERE alert_id = 'A2' AND recipient = 'BE-VSSE'",
        )
        .await;
        let delivered = |s| AttemptOutcome::Delivered {
            delivered_at: at(s),
            receipt: vec![s as u8; 4],
        };
        let outcomes = vec![
            (
                "A1".to_owned(),
                "FR-DGSI".to_owned(),
                AttemptOutcome::Retry {
                    error: "unavailable".into(),
                    next_attempt_at: at(60),
                },
            ),
            ("A1".into(), "BE-VSSE".into(), delivered(1)),
            ("A2".into(), "BE-VSSE".into(), delivered(2)),
            (
                "A2".into(),
                "FR-DGSI".into(),
                AttemptOutcome::Rejected {
                    error: "not releasable".into(),
                },
            ),
            // No longer pending: ignored, with no event.
            ("A1".into(), "BE-VSSE".into(), delivered(3)),
            (
                "A2".into(),
                "FR-DGSI".into(),
                AttemptOutcome::Retry {
                    error: "late".into(),
                    next_attempt_at: at(5),
                },
            ),
            // Nothing of the kind.
            ("A9".into(), "FR-DGSI".into(), delivered(4)),
        ];
        same!(both, RecordStore, |s| s.record_attempts(
            outcomes.clone(),
            at(1),
            WORDS
        ))
        .unwrap();
        for id in ["A1", "A2", "A3"] {
            same!(both, RecordStore, |s| s.alert_history(id)).unwrap();
        }
        let a2 = same!(both, RecordStore, |s| s.alert_history("A2"))
            .unwrap()
            .unwrap();
        assert_eq!(a2.deliveries[0].flag, crate::DeadlineFlag::Overdue);
        assert_eq!(a2.deliveries[1].state, crate::DeliveryState::Rejected);
        // A new delivery is due at once, whatever the clock says.
        assert_eq!(
            same!(both, RecordStore, |s| s.next_due("FR-DGSI")).unwrap(),
            Some(DateTime::UNIX_EPOCH),
            "A3 is due at once"
        );
        let due = same!(both, RecordStore, |s| s.due_deliveries("FR-DGSI", t0(), 10)).unwrap();
        assert_eq!(due.len(), 1, "A1 waits, A2 refused: {due:?}");

        // Retrying now brings A1's forward; then nothing is left to bring.
        let forward = same!(both, RecordStore, |s| s.retry_now("FR-DGSI", at(2))).unwrap();
        assert_eq!(forward, 1);
        assert_eq!(
            same!(both, RecordStore, |s| s.retry_now("FR-DGSI", at(2))).unwrap(),
            0
        );
        same!(both, RecordStore, |s| s.due_deliveries(
            "FR-DGSI",
            at(2),
            10
        ))
        .unwrap();

        // A pending message to a peer is next due, and brought forward.
        exec_both(
            &both,
            "INSERT INTO messages (id, peer, kind, envelope, state, next_attempt_at) VALUES ('M1', 'NL-AIVD', 1, X'01', 1, 1800000000000 - 7000)",
            "INSERT INTO messages (id, peer, kind, envelope, state, next_attempt_at) VALUES ('M1', 'NL-AIVD', 1, '\\x01', 1, 1800000000000 - 7000)",
        )
        .await;
        assert_eq!(
            same!(both, RecordStore, |s| s.next_due("NL-AIVD")).unwrap(),
            Some(at(-7))
        );
        exec_both(
            &both,
            "UPDATE messages SET next_attempt_at = 1800000100000",
            "UPDATE messages SET next_attempt_at = 1800000100000",
        )
        .await;
        assert_eq!(
            same!(both, RecordStore, |s| s.retry_now("NL-AIVD", at(3))).unwrap(),
            1
        );

        // A blocked recipient's pending deliveries say why; others do not.
        same!(both, BlockStore, |s| s.block_peer(
            "FR-DGSI",
            "revoked",
            t0()
        ))
        .unwrap();
        let a1 = same!(both, RecordStore, |s| s.alert_history("A1"))
            .unwrap()
            .unwrap();
        let blocked: Vec<Option<&str>> =
            a1.deliveries.iter().map(|d| d.blocked.as_deref()).collect();
        assert_eq!(blocked, [None, Some("revoked")]);

        let events = assert_same_log(&both).await;
        // 3 SUBMITTED, 2 DELIVERED, 1 REJECTED.
        assert_eq!(events.len(), 6, "{events:?}");
    }

    /// Acknowledgements come with an alert's history (own ones with their
    /// state as messages), and a code that names nothing reads as corrupt
    /// on both.
    #[tokio::test]
    async fn histories_and_damaged_rows_read_alike_on_both_backends() {
        let Some(both) = Both::start().await else {
            return;
        };
        same!(both, RecordStore, |s| s.insert_outbound(
            new_alert("A1", "TR-MIT", 1),
            vec!["FR-DGSI".into(), "BE-VSSE".into()]
        ))
        .unwrap();
        same!(both, RecordStore, |s| s
            .insert_inbound(new_alert("B1", "FR-DGSI", 2), b"r".to_vec()))
        .unwrap();
        // What the acknowledgements' methods write: two received for A1,
        // our own for B1, refused by its originator.
        exec_both(
            &both,
            "INSERT INTO acknowledgements VALUES ('K2', 'A1', 'FR-DGSI', 'op', 1, 'seen', 20, 21, X'02');
             INSERT INTO acknowledgements VALUES ('K1', 'A1', 'BE-VSSE', 'op', 2, '', 10, 11, X'01');
             INSERT INTO acknowledgements VALUES ('K3', 'B1', 'TR-MIT', 'me', 1, '', 30, 31, X'03');
             INSERT INTO messages (id, peer, kind, envelope, state, last_error) VALUES ('K3', 'FR-DGSI', 1, X'03', 3, NULL)",
            "INSERT INTO acknowledgements VALUES ('K2', 'A1', 'FR-DGSI', 'op', 1, 'seen', 20, 21, '\\x02');
             INSERT INTO acknowledgements VALUES ('K1', 'A1', 'BE-VSSE', 'op', 2, '', 10, 11, '\\x01');
             INSERT INTO acknowledgements VALUES ('K3', 'B1', 'TR-MIT', 'me', 1, '', 30, 31, '\\x03');
             INSERT INTO messages (id, peer, kind, envelope, state, last_error) VALUES ('K3', 'FR-DGSI', 1, '\\x03', 3, NULL)",
        )
        .await;
        let a1 = same!(both, RecordStore, |s| s.alert_history("A1"))
            .unwrap()
            .unwrap();
        let acks: Vec<&str> = a1.acks.iter().map(|k| k.ack.id.as_str()).collect();
        assert_eq!(acks, ["K1", "K2"], "oldest first");
        let b1 = same!(both, RecordStore, |s| s.alert_history("B1"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (b1.acks[0].delivered, b1.acks[0].refusal.as_deref()),
            (false, Some("refused"))
        );
        same!(both, RecordStore, |s| s.list_alerts(None, 10)).unwrap();

        for (sql, what, code) in [
            ("UPDATE deliveries SET ladder = 7", "LadderStep", 7),
            (
                "UPDATE deliveries SET ladder = 0, flag = 9",
                "DeadlineFlag",
                9,
            ),
        ] {
            exec_both(&both, sql, sql).await;
            let read = same!(both, RecordStore, |s| s.alert_history("A1"));
            assert!(
                matches!(read, Err(Error::Corrupt { what: w, code: c }) if (w, c) == (what, code)),
                "{sql}: {read:?}"
            );
        }
        exec_both(
            &both,
            "UPDATE deliveries SET flag = 0; UPDATE alerts SET status = 5 WHERE id = 'A1'",
            "UPDATE deliveries SET flag = 0; UPDATE alerts SET status = 5 WHERE id = 'A1'",
        )
        .await;
        let read = same!(both, RecordStore, |s| s.alert("A1"));
        assert!(
            matches!(
                read,
                Err(Error::Corrupt {
                    what: "AlertStatus",
                    code: 5
                })
            ),
            "{read:?}"
        );
        assert_same_log(&both).await;
    }

    /// Two writes at once on PostgreSQL both commit, one after the other:
    /// their events are numbered consecutively and the chain holds.
    #[tokio::test]
    async fn concurrent_writes_on_postgres_commit_in_turn() {
        let Some(both) = Both::start().await else {
            return;
        };
        let pg: &dyn RecordStore = &both.postgres;
        let (a, b) = tokio::join!(
            pg.insert_outbound(new_alert("A1", "TR-MIT", 1), vec!["FR-DGSI".into()]),
            pg.insert_inbound(new_alert("B1", "FR-DGSI", 2), b"r".to_vec()),
        );
        a.unwrap();
        assert_eq!(b.unwrap(), InboundOutcome::Stored);
        let (events, entries) = postgres_log(&both.postgres).await;
        let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
        assert_eq!(ids, [1, 2]);
        assert_eq!(entries.len(), 2);
        let findings = chain_findings(&entries);
        assert!(findings.is_empty(), "{findings:?}");
        // The same alert twice at once: one stores it, the other conflicts.
        let (a, b) = tokio::join!(
            pg.insert_outbound(new_alert("A2", "TR-MIT", 3), vec![]),
            pg.insert_outbound(new_alert("A2", "TR-MIT", 3), vec![]),
        );
        assert!(
            matches!(
                (&a, &b),
                (Ok(_), Err(Error::Conflict(_))) | (Err(Error::Conflict(_)), Ok(_))
            ),
            "{a:?} {b:?}"
        );
    }
}
