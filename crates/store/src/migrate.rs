//! Moving an agency's store from SQLite to PostgreSQL
//! (`tocsin store migrate`).
//!
//! The PostgreSQL schema has the same tables and columns as SQLite's (its
//! migration 001 says so, and `tests/postgres_schema.rs` holds them
//! together), so the move is a copy, row for row and value for value:
//! integers, text and blobs go over as they are, in PostgreSQL's binary
//! COPY format, and the audit chain, which hashes the raw values, checks
//! on the far side exactly as it did on the near one.
//!
//! [`sqlite_to_postgres`] does, in order:
//! 1. opens the SQLite store read-only (it is never written) at the
//!    binary's latest schema version, and starts one read transaction:
//!    the check and the copy read the same snapshot;
//! 2. checks the source's audit chain (the store's check, without
//!    signatures) and refuses a source with any finding;
//! 3. migrates the target's schema, then in ONE transaction: locks the
//!    sequences (as every write of a front node does), refuses a target
//!    that holds any row, copies every table, sets the `sequences` so the
//!    next event id, audit seq and watchlist seq follow the copied ones,
//!    and checks the target's chain in the same transaction: the same
//!    entries, events and head as the source, or the transaction is
//!    rolled back. A failure anywhere leaves the target without a row.

use std::path::Path;
use std::pin::pin;

use rusqlite::types::ValueRef;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use crate::audit::{PostgresRows, SqliteRows, StoreCheck, check_rows, open_sqlite};

/// The tables copied, parents before the children whose foreign keys
/// name them. Every table of the SQLite schema is here; `sequences`,
/// `leases` and `schema_migrations` are PostgreSQL's own.
pub const TABLES: &[&str] = &[
    "alerts",
    "deliveries",
    "acknowledgements",
    "messages",
    "events",
    "received_messages",
    "subject_keys",
    "subject_flags",
    "audit_log",
    "peer_blocks",
    "watchlist_log",
    "watchlist_log_readers",
    "watchlist_own",
    "watchlist_held",
    "watchlist_cursors",
    "hit_reports",
];

/// The PostgreSQL-only tables that must be empty too.
const TARGET_ONLY: &[&str] = &["leases"];

/// Each counter of `sequences`, and the column whose values it hands out.
const SEQUENCES: &[(&str, &str, &str)] = &[
    ("events", "events", "id"),
    ("audit_log", "audit_log", "seq"),
    ("watchlist_log", "watchlist_log", "seq"),
];

/// Why a migration did not happen. Nothing was written to the target
/// (except its schema, which a fresh store would get anyway).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The source store could not be opened or read.
    #[error("source store: {0}")]
    Source(crate::Error),
    /// The source's schema is not this binary's latest.
    #[error(
        "source store {path} has SQLite schema version {found}, not this binary's {latest}: {advice}"
    )]
    SourceVersion {
        /// The database file.
        path: String,
        /// Its `user_version`.
        found: i64,
        /// This binary's.
        latest: i64,
        /// What to do.
        advice: &'static str,
    },
    /// The source's audit log fails its check: it is not copied.
    #[error(
        "source store fails audit verification ({count} problem(s), the first at {first}): not migrated; run `tocsin audit verify` on it"
    )]
    SourceFails {
        /// How many problems.
        count: usize,
        /// The first, as text.
        first: String,
    },
    /// The target database holds rows already.
    #[error(
        "target database is not empty: table {table} holds rows; migrate into an empty database only"
    )]
    TargetNotEmpty {
        /// The first table found with rows.
        table: String,
    },
    /// The two schemas do not line up (a column missing or of another
    /// type): this binary's SQLite and PostgreSQL schemas disagree.
    #[error("table {table}: {what}")]
    Schema {
        /// The table.
        table: String,
        /// What does not line up.
        what: String,
    },
    /// A stored value is not of its column's type.
    #[error("table {table}, column {column}, row {row} of the source: {what}")]
    Value {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// The row's place in the source table's order, from 1.
        row: u64,
        /// What is wrong.
        what: String,
    },
    /// The copy's row count is not the source's.
    #[error("table {table}: {copied} rows copied, the source has {source_rows}")]
    Count {
        /// The table.
        table: String,
        /// Rows COPY wrote.
        copied: u64,
        /// Rows the source holds.
        source_rows: u64,
    },
    /// The target's chain, checked before the commit, is not the source's.
    #[error(
        "target fails the audit check after the copy ({what}): rolled back, the target is empty"
    )]
    TargetFails {
        /// What differs.
        what: String,
    },
    /// SQLite failed while reading the source.
    #[error("source store: {0}")]
    Sqlite(rusqlite::Error),
    /// PostgreSQL failed: connecting, migrating or copying.
    #[error("target database: {0}")]
    Postgres(crate::postgres::Error),
    /// The target's check failed to run.
    #[error("target database: {0}")]
    Store(crate::Error),
}

// The causes' text is in each variant's own (they are not `#[source]`), so
// that a report of the whole chain says it once.
impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Sqlite(e)
    }
}

impl From<crate::postgres::Error> for Error {
    fn from(e: crate::postgres::Error) -> Self {
        Error::Postgres(e)
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        Error::Postgres(crate::postgres::Error::Postgres(e))
    }
}

/// What a migration reports as it goes.
#[derive(Debug, Clone)]
pub enum Progress {
    /// Checking an audit chain (`target` false: the source's): entries
    /// done of all.
    Checking {
        /// The target's chain, or the source's.
        target: bool,
        /// Entries checked.
        done: u64,
        /// Entries in all.
        total: u64,
    },
    /// Copying `table`: rows done of all.
    Copying {
        /// The table.
        table: &'static str,
        /// Rows copied so far.
        done: u64,
        /// Rows in all.
        total: u64,
    },
}

/// What was moved.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The source's database file.
    pub source: String,
    /// The target database, without a password.
    pub target: String,
    /// Rows copied per table, in [`TABLES`] order.
    pub tables: Vec<(&'static str, u64)>,
    /// The source's audit chain, checked before the copy.
    pub before: StoreCheck,
    /// The target's, checked in the copy's transaction.
    pub after: StoreCheck,
    /// The next event id, audit seq and watchlist seq the target hands out.
    pub next: Vec<(&'static str, i64)>,
}

/// Rows per COPY progress report.
const REPORT_EVERY: u64 = 10_000;

/// Moves the SQLite store in `from` (a data directory) into the empty
/// PostgreSQL database at `to` (see the module's documentation). The
/// SQLite store is opened read-only and left as it was.
///
/// Blocking: it reads SQLite on the calling thread. The returned future
/// is not `Send` (it holds the SQLite transaction): run it with
/// `block_on`, or on a current-thread runtime.
pub async fn sqlite_to_postgres(
    from: &Path,
    to: &str,
    mut progress: impl FnMut(Progress),
) -> Result<Summary, Error> {
    let mut conn = open_sqlite(from).map_err(Error::Source)?;
    let path = crate::sqlite::schema::database_path(from)
        .display()
        .to_string();
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let latest = i64::try_from(crate::sqlite::db::migrations().len()).unwrap_or(i64::MAX);
    if found != latest {
        return Err(Error::SourceVersion {
            path,
            found,
            latest,
            advice: if found < latest {
                "start its node once with this binary (it migrates the store), then migrate it to PostgreSQL"
            } else {
                "it was written by a newer tocsin: migrate it with that one"
            },
        });
    }
    // One snapshot for the check and the copy, should a node still run.
    let src = conn.transaction()?;
    let before = check_rows(
        &mut SqliteRows { conn: &src },
        |_, _| {},
        |done, total| {
            progress(Progress::Checking {
                target: false,
                done,
                total,
            })
        },
    )
    .await
    .map_err(Error::Source)?;
    if let Some(first) = before.findings.first() {
        return Err(Error::SourceFails {
            count: before.findings.len(),
            first: format!("entry {}: {}: {}", first.seq, first.problem, first.detail),
        });
    }
    // Every table the source has is one the copy knows: a table added to
    // the SQLite schema and not here would otherwise be left behind.
    let source_tables: Vec<String> = src
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if let Some(unknown) = source_tables.iter().find(|t| !TABLES.contains(&t.as_str())) {
        return Err(Error::Schema {
            table: unknown.clone(),
            what: "is in the source store, and this binary does not know how to copy it".into(),
        });
    }
    for table in TABLES {
        let exists: bool = src.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
            [table],
            |r| r.get(0),
        )?;
        if !exists {
            return Err(Error::Schema {
                table: (*table).into(),
                what: "missing from the source store".into(),
            });
        }
    }

    let mut client = crate::postgres::pool::connect_one(to).await?;
    crate::postgres::schema::migrate(&mut client).await?;
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::ReadCommitted)
        .start()
        .await?;
    // What every write of a front node locks first: none can write
    // between the emptiness check and the commit.
    tx.batch_execute("SELECT next FROM sequences FOR UPDATE")
        .await?;
    for table in TABLES.iter().chain(TARGET_ONLY) {
        let any: bool = tx
            .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {table})"), &[])
            .await?
            .try_get(0)?;
        if any {
            return Err(Error::TargetNotEmpty {
                table: (*table).into(),
            });
        }
    }
    let used: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM sequences WHERE next != 1)",
            &[],
        )
        .await?
        .try_get(0)?;
    if used {
        return Err(Error::TargetNotEmpty {
            table: "sequences".into(),
        });
    }
    // The settling trigger would rewrite `settled` as acknowledgements go
    // in; the source's values are already what it would leave, and the
    // copy keeps them as they are. DDL is transactional: a rollback
    // re-enables it too.
    tx.batch_execute("ALTER TABLE acknowledgements DISABLE TRIGGER settle_on_ack")
        .await?;
    let mut tables = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        let n = copy_table(&src, &tx, table, &mut progress).await?;
        tables.push((*table, n));
    }
    tx.batch_execute("ALTER TABLE acknowledgements ENABLE TRIGGER settle_on_ack")
        .await?;
    let mut next = Vec::with_capacity(SEQUENCES.len());
    for (name, table, column) in SEQUENCES {
        let value: i64 = tx
            .query_one(
                &format!(
                    "UPDATE sequences SET next = (SELECT COALESCE(MAX({column}), 0) + 1 FROM {table})
                      WHERE name = $1 RETURNING next"
                ),
                &[name],
            )
            .await?
            .try_get(0)?;
        next.push((*name, value));
    }
    let after = check_rows(
        &mut PostgresRows::new(&tx),
        |_, _| {},
        |done, total| {
            progress(Progress::Checking {
                target: true,
                done,
                total,
            })
        },
    )
    .await
    .map_err(Error::Store)?;
    if let Some(first) = after.findings.first() {
        return Err(Error::TargetFails {
            what: format!(
                "{} problem(s), the first at entry {}: {}: {}",
                after.findings.len(),
                first.seq,
                first.problem,
                first.detail
            ),
        });
    }
    if (after.head, after.entries, after.events, after.envelopes)
        != (before.head, before.entries, before.events, before.envelopes)
    {
        return Err(Error::TargetFails {
            what: format!(
                "{} entries, {} events, {} envelopes, head {}; the source has {}, {}, {}, head {}",
                after.entries,
                after.events,
                after.envelopes,
                head_text(after.head),
                before.entries,
                before.events,
                before.envelopes,
                head_text(before.head)
            ),
        });
    }
    tx.commit().await?;
    drop(src);
    Ok(Summary {
        source: path,
        target: crate::postgres::describe_url(to),
        tables,
        before,
        after,
        next,
    })
}

fn head_text(head: Option<(u64, [u8; 32])>) -> String {
    match head {
        None => "none".into(),
        Some((seq, hash)) => {
            let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
            format!("{seq} {hex}")
        }
    }
}

/// How a column's values go over.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Int,
    Text,
    Bytes,
}

/// One value on its way, typed for COPY.
enum Cell {
    Int(Option<i64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
}

impl Cell {
    fn sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Cell::Int(v) => v,
            Cell::Text(v) => v,
            Cell::Bytes(v) => v,
        }
    }
}

/// Copies `table`'s rows from the SQLite transaction to the PostgreSQL
/// one, by column name; returns the rows copied.
async fn copy_table(
    src: &rusqlite::Connection,
    tx: &tokio_postgres::Transaction<'_>,
    table: &'static str,
    progress: &mut impl FnMut(Progress),
) -> Result<u64, Error> {
    let schema_err = |what: String| Error::Schema {
        table: table.into(),
        what,
    };
    let source_columns: Vec<String> = src
        .prepare(&format!(
            "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
        ))?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let target: Vec<(String, String, bool)> = tx
        .query(
            "SELECT column_name::text, data_type::text, is_nullable::text = 'YES' OR column_default IS NOT NULL
               FROM information_schema.columns
              WHERE table_schema = current_schema() AND table_name = $1
              ORDER BY ordinal_position",
            &[&table],
        )
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect::<Result<_, tokio_postgres::Error>>()?;
    let mut kinds = Vec::with_capacity(source_columns.len());
    for column in &source_columns {
        let Some((_, data_type, _)) = target.iter().find(|(name, _, _)| name == column) else {
            return Err(schema_err(format!(
                "column {column} is not in the PostgreSQL table"
            )));
        };
        kinds.push(match data_type.as_str() {
            "bigint" => Kind::Int,
            "text" => Kind::Text,
            "bytea" => Kind::Bytes,
            other => {
                return Err(schema_err(format!(
                    "column {column} is of PostgreSQL type {other}, which the copy does not know"
                )));
            }
        });
    }
    if let Some((name, _, _)) = target
        .iter()
        .find(|(name, _, optional)| !optional && !source_columns.contains(name))
    {
        return Err(schema_err(format!(
            "the PostgreSQL column {name} is required and SQLite has no such column"
        )));
    }

    let total: i64 = src.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?;
    let total = u64::try_from(total).unwrap_or(0);
    // PostgreSQL quotes what needs it ("full" is a reserved word).
    let quoted: Vec<String> = source_columns
        .iter()
        .map(|c| format!("\"{}\"", c.replace('"', "\"\"")))
        .collect();
    let columns = quoted.join(", ");
    let types: Vec<Type> = kinds
        .iter()
        .map(|k| match k {
            Kind::Int => Type::INT8,
            Kind::Text => Type::TEXT,
            Kind::Bytes => Type::BYTEA,
        })
        .collect();
    let sink = tx
        .copy_in(&format!(
            "COPY {table} ({columns}) FROM STDIN (FORMAT binary)"
        ))
        .await?;
    let mut writer = pin!(BinaryCopyInWriter::new(sink, &types));
    // In the table's own order (rowid, or the key of a WITHOUT ROWID one).
    let mut stmt = src.prepare(&format!("SELECT {columns} FROM {table}"))?;
    let mut rows = stmt.query([])?;
    let mut done = 0u64;
    let mut cells: Vec<Cell> = Vec::with_capacity(kinds.len());
    while let Some(r) = rows.next()? {
        cells.clear();
        for (i, kind) in kinds.iter().enumerate() {
            let value = r.get_ref(i)?;
            let bad = |what: String| Error::Value {
                table: table.into(),
                column: source_columns[i].clone(),
                row: done + 1,
                what,
            };
            cells.push(match (kind, value) {
                (Kind::Int, ValueRef::Null) => Cell::Int(None),
                (Kind::Text, ValueRef::Null) => Cell::Text(None),
                (Kind::Bytes, ValueRef::Null) => Cell::Bytes(None),
                (Kind::Int, ValueRef::Integer(n)) => Cell::Int(Some(n)),
                (Kind::Text, ValueRef::Text(t)) => Cell::Text(Some(
                    String::from_utf8(t.to_vec())
                        .map_err(|_| bad("text that is not UTF-8".into()))?,
                )),
                (Kind::Bytes, ValueRef::Blob(b)) => Cell::Bytes(Some(b.to_vec())),
                (kind, value) => {
                    return Err(bad(format!(
                        "a SQLite {:?} value in a column the copy takes as {kind:?}",
                        value.data_type()
                    )));
                }
            });
        }
        let refs: Vec<&(dyn ToSql + Sync)> = cells.iter().map(Cell::sql).collect();
        writer.as_mut().write(&refs).await?;
        done += 1;
        if done.is_multiple_of(REPORT_EVERY) && done < total {
            progress(Progress::Copying { table, done, total });
        }
    }
    let copied = writer.finish().await?;
    progress(Progress::Copying {
        table,
        done: copied,
        total,
    });
    if copied != total {
        return Err(Error::Count {
            table: table.into(),
            copied,
            source_rows: total,
        });
    }
    Ok(copied)
}
