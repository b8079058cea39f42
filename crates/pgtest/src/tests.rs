use super::*;

/// Starts a server, or says why the test is skipped.
fn start() -> Option<TestPostgres> {
    let server = TestPostgres::start().unwrap_or_else(|e| panic!("start PostgreSQL: {e}"));
    if server.is_none() {
        eprintln!("SKIPPED: no PostgreSQL binaries (set {REQUIRE_VAR}=1 to require them)");
    }
    server
}

async fn select_one(url: &str) -> Result<i32, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    client.query_one("SELECT 1", &[]).await?.try_get(0)
}

#[tokio::test]
async fn starts_and_answers_a_query() {
    let Some(pg) = start() else { return };
    assert_eq!(select_one(&pg.url()).await.unwrap(), 1);

    // fsync is on, as in production, and nothing listens on TCP.
    let (client, connection) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let fsync: String = client.query_one("SHOW fsync", &[]).await.unwrap().get(0);
    assert_eq!(fsync, "on");
    let listen: String = client
        .query_one("SHOW listen_addresses", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(listen, "");
}

#[tokio::test]
async fn two_servers_in_parallel_do_not_collide() {
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(start);
        let b = s.spawn(start);
        (a.join().unwrap(), b.join().unwrap())
    });
    let (Some(a), Some(b)) = (a, b) else { return };
    assert_ne!(a.socket_dir(), b.socket_dir());

    // Each is its own cluster: a database made on one is absent on the other.
    let on_a = a.create_database("only_on_a").await.unwrap();
    assert_eq!(select_one(&on_a).await.unwrap(), 1);
    let on_b = b.url_for("only_on_a");
    let err = select_one(&on_b).await.unwrap_err();
    let code = err.as_db_error().map(|db| db.code().clone());
    assert_eq!(
        code,
        Some(tokio_postgres::error::SqlState::INVALID_CATALOG_NAME),
        "{err:?}"
    );
    assert_eq!(select_one(&b.url()).await.unwrap(), 1);
}

#[tokio::test]
async fn drop_stops_the_server_and_removes_its_files() {
    let Some(pg) = start() else { return };
    let url = pg.url();
    let dir = pg.directory().to_owned();
    assert_eq!(select_one(&url).await.unwrap(), 1);
    drop(pg);
    assert!(!dir.exists(), "{} still exists", dir.display());
    assert!(select_one(&url).await.is_err());
}

#[tokio::test]
async fn create_database_refuses_names_that_are_not_identifiers() {
    let Some(pg) = start() else { return };
    for name in ["", "Upper", "1st", "a; DROP DATABASE postgres", "a-b"] {
        let err = pg.create_database(name).await.unwrap_err();
        assert!(matches!(err, Error::BadName(_)), "{name:?}: {err}");
    }
    let url = pg.create_database("tocsin_2").await.unwrap();
    assert_eq!(select_one(&url).await.unwrap(), 1);
}

#[test]
fn a_failed_start_says_why() {
    let empty = tempfile::tempdir().unwrap();
    let err = TestPostgres::start_with(empty.path().to_owned()).unwrap_err();
    assert!(matches!(&err, Error::Missing { .. }), "{err}");
    assert!(err.to_string().contains("TOCSIN_PG_BIN"), "{err}");
}

#[test]
fn a_server_that_cannot_start_shows_its_log() {
    let Some(bin) = find_bin() else {
        eprintln!("SKIPPED: no PostgreSQL binaries");
        return;
    };
    let err = TestPostgres::start_configured(bin, "max_connections = 0\n").unwrap_err();
    let Error::Start { log_tail, .. } = &err else {
        panic!("not a start error: {err}");
    };
    assert!(log_tail.contains("max_connections"), "{err}");
    assert!(err.to_string().contains("server log"), "{err}");
}

#[test]
fn quoting_keeps_a_path_one_value() {
    assert_eq!(quote("/tmp/a b"), "'/tmp/a b'");
    assert_eq!(quote(r"it's\"), r"'it\'s\\'");
}
