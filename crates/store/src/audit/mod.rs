//! The tamper-evident record: an append-only, hash-chained audit log.
//!
//! Every event is written with one `audit_log` entry, in the same
//! transaction. An entry holds a copy of the event, the locations and
//! SHA-256 digests of the signed envelopes the step stored (its
//! *evidence*), the previous entry's hash and its own:
//!
//! ```text
//! hash(n) = SHA-256( bytes("tocsin/audit-entry/v1") || u64(seq) || bytes(hash(n-1))
//!                    || i64(event_id) || i64(at_ms) || i64(kind) || bytes(alert_id)
//!                    || bytes(agency) || i64(direction) || bytes(detail)
//!                    || bytes(evidence) )
//! evidence = u64(count) || { i64(kind) || bytes(key) || bytes(key2) || bytes(sha256) }*
//! ```
//!
//! `u64`/`i64` are 8 bytes big-endian; `bytes(x)` is `u64(len(x)) || x`;
//! strings are UTF-8; `hash(0)` is 32 zero bytes. The `evidence` column holds
//! exactly the `evidence` bytes hashed. An evidence digest is SHA-256 of the
//! envelope exactly as stored (the encoded `tocsin.v1.Envelope`).
//!
//! [`AuditReader`] opens a store read-only and checks it: the chain, each
//! event against the entry that recorded it, and every stored envelope
//! against the entry that recorded it. [`ChainCheck`] is the part that needs
//! only the entries, shared with exported bundles. Signatures are not
//! checked here: the store knows rows, not signatures.

//!
//! The module's parts: [`encoding`] (the entries, the evidence and the
//! signed head, and their canonical bytes), `append` (writing an entry in
//! an event's transaction), `backfill` (the chain for events stored before
//! the audit log existed), [`check`] (the chain and evidence checks, shared
//! with bundles) and [`reader`] (a read-only view of a store that checks
//! and exports it, from `source`'s rows: the same rows read from SQLite
//! or from PostgreSQL, so that both backends have the one check).

mod append;
mod backfill;
pub mod check;
pub mod encoding;
pub mod reader;
mod source;
#[cfg(test)]
mod tests;

pub(crate) use append::{Evidence, append};
pub(crate) use backfill::backfill;
pub use check::{ChainCheck, Finding, Problem, check_evidence, sort_findings};
pub use encoding::{
    AuditEntry, AuditEvent, AuditHead, EvidenceKind, EvidenceRef, GENESIS, Location,
    decode_evidence, encode_evidence, entry_hash, sha256,
};
pub use reader::{AuditReader, StoreCheck, StoreLocation};
pub(crate) use reader::{check_rows, open_sqlite};
pub(crate) use source::{PostgresRows, SqliteRows};
