//! [`crate::HitStore`] on SQLite; the trait says what each method promises.

use rusqlite::{OptionalExtension, params};

use async_trait::async_trait;

use super::db::Sqlite;
use super::records::insert_outbound_in;
use super::sql::ms;
use crate::error::Error;
use crate::hits::*;
use crate::records::NewAlert;

#[async_trait]
impl HitStore for Sqlite {
    async fn insert_hit_report(&self, alert: NewAlert, key: HitKey) -> Result<HitOutcome, Error> {
        let outcome = self
            .write(move |conn| {
                let earlier: Option<String> = conn
                    .prepare_cached(
                        "SELECT alert_id FROM hit_reports
                         WHERE owner = ?1 AND entry_ref = ?2 AND person_key = ?3 AND reported_at >= ?4
                         ORDER BY reported_at LIMIT 1",
                    )?
                    .query_row(
                        params![key.owner, key.entry_ref, key.person_key, ms(key.repeat_since)],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(id) = earlier {
                    return Ok(HitOutcome::Repeat(id));
                }
                let stored = insert_outbound_in(conn, &alert, std::slice::from_ref(&key.owner))?;
                conn.prepare_cached(
                    "INSERT INTO hit_reports (alert_id, owner, entry_ref, person_key, reported_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    alert.id,
                    key.owner,
                    key.entry_ref,
                    key.person_key,
                    ms(alert.stored_at)
                ])?;
                Ok(HitOutcome::Sent(Box::new(stored)))
            })
            .await?;
        if matches!(outcome, HitOutcome::Sent(_)) {
            self.notify_events();
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use crate::sqlite::records::tests::alert;
    use chrono::{DateTime, Utc};

    fn key(person: &[u8], since: DateTime<Utc>) -> HitKey {
        HitKey {
            owner: "BE-VSSE".into(),
            entry_ref: "BE-1".into(),
            person_key: person.to_vec(),
            repeat_since: since,
        }
    }

    #[tokio::test]
    async fn a_second_report_within_the_window_is_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), crate::StoreOptions::default()).unwrap();
        let first = alert("01HZZZZZZZZZZZZZZZZZZZZZZ1", 1);
        let at = first.stored_at;
        let since = at - chrono::Duration::hours(1);
        let HitOutcome::Sent(sent) = store
            .insert_hit_report(first, key(b"p", since))
            .await
            .unwrap()
        else {
            panic!("the first report is sent");
        };
        assert_eq!(sent.deliveries.len(), 1);
        assert_eq!(sent.deliveries[0].recipient, "BE-VSSE");

        let again = store
            .insert_hit_report(alert("01HZZZZZZZZZZZZZZZZZZZZZZ2", 2), key(b"p", since))
            .await
            .unwrap();
        assert!(
            matches!(&again, HitOutcome::Repeat(id) if *id == sent.alert.id),
            "{again:?}"
        );
        assert!(
            store
                .alert("01HZZZZZZZZZZZZZZZZZZZZZZ2")
                .await
                .unwrap()
                .is_none()
        );

        // Another person, or the same one after the window, is a new report.
        let other = store
            .insert_hit_report(alert("01HZZZZZZZZZZZZZZZZZZZZZZ3", 3), key(b"q", since))
            .await
            .unwrap();
        assert!(matches!(other, HitOutcome::Sent(_)), "{other:?}");
        let later = store
            .insert_hit_report(
                alert("01HZZZZZZZZZZZZZZZZZZZZZZ4", 4),
                key(b"p", at + chrono::Duration::milliseconds(1)),
            )
            .await
            .unwrap();
        assert!(matches!(later, HitOutcome::Sent(_)), "{later:?}");
    }
}
