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
//! what goes in. Nor does it hold policy or wording: thresholds and the
//! text of the events it writes come with each request (as a string, or
//! as a function when the text depends on what the transaction finds).
//!
//! One module per kind of row: `records` (alerts and deliveries), `acks`
//! (acknowledgements), `messages` (the outbox of acknowledgements,
//! reminders and notices to send), `ladder` (escalation steps), `events`
//! (the event log and the deadline tracker's queries), `open` (what is
//! awaited, owed, overdue), `subjects` (REPEATED_UNANSWERED), `blocks`
//! (peers whose certificates are revoked), `hits` (the hit reports
//! sent, for their repeat window), `watchlist` (this agency's
//! watchlist log and entries, those held from other owners, and the cursor
//! kept per owner) and [`audit`] (the chain). They
//! stand on leaves that import none of them: [`codes`] (every integer code
//! as an enum, converted to and from SQL; an unknown stored code is
//! [`Error::Corrupt`]), `sql` (times, SQL text that spells codes, built
//! once, and the conditions that match the partial indexes), `schema`
//! (the database file, schema versions) and `error`; `db` (the [`Store`]
//! handle, its writer and readers) stands on them and `audit`. No module
//! imports one that imports it back.

#![forbid(unsafe_code)]

mod acks;
pub mod audit;
mod blocks;
pub mod codes;
mod db;
mod error;
mod events;
mod hits;
mod ladder;
mod messages;
mod open;
pub mod postgres;
mod records;
mod schema;
mod sql;
mod subjects;
mod watchlist;

pub use acks::*;
pub use codes::{
    AlertStatus, DeadlineFlag, DeliveryState, Direction, EventKind, LadderStep, MessageKind,
};
pub use db::{Store, StoreOptions};
pub use error::Error;
pub use events::*;
pub use hits::*;
pub use ladder::*;
pub use messages::*;
pub use records::*;
pub use subjects::*;
pub use watchlist::*;
