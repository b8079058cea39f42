//! The store's error.

use crate::codes::UnknownCode;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite failed.
    #[error("database: {0}")]
    Sqlite(#[source] rusqlite::Error),
    /// PostgreSQL failed, or could not be reached.
    #[error(transparent)]
    Postgres(#[from] crate::postgres::Error),
    /// The schema could not be migrated.
    #[error("schema migration: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    /// The transaction holding this write failed to commit.
    #[error("commit failed: {0}")]
    Commit(String),
    /// The data directory could not be prepared.
    #[error("data directory {path}: {cause}")]
    Io {
        /// The directory.
        path: String,
        /// The cause.
        #[source]
        cause: std::io::Error,
    },
    /// An alert with this id but other content is already stored.
    #[error("alert {0} is already stored with different content")]
    Conflict(String),
    /// The key a write would add is taken (a watchlist entry's ref).
    #[error("{0}")]
    Exists(String),
    /// The row a write refers to does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A write that only the holder of lease `name` may make was refused:
    /// this handle does not hold it, or no longer at the epoch it took it
    /// with (another front node took it over). The work stops; whoever
    /// holds the lease does it.
    #[error("the {name} lease is held by another front node")]
    LeaseLost {
        /// The lease.
        name: &'static str,
    },
    /// The store has been closed, or its writer could not start a transaction.
    #[error("the store is closed or cannot write")]
    Closed,
    /// A stored value is not what this store ever writes (a hash that is
    /// not 32 bytes): the database was damaged or edited. Retrying cannot
    /// help.
    #[error("corrupt store: {0}")]
    Damaged(String),
    /// A stored row holds what this store never writes (a code that names
    /// nothing): the database was damaged or edited. Retrying cannot help.
    #[error("corrupt store: {what} code {code} names nothing")]
    Corrupt {
        /// What the value should have been (the code's enum).
        what: &'static str,
        /// The value found.
        code: i64,
    },
}

impl From<rusqlite::Error> for Error {
    /// A row that cannot be read because a code in it is unknown is
    /// corrupt data, not a failure of SQLite.
    fn from(e: rusqlite::Error) -> Self {
        if let rusqlite::Error::FromSqlConversionFailure(_, _, cause) = &e
            && let Some(unknown) = cause.downcast_ref::<UnknownCode>()
        {
            return Error::Corrupt {
                what: unknown.what,
                code: unknown.code,
            };
        }
        Error::Sqlite(e)
    }
}

impl From<UnknownCode> for Error {
    fn from(e: UnknownCode) -> Self {
        Error::Corrupt {
            what: e.what,
            code: e.code,
        }
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        Error::Postgres(crate::postgres::Error::Postgres(e))
    }
}

impl From<deadpool_postgres::PoolError> for Error {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Error::Postgres(crate::postgres::Error::Pool(e))
    }
}
