//! What operator commands print: aligned tables for people, JSON for
//! machines.

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use comfy_table::{Table, presets};
use prost::Message;
use serde::Serialize;
use tocsin_core::alert::{Reference, Subject};
use tocsin_core::{Alert, from_timestamp};
use tocsin_proto::pb;

#[derive(Debug, Serialize)]
struct ReceiptView {
    recipient: String,
    received_at: Option<DateTime<Utc>>,
    alert_digest: String,
    signed_by: String,
}

#[derive(Debug, Serialize)]
struct DeliveryView {
    recipient: String,
    state: &'static str,
    attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_attempt_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivered_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    receipt: Option<ReceiptView>,
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
}

fn time(ts: &Option<prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    ts.as_ref().and_then(from_timestamp)
}

fn receipt_view(env: &pb::Envelope) -> Option<ReceiptView> {
    let r = pb::Receipt::decode(env.payload.as_slice()).ok()?;
    Some(ReceiptView {
        recipient: r.recipient,
        received_at: time(&r.received_at),
        alert_digest: hex_of(&r.alert_digest),
        signed_by: env
            .signature
            .as_ref()
            .map(|s| s.signer.clone())
            .unwrap_or_default(),
    })
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
            state: match pb::DeliveryState::try_from(d.state) {
                Ok(pb::DeliveryState::Pending) => "PENDING",
                Ok(pb::DeliveryState::Delivered) => "DELIVERED",
                Ok(pb::DeliveryState::Rejected) => "REJECTED",
                _ => "UNKNOWN",
            },
            attempts: d.attempts,
            last_error: (!d.last_error.is_empty()).then(|| d.last_error.clone()),
            next_attempt_at: time(&d.next_attempt_at),
            delivered_at: time(&d.delivered_at),
            receipt: d.receipt.as_ref().and_then(receipt_view),
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
        stored_at: time(&record.stored_at),
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
    })
}

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_else(|| "-".into())
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

pub(crate) fn print_record(
    record: &pb::AlertRecord,
    json: bool,
    just_sent: bool,
) -> anyhow::Result<()> {
    let v = view(record)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if just_sent {
        println!("accepted alert {} (committed; delivery follows)", v.id);
    }
    let mut t = table();
    t.add_row(vec!["id", &v.id]);
    t.add_row(vec!["direction", v.direction]);
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
    t.add_row(vec!["text", &v.text]);
    println!("{t}");
    if !v.deliveries.is_empty() {
        let mut d = table();
        d.set_header(vec![
            "RECIPIENT",
            "STATE",
            "ATTEMPTS",
            "DELIVERED",
            "NEXT ATTEMPT",
            "LAST ERROR",
        ]);
        for x in &v.deliveries {
            d.add_row(vec![
                x.recipient.clone(),
                x.state.to_owned(),
                x.attempts.to_string(),
                when(x.delivered_at),
                if x.state == "PENDING" {
                    when(x.next_attempt_at)
                } else {
                    "-".into()
                },
                x.last_error.clone().unwrap_or_else(|| "-".into()),
            ]);
        }
        println!("\n{d}");
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

pub(crate) fn print_list(records: &[pb::AlertRecord], json: bool) -> anyhow::Result<()> {
    let views = records
        .iter()
        .map(view)
        .collect::<anyhow::Result<Vec<_>>>()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&views)?);
        return Ok(());
    }
    if views.is_empty() {
        println!("no alerts");
        return Ok(());
    }
    let mut t = table();
    t.set_header(vec![
        "ID",
        "DIR",
        "FROM",
        "TO",
        "PRECEDENCE",
        "CATEGORY",
        "SUBJECTS",
        "DELIVERY",
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
            v.category.clone(),
            subjects_line(&v.subjects),
            delivery_summary(v),
        ]);
    }
    println!("{t}");
    Ok(())
}
