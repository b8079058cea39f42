//! [`crate::WatchlistStore`] on SQLite; the trait says what each method promises.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::sql::{from_ms, ms};
use crate::codes::WatchlistView as View;
use async_trait::async_trait;

use super::db::Sqlite;
use crate::Error;
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

fn append_one(
    conn: &Connection,
    index: usize,
    change: &OwnChange,
    at: DateTime<Utc>,
    sign: &SignForms,
) -> Result<u64, Error> {
    let previous: Option<String> = conn
        .prepare_cached("SELECT releasable_to FROM watchlist_own WHERE ref = ?1")?
        .query_row([&change.reference], |r| r.get(0))
        .optional()?;
    check_change(index, change, previous.is_some())?;
    let before = previous.as_deref().map(unlines).unwrap_or_default();
    let seq: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) + 1 FROM watchlist_log")?
        .query_row([], |r| r.get(0))?;
    let forms = sign(seq_of(seq), change, &before);
    conn.prepare_cached(
        "INSERT INTO watchlist_log (seq, ref, authored_at, full, withdrawal, stub)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        seq,
        change.reference,
        ms(at),
        forms.full,
        forms.withdrawal,
        forms.stub
    ])?;
    let mut reader = conn.prepare_cached(
        "INSERT INTO watchlist_log_readers (reader, seq, view) VALUES (?1, ?2, ?3)",
    )?;
    for r in &forms.full_to {
        reader.execute(params![r, seq, View::Full.code()])?;
    }
    if forms.withdrawal.is_some() {
        for r in &forms.withdrawn_from {
            reader.execute(params![r, seq, View::Withdrawal.code()])?;
        }
    }
    match &change.op {
        OwnOp::Add(e) | OwnOp::Update(e) => {
            conn.prepare_cached(
                "INSERT INTO watchlist_own (ref, entry, releasable_to, seq, changed_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (ref) DO UPDATE SET entry = excluded.entry,
                   releasable_to = excluded.releasable_to, seq = excluded.seq,
                   changed_at = excluded.changed_at, expires_at = excluded.expires_at",
            )?
            .execute(params![
                change.reference,
                e.entry,
                lines(&e.releasable_to),
                seq,
                ms(at),
                opt_ms(e.expires_at)
            ])?;
        }
        OwnOp::Remove => {
            conn.prepare_cached("DELETE FROM watchlist_own WHERE ref = ?1")?
                .execute([&change.reference])?;
        }
    }
    Ok(seq_of(seq))
}

fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn own_head(conn: &Connection) -> Result<LogHead, Error> {
    let row: Option<(i64, i64)> = conn
        .prepare_cached("SELECT seq, authored_at FROM watchlist_log ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match row {
        None => LogHead::default(),
        Some((seq, at)) => LogHead {
            seq: seq_of(seq),
            at: Some(from_ms(at)),
        },
    })
}

fn cursor_seq(conn: &Connection, owner: &str) -> Result<u64, Error> {
    let seq: Option<i64> = conn
        .prepare_cached("SELECT seq FROM watchlist_cursors WHERE owner = ?1")?
        .query_row([owner], |r| r.get(0))
        .optional()?;
    Ok(seq.map(seq_of).unwrap_or(0))
}

#[async_trait]
impl WatchlistStore for Sqlite {
    async fn append_own_watchlist(
        &self,
        changes: Vec<OwnChange>,
        at: DateTime<Utc>,
        sign: SignForms,
    ) -> Result<Vec<u64>, Error> {
        self.write(move |conn| {
            changes
                .iter()
                .enumerate()
                .map(|(i, c)| append_one(conn, i, c, at, &sign))
                .collect()
        })
        .await
    }

    async fn own_watchlist_page(
        &self,
        reader: String,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<(u64, Vec<u8>)>, LogHead), Error> {
        self.read_snapshot(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT l.seq, r.view, l.full, l.withdrawal, l.stub FROM watchlist_log l
                 LEFT JOIN watchlist_log_readers r ON r.seq = l.seq AND r.reader = ?1
                 WHERE l.seq > ?2 ORDER BY l.seq LIMIT ?3",
            )?;
            let rows = stmt.query_map(
                params![
                    reader,
                    sql_seq(after),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                |r| {
                    let seq: i64 = r.get(0)?;
                    let served = match r.get::<_, Option<View>>(1)? {
                        Some(View::Full) => r.get(2)?,
                        Some(View::Withdrawal) => {
                            r.get::<_, Option<Vec<u8>>>(3)?.unwrap_or(r.get(4)?)
                        }
                        None => r.get(4)?,
                    };
                    Ok((seq_of(seq), served))
                },
            )?;
            let page = rows.collect::<Result<Vec<_>, _>>()?;
            Ok((page, own_head(conn)?))
        })
        .await
    }

    async fn own_watchlist_head(&self) -> Result<LogHead, Error> {
        self.read(own_head).await
    }

    async fn own_watchlist_refs_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, String)>, Error> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, ref FROM watchlist_log WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let rows = stmt.query_map(
                params![sql_seq(after), i64::try_from(limit).unwrap_or(i64::MAX)],
                |r| Ok((seq_of(r.get(0)?), r.get(1)?)),
            )?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
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
        self.read(move |conn| {
            let expired = conn
                .prepare_cached(
                    "SELECT ref FROM watchlist_own WHERE expires_at IS NOT NULL AND expires_at <= ?1
                     ORDER BY ref",
                )?
                .query_map([ms(now)], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            let next: Option<i64> = conn
                .prepare_cached(
                    "SELECT MIN(expires_at) FROM watchlist_own WHERE expires_at IS NOT NULL AND expires_at > ?1",
                )?
                .query_row([ms(now)], |r| r.get(0))?;
            Ok((expired, next.map(from_ms)))
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
        self.write(move |conn| {
            let current = cursor_seq(conn, &owner)?;
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
                match &c.op {
                    HeldOp::Put {
                        reference,
                        entry,
                        envelope,
                        expires_at,
                    } => {
                        conn.prepare_cached(
                            "INSERT INTO watchlist_held (owner, ref, entry, envelope, seq, changed_at, expires_at)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                             ON CONFLICT (owner, ref) DO UPDATE SET entry = excluded.entry,
                               envelope = excluded.envelope, seq = excluded.seq,
                               changed_at = excluded.changed_at, expires_at = excluded.expires_at",
                        )?
                        .execute(params![
                            owner,
                            reference,
                            entry,
                            envelope,
                            sql_seq(c.seq),
                            ms(c.authored_at),
                            opt_ms(*expires_at)
                        ])?;
                    }
                    HeldOp::Remove { reference } => {
                        conn.prepare_cached("DELETE FROM watchlist_held WHERE owner = ?1 AND ref = ?2")?
                            .execute(params![owner, reference])?;
                    }
                    HeldOp::Skip => {}
                }
                applied = LogHead {
                    seq: c.seq,
                    at: Some(c.authored_at),
                };
            }
            conn.prepare_cached(
                "DELETE FROM watchlist_held WHERE owner = ?1 AND expires_at IS NOT NULL AND expires_at <= ?2",
            )?
            .execute(params![owner, ms(now)])?;
            let head = if head.seq >= applied.seq { head } else { applied };
            conn.prepare_cached(
                "INSERT INTO watchlist_cursors (owner, seq, seq_at, head, head_at, heard_at, refusal)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL)
                 ON CONFLICT (owner) DO UPDATE SET
                   seq = excluded.seq, seq_at = COALESCE(excluded.seq_at, seq_at),
                   head = excluded.head, head_at = excluded.head_at,
                   heard_at = excluded.heard_at, refusal = NULL",
            )?
            .execute(params![
                owner,
                sql_seq(applied.seq),
                opt_ms(applied.at),
                sql_seq(head.seq),
                opt_ms(head.at),
                ms(now)
            ])?;
            Ok(applied)
        })
        .await
    }

    async fn note_watchlist_head(
        &self,
        owner: String,
        head: LogHead,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO watchlist_cursors (owner, head, head_at, heard_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (owner) DO UPDATE SET head = MAX(head, excluded.head),
                   head_at = CASE WHEN excluded.head >= head THEN excluded.head_at ELSE head_at END,
                   heard_at = excluded.heard_at",
            )?
            .execute(params![owner, sql_seq(head.seq), opt_ms(head.at), ms(now)])?;
            Ok(())
        })
        .await
    }

    async fn note_watchlist_refusal(&self, owner: String, reason: String) -> Result<(), Error> {
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO watchlist_cursors (owner, refusal) VALUES (?1, ?2)
                 ON CONFLICT (owner) DO UPDATE SET refusal = excluded.refusal",
            )?
            .execute(params![owner, reason])?;
            Ok(())
        })
        .await
    }

    async fn watchlist_cursor_seq(&self, owner: String) -> Result<u64, Error> {
        self.read(move |conn| cursor_seq(conn, &owner)).await
    }

    async fn watchlist_cursors(&self, now: DateTime<Utc>) -> Result<Vec<Cursor>, Error> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT c.owner, c.seq, c.seq_at, c.head, c.head_at, c.heard_at, c.refusal,
                   (SELECT COUNT(*) FROM watchlist_held h WHERE h.owner = c.owner
                      AND (h.expires_at IS NULL OR h.expires_at > ?1))
                 FROM watchlist_cursors c ORDER BY c.owner",
            )?;
            let rows = stmt.query_map([ms(now)], |r| {
                Ok(Cursor {
                    owner: r.get(0)?,
                    applied: LogHead {
                        seq: seq_of(r.get(1)?),
                        at: r.get::<_, Option<i64>>(2)?.map(from_ms),
                    },
                    head: LogHead {
                        seq: seq_of(r.get(3)?),
                        at: r.get::<_, Option<i64>>(4)?.map(from_ms),
                    },
                    heard_at: r.get::<_, Option<i64>>(5)?.map(from_ms),
                    refusal: r.get(6)?,
                    held: seq_of(r.get(7)?),
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn held_watchlist(
        &self,
        owner: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Vec<HeldEntry>, Error> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT owner, ref, entry, seq, changed_at FROM watchlist_held
                 WHERE (?1 IS NULL OR owner = ?1) AND (expires_at IS NULL OR expires_at > ?2)
                 ORDER BY owner, ref",
            )?;
            let rows = stmt.query_map(params![owner, ms(now)], |r| {
                Ok(HeldEntry {
                    owner: r.get(0)?,
                    reference: r.get(1)?,
                    entry: r.get(2)?,
                    seq: seq_of(r.get(3)?),
                    changed_at: from_ms(r.get(4)?),
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn own_watchlist_after(
        &self,
        owner: String,
        after: String,
        limit: usize,
    ) -> Result<Vec<HeldEntry>, Error> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT ref, entry, seq, changed_at FROM watchlist_own WHERE ref > ?1
                 ORDER BY ref LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![after, sql_limit(limit)], |r| {
                Ok(HeldEntry {
                    owner: owner.clone(),
                    reference: r.get(0)?,
                    entry: r.get(1)?,
                    seq: seq_of(r.get(2)?),
                    changed_at: from_ms(r.get(3)?),
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn held_watchlist_after(
        &self,
        after: (String, String),
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<HeldEntry>, Error> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT owner, ref, entry, seq, changed_at FROM watchlist_held
                 WHERE (owner, ref) > (?1, ?2) AND (expires_at IS NULL OR expires_at > ?3)
                 ORDER BY owner, ref LIMIT ?4",
            )?;
            let rows =
                stmt.query_map(params![after.0, after.1, ms(now), sql_limit(limit)], |r| {
                    Ok(HeldEntry {
                        owner: r.get(0)?,
                        reference: r.get(1)?,
                        entry: r.get(2)?,
                        seq: seq_of(r.get(3)?),
                        changed_at: from_ms(r.get(4)?),
                    })
                })?;
            Ok(rows.collect::<Result<_, _>>()?)
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
        self.read_snapshot(move |conn| {
            let mut own_stmt = conn.prepare_cached(
                "SELECT entry, seq, changed_at FROM watchlist_own WHERE ref = ?1",
            )?;
            let mut held_stmt = conn.prepare_cached(
                "SELECT entry, seq, changed_at FROM watchlist_held WHERE owner = ?1 AND ref = ?2",
            )?;
            let mut found = Vec::with_capacity(keys.len());
            for (owner, reference) in keys {
                let row = |r: &rusqlite::Row<'_>| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        seq_of(r.get(1)?),
                        from_ms(r.get(2)?),
                    ))
                };
                let row = if owner == own {
                    own_stmt.query_row([&reference], row).optional()?
                } else {
                    held_stmt
                        .query_row(params![owner, reference], row)
                        .optional()?
                };
                found.push(row.map(|(entry, seq, changed_at)| HeldEntry {
                    owner,
                    reference,
                    entry,
                    seq,
                    changed_at,
                }));
            }
            Ok(found)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Store, StoreOptions};
    use std::sync::Arc;

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

    fn entry(to: &[&str]) -> OwnEntry {
        OwnEntry {
            entry: b"entry".to_vec(),
            releasable_to: to.iter().map(|s| (*s).to_owned()).collect(),
            expires_at: None,
        }
    }

    fn change(reference: &str, op: OwnOp) -> OwnChange {
        OwnChange {
            reference: reference.into(),
            op,
        }
    }

    /// Seqs are gapless across writes; each reader gets its own form; a
    /// failing change of a batch leaves nothing of the batch behind.
    #[tokio::test]
    async fn the_log_is_gapless_and_served_per_reader() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let now = Utc::now();
        let seqs = store
            .append_own_watchlist(
                vec![
                    change("A", OwnOp::Add(entry(&["FR", "DE"]))),
                    change("B", OwnOp::Add(entry(&["DE"]))),
                ],
                now,
                forms(),
            )
            .await
            .unwrap();
        assert_eq!(seqs, vec![1, 2]);
        // Narrowing A to FR withdraws it from DE.
        store
            .append_own_watchlist(
                vec![change("A", OwnOp::Update(entry(&["FR"])))],
                now,
                forms(),
            )
            .await
            .unwrap();
        let refused = store
            .append_own_watchlist(
                vec![
                    change("C", OwnOp::Add(entry(&["FR"]))),
                    change("A", OwnOp::Add(entry(&["FR"]))),
                ],
                now,
                forms(),
            )
            .await;
        assert!(matches!(refused, Err(Error::Exists(m)) if m.starts_with("entries[1]")));
        let missing = store
            .append_own_watchlist(vec![change("Z", OwnOp::Remove)], now, forms())
            .await;
        assert!(matches!(missing, Err(Error::NotFound(_))), "{missing:?}");

        let text = |page: Vec<(u64, Vec<u8>)>| -> Vec<String> {
            page.into_iter()
                .map(|(_, b)| String::from_utf8(b).unwrap())
                .collect()
        };
        let (fr, head) = store.own_watchlist_page("FR".into(), 0, 10).await.unwrap();
        assert_eq!(head.seq, 3);
        assert_eq!(text(fr), ["full 1 A", "stub 2", "full 3 A"]);
        let (de, _) = store.own_watchlist_page("DE".into(), 0, 10).await.unwrap();
        assert_eq!(text(de), ["full 1 A", "full 2 B", "withdrawal 3"]);
        let (page, _) = store.own_watchlist_page("DE".into(), 1, 1).await.unwrap();
        assert_eq!(text(page), ["full 2 B"]);
        let own = store.own_watchlist("TR".into()).await.unwrap();
        assert_eq!(
            own.iter().map(|e| e.reference.as_str()).collect::<Vec<_>>(),
            ["A", "B"]
        );
    }

    #[tokio::test]
    async fn a_holder_applies_pages_from_its_cursor_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let now = Utc::now();
        let put = |seq: u64, r: &str| HeldChange {
            seq,
            authored_at: now,
            op: HeldOp::Put {
                reference: r.into(),
                entry: b"e".to_vec(),
                envelope: b"env".to_vec(),
                expires_at: None,
            },
        };
        let head = LogHead {
            seq: 3,
            at: Some(now),
        };
        assert_eq!(store.watchlist_cursor_seq("TR".into()).await.unwrap(), 0);
        store
            .apply_held_watchlist("TR".into(), 0, vec![put(1, "A"), put(2, "B")], head, now)
            .await
            .unwrap();
        assert_eq!(store.watchlist_cursor_seq("TR".into()).await.unwrap(), 2);
        // A page pulled after an old cursor is not applied.
        let stale = store
            .apply_held_watchlist("TR".into(), 0, vec![put(1, "A")], head, now)
            .await;
        assert!(stale.is_err());
        let removal = HeldChange {
            seq: 3,
            authored_at: now,
            op: HeldOp::Remove {
                reference: "A".into(),
            },
        };
        store
            .apply_held_watchlist("TR".into(), 2, vec![removal], head, now)
            .await
            .unwrap();
        let held = store.held_watchlist(None, now).await.unwrap();
        assert_eq!(
            held.iter()
                .map(|e| e.reference.as_str())
                .collect::<Vec<_>>(),
            ["B"]
        );
        let cursors = store.watchlist_cursors(now).await.unwrap();
        assert_eq!(cursors[0].applied.seq, 3);
        assert_eq!(cursors[0].held, 1);
        assert_eq!(store.watchlist_cursor_seq("TR".into()).await.unwrap(), 3);
        assert_eq!(store.watchlist_cursor_seq("DE".into()).await.unwrap(), 0);
    }

    /// The build's pages cover every entry once, by key, and skip expired
    /// held ones; a read by (owner, ref) finds own and held entries and
    /// says which are gone.
    #[tokio::test]
    async fn entries_are_read_by_page_and_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let now = Utc::now();
        let own: Vec<_> = ["A", "B", "C"]
            .iter()
            .map(|r| change(r, OwnOp::Add(entry(&["FR"]))))
            .collect();
        store.append_own_watchlist(own, now, forms()).await.unwrap();
        let put = |seq: u64, r: &str, expires_at| HeldChange {
            seq,
            authored_at: now,
            op: HeldOp::Put {
                reference: r.into(),
                entry: format!("held {r}").into_bytes(),
                envelope: b"env".to_vec(),
                expires_at,
            },
        };
        let changes = vec![
            put(1, "X", None),
            put(2, "Y", Some(now + chrono::Duration::hours(1))),
            put(3, "Z", None),
        ];
        let head = LogHead {
            seq: 3,
            at: Some(now),
        };
        store
            .apply_held_watchlist("DE".into(), 0, changes, head, now)
            .await
            .unwrap();

        let first = store
            .own_watchlist_after("TR".into(), String::new(), 2)
            .await
            .unwrap();
        assert_eq!(
            first
                .iter()
                .map(|e| e.reference.as_str())
                .collect::<Vec<_>>(),
            ["A", "B"]
        );
        assert_eq!(first[0].owner, "TR");
        let rest = store
            .own_watchlist_after("TR".into(), "B".into(), 2)
            .await
            .unwrap();
        assert_eq!(
            rest.iter()
                .map(|e| e.reference.as_str())
                .collect::<Vec<_>>(),
            ["C"]
        );

        // Y has expired two hours on.
        let later = now + chrono::Duration::hours(2);
        let held = store
            .held_watchlist_after((String::new(), String::new()), later, 1)
            .await
            .unwrap();
        assert_eq!(held[0].reference, "X");
        let held = store
            .held_watchlist_after(("DE".into(), "X".into()), later, 5)
            .await
            .unwrap();
        assert_eq!(
            held.iter()
                .map(|e| e.reference.as_str())
                .collect::<Vec<_>>(),
            ["Z"]
        );

        let keys = vec![
            ("DE".to_owned(), "Z".to_owned()),
            ("TR".to_owned(), "B".to_owned()),
            ("TR".to_owned(), "Q".to_owned()),
            ("FR".to_owned(), "X".to_owned()),
        ];
        let found = store.watchlist_entries("TR".into(), keys).await.unwrap();
        let z = found[0].as_ref().unwrap();
        assert_eq!(
            (z.owner.as_str(), z.entry.as_slice(), z.seq),
            ("DE", &b"held Z"[..], 3)
        );
        let b = found[1].as_ref().unwrap();
        assert_eq!((b.reference.as_str(), b.seq), ("B", 2));
        assert!(found[2].is_none() && found[3].is_none());
    }
}
