//! Tocsin in STIX 2.1, the language MISP and OpenCTI speak: a pure
//! mapping, with no I/O, so the command line is a thin adapter over it.
//!
//! - [`export()`]: an agency's alerts, hit reports and watchlist entries
//!   as one STIX 2.1 bundle. Alerts become `report`s about `identity`
//!   objects, hit reports `sighting`s of the entry's `identity`, entries
//!   `identity` objects of individuals; every agency is an `identity`
//!   organisation and the `created_by_ref` of what it wrote.
//! - [`import()`]: the STIX `identity` objects of individuals in a bundle
//!   as watchlist [`EntryDraft`](tocsin_core::watchlist::EntryDraft)s, all
//!   or none, every refusal naming the object.
//! - [`ids`]: deterministic (UUIDv5) STIX ids from Tocsin ids, so a
//!   re-export names every object as the last one did.
//! - [`markings`]: the FIRST TLP 2.0 marking definitions as OASIS
//!   publishes them, and STIX confidence from Admiralty credibility.
//!
//! The mapping, property by property, is in `docs/stix.md`.

#![forbid(unsafe_code)]

mod export;
pub mod ids;
mod import;
pub mod markings;
mod props;

pub use export::{Export, HeldEntry, export};
pub use import::{Error, Imported, import};

#[cfg(test)]
mod tests;
