//! Stored rows as the operator service shows them.

use chrono::{DateTime, Utc};
use prost::Message;
use tocsin_core::{Alert, to_timestamp};
use tocsin_proto::pb;
use tocsin_store::{AckRow, AlertHistory, DeliveryRow, DeliveryState, Direction};

use crate::Error;

pub(crate) fn decode_envelope(bytes: &[u8]) -> Result<pb::Envelope, Error> {
    pb::Envelope::decode(bytes).map_err(|e| Error::corrupt("stored envelope unreadable", e))
}

pub(crate) fn decode_alert(envelope: &[u8]) -> Result<Alert, Error> {
    let env = decode_envelope(envelope)?;
    let wire = pb::Alert::decode(env.payload.as_slice())
        .map_err(|e| Error::corrupt("stored alert unreadable", e))?;
    Alert::try_from(wire).map_err(|e| Error::corrupt("stored alert invalid", e))
}

/// A stored SHA-256 digest: anything but 32 bytes is corrupt data, never
/// something to sign in its place.
pub(crate) fn stored_digest(digest: &[u8]) -> Result<[u8; 32], Error> {
    digest.try_into().map_err(|_| Error::Corrupt {
        what: "stored digest is not 32 bytes".into(),
        cause: None,
    })
}

/// One stored acknowledgement; lateness against `due_at`.
pub(crate) fn ack_record(
    row: &AckRow,
    due_at: Option<DateTime<Utc>>,
) -> Result<pb::AckRecord, Error> {
    let envelope = decode_envelope(&row.ack.envelope)?;
    let ack = pb::Acknowledgement::decode(envelope.payload.as_slice())
        .map_err(|e| Error::corrupt("stored acknowledgement unreadable", e))?;
    let late_by_seconds = due_at
        .map(|due| u64::try_from((row.ack.acknowledged_at - due).num_seconds()).unwrap_or(0))
        .unwrap_or(0);
    Ok(pb::AckRecord {
        acknowledgement: Some(ack),
        envelope: Some(envelope),
        late_by_seconds,
        delivered: row.delivered,
        refusal: row.refusal.clone().unwrap_or_default(),
    })
}

/// When `d`'s next attempt is due, while it is pending. The store queues a
/// new delivery as due at the epoch ("at once, whatever the clock says");
/// that is shown as the time the alert was stored, `stored_at`.
fn next_attempt_at(d: &DeliveryRow, stored_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if d.state != DeliveryState::Pending {
        return None;
    }
    d.next_attempt_at.map(|at| {
        if at.timestamp_millis() <= 0 {
            stored_at
        } else {
            at
        }
    })
}

pub(crate) fn record(history: &AlertHistory) -> Result<pb::AlertRecord, Error> {
    let AlertHistory {
        alert: row,
        deliveries,
        acks,
    } = history;
    let envelope = decode_envelope(&row.envelope)?;
    let alert = pb::Alert::decode(envelope.payload.as_slice())
        .map_err(|e| Error::corrupt("stored alert unreadable", e))?;
    let receipt = row.receipt.as_deref().map(decode_envelope).transpose()?;
    let deliveries = deliveries
        .iter()
        .map(|d| {
            Ok(pb::Delivery {
                recipient: d.recipient.clone(),
                state: match d.state {
                    DeliveryState::Pending if d.blocked.is_some() => pb::DeliveryState::Blocked,
                    DeliveryState::Pending => pb::DeliveryState::Pending,
                    DeliveryState::Delivered => pb::DeliveryState::Delivered,
                    DeliveryState::Rejected => pb::DeliveryState::Rejected,
                } as i32,
                attempts: d.attempts,
                last_error: d.last_error.clone().unwrap_or_default(),
                next_attempt_at: next_attempt_at(d, row.stored_at).map(to_timestamp),
                blocked_reason: d.blocked.clone().unwrap_or_default(),
                delivered_at: d.delivered_at.map(to_timestamp),
                receipt: d.receipt.as_deref().map(decode_envelope).transpose()?,
                due_at: d.due_at.map(to_timestamp),
                flag: d.flag as i32,
                flagged_at: d.flagged_at.map(to_timestamp),
                ladder: d.ladder as i32,
                // The ladder stops at its last rung, on refusal, when the
                // recipient answers, or when a later alert closes this one.
                next_step_at: if d.ladder < 3
                    && d.state != DeliveryState::Rejected
                    && row.closed_by.is_none()
                    && !acks.iter().any(|a| a.ack.agency == d.recipient)
                {
                    d.next_step_at.map(to_timestamp)
                } else {
                    None
                },
                acknowledgements: acks
                    .iter()
                    .filter(|a| a.ack.agency == d.recipient)
                    .map(|a| ack_record(a, d.due_at))
                    .collect::<Result<_, _>>()?,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(pb::AlertRecord {
        alert: Some(alert),
        envelope: Some(envelope),
        direction: match row.direction {
            Direction::Outbound => pb::Direction::Outbound,
            Direction::Inbound => pb::Direction::Inbound,
        } as i32,
        stored_at: Some(to_timestamp(row.stored_at)),
        deliveries,
        receipt,
        due_at: row.due_at.map(to_timestamp),
        flag: if row.direction == Direction::Inbound {
            row.flag as i32
        } else {
            0
        },
        flagged_at: if row.direction == Direction::Inbound {
            row.flagged_at.map(to_timestamp)
        } else {
            None
        },
        reminders: u32::try_from(row.reminders).unwrap_or(0),
        status: i32::try_from(row.status).unwrap_or(0),
        closed_by: row.closed_by.clone().unwrap_or_default(),
        acknowledgements: if row.direction == Direction::Inbound {
            acks.iter()
                .map(|a| ack_record(a, row.due_at))
                .collect::<Result<_, _>>()?
        } else {
            Vec::new()
        },
    })
}

/// What the operator who submitted `record` should know about its way out:
/// one line per blocked delivery.
pub(crate) fn submission_warnings(record: &pb::AlertRecord) -> Vec<String> {
    record
        .deliveries
        .iter()
        .filter(|d| d.state == pb::DeliveryState::Blocked as i32)
        .map(|d| {
            format!(
                "{} is BLOCKED (kept in the outbox and still tried): {}",
                d.recipient, d.blocked_reason
            )
        })
        .collect()
}

/// A stored event as the watch stream sends it.
pub(crate) fn event(e: &tocsin_store::EventRow) -> pb::Event {
    pb::Event {
        id: e.id,
        at: Some(to_timestamp(e.at)),
        kind: i32::try_from(e.kind).unwrap_or(0),
        alert_id: e.alert_id.clone(),
        agency: e.agency.clone(),
        direction: match e.direction {
            Direction::Outbound => pb::Direction::Outbound,
            Direction::Inbound => pb::Direction::Inbound,
        } as i32,
        detail: e.detail.clone(),
    }
}

/// A subject flag as the operator service shows it.
pub(crate) fn subject_flag(f: &tocsin_store::SubjectFlag) -> pb::SubjectFlag {
    pb::SubjectFlag {
        subject: f.subject.clone(),
        label: f.label.clone(),
        recipient: f.recipient.clone(),
        alert_ids: f.alert_ids.clone(),
        flagged_at: Some(to_timestamp(f.flagged_at)),
    }
}
