//! [`crate::SubjectStore`] on SQLite; the trait says what each method promises.

use std::collections::BTreeSet;

use rusqlite::{Connection, OptionalExtension, params};

use crate::codes::{DeadlineFlag, DeliveryState, Direction, EventKind};
use async_trait::async_trait;

use super::db::Sqlite;
use super::events::insert_event;
use super::sql::{from_ms, ms};
use crate::error::Error;
use crate::events::NewEvent;
use crate::subjects::*;

/// Most alerts followed when linking one subject; a guard against a key so
/// common it would link everything.
const MAX_CLUSTER: usize = 1000;

pub(crate) fn insert_keys(conn: &Connection, alert_id: &str, keys: &[String]) -> Result<(), Error> {
    let mut stmt =
        conn.prepare_cached("INSERT OR IGNORE INTO subject_keys (key, alert_id) VALUES (?1, ?2)")?;
    for k in keys {
        stmt.execute(params![k, alert_id])?;
    }
    Ok(())
}

/// Every alert linked to `start` through shared keys, and those keys.
fn cluster(
    conn: &Connection,
    start: &[String],
) -> Result<(BTreeSet<String>, BTreeSet<String>), Error> {
    let mut alerts: BTreeSet<String> = start.iter().cloned().collect();
    let mut keys: BTreeSet<String> = BTreeSet::new();
    let mut frontier: Vec<String> = alerts.iter().cloned().collect();
    while let Some(alert) = frontier.pop() {
        let found: Vec<String> = conn
            .prepare_cached("SELECT key FROM subject_keys WHERE alert_id = ?1")?
            .query_map([&alert], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for key in found {
            if !keys.insert(key.clone()) {
                continue;
            }
            let linked: Vec<String> = conn
                .prepare_cached("SELECT alert_id FROM subject_keys WHERE key = ?1")?
                .query_map([&key], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for a in linked {
                if alerts.len() >= MAX_CLUSTER {
                    break;
                }
                if alerts.insert(a.clone()) {
                    frontier.push(a);
                }
            }
        }
    }
    Ok((alerts, keys))
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(",")
}

#[async_trait]
impl SubjectStore for Sqlite {
    async fn check_repeated(&self, check: RepeatedCheck) -> Result<Vec<SubjectFlag>, Error> {
        let raised = self
            .write(move |conn| {
                let RepeatedCheck {
                    checks,
                    own_agency,
                    now,
                    threshold,
                    detail,
                } = &check;
                let now = *now;
                let mut raised = Vec::new();
                for (alert_id, recipient) in checks {
                    let (alerts, keys) = cluster(conn, std::slice::from_ref(alert_id))?;
                    let Some(subject) = keys.iter().next().cloned() else {
                        continue; // nothing to link by
                    };
                    let list: Vec<String> = alerts.into_iter().collect();
                    let inbound = recipient == own_agency;
                    let sql = if inbound {
                        format!(
                            "SELECT a.id FROM alerts a WHERE a.id IN ({}) AND a.direction = {} AND a.flag != {}
                             AND NOT EXISTS (SELECT 1 FROM acknowledgements k WHERE k.alert_id = a.id)
                             ORDER BY a.created_at, a.id",
                            placeholders(list.len()),
                            Direction::Inbound.code(),
                            DeadlineFlag::None.code(),
                        )
                    } else {
                        format!(
                            "SELECT a.id FROM alerts a JOIN deliveries d ON d.alert_id = a.id
                             WHERE a.id IN ({}) AND d.recipient = ? AND d.flag != {} AND d.state != {}
                             AND NOT EXISTS (SELECT 1 FROM acknowledgements k WHERE k.alert_id = a.id AND k.agency = d.recipient)
                             ORDER BY a.created_at, a.id",
                            placeholders(list.len()),
                            DeadlineFlag::None.code(),
                            DeliveryState::Rejected.code(),
                        )
                    };
                    let mut args: Vec<&dyn rusqlite::ToSql> = list.iter().map(|a| a as &dyn rusqlite::ToSql).collect();
                    if !inbound {
                        args.push(recipient);
                    }
                    let unanswered: Vec<String> = conn
                        .prepare(&sql)?
                        .query_map(args.as_slice(), |r| r.get(0))?
                        .collect::<Result<_, _>>()?;
                    // Never fewer than one: a flag names the alerts it is about.
                    if unanswered.len() < (*threshold).max(1) {
                        continue;
                    }
                    let joined = unanswered.join(",");
                    let before: Option<String> = conn
                        .prepare_cached("SELECT alert_ids FROM subject_flags WHERE subject = ?1 AND recipient = ?2")?
                        .query_row(params![subject, recipient], |r| r.get(0))
                        .optional()?;
                    if before.as_deref() == Some(joined.as_str()) {
                        continue;
                    }
                    let label: String = conn
                        .prepare_cached("SELECT summary FROM alerts WHERE id = ?1")?
                        .query_row([&unanswered[0]], |r| r.get(0))?;
                    conn.prepare_cached(
                        "INSERT INTO subject_flags (subject, recipient, label, alert_ids, flagged_at) VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (subject, recipient) DO UPDATE SET label = ?3, alert_ids = ?4, flagged_at = ?5",
                    )?
                    .execute(params![subject, recipient, label, joined, ms(now)])?;
                    let direction = if inbound { Direction::Inbound } else { Direction::Outbound };
                    let last = unanswered.last().cloned().unwrap_or_default();
                    let flag = SubjectFlag {
                        subject,
                        recipient: recipient.clone(),
                        label,
                        alert_ids: unanswered,
                        flagged_at: now,
                    };
                    insert_event(conn, NewEvent { at: now, kind: EventKind::Flagged, alert_id: &last, agency: recipient, direction, detail: &detail(&flag, direction) })?;
                    raised.push(flag);
                }
                Ok(raised)
            })
            .await?;
        if !raised.is_empty() {
            self.notify_events();
        }
        Ok(raised)
    }

    async fn subject_contexts(
        &self,
        alert_ids: Vec<String>,
        agency: String,
        hit_category: &'static str,
    ) -> Result<std::collections::HashMap<String, SubjectContext>, Error> {
        self.read_snapshot(move |conn| {
            let flags: Vec<(String, Vec<String>)> = conn
                .prepare_cached(
                    "SELECT subject, alert_ids FROM subject_flags WHERE recipient = ?1",
                )?
                .query_map([&agency], |r| {
                    Ok((
                        r.get(0)?,
                        r.get::<_, String>(1)?
                            .split(',')
                            .map(str::to_owned)
                            .collect(),
                    ))
                })?
                .collect::<Result<_, _>>()?;
            let mut out = std::collections::HashMap::new();
            for id in alert_ids {
                if out.contains_key(&id) {
                    continue;
                }
                let (alerts, keys) = cluster(conn, std::slice::from_ref(&id))?;
                let mut originators = BTreeSet::new();
                let mut hits = 0;
                let mut stmt =
                    conn.prepare_cached("SELECT originator, category FROM alerts WHERE id = ?1")?;
                for a in &alerts {
                    if let Some((originator, category)) = stmt
                        .query_row([a], |r| {
                            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                        })
                        .optional()?
                    {
                        if category == hit_category {
                            hits += 1;
                        } else {
                            originators.insert(originator);
                        }
                    }
                }
                let flagged = flags.iter().any(|(subject, ids)| {
                    keys.contains(subject) || ids.iter().any(|i| alerts.contains(i))
                });
                let context = SubjectContext {
                    originators: originators.into_iter().collect(),
                    hits,
                    flagged,
                };
                for a in alerts {
                    out.insert(a, context.clone());
                }
                out.entry(id).or_insert(context);
            }
            Ok(out)
        })
        .await
    }

    async fn subject_flags(&self) -> Result<Vec<SubjectFlag>, Error> {
        self.read(|conn| {
            let rows = conn
                .prepare_cached(
                    "SELECT subject, recipient, label, alert_ids, flagged_at FROM subject_flags ORDER BY flagged_at DESC, subject",
                )?
                .query_map([], |r| {
                    Ok(SubjectFlag {
                        subject: r.get(0)?,
                        recipient: r.get(1)?,
                        label: r.get(2)?,
                        alert_ids: r.get::<_, String>(3)?.split(',').map(str::to_owned).collect(),
                        flagged_at: from_ms(r.get(4)?),
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn find_subject(
        &self,
        alert_id: String,
        doc_key: String,
        name: String,
    ) -> Result<(Vec<String>, Vec<String>), Error> {
        self.read_snapshot(move |conn| {
            let mut start: Vec<String> = Vec::new();
            if conn
                .prepare_cached("SELECT 1 FROM alerts WHERE id = ?1")?
                .exists([&alert_id])?
            {
                start.push(alert_id.clone());
            }
            start.extend(
                conn.prepare_cached("SELECT alert_id FROM subject_keys WHERE key = ?1")?
                    .query_map([&doc_key], |r| r.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()?,
            );
            if !name.is_empty() {
                // Every word asked for must be in the name, in any order:
                // "mostefai ismael" finds "Ismaël Omar Mostefaï".
                let wanted: Vec<&str> = name.split(' ').collect();
                let persons: Vec<(String, String)> = conn
                    .prepare_cached(
                        "SELECT key, alert_id FROM subject_keys WHERE key LIKE 'person:%'",
                    )?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()?;
                for (key, alert) in persons {
                    let words: Vec<&str> = key
                        .trim_start_matches("person:")
                        .split('|')
                        .next()
                        .unwrap_or_default()
                        .split(' ')
                        .collect();
                    if wanted.iter().all(|w| words.contains(w)) {
                        start.push(alert);
                    }
                }
            }
            if start.is_empty() {
                return Ok((Vec::new(), Vec::new()));
            }
            let (alerts, keys) = cluster(conn, &start)?;
            // Oldest first.
            let list: Vec<String> = alerts.into_iter().collect();
            let mut ordered: Vec<(i64, String)> = Vec::with_capacity(list.len());
            for a in list {
                let created: Option<i64> = conn
                    .prepare_cached("SELECT created_at FROM alerts WHERE id = ?1")?
                    .query_row([&a], |r| r.get(0))
                    .optional()?;
                ordered.push((created.unwrap_or(0), a));
            }
            ordered.sort();
            Ok((
                ordered.into_iter().map(|(_, a)| a).collect(),
                keys.into_iter().collect(),
            ))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::RepeatedCheck;
    use crate::sqlite::records::tests::alert;
    use crate::{Direction, EventKind, Store, StoreOptions, SubjectFlag};

    fn words(flag: &SubjectFlag, direction: Direction) -> String {
        format!(
            "{direction:?}: {} left {}",
            flag.recipient,
            flag.alert_ids.join("+")
        )
    }

    /// The caller's threshold decides whether a subject is flagged, and
    /// the caller's words are the event's text.
    #[tokio::test]
    async fn the_threshold_and_the_words_are_the_callers() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let past = Utc::now() - chrono::Duration::hours(1);
        for id in ["A1", "A2"] {
            let mut a = alert(id, 1);
            a.due_at = past;
            a.keys = vec!["doc:X".into()];
            store
                .insert_outbound(a, vec!["FR-DGSI".into()])
                .await
                .unwrap();
        }
        let flagged = store
            .flag_overdue(Utc::now(), |_| String::new())
            .await
            .unwrap();
        assert_eq!(flagged.len(), 2);
        let check = |threshold| RepeatedCheck {
            checks: vec![("A2".into(), "FR-DGSI".into())],
            own_agency: "TR-MIT".into(),
            now: Utc::now(),
            threshold,
            detail: words,
        };
        assert!(store.check_repeated(check(3)).await.unwrap().is_empty());
        let raised = store.check_repeated(check(2)).await.unwrap();
        assert_eq!(raised.len(), 1, "{raised:?}");
        assert_eq!(raised[0].alert_ids, ["A1", "A2"]);
        let events = store.events_after(0, 100).await.unwrap();
        let event = events
            .iter()
            .find(|e| e.kind == EventKind::Flagged)
            .unwrap();
        assert_eq!(
            (event.alert_id.as_str(), event.detail.as_str()),
            ("A2", "Outbound: FR-DGSI left A1+A2")
        );
        // The same alerts again grow nothing.
        assert!(store.check_repeated(check(2)).await.unwrap().is_empty());
    }
}
