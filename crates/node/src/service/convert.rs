//! Conversions between the domain's types and the protobuf the services
//! speak, in one place at the edge (restate's `pb_conversions`): what
//! comes in is checked and turned into domain types, naming the field
//! that is missing or bad; what goes out is built from domain views.

use prost::Message;
use tocsin_core::{Alert, AlertId, to_timestamp};
use tocsin_proto::pb;
use tocsin_store::Direction;
use tonic::Status;

use crate::domain::Submission;
use crate::views::{AckView, AlertView, DeliveryStatus, EventView, SubjectFlagView, SubjectView};

/// A signed message a request must carry: refused naming `field` when it
/// is missing.
pub(super) fn required_envelope(
    envelope: Option<pb::Envelope>,
    field: &str,
) -> Result<pb::Envelope, Status> {
    envelope.ok_or_else(|| {
        Status::invalid_argument(format!("invalid field `{field}`: missing envelope"))
    })
}

/// An operator's alert as this node submits it: the node names itself the
/// originator, sets the creation time to `now` and, unless the operator
/// chose one (for an idempotent resubmission), the id.
pub(super) fn submission(
    mut wire: pb::Alert,
    agency: &tocsin_core::AgencyId,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Submission, crate::Error> {
    if !wire.originator.is_empty() && wire.originator != agency.as_str() {
        return Err(crate::Error::PermissionDenied(format!(
            "originator {:?} is not this node's agency {agency}: an operator sends only for its own agency",
            wire.originator
        )));
    }
    let client_id = !wire.id.is_empty();
    if !client_id {
        wire.id = AlertId::generate().to_string();
    }
    wire.originator = agency.to_string();
    wire.created_at = Some(to_timestamp(now));
    Ok(Submission {
        alert: Alert::try_from(wire)?,
        client_id,
    })
}

/// The message a signed envelope carries. The view that holds the
/// envelope was built by decoding the same bytes, so this does not fail;
/// `domain` (the decoded value) stands in should it ever.
fn signed_payload<M: Message + Default>(envelope: &pb::Envelope, domain: impl FnOnce() -> M) -> M {
    M::decode(envelope.payload.as_slice()).unwrap_or_else(|_| domain())
}

fn direction(d: Direction) -> pb::Direction {
    match d {
        Direction::Outbound => pb::Direction::Outbound,
        Direction::Inbound => pb::Direction::Inbound,
    }
}

/// An acknowledgement as the operator service shows it.
pub(super) fn ack_record(a: &AckView) -> pb::AckRecord {
    pb::AckRecord {
        acknowledgement: Some(signed_payload(&a.envelope, || {
            pb::Acknowledgement::from(&a.ack)
        })),
        envelope: Some(a.envelope.clone()),
        late_by_seconds: a.late_by_seconds,
        delivered: a.delivered,
        refusal: a.refusal.clone().unwrap_or_default(),
    }
}

/// An alert as the operator service shows it: the alert exactly as signed.
pub(super) fn alert_record(v: &AlertView) -> pb::AlertRecord {
    let deliveries = v
        .deliveries
        .iter()
        .map(|d| pb::Delivery {
            recipient: d.recipient.clone(),
            state: match d.status {
                DeliveryStatus::Pending => pb::DeliveryState::Pending,
                DeliveryStatus::Blocked => pb::DeliveryState::Blocked,
                DeliveryStatus::Delivered => pb::DeliveryState::Delivered,
                DeliveryStatus::Rejected => pb::DeliveryState::Rejected,
            } as i32,
            attempts: d.attempts,
            last_error: d.last_error.clone().unwrap_or_default(),
            next_attempt_at: d.next_attempt_at.map(to_timestamp),
            blocked_reason: d.blocked_reason.clone().unwrap_or_default(),
            delivered_at: d.delivered_at.map(to_timestamp),
            receipt: d.receipt.clone(),
            due_at: d.due_at.map(to_timestamp),
            flag: d.flag.code() as i32,
            flagged_at: d.flagged_at.map(to_timestamp),
            ladder: d.ladder.code() as i32,
            next_step_at: d.next_step_at.map(to_timestamp),
            acknowledgements: d.acknowledgements.iter().map(ack_record).collect(),
        })
        .collect();
    pb::AlertRecord {
        alert: Some(signed_payload(&v.envelope, || pb::Alert::from(&v.alert))),
        envelope: Some(v.envelope.clone()),
        direction: direction(v.direction) as i32,
        stored_at: Some(to_timestamp(v.stored_at)),
        deliveries,
        receipt: v.receipt.clone(),
        due_at: v.due_at.map(to_timestamp),
        flag: v.flag.map_or(0, |(flag, _)| flag.code() as i32),
        flagged_at: v.flag.and_then(|(_, at)| at).map(to_timestamp),
        reminders: v.reminders,
        status: v.status.code() as i32,
        closed_by: v.closed_by.clone().unwrap_or_default(),
        acknowledgements: v.acknowledgements.iter().map(ack_record).collect(),
    }
}

/// An event as the watch stream sends it.
pub(super) fn event(e: &EventView) -> pb::Event {
    pb::Event {
        id: e.id,
        at: Some(to_timestamp(e.at)),
        kind: e.kind.code() as i32,
        alert_id: e.alert_id.clone(),
        agency: e.agency.clone(),
        direction: direction(e.direction) as i32,
        detail: e.detail.clone(),
    }
}

/// A subject flag as the operator service shows it.
pub(super) fn subject_flag(f: &SubjectFlagView) -> pb::SubjectFlag {
    pb::SubjectFlag {
        subject: f.subject.clone(),
        label: f.label.clone(),
        recipient: f.recipient.clone(),
        alert_ids: f.alert_ids.clone(),
        flagged_at: Some(to_timestamp(f.flagged_at)),
    }
}

/// A subject as the operator service shows it.
pub(super) fn subject_record(s: &SubjectView) -> pb::SubjectRecord {
    pb::SubjectRecord {
        keys: s.keys.clone(),
        alerts: s.alerts.iter().map(alert_record).collect(),
        flags: s.flags.iter().map(subject_flag).collect(),
    }
}

/// A ranked owed item as the operator gets it.
pub(super) fn triage_item(t: &crate::domain::TriagedView) -> pb::TriageItem {
    use pb::triage_reason::Kind;
    use tocsin_triage::Reason;
    let r = &t.ranked;
    pb::TriageItem {
        rank: r.rank as u32,
        tier: r.tier.to_wire(),
        record: Some(alert_record(&t.view)),
        reasons: r
            .reasons
            .iter()
            .map(|reason| pb::TriageReason {
                kind: match reason {
                    Reason::Precedence { .. } => Kind::Precedence,
                    Reason::Raised { .. } => Kind::Raised,
                    Reason::DueIn { .. } => Kind::DueIn,
                    Reason::Overdue { .. } => Kind::Overdue,
                    Reason::Grading { .. } => Kind::Grading,
                    Reason::Corroborated { .. } => Kind::Corroborated,
                    Reason::Hits { .. } => Kind::Hits,
                    Reason::RepeatedUnanswered => Kind::RepeatedUnanswered,
                } as i32,
                text: reason.to_string(),
            })
            .collect(),
        reasons_text: r.reasons_text(),
        corroborating_agencies: r.item.originators.clone(),
        hits: r.item.hits as u32,
        repeated_unanswered: r.item.repeated_unanswered,
    }
}
