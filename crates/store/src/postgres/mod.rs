//! The PostgreSQL store, for an agency that runs several front nodes on
//! one replicated database (issue 18). This first increment is the
//! schema and the connection: the [`Store`](crate::Store) methods come
//! with the store trait.
//!
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

mod error;
pub mod pool;
pub mod schema;

pub use error::Error;
pub use pool::{Pool, PoolOptions, connect};
pub use schema::{LATEST_VERSION, migrate};
