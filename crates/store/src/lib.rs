//! Tocsin's durable store: an embedded SQLite database (bundled, WAL,
//! `synchronous = FULL`) under the node's data directory.
//!
//! - [`Store`] is the handle: cheap to clone, async methods.
//! - Writes go to one writer thread that batches whatever is queued into one
//!   transaction (group commit): many concurrent writers share one fsync, and
//!   each write runs in its own savepoint so one failure spoils no other. A
//!   write's future resolves only after its transaction is durable.
//! - Reads go through a small pool of read-only connections, which WAL lets
//!   run beside the writer.
//! - The schema is versioned; [`Store::open`] migrates to the latest version.
//! - Every event is written with an entry of the hash-chained audit log in
//!   the same transaction; [`audit`] documents the chain and checks it.
//!
//! The store knows rows, not signatures or protocols: the node crate decides
//! what goes in.
//!
//! One module per kind of row: `records` (alerts and deliveries), `acks`
//! (acknowledgements), `messages` (the outbox of acknowledgements,
//! reminders and notices to send), `ladder` (escalation steps), `events`
//! (the event log and the deadline tracker's queries), `open` (what is
//! awaited, owed, overdue), `subjects` (REPEATED_UNANSWERED), `blocks`
//! (peers whose certificates are revoked), [`codes`] (the integer codes, as
//! enums) and [`audit`] (the chain).

#![forbid(unsafe_code)]

mod acks;
pub mod audit;
mod blocks;
pub mod codes;
mod db;
mod events;
mod ladder;
mod messages;
mod open;
mod records;
mod subjects;

pub use acks::*;
pub use codes::{AlertStatus, DeadlineFlag, EventKind, MessageKind};
pub use db::{Store, StoreOptions};
pub use events::*;
pub use ladder::*;
pub use messages::*;
pub use records::*;
pub use subjects::*;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite failed.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
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
    /// The row a write refers to does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The store has been closed, or its writer could not start a transaction.
    #[error("the store is closed or cannot write")]
    Closed,
}
