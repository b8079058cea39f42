//! What operator commands print: aligned tables for people, JSON for
//! machines.

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use comfy_table::{Table, presets};
use prost::Message;
use serde::Serialize;
use tocsin_core::alert::{Disposition, Reference, Subject};
use tocsin_core::{Alert, time_of};
use tocsin_proto::pb;

#[derive(Debug, Serialize)]
struct ReceiptView {
    recipient: String,
    received_at: Option<DateTime<Utc>>,
    alert_digest: String,
    signed_by: String,
}

#[derive(Debug, Serialize)]
struct AckView {
    id: String,
    recipient: String,
    operator: String,
    disposition: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    note: String,
    acknowledged_at: Option<DateTime<Utc>>,
    late_by_seconds: u64,
    delivered: bool,
    /// Why the originator refused it for good, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<String>,
}

#[derive(Debug, Serialize)]
struct EventView {
    id: u64,
    at: Option<DateTime<Utc>>,
    kind: &'static str,
    alert_id: String,
    agency: String,
    direction: &'static str,
    detail: String,
}

pub(crate) fn event_kind(kind: i32) -> &'static str {
    match pb::EventKind::try_from(kind) {
        Ok(pb::EventKind::Submitted) => "SUBMITTED",
        Ok(pb::EventKind::Received) => "RECEIVED",
        Ok(pb::EventKind::Delivered) => "DELIVERED",
        Ok(pb::EventKind::Rejected) => "REJECTED",
        Ok(pb::EventKind::Acknowledged) => "ACKNOWLEDGED",
        Ok(pb::EventKind::Overdue) => "OVERDUE",
        Ok(pb::EventKind::Undelivered) => "UNDELIVERED",
        Ok(pb::EventKind::Reminded) => "REMINDED",
        Ok(pb::EventKind::Escalated) => "ESCALATED",
        Ok(pb::EventKind::Lapsed) => "LAPSED",
        Ok(pb::EventKind::Flagged) => "FLAGGED",
        Ok(pb::EventKind::Superseded) => "SUPERSEDED",
        Ok(pb::EventKind::Cancelled) => "CANCELLED",
        _ => "UNKNOWN",
    }
}

pub(crate) fn print_event(e: &pb::Event, json: bool) -> anyhow::Result<()> {
    let v = EventView {
        id: e.id,
        at: time_of(&e.at),
        kind: event_kind(e.kind),
        alert_id: e.alert_id.clone(),
        agency: e.agency.clone(),
        direction: if e.direction == pb::Direction::Outbound as i32 {
            "outbound"
        } else {
            "inbound"
        },
        detail: e.detail.clone(),
    };
    if json {
        println!("{}", serde_json::to_string(&v)?);
    } else if v.kind == "FLAGGED" {
        println!("!!!!!! #{} {}  {}", v.id, when(v.at), v.detail);
    } else {
        // Loud kinds stand out in a scrolling terminal.
        let marker = match v.kind {
            "OVERDUE" | "UNDELIVERED" | "ESCALATED" | "LAPSED" => "!!",
            _ => "  ",
        };
        println!(
            "{marker} #{:<5} {}  {:<12} {}  {}",
            v.id,
            when(v.at),
            v.kind,
            v.alert_id,
            v.detail
        );
    }
    Ok(())
}

fn ladder_name(step: i32) -> Option<&'static str> {
    match pb::LadderStep::try_from(step) {
        Ok(pb::LadderStep::Reminded) => Some("REMINDED"),
        Ok(pb::LadderStep::Escalated) => Some("ESCALATED"),
        Ok(pb::LadderStep::Lapsed) => Some("LAPSED"),
        _ => None,
    }
}

pub(crate) fn flag_name(flag: i32) -> Option<&'static str> {
    match pb::DeadlineFlag::try_from(flag) {
        Ok(pb::DeadlineFlag::Overdue) => Some("OVERDUE"),
        Ok(pb::DeadlineFlag::Undelivered) => Some("UNDELIVERED"),
        _ => None,
    }
}

/// An alert's status: ACTIVE, SUPERSEDED or CANCELLED.
pub(crate) fn status_name(status: i32) -> &'static str {
    match pb::AlertStatus::try_from(status) {
        Ok(pb::AlertStatus::Superseded) => "SUPERSEDED",
        Ok(pb::AlertStatus::Cancelled) => "CANCELLED",
        _ => "ACTIVE",
    }
}

/// A delivery state's name.
fn delivery_state(state: i32) -> &'static str {
    match pb::DeliveryState::try_from(state) {
        Ok(pb::DeliveryState::Pending) => "PENDING",
        Ok(pb::DeliveryState::Delivered) => "DELIVERED",
        Ok(pb::DeliveryState::Rejected) => "REJECTED",
        Ok(pb::DeliveryState::Blocked) => "BLOCKED",
        _ => "UNKNOWN",
    }
}

#[derive(Debug, Serialize)]
struct DeliveryView {
    recipient: String,
    state: &'static str,
    /// While BLOCKED: why it cannot go.
    #[serde(skip_serializing_if = "Option::is_none")]
    blocked_reason: Option<String>,
    attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_attempt_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivered_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    receipt: Option<ReceiptView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    due_at: Option<DateTime<Utc>>,
    acknowledgements: Vec<AckView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flag: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flagged_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ladder: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_step_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize)]
struct AlertView {
    id: String,
    direction: &'static str,
    originator: String,
    created_at: DateTime<Utc>,
    stored_at: Option<DateTime<Utc>>,
    precedence: String,
    category: String,
    tlp: String,
    source_reliability: String,
    information_credibility: String,
    recipients: Vec<String>,
    subjects: Vec<Subject>,
    text: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    references: Vec<Reference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    respond_by: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    deliveries: Vec<DeliveryView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    receipt: Option<ReceiptView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    due_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    acknowledgements: Vec<AckView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flag: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flagged_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "is_zero")]
    reminders: u32,
    status: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    closed_by: String,
    /// For a hit report: what was seen and which entry it matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    hit: Option<tocsin_core::hit::Hit>,
    /// What the node warned of when the alert was submitted (see
    /// `SubmitAlertResponse.warnings`); only in `alert send`'s answer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn receipt_view(env: &pb::Envelope) -> Option<ReceiptView> {
    let r = pb::Receipt::decode(env.payload.as_slice()).ok()?;
    Some(ReceiptView {
        recipient: r.recipient,
        received_at: time_of(&r.received_at),
        alert_digest: hex_of(&r.alert_digest),
        signed_by: env
            .signature
            .as_ref()
            .map(|s| s.signer.clone())
            .unwrap_or_default(),
    })
}

fn ack_view(a: &pb::AckRecord) -> AckView {
    let ack = a.acknowledgement.clone().unwrap_or_default();
    AckView {
        id: ack.id,
        recipient: ack.recipient,
        operator: ack.operator,
        disposition: Disposition::from_wire(ack.disposition)
            .map(|d| d.to_string())
            .unwrap_or_else(|_| "UNKNOWN".into()),
        note: ack.note,
        acknowledged_at: time_of(&ack.acknowledged_at),
        late_by_seconds: a.late_by_seconds,
        delivered: a.delivered,
        refusal: (!a.refusal.is_empty()).then(|| a.refusal.clone()),
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn view(record: &pb::AlertRecord) -> anyhow::Result<AlertView> {
    let wire = record.alert.clone().context("record without alert")?;
    let alert = Alert::try_from(wire).context("the node returned an invalid alert")?;
    let deliveries = record
        .deliveries
        .iter()
        .map(|d| DeliveryView {
            recipient: d.recipient.clone(),
            state: delivery_state(d.state),
            blocked_reason: (!d.blocked_reason.is_empty()).then(|| d.blocked_reason.clone()),
            attempts: d.attempts,
            last_error: (!d.last_error.is_empty()).then(|| d.last_error.clone()),
            next_attempt_at: time_of(&d.next_attempt_at),
            delivered_at: time_of(&d.delivered_at),
            receipt: d.receipt.as_ref().and_then(receipt_view),
            due_at: time_of(&d.due_at),
            acknowledgements: d.acknowledgements.iter().map(ack_view).collect(),
            flag: flag_name(d.flag),
            flagged_at: time_of(&d.flagged_at),
            ladder: ladder_name(d.ladder),
            next_step_at: time_of(&d.next_step_at),
        })
        .collect();
    Ok(AlertView {
        id: alert.id.to_string(),
        direction: if record.direction == pb::Direction::Outbound as i32 {
            "outbound"
        } else {
            "inbound"
        },
        originator: alert.originator.to_string(),
        created_at: alert.created_at,
        stored_at: time_of(&record.stored_at),
        precedence: alert.precedence.to_string(),
        category: alert.category.clone(),
        tlp: alert.tlp.to_string(),
        source_reliability: alert.source_reliability.to_string(),
        information_credibility: alert.information_credibility.to_string(),
        recipients: alert.recipients.iter().map(ToString::to_string).collect(),
        subjects: alert.subjects.clone(),
        text: alert.text.clone(),
        references: alert.references.clone(),
        expires_at: alert.expires_at,
        respond_by: alert.respond_by,
        deliveries,
        receipt: record.receipt.as_ref().and_then(receipt_view),
        due_at: time_of(&record.due_at),
        acknowledgements: record.acknowledgements.iter().map(ack_view).collect(),
        flag: flag_name(record.flag),
        flagged_at: time_of(&record.flagged_at),
        reminders: record.reminders,
        status: status_name(record.status),
        closed_by: record.closed_by.clone(),
        hit: alert.hit.clone(),
        warnings: Vec::new(),
    })
}

/// The rows that show a hit report's sighting.
fn hit_rows(t: &mut Table, hit: &tocsin_core::hit::Hit) {
    t.add_row(vec![
        "hit on".to_owned(),
        format!(
            "{}'s entry {} (change {}), score {:.2}, asks {}",
            hit.entry_owner, hit.entry_ref, hit.entry_seq, hit.score, hit.requested_action
        ),
    ]);
    let mut seen = Vec::new();
    if !hit.seen_place.is_empty() {
        seen.push(hit.seen_place.clone());
    }
    if let Some(at) = hit.seen_at {
        seen.push(when(Some(at)));
    }
    if !hit.screen_ref.is_empty() {
        seen.push(format!("screen {}", hit.screen_ref));
    }
    if !seen.is_empty() {
        t.add_row(vec!["seen".to_owned(), seen.join(", ")]);
    }
    if let Some(p) = &hit.screened {
        t.add_row(vec![
            "screened as".to_owned(),
            subjects_line(&[Subject::Person(p.clone())]),
        ]);
    }
    for (kind, value) in &hit.screened_identifiers {
        t.add_row(vec!["screened on".to_owned(), format!("{kind} {value}")]);
    }
    for r in &hit.reasons {
        t.add_row(vec!["evidence".to_owned(), r.clone()]);
    }
}

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_else(|| "-".into())
}

/// A span to the minute, as people write it: "3 h 12 min".
fn span(seconds: u64) -> String {
    tocsin_core::human_duration(seconds)
}

/// "due in 3 h 12 min" or "OVERDUE by 5 min", counted from `now`: the node's
/// clock, not this workstation's, since the deadlines run on the node's
/// (which may be a scenario's).
fn due_phrase(due: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(due) = due else {
        return "no deadline".into();
    };
    let left = (due - now).num_seconds();
    let abs = left.unsigned_abs();
    if left >= 0 {
        format!("due in {}", span(abs))
    } else {
        format!("OVERDUE by {}", span(abs))
    }
}

/// The latest disposition and how late it came, or what is still owed, at
/// `now` on the node's clock.
fn response_phrase(
    acks: &[AckView],
    due: Option<DateTime<Utc>>,
    flag: Option<&str>,
    now: DateTime<Utc>,
) -> String {
    if acks.is_empty() && flag == Some("UNDELIVERED") {
        return format!("UNDELIVERED, {}", due_phrase(due, now));
    }
    match acks.last() {
        Some(a) if a.late_by_seconds > 0 => {
            format!("{} (late by {})", a.disposition, span(a.late_by_seconds))
        }
        Some(a) => a.disposition.clone(),
        None => format!("awaiting acknowledgement, {}", due_phrase(due, now)),
    }
}

/// Adds the escalation rung to an unanswered delivery's phrase.
fn ladder_phrase(phrase: String, d: &DeliveryView) -> String {
    match (d.acknowledgements.is_empty(), d.ladder) {
        (true, Some("LAPSED")) => format!("LAPSED; {phrase}"),
        (true, Some(step)) => format!("{phrase}; {step}"),
        _ => phrase,
    }
}

fn subjects_line(subjects: &[Subject]) -> String {
    subjects
        .iter()
        .map(Subject::label)
        .collect::<Vec<_>>()
        .join("; ")
}

fn table() -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    t
}

pub(crate) fn print_ack(ack: &pb::AckRecord, json: bool) -> anyhow::Result<()> {
    let v = ack_view(ack);
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let late = if v.late_by_seconds > 0 {
        format!(", late by {}", span(v.late_by_seconds))
    } else {
        String::new()
    };
    println!(
        "acknowledged as {} at {}{late}; signed and queued for the originator",
        v.disposition,
        when(v.acknowledged_at)
    );
    Ok(())
}

/// Prints one alert. `now` is the node's clock reading when it answered;
/// `warnings`, what it warned of when the alert was just submitted
/// (`None` for an alert merely shown).
pub(crate) fn print_record(
    record: &pb::AlertRecord,
    json: bool,
    warnings: Option<&[String]>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let mut v = view(record)?;
    v.warnings = warnings.unwrap_or_default().to_vec();
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if warnings.is_some() {
        println!("accepted alert {} (committed; delivery follows)", v.id);
        for w in &v.warnings {
            println!("warning: {w}");
        }
    }
    let mut t = table();
    t.add_row(vec!["id", &v.id]);
    t.add_row(vec!["direction", v.direction]);
    if v.status != "ACTIVE" {
        t.add_row(vec![
            "status",
            &format!("{} by {}; its clock is stopped", v.status, v.closed_by),
        ]);
    }
    t.add_row(vec!["originator", &v.originator]);
    t.add_row(vec!["created", &when(Some(v.created_at))]);
    t.add_row(vec!["precedence", &v.precedence]);
    t.add_row(vec!["category", &v.category]);
    t.add_row(vec!["handling", &format!("TLP:{}", v.tlp)]);
    t.add_row(vec![
        "grading",
        &format!("{}{}", v.source_reliability, v.information_credibility),
    ]);
    t.add_row(vec!["recipients", &v.recipients.join(", ")]);
    t.add_row(vec!["subjects", &subjects_line(&v.subjects)]);
    if let Some(hit) = &v.hit {
        hit_rows(&mut t, hit);
    }
    if let Some(exp) = v.expires_at {
        t.add_row(vec!["expires", &when(Some(exp))]);
    }
    if let Some(by) = v.respond_by {
        t.add_row(vec!["respond by", &when(Some(by))]);
    }
    for r in &v.references {
        t.add_row(vec!["references", &format!("{} {}", r.kind, r.alert_id)]);
    }
    if let Some(r) = &v.receipt {
        t.add_row(vec![
            "receipt",
            &format!("signed by {} at {}", r.signed_by, when(r.received_at)),
        ]);
    }
    if v.direction == "inbound" {
        t.add_row(vec!["deadline", &when(v.due_at)]);
        t.add_row(vec![
            "our answer",
            &response_phrase(&v.acknowledgements, v.due_at, v.flag, now),
        ]);
        if v.reminders > 0 {
            t.add_row(vec![
                "reminders",
                &format!("{} from {}", v.reminders, v.originator),
            ]);
        }
        for a in &v.acknowledgements {
            let note = if a.note.is_empty() {
                String::new()
            } else {
                format!(": {}", a.note)
            };
            let pending = match (&a.refusal, a.delivered) {
                (Some(why), _) => format!(" REFUSED by {}: {why}", v.originator),
                (None, true) => String::new(),
                (None, false) => " (not yet at the originator)".to_owned(),
            };
            t.add_row(vec![
                "acknowledged",
                &format!(
                    "{} by {} at {}{note}{pending}",
                    a.disposition,
                    a.operator,
                    when(a.acknowledged_at)
                ),
            ]);
        }
    }
    t.add_row(vec!["text", &v.text]);
    println!("{t}");
    if !v.deliveries.is_empty() {
        let mut d = table();
        d.set_header(vec![
            "RECIPIENT",
            "STATE",
            "ATTEMPTS",
            "DELIVERED",
            "ACKNOWLEDGEMENT",
            "DEADLINE",
            "LAST ERROR",
        ]);
        for x in &v.deliveries {
            d.add_row(vec![
                x.recipient.clone(),
                x.state.to_owned(),
                x.attempts.to_string(),
                when(x.delivered_at),
                ladder_phrase(
                    response_phrase(&x.acknowledgements, x.due_at, x.flag, now),
                    x,
                ),
                when(x.due_at),
                x.last_error.clone().unwrap_or_else(|| "-".into()),
            ]);
        }
        println!("\n{d}");
        for x in &v.deliveries {
            if let Some(why) = &x.blocked_reason {
                println!("  {} BLOCKED: {why}", x.recipient);
            }
        }
        for x in &v.deliveries {
            for a in &x.acknowledgements {
                let note = if a.note.is_empty() {
                    String::new()
                } else {
                    format!(": {}", a.note)
                };
                println!(
                    "  {} acknowledged {} by {} at {}{note}",
                    x.recipient,
                    a.disposition,
                    a.operator,
                    when(a.acknowledged_at)
                );
            }
        }
    }
    Ok(())
}

fn delivery_summary(v: &AlertView) -> String {
    if v.direction == "inbound" {
        return format!(
            "received {}",
            when(
                v.receipt
                    .as_ref()
                    .and_then(|r| r.received_at)
                    .or(v.stored_at)
            )
        );
    }
    let delivered = v
        .deliveries
        .iter()
        .filter(|d| d.state == "DELIVERED")
        .count();
    let mut s = format!("{delivered}/{} delivered", v.deliveries.len());
    for d in v.deliveries.iter().filter(|d| d.state != "DELIVERED") {
        s.push_str(&format!(
            "; {} {} ({} attempts)",
            d.recipient,
            d.state.to_lowercase(),
            d.attempts
        ));
    }
    s
}

fn answer_summary(v: &AlertView, now: DateTime<Utc>) -> String {
    if v.status != "ACTIVE" {
        return format!("{} by {}", v.status, v.closed_by);
    }
    if v.direction == "inbound" {
        let phrase = response_phrase(&v.acknowledgements, v.due_at, v.flag, now);
        return match v.acknowledgements.last().and_then(|a| a.refusal.as_ref()) {
            Some(why) => format!("{phrase}; REFUSED by {}: {why}", v.originator),
            None => phrase,
        };
    }
    v.deliveries
        .iter()
        .filter(|d| d.state != "REJECTED")
        .map(|d| {
            format!(
                "{}: {}",
                d.recipient,
                ladder_phrase(
                    response_phrase(&d.acknowledgements, d.due_at, d.flag, now),
                    d
                )
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Prints alerts as a table; `now` is the node's clock reading when it
/// answered.
pub(crate) fn print_list(
    records: &[pb::AlertRecord],
    json: bool,
    owed: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let views = records
        .iter()
        .map(view)
        .collect::<anyhow::Result<Vec<_>>>()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&views)?);
        return Ok(());
    }
    if views.is_empty() {
        println!("{}", if owed { "nothing owed" } else { "no alerts" });
        return Ok(());
    }
    let mut t = table();
    t.set_header(vec![
        "ID",
        "DIR",
        "FROM",
        "TO",
        "PRECEDENCE",
        "SUBJECTS",
        "DELIVERY",
        "ANSWER",
    ]);
    for v in &views {
        t.add_row(vec![
            v.id.clone(),
            if v.direction == "outbound" {
                "out"
            } else {
                "in"
            }
            .to_owned(),
            v.originator.clone(),
            v.recipients.join(","),
            v.precedence.clone(),
            match &v.hit {
                Some(hit) => format!("HIT {}: {}", hit.entry_ref, subjects_line(&v.subjects)),
                None => subjects_line(&v.subjects),
            },
            delivery_summary(v),
            answer_summary(v, now),
        ]);
    }
    println!("{t}");
    Ok(())
}

#[derive(Debug, Serialize)]
struct FlagView {
    flag: &'static str,
    subject: String,
    label: String,
    recipient: String,
    alert_ids: Vec<String>,
    flagged_at: Option<DateTime<Utc>>,
}

fn flag_view(f: &pb::SubjectFlag) -> FlagView {
    FlagView {
        flag: "REPEATED_UNANSWERED",
        subject: f.subject.clone(),
        label: f.label.clone(),
        recipient: f.recipient.clone(),
        alert_ids: f.alert_ids.clone(),
        flagged_at: time_of(&f.flagged_at),
    }
}

/// The REPEATED_UNANSWERED banner: printed before anything else.
pub(crate) fn print_flags(flags: &[pb::SubjectFlag]) {
    for f in flags {
        println!(
            "!!!!!! REPEATED_UNANSWERED: {} left {} warnings about {} unanswered: {}",
            f.recipient,
            f.alert_ids.len(),
            f.label,
            f.alert_ids.join(", ")
        );
    }
    if !flags.is_empty() {
        println!();
    }
}

#[derive(Debug, Serialize)]
struct SubjectView {
    keys: Vec<String>,
    flags: Vec<FlagView>,
    alerts: Vec<AlertView>,
}

/// Prints a subject's record; `now` is the node's clock reading when it
/// answered.
pub(crate) fn print_subject(
    record: &pb::SubjectRecord,
    json: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let v = SubjectView {
        keys: record.keys.clone(),
        flags: record.flags.iter().map(flag_view).collect(),
        alerts: record
            .alerts
            .iter()
            .map(view)
            .collect::<anyhow::Result<_>>()?,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    print_flags(&record.flags);
    println!("linked by: {}", v.keys.join(", "));
    let (hits, alerts): (Vec<&AlertView>, Vec<&AlertView>) =
        v.alerts.iter().partition(|a| a.hit.is_some());
    if !alerts.is_empty() {
        let mut t = table();
        t.set_header(vec![
            "CREATED",
            "ID",
            "FROM",
            "TO",
            "PRECEDENCE",
            "DELIVERY",
            "ANSWER",
        ]);
        for a in &alerts {
            t.add_row(vec![
                when(Some(a.created_at)),
                a.id.clone(),
                a.originator.clone(),
                a.recipients.join(","),
                a.precedence.clone(),
                delivery_summary(a),
                answer_summary(a, now),
            ]);
        }
        println!("alerts:\n{t}");
    }
    if !hits.is_empty() {
        let mut t = table();
        t.set_header(vec![
            "SEEN", "ID", "BY", "ENTRY", "WHERE", "SCORE", "DELIVERY", "ANSWER",
        ]);
        for a in &hits {
            let Some(hit) = &a.hit else { continue };
            t.add_row(vec![
                when(hit.seen_at.or(Some(a.created_at))),
                a.id.clone(),
                a.originator.clone(),
                format!("{}/{}", hit.entry_owner, hit.entry_ref),
                hit.seen_place.clone(),
                format!("{:.2}", hit.score),
                delivery_summary(a),
                answer_summary(a, now),
            ]);
        }
        println!("hits on watchlist entries:\n{t}");
    }
    Ok(())
}
