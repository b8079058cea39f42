//! `tocsin_store::migrate`: a SQLite store with every kind of row moved
//! into PostgreSQL gives the same answers there, its audit chain checks
//! with the same head, and a node can go on writing it; a target that
//! holds rows is refused, and a copy that fails leaves the target empty.
//!
//! Each test starts a private PostgreSQL server (tocsin-pgtest); without
//! the binaries they print SKIPPED and pass, unless
//! TOCSIN_REQUIRE_POSTGRES=1.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use tocsin_pgtest::TestPostgres;
use tocsin_store::audit::{AuditReader, StoreCheck};
use tocsin_store::migrate::{self, Error as MigrateError};
use tocsin_store::postgres::PoolOptions;
use tocsin_store::*;
use tokio_postgres::NoTls;

fn server() -> Option<TestPostgres> {
    let server = TestPostgres::start().unwrap_or_else(|e| panic!("start PostgreSQL: {e}"));
    if server.is_none() {
        eprintln!("SKIPPED: no PostgreSQL binaries (TOCSIN_REQUIRE_POSTGRES=1 requires them)");
    }
    server
}

fn t0() -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_800_000_000_000).unwrap()
}

fn at(minutes: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(minutes)
}

const WORDS: OutcomeWords = OutcomeWords {
    delivered: |r, _| format!("delivered to {r}"),
    rejected: |r, e| format!("{r} rejected it: {e}"),
    refused_ack: |o, a, e| format!("{o} refused ack {a}: {e}"),
};

fn alert(id: &str, originator: &str, keys: &[&str]) -> NewAlert {
    NewAlert {
        id: id.into(),
        originator: originator.into(),
        created_at: at(-1),
        stored_at: t0(),
        precedence: 2,
        category: "TERRORISM".into(),
        summary: format!("about {id}"),
        digest: vec![7; 32],
        envelope: format!("envelope {id}").into_bytes(),
        due_at: at(60),
        first_step_at: Some(at(30)),
        keys: keys.iter().map(|k| (*k).to_owned()).collect(),
        closes: vec![],
        detail: format!("stored {id}"),
    }
}

fn ack(id: &str, alert_id: &str, agency: &str) -> NewAck {
    NewAck {
        id: id.into(),
        alert_id: alert_id.into(),
        agency: agency.into(),
        operator: "duty officer".into(),
        disposition: 1,
        note: "seen".into(),
        acknowledged_at: at(5),
        stored_at: at(5),
        envelope: format!("ack envelope {id}").into_bytes(),
    }
}

fn forms() -> SignForms {
    Arc::new(|seq, change, before| SignedForms {
        full: format!("full {seq} {}", change.reference).into_bytes(),
        full_to: match &change.op {
            OwnOp::Add(e) | OwnOp::Update(e) => e.releasable_to.clone(),
            OwnOp::Remove => before.to_vec(),
        },
        withdrawal: Some(format!("withdrawal {seq}").into_bytes()),
        withdrawn_from: vec![],
        stub: format!("stub {seq}").into_bytes(),
    })
}

/// A SQLite store in `dir` holding every kind of row: alerts both ways,
/// deliveries (one delivered), acknowledgements both ways, the outbox's
/// messages, ladder steps, a received reminder, a blocked peer, this
/// agency's watchlist and one held from a partner, a hit report, subject
/// keys; and the events and audit entries of all of it.
async fn filled_sqlite(dir: &Path) -> Store {
    let s = Store::open(dir, StoreOptions::default()).unwrap();
    let to = vec!["FR-DGSI".to_owned(), "BE-VSSE".to_owned()];
    s.insert_outbound(alert("A1", "TR-MIT", &["doc:X"]), to.clone())
        .await
        .unwrap();
    s.insert_outbound(alert("A2", "TR-MIT", &["doc:Y"]), to.clone())
        .await
        .unwrap();
    s.record_attempts(
        vec![(
            "A1".into(),
            "FR-DGSI".into(),
            AttemptOutcome::Delivered {
                delivered_at: at(1),
                receipt: b"receipt from FR".to_vec(),
            },
        )],
        at(1),
        WORDS,
    )
    .await
    .unwrap();
    s.record_received_ack(ack("K1", "A1", "FR-DGSI"), "FR acknowledged".into())
        .await
        .unwrap();
    s.insert_inbound(alert("B1", "FR-DGSI", &["doc:X"]), b"our receipt".to_vec())
        .await
        .unwrap();
    s.insert_inbound(alert("B2", "BE-VSSE", &[]), b"our receipt 2".to_vec())
        .await
        .unwrap();
    s.insert_own_ack(
        ack("K2", "B1", "TR-MIT"),
        "FR-DGSI".into(),
        "we acknowledged".into(),
    )
    .await
    .unwrap();
    s.take_steps(vec![StepTaken {
        alert_id: "A2".into(),
        recipient: "BE-VSSE".into(),
        ladder: LadderStep::Reminded,
        next_step_at: Some(at(45)),
        messages: vec![NewMessage {
            id: "R1".into(),
            peer: "BE-VSSE".into(),
            kind: MessageKind::Reminder,
            envelope: b"reminder envelope".to_vec(),
        }],
        event_kind: EventKind::Reminded,
        detail: "reminded BE".into(),
        at: at(31),
    }])
    .await
    .unwrap();
    s.record_reminder(ReceivedReminder {
        id: "R9".into(),
        alert_id: "B2".into(),
        originator: "BE-VSSE".into(),
        envelope: b"their reminder".to_vec(),
        at: at(32),
        escalated: false,
        detail: "BE reminded us".into(),
    })
    .await
    .unwrap();
    s.block_peer("XX-GONE", "certificate revoked", at(2))
        .await
        .unwrap();
    let entry = |to: &[&str]| OwnEntry {
        entry: b"watchlist entry".to_vec(),
        releasable_to: to.iter().map(|a| (*a).to_owned()).collect(),
        expires_at: Some(at(24 * 60)),
    };
    s.append_own_watchlist(
        vec![
            OwnChange {
                reference: "W1".into(),
                op: OwnOp::Add(entry(&["FR-DGSI"])),
            },
            OwnChange {
                reference: "W2".into(),
                op: OwnOp::Add(entry(&["FR-DGSI", "BE-VSSE"])),
            },
        ],
        at(3),
        forms(),
    )
    .await
    .unwrap();
    s.apply_held_watchlist(
        "FR-DGSI".into(),
        0,
        vec![HeldChange {
            seq: 1,
            authored_at: at(3),
            op: HeldOp::Put {
                reference: "F1".into(),
                entry: b"their entry".to_vec(),
                envelope: b"their envelope".to_vec(),
                expires_at: None,
            },
        }],
        LogHead {
            seq: 1,
            at: Some(at(3)),
        },
        at(4),
    )
    .await
    .unwrap();
    let hit = s
        .insert_hit_report(
            alert("H1", "TR-MIT", &[]),
            HitKey {
                owner: "FR-DGSI".into(),
                entry_ref: "F1".into(),
                person_key: b"person".to_vec(),
                repeat_since: at(-60),
            },
        )
        .await
        .unwrap();
    assert!(matches!(hit, HitOutcome::Sent(_)));
    s
}

/// What a store answers, as text: every answer a node reads at start.
async fn answers(s: &Store) -> Vec<String> {
    let mut out = vec![
        format!("{:?}", s.list_awaiting(100).await.unwrap()),
        format!("{:?}", s.list_owed(100).await.unwrap()),
        format!("{:?}", s.list_overdue(100).await.unwrap()),
        format!("{:?}", s.events_after(0, 1000).await.unwrap()),
        format!("{:?}", s.last_event_id().await.unwrap()),
        format!("{:?}", s.next_deadline().await.unwrap()),
        format!("{:?}", s.own_watchlist_head().await.unwrap()),
        format!("{:?}", s.own_watchlist("TR-MIT".into()).await.unwrap()),
        format!("{:?}", s.watchlist_cursors(at(5)).await.unwrap()),
        format!("{:?}", s.peer_block("XX-GONE").await.unwrap()),
    ];
    for id in ["A1", "A2", "B1", "B2", "H1"] {
        out.push(format!("{:?}", s.alert_history(id).await.unwrap()));
    }
    out
}

fn check_sqlite(dir: &Path) -> StoreCheck {
    AuditReader::open(dir)
        .unwrap()
        .check(|_, _| {}, |_, _| {})
        .unwrap()
}

/// The audit check of the PostgreSQL store at `url`, from a thread of its
/// own (the reader is blocking).
async fn check_postgres(url: &str) -> StoreCheck {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        AuditReader::connect(&url)
            .unwrap()
            .check(|_, _| {}, |_, _| {})
            .unwrap()
    })
    .await
    .unwrap()
}

async fn count_rows(url: &str) -> i64 {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(connection);
    let migrated: bool = client
        .query_one("SELECT to_regclass('alerts') IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    if !migrated {
        return 0;
    }
    let mut total = 0;
    for table in migrate::TABLES {
        let n: i64 = client
            .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
            .await
            .unwrap()
            .get(0);
        total += n;
    }
    total
}

/// The database file and its write-ahead log, as they are on disk.
fn file_bytes(dir: &Path) -> Vec<Vec<u8>> {
    let db = Store::database_path(dir);
    let mut wal = db.clone().into_os_string();
    wal.push("-wal");
    [db, wal.into()]
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_default())
        .collect()
}

/// A filled store in `dir`, closed.
async fn filled_and_closed(dir: &Path) {
    let s = filled_sqlite(dir).await;
    s.close().await;
}

#[tokio::test]
async fn a_migrated_store_answers_alike_and_its_chain_goes_on() {
    let Some(pg) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = filled_sqlite(dir.path()).await;
    let before = answers(&sqlite).await;
    let last_sqlite_event = sqlite.last_event_id().await.unwrap();
    sqlite.close().await;
    drop(sqlite);
    let source_check = check_sqlite(dir.path());
    assert!(
        source_check.findings.is_empty(),
        "{:?}",
        source_check.findings
    );
    assert!(source_check.entries >= 10, "{}", source_check.entries);
    let file_before = file_bytes(dir.path());

    let url = pg.create_database("moved").await.unwrap();
    let mut reports = Vec::new();
    let summary = migrate::sqlite_to_postgres(dir.path(), &url, |p| reports.push(p))
        .await
        .unwrap();
    // The SQLite file is as it was.
    assert_eq!(file_bytes(dir.path()), file_before);

    let rows: std::collections::BTreeMap<_, _> = summary.tables.iter().cloned().collect();
    assert_eq!(rows.len(), migrate::TABLES.len());
    for (table, expected) in [
        ("alerts", 5),
        ("deliveries", 5),
        ("acknowledgements", 2),
        ("messages", 2),
        ("received_messages", 1),
        ("peer_blocks", 1),
        ("watchlist_log", 2),
        ("watchlist_own", 2),
        ("watchlist_held", 1),
        ("watchlist_cursors", 1),
        ("hit_reports", 1),
        ("events", source_check.events),
        ("audit_log", source_check.entries),
    ] {
        assert_eq!(rows[table], expected, "{table}");
    }
    assert!(rows["subject_keys"] >= 3);
    assert!(rows["watchlist_log_readers"] >= 3);
    assert_eq!(summary.before.head, source_check.head);
    assert_eq!(summary.after.head, source_check.head);
    assert!(
        reports
            .iter()
            .any(|p| matches!(p, migrate::Progress::Copying { table: "audit_log", done, .. } if *done == source_check.entries)),
        "progress names each table's rows"
    );
    assert!(!summary.target.contains("password"));

    // The same answers from PostgreSQL, and the same chain.
    let pg_store = Store::connect(&url, PoolOptions::default()).await.unwrap();
    assert_eq!(answers(&pg_store).await, before);
    let target_check = check_postgres(&url).await;
    assert!(
        target_check.findings.is_empty(),
        "{:?}",
        target_check.findings
    );
    assert_eq!(
        (
            target_check.entries,
            target_check.events,
            target_check.envelopes,
            target_check.head
        ),
        (
            source_check.entries,
            source_check.events,
            source_check.envelopes,
            source_check.head
        )
    );

    // The node goes on: new events follow the copied ones, the chain
    // continues from the copied head and checks.
    pg_store
        .insert_outbound(alert("A3", "TR-MIT", &[]), vec!["FR-DGSI".into()])
        .await
        .unwrap();
    pg_store
        .append_own_watchlist(
            vec![OwnChange {
                reference: "W3".into(),
                op: OwnOp::Add(OwnEntry {
                    entry: b"third".to_vec(),
                    releasable_to: vec!["FR-DGSI".into()],
                    expires_at: None,
                }),
            }],
            at(6),
            forms(),
        )
        .await
        .unwrap();
    assert_eq!(pg_store.own_watchlist_head().await.unwrap().seq, 3);
    let new_events = pg_store.events_after(last_sqlite_event, 10).await.unwrap();
    assert_eq!(new_events.len(), 1);
    assert_eq!(new_events[0].id, last_sqlite_event + 1);
    assert_eq!(new_events[0].alert_id, "A3");
    let continued = check_postgres(&url).await;
    assert!(continued.findings.is_empty(), "{:?}", continued.findings);
    let (old_seq, _) = source_check.head.unwrap();
    assert_eq!(continued.head.unwrap().0, old_seq + 1);
}

#[tokio::test]
async fn a_target_with_rows_is_refused_and_left_alone() {
    let Some(pg) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    filled_and_closed(dir.path()).await;

    // A store already in use.
    let url = pg.create_database("used").await.unwrap();
    let used = Store::connect(&url, PoolOptions::default()).await.unwrap();
    used.block_peer("YY-OTHER", "revoked", at(0)).await.unwrap();
    let before = count_rows(&url).await;
    let err = migrate::sqlite_to_postgres(dir.path(), &url, |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(&err, MigrateError::TargetNotEmpty { table } if table == "peer_blocks"),
        "{err:?}"
    );
    assert!(err.to_string().contains("not empty"), "{err}");
    assert_eq!(count_rows(&url).await, before);

    // Migrated once, a second migration into it is refused too.
    let url = pg.create_database("twice").await.unwrap();
    migrate::sqlite_to_postgres(dir.path(), &url, |_| {})
        .await
        .unwrap();
    let err = migrate::sqlite_to_postgres(dir.path(), &url, |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(&err, MigrateError::TargetNotEmpty { table } if table == "alerts"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_copy_that_fails_leaves_the_target_empty() {
    let Some(pg) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    filled_and_closed(dir.path()).await;
    // A value PostgreSQL refuses in the last table copied: NUL in text.
    // The chain does not cover hit_reports' owner, so the source checks.
    {
        let conn = rusqlite::Connection::open(Store::database_path(dir.path())).unwrap();
        conn.execute(
            "UPDATE hit_reports SET owner = 'FR' || char(0) || 'DGSI'",
            [],
        )
        .unwrap();
    }
    assert!(check_sqlite(dir.path()).findings.is_empty());
    let url = pg.create_database("failed").await.unwrap();
    let err = migrate::sqlite_to_postgres(dir.path(), &url, |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, MigrateError::Postgres(_)), "{err:?}");
    assert_eq!(count_rows(&url).await, 0, "the failed copy left nothing");
    // The target is still a fresh store: the sequences start at 1, and a
    // fixed source migrates into it.
    {
        let conn = rusqlite::Connection::open(Store::database_path(dir.path())).unwrap();
        conn.execute("UPDATE hit_reports SET owner = 'FR-DGSI'", [])
            .unwrap();
    }
    let summary = migrate::sqlite_to_postgres(dir.path(), &url, |_| {})
        .await
        .unwrap();
    assert_eq!(summary.after.head, check_sqlite(dir.path()).head);
}

#[tokio::test]
async fn a_source_that_fails_verification_is_not_copied() {
    let Some(pg) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    filled_and_closed(dir.path()).await;
    {
        let conn = rusqlite::Connection::open(Store::database_path(dir.path())).unwrap();
        conn.execute("UPDATE alerts SET envelope = X'00' WHERE id = 'A1'", [])
            .unwrap();
    }
    let url = pg.create_database("tampered").await.unwrap();
    let err = migrate::sqlite_to_postgres(dir.path(), &url, |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, MigrateError::SourceFails { .. }), "{err:?}");
    assert!(err.to_string().contains("audit verification"), "{err}");
    assert_eq!(count_rows(&url).await, 0);
}

#[tokio::test]
async fn a_source_at_another_schema_is_refused() {
    let Some(pg) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    filled_and_closed(dir.path()).await;
    let conn = rusqlite::Connection::open(Store::database_path(dir.path())).unwrap();
    let latest: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    conn.pragma_update(None, "user_version", latest - 1)
        .unwrap();
    let url = pg.create_database("older").await.unwrap();
    let err = migrate::sqlite_to_postgres(dir.path(), &url, |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(err, MigrateError::SourceVersion { found, .. } if found == latest - 1),
        "{err:?}"
    );
    assert!(err.to_string().contains("start its node once"), "{err}");

    // At the latest version, but with a table the copy does not know.
    conn.pragma_update(None, "user_version", latest).unwrap();
    conn.execute_batch("CREATE TABLE notes (text TEXT)")
        .unwrap();
    let err = migrate::sqlite_to_postgres(dir.path(), &url, |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(&err, MigrateError::Schema { table, .. } if table == "notes"),
        "{err:?}"
    );
    assert_eq!(count_rows(&url).await, 0);
}

#[test]
fn a_store_url_is_shown_without_its_password() {
    use tocsin_store::audit::StoreLocation;
    use tocsin_store::postgres::describe_url;
    assert_eq!(
        describe_url("postgres://tocsin:sekrit@db.example:5433/tocsin_tr"),
        "postgresql://tocsin@db.example:5433/tocsin_tr"
    );
    assert_eq!(
        describe_url("host=/var/run/postgresql user=tocsin password=sekrit dbname=tocsin_tr"),
        "postgresql://tocsin@/var/run/postgresql/tocsin_tr"
    );
    assert!(!describe_url("password=sekrit bogus").contains("sekrit"));
    let at = StoreLocation::Url("host=/run user=u password=sekrit dbname=d".into());
    assert!(!format!("{at:?}").contains("sekrit"));
    assert!(!at.describe().contains("sekrit"));
}

/// The one check, on either backend's rows: the same edits made to the
/// SQLite store and to its copy in PostgreSQL are found alike.
#[tokio::test]
async fn edits_are_found_alike_in_sqlite_and_in_its_postgresql_copy() {
    let Some(pg) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    filled_and_closed(dir.path()).await;
    let url = pg.create_database("edited").await.unwrap();
    migrate::sqlite_to_postgres(dir.path(), &url, |_| {})
        .await
        .unwrap();

    // An event reworded, an envelope replaced, an envelope no entry
    // recorded, an audit entry's hash zeroed.
    let edits = [
        "UPDATE events SET detail = 'reworded' WHERE id = 3",
        "UPDATE alerts SET envelope = CAST('x' AS BLOB) WHERE id = 'B1'",
        "UPDATE deliveries SET receipt = CAST('forged' AS BLOB) WHERE alert_id = 'A2' AND recipient = 'BE-VSSE'",
        "UPDATE audit_log SET hash = zeroblob(32) WHERE seq = 5",
    ];
    {
        let conn = rusqlite::Connection::open(Store::database_path(dir.path())).unwrap();
        conn.execute_batch("DROP TRIGGER events_no_update; DROP TRIGGER audit_log_no_update;")
            .unwrap();
        for edit in edits {
            conn.execute(edit, []).unwrap();
        }
    }
    {
        let (client, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
        tokio::spawn(connection);
        client
            .batch_execute(
                "DROP TRIGGER events_no_update ON events;
                 DROP TRIGGER audit_log_no_update ON audit_log;",
            )
            .await
            .unwrap();
        for edit in edits {
            let edit = edit
                .replace(" AS BLOB)", " AS BYTEA)")
                .replace("zeroblob(32)", "decode(repeat('00', 32), 'hex')");
            client.batch_execute(&edit).await.unwrap();
        }
    }
    let sqlite = check_sqlite(dir.path());
    let postgres = check_postgres(&url).await;
    assert!(sqlite.findings.len() >= 4, "{:?}", sqlite.findings);
    assert_eq!(format!("{postgres:?}"), format!("{sqlite:?}"));
}
