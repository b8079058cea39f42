//! [`crate::OpenStore`] on PostgreSQL; the trait says what each method
//! promises, and `sqlite/open.rs` is the behaviour this matches.

use async_trait::async_trait;

use super::db::Postgres;
use super::records::{ALERT_COLUMNS, alert_row, with_history};
use crate::conditions::{AWAITING, OVERDUE, OWED};
use crate::error::Error;
use crate::open::*;
use crate::records::AlertHistory;

#[async_trait]
impl OpenStore for Postgres {
    async fn list_awaiting(&self, limit: u32) -> Result<Vec<AlertHistory>, Error> {
        self.alerts_where(&AWAITING, limit).await
    }

    async fn list_owed(&self, limit: u32) -> Result<Vec<AlertHistory>, Error> {
        self.alerts_where(&OWED, limit).await
    }

    async fn list_overdue(&self, limit: u32) -> Result<Vec<AlertHistory>, Error> {
        self.alerts_where(&OVERDUE, limit).await
    }
}

impl Postgres {
    /// Alerts matching `condition` (on `a`), soonest deadline first, each
    /// with its history, from one snapshot.
    pub(crate) async fn alerts_where(
        &self,
        condition: &'static str,
        limit: u32,
    ) -> Result<Vec<AlertHistory>, Error> {
        self.read_snapshot(move |client| {
            Box::pin(async move {
                let sql = format!(
                    "SELECT {ALERT_COLUMNS} FROM alerts a WHERE {condition} ORDER BY a.due_at IS NULL, a.due_at, a.id LIMIT $1"
                );
                let alerts = client
                    .query(&sql, &[&i64::from(limit)])
                    .await?
                    .iter()
                    .map(alert_row)
                    .collect::<Result<Vec<_>, _>>()?;
                with_history(client, alerts).await
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::records::tests::{WORDS, assert_same_log, at, exec_both, new_alert, same};
    use super::super::testing::Both;
    use crate::records::{AttemptOutcome, Closing, RecordStore};
    use crate::{AlertStatus, OpenStore};

    /// The three lists at every limit, alike on both backends; the ids
    /// of each, in order.
    async fn lists(both: &Both) -> (Vec<String>, Vec<String>, Vec<String>) {
        for limit in [0, 1, 2, 100] {
            let awaiting = same!(both, OpenStore, |s| s.list_awaiting(limit)).unwrap();
            let owed = same!(both, OpenStore, |s| s.list_owed(limit)).unwrap();
            let overdue = same!(both, OpenStore, |s| s.list_overdue(limit)).unwrap();
            for list in [&awaiting, &owed, &overdue] {
                assert!(list.len() <= limit as usize);
            }
        }
        let ids = |list: Vec<crate::AlertHistory>| -> Vec<String> {
            list.into_iter().map(|h| h.alert.id).collect()
        };
        (
            ids(both.postgres.list_awaiting(100).await.unwrap()),
            ids(both.postgres.list_owed(100).await.unwrap()),
            ids(both.postgres.list_overdue(100).await.unwrap()),
        )
    }

    /// What is awaited, owed and overdue, as acknowledgements, refusals,
    /// flags and closings take alerts out, answers alike on both backends.
    #[tokio::test]
    async fn open_lists_answer_alike_on_both_backends() {
        let Some(both) = Both::start().await else {
            return;
        };
        // Sent: A1 to two recipients, A2 to A4 to one; deadlines A2, then
        // A3 and A4 (a tie, by id), then A1. Received: B1 and B2.
        for (id, due, recipients) in [
            ("A1", 3000, vec!["FR-DGSI", "BE-VSSE"]),
            ("A2", 1000, vec!["FR-DGSI"]),
            ("A3", 2000, vec!["FR-DGSI"]),
            ("A4", 2000, vec!["BE-VSSE"]),
        ] {
            let mut a = new_alert(id, "TR-MIT", 1);
            a.due_at = at(due);
            let recipients = recipients
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>();
            same!(both, RecordStore, |s| s
                .insert_outbound(a.clone(), recipients.clone()))
            .unwrap();
        }
        for (id, due) in [("B1", 2500), ("B2", 500)] {
            let mut b = new_alert(id, "FR-DGSI", 2);
            b.due_at = at(due);
            same!(both, RecordStore, |s| s
                .insert_inbound(b.clone(), b"r".to_vec()))
            .unwrap();
        }
        let (awaiting, owed, overdue) = lists(&both).await;
        assert_eq!(awaiting, ["A2", "A3", "A4", "A1"]);
        assert_eq!(owed, ["B2", "B1"]);
        assert!(overdue.is_empty());

        // FR-DGSI answers A1 and A2; we answer B1; A3 is refused.
        exec_both(
            &both,
            "INSERT INTO acknowledgements VALUES ('K1', 'A1', 'FR-DGSI', 'op', 1, '', 10, 11, X'01');
             INSERT INTO acknowledgements VALUES ('K2', 'A2', 'FR-DGSI', 'op', 1, '', 10, 11, X'02');
             INSERT INTO acknowledgements VALUES ('K3', 'B1', 'TR-MIT', 'me', 1, '', 10, 11, X'03');",
            "INSERT INTO acknowledgements VALUES ('K1', 'A1', 'FR-DGSI', 'op', 1, '', 10, 11, '\\x01');
             INSERT INTO acknowledgements VALUES ('K2', 'A2', 'FR-DGSI', 'op', 1, '', 10, 11, '\\x02');
             INSERT INTO acknowledgements VALUES ('K3', 'B1', 'TR-MIT', 'me', 1, '', 10, 11, '\\x03');",
        )
        .await;
        let refused = vec![(
            "A3".to_owned(),
            "FR-DGSI".to_owned(),
            AttemptOutcome::Rejected { error: "no".into() },
        )];
        same!(both, RecordStore, |s| s.record_attempts(
            refused.clone(),
            at(1),
            WORDS
        ))
        .unwrap();
        let (awaiting, owed, overdue) = lists(&both).await;
        assert_eq!(awaiting, ["A4", "A1"]);
        assert_eq!(owed, ["B2"]);
        assert!(overdue.is_empty());

        // Deadlines pass (what the tracker flags): A1's to BE-VSSE, B2's.
        exec_both(
            &both,
            "UPDATE deliveries SET flag = 1, flagged_at = 5 WHERE alert_id = 'A1' AND recipient = 'BE-VSSE';
             UPDATE alerts SET flag = 1, flagged_at = 5 WHERE id = 'B2'",
            "UPDATE deliveries SET flag = 1, flagged_at = 5 WHERE alert_id = 'A1' AND recipient = 'BE-VSSE';
             UPDATE alerts SET flag = 1, flagged_at = 5 WHERE id = 'B2'",
        )
        .await;
        let (_, _, overdue) = lists(&both).await;
        assert_eq!(overdue, ["B2", "A1"]);

        // A5 supersedes A1 and B3 cancels B2: both close, and leave.
        let mut a5 = new_alert("A5", "TR-MIT", 5);
        a5.due_at = at(9000);
        a5.closes = vec![Closing {
            alert_id: "A1".into(),
            status: AlertStatus::Superseded,
            detail: "superseded".into(),
        }];
        same!(both, RecordStore, |s| s
            .insert_outbound(a5.clone(), vec!["BE-VSSE".into()]))
        .unwrap();
        let mut b3 = new_alert("B3", "FR-DGSI", 6);
        b3.due_at = at(9000);
        b3.closes = vec![Closing {
            alert_id: "B2".into(),
            status: AlertStatus::Cancelled,
            detail: "cancelled".into(),
        }];
        same!(both, RecordStore, |s| s
            .insert_inbound(b3.clone(), b"r".to_vec()))
        .unwrap();
        let (awaiting, owed, overdue) = lists(&both).await;
        assert_eq!(awaiting, ["A4", "A5"]);
        assert_eq!(owed, ["B3"]);
        assert!(overdue.is_empty());
        assert_same_log(&both).await;
    }
}
