//! Stored rows as the operator service shows them.

use prost::Message;
use tocsin_core::{Alert, to_timestamp};
use tocsin_proto::pb;
use tocsin_store::{AlertRow, DeliveryRow, DeliveryState, Direction};

use crate::Error;

pub(crate) fn decode_envelope(bytes: &[u8]) -> Result<pb::Envelope, Error> {
    pb::Envelope::decode(bytes)
        .map_err(|e| Error::Unavailable(format!("stored envelope unreadable: {e}")))
}

pub(crate) fn decode_alert(envelope: &[u8]) -> Result<Alert, Error> {
    let env = decode_envelope(envelope)?;
    let wire = pb::Alert::decode(env.payload.as_slice())
        .map_err(|e| Error::Unavailable(format!("stored alert unreadable: {e}")))?;
    Alert::try_from(wire).map_err(|e| Error::Unavailable(format!("stored alert invalid: {e}")))
}

pub(crate) fn record(row: &AlertRow, deliveries: &[DeliveryRow]) -> Result<pb::AlertRecord, Error> {
    let envelope = decode_envelope(&row.envelope)?;
    let alert = pb::Alert::decode(envelope.payload.as_slice())
        .map_err(|e| Error::Unavailable(format!("stored alert unreadable: {e}")))?;
    let receipt = row.receipt.as_deref().map(decode_envelope).transpose()?;
    let deliveries = deliveries
        .iter()
        .map(|d| {
            Ok(pb::Delivery {
                recipient: d.recipient.clone(),
                state: match d.state {
                    DeliveryState::Pending => pb::DeliveryState::Pending,
                    DeliveryState::Delivered => pb::DeliveryState::Delivered,
                    DeliveryState::Rejected => pb::DeliveryState::Rejected,
                } as i32,
                attempts: d.attempts,
                last_error: d.last_error.clone().unwrap_or_default(),
                next_attempt_at: d.next_attempt_at.map(to_timestamp),
                delivered_at: d.delivered_at.map(to_timestamp),
                receipt: d.receipt.as_deref().map(decode_envelope).transpose()?,
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
    })
}
