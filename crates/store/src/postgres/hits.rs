//! [`crate::HitStore`] on PostgreSQL; the trait says what each method
//! promises, and `sqlite/hits.rs` is the behaviour this matches.

use async_trait::async_trait;

use super::db::Postgres;
use super::records::insert_outbound_in;
use crate::error::Error;
use crate::hits::*;
use crate::millis::ms;
use crate::records::NewAlert;

#[async_trait]
impl HitStore for Postgres {
    async fn insert_hit_report(&self, alert: NewAlert, key: HitKey) -> Result<HitOutcome, Error> {
        self.write(move |tx| {
            Box::pin(async move {
                // Writes are serialised (see `db`): two screens at once
                // check one after the other, so the second finds the first.
                let earlier: Option<String> = tx
                    .client()
                    .query_opt(
                        "SELECT alert_id FROM hit_reports
                         WHERE owner = $1 AND entry_ref = $2 AND person_key = $3 AND reported_at >= $4
                         ORDER BY reported_at LIMIT 1",
                        &[
                            &key.owner,
                            &key.entry_ref,
                            &key.person_key,
                            &ms(key.repeat_since),
                        ],
                    )
                    .await?
                    .map(|r| r.try_get(0))
                    .transpose()?;
                if let Some(id) = earlier {
                    return Ok(HitOutcome::Repeat(id));
                }
                let stored =
                    insert_outbound_in(tx, &alert, std::slice::from_ref(&key.owner)).await?;
                tx.client()
                    .execute(
                        "INSERT INTO hit_reports (alert_id, owner, entry_ref, person_key, reported_at)
                         VALUES ($1, $2, $3, $4, $5)",
                        &[
                            &alert.id,
                            &key.owner,
                            &key.entry_ref,
                            &key.person_key,
                            &ms(alert.stored_at),
                        ],
                    )
                    .await?;
                Ok(HitOutcome::Sent(Box::new(stored)))
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::super::records::tests::{assert_same_log, at, new_alert, same, t0};
    use super::super::testing::Both;
    use crate::hits::*;
    use crate::records::RecordStore;

    fn key(person: &[u8], since: DateTime<Utc>) -> HitKey {
        HitKey {
            owner: "BE-VSSE".into(),
            entry_ref: "BE-1".into(),
            person_key: person.to_vec(),
            repeat_since: since,
        }
    }

    /// A second report of the same person on the same entry within the
    /// window is the first, on both backends; another person, another
    /// entry, or a report after the window is sent.
    #[tokio::test]
    async fn repeats_within_the_window_answer_alike_on_both_backends() {
        let Some(both) = Both::start().await else {
            return;
        };
        let since = at(-3600);
        let sent = same!(both, HitStore, |s| s
            .insert_hit_report(new_alert("H1", "TR-MIT", 1), key(b"p", since)))
        .unwrap();
        let HitOutcome::Sent(sent) = sent else {
            panic!("the first report is sent");
        };
        assert_eq!(sent.deliveries.len(), 1);
        assert_eq!(sent.deliveries[0].recipient, "BE-VSSE");

        let again = same!(both, HitStore, |s| s
            .insert_hit_report(new_alert("H2", "TR-MIT", 2), key(b"p", since)))
        .unwrap();
        assert!(
            matches!(&again, HitOutcome::Repeat(id) if id == "H1"),
            "{again:?}"
        );
        assert!(
            same!(both, RecordStore, |s| s.alert("H2"))
                .unwrap()
                .is_none()
        );

        let other = same!(both, HitStore, |s| s
            .insert_hit_report(new_alert("H3", "TR-MIT", 3), key(b"q", since)))
        .unwrap();
        assert!(matches!(other, HitOutcome::Sent(_)), "{other:?}");
        let mut entry = key(b"p", since);
        entry.entry_ref = "BE-2".into();
        let elsewhere = same!(both, HitStore, |s| s
            .insert_hit_report(new_alert("H4", "TR-MIT", 4), entry.clone()))
        .unwrap();
        assert!(matches!(elsewhere, HitOutcome::Sent(_)), "{elsewhere:?}");
        let later = same!(both, HitStore, |s| s.insert_hit_report(
            new_alert("H5", "TR-MIT", 5),
            key(b"p", t0() + chrono::Duration::milliseconds(1))
        ))
        .unwrap();
        assert!(matches!(later, HitOutcome::Sent(_)), "{later:?}");
        // The id of a stored alert: a conflict, and nothing recorded.
        let taken = same!(both, HitStore, |s| s
            .insert_hit_report(new_alert("H1", "TR-MIT", 1), key(b"z", since)));
        assert!(matches!(taken, Err(crate::Error::Conflict(_))), "{taken:?}");
        // Now H5 is the latest of p on BE-1 but H1 the first in the window.
        let repeat = same!(both, HitStore, |s| s
            .insert_hit_report(new_alert("H6", "TR-MIT", 6), key(b"p", since)))
        .unwrap();
        assert!(
            matches!(&repeat, HitOutcome::Repeat(id) if id == "H1"),
            "{repeat:?}"
        );

        let events = assert_same_log(&both).await;
        assert_eq!(events.len(), 4, "four reports sent: {events:?}");
    }

    /// Two screens of the same person at once on PostgreSQL send one
    /// report: the other finds it.
    #[tokio::test]
    async fn two_screens_at_once_send_one_report_on_postgres() {
        let Some(both) = Both::start().await else {
            return;
        };
        let pg: &dyn HitStore = &both.postgres;
        let since = at(-3600);
        let (a, b) = tokio::join!(
            pg.insert_hit_report(new_alert("H1", "TR-MIT", 1), key(b"p", since)),
            pg.insert_hit_report(new_alert("H2", "TR-MIT", 2), key(b"p", since)),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        match (&a, &b) {
            (HitOutcome::Sent(s), HitOutcome::Repeat(id))
            | (HitOutcome::Repeat(id), HitOutcome::Sent(s)) => assert_eq!(&s.alert.id, id),
            other => panic!("{other:?}"),
        }
        let (c, d) = tokio::join!(
            pg.insert_hit_report(new_alert("H3", "TR-MIT", 3), key(b"q", since)),
            pg.insert_hit_report(new_alert("H4", "TR-MIT", 4), key(b"r", since)),
        );
        assert!(matches!(c.unwrap(), HitOutcome::Sent(_)));
        assert!(matches!(d.unwrap(), HitOutcome::Sent(_)));
    }
}
