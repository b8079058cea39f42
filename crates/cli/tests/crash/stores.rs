//! The crash test's view of an agency's store, read beside its nodes:
//! its SQLite file (WAL lets a reader in while the node writes) or its
//! PostgreSQL database. Both have the same tables and columns, so the test
//! asks both the same SQL and gets rows of plain values.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use tokio_postgres::types::Type;

/// Where an agency's store is.
#[derive(Clone, Debug)]
pub(crate) enum Db {
    Sqlite(PathBuf),
    /// A tokio-postgres connection string.
    Postgres(String),
}

/// One value of a row.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Val {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

/// One row of an answer.
#[derive(Debug)]
pub(crate) struct Row(Vec<Val>);

impl Row {
    fn at(&self, i: usize) -> anyhow::Result<&Val> {
        self.0.get(i).with_context(|| format!("no column {i}"))
    }

    pub(crate) fn int(&self, i: usize) -> anyhow::Result<i64> {
        match self.at(i)? {
            Val::Int(n) => Ok(*n),
            other => bail!("column {i} is {other:?}, not a number"),
        }
    }

    pub(crate) fn text(&self, i: usize) -> anyhow::Result<String> {
        match self.at(i)? {
            Val::Text(t) => Ok(t.clone()),
            other => bail!("column {i} is {other:?}, not text"),
        }
    }

    pub(crate) fn opt_text(&self, i: usize) -> anyhow::Result<Option<String>> {
        match self.at(i)? {
            Val::Null => Ok(None),
            _ => self.text(i).map(Some),
        }
    }

    pub(crate) fn bytes(&self, i: usize) -> anyhow::Result<Vec<u8>> {
        match self.at(i)? {
            Val::Bytes(b) => Ok(b.clone()),
            other => bail!("column {i} is {other:?}, not bytes"),
        }
    }

    pub(crate) fn opt_bytes(&self, i: usize) -> anyhow::Result<Option<Vec<u8>>> {
        match self.at(i)? {
            Val::Null => Ok(None),
            _ => self.bytes(i).map(Some),
        }
    }
}

impl Db {
    /// The rows `sql` answers, read in one go.
    pub(crate) async fn query(&self, sql: &str) -> anyhow::Result<Vec<Row>> {
        match self {
            Db::Sqlite(path) => {
                let (path, sql) = (path.clone(), sql.to_owned());
                tokio::task::spawn_blocking(move || sqlite_rows(&path, &sql)).await?
            }
            Db::Postgres(url) => postgres_rows(url, sql).await,
        }
        .with_context(|| format!("{sql} on {}", self.name()))
    }

    /// `f` of each row `sql` answers, collected (a `Vec`, a map...).
    pub(crate) async fn rows<T, C: FromIterator<T>>(
        &self,
        sql: &str,
        f: impl FnMut(&Row) -> anyhow::Result<T>,
    ) -> anyhow::Result<C> {
        self.query(sql).await?.iter().map(f).collect()
    }

    /// The one number `sql` answers.
    pub(crate) async fn count(&self, sql: &str) -> anyhow::Result<i64> {
        let rows = self.query(sql).await?;
        rows.first().context("no row")?.int(0)
    }

    fn name(&self) -> String {
        match self {
            Db::Sqlite(path) => path.display().to_string(),
            Db::Postgres(_) => "the PostgreSQL database".into(),
        }
    }
}

fn sqlite_rows(path: &std::path::Path, sql: &str) -> anyhow::Result<Vec<Row>> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let mut stmt = conn.prepare(sql)?;
    let columns = stmt.column_count();
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut vals = Vec::with_capacity(columns);
        for i in 0..columns {
            vals.push(match row.get_ref(i)? {
                ValueRef::Null => Val::Null,
                ValueRef::Integer(n) => Val::Int(n),
                ValueRef::Text(t) => Val::Text(String::from_utf8(t.to_vec())?),
                ValueRef::Blob(b) => Val::Bytes(b.to_vec()),
                ValueRef::Real(r) => bail!("column {i} is a real number, {r}"),
            });
        }
        out.push(Row(vals));
    }
    Ok(out)
}

async fn postgres_rows(url: &str, sql: &str) -> anyhow::Result<Vec<Row>> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let driver = tokio::spawn(connection);
    let rows = client.query(sql, &[]).await;
    drop(client);
    let _ = driver.await;
    let mut out = Vec::new();
    for row in rows? {
        let mut vals = Vec::with_capacity(row.len());
        for (i, column) in row.columns().iter().enumerate() {
            let ty = column.type_();
            vals.push(if *ty == Type::INT2 {
                row.get::<_, Option<i16>>(i)
                    .map_or(Val::Null, |n| Val::Int(n.into()))
            } else if *ty == Type::INT4 {
                row.get::<_, Option<i32>>(i)
                    .map_or(Val::Null, |n| Val::Int(n.into()))
            } else if *ty == Type::INT8 {
                row.get::<_, Option<i64>>(i).map_or(Val::Null, Val::Int)
            } else if *ty == Type::TEXT || *ty == Type::VARCHAR {
                row.get::<_, Option<String>>(i).map_or(Val::Null, Val::Text)
            } else if *ty == Type::BYTEA {
                row.get::<_, Option<Vec<u8>>>(i)
                    .map_or(Val::Null, Val::Bytes)
            } else {
                bail!("column {i} ({}) is of type {ty}", column.name())
            });
        }
        out.push(Row(vals));
    }
    Ok(out)
}
