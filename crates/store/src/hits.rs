//! Hit reports this agency sent, by the entry they matched and the person
//! as screened: what makes a second screen of the same person within the
//! repeat window find the first report instead of sending another.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use crate::db::Store;
use crate::error::Error;
use crate::records::{AlertHistory, NewAlert, insert_outbound_in};
use crate::sql::ms;

/// What identifies a report for its repeat check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HitKey {
    /// The entry's owner (the report's recipient).
    pub owner: String,
    /// The owner's ref for the entry.
    pub entry_ref: String,
    /// A digest of the person as screened, normalised.
    pub person_key: Vec<u8>,
    /// A report at or after this time is a repeat.
    pub repeat_since: DateTime<Utc>,
}

/// What storing a hit report did.
#[derive(Debug, Clone)]
pub enum HitOutcome {
    /// The report was stored, with its delivery pending.
    Sent(Box<AlertHistory>),
    /// A report of the same person on the same entry was sent within the
    /// window: nothing stored; its id.
    Repeat(String),
}

impl Store {
    /// Stores `alert`, a hit report to `key.owner`, unless one of the same
    /// person on the same entry was stored at or after `key.repeat_since`;
    /// the check and the insert are one transaction, so two screens at once
    /// send one report. Resolves once committed.
    pub async fn insert_hit_report(
        &self,
        alert: NewAlert,
        key: HitKey,
    ) -> Result<HitOutcome, Error> {
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
    use crate::records::tests::alert;

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
