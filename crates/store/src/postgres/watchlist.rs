//! [`crate::WatchlistStore`] on PostgreSQL; the trait says what each
//! method promises, `sqlite/watchlist.rs` is the reference behaviour.
//!
//! The own log's seq comes from the `watchlist_log` row of `sequences`,
//! taken in the write transaction that appends the change: a batch that
//! fails rolls its numbers back with it, so the log stays gapless, and
//! front nodes appending at once get consecutive seqs in commit order.
//!
//! Refs and owners are ordered (and paged, `ref > $1`) by the database's
//! collation. Under `C`, the test server's, that is SQLite's byte order;
//! under another, pages still cover every entry once (the comparison and
//! the order agree) but come in that collation's order.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::db::{Client, Postgres, Tx};
use crate::codes::WatchlistView as View;
use crate::error::Error;
use crate::millis::{from_ms, ms};
use crate::watchlist::*;

fn opt_ms(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(ms)
}

fn seq_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn sql_seq(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// A row of `owner, ref, entry, seq, changed_at` from column `first` on
/// (`owner` given when the query does not select it).
fn held_entry(row: &Row, owner: Option<&str>) -> Result<HeldEntry, Error> {
    let (owner, first) = match owner {
        Some(o) => (o.to_owned(), 0),
        None => (row.try_get(0)?, 1),
    };
    Ok(HeldEntry {
        owner,
        reference: row.try_get(first)?,
        entry: row.try_get(first + 1)?,
        seq: seq_of(row.try_get(first + 2)?),
        changed_at: from_ms(row.try_get(first + 3)?),
    })
}

async fn append_one(
    tx: &mut Tx,
    index: usize,
    change: &OwnChange,
    at: DateTime<Utc>,
    sign: &SignForms,
) -> Result<u64, Error> {
    let previous: Option<String> = tx
        .client()
        .query_opt(
            "SELECT releasable_to FROM watchlist_own WHERE ref = $1",
            &[&change.reference],
        )
        .await?
        .map(|r| r.try_get(0))
        .transpose()?;
    check_change(index, change, previous.is_some())?;
    let before = previous.as_deref().map(unlines).unwrap_or_default();
    let seq = tx.next_value("watchlist_log").await?;
    let forms = sign(seq_of(seq), change, &before);
    let client = tx.client();
    client
        .execute(
            r#"INSERT INTO watchlist_log (seq, ref, authored_at, "full", withdrawal, stub)
               VALUES ($1, $2, $3, $4, $5, $6)"#,
            &[
                &seq,
                &change.reference,
                &ms(at),
                &forms.full,
                &forms.withdrawal,
                &forms.stub,
            ],
        )
        .await?;
    let mut readers: Vec<(&str, i64)> = forms
        .full_to
        .iter()
        .map(|r| (r.as_str(), View::Full.code()))
        .collect();
    if forms.withdrawal.is_some() {
        readers.extend(
            forms
                .withdrawn_from
                .iter()
                .map(|r| (r.as_str(), View::Withdrawal.code())),
        );
    }
    if !readers.is_empty() {
        // One statement for all readers: a reader named twice violates
        // the key, as it does on SQLite.
        let (names, views): (Vec<&str>, Vec<i64>) = readers.into_iter().unzip();
        client
            .execute(
                "INSERT INTO watchlist_log_readers (reader, seq, view)
                 SELECT r.reader, $2, r.view FROM unnest($1::TEXT[], $3::BIGINT[]) AS r (reader, view)",
                &[&names, &seq, &views],
            )
            .await?;
    }
    match &change.op {
        OwnOp::Add(e) | OwnOp::Update(e) => {
            client
                .execute(
                    "INSERT INTO watchlist_own (ref, entry, releasable_to, seq, changed_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (ref) DO UPDATE SET entry = excluded.entry,
                       releasable_to = excluded.releasable_to, seq = excluded.seq,
                       changed_at = excluded.changed_at, expires_at = excluded.expires_at",
                    &[
                        &change.reference,
                        &e.entry,
                        &lines(&e.releasable_to),
                        &seq,
                        &ms(at),
                        &opt_ms(e.expires_at),
                    ],
                )
                .await?;
        }
        OwnOp::Remove => {
            client
                .execute(
                    "DELETE FROM watchlist_own WHERE ref = $1",
                    &[&change.reference],
                )
                .await?;
        }
    }
    Ok(seq_of(seq))
}

async fn own_head(client: &Client) -> Result<LogHead, Error> {
    let row = client
        .query_opt(
            "SELECT seq, authored_at FROM watchlist_log ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .await?;
    Ok(match row {
        None => LogHead::default(),
        Some(r) => LogHead {
            seq: seq_of(r.try_get(0)?),
            at: Some(from_ms(r.try_get(1)?)),
        },
    })
}

async fn cursor_seq(client: &Client, owner: &str) -> Result<u64, Error> {
    let seq: Option<i64> = client
        .query_opt(
            "SELECT seq FROM watchlist_cursors WHERE owner = $1",
            &[&owner],
        )
        .await?
        .map(|r| r.try_get(0))
        .transpose()?;
    Ok(seq.map(seq_of).unwrap_or(0))
}

/// Applies one pulled change to the entries held from `owner`.
async fn apply_one(client: &Client, owner: &str, c: &HeldChange) -> Result<(), Error> {
    match &c.op {
        HeldOp::Put {
            reference,
            entry,
            envelope,
            expires_at,
        } => {
            client
                .execute(
                    "INSERT INTO watchlist_held (owner, ref, entry, envelope, seq, changed_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (owner, ref) DO UPDATE SET entry = excluded.entry,
                       envelope = excluded.envelope, seq = excluded.seq,
                       changed_at = excluded.changed_at, expires_at = excluded.expires_at",
                    &[
                        &owner,
                        reference,
                        entry,
                        envelope,
                        &sql_seq(c.seq),
                        &ms(c.authored_at),
                        &opt_ms(*expires_at),
                    ],
                )
                .await?;
        }
        HeldOp::Remove { reference } => {
            client
                .execute(
                    "DELETE FROM watchlist_held WHERE owner = $1 AND ref = $2",
                    &[&owner, reference],
                )
                .await?;
        }
        HeldOp::Skip => {}
    }
    Ok(())
}

#[async_trait]
impl WatchlistStore for Postgres {
    async fn append_own_watchlist(
        &self,
        changes: Vec<OwnChange>,
        at: DateTime<Utc>,
        sign: SignForms,
    ) -> Result<Vec<u64>, Error> {
        self.write(move |tx| {
            Box::pin(async move {
                let mut seqs = Vec::with_capacity(changes.len());
                for (i, c) in changes.iter().enumerate() {
                    seqs.push(append_one(tx, i, c, at, &sign).await?);
                }
                Ok(seqs)
            })
        })
        .await
    }

    async fn own_watchlist_page(
        &self,
        reader: String,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<(u64, Vec<u8>)>, LogHead), Error> {
        self.read_snapshot(move |client| {
            Box::pin(async move {
                let rows = client
                    .query(
                        r#"SELECT l.seq, r.view, l."full", l.withdrawal, l.stub FROM watchlist_log l
                           LEFT JOIN watchlist_log_readers r ON r.seq = l.seq AND r.reader = $1
                           WHERE l.seq > $2 ORDER BY l.seq LIMIT $3"#,
                        &[&reader, &sql_seq(after), &sql_limit(limit)],
                    )
                    .await?;
                let mut page = Vec::with_capacity(rows.len());
                for r in rows {
                    let view: Option<i64> = r.try_get(1)?;
                    let served: Vec<u8> = match view.map(View::decode).transpose()? {
                        Some(View::Full) => r.try_get(2)?,
                        Some(View::Withdrawal) => match r.try_get::<_, Option<Vec<u8>>>(3)? {
                            Some(w) => w,
                            None => r.try_get(4)?,
                        },
                        None => r.try_get(4)?,
                    };
                    page.push((seq_of(r.try_get(0)?), served));
                }
                Ok((page, own_head(client).await?))
            })
        })
        .await
    }

    async fn own_watchlist_head(&self) -> Result<LogHead, Error> {
        self.read(|client| Box::pin(own_head(client))).await
    }

    async fn own_watchlist_refs_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, String)>, Error> {
        self.read(move |client| {
            Box::pin(async move {
                client
                    .query(
                        "SELECT seq, ref FROM watchlist_log WHERE seq > $1 ORDER BY seq LIMIT $2",
                        &[&sql_seq(after), &sql_limit(limit)],
                    )
                    .await?
                    .iter()
                    .map(|r| Ok((seq_of(r.try_get(0)?), r.try_get(1)?)))
                    .collect()
            })
        })
        .await
    }

    async fn own_watchlist(&self, owner: String) -> Result<Vec<HeldEntry>, Error> {
        // Refs are never empty, so every entry comes after "".
        self.own_watchlist_after(owner, String::new(), usize::MAX)
            .await
    }

    async fn own_watchlist_expiries(
        &self,
        now: DateTime<Utc>,
    ) -> Result<(Vec<String>, Option<DateTime<Utc>>), Error> {
        // Two queries, one snapshot: the soonest expiry to come must be
        // of the same list as the expired refs.
        self.read_snapshot(move |client| {
            Box::pin(async move {
                let expired = client
                    .query(
                        "SELECT ref FROM watchlist_own WHERE expires_at IS NOT NULL AND expires_at <= $1
                         ORDER BY ref",
                        &[&ms(now)],
                    )
                    .await?
                    .iter()
                    .map(|r| r.try_get(0))
                    .collect::<Result<Vec<String>, _>>()?;
                let next: Option<i64> = client
                    .query_one(
                        "SELECT MIN(expires_at) FROM watchlist_own
                         WHERE expires_at IS NOT NULL AND expires_at > $1",
                        &[&ms(now)],
                    )
                    .await?
                    .try_get(0)?;
                Ok((expired, next.map(from_ms)))
            })
        })
        .await
    }

    async fn apply_held_watchlist(
        &self,
        owner: String,
        from: u64,
        changes: Vec<HeldChange>,
        head: LogHead,
        now: DateTime<Utc>,
    ) -> Result<LogHead, Error> {
        self.write(move |tx| {
            Box::pin(async move {
                let client = tx.client();
                // Writes are serialised (see `db`), so the cursor read here
                // is the one this transaction moves.
                let current = cursor_seq(client, &owner).await?;
                if current != from {
                    return Err(Error::Conflict(format!(
                        "the cursor of {owner} is at {current}, not {from}"
                    )));
                }
                let mut applied = LogHead {
                    seq: from,
                    at: None,
                };
                for c in &changes {
                    apply_one(client, &owner, c).await?;
                    applied = LogHead {
                        seq: c.seq,
                        at: Some(c.authored_at),
                    };
                }
                client
                    .execute(
                        "DELETE FROM watchlist_held
                         WHERE owner = $1 AND expires_at IS NOT NULL AND expires_at <= $2",
                        &[&owner, &ms(now)],
                    )
                    .await?;
                let head = if head.seq >= applied.seq {
                    head
                } else {
                    applied
                };
                client
                    .execute(
                        "INSERT INTO watchlist_cursors (owner, seq, seq_at, head, head_at, heard_at, refusal)
                         VALUES ($1, $2, $3, $4, $5, $6, NULL)
                         ON CONFLICT (owner) DO UPDATE SET
                           seq = excluded.seq,
                           seq_at = COALESCE(excluded.seq_at, watchlist_cursors.seq_at),
                           head = excluded.head, head_at = excluded.head_at,
                           heard_at = excluded.heard_at, refusal = NULL",
                        &[
                            &owner,
                            &sql_seq(applied.seq),
                            &opt_ms(applied.at),
                            &sql_seq(head.seq),
                            &opt_ms(head.at),
                            &ms(now),
                        ],
                    )
                    .await?;
                Ok(applied)
            })
        })
        .await
    }

    async fn note_watchlist_head(
        &self,
        owner: String,
        head: LogHead,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        self.write(move |tx| {
            Box::pin(async move {
                tx.client()
                    .execute(
                        "INSERT INTO watchlist_cursors (owner, head, head_at, heard_at)
                         VALUES ($1, $2, $3, $4)
                         ON CONFLICT (owner) DO UPDATE SET
                           head = GREATEST(watchlist_cursors.head, excluded.head),
                           head_at = CASE WHEN excluded.head >= watchlist_cursors.head
                             THEN excluded.head_at ELSE watchlist_cursors.head_at END,
                           heard_at = excluded.heard_at",
                        &[&owner, &sql_seq(head.seq), &opt_ms(head.at), &ms(now)],
                    )
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn note_watchlist_refusal(&self, owner: String, reason: String) -> Result<(), Error> {
        self.write(move |tx| {
            Box::pin(async move {
                tx.client()
                    .execute(
                        "INSERT INTO watchlist_cursors (owner, refusal) VALUES ($1, $2)
                         ON CONFLICT (owner) DO UPDATE SET refusal = excluded.refusal",
                        &[&owner, &reason],
                    )
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn watchlist_cursor_seq(&self, owner: String) -> Result<u64, Error> {
        self.read(move |client| Box::pin(async move { cursor_seq(client, &owner).await }))
            .await
    }

    async fn watchlist_cursors(&self, now: DateTime<Utc>) -> Result<Vec<Cursor>, Error> {
        self.read(move |client| {
            Box::pin(async move {
                let rows = client
                    .query(
                        "SELECT c.owner, c.seq, c.seq_at, c.head, c.head_at, c.heard_at, c.refusal,
                           (SELECT COUNT(*) FROM watchlist_held h WHERE h.owner = c.owner
                              AND (h.expires_at IS NULL OR h.expires_at > $1))
                         FROM watchlist_cursors c ORDER BY c.owner",
                        &[&ms(now)],
                    )
                    .await?;
                rows.iter()
                    .map(|r| {
                        Ok(Cursor {
                            owner: r.try_get(0)?,
                            applied: LogHead {
                                seq: seq_of(r.try_get(1)?),
                                at: r.try_get::<_, Option<i64>>(2)?.map(from_ms),
                            },
                            head: LogHead {
                                seq: seq_of(r.try_get(3)?),
                                at: r.try_get::<_, Option<i64>>(4)?.map(from_ms),
                            },
                            heard_at: r.try_get::<_, Option<i64>>(5)?.map(from_ms),
                            refusal: r.try_get(6)?,
                            held: seq_of(r.try_get(7)?),
                        })
                    })
                    .collect()
            })
        })
        .await
    }

    async fn held_watchlist(
        &self,
        owner: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Vec<HeldEntry>, Error> {
        self.read(move |client| {
            Box::pin(async move {
                client
                    .query(
                        "SELECT owner, ref, entry, seq, changed_at FROM watchlist_held
                         WHERE ($1::TEXT IS NULL OR owner = $1)
                           AND (expires_at IS NULL OR expires_at > $2)
                         ORDER BY owner, ref",
                        &[&owner, &ms(now)],
                    )
                    .await?
                    .iter()
                    .map(|r| held_entry(r, None))
                    .collect()
            })
        })
        .await
    }

    async fn own_watchlist_after(
        &self,
        owner: String,
        after: String,
        limit: usize,
    ) -> Result<Vec<HeldEntry>, Error> {
        self.read(move |client| {
            Box::pin(async move {
                client
                    .query(
                        "SELECT ref, entry, seq, changed_at FROM watchlist_own WHERE ref > $1
                         ORDER BY ref LIMIT $2",
                        &[&after, &sql_limit(limit)],
                    )
                    .await?
                    .iter()
                    .map(|r| held_entry(r, Some(&owner)))
                    .collect()
            })
        })
        .await
    }

    async fn held_watchlist_after(
        &self,
        after: (String, String),
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<HeldEntry>, Error> {
        self.read(move |client| {
            Box::pin(async move {
                client
                    .query(
                        "SELECT owner, ref, entry, seq, changed_at FROM watchlist_held
                         WHERE (owner, ref) > ($1, $2) AND (expires_at IS NULL OR expires_at > $3)
                         ORDER BY owner, ref LIMIT $4",
                        &[&after.0, &after.1, &ms(now), &sql_limit(limit)],
                    )
                    .await?
                    .iter()
                    .map(|r| held_entry(r, None))
                    .collect()
            })
        })
        .await
    }

    async fn watchlist_entries(
        &self,
        own: String,
        keys: Vec<(String, String)>,
    ) -> Result<Vec<Option<HeldEntry>>, Error> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // Two queries (own refs, held keys) rather than one per key: a
        // round trip to the server costs more than SQLite's lookup.
        self.read_snapshot(move |client| {
            Box::pin(async move {
                let own_refs: Vec<&str> = keys
                    .iter()
                    .filter(|(o, _)| *o == own)
                    .map(|(_, r)| r.as_str())
                    .collect();
                let (owners, refs): (Vec<&str>, Vec<&str>) = keys
                    .iter()
                    .filter(|(o, _)| *o != own)
                    .map(|(o, r)| (o.as_str(), r.as_str()))
                    .unzip();
                let mut found: HashMap<(String, String), HeldEntry> = HashMap::new();
                if !own_refs.is_empty() {
                    for r in client
                        .query(
                            "SELECT ref, entry, seq, changed_at FROM watchlist_own
                             WHERE ref = ANY($1::TEXT[])",
                            &[&own_refs],
                        )
                        .await?
                    {
                        let e = held_entry(&r, Some(&own))?;
                        found.insert((e.owner.clone(), e.reference.clone()), e);
                    }
                }
                if !owners.is_empty() {
                    for r in client
                        .query(
                            "SELECT h.owner, h.ref, h.entry, h.seq, h.changed_at
                             FROM watchlist_held h
                             JOIN unnest($1::TEXT[], $2::TEXT[]) AS k (owner, ref)
                               ON h.owner = k.owner AND h.ref = k.ref",
                            &[&owners, &refs],
                        )
                        .await?
                    {
                        let e = held_entry(&r, None)?;
                        found.insert((e.owner.clone(), e.reference.clone()), e);
                    }
                }
                Ok(keys.into_iter().map(|k| found.get(&k).cloned()).collect())
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Debug;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::EventStore;
    use crate::postgres::testing::Both;

    /// A fixed time in whole milliseconds, so that it reads back equal.
    fn t0() -> DateTime<Utc> {
        Utc.timestamp_millis_opt(1_790_000_000_123).unwrap()
    }

    /// Pure signed forms that say which seq, ref and view they are.
    fn forms() -> SignForms {
        Arc::new(|seq, change, before| SignedForms {
            full: format!("full {seq} {}", change.reference).into_bytes(),
            full_to: match &change.op {
                OwnOp::Add(e) | OwnOp::Update(e) => e.releasable_to.clone(),
                OwnOp::Remove => before.to_vec(),
            },
            withdrawal: Some(format!("withdrawal {seq}").into_bytes()),
            withdrawn_from: before
                .iter()
                .filter(|b| match &change.op {
                    OwnOp::Add(e) | OwnOp::Update(e) => !e.releasable_to.contains(b),
                    OwnOp::Remove => false,
                })
                .cloned()
                .collect(),
            stub: format!("stub {seq}").into_bytes(),
        })
    }

    fn entry(to: &[&str], expires_at: Option<DateTime<Utc>>) -> OwnEntry {
        OwnEntry {
            entry: b"entry".to_vec(),
            releasable_to: to.iter().map(|s| (*s).to_owned()).collect(),
            expires_at,
        }
    }

    fn add(reference: &str, to: &[&str]) -> OwnChange {
        OwnChange {
            reference: reference.into(),
            op: OwnOp::Add(entry(to, None)),
        }
    }

    fn put(seq: u64, r: &str, at: DateTime<Utc>, expires_at: Option<DateTime<Utc>>) -> HeldChange {
        HeldChange {
            seq,
            authored_at: at,
            op: HeldOp::Put {
                reference: r.into(),
                entry: format!("held {r} {seq}").into_bytes(),
                envelope: format!("env {seq}").into_bytes(),
                expires_at,
            },
        }
    }

    fn key(owner: &str, reference: &str) -> (String, String) {
        (owner.to_owned(), reference.to_owned())
    }

    /// What a scenario saw, step by step: the `Debug` form of each answer
    /// (every answer type derives `Debug` and `PartialEq`; an error shows
    /// its variant and message, which both backends word alike).
    #[derive(Default)]
    struct Transcript(Vec<(&'static str, String)>);

    impl Transcript {
        fn note<T: Debug>(&mut self, step: &'static str, answer: &T) {
            self.0.push((step, format!("{answer:?}")));
        }

        /// The answers of two backends agree step by step.
        fn assert_same_as(&self, other: &Transcript) {
            assert_eq!(self.0.len(), other.0.len(), "both ran every step");
            for ((step, a), (_, b)) in self.0.iter().zip(&other.0) {
                assert_eq!(
                    a, b,
                    "step {step}: SQLite (left) and PostgreSQL (right) differ"
                );
            }
        }
    }

    /// Writes to the watchlist record no events: neither backend has any.
    async fn assert_no_events(both: &Both) {
        assert_eq!(both.sqlite.events_after(0, 100).await.unwrap(), vec![]);
        let (events, audit) = both
            .postgres
            .read(|c| {
                Box::pin(async move {
                    let n = |sql: &'static str| async move {
                        Ok::<i64, Error>(c.query_one(sql, &[]).await?.try_get(0)?)
                    };
                    Ok((
                        n("SELECT COUNT(*) FROM events").await?,
                        n("SELECT COUNT(*) FROM audit_log").await?,
                    ))
                })
            })
            .await
            .unwrap();
        assert_eq!((events, audit), (0, 0));
    }

    /// The own log: gapless seqs across writes, a refused batch leaving
    /// nothing (not even a seq), each reader's form, page limits and
    /// bounds, the head, entries by page, by key and by expiry.
    async fn own_log(s: &dyn WatchlistStore) -> Transcript {
        let mut t = Transcript::default();
        let now = t0();
        let soon = now + Duration::minutes(5);
        t.note("empty head", &s.own_watchlist_head().await.unwrap());
        t.note(
            "empty page",
            &s.own_watchlist_page("FR".into(), 0, 10).await,
        );
        t.note("empty expiries", &s.own_watchlist_expiries(now).await);

        let seqs = s
            .append_own_watchlist(
                vec![add("A", &["FR", "DE"]), add("B", &["DE"])],
                now,
                forms(),
            )
            .await;
        assert_eq!(seqs.as_deref().ok(), Some(&[1, 2][..]));
        t.note("first batch", &seqs);
        let narrowing = OwnChange {
            reference: "A".into(),
            op: OwnOp::Update(entry(&["FR"], Some(soon))),
        };
        t.note(
            "narrowing",
            &s.append_own_watchlist(vec![narrowing], now + Duration::seconds(1), forms())
                .await,
        );
        let refused = s
            .append_own_watchlist(vec![add("C", &["FR"]), add("A", &["FR"])], now, forms())
            .await;
        assert!(matches!(&refused, Err(Error::Exists(m)) if m.starts_with("entries[1]")));
        t.note("ref taken", &refused);
        let missing = OwnChange {
            reference: "Z".into(),
            op: OwnOp::Remove,
        };
        t.note(
            "remove unknown",
            &s.append_own_watchlist(vec![missing], now, forms()).await,
        );
        let missing = OwnChange {
            reference: "Z".into(),
            op: OwnOp::Update(entry(&[], None)),
        };
        t.note(
            "update unknown",
            &s.append_own_watchlist(vec![missing], now, forms()).await,
        );
        t.note(
            "nothing",
            &s.append_own_watchlist(vec![], now, forms()).await,
        );
        // The refused batches took no seq: C comes next, at 4.
        let more = vec![
            add("C", &[]),
            OwnChange {
                reference: "b".into(),
                op: OwnOp::Add(entry(&["FR"], Some(now))),
            },
            add("é", &["DE"]),
            OwnChange {
                reference: "B".into(),
                op: OwnOp::Remove,
            },
        ];
        let seqs = s
            .append_own_watchlist(more, now + Duration::seconds(2), forms())
            .await;
        assert_eq!(seqs.as_deref().ok(), Some(&[4, 5, 6, 7][..]));
        t.note("second batch", &seqs);

        for reader in ["FR", "DE", "US"] {
            t.note(
                "whole log",
                &s.own_watchlist_page(reader.into(), 0, 100).await,
            );
        }
        for (after, limit) in [(1, 1), (2, 3), (6, 10), (7, 10), (99, 10), (0, 0)] {
            t.note(
                "page",
                &s.own_watchlist_page("DE".into(), after, limit).await,
            );
        }
        t.note(
            "huge bounds",
            &s.own_watchlist_page("DE".into(), u64::MAX, usize::MAX)
                .await,
        );
        t.note("head", &s.own_watchlist_head().await);
        for (after, limit) in [(0, 100), (2, 3), (7, 10), (u64::MAX, usize::MAX), (0, 0)] {
            t.note(
                "refs after",
                &s.own_watchlist_refs_after(after, limit).await,
            );
        }
        t.note("own", &s.own_watchlist("TR".into()).await);
        for (after, limit) in [("", 2), ("B", 2), ("C", 10), ("é", 1), ("", 0)] {
            t.note(
                "own page",
                &s.own_watchlist_after("TR".into(), after.into(), limit)
                    .await,
            );
        }
        for at in [
            now - Duration::seconds(1),
            now,
            soon,
            soon + Duration::days(1),
        ] {
            t.note("expiries", &s.own_watchlist_expiries(at).await);
        }
        let keys = vec![
            key("TR", "A"),
            key("TR", "B"),
            key("TR", "é"),
            key("DE", "A"),
            key("TR", "A"),
        ];
        t.note("by key", &s.watchlist_entries("TR".into(), keys).await);
        t.note("no keys", &s.watchlist_entries("TR".into(), vec![]).await);
        t
    }

    /// The same calls on the own log answer alike on both backends.
    #[tokio::test]
    async fn the_own_log_answers_alike_on_both_backends() {
        let Some(both) = Both::start().await else {
            return;
        };
        let sqlite = own_log(&both.sqlite).await;
        let postgres = own_log(&both.postgres).await;
        sqlite.assert_same_as(&postgres);
        assert_no_events(&both).await;
    }

    /// Held entries and cursors: pages applied from the cursor only,
    /// stubs that move it, removals, expiry at apply and at read, heads
    /// heard and refusals noted, pages and reads by key.
    async fn held_lists(s: &dyn WatchlistStore) -> Transcript {
        let mut t = Transcript::default();
        let now = t0();
        let hour = Duration::hours(1);
        let head = |seq| LogHead {
            seq,
            at: Some(now + Duration::seconds(i64::try_from(seq).unwrap())),
        };
        t.note("no cursor", &s.watchlist_cursor_seq("DE".into()).await);
        t.note("no cursors", &s.watchlist_cursors(now).await);
        t.note("none held", &s.held_watchlist(None, now).await);

        let page = vec![
            put(1, "X", now, None),
            put(2, "Y", now, Some(now + hour)),
            put(3, "gone", now, Some(now)),
            HeldChange {
                seq: 4,
                authored_at: now + Duration::seconds(4),
                op: HeldOp::Skip,
            },
        ];
        t.note(
            "first page",
            &s.apply_held_watchlist("DE".into(), 0, page, head(9), now)
                .await,
        );
        let stale = s
            .apply_held_watchlist("DE".into(), 0, vec![put(1, "X", now, None)], head(9), now)
            .await;
        assert!(matches!(stale, Err(Error::Conflict(_))), "{stale:?}");
        t.note("stale page", &stale);
        t.note(
            "ahead",
            &s.apply_held_watchlist("DE".into(), 7, vec![], head(9), now)
                .await,
        );
        let page = vec![
            put(5, "X", now + hour, None),
            HeldChange {
                seq: 6,
                authored_at: now,
                op: HeldOp::Remove {
                    reference: "never".into(),
                },
            },
            put(7, "Z", now, None),
        ];
        // The head heard is behind what the page applies: the page's wins.
        t.note(
            "second page",
            &s.apply_held_watchlist("DE".into(), 4, page, head(2), now)
                .await,
        );
        t.note("cursor", &s.watchlist_cursor_seq("DE".into()).await);
        t.note(
            "other page",
            &s.apply_held_watchlist(
                "FR".into(),
                0,
                vec![put(1, "P", now, None), put(2, "Q", now, None)],
                head(2),
                now,
            )
            .await,
        );

        t.note(
            "heard",
            &s.note_watchlist_head("DE".into(), head(12), now + hour)
                .await,
        );
        t.note("cursors", &s.watchlist_cursors(now).await);
        // An older head does not move it back, nor its time.
        t.note(
            "heard old",
            &s.note_watchlist_head("DE".into(), head(10), now + hour * 2)
                .await,
        );
        t.note(
            "heard new owner",
            &s.note_watchlist_head("US".into(), LogHead::default(), now)
                .await,
        );
        t.note(
            "refused",
            &s.note_watchlist_refusal("DE".into(), "bad signature".into())
                .await,
        );
        t.note(
            "refused unknown",
            &s.note_watchlist_refusal("IT".into(), "no such log".into())
                .await,
        );
        t.note("cursors", &s.watchlist_cursors(now).await);
        // An empty page that applies clears the refusal and keeps seq_at.
        t.note(
            "empty page",
            &s.apply_held_watchlist("DE".into(), 7, vec![], head(12), now)
                .await,
        );
        let removal = HeldChange {
            seq: 8,
            authored_at: now + hour,
            op: HeldOp::Remove {
                reference: "X".into(),
            },
        };
        t.note(
            "removal",
            &s.apply_held_watchlist("DE".into(), 7, vec![removal], head(12), now)
                .await,
        );
        for at in [now, now + hour, now + hour * 2] {
            t.note("cursors", &s.watchlist_cursors(at).await);
            t.note("held", &s.held_watchlist(None, at).await);
            t.note("held of DE", &s.held_watchlist(Some("DE".into()), at).await);
        }
        t.note(
            "held of nobody",
            &s.held_watchlist(Some("NL".into()), now).await,
        );
        for (after, limit) in [
            (key("", ""), 1),
            (key("DE", "Y"), 1),
            (key("DE", "Z"), 5),
            (key("FR", "Q"), 5),
            (key("", ""), 0),
        ] {
            t.note(
                "held page",
                &s.held_watchlist_after(after, now, limit).await,
            );
        }
        t.note(
            "held page later",
            &s.held_watchlist_after(key("", ""), now + hour, 10).await,
        );
        let keys = vec![
            key("FR", "Q"),
            key("DE", "X"),
            key("DE", "Y"),
            key("TR", "Y"),
            key("FR", "Q"),
            key("DE", "Z"),
        ];
        t.note("by key", &s.watchlist_entries("TR".into(), keys).await);
        // Held entries of the agency named `own` are not its own.
        t.note(
            "own named",
            &s.watchlist_entries("DE".into(), vec![key("DE", "Z")]).await,
        );
        t
    }

    /// The same calls on held lists and cursors answer alike.
    #[tokio::test]
    async fn held_lists_and_cursors_answer_alike_on_both_backends() {
        let Some(both) = Both::start().await else {
            return;
        };
        let sqlite = held_lists(&both.sqlite).await;
        let postgres = held_lists(&both.postgres).await;
        sqlite.assert_same_as(&postgres);
        assert_no_events(&both).await;
    }

    /// A thousand entries, own and held, walked page by page: every walk
    /// covers each entry once, in order, and the backends agree.
    async fn thousand(s: &dyn WatchlistStore) -> Transcript {
        let mut t = Transcript::default();
        let now = t0();
        let refs: Vec<String> = (0..1000).map(|i| format!("E{i:04}")).collect();
        let changes = refs
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let to: &[&str] = if i % 3 == 0 { &["FR"] } else { &["DE"] };
                add(r, to)
            })
            .collect();
        let seqs = s.append_own_watchlist(changes, now, forms()).await.unwrap();
        assert_eq!(seqs, (1..=1000).collect::<Vec<u64>>());
        let held: Vec<HeldChange> = refs
            .iter()
            .zip(1..)
            .map(|(r, seq)| put(seq, r, now, None))
            .collect();
        let head = LogHead {
            seq: 1000,
            at: Some(now),
        };
        s.apply_held_watchlist("DE".into(), 0, held, head, now)
            .await
            .unwrap();

        let (mut log, mut after) = (Vec::new(), 0);
        loop {
            let (page, head) = s.own_watchlist_page("FR".into(), after, 37).await.unwrap();
            assert_eq!(head.seq, 1000);
            let Some(&(last, _)) = page.last() else { break };
            after = last;
            log.extend(page);
        }
        assert_eq!(log.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), seqs);
        t.note("log walk", &log);

        let (mut own, mut after) = (Vec::new(), String::new());
        loop {
            let page = s
                .own_watchlist_after("TR".into(), after.clone(), 64)
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = last.reference.clone();
            own.extend(page);
        }
        assert_eq!(
            own.iter().map(|e| &e.reference).collect::<Vec<_>>(),
            refs.iter().collect::<Vec<_>>()
        );
        t.note("own walk", &own);

        let (mut held, mut after) = (Vec::new(), key("", ""));
        loop {
            let page = s
                .held_watchlist_after(after.clone(), now, 101)
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = (last.owner.clone(), last.reference.clone());
            held.extend(page);
        }
        assert_eq!(held.len(), 1000);
        t.note("held walk", &held);
        t.note("cursors", &s.watchlist_cursors(now).await);
        t
    }

    /// A reader's view code that names nothing is corrupt data on both
    /// backends, not a stub served in its place.
    #[tokio::test]
    async fn an_unknown_view_code_is_corrupt_on_both_backends() {
        let Some(both) = Both::start().await else {
            return;
        };
        for s in [&both.sqlite as &dyn WatchlistStore, &both.postgres] {
            s.append_own_watchlist(vec![add("A", &["FR"])], t0(), forms())
                .await
                .unwrap();
        }
        both.sqlite
            .write(|c| {
                c.execute(
                    "INSERT INTO watchlist_log_readers (reader, seq, view) VALUES ('DE', 1, 9)",
                    [],
                )?;
                Ok(())
            })
            .await
            .unwrap();
        both.postgres
            .write(|tx| {
                Box::pin(async move {
                    tx.client()
                        .execute(
                            "INSERT INTO watchlist_log_readers (reader, seq, view) VALUES ('DE', 1, 9)",
                            &[],
                        )
                        .await?;
                    Ok(())
                })
            })
            .await
            .unwrap();
        for s in [&both.sqlite as &dyn WatchlistStore, &both.postgres] {
            let page = s.own_watchlist_page("DE".into(), 0, 10).await;
            assert!(
                matches!(
                    page,
                    Err(Error::Corrupt {
                        what: "WatchlistView",
                        code: 9
                    })
                ),
                "{page:?}"
            );
            // Other readers' pages do not read the bad row.
            let (fr, _) = s.own_watchlist_page("FR".into(), 0, 10).await.unwrap();
            assert_eq!(fr, vec![(1, b"full 1 A".to_vec())]);
        }
    }

    /// Paging a large list answers alike on both backends.
    #[tokio::test]
    async fn a_thousand_entries_walk_alike_on_both_backends() {
        let Some(both) = Both::start().await else {
            return;
        };
        let sqlite = thousand(&both.sqlite).await;
        let postgres = thousand(&both.postgres).await;
        sqlite.assert_same_as(&postgres);
    }

    /// Two appends at once (two front nodes) both commit, one after the
    /// other: each batch's seqs are consecutive, together 1..=6, no gap;
    /// and the `sequences` row is left where the next append starts.
    #[tokio::test]
    async fn concurrent_appends_get_consecutive_seqs() {
        let Some(both) = Both::start().await else {
            return;
        };
        let pg = &both.postgres;
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = {
            let (calls, sign) = (calls.clone(), forms());
            Arc::new(move |seq: u64, c: &OwnChange, before: &[String]| {
                calls.fetch_add(1, Ordering::SeqCst);
                sign(seq, c, before)
            }) as SignForms
        };
        let batch = |prefix: &str| -> Vec<OwnChange> {
            (0..3)
                .map(|i| add(&format!("{prefix}{i}"), &["FR"]))
                .collect()
        };
        let (a, b) = tokio::join!(
            pg.append_own_watchlist(batch("a"), t0(), counted.clone()),
            pg.append_own_watchlist(batch("b"), t0(), counted.clone()),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        for seqs in [&a, &b] {
            assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
        }
        let mut all: Vec<u64> = a.iter().chain(&b).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (1..=6).collect::<Vec<u64>>());
        // PostgreSQL's write runs once: one signing per change.
        assert_eq!(calls.load(Ordering::SeqCst), 6);
        let (page, head) = pg.own_watchlist_page("FR".into(), 0, 100).await.unwrap();
        assert_eq!(page.iter().map(|(s, _)| *s).collect::<Vec<_>>(), all);
        assert_eq!(head.seq, 6);
        let next: i64 = pg
            .read(|c| {
                Box::pin(async move {
                    Ok(c.query_one(
                        "SELECT next FROM sequences WHERE name = 'watchlist_log'",
                        &[],
                    )
                    .await?
                    .try_get(0)?)
                })
            })
            .await
            .unwrap();
        assert_eq!(next, 7);
    }

    /// Two pulls applying pages after the same cursor at once: one moves
    /// it, the other is refused and writes nothing.
    #[tokio::test]
    async fn concurrent_pulls_apply_once() {
        let Some(both) = Both::start().await else {
            return;
        };
        let pg = &both.postgres;
        let now = t0();
        let head = LogHead {
            seq: 2,
            at: Some(now),
        };
        let (a, b) = tokio::join!(
            pg.apply_held_watchlist("DE".into(), 0, vec![put(1, "A", now, None)], head, now),
            pg.apply_held_watchlist(
                "DE".into(),
                0,
                vec![put(1, "B", now, None), put(2, "C", now, None)],
                head,
                now
            ),
        );
        assert!(a.is_ok() != b.is_ok(), "exactly one applies: {a:?} {b:?}");
        let held = pg.held_watchlist(None, now).await.unwrap();
        let (seq, refs): (u64, &[&str]) = if a.is_ok() {
            (1, &["A"])
        } else {
            (2, &["B", "C"])
        };
        assert_eq!(pg.watchlist_cursor_seq("DE".into()).await.unwrap(), seq);
        assert_eq!(
            held.iter()
                .map(|e| e.reference.as_str())
                .collect::<Vec<_>>(),
            refs
        );
    }
}
