//! Tocsin's durable store: what a node keeps, behind one trait.
//!
//! - [`Store`] is the handle: cheap to clone, async methods. It derefs to
//!   [`Backend`], the one trait a backend implements; nothing above the
//!   store knows which backend it holds.
//! - One module per kind of row declares that kind's types and its trait:
//!   `records` (alerts and deliveries, [`RecordStore`]), `acks`
//!   (acknowledgements), `messages` (the outbox of acknowledgements,
//!   reminders and notices to send), `ladder` (escalation steps), `events`
//!   (the event log and the deadline tracker's queries), `open` (what is
//!   awaited, owed, overdue), `subjects` (REPEATED_UNANSWERED), `blocks`
//!   (peers whose certificates are revoked), `hits` (the hit reports sent,
//!   for their repeat window) and `watchlist` (this agency's watchlist log
//!   and entries, those held from other owners, and the cursor kept per
//!   owner). [`backend`] joins them into [`Backend`].
//! - `sqlite` is the embedded backend (one file, WAL, group commit); its
//!   module documents how it writes.
//! - [`migrate`] moves an agency's SQLite store into an empty PostgreSQL
//!   database, row for row, and checks the audit chain on both sides.
//! - Every event is written with an entry of the hash-chained audit log in
//!   the same transaction; [`audit`] documents the chain and checks it.
//!
//! The store knows rows, not signatures or protocols: the node crate decides
//! what goes in. Nor does it hold policy or wording: thresholds and the
//! text of the events it writes come with each request (as a string, or
//! as a function when the text depends on what the transaction finds).
//! Leaves: [`codes`] (every integer code as an enum; an unknown stored
//! code is [`Error::Corrupt`]), `conditions` (SQL text both backends
//! share: the open-deadline and open-step conditions of the partial
//! indexes) and `error`.

#![forbid(unsafe_code)]

mod acks;
pub mod audit;
pub mod backend;
mod blocks;
pub mod codes;
mod conditions;
mod error;
mod events;
mod hits;
mod ladder;
mod leases;
mod messages;
pub mod migrate;
mod millis;
mod open;
pub mod postgres;
mod records;
mod sqlite;
mod store;
mod subjects;
mod watchlist;

pub use acks::*;
pub use backend::Backend;
pub use blocks::*;
pub use codes::{
    AlertStatus, DeadlineFlag, DeliveryState, Direction, EventKind, LadderStep, MessageKind,
};
pub use error::Error;
pub use events::*;
pub use hits::*;
pub use ladder::*;
pub use leases::*;
pub use messages::*;
pub use open::*;
pub use records::*;
pub use sqlite::db::StoreOptions;
pub use store::Store;
pub use subjects::*;
pub use watchlist::*;
