//! The PostgreSQL backend's errors.

/// Why the PostgreSQL store could not connect, migrate or answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The connection string does not parse.
    #[error("PostgreSQL connection string: {}", describe(.0))]
    Url(#[source] tokio_postgres::Error),
    /// The connection string asks for TLS (`sslmode=require`), and this
    /// build connects without it (unix sockets; see [`super::pool`]).
    #[error(
        "the PostgreSQL connection string asks for TLS (sslmode=require), which this build does not have: connect over a unix socket (host=/path), or with sslmode=disable on a network you trust"
    )]
    TlsNotBuilt,
    /// The database holds a schema version this binary does not know: it
    /// was migrated by a newer Tocsin, whose data this one could misread.
    #[error(
        "the PostgreSQL database is at schema version {found}, newer than this binary's {known}: run the newer tocsin, or restore a database of this version"
    )]
    TooNew {
        /// The newest version recorded in the database.
        found: i64,
        /// The newest version this binary has.
        known: u32,
    },
    /// Migration `version` failed (and was rolled back).
    #[error("PostgreSQL migration {version}: {}", describe(.source))]
    Migration {
        /// The migration that failed.
        version: u32,
        /// Why.
        source: tokio_postgres::Error,
    },
    /// A statement or the connection failed.
    #[error("PostgreSQL: {}", describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// The pool could not be built.
    #[error("PostgreSQL pool: {0}")]
    Build(#[from] deadpool_postgres::BuildError),
    /// No connection could be had from the pool.
    #[error("PostgreSQL pool: {}", describe_pool(.0))]
    Pool(#[from] deadpool_postgres::PoolError),
}

/// tokio-postgres's `Display` names only the kind ("db error"); the
/// server's message is in the source.
fn describe(e: &tokio_postgres::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

fn describe_pool(e: &deadpool_postgres::PoolError) -> String {
    match e {
        deadpool_postgres::PoolError::Backend(e) => describe(e),
        other => other.to_string(),
    }
}
