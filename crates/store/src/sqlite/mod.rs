//! The embedded backend: one SQLite file under the node's data directory
//! (bundled, WAL, `synchronous = FULL`).
//!
//! - `db` holds [`Sqlite`], the handle: one writer thread that batches
//!   whatever is queued into one transaction (group commit: many writers
//!   share one fsync, and each write runs in its own savepoint only when
//!   one of the batch failed), and a small pool of read-only connections
//!   that WAL lets run beside the writer. Its migrations are in
//!   `migrations/`; [`Sqlite::open`] migrates to the latest version.
//! - One module per kind of row implements that kind's trait: `records`
//!   ([`crate::RecordStore`]), `acks`, `messages`, `ladder`, `events`,
//!   `open`, `subjects`, `blocks`, `hits` and `watchlist`.
//! - Leaves: `sql` (times, SQL text that spells codes, built once, and the
//!   conditions that match the partial indexes) and `schema` (the file's
//!   path, schema versions).
//!
//! The single writer gives every event and audit entry its place in one
//! total order for free: ids are allocated and committed by one thread.

pub(crate) mod acks;
pub(crate) mod blocks;
pub(crate) mod db;
pub(crate) mod events;
pub(crate) mod hits;
pub(crate) mod ladder;
pub(crate) mod leases;
pub(crate) mod messages;
pub(crate) mod open;
pub(crate) mod records;
pub(crate) mod schema;
pub(crate) mod sql;
pub(crate) mod subjects;
pub(crate) mod watchlist;

pub(crate) use db::Sqlite;
