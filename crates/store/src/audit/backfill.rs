//! The chain for events a store held before it had an audit log.

use std::collections::HashSet;

use rusqlite::{OptionalExtension, Transaction, params};

use super::append::*;
use super::encoding::*;
use crate::codes::EventKind;
use crate::error::Error;

/// Builds the chain for the events a store held before it had an audit log
/// (migration 008). Each event gets the evidence that a write of its kind
/// stores, found by its alert; what cannot be tied to one event (outbox
/// reminders and notices, which do not name their alert in the store) is
/// committed by the last entry.
pub(crate) fn backfill(tx: &Transaction<'_>) -> Result<(), Error> {
    let events: Vec<AuditEvent> = tx
        .prepare(&format!("SELECT {EVENT_COLUMNS} FROM events ORDER BY id"))?
        .query_map([], |r| audit_event(r, 0))?
        .collect::<Result<_, _>>()?;
    if events.is_empty() {
        return Ok(());
    }
    let mut claimed: HashSet<Location> = HashSet::new();
    let mut planned: Vec<Vec<EvidenceRef>> = Vec::with_capacity(events.len());
    for e in &events {
        let mut refs = Vec::new();
        let mut claim = |kind: EvidenceKind, key: &str, key2: &str| -> Result<bool, Error> {
            let location = Location {
                kind,
                key: key.to_owned(),
                key2: key2.to_owned(),
            };
            if claimed.contains(&location) {
                return Ok(false);
            }
            let bytes: Option<Vec<u8>> = tx
                .prepare_cached(kind.select())?
                .query_row(params![key, key2], |r| r.get(0))
                .optional()?
                .flatten();
            let Some(bytes) = bytes else {
                return Ok(false);
            };
            refs.push(EvidenceRef {
                digest: sha256(&bytes),
                location: location.clone(),
            });
            claimed.insert(location);
            Ok(true)
        };
        match (EventKind::from_code(e.kind), e.direction) {
            (Some(EventKind::Submitted), _) => {
                claim(EvidenceKind::Alert, &e.alert_id, "")?;
            }
            (Some(EventKind::Received), _) => {
                claim(EvidenceKind::Alert, &e.alert_id, "")?;
                claim(EvidenceKind::ReceiptIssued, &e.alert_id, "")?;
            }
            (Some(EventKind::Delivered), _) => {
                claim(EvidenceKind::ReceiptReceived, &e.alert_id, &e.agency)?;
            }
            (Some(EventKind::Acknowledged), direction) => {
                // A recipient's acknowledgement names the recipient; ours is
                // recorded against the originator, so any agency matches.
                let ids: Vec<String> = tx
                    .prepare_cached(
                        "SELECT id, agency FROM acknowledgements WHERE alert_id = ?1
                         ORDER BY stored_at, rowid",
                    )?
                    .query_map([&e.alert_id], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                    })?
                    .filter_map(Result::ok)
                    .filter(|(_, agency)| direction == 2 || *agency == e.agency)
                    .map(|(id, _)| id)
                    .collect();
                for id in ids {
                    if claim(EvidenceKind::Acknowledgement, &id, "")? {
                        if direction == 2 {
                            claim(EvidenceKind::Message, &id, "")?;
                        }
                        break;
                    }
                }
            }
            (Some(EventKind::Reminded | EventKind::Escalated), 2) => {
                let ids: Vec<String> = tx
                    .prepare_cached(
                        "SELECT id FROM received_messages WHERE alert_id = ?1 AND agency = ?2
                         ORDER BY received_at, rowid",
                    )?
                    .query_map([&e.alert_id, &e.agency], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                for id in ids {
                    if claim(EvidenceKind::ReceivedMessage, &id, "")? {
                        break;
                    }
                }
            }
            _ => {}
        }
        planned.push(refs);
    }
    // Whatever no event claimed goes to the last entry.
    let mut leftover = Vec::new();
    for kind in EvidenceKind::ALL {
        let keys: Vec<(String, String)> = tx
            .prepare(kind.inventory())?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (key, key2) in keys {
            let location = Location { kind, key, key2 };
            if claimed.contains(&location) {
                continue;
            }
            let bytes: Option<Vec<u8>> = tx
                .prepare_cached(kind.select())?
                .query_row(params![location.key, location.key2], |r| r.get(0))
                .optional()?
                .flatten();
            if let Some(bytes) = bytes {
                leftover.push(EvidenceRef {
                    digest: sha256(&bytes),
                    location,
                });
            }
        }
    }
    if let Some(last) = planned.last_mut() {
        last.extend(leftover);
    }
    let mut prev = GENESIS;
    for (i, (event, refs)) in events.iter().zip(&planned).enumerate() {
        prev = insert_entry(tx, i as u64 + 1, &prev, event, refs)?;
    }
    Ok(())
}
