//! [`crate::EventStore`] on PostgreSQL; the trait says what each method
//! promises. The events themselves are written by [`super::log`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::db::{Postgres, code};
use super::log::insert_event;
use crate::codes::{DeadlineFlag, DeliveryState, Direction, EventKind};
use crate::conditions::{OPEN_DELIVERY_DEADLINE, OPEN_INBOUND_DEADLINE, OPEN_STEP, sql};
use crate::error::Error;
use crate::events::*;
use crate::millis::{from_ms, ms};

fn event_row(r: &Row) -> Result<EventRow, Error> {
    Ok(EventRow {
        id: r.try_get::<_, i64>(0)?.try_into().unwrap_or(0),
        at: from_ms(r.try_get(1)?),
        kind: code(r, 2, EventKind::decode)?,
        alert_id: r.try_get(3)?,
        agency: r.try_get(4)?,
        direction: code(r, 5, Direction::decode)?,
        detail: r.try_get(6)?,
    })
}

#[async_trait]
impl EventStore for Postgres {
    async fn events_after(&self, after: u64, limit: u32) -> Result<Vec<EventRow>, Error> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        self.read(move |client| {
            Box::pin(async move {
                let statement = client
                    .prepare_cached(
                        "SELECT id, at, kind, alert_id, agency, direction, detail FROM events
                         WHERE id > $1 ORDER BY id LIMIT $2",
                    )
                    .await?;
                client
                    .query(&statement, &[&after, &i64::from(limit)])
                    .await?
                    .iter()
                    .map(event_row)
                    .collect()
            })
        })
        .await
    }

    async fn last_event_id(&self) -> Result<u64, Error> {
        self.read(|client| {
            Box::pin(async move {
                let statement = client.prepare_cached("SELECT MAX(id) FROM events").await?;
                let id: Option<i64> = client.query_one(&statement, &[]).await?.try_get(0)?;
                Ok(id.and_then(|i| u64::try_from(i).ok()).unwrap_or(0))
            })
        })
        .await
    }

    async fn next_deadline(&self) -> Result<Option<DateTime<Utc>>, Error> {
        self.read(|client| {
            Box::pin(async move {
                // Each subquery reads the first row of its partial index;
                // LEAST, like SQLite's MIN, passes over the NULL of one
                // that finds none.
                let statement = client
                    .prepare_cached(sql!(
                        "SELECT LEAST(
                            (SELECT d.due_at FROM deliveries d
                              WHERE {delivery} ORDER BY d.due_at LIMIT 1),
                            (SELECT a.due_at FROM alerts a
                              WHERE {inbound} ORDER BY a.due_at LIMIT 1),
                            (SELECT d.next_step_at FROM deliveries d
                              WHERE {step} ORDER BY d.next_step_at LIMIT 1))",
                        delivery = *OPEN_DELIVERY_DEADLINE,
                        inbound = *OPEN_INBOUND_DEADLINE,
                        step = *OPEN_STEP,
                    ))
                    .await?;
                let next: Option<i64> = client.query_one(&statement, &[]).await?.try_get(0)?;
                Ok(next.map(from_ms))
            })
        })
        .await
    }

    async fn flag_overdue(
        &self,
        now: DateTime<Utc>,
        detail: for<'f> fn(&'f Flagged) -> String,
    ) -> Result<Vec<Flagged>, Error> {
        // The tracker's write: only the lease's holder makes it.
        let fence = self.tracker_fence();
        self.write(move |tx| {
            Box::pin(async move {
                fence.check(tx).await?;
                let statement = tx
                    .client()
                    .prepare_cached(sql!(
                        "SELECT d.alert_id, d.recipient, d.state, d.due_at FROM deliveries d
                         WHERE {open} AND d.due_at <= $1",
                        open = *OPEN_DELIVERY_DEADLINE,
                    ))
                    .await?;
                let mut found = tx
                    .client()
                    .query(&statement, &[&ms(now)])
                    .await?
                    .iter()
                    .map(|r| {
                        Ok(Flagged {
                            alert_id: r.try_get(0)?,
                            agency: r.try_get(1)?,
                            direction: Direction::Outbound,
                            flag: if code(r, 2, DeliveryState::decode)? == DeliveryState::Pending {
                                DeadlineFlag::Undelivered
                            } else {
                                DeadlineFlag::Overdue
                            },
                            due_at: from_ms(r.try_get(3)?),
                        })
                    })
                    .collect::<Result<Vec<_>, Error>>()?;
                let statement = tx
                    .client()
                    .prepare_cached(sql!(
                        "SELECT a.id, a.originator, a.due_at FROM alerts a
                         WHERE {open} AND a.due_at <= $1",
                        open = *OPEN_INBOUND_DEADLINE,
                    ))
                    .await?;
                for r in tx.client().query(&statement, &[&ms(now)]).await? {
                    found.push(Flagged {
                        alert_id: r.try_get(0)?,
                        agency: r.try_get(1)?,
                        direction: Direction::Inbound,
                        flag: DeadlineFlag::Overdue,
                        due_at: from_ms(r.try_get(2)?),
                    });
                }
                // Fire in the order the deadlines fell, also after downtime;
                // sorted here, not in SQL, so that text compares as bytes
                // whatever the database's collation.
                found.sort_by(|a, b| {
                    (a.due_at, &a.alert_id, &a.agency).cmp(&(b.due_at, &b.alert_id, &b.agency))
                });
                for f in &found {
                    match f.direction {
                        Direction::Outbound => {
                            let statement = tx
                                .client()
                                .prepare_cached(
                                    "UPDATE deliveries SET flag = $3, flagged_at = $4 WHERE alert_id = $1 AND recipient = $2",
                                )
                                .await?;
                            tx.client()
                                .execute(
                                    &statement,
                                    &[&f.alert_id, &f.agency, &f.flag.code(), &ms(now)],
                                )
                                .await?;
                        }
                        Direction::Inbound => {
                            let statement = tx
                                .client()
                                .prepare_cached(
                                    "UPDATE alerts SET flag = $2, flagged_at = $3 WHERE id = $1",
                                )
                                .await?;
                            tx.client()
                                .execute(&statement, &[&f.alert_id, &f.flag.code(), &ms(now)])
                                .await?;
                        }
                    }
                    let kind = if f.flag == DeadlineFlag::Undelivered {
                        EventKind::Undelivered
                    } else {
                        EventKind::Overdue
                    };
                    insert_event(
                        tx,
                        NewEvent {
                            at: f.due_at,
                            kind,
                            alert_id: &f.alert_id,
                            agency: &f.agency,
                            direction: f.direction,
                            detail: &detail(f),
                        },
                    )
                    .await?;
                }
                Ok(found)
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
    use crate::{AckStore, LadderStore, NewAck, ReceivedNotice, ReceivedReminder, RecordStore};

    fn alert(id: &'static str, originator: &'static str, due: i64) -> Alert {
        Alert {
            id,
            originator,
            precedence: 3,
            due_at: at(due),
            first_step_at: None,
        }
    }

    fn words(f: &Flagged) -> String {
        format!(
            "{} {:?} {:?} since {}",
            f.agency, f.direction, f.flag, f.due_at
        )
    }

    fn own_ack(id: &str, alert_id: &str) -> NewAck {
        NewAck {
            id: id.into(),
            alert_id: alert_id.into(),
            agency: "UK-SS".into(),
            operator: "op".into(),
            disposition: 1,
            note: String::new(),
            acknowledged_at: at(1),
            stored_at: at(1),
            envelope: id.as_bytes().to_vec(),
        }
    }

    /// Deadlines on both sides are flagged once, in the order they fell,
    /// each with its event dated at the deadline; answered ones never;
    /// and the event log reads back alike, by id, within its limits.
    #[tokio::test]
    async fn deadlines_and_the_event_log_answer_alike_on_both_backends() {
        let Some(both) = Both::start().await else {
            return;
        };
        assert_eq!(same!(both, s => s.last_event_id().await), 0);
        assert_eq!(same!(both, s => s.events_after(0, 10).await), []);
        assert_eq!(same!(both, s => s.next_deadline().await), None);
        assert_eq!(same!(both, s => s.flag_overdue(at(0), words).await), []);

        outbound(&both, alert("O1", "UK-SS", 30), &["DE-BfV", "BE-VSSE"]).await;
        outbound(&both, alert("O2", "UK-SS", 10), &["NL-AIVD"]).await;
        inbound(&both, alert("I1", "FR-DGSI", 20)).await;
        inbound(&both, alert("I2", "FR-DGSI", 5)).await;
        delivered(&both, "O1", "DE-BfV", 1).await;
        // Answered: I2's deadline, the earliest, is not ours to meet any more.
        same!(both, s => s.insert_own_ack(own_ack("K1", "I2"), "FR-DGSI".into(), "answered".into()).await);
        assert_eq!(same!(both, s => s.next_deadline().await), Some(at(10)));

        assert_eq!(same!(both, s => s.flag_overdue(at(9), words).await), []);
        let flagged = same!(both, s => s.flag_overdue(at(40), words).await);
        let flag = |alert_id: &str, agency: &str, direction, flag, due| Flagged {
            alert_id: alert_id.into(),
            agency: agency.into(),
            direction,
            flag,
            due_at: at(due),
        };
        assert_eq!(
            flagged,
            [
                flag(
                    "O2",
                    "NL-AIVD",
                    Direction::Outbound,
                    DeadlineFlag::Undelivered,
                    10
                ),
                flag(
                    "I1",
                    "FR-DGSI",
                    Direction::Inbound,
                    DeadlineFlag::Overdue,
                    20
                ),
                flag(
                    "O1",
                    "BE-VSSE",
                    Direction::Outbound,
                    DeadlineFlag::Undelivered,
                    30
                ),
                flag(
                    "O1",
                    "DE-BfV",
                    Direction::Outbound,
                    DeadlineFlag::Overdue,
                    30
                ),
            ]
        );
        assert_eq!(same!(both, s => s.flag_overdue(at(100), words).await), []);
        assert_eq!(same!(both, s => s.next_deadline().await), None);

        // Four alerts stored, one delivered, one answered: then the flags.
        let events = same!(both, s => s.events_after(6, 100).await);
        assert_eq!(
            events[0],
            EventRow {
                id: 7,
                at: at(10),
                kind: EventKind::Undelivered,
                alert_id: "O2".into(),
                agency: "NL-AIVD".into(),
                direction: Direction::Outbound,
                detail: words(&flagged[0]),
            }
        );
        let kinds: Vec<_> = events.iter().map(|e| (e.id, e.kind, e.at)).collect();
        assert_eq!(
            kinds,
            [
                (7, EventKind::Undelivered, at(10)),
                (8, EventKind::Overdue, at(20)),
                (9, EventKind::Undelivered, at(30)),
                (10, EventKind::Overdue, at(30)),
            ]
        );
        assert_eq!(same!(both, s => s.last_event_id().await), 10);
        assert_eq!(same!(both, s => s.events_after(7, 2).await), events[1..3]);
        assert_eq!(same!(both, s => s.events_after(9, 10).await), events[3..]);
        assert_eq!(same!(both, s => s.events_after(10, 10).await), []);
        assert_eq!(same!(both, s => s.events_after(u64::MAX, 10).await), []);
        assert_eq!(same!(both, s => s.events_after(0, 0).await), []);
        let all = same!(both, s => s.events_after(0, u32::MAX).await);
        assert_eq!(all.len(), 10);
        same_state(&both).await;
        same_audit_chain(&both, 10).await;
    }

    /// Writes of different kinds made at once on PostgreSQL all commit,
    /// their events numbered one after another with no gap and the audit
    /// chain intact: the write lock hands out numbers in commit order.
    #[tokio::test]
    async fn concurrent_writes_number_their_events_consecutively() {
        let Some(both) = Both::start().await else {
            return;
        };
        inbound(&both, alert("I1", "FR-DGSI", 20)).await;
        inbound(&both, alert("I2", "FR-DGSI", 30)).await;
        let pg = &both.postgres;
        let reminder = |id: &str| ReceivedReminder {
            id: id.into(),
            alert_id: "I1".into(),
            originator: "FR-DGSI".into(),
            envelope: id.as_bytes().to_vec(),
            at: at(2),
            escalated: false,
            detail: id.into(),
        };
        let notice = |id: &str| ReceivedNotice {
            id: id.into(),
            alert_id: "I1".into(),
            laggard: "BE-VSSE".into(),
            envelope: id.as_bytes().to_vec(),
            at: at(3),
            detail: id.into(),
        };
        let (a, b, c, d, e, f) = tokio::join!(
            pg.record_reminder(reminder("M1")),
            pg.record_reminder(reminder("M2")),
            pg.record_notice(notice("N1")),
            pg.record_notice(notice("N2")),
            pg.insert_own_ack(own_ack("K1", "I2"), "FR-DGSI".into(), "K1".into()),
            pg.flag_overdue(at(25), words),
        );
        assert!(a.unwrap() && b.unwrap() && c.unwrap() && d.unwrap());
        e.unwrap();
        assert_eq!(f.unwrap().len(), 1, "I1's deadline");
        // After the two alerts' own events.
        let events = pg.events_after(2, 100).await.unwrap();
        let ids: Vec<u64> = events.iter().map(|e| e.id).collect();
        assert_eq!(ids, [3, 4, 5, 6, 7, 8]);
        let mut details: Vec<&str> = events.iter().map(|e| e.detail.as_str()).collect();
        details.sort_unstable();
        assert!(details[0].starts_with("FR-DGSI Inbound Overdue"));
        assert_eq!(details[1..], ["K1", "M1", "M2", "N1", "N2"]);
        assert_eq!(pg.last_event_id().await.unwrap(), 8);
        let stored = pg.alert("I1").await.unwrap().expect("I1 is stored");
        assert_eq!(stored.reminders, 2);
        postgres_chain_verifies(&both, 8).await;
    }
}
