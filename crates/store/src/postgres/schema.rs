//! Versioned migrations for the PostgreSQL store: `migrations/NNN_*.sql`,
//! applied in order, each recorded in `schema_migrations`.
//!
//! Several front nodes may start at once against one database. Each runs
//! [`migrate`], which takes a transaction-scoped advisory lock first: the
//! others wait for it, then find the work done. A transaction-scoped lock
//! (not a session lock) goes with the transaction whatever happens to the
//! connection, so a node that dies mid-migration leaves neither the lock
//! nor half a schema behind.

use tokio_postgres::{Client, IsolationLevel};

use super::Error;

/// The migrations, oldest first; version N is `MIGRATIONS[N - 1]`.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/001_initial.sql"),
    include_str!("migrations/002_front_nodes.sql"),
];

/// The schema version this binary migrates to, and the newest it accepts.
pub const LATEST_VERSION: u32 = MIGRATIONS.len() as u32;

/// The advisory lock key migrations hold: "tocsinmg" in ASCII, so that it
/// is unlikely to be another application's in a shared database.
pub const MIGRATION_LOCK: i64 = 0x746f_6373_696e_6d67;

/// Brings the database to [`LATEST_VERSION`] and returns that version.
///
/// Every pending migration is applied in one transaction, with its row
/// in `schema_migrations`: a failure leaves the database as it was. A
/// database at a newer version than this binary knows is refused with
/// [`Error::TooNew`], and left untouched.
pub async fn migrate(client: &mut Client) -> Result<u32, Error> {
    // READ COMMITTED whatever the server's default: each statement after
    // the lock must see what the node that held it before us committed (a
    // REPEATABLE READ snapshot taken at the lock would not).
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::ReadCommitted)
        .start()
        .await?;
    tx.batch_execute(&format!(
        "SELECT pg_advisory_xact_lock({MIGRATION_LOCK});
         CREATE TABLE IF NOT EXISTS schema_migrations (
             version     BIGINT PRIMARY KEY,
             applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
         );"
    ))
    .await?;
    let current: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .await?
        .get(0);
    if current > i64::from(LATEST_VERSION) {
        return Err(Error::TooNew {
            found: current,
            known: LATEST_VERSION,
        });
    }
    for (version, sql) in (1..)
        .zip(MIGRATIONS)
        .skip(usize::try_from(current).unwrap_or(0))
    {
        tx.batch_execute(sql)
            .await
            .map_err(|source| Error::Migration { version, source })?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[&i64::from(version)],
        )
        .await?;
        tracing::info!(version, "applied PostgreSQL migration");
    }
    tx.commit().await?;
    Ok(LATEST_VERSION)
}

/// Checks, without changing anything, that the database holds a Tocsin
/// store this binary can read: migrated (at any version up to
/// [`LATEST_VERSION`]), not newer.
pub(crate) async fn check_version(client: &Client) -> Result<u32, crate::Error> {
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await?
        .try_get(0)?;
    let current: i64 = if exists {
        client
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                &[],
            )
            .await?
            .try_get(0)?
    } else {
        0
    };
    if current == 0 {
        return Err(crate::Error::NotFound(
            "the PostgreSQL database holds no Tocsin store (no migration was ever applied)".into(),
        ));
    }
    if current > i64::from(LATEST_VERSION) {
        return Err(Error::TooNew {
            found: current,
            known: LATEST_VERSION,
        }
        .into());
    }
    Ok(u32::try_from(current).unwrap_or(0))
}
