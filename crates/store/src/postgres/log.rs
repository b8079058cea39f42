//! The event log and the audit chain on PostgreSQL: an event and the
//! entry that records it are written in the transaction of the change
//! they record, numbered from `sequences` in that transaction (see
//! [`super::db`] for why that gives commit order).

use crate::audit::Evidence;
use crate::audit::encoding::{AuditEvent, EvidenceRef, GENESIS, encode_evidence, entry_hash};
use crate::error::Error;
use crate::events::NewEvent;
use crate::millis::ms;

use super::db::Tx;

/// Inserts an event and its audit entry; for steps that store no signed
/// envelope.
pub(crate) async fn insert_event(tx: &mut Tx, event: NewEvent<'_>) -> Result<i64, Error> {
    insert_event_with(tx, event, &[]).await
}

/// Inserts an event and its audit entry, which commits to the signed
/// envelopes the same step stored (`evidence`). Returns the event's id.
pub(crate) async fn insert_event_with(
    tx: &mut Tx,
    e: NewEvent<'_>,
    evidence: &[Evidence<'_>],
) -> Result<i64, Error> {
    let id = tx.next_value("events").await?;
    let event = AuditEvent {
        id,
        at: ms(e.at),
        kind: e.kind.code(),
        alert_id: e.alert_id.to_owned(),
        agency: e.agency.to_owned(),
        direction: e.direction.code(),
        detail: e.detail.to_owned(),
    };
    tx.client()
        .execute(
            "INSERT INTO events (id, at, kind, alert_id, agency, direction, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &event.id,
                &event.at,
                &event.kind,
                &event.alert_id,
                &event.agency,
                &event.direction,
                &event.detail,
            ],
        )
        .await?;
    let refs: Vec<EvidenceRef> = evidence.iter().map(Evidence::reference).collect();
    append(tx, &event, &refs).await?;
    tx.note_events();
    Ok(id)
}

/// Appends the entry recording `event` after the last one.
async fn append(tx: &mut Tx, event: &AuditEvent, evidence: &[EvidenceRef]) -> Result<(), Error> {
    let seq = tx.next_value("audit_log").await?;
    let prev: [u8; 32] = if seq == 1 {
        GENESIS
    } else {
        let row = tx
            .client()
            .query_opt("SELECT hash FROM audit_log WHERE seq = $1", &[&(seq - 1)])
            .await?
            .ok_or_else(|| {
                Error::Damaged(format!(
                    "audit entry {} is missing, before the next one ({seq})",
                    seq - 1
                ))
            })?;
        let hash: Vec<u8> = row.try_get(0)?;
        hash.try_into().map_err(|_| {
            Error::Damaged(format!(
                "audit entry {} has a hash that is not 32 bytes",
                seq - 1
            ))
        })?
    };
    let encoded = encode_evidence(evidence);
    let sequence = u64::try_from(seq)
        .map_err(|_| Error::Damaged(format!("audit sequence {seq} is not positive")))?;
    let hash = entry_hash(sequence, &prev, event, &encoded);
    tx.client()
        .execute(
            "INSERT INTO audit_log (seq, event_id, at, kind, alert_id, agency, direction, detail, evidence, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &[
                &seq,
                &event.id,
                &event.at,
                &event.kind,
                &event.alert_id,
                &event.agency,
                &event.direction,
                &event.detail,
                &encoded,
                &prev.as_slice(),
                &hash.as_slice(),
            ],
        )
        .await?;
    Ok(())
}
