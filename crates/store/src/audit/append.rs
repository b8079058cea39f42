//! Appending an entry in the transaction of the event it records.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::encoding::*;
use crate::error::Error;

/// A signed envelope a write stores, to be committed by its event's entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Evidence<'a> {
    pub(crate) kind: EvidenceKind,
    pub(crate) key: &'a str,
    pub(crate) key2: &'a str,
    pub(crate) bytes: &'a [u8],
}

impl Evidence<'_> {
    pub(crate) fn reference(&self) -> EvidenceRef {
        EvidenceRef {
            location: Location {
                kind: self.kind,
                key: self.key.to_owned(),
                key2: self.key2.to_owned(),
            },
            digest: sha256(self.bytes),
        }
    }
}

/// Appends the entry recording `event` (already inserted) and `evidence`,
/// after the last entry. Runs in the caller's transaction, so the entry
/// commits or rolls back with the event.
pub(crate) fn append(
    conn: &Connection,
    event: &AuditEvent,
    evidence: &[Evidence<'_>],
) -> Result<(), Error> {
    // The last entry is the end of the rowid B-tree: one seek, no scan.
    let last: Option<(i64, Vec<u8>)> = conn
        .prepare_cached("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (seq, prev) = match last {
        None => (1, GENESIS),
        Some((seq, hash)) => (
            u64::try_from(seq).unwrap_or(0) + 1,
            hash.try_into().map_err(|_| {
                Error::Damaged(format!("audit entry {seq} has a hash that is not 32 bytes"))
            })?,
        ),
    };
    let refs: Vec<EvidenceRef> = evidence.iter().map(Evidence::reference).collect();
    insert_entry(conn, seq, &prev, event, &refs)?;
    Ok(())
}

pub(super) fn insert_entry(
    conn: &Connection,
    seq: u64,
    prev: &[u8; 32],
    event: &AuditEvent,
    evidence: &[EvidenceRef],
) -> Result<[u8; 32], Error> {
    let encoded = encode_evidence(evidence);
    let hash = entry_hash(seq, prev, event, &encoded);
    conn.prepare_cached(
        "INSERT INTO audit_log (seq, event_id, at, kind, alert_id, agency, direction, detail, evidence, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        i64::try_from(seq).unwrap_or(i64::MAX),
        event.id,
        event.at,
        event.kind,
        event.alert_id,
        event.agency,
        event.direction,
        event.detail,
        encoded,
        prev.as_slice(),
        hash.as_slice(),
    ])?;
    Ok(hash)
}

pub(super) const EVENT_COLUMNS: &str = "id, at, kind, alert_id, agency, direction, detail";
/// The same, as `audit_log` holds them.
pub(super) const ENTRY_EVENT_COLUMNS: &str =
    "event_id, at, kind, alert_id, agency, direction, detail";

pub(super) fn audit_event(r: &Row<'_>, first: usize) -> rusqlite::Result<AuditEvent> {
    Ok(AuditEvent {
        id: r.get(first)?,
        at: r.get(first + 1)?,
        kind: r.get(first + 2)?,
        alert_id: r.get(first + 3)?,
        agency: r.get(first + 4)?,
        direction: r.get(first + 5)?,
        detail: r.get(first + 6)?,
    })
}
