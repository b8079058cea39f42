//! The PostgreSQL store, for an agency that runs several front nodes on
//! one replicated database (issue 18). It implements the store's traits
//! one kind per module, as the SQLite backend does (`blocks`, `records`,
//! `open`, `subjects`, `hits`, `acks`, `messages`, `ladder`, `events` and
//! `watchlist`: all of them, so it is a [`crate::Backend`]). `records` also
//! holds the helpers other kinds write with (`insert_outbound_in`,
//! `with_history`, ...), and its tests the differential helpers every
//! kind's tests share; `acks` holds `acks_of` (an alert's history) and
//! `refused_ack_event` (the outbox's refusals).
//!
//! - `db` is the handle (`Postgres`): the pool, the write transaction
//!   (`Tx`) that serialises an agency's writes on one row lock so that
//!   numbers are handed out in commit order, the writer task that
//!   group-commits a handle's queued writes in one `Tx`, a savepoint
//!   each, and reads.
//! - `log` writes an event and its audit entry in the transaction of the
//!   change it records.
//! - `testing` (tests only) gives the same fresh store on both backends,
//!   so that tests make the same calls on each and compare.
//! - `migrations/` holds the SQL, one file per version; its first is the
//!   whole of today's SQLite schema, translated (same tables, columns and
//!   index names), plus the `sequences` table that allocates the event
//!   log's, the audit chain's and the own watchlist's numbers inside the
//!   write transaction, so that they are handed out in commit order.
//! - [`schema`] applies them: versioned, under a transaction-scoped
//!   advisory lock so front nodes starting together migrate once, and a
//!   database newer than this binary is refused.
//! - [`pool`] is the connection pool (deadpool-postgres over
//!   tokio-postgres), which migrates when it connects.
//! - [`Error`] is this backend's error, apart from the SQLite store's.

mod acks;
mod blocks;
mod db;
mod error;
mod events;
#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod front_nodes;
mod hits;
mod ladder;
mod leases;
mod listen;
mod log;
mod messages;
mod open;
pub mod pool;
mod records;
pub mod schema;
mod subjects;
#[cfg(test)]
mod testing;
mod watchlist;

pub(crate) use db::Postgres;
pub use error::Error;
pub use pool::{Pool, PoolOptions, connect, describe_url};
pub use schema::{LATEST_VERSION, migrate};
