//! The signed records a verified bundle holds, decoded once: alerts (hit
//! reports among them), receipts, acknowledgements, reminders and
//! escalation notices, each with its signed time and the digest of what
//! its signer signed.

use chrono::{DateTime, Utc};
use prost::Message;
use serde::Serialize;
use tocsin_core::from_timestamp;
use tocsin_proto::{ACK_PAYLOAD_TYPE, NOTICE_PAYLOAD_TYPE, REMINDER_PAYLOAD_TYPE, pb};
use tocsin_store::audit::{AuditEntry, EvidenceKind};

/// What a signed record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordKind {
    /// An alert, signed by its originator.
    Alert,
    /// A hit report: an alert carrying a watchlist hit.
    HitReport,
    /// A receipt, signed by the recipient on delivery.
    Receipt,
    /// An acknowledgement, signed by the recipient.
    Acknowledgement,
    /// A reminder, signed by the originator.
    Reminder,
    /// An escalation notice to the observers, signed by the originator.
    Notice,
}

impl RecordKind {
    /// How the text form names it.
    pub fn name(self) -> &'static str {
        match self {
            RecordKind::Alert => "alert",
            RecordKind::HitReport => "hit report",
            RecordKind::Receipt => "receipt",
            RecordKind::Acknowledgement => "acknowledgement",
            RecordKind::Reminder => "reminder",
            RecordKind::Notice => "notice",
        }
    }

    /// Alerts and hit reports share one identity space (the alert id).
    pub(super) fn identity(self) -> RecordKind {
        match self {
            RecordKind::HitReport => RecordKind::Alert,
            k => k,
        }
    }
}

/// The decoded payload.
#[derive(Debug, Clone)]
pub(super) enum Body {
    Alert(Box<pb::Alert>),
    Receipt(pb::Receipt),
    Ack(pb::Acknowledgement),
    Reminder(pb::Reminder),
    Notice(pb::EscalationNotice),
}

/// One signed record as a bundle holds it.
#[derive(Debug, Clone)]
pub(super) struct Record {
    pub(super) kind: RecordKind,
    /// Its identity: the alert id, `alert/recipient` for a receipt, the
    /// message id otherwise.
    pub(super) key: String,
    pub(super) alert_id: String,
    pub(super) signer: String,
    /// The signed time.
    pub(super) at: DateTime<Utc>,
    /// SHA-256 of PAE(type, payload): what the signer signed.
    pub(super) digest: [u8; 32],
    pub(super) body: Body,
}

fn time(ts: Option<&prost_types::Timestamp>) -> DateTime<Utc> {
    ts.and_then(from_timestamp)
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The records of a bundle's entries, in chain order. An envelope that
/// does not decode is skipped: it cannot be, in a bundle that verified.
pub(super) fn records_of(entries: &[(AuditEntry, Vec<Option<Vec<u8>>>)]) -> Vec<Record> {
    let mut out = Vec::new();
    for (entry, found) in entries {
        for (r, bytes) in entry.evidence.iter().zip(found) {
            let Some(bytes) = bytes else { continue };
            if let Some(rec) = decode(r.location.kind, bytes) {
                out.push(rec);
            }
        }
    }
    out
}

fn decode(kind: EvidenceKind, bytes: &[u8]) -> Option<Record> {
    let env = pb::Envelope::decode(bytes).ok()?;
    let digest = tocsin_trust::signing::digest(&env);
    let p = env.payload.as_slice();
    let rec = match kind {
        EvidenceKind::Alert => {
            let a = pb::Alert::decode(p).ok()?;
            Record {
                kind: if a.hit.is_some() {
                    RecordKind::HitReport
                } else {
                    RecordKind::Alert
                },
                key: a.id.clone(),
                alert_id: a.id.clone(),
                signer: a.originator.clone(),
                at: time(a.created_at.as_ref()),
                digest,
                body: Body::Alert(Box::new(a)),
            }
        }
        EvidenceKind::ReceiptIssued | EvidenceKind::ReceiptReceived => {
            let r = pb::Receipt::decode(p).ok()?;
            Record {
                kind: RecordKind::Receipt,
                key: format!("{}/{}", r.alert_id, r.recipient),
                alert_id: r.alert_id.clone(),
                signer: r.recipient.clone(),
                at: time(r.received_at.as_ref()),
                digest,
                body: Body::Receipt(r),
            }
        }
        EvidenceKind::Acknowledgement | EvidenceKind::Message | EvidenceKind::ReceivedMessage => {
            match env.payload_type.as_str() {
                ACK_PAYLOAD_TYPE => {
                    let a = pb::Acknowledgement::decode(p).ok()?;
                    Record {
                        kind: RecordKind::Acknowledgement,
                        key: a.id.clone(),
                        alert_id: a.alert_id.clone(),
                        signer: a.recipient.clone(),
                        at: time(a.acknowledged_at.as_ref()),
                        digest,
                        body: Body::Ack(a),
                    }
                }
                REMINDER_PAYLOAD_TYPE => {
                    let r = pb::Reminder::decode(p).ok()?;
                    Record {
                        kind: RecordKind::Reminder,
                        key: r.id.clone(),
                        alert_id: r.alert_id.clone(),
                        signer: r.originator.clone(),
                        at: time(r.sent_at.as_ref()),
                        digest,
                        body: Body::Reminder(r),
                    }
                }
                NOTICE_PAYLOAD_TYPE => {
                    let n = pb::EscalationNotice::decode(p).ok()?;
                    Record {
                        kind: RecordKind::Notice,
                        key: n.id.clone(),
                        alert_id: n.alert_id.clone(),
                        signer: n.originator.clone(),
                        at: time(n.escalated_at.as_ref()),
                        digest,
                        body: Body::Notice(n),
                    }
                }
                _ => return None,
            }
        }
    };
    Some(rec)
}

/// A precedence's name, as operators write it.
pub(super) fn precedence_name(p: i32) -> String {
    tocsin_core::alert::Precedence::from_wire(p)
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|_| format!("precedence {p}"))
}

impl Record {
    /// What it says, in one line.
    pub(super) fn summary(&self) -> String {
        match &self.body {
            Body::Alert(a) => {
                let to = a.recipients.join(", ");
                match &a.hit {
                    Some(h) => {
                        let place = if h.seen_place.is_empty() {
                            String::new()
                        } else {
                            format!(", seen at {}", h.seen_place)
                        };
                        format!(
                            "{} reports to {to} a hit on entry {}/{}{place} ({})",
                            a.originator,
                            h.entry_owner,
                            h.entry_ref,
                            precedence_name(a.precedence)
                        )
                    }
                    None => {
                        let mut text: String = a.text.chars().take(60).collect();
                        if a.text.chars().count() > 60 {
                            text.push('…');
                        }
                        format!(
                            "{} {} from {} to {to}: {text}",
                            precedence_name(a.precedence),
                            if a.category.is_empty() {
                                "alert"
                            } else {
                                &a.category
                            },
                            a.originator
                        )
                    }
                }
            }
            Body::Receipt(r) => format!("{} received it", r.recipient),
            Body::Ack(a) => {
                let d = pb::Disposition::try_from(a.disposition)
                    .map(|d| {
                        d.as_str_name()
                            .trim_start_matches("DISPOSITION_")
                            .to_owned()
                    })
                    .unwrap_or_default();
                format!("{} acknowledged it: {d} ({})", a.recipient, a.operator)
            }
            Body::Reminder(r) => format!(
                "{} reminded {} (step {}, due {})",
                r.originator,
                r.recipient,
                r.step,
                crate::federated::display::when(time(r.due_at.as_ref()))
            ),
            Body::Notice(n) => format!(
                "{} told the observers {} left it unanswered past {}",
                n.originator,
                n.recipient,
                crate::federated::display::when(time(n.due_at.as_ref()))
            ),
        }
    }
}
