//! Where the checker's rows come from: the same rows of the same tables,
//! read from SQLite or from PostgreSQL. [`super::reader`] checks what an
//! [`AuditRows`] gives it, whichever backend, so that there is one check.
//!
//! Both sources read inside a transaction their caller opened (a SQLite
//! read transaction, a PostgreSQL REPEATABLE READ one): every query of one
//! check sees the same snapshot.

use std::collections::HashMap;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::append::{ENTRY_EVENT_COLUMNS, EVENT_COLUMNS, audit_event};
use super::encoding::{AuditEvent, EvidenceKind, Location};
use crate::error::Error;

/// One `audit_log` row as stored, with the event its `event_id` names as
/// the events table holds it now (none if it is gone).
#[derive(Debug, Clone)]
pub(crate) struct StoredEntry {
    pub(crate) seq: i64,
    pub(crate) event: AuditEvent,
    pub(crate) evidence: Vec<u8>,
    pub(crate) prev_hash: Vec<u8>,
    pub(crate) hash: Vec<u8>,
    pub(crate) now: Option<AuditEvent>,
}

/// The rows a check reads. Not `Send`: a check runs on one connection,
/// in one transaction.
#[async_trait(?Send)]
pub(crate) trait AuditRows {
    /// How many entries the chain has.
    async fn entry_count(&mut self) -> Result<u64, Error>;
    /// Up to `limit` entries after seq `after`, in seq order.
    async fn entries_after(&mut self, after: i64, limit: i64) -> Result<Vec<StoredEntry>, Error>;
    /// The envelope stored at each of `ls`, in order: none where the row
    /// or its column is not there.
    async fn envelopes(&mut self, ls: &[Location]) -> Result<Vec<Option<Vec<u8>>>, Error>;
    /// The events recorded by the entries within 64 of `seq` (not `seq`).
    async fn entries_near(&mut self, seq: i64) -> Result<Vec<(i64, AuditEvent)>, Error>;
    /// Every event id in the events table.
    async fn event_ids(&mut self) -> Result<Vec<i64>, Error>;
    /// Every stored location of envelopes of `kind`.
    async fn inventory(&mut self, kind: EvidenceKind) -> Result<Vec<Location>, Error>;
}

fn entries_query() -> String {
    // The event as it is now comes with its entry: one query per page,
    // not one per entry.
    let now: Vec<String> = EVENT_COLUMNS
        .split(", ")
        .map(|c| format!("e.{c}"))
        .collect();
    let recorded: Vec<String> = ENTRY_EVENT_COLUMNS
        .split(", ")
        .map(|c| format!("a.{c}"))
        .collect();
    format!(
        "SELECT a.seq, {}, a.evidence, a.prev_hash, a.hash, {} FROM audit_log a
           LEFT JOIN events e ON e.id = a.event_id
          WHERE a.seq > ?1 ORDER BY a.seq LIMIT ?2",
        recorded.join(", "),
        now.join(", ")
    )
}

fn near_query() -> String {
    format!(
        "SELECT seq, {ENTRY_EVENT_COLUMNS} FROM audit_log WHERE seq BETWEEN ?1 - 64 AND ?1 + 64 AND seq != ?1"
    )
}

/// SQLite's `?N` parameters as PostgreSQL's `$N`.
fn dollars(sql: &str) -> String {
    sql.replace('?', "$")
}

/// A SQLite store's rows, read on `conn` (inside a read transaction).
pub(crate) struct SqliteRows<'a> {
    pub(crate) conn: &'a rusqlite::Connection,
}

#[async_trait(?Send)]
impl AuditRows for SqliteRows<'_> {
    async fn entry_count(&mut self) -> Result<u64, Error> {
        let total: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get(0))?;
        Ok(u64::try_from(total).unwrap_or(0))
    }

    async fn entries_after(&mut self, after: i64, limit: i64) -> Result<Vec<StoredEntry>, Error> {
        let mut stmt = self.conn.prepare_cached(&entries_query())?;
        let rows = stmt.query_map(params![after, limit], |r| {
            let now_id: Option<i64> = r.get(11)?;
            Ok(StoredEntry {
                seq: r.get(0)?,
                event: audit_event(r, 1)?,
                evidence: r.get(8)?,
                prev_hash: r.get(9)?,
                hash: r.get(10)?,
                now: match now_id {
                    Some(_) => Some(audit_event(r, 11)?),
                    None => None,
                },
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    async fn envelopes(&mut self, ls: &[Location]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        let mut found = Vec::with_capacity(ls.len());
        for l in ls {
            found.push(
                self.conn
                    .prepare_cached(l.kind.select())?
                    .query_row(params![l.key, l.key2], |r| r.get(0))
                    .optional()?
                    .flatten(),
            );
        }
        Ok(found)
    }

    async fn entries_near(&mut self, seq: i64) -> Result<Vec<(i64, AuditEvent)>, Error> {
        Ok(self
            .conn
            .prepare_cached(&near_query())?
            .query_map([seq], |r| Ok((r.get(0)?, audit_event(r, 1)?)))?
            .collect::<Result<_, _>>()?)
    }

    async fn event_ids(&mut self) -> Result<Vec<i64>, Error> {
        Ok(self
            .conn
            .prepare("SELECT id FROM events ORDER BY id")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?)
    }

    async fn inventory(&mut self, kind: EvidenceKind) -> Result<Vec<Location>, Error> {
        Ok(self
            .conn
            .prepare(kind.inventory())?
            .query_map([], |r| {
                Ok(Location {
                    kind,
                    key: r.get(0)?,
                    key2: r.get(1)?,
                })
            })?
            .collect::<Result<_, _>>()?)
    }
}

/// A PostgreSQL store's rows, read in `tx` (REPEATABLE READ, or the
/// migration's own write transaction).
pub(crate) struct PostgresRows<'a> {
    tx: &'a tokio_postgres::Transaction<'a>,
    /// Each kind's envelope query, prepared once.
    selects: HashMap<EvidenceKind, tokio_postgres::Statement>,
}

impl<'a> PostgresRows<'a> {
    pub(crate) fn new(tx: &'a tokio_postgres::Transaction<'a>) -> Self {
        Self {
            tx,
            selects: HashMap::new(),
        }
    }
}

fn pg_event(r: &tokio_postgres::Row, first: usize) -> Result<AuditEvent, tokio_postgres::Error> {
    Ok(AuditEvent {
        id: r.try_get(first)?,
        at: r.try_get(first + 1)?,
        kind: r.try_get(first + 2)?,
        alert_id: r.try_get(first + 3)?,
        agency: r.try_get(first + 4)?,
        direction: r.try_get(first + 5)?,
        detail: r.try_get(first + 6)?,
    })
}

#[async_trait(?Send)]
impl AuditRows for PostgresRows<'_> {
    async fn entry_count(&mut self) -> Result<u64, Error> {
        let total: i64 = self
            .tx
            .query_one("SELECT COUNT(*) FROM audit_log", &[])
            .await?
            .try_get(0)?;
        Ok(u64::try_from(total).unwrap_or(0))
    }

    async fn entries_after(&mut self, after: i64, limit: i64) -> Result<Vec<StoredEntry>, Error> {
        let rows = self
            .tx
            .query(&dollars(&entries_query()), &[&after, &limit])
            .await?;
        let mut entries = Vec::with_capacity(rows.len());
        for r in &rows {
            let now_id: Option<i64> = r.try_get(11)?;
            entries.push(StoredEntry {
                seq: r.try_get(0)?,
                event: pg_event(r, 1)?,
                evidence: r.try_get(8)?,
                prev_hash: r.try_get(9)?,
                hash: r.try_get(10)?,
                now: match now_id {
                    Some(_) => Some(pg_event(r, 11)?),
                    None => None,
                },
            });
        }
        Ok(entries)
    }

    async fn envelopes(&mut self, ls: &[Location]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        for kind in EvidenceKind::ALL {
            if !self.selects.contains_key(&kind) && ls.iter().any(|l| l.kind == kind) {
                let statement = self.tx.prepare(&dollars(kind.select())).await?;
                self.selects.insert(kind, statement);
            }
        }
        // Sent together: tokio-postgres pipelines the queries of one
        // connection, so a page costs a round trip, not one per envelope.
        let selects = &self.selects;
        let tx = self.tx;
        let queries = ls.iter().map(|l| async move {
            let Some(statement) = selects.get(&l.kind) else {
                return Ok(None);
            };
            match tx.query_opt(statement, &[&l.key, &l.key2]).await? {
                Some(r) => Ok::<_, Error>(r.try_get(0)?),
                None => Ok(None),
            }
        });
        futures::future::try_join_all(queries).await
    }

    async fn entries_near(&mut self, seq: i64) -> Result<Vec<(i64, AuditEvent)>, Error> {
        // `$1 - 64` alone would make the parameter an int4.
        let sql = dollars(&near_query()).replace("$1", "$1::BIGINT");
        let rows = self.tx.query(&sql, &[&seq]).await?;
        let mut near = Vec::with_capacity(rows.len());
        for r in &rows {
            near.push((r.try_get(0)?, pg_event(r, 1)?));
        }
        Ok(near)
    }

    async fn event_ids(&mut self) -> Result<Vec<i64>, Error> {
        let rows = self
            .tx
            .query("SELECT id FROM events ORDER BY id", &[])
            .await?;
        let mut ids = Vec::with_capacity(rows.len());
        for r in &rows {
            ids.push(r.try_get(0)?);
        }
        Ok(ids)
    }

    async fn inventory(&mut self, kind: EvidenceKind) -> Result<Vec<Location>, Error> {
        // `''` is of unknown type in PostgreSQL's eyes: say it is text.
        let sql = kind.inventory().replace("''", "''::text");
        let rows = self.tx.query(&sql, &[]).await?;
        let mut all = Vec::with_capacity(rows.len());
        for r in &rows {
            all.push(Location {
                kind,
                key: r.try_get(0)?,
                key2: r.try_get(1)?,
            });
        }
        Ok(all)
    }
}
