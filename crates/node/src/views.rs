//! Stored rows as the domain shows them to operators: an alert with its
//! deliveries and acknowledgements, an event, a subject flag. These are
//! domain types, without protobuf or tonic; the operator service's
//! handlers turn them into the wire records (`service::convert`).
//!
//! Signed messages stay in their signed wire form (`pb::Envelope`): they
//! are shown exactly as signed, so that an operator can check them.

use chrono::{DateTime, Utc};
use prost::Message;
use tocsin_core::Alert;
use tocsin_core::ack::Acknowledgement;
use tocsin_proto::pb;
use tocsin_store::{
    AckRow, AlertHistory, AlertStatus, DeadlineFlag, DeliveryRow, DeliveryState, Direction,
    EventKind, LadderStep,
};

use crate::Error;

pub(crate) fn decode_envelope(bytes: &[u8]) -> Result<pb::Envelope, Error> {
    pb::Envelope::decode(bytes).map_err(|e| Error::corrupt("stored envelope unreadable", e))
}

pub(crate) fn decode_alert(envelope: &[u8]) -> Result<Alert, Error> {
    alert_of(&decode_envelope(envelope)?)
}

fn alert_of(envelope: &pb::Envelope) -> Result<Alert, Error> {
    let wire = pb::Alert::decode(envelope.payload.as_slice())
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

/// One alert, sent or received, with what became of it.
#[derive(Debug, Clone)]
pub(crate) struct AlertView {
    /// The alert.
    pub(crate) alert: Alert,
    /// The alert as its originator signed it.
    pub(crate) envelope: pb::Envelope,
    /// Sent or received.
    pub(crate) direction: Direction,
    /// When this node committed it.
    pub(crate) stored_at: DateTime<Utc>,
    /// Sent: one per recipient. Received: none.
    pub(crate) deliveries: Vec<DeliveryView>,
    /// Received: the receipt this node issued.
    pub(crate) receipt: Option<pb::Envelope>,
    /// When recipients must acknowledge it.
    pub(crate) due_at: Option<DateTime<Utc>>,
    /// Received: this node's deadline flag and when it was raised; sent
    /// alerts are flagged per delivery.
    pub(crate) flag: Option<(DeadlineFlag, Option<DateTime<Utc>>)>,
    /// Received: the reminders this node has had about it.
    pub(crate) reminders: u32,
    /// Whether a later alert closed it.
    pub(crate) status: AlertStatus,
    /// The later alert that closed it.
    pub(crate) closed_by: Option<String>,
    /// Received: this agency's acknowledgements of it.
    pub(crate) acknowledgements: Vec<AckView>,
}

/// Where a delivery stands, as an operator sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeliveryStatus {
    /// Still tried.
    Pending,
    /// Still tried, but the recipient refuses us for now (see the reason).
    Blocked,
    /// Receipted.
    Delivered,
    /// Refused for good.
    Rejected,
}

/// One recipient of an alert this node sent.
#[derive(Debug, Clone)]
pub(crate) struct DeliveryView {
    /// The recipient agency.
    pub(crate) recipient: String,
    /// Where it stands.
    pub(crate) status: DeliveryStatus,
    /// Attempts so far.
    pub(crate) attempts: u32,
    /// Why the last attempt failed.
    pub(crate) last_error: Option<String>,
    /// When the next attempt is due, while pending.
    pub(crate) next_attempt_at: Option<DateTime<Utc>>,
    /// Why the recipient refuses us for now.
    pub(crate) blocked_reason: Option<String>,
    /// When the recipient committed it, from its receipt.
    pub(crate) delivered_at: Option<DateTime<Utc>>,
    /// The recipient's receipt.
    pub(crate) receipt: Option<pb::Envelope>,
    /// When the recipient must acknowledge by.
    pub(crate) due_at: Option<DateTime<Utc>>,
    /// The deadline's flag.
    pub(crate) flag: DeadlineFlag,
    /// When the flag was raised.
    pub(crate) flagged_at: Option<DateTime<Utc>>,
    /// Escalation rung (0 none, 1 reminded, 2 escalated, 3 lapsed).
    pub(crate) ladder: LadderStep,
    /// When the next rung falls, while the ladder goes on.
    pub(crate) next_step_at: Option<DateTime<Utc>>,
    /// The recipient's acknowledgements.
    pub(crate) acknowledgements: Vec<AckView>,
}

/// One acknowledgement, sent or received.
#[derive(Debug, Clone)]
pub(crate) struct AckView {
    /// The acknowledgement.
    pub(crate) ack: Acknowledgement,
    /// As its recipient signed it.
    pub(crate) envelope: pb::Envelope,
    /// How long after the deadline it was given (0 in time).
    pub(crate) late_by_seconds: u64,
    /// Sent by this node: whether the originator has it. Received: true.
    pub(crate) delivered: bool,
    /// Sent by this node: the originator's refusal, if it refused it.
    pub(crate) refusal: Option<String>,
}

/// One event of the stream operators watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EventView {
    /// Increasing id, to resume after.
    pub(crate) id: u64,
    /// When (node clock).
    pub(crate) at: DateTime<Utc>,
    /// What happened (`None` for a code this node does not know).
    pub(crate) kind: EventKind,
    /// The alert concerned.
    pub(crate) alert_id: String,
    /// The other agency concerned.
    pub(crate) agency: String,
    /// Which way the alert went.
    pub(crate) direction: Direction,
    /// A readable account.
    pub(crate) detail: String,
}

/// A REPEATED_UNANSWERED flag on a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SubjectFlagView {
    /// The subject's canonical key.
    pub(crate) subject: String,
    /// Who or what the subject is.
    pub(crate) label: String,
    /// The agency that left the alerts unanswered.
    pub(crate) recipient: String,
    /// The alerts, oldest first.
    pub(crate) alert_ids: Vec<String>,
    /// When the flag was raised (or last grew).
    pub(crate) flagged_at: DateTime<Utc>,
}

/// Everything this node holds about one subject.
#[derive(Debug, Clone)]
pub(crate) struct SubjectView {
    /// The match keys found.
    pub(crate) keys: Vec<String>,
    /// The alerts about it.
    pub(crate) alerts: Vec<AlertView>,
    /// Its flags.
    pub(crate) flags: Vec<SubjectFlagView>,
}

/// One stored acknowledgement; lateness against `due_at`.
pub(crate) fn ack(row: &AckRow, due_at: Option<DateTime<Utc>>) -> Result<AckView, Error> {
    let envelope = decode_envelope(&row.ack.envelope)?;
    let wire = pb::Acknowledgement::decode(envelope.payload.as_slice())
        .map_err(|e| Error::corrupt("stored acknowledgement unreadable", e))?;
    let ack = Acknowledgement::try_from(wire)
        .map_err(|e| Error::corrupt("stored acknowledgement invalid", e))?;
    let late_by_seconds = due_at
        .map(|due| u64::try_from((row.ack.acknowledged_at - due).num_seconds()).unwrap_or(0))
        .unwrap_or(0);
    Ok(AckView {
        ack,
        envelope,
        late_by_seconds,
        delivered: row.delivered,
        refusal: row.refusal.clone(),
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

/// An alert with its deliveries and acknowledgements, as stored.
pub(crate) fn alert(history: &AlertHistory) -> Result<AlertView, Error> {
    let AlertHistory {
        alert: row,
        deliveries,
        acks,
    } = history;
    let envelope = decode_envelope(&row.envelope)?;
    let alert = alert_of(&envelope)?;
    let receipt = row.receipt.as_deref().map(decode_envelope).transpose()?;
    let deliveries = deliveries
        .iter()
        .map(|d| {
            Ok(DeliveryView {
                recipient: d.recipient.clone(),
                status: match d.state {
                    DeliveryState::Pending if d.blocked.is_some() => DeliveryStatus::Blocked,
                    DeliveryState::Pending => DeliveryStatus::Pending,
                    DeliveryState::Delivered => DeliveryStatus::Delivered,
                    DeliveryState::Rejected => DeliveryStatus::Rejected,
                },
                attempts: d.attempts,
                last_error: d.last_error.clone(),
                next_attempt_at: next_attempt_at(d, row.stored_at),
                blocked_reason: d.blocked.clone(),
                delivered_at: d.delivered_at,
                receipt: d.receipt.as_deref().map(decode_envelope).transpose()?,
                due_at: d.due_at,
                flag: d.flag,
                flagged_at: d.flagged_at,
                ladder: d.ladder,
                // The ladder stops at its last rung, on refusal, when the
                // recipient answers, or when a later alert closes this one.
                next_step_at: if d.ladder != LadderStep::Lapsed
                    && d.state != DeliveryState::Rejected
                    && row.closed_by.is_none()
                    && !acks.iter().any(|a| a.ack.agency == d.recipient)
                {
                    d.next_step_at
                } else {
                    None
                },
                acknowledgements: acks
                    .iter()
                    .filter(|a| a.ack.agency == d.recipient)
                    .map(|a| ack(a, d.due_at))
                    .collect::<Result<_, _>>()?,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let inbound = row.direction == Direction::Inbound;
    Ok(AlertView {
        alert,
        envelope,
        direction: row.direction,
        stored_at: row.stored_at,
        deliveries,
        receipt,
        due_at: row.due_at,
        flag: inbound.then_some((row.flag, row.flagged_at)),
        reminders: u32::try_from(row.reminders).unwrap_or(0),
        status: row.status,
        closed_by: row.closed_by.clone(),
        acknowledgements: if inbound {
            acks.iter()
                .map(|a| ack(a, row.due_at))
                .collect::<Result<_, _>>()?
        } else {
            Vec::new()
        },
    })
}

impl AlertView {
    /// What the operator who submitted this alert should know about its
    /// way out: one line per blocked delivery.
    pub(crate) fn submission_warnings(&self) -> Vec<String> {
        self.deliveries
            .iter()
            .filter(|d| d.status == DeliveryStatus::Blocked)
            .map(|d| {
                format!(
                    "{} is BLOCKED (kept in the outbox and still tried): {}",
                    d.recipient,
                    d.blocked_reason.as_deref().unwrap_or_default()
                )
            })
            .collect()
    }
}

/// A stored event as the watch stream sends it.
pub(crate) fn event(e: &tocsin_store::EventRow) -> EventView {
    EventView {
        id: e.id,
        at: e.at,
        kind: e.kind,
        alert_id: e.alert_id.clone(),
        agency: e.agency.clone(),
        direction: e.direction,
        detail: e.detail.clone(),
    }
}

/// A stored subject flag.
pub(crate) fn subject_flag(f: &tocsin_store::SubjectFlag) -> SubjectFlagView {
    SubjectFlagView {
        subject: f.subject.clone(),
        label: f.label.clone(),
        recipient: f.recipient.clone(),
        alert_ids: f.alert_ids.clone(),
        flagged_at: f.flagged_at,
    }
}
