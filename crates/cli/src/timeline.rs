//! `tocsin timeline`: the history of one alert, or of every alert about a
//! subject, as one node saw it. Every signed record (alert, receipts,
//! acknowledgements) is verified here, on the operator's side, against the
//! federation CA; every missing receipt or acknowledgement is shown as a gap.

use chrono::{DateTime, Utc};
use prost::Message;
use serde::Serialize;
use tocsin_proto::{ALERT_PAYLOAD_TYPE, pb};
use tocsin_trust::Verifier;
use tocsin_trust::signing::digest;

use crate::args::TimelineArgs;
use crate::operator::{self, refused};
use tocsin_core::time_of;

/// One line of a timeline.
#[derive(Debug, Serialize)]
struct Entry {
    alert_id: String,
    at: Option<DateTime<Utc>>,
    what: String,
    detail: String,
    /// For signed records: whether the signature and digest check out.
    #[serde(skip_serializing_if = "Option::is_none")]
    verified: Option<bool>,
    /// A receipt or acknowledgement that never came.
    gap: bool,
}

fn check(
    verifier: &Verifier,
    env: &Option<pb::Envelope>,
    kind: &str,
    signer: &str,
) -> (bool, String) {
    match env {
        None => (false, "no envelope".into()),
        Some(env) => match verifier.verify(env, kind) {
            Ok(v) if v.signer.as_str() == signer => (true, format!("signed by {signer}")),
            Ok(v) => (false, format!("signed by {}, expected {signer}", v.signer)),
            Err(e) => (false, e.to_string()),
        },
    }
}

/// Checks `agency`'s acknowledgement of alert `id`, whose envelope has
/// `alert_digest`: whether it checks out, and what to say of its signer.
fn check_ack(
    verifier: &Verifier,
    env: &Option<pb::Envelope>,
    id: &str,
    agency: &str,
    alert_digest: Option<[u8; 32]>,
) -> (bool, String) {
    use tocsin_trust::ack::{AckError, Expected, verify};
    let Some(env) = env else {
        return (false, "no envelope".into());
    };
    let expected = Expected {
        recipient: Some(agency),
        id: None,
        alert_id: Some(id),
        alert_digest: Some(alert_digest.as_ref().map_or(&[][..], |d| &d[..])),
    };
    match verify(verifier, env, expected) {
        Ok(_) => (true, format!("signed by {agency}")),
        Err(AckError::Signer { signer, .. }) => {
            (false, format!("signed by {signer}, expected {agency}"))
        }
        Err(AckError::Signature(e)) => (false, e.to_string()),
        // Signed by the agency, but not an acknowledgement of this alert.
        Err(_) => (false, format!("signed by {agency}")),
    }
}

/// A recipient's side of an alert: its agency, receipt, acknowledgements
/// and deadline.
type Party = (
    String,
    Option<pb::Envelope>,
    Vec<pb::AckRecord>,
    Option<DateTime<Utc>>,
);

fn entries_for(record: &pb::AlertRecord, events: &[pb::Event], verifier: &Verifier) -> Vec<Entry> {
    let alert = record.alert.clone().unwrap_or_default();
    let id = alert.id.clone();
    let mut out = Vec::new();
    let (ok, how) = check(
        verifier,
        &record.envelope,
        ALERT_PAYLOAD_TYPE,
        &alert.originator,
    );
    let alert_digest = record.envelope.as_ref().map(digest);
    out.push(Entry {
        alert_id: id.clone(),
        at: time_of(&alert.created_at),
        what: "ALERT".into(),
        detail: format!(
            "{} to {}: {} ({how})",
            alert.originator,
            alert.recipients.join(", "),
            alert.text.lines().next().unwrap_or_default()
        ),
        verified: Some(ok),
        gap: false,
    });
    // The receipts and acknowledgements this node holds: for an alert it
    // sent, one per recipient; for one it received, its own.
    let mut parties: Vec<Party> = record
        .deliveries
        .iter()
        .map(|d| {
            (
                d.recipient.clone(),
                d.receipt.clone(),
                d.acknowledgements.clone(),
                time_of(&d.due_at),
            )
        })
        .collect();
    if record.direction == pb::Direction::Inbound as i32 {
        let me = record
            .receipt
            .as_ref()
            .and_then(|r| r.signature.as_ref())
            .map(|s| s.signer.clone())
            .unwrap_or_default();
        parties.push((
            me,
            record.receipt.clone(),
            record.acknowledgements.clone(),
            time_of(&record.due_at),
        ));
    }
    for (agency, receipt, acks, due) in parties {
        match &receipt {
            Some(env) => {
                // The receipt must be signed by this recipient, for this
                // alert, of exactly what the originator signed.
                let expected = tocsin_trust::receipt::Expected {
                    alert_id: &id,
                    recipient: &agency,
                    alert_digest: Some(alert_digest.as_ref().map_or(&[][..], |d| &d[..])),
                };
                let checked = tocsin_trust::receipt::verify(verifier, env, expected);
                let at = match &checked {
                    Ok(c) => Some(c.received_at),
                    Err(_) => pb::Receipt::decode(env.payload.as_slice())
                        .ok()
                        .and_then(|r| time_of(&r.received_at)),
                };
                out.push(Entry {
                    alert_id: id.clone(),
                    at,
                    what: "RECEIPT".into(),
                    detail: match &checked {
                        Ok(_) => format!(
                            "{agency} committed it (signed by {agency}; names this alert and its digest)"
                        ),
                        Err(e) => format!("{agency}'s receipt DOES NOT CHECK OUT: {e}"),
                    },
                    verified: Some(checked.is_ok()),
                    gap: false,
                });
            }
            None => out.push(Entry {
                alert_id: id.clone(),
                at: due,
                what: "GAP".into(),
                detail: format!("no receipt from {agency}: it never confirmed having the alert"),
                verified: None,
                gap: true,
            }),
        }
        if acks.is_empty() {
            out.push(Entry {
                alert_id: id.clone(),
                at: due,
                what: "GAP".into(),
                detail: format!(
                    "no acknowledgement from {agency} (deadline {})",
                    due.map(|d| d.to_rfc3339()).unwrap_or_default()
                ),
                verified: None,
                gap: true,
            });
        }
        for a in &acks {
            // What was acknowledged is read from the signed envelope just
            // verified, not from the node's decoded copy beside it.
            let (ok, how) = check_ack(verifier, &a.envelope, &id, &agency, alert_digest);
            let ack = a
                .envelope
                .as_ref()
                .and_then(|env| pb::Acknowledgement::decode(env.payload.as_slice()).ok())
                .unwrap_or_default();
            let disposition = tocsin_core::alert::Disposition::from_wire(ack.disposition)
                .map(|d| d.to_string())
                .unwrap_or_default();
            let late = if a.late_by_seconds > 0 {
                format!(
                    ", LATE by {}",
                    tocsin_core::human_duration(a.late_by_seconds)
                )
            } else {
                String::new()
            };
            out.push(Entry {
                alert_id: id.clone(),
                at: time_of(&ack.acknowledged_at),
                what: "ACK".into(),
                detail: format!(
                    "{agency}: {disposition} by {}{late} ({how}) {}",
                    ack.operator, ack.note
                ),
                verified: Some(ok),
                gap: false,
            });
        }
    }
    for e in events.iter().filter(|e| e.alert_id == id) {
        let kind = crate::output::event_kind(e.kind);
        // Receipts and acknowledgements are shown from their signed records.
        if matches!(
            kind,
            "SUBMITTED" | "RECEIVED" | "DELIVERED" | "ACKNOWLEDGED"
        ) {
            continue;
        }
        out.push(Entry {
            alert_id: id.clone(),
            at: time_of(&e.at),
            what: kind.into(),
            detail: e.detail.clone(),
            verified: None,
            gap: false,
        });
    }
    out.sort_by_key(|e| (e.at, e.gap));
    out
}

pub(crate) async fn timeline(args: TimelineArgs) -> anyhow::Result<()> {
    let profile = operator::profile(&args.connect)?;
    let verifier = Verifier::load(&profile.ca, &profile.federation)?;
    let mut client = operator::connect_profile(&profile).await?;
    let records = match (&args.alert, &args.subject) {
        (Some(id), _) => vec![
            client
                .get_alert(pb::GetAlertRequest { id: id.clone() })
                .await
                .map_err(refused)?
                .into_inner(),
        ],
        (None, Some(q)) => {
            client
                .get_subject(pb::GetSubjectRequest { query: q.clone() })
                .await
                .map_err(refused)?
                .into_inner()
                .alerts
        }
        (None, None) => anyhow::bail!("give --alert ID or --subject QUERY"),
    };
    let events = operator::stored_events(&mut client)
        .await
        .map_err(refused)?;
    let entries: Vec<Vec<Entry>> = records
        .iter()
        .map(|r| entries_for(r, &events, &verifier))
        .collect();
    if args.connect.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&entries.iter().flatten().collect::<Vec<_>>())?
        );
        return Ok(());
    }
    for (record, lines) in records.iter().zip(&entries) {
        let id = record
            .alert
            .as_ref()
            .map(|a| a.id.as_str())
            .unwrap_or_default();
        println!("== alert {id}");
        for e in lines {
            let mark = match (e.verified, e.gap) {
                (Some(true), _) => "ok ",
                (Some(false), _) => "BAD",
                (None, true) => "!! ",
                (None, false) => "   ",
            };
            let at =
                e.at.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_else(|| "-".into());
            println!("  {mark} {at}  {:<11} {}", e.what, e.detail);
        }
    }
    let bad = entries
        .iter()
        .flatten()
        .filter(|e| e.verified == Some(false))
        .count();
    let gaps = entries.iter().flatten().filter(|e| e.gap).count();
    println!(
        "{} alert(s); {gaps} gap(s); {bad} record(s) failing verification",
        records.len()
    );
    if bad > 0 {
        anyhow::bail!("{bad} signed record(s) failed verification");
    }
    Ok(())
}
