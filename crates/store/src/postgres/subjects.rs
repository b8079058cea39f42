//! [`crate::SubjectStore`] on PostgreSQL; the trait says what each method
//! promises, and `sqlite/subjects.rs` is the behaviour this matches.

use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;

use super::db::{Client, Postgres, Tx};
use super::log::insert_event;
use crate::codes::{DeadlineFlag, DeliveryState, Direction, EventKind};
use crate::error::Error;
use crate::events::NewEvent;
use crate::millis::{from_ms, ms};
use crate::sqlite::sql::sql;
use crate::subjects::*;

/// Most alerts followed when linking one subject; a guard against a key so
/// common it would link everything (as on SQLite).
const MAX_CLUSTER: usize = 1000;

/// Links `alert_id` to its subjects' match keys, in the caller's
/// transaction; a key already linked stays as it is.
pub(crate) async fn insert_keys(tx: &mut Tx, alert_id: &str, keys: &[String]) -> Result<(), Error> {
    for k in keys {
        tx.client()
            .execute(
                "INSERT INTO subject_keys (key, alert_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[k, &alert_id],
            )
            .await?;
    }
    Ok(())
}

/// Every alert linked to `start` through shared keys, and those keys.
async fn cluster(
    client: &Client,
    start: &[String],
) -> Result<(BTreeSet<String>, BTreeSet<String>), Error> {
    let mut alerts: BTreeSet<String> = start.iter().cloned().collect();
    let mut keys: BTreeSet<String> = BTreeSet::new();
    let mut frontier: Vec<String> = alerts.iter().cloned().collect();
    while let Some(alert) = frontier.pop() {
        let found = strings(
            client,
            "SELECT key FROM subject_keys WHERE alert_id = $1",
            &alert,
        )
        .await?;
        for key in found {
            if !keys.insert(key.clone()) {
                continue;
            }
            let linked = strings(
                client,
                "SELECT alert_id FROM subject_keys WHERE key = $1",
                &key,
            )
            .await?;
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

/// The first column of what `sql` finds for `arg`.
async fn strings(client: &Client, sql: &str, arg: &str) -> Result<Vec<String>, Error> {
    client
        .query(sql, &[&arg])
        .await?
        .iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect()
}

/// A flag's alert list as `subject_flags.alert_ids` holds it.
fn split_ids(joined: &str) -> Vec<String> {
    joined.split(',').map(str::to_owned).collect()
}

/// Checks one (alert, recipient) whose deadline passed, as the trait says;
/// the flag raised or grown, if any, with its event written.
async fn check_one(
    tx: &mut Tx,
    check: &RepeatedCheck,
    alert_id: &str,
    recipient: &str,
) -> Result<Option<SubjectFlag>, Error> {
    let (alerts, keys) = cluster(tx.client(), &[alert_id.to_owned()]).await?;
    let Some(subject) = keys.iter().next().cloned() else {
        return Ok(None); // nothing to link by
    };
    let list: Vec<String> = alerts.into_iter().collect();
    let inbound = recipient == check.own_agency;
    let rows = if inbound {
        tx.client()
            .query(
                sql!(
                    "SELECT a.id FROM alerts a WHERE a.id = ANY($1) AND a.direction = {inbound} AND a.flag != {none}
                     AND NOT EXISTS (SELECT 1 FROM acknowledgements k WHERE k.alert_id = a.id)
                     ORDER BY a.created_at, a.id",
                    inbound = Direction::Inbound.code(),
                    none = DeadlineFlag::None.code(),
                ),
                &[&list],
            )
            .await?
    } else {
        tx.client()
            .query(
                sql!(
                    "SELECT a.id FROM alerts a JOIN deliveries d ON d.alert_id = a.id
                     WHERE a.id = ANY($1) AND d.recipient = $2 AND d.flag != {none} AND d.state != {rejected}
                     AND NOT EXISTS (SELECT 1 FROM acknowledgements k WHERE k.alert_id = a.id AND k.agency = d.recipient)
                     ORDER BY a.created_at, a.id",
                    none = DeadlineFlag::None.code(),
                    rejected = DeliveryState::Rejected.code(),
                ),
                &[&list, &recipient],
            )
            .await?
    };
    let unanswered = rows
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<Vec<String>, _>>()?;
    // Never fewer than one: a flag names the alerts it is about.
    if unanswered.len() < check.threshold.max(1) {
        return Ok(None);
    }
    let joined = unanswered.join(",");
    let before: Option<String> = tx
        .client()
        .query_opt(
            "SELECT alert_ids FROM subject_flags WHERE subject = $1 AND recipient = $2",
            &[&subject, &recipient],
        )
        .await?
        .map(|r| r.try_get(0))
        .transpose()?;
    if before.as_deref() == Some(joined.as_str()) {
        return Ok(None);
    }
    let label: String = tx
        .client()
        .query_one(
            "SELECT summary FROM alerts WHERE id = $1",
            &[&unanswered[0]],
        )
        .await?
        .try_get(0)?;
    tx.client()
        .execute(
            "INSERT INTO subject_flags (subject, recipient, label, alert_ids, flagged_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (subject, recipient) DO UPDATE SET label = $3, alert_ids = $4, flagged_at = $5",
            &[&subject, &recipient, &label, &joined, &ms(check.now)],
        )
        .await?;
    let direction = if inbound {
        Direction::Inbound
    } else {
        Direction::Outbound
    };
    let last = unanswered.last().cloned().unwrap_or_default();
    let flag = SubjectFlag {
        subject,
        recipient: recipient.to_owned(),
        label,
        alert_ids: unanswered,
        flagged_at: check.now,
    };
    insert_event(
        tx,
        NewEvent {
            at: check.now,
            kind: EventKind::Flagged,
            alert_id: &last,
            agency: recipient,
            direction,
            detail: &(check.detail)(&flag, direction),
        },
    )
    .await?;
    Ok(Some(flag))
}

#[async_trait]
impl SubjectStore for Postgres {
    async fn check_repeated(&self, check: RepeatedCheck) -> Result<Vec<SubjectFlag>, Error> {
        // The tracker's write: only the lease's holder makes it.
        let fence = self.tracker_fence();
        self.write(move |tx| {
            Box::pin(async move {
                fence.check(tx).await?;
                let mut raised = Vec::new();
                for (alert_id, recipient) in &check.checks {
                    if let Some(flag) = check_one(tx, &check, alert_id, recipient).await? {
                        raised.push(flag);
                    }
                }
                Ok(raised)
            })
        })
        .await
    }

    async fn subject_contexts(
        &self,
        alert_ids: Vec<String>,
        agency: String,
        hit_category: &'static str,
    ) -> Result<HashMap<String, SubjectContext>, Error> {
        self.read_snapshot(move |client| {
            Box::pin(async move {
                let flags: Vec<(String, Vec<String>)> = client
                    .query(
                        "SELECT subject, alert_ids FROM subject_flags WHERE recipient = $1",
                        &[&agency],
                    )
                    .await?
                    .iter()
                    .map(|r| Ok((r.try_get(0)?, split_ids(r.try_get(1)?))))
                    .collect::<Result<_, Error>>()?;
                let mut out = HashMap::new();
                for id in alert_ids {
                    if out.contains_key(&id) {
                        continue;
                    }
                    let (alerts, keys) = cluster(client, std::slice::from_ref(&id)).await?;
                    let mut originators = BTreeSet::new();
                    let mut hits = 0;
                    for a in &alerts {
                        let found = client
                            .query_opt(
                                "SELECT originator, category FROM alerts WHERE id = $1",
                                &[a],
                            )
                            .await?;
                        if let Some(r) = found {
                            let (originator, category): (String, String) =
                                (r.try_get(0)?, r.try_get(1)?);
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
        })
        .await
    }

    async fn subject_flags(&self) -> Result<Vec<SubjectFlag>, Error> {
        self.read(|client| {
            Box::pin(async move {
                client
                    .query(
                        "SELECT subject, recipient, label, alert_ids, flagged_at FROM subject_flags ORDER BY flagged_at DESC, subject",
                        &[],
                    )
                    .await?
                    .iter()
                    .map(|r| {
                        Ok(SubjectFlag {
                            subject: r.try_get(0)?,
                            recipient: r.try_get(1)?,
                            label: r.try_get(2)?,
                            alert_ids: split_ids(r.try_get(3)?),
                            flagged_at: from_ms(r.try_get(4)?),
                        })
                    })
                    .collect()
            })
        })
        .await
    }

    async fn find_subject(
        &self,
        alert_id: String,
        doc_key: String,
        name: String,
    ) -> Result<(Vec<String>, Vec<String>), Error> {
        self.read_snapshot(move |client| {
            Box::pin(async move {
                let mut start: Vec<String> = Vec::new();
                if client
                    .query_opt("SELECT 1 FROM alerts WHERE id = $1", &[&alert_id])
                    .await?
                    .is_some()
                {
                    start.push(alert_id.clone());
                }
                start.extend(
                    strings(
                        client,
                        "SELECT alert_id FROM subject_keys WHERE key = $1",
                        &doc_key,
                    )
                    .await?,
                );
                if !name.is_empty() {
                    // Every word asked for must be in the name, in any
                    // order: "mostefai ismael" finds "Ismaël Omar Mostefaï".
                    let wanted: Vec<&str> = name.split(' ').collect();
                    let persons = client
                        .query(
                            "SELECT key, alert_id FROM subject_keys WHERE key LIKE 'person:%'",
                            &[],
                        )
                        .await?;
                    for r in &persons {
                        let (key, alert): (String, String) = (r.try_get(0)?, r.try_get(1)?);
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
                let (alerts, keys) = cluster(client, &start).await?;
                // Oldest first.
                let mut ordered: Vec<(i64, String)> = Vec::with_capacity(alerts.len());
                for a in alerts {
                    let created: Option<i64> = client
                        .query_opt("SELECT created_at FROM alerts WHERE id = $1", &[&a])
                        .await?
                        .map(|r| r.try_get(0))
                        .transpose()?;
                    ordered.push((created.unwrap_or(0), a));
                }
                ordered.sort();
                Ok((
                    ordered.into_iter().map(|(_, a)| a).collect(),
                    keys.into_iter().collect(),
                ))
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::records::tests::{assert_same_log, at, exec_both, new_alert, same};
    use super::super::testing::Both;
    use crate::records::RecordStore;
    use crate::subjects::*;
    use crate::{Direction, EventKind};

    fn words(flag: &SubjectFlag, direction: Direction) -> String {
        format!(
            "{direction:?}: {} left {}",
            flag.recipient,
            flag.alert_ids.join("+")
        )
    }

    fn check(checks: &[(&str, &str)], threshold: usize, now: i64) -> RepeatedCheck {
        RepeatedCheck {
            checks: checks
                .iter()
                .map(|(a, r)| ((*a).to_owned(), (*r).to_owned()))
                .collect(),
            own_agency: "TR-MIT".into(),
            now: at(now),
            threshold,
            detail: words,
        }
    }

    /// Linked subjects, their contexts, finding them, and raising and
    /// growing REPEATED_UNANSWERED, on both backends alike.
    #[tokio::test]
    async fn subjects_answer_alike_on_both_backends() {
        let Some(both) = Both::start().await else {
            return;
        };
        // A1 and A2 share doc:X; A2 links on to A3 by a person; H1 is a
        // sighting about A3's person; A5 stands alone. B1, B2 (received)
        // share doc:Z.
        let outbound = [
            ("A1", -50, vec!["doc:X"], "terrorism"),
            (
                "A2",
                -40,
                vec!["doc:X", "person:ismael omar mostefai|1985"],
                "terrorism",
            ),
            (
                "A3",
                -30,
                vec!["person:ismael omar mostefai|1985"],
                "terrorism",
            ),
            ("H1", -20, vec!["person:ismael omar mostefai|1985"], "hit"),
            ("A5", -10, vec![], "terrorism"),
        ];
        for (id, created, keys, category) in outbound {
            let mut a = new_alert(id, "TR-MIT", 1);
            a.created_at = at(created);
            a.keys = keys.into_iter().map(str::to_owned).collect();
            a.category = category.into();
            same!(both, RecordStore, |s| s.insert_outbound(
                a.clone(),
                vec!["FR-DGSI".into(), "BE-VSSE".into()]
            ))
            .unwrap();
        }
        for (id, created, originator) in [("B1", -45, "FR-DGSI"), ("B2", -35, "BE-VSSE")] {
            let mut b = new_alert(id, originator, 2);
            b.created_at = at(created);
            b.keys = vec!["doc:Z".into(), "doc:Z".into()];
            same!(both, RecordStore, |s| s
                .insert_inbound(b.clone(), b"r".to_vec()))
            .unwrap();
        }

        for (alert_id, doc_key, name) in [
            ("A1", "", ""),
            ("", "doc:Z", ""),
            ("", "", "mostefai ismael"),
            ("", "", "mostefai salah"),
            ("nowhere", "doc:none", ""),
            ("A5", "", ""),
        ] {
            same!(both, SubjectStore, |s| s.find_subject(
                alert_id.into(),
                doc_key.into(),
                name.into()
            ))
            .unwrap();
        }
        let (alerts, keys) = same!(both, SubjectStore, |s| s.find_subject(
            String::new(),
            String::new(),
            "mostefai ismael".into()
        ))
        .unwrap();
        assert_eq!(alerts, ["A1", "A2", "A3", "H1"], "oldest first");
        assert_eq!(keys.len(), 2);

        let contexts = || {
            vec![
                "A1".to_owned(),
                "A3".into(),
                "A5".into(),
                "B2".into(),
                "nowhere".into(),
            ]
        };
        // A HashMap's Debug is in no order: compare the maps.
        let context = |agency: &'static str| {
            let both = &both;
            async move {
                let a = both
                    .sqlite
                    .subject_contexts(contexts(), agency.into(), "hit")
                    .await
                    .unwrap();
                let b = both
                    .postgres
                    .subject_contexts(contexts(), agency.into(), "hit")
                    .await
                    .unwrap();
                assert_eq!(a, b);
                b
            }
        };
        let before = context("FR-DGSI").await;
        assert_eq!(before["A1"].hits, 1);
        assert_eq!(before["B1"].originators, ["BE-VSSE", "FR-DGSI"]);
        assert!(!before["A1"].flagged);
        assert_eq!(before.len(), 8, "{before:?}");

        // Deadlines pass: FR-DGSI leaves A1 and A2 unanswered (A3's
        // delivery was refused), and we leave B1 and B2.
        exec_both(
            &both,
            "UPDATE deliveries SET flag = 1 WHERE recipient = 'FR-DGSI' AND alert_id IN ('A1', 'A2', 'A3');
             UPDATE deliveries SET state = 3 WHERE recipient = 'FR-DGSI' AND alert_id = 'A3';
             UPDATE alerts SET flag = 1 WHERE id IN ('B1', 'B2')",
            "UPDATE deliveries SET flag = 1 WHERE recipient = 'FR-DGSI' AND alert_id IN ('A1', 'A2', 'A3');
             UPDATE deliveries SET state = 3 WHERE recipient = 'FR-DGSI' AND alert_id = 'A3';
             UPDATE alerts SET flag = 1 WHERE id IN ('B1', 'B2')",
        )
        .await;
        let none = same!(both, SubjectStore, |s| s.check_repeated(check(
            &[("A2", "FR-DGSI"), ("B2", "TR-MIT")],
            3,
            1
        )))
        .unwrap();
        assert!(none.is_empty(), "{none:?}");
        // An alert with no keys is skipped, and BE-VSSE left nothing.
        let raised = same!(both, SubjectStore, |s| s.check_repeated(check(
            &[
                ("A2", "FR-DGSI"),
                ("B2", "TR-MIT"),
                ("A5", "FR-DGSI"),
                ("A1", "BE-VSSE"),
            ],
            2,
            2
        )))
        .unwrap();
        let raised: Vec<(&str, Vec<String>)> = raised
            .iter()
            .map(|f| (f.recipient.as_str(), f.alert_ids.clone()))
            .collect();
        assert_eq!(
            raised,
            [
                ("FR-DGSI", vec!["A1".to_owned(), "A2".into()]),
                ("TR-MIT", vec!["B1".to_owned(), "B2".into()]),
            ]
        );
        // The same again raises nothing, even at a threshold of 0 (which
        // counts as 1); BE-VSSE, past no deadline, still raises nothing.
        let again = same!(both, SubjectStore, |s| s.check_repeated(check(
            &[("A2", "FR-DGSI"), ("A1", "BE-VSSE")],
            0,
            3
        )))
        .unwrap();
        assert!(again.is_empty(), "{again:?}");
        // A3's refusal is undone (as if never refused): the flag grows.
        exec_both(
            &both,
            "UPDATE deliveries SET state = 1 WHERE alert_id = 'A3'",
            "UPDATE deliveries SET state = 1 WHERE alert_id = 'A3'",
        )
        .await;
        let grown = same!(both, SubjectStore, |s| s.check_repeated(check(
            &[("A3", "FR-DGSI")],
            2,
            4
        )))
        .unwrap();
        assert_eq!(grown[0].alert_ids, ["A1", "A2", "A3"]);
        let flags = same!(both, SubjectStore, |s| s.subject_flags()).unwrap();
        assert_eq!(flags.len(), 2);
        assert_eq!(flags[0].flagged_at, at(4), "newest first");

        let after = context("FR-DGSI").await;
        assert!(after["A1"].flagged && after["H1"].flagged);
        assert!(!after["B1"].flagged);
        assert!(context("TR-MIT").await["B1"].flagged);

        let events = assert_same_log(&both).await;
        let flagged: Vec<_> = events
            .iter()
            .filter(|e| e.kind == EventKind::Flagged.code())
            .map(|e| (e.alert_id.as_str(), e.detail.as_str()))
            .collect();
        assert_eq!(
            flagged,
            [
                ("A2", "Outbound: FR-DGSI left A1+A2"),
                ("B2", "Inbound: TR-MIT left B1+B2"),
                ("A3", "Outbound: FR-DGSI left A1+A2+A3"),
            ]
        );
    }
}
