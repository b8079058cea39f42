//! The PostgreSQL schema: versioned migrations that run once however many
//! front nodes start together, refuse a newer database, and leave the same
//! tables, columns, indexes and triggers as the SQLite store's schema.
//!
//! Each test starts a private PostgreSQL server (tocsin-pgtest); without
//! the binaries they print SKIPPED and pass, unless
//! TOCSIN_REQUIRE_POSTGRES=1.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::Connection;
use tocsin_pgtest::TestPostgres;
use tocsin_store::postgres::{self, Error, LATEST_VERSION, PoolOptions};
use tokio_postgres::{Client, NoTls};

fn server() -> Option<TestPostgres> {
    let server = TestPostgres::start().unwrap_or_else(|e| panic!("start PostgreSQL: {e}"));
    if server.is_none() {
        eprintln!("SKIPPED: no PostgreSQL binaries (TOCSIN_REQUIRE_POSTGRES=1 requires them)");
    }
    server
}

async fn client(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// (version, applied_at as text) for every recorded migration.
async fn applied(client: &Client) -> Vec<(i64, String)> {
    client
        .query(
            "SELECT version, applied_at::text FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

async fn table_count(client: &Client) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM information_schema.tables
              WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn migrates_an_empty_database_to_the_latest_version() {
    let Some(pg) = server() else { return };
    let pool = postgres::connect(&pg.url(), PoolOptions::default())
        .await
        .unwrap();
    let db = pool.get().await.unwrap();

    let versions: Vec<i64> = applied(&db).await.into_iter().map(|(v, _)| v).collect();
    assert_eq!(
        versions,
        (1..=i64::from(LATEST_VERSION)).collect::<Vec<_>>()
    );
    let sequences: Vec<(String, i64)> = db
        .query("SELECT name, next FROM sequences ORDER BY name", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(
        sequences,
        [
            ("audit_log".to_owned(), 1),
            ("events".to_owned(), 1),
            ("watchlist_log".to_owned(), 1)
        ]
    );
}

#[tokio::test]
async fn migrating_twice_changes_nothing() {
    let Some(pg) = server() else { return };
    let mut db = client(&pg.url()).await;
    assert_eq!(postgres::migrate(&mut db).await.unwrap(), LATEST_VERSION);
    let before = applied(&db).await;
    let tables = table_count(&db).await;

    assert_eq!(postgres::migrate(&mut db).await.unwrap(), LATEST_VERSION);
    assert_eq!(applied(&db).await, before);
    assert_eq!(table_count(&db).await, tables);
}

/// Text compares bytewise, as SQLite compares it, whatever the locale the
/// database was created with: every text column says `COLLATE "C"`.
#[tokio::test]
async fn every_text_column_sorts_bytewise() {
    let Some(pg) = server() else { return };
    let mut db = client(&pg.url()).await;
    postgres::migrate(&mut db).await.unwrap();
    let loose: Vec<String> = db
        .query(
            "SELECT table_name || '.' || column_name FROM information_schema.columns
             WHERE table_schema = 'public' AND data_type = 'text'
               AND collation_name IS DISTINCT FROM 'C'
             ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        loose.is_empty(),
        "text columns without COLLATE \"C\": {loose:?}"
    );
}

#[tokio::test]
async fn front_nodes_starting_together_migrate_once() {
    let Some(pg) = server() else { return };
    // Four nodes' pools at once. Were the advisory lock missing, the
    // losers of the race would fail (the initial migration's CREATE TABLEs
    // have no IF NOT EXISTS) or record the version twice (a primary key).
    let url = pg.url();
    let connects = (0..4).map(|_| postgres::connect(&url, PoolOptions::default()));
    for result in futures::future::join_all(connects).await {
        result.unwrap();
    }
    let db = client(&url).await;
    let versions: Vec<i64> = applied(&db).await.into_iter().map(|(v, _)| v).collect();
    assert_eq!(
        versions,
        (1..=i64::from(LATEST_VERSION)).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_database_newer_than_this_binary_is_refused() {
    let Some(pg) = server() else { return };
    let mut db = client(&pg.url()).await;
    postgres::migrate(&mut db).await.unwrap();
    let newer = i64::from(LATEST_VERSION) + 1;
    db.execute(
        "INSERT INTO schema_migrations (version) VALUES ($1)",
        &[&newer],
    )
    .await
    .unwrap();
    let before = applied(&db).await;

    let err = postgres::migrate(&mut db).await.unwrap_err();
    assert!(
        matches!(err, Error::TooNew { found, known } if found == newer && known == LATEST_VERSION),
        "{err}"
    );
    assert!(err.to_string().contains("newer than this binary"), "{err}");
    // A node refuses to start on it, and nothing was changed.
    let err = postgres::connect(&pg.url(), PoolOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TooNew { .. }), "{err}");
    assert_eq!(applied(&db).await, before);
}

#[tokio::test]
async fn a_url_that_asks_for_tls_is_refused_and_a_bad_url_named() {
    // No server needed: both are refused before connecting.
    let err = postgres::connect(
        "host=/nonexistent dbname=tocsin sslmode=require",
        PoolOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::TlsNotBuilt), "{err}");
    let err = postgres::connect("host=/x port=notaport", PoolOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Url(_)), "{err}");
    assert!(err.to_string().contains("port"), "{err}");
}

#[tokio::test]
async fn sequences_hand_out_values_in_commit_order_without_gaps() {
    let Some(pg) = server() else { return };
    let url = pg.url();
    let mut a = client(&url).await;
    let mut b = client(&url).await;
    postgres::migrate(&mut a).await.unwrap();
    const NEXT: &str =
        "UPDATE sequences SET next = next + 1 WHERE name = 'events' RETURNING next - 1";

    // A takes a value and holds the row; B's allocation waits for A.
    let ta = a.transaction().await.unwrap();
    let first: i64 = ta.query_one(NEXT, &[]).await.unwrap().get(0);
    assert_eq!(first, 1);
    let b_pid: i32 = b
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let waiter = tokio::spawn(async move {
        let tb = b.transaction().await.unwrap();
        let value: i64 = tb.query_one(NEXT, &[]).await.unwrap().get(0);
        tb.commit().await.unwrap();
        value
    });
    let watcher = client(&url).await;
    loop {
        let waiting: bool = watcher
            .query_one(
                "SELECT coalesce(bool_or(wait_event_type = 'Lock'), false)
                   FROM pg_stat_activity WHERE pid = $1",
                &[&b_pid],
            )
            .await
            .unwrap()
            .get(0);
        if waiting {
            break;
        }
        tokio::task::yield_now().await;
    }
    // A rolls back: its value is not lost, B gets it.
    ta.rollback().await.unwrap();
    assert_eq!(waiter.await.unwrap(), 1);
    let next: i64 = a.query_one(NEXT, &[]).await.unwrap().get(0);
    assert_eq!(next, 2);
}

#[tokio::test]
async fn the_triggers_settle_deadlines_and_keep_the_logs_append_only() {
    let Some(pg) = server() else { return };
    let mut db = client(&pg.url()).await;
    postgres::migrate(&mut db).await.unwrap();
    db.batch_execute(
        "INSERT INTO alerts (id, direction, originator, created_at, stored_at, precedence,
                             category, summary, digest, envelope, due_at)
              VALUES ('a1', 1, 'us', 1, 1, 1, 'c', 's', '\\x00', '\\x00', 10),
                     ('a2', 1, 'us', 1, 1, 1, 'c', 's', '\\x00', '\\x00', 10);
         INSERT INTO deliveries (alert_id, recipient, state, due_at)
              VALUES ('a1', 'them', 2, 10), ('a2', 'them', 2, 10);
         INSERT INTO acknowledgements (id, alert_id, agency, operator, disposition, note,
                                       acknowledged_at, stored_at, envelope)
              VALUES ('k1', 'a1', 'them', 'op', 1, '', 5, 5, '\\x00');
         UPDATE alerts SET status = 2 WHERE id = 'a2';
         INSERT INTO events (id, at, kind, alert_id, agency, direction, detail)
              VALUES (1, 1, 1, 'a1', 'us', 1, '');
         INSERT INTO watchlist_log (seq, ref, authored_at, \"full\", stub)
              VALUES (1, 'r', 1, '\\x00', '\\x00');",
    )
    .await
    .unwrap();
    let settled: Vec<(String, i64)> = db
        .query(
            "SELECT alert_id, settled FROM deliveries ORDER BY alert_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(settled, [("a1".to_owned(), 1), ("a2".to_owned(), 1)]);
    let a2: i64 = db
        .query_one("SELECT settled FROM alerts WHERE id = 'a2'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(a2, 1);

    for statement in [
        "UPDATE events SET detail = 'x'",
        "DELETE FROM events",
        "TRUNCATE events",
    ] {
        let err = db.batch_execute(statement).await.unwrap_err();
        let message = err.as_db_error().map(|e| e.message().to_owned());
        assert_eq!(
            message.as_deref(),
            Some("events are append-only"),
            "{statement}"
        );
    }
}

/// One column as both schemas describe it: (name, type, not null).
type Column = (String, String, bool);

/// One index: (table, columns in order, partial).
type Index = (String, Vec<String>, bool);

/// What the parity test compares.
#[derive(Debug, Default)]
struct Schema {
    tables: BTreeMap<String, Vec<Column>>,
    indexes: BTreeMap<String, Index>,
    triggers: BTreeSet<String>,
}

fn sqlite_schema(conn: &Connection) -> Schema {
    let names = |kind: &str| -> Vec<String> {
        let mut stmt = conn
            .prepare(
                "SELECT name FROM sqlite_master
                  WHERE type = ?1 AND name NOT LIKE 'sqlite_%' ORDER BY name",
            )
            .unwrap();
        stmt.query_map([kind], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let mut schema = Schema::default();
    for table in names("table") {
        let mut stmt = conn
            .prepare(&format!("PRAGMA table_info(\"{table}\")"))
            .unwrap();
        let columns = stmt
            .query_map([], |row| {
                let name: String = row.get(1)?;
                let declared: String = row.get(2)?;
                let not_null: bool = row.get(3)?;
                let pk: i64 = row.get(5)?;
                Ok((name, declared, not_null || pk > 0))
            })
            .unwrap()
            .map(Result::unwrap)
            .map(|(name, declared, not_null)| {
                let pg_type = match declared.as_str() {
                    "INTEGER" => "bigint",
                    "BLOB" => "bytea",
                    "TEXT" => "text",
                    other => panic!("{table}.{name}: no PostgreSQL type for {other}"),
                };
                (name, pg_type.to_owned(), not_null)
            })
            .collect();
        schema.tables.insert(table.clone(), columns);

        let mut stmt = conn
            .prepare(&format!("PRAGMA index_list(\"{table}\")"))
            .unwrap();
        let list: Vec<(String, bool)> = stmt
            .query_map([], |row| Ok((row.get(1)?, row.get(4)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for (index, partial) in list {
            if index.starts_with("sqlite_autoindex_") {
                continue;
            }
            let mut stmt = conn
                .prepare(&format!("PRAGMA index_info(\"{index}\")"))
                .unwrap();
            let columns = stmt
                .query_map([], |row| row.get(2))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            schema
                .indexes
                .insert(index, (table.clone(), columns, partial));
        }
    }
    schema.triggers = names("trigger").into_iter().collect();
    schema
}

async fn postgres_schema(db: &Client) -> Schema {
    let mut schema = Schema::default();
    // Only PostgreSQL has the migration record, the sequences, and what
    // several front nodes share one database with (migration 002: the
    // leases, and the outbox's claim columns); SQLite has one node a file.
    for row in db
        .query(
            "SELECT c.table_name::text, c.column_name::text, c.data_type::text,
                    c.is_nullable = 'NO'
               FROM information_schema.columns c
               JOIN information_schema.tables t USING (table_schema, table_name)
              WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
                AND c.table_name NOT IN ('schema_migrations', 'sequences', 'leases')
                AND c.column_name NOT IN ('claimed_by', 'claimed_until')
              ORDER BY c.table_name, c.ordinal_position",
            &[],
        )
        .await
        .unwrap()
    {
        schema
            .tables
            .entry(row.get(0))
            .or_default()
            .push((row.get(1), row.get(2), row.get(3)));
    }
    // Primary keys' indexes are named differently (SQLite's are
    // sqlite_autoindex_*, or the rowid) and left out on both sides.
    for row in db
        .query(
            "SELECT i.relname::text, t.relname::text,
                    array(SELECT a.attname::text
                            FROM unnest(x.indkey::int2[]) WITH ORDINALITY k (attnum, ord)
                            JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
                           ORDER BY k.ord),
                    x.indpred IS NOT NULL
               FROM pg_index x
               JOIN pg_class i ON i.oid = x.indexrelid
               JOIN pg_class t ON t.oid = x.indrelid
               JOIN pg_namespace n ON n.oid = t.relnamespace
              WHERE n.nspname = current_schema() AND NOT x.indisprimary
                AND t.relname NOT IN ('schema_migrations', 'sequences', 'leases')",
            &[],
        )
        .await
        .unwrap()
    {
        schema
            .indexes
            .insert(row.get(0), (row.get(1), row.get(2), row.get(3)));
    }
    schema.triggers = db
        .query(
            "SELECT tgname::text FROM pg_trigger WHERE NOT tgisinternal",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    schema
}

#[tokio::test]
async fn the_schema_matches_sqlite_table_for_table() {
    let Some(pg) = server() else { return };
    let mut db = client(&pg.url()).await;
    postgres::migrate(&mut db).await.unwrap();
    let postgres = postgres_schema(&db).await;

    let dir = tempfile::tempdir().unwrap();
    let store = tocsin_store::Store::open(dir.path(), Default::default()).unwrap();
    drop(store);
    let sqlite = Connection::open(tocsin_store::Store::database_path(dir.path())).unwrap();
    let sqlite = sqlite_schema(&sqlite);
    assert!(sqlite.tables.len() >= 16, "{:?}", sqlite.tables.keys());
    assert!(sqlite.indexes.len() >= 11, "{:?}", sqlite.indexes.keys());

    // Tables and columns, in order, with types and nullability.
    assert_eq!(
        postgres.tables.keys().collect::<Vec<_>>(),
        sqlite.tables.keys().collect::<Vec<_>>()
    );
    for (table, columns) in &sqlite.tables {
        assert_eq!(&postgres.tables[table], columns, "columns of {table}");
    }
    // Indexes by name, on the same table and columns, partial where
    // SQLite's are.
    assert_eq!(postgres.indexes, sqlite.indexes);
    // Every SQLite trigger has its PostgreSQL twin (which adds TRUNCATE).
    let missing: Vec<_> = sqlite.triggers.difference(&postgres.triggers).collect();
    assert!(
        missing.is_empty(),
        "triggers missing in PostgreSQL: {missing:?}"
    );
}
