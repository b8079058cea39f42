//! One timeline from several bundles, the cross-checks between them and
//! the gaps.
//!
//! Records are merged by identity (an alert by its id, a receipt by alert
//! and recipient, a message by its id). Two bundles holding one identity
//! must hold the same signed bytes: anything else is two signed records
//! that contradict each other. A record one party must hold (the
//! originator holds its recipients' receipts and acknowledgements, a
//! recipient the alert and its reminders) and that its bundle, exported
//! after the record's signed time, lacks is a contradiction too.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use tocsin_core::federation::Deadlines;

use super::records::{Body, Record, RecordKind, precedence_name, records_of};
use super::{Area, BundleStatus, Finding, FindingKind, Options, PostMortem, TimelineItem};
use crate::ReadBundle;
use crate::federated::display::when;

/// A verified bundle's part in the merge.
struct Held {
    name: String,
    agency: String,
    exported_at: DateTime<Utc>,
    records: BTreeMap<(RecordKind, String), Record>,
}

/// Everything known of one identity: the record as first seen, and which
/// bundles hold it.
struct Merged {
    record: Record,
    holders: Vec<usize>,
}

pub(super) fn merge(
    federation: String,
    read: Vec<(String, ReadBundle)>,
    options: &Options,
) -> PostMortem {
    let mut findings = Vec::new();
    let mut limits = Vec::new();
    let mut statuses = Vec::new();
    let mut held: Vec<Held> = Vec::new();
    let mut failed_agencies = BTreeSet::new();
    for (name, b) in read {
        let agency = b.report.agency.clone().unwrap_or_default();
        let exported_at = b
            .report
            .signed_head
            .as_ref()
            .and_then(|h| DateTime::<Utc>::from_timestamp_millis(h.at));
        let ok = b.report.ok();
        let problems: Vec<String> = b.report.findings.iter().map(problem_text).collect();
        statuses.push(BundleStatus {
            name: name.clone(),
            agency: agency.clone(),
            entries: b.report.entries,
            exported_at: exported_at.filter(|_| ok),
            verified: ok,
            problems: problems.clone(),
        });
        if !ok {
            failed_agencies.insert(agency.clone());
            findings.push(Finding {
                area: Area::InformationSharing,
                kind: FindingKind::BundleFailed,
                alert_id: None,
                agencies: vec![agency.clone()],
                bundles: vec![name.clone()],
                detail: format!(
                    "{name} ({agency}'s record) fails verification, so its records are left out: {}{}",
                    problems.first().cloned().unwrap_or_default(),
                    match problems.len() {
                        0 | 1 => String::new(),
                        n => format!(" (and {} more problem(s))", n - 1),
                    }
                ),
            });
            continue;
        }
        let mut records = BTreeMap::new();
        for r in records_of(&b.entries) {
            records
                .entry((r.kind.identity(), r.key.clone()))
                .or_insert(r);
        }
        held.push(Held {
            name,
            agency,
            exported_at: exported_at.unwrap_or(DateTime::<Utc>::MIN_UTC),
            records,
        });
    }

    // One record per identity; differing copies contradict each other.
    let mut merged: BTreeMap<(RecordKind, String), Merged> = BTreeMap::new();
    for (i, h) in held.iter().enumerate() {
        for (id, r) in &h.records {
            match merged.get_mut(id) {
                None => {
                    merged.insert(
                        id.clone(),
                        Merged {
                            record: r.clone(),
                            holders: vec![i],
                        },
                    );
                }
                Some(m) => {
                    if m.record.digest != r.digest {
                        let first = &held[m.holders[0]];
                        findings.push(Finding {
                            area: Area::InformationSharing,
                            kind: FindingKind::Contradiction,
                            alert_id: Some(r.alert_id.clone()),
                            agencies: vec![first.agency.clone(), h.agency.clone()],
                            bundles: vec![first.name.clone(), h.name.clone()],
                            detail: format!(
                                "{} and {} hold different signed {}s {}: {}",
                                first.name,
                                h.name,
                                r.kind.name(),
                                r.key,
                                differences(&m.record, r)
                            ),
                        });
                    }
                    m.holders.push(i);
                }
            }
        }
    }

    let by_agency: HashMap<&str, usize> = held
        .iter()
        .enumerate()
        .map(|(i, h)| (h.agency.as_str(), i))
        .collect();
    let alerts: HashMap<&str, &Record> = merged
        .values()
        .filter(|m| matches!(m.record.body, Body::Alert(_)))
        .map(|m| (m.record.alert_id.as_str(), &m.record))
        .collect();

    // Who must hold what: a record its party's bundle lacks contradicts
    // the bundle that holds it, if that party exported after it was signed.
    for m in merged.values() {
        let r = &m.record;
        let originator = alerts.get(r.alert_id.as_str()).map(|a| a.signer.clone());
        let mut parties: Vec<String> = Vec::new();
        match &r.body {
            Body::Alert(_) => parties.push(r.signer.clone()),
            Body::Receipt(rc) => {
                parties.push(rc.recipient.clone());
                parties.extend(originator.clone());
            }
            Body::Ack(a) => {
                parties.push(a.recipient.clone());
                parties.extend(originator.clone());
            }
            Body::Reminder(rm) => {
                parties.push(rm.originator.clone());
                parties.push(rm.recipient.clone());
            }
            Body::Notice(n) => parties.push(n.originator.clone()),
        }
        for party in parties {
            let Some(&i) = by_agency.get(party.as_str()) else {
                continue;
            };
            let h = &held[i];
            if m.holders.contains(&i) || h.exported_at < r.at {
                continue;
            }
            let holder = &held[m.holders[0]];
            findings.push(Finding {
                area: Area::InformationSharing,
                kind: FindingKind::Contradiction,
                alert_id: Some(r.alert_id.clone()),
                agencies: vec![holder.agency.clone(), h.agency.clone()],
                bundles: vec![holder.name.clone(), h.name.clone()],
                detail: format!(
                    "{} holds {}'s {} of alert {} signed at {} ({}), but {}, {}'s record exported at {}, has no such {}: it had not arrived by then (an outbox waiting on a peer that was down), or it was lost or withheld",
                    holder.name,
                    r.signer,
                    r.kind.name(),
                    r.alert_id,
                    when(r.at),
                    r.summary(),
                    h.name,
                    h.agency,
                    when(h.exported_at),
                    r.kind.name()
                ),
            });
        }
        // A receipt commits to the alert's signed bytes.
        if let Body::Receipt(rc) = &r.body
            && let Some(a) = alerts.get(rc.alert_id.as_str())
            && rc.alert_digest.as_slice() != a.digest
        {
            let bundles = m
                .holders
                .iter()
                .chain(&merged[&(RecordKind::Alert, a.key.clone())].holders)
                .map(|&i| held[i].name.clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            findings.push(Finding {
                area: Area::InformationSharing,
                kind: FindingKind::ReceiptMismatch,
                alert_id: Some(rc.alert_id.clone()),
                agencies: vec![rc.recipient.clone(), a.signer.clone()],
                bundles,
                detail: format!(
                    "{}'s receipt for alert {} commits to other content than the alert {} signed",
                    rc.recipient, rc.alert_id, a.signer
                ),
            });
        }
    }

    let deadlines = options.deadlines.unwrap_or_default();
    if options.deadlines.is_none() {
        limits.push(
            "deadlines are the protocol's defaults where no reminder records one: give --federation for the federation's own".into(),
        );
    }
    gaps(&merged, &held, &deadlines, &mut findings);

    // Agencies named in the records without a bundle that verifies.
    let mut named = BTreeSet::new();
    for m in merged.values() {
        named.insert(m.record.signer.clone());
        match &m.record.body {
            Body::Alert(a) => named.extend(a.recipients.iter().cloned()),
            Body::Notice(n) => {
                named.insert(n.recipient.clone());
            }
            Body::Reminder(r) => {
                named.insert(r.recipient.clone());
            }
            _ => {}
        }
    }
    for agency in &named {
        if by_agency.contains_key(agency.as_str()) {
            continue;
        }
        if failed_agencies.contains(agency) {
            limits.push(format!(
                "{agency}'s bundle fails verification: what {agency} received, acknowledged or sent is known only from the others' records"
            ));
        } else {
            limits.push(format!(
                "no bundle from {agency}, which the records name: what {agency} received, acknowledged or sent is known only from the others' records"
            ));
        }
    }
    limits.push(
        "a hit never reported cannot be shown: screens are not in the audit log, only the hit reports they sent".into(),
    );
    let escalated = merged.values().any(|m| m.record.kind == RecordKind::Notice);
    if escalated {
        limits.push(
        "an escalation counts as acted on when an observer later sent an alert that refers to it or acknowledged it; what observers did outside Tocsin is not in the records".into(),
    );
    }

    let mut timeline: Vec<TimelineItem> = merged
        .values()
        .map(|m| TimelineItem {
            at: m.record.at,
            kind: m.record.kind,
            alert_id: m.record.alert_id.clone(),
            signer: m.record.signer.clone(),
            summary: m.record.summary(),
            held_by: m.holders.iter().map(|&i| held[i].name.clone()).collect(),
        })
        .collect();
    timeline.sort_by(|a, b| {
        (a.at, a.kind, &a.alert_id, &a.signer).cmp(&(b.at, b.kind, &b.alert_id, &b.signer))
    });

    let mut out = PostMortem {
        federation,
        subject: options.subject.clone(),
        bundles: statuses,
        timeline,
        findings,
        limits,
    };
    if let Some(q) = &options.subject {
        filter_subject(&mut out, &merged, q);
    }
    out.findings.sort_by_key(|f| f.area);
    out
}

/// A bundle's verification problem, in one line.
fn problem_text(f: &crate::Finding) -> String {
    if f.seq == u64::MAX {
        format!("{}: {}", f.problem, f.detail)
    } else {
        format!("entry {} {}: {}", f.seq, f.problem, f.detail)
    }
}

/// Which fields of two copies of one record differ.
fn differences(a: &Record, b: &Record) -> String {
    match (&a.body, &b.body) {
        (Body::Alert(x), Body::Alert(y)) => {
            let mut d = Vec::new();
            let mut check = |name: &str, same: bool| {
                if !same {
                    d.push(name.to_owned());
                }
            };
            check("text", x.text == y.text);
            check("precedence", x.precedence == y.precedence);
            check("category", x.category == y.category);
            check("subjects", x.subjects == y.subjects);
            check("recipients", x.recipients == y.recipients);
            check("created_at", x.created_at == y.created_at);
            check("respond_by", x.respond_by == y.respond_by);
            check("hit", x.hit == y.hit);
            if d.is_empty() {
                "their signed bytes differ".into()
            } else {
                format!("they differ in {}", d.join(", "))
            }
        }
        (Body::Receipt(x), Body::Receipt(y)) => {
            let mut d = Vec::new();
            if x.alert_digest != y.alert_digest {
                d.push("the alert digest".to_owned());
            }
            if x.received_at != y.received_at {
                d.push(format!(
                    "the time received ({} and {})",
                    when(a.at),
                    when(b.at)
                ));
            }
            if d.is_empty() {
                "their signed bytes differ".into()
            } else {
                format!(
                    "the receipt the originator holds is not the one the recipient issued: {}",
                    d.join(", ")
                )
            }
        }
        _ => format!("signed at {} and at {}", when(a.at), when(b.at)),
    }
}

/// The gaps: never delivered, never acknowledged, acknowledged late, hit
/// reports never answered, escalations no observer acted on.
fn gaps(
    merged: &BTreeMap<(RecordKind, String), Merged>,
    held: &[Held],
    deadlines: &Deadlines,
    findings: &mut Vec<Finding>,
) {
    let names =
        |m: &Merged| -> Vec<String> { m.holders.iter().map(|&i| held[i].name.clone()).collect() };
    let has_bundle = |agency: &str| held.iter().any(|h| h.agency == agency);
    let last_export = held
        .iter()
        .map(|h| h.exported_at)
        .max()
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let mut receipts: HashMap<(&str, &str), &Merged> = HashMap::new();
    let mut acks: HashMap<(&str, &str), Vec<&Merged>> = HashMap::new();
    let mut due_recorded: HashMap<(&str, &str), DateTime<Utc>> = HashMap::new();
    let mut notices: BTreeMap<(&str, &str), Vec<&Merged>> = BTreeMap::new();
    for m in merged.values() {
        match &m.record.body {
            Body::Receipt(r) => {
                receipts.insert((&r.alert_id, &r.recipient), m);
            }
            Body::Ack(a) => acks.entry((&a.alert_id, &a.recipient)).or_default().push(m),
            Body::Reminder(r) => {
                if let Some(due) = r.due_at.as_ref().and_then(tocsin_core::from_timestamp) {
                    due_recorded
                        .entry((&r.alert_id, &r.recipient))
                        .or_insert(due);
                }
            }
            Body::Notice(n) => notices
                .entry((&n.alert_id, &n.recipient))
                .or_default()
                .push(m),
            Body::Alert(_) => {}
        }
    }
    for m in merged.values() {
        let Body::Alert(a) = &m.record.body else {
            continue;
        };
        let hit = a.hit.is_some();
        let area = if hit {
            Area::Surveillance
        } else {
            Area::InformationSharing
        };
        let what = if hit { "hit report" } else { "alert" };
        let policy_due = tocsin_core::Alert::try_from((**a).clone())
            .ok()
            .map(|core| deadlines.due_at(&core));
        for r in &a.recipients {
            let receipt = receipts.get(&(a.id.as_str(), r.as_str()));
            let mut answered: Vec<&Merged> = acks
                .get(&(a.id.as_str(), r.as_str()))
                .cloned()
                .unwrap_or_default();
            answered.sort_by_key(|m| m.record.at);
            let due = due_recorded
                .get(&(a.id.as_str(), r.as_str()))
                .copied()
                .or(policy_due);
            let due_text = due
                .map(|d| format!(", due {}", when(d)))
                .unwrap_or_default();
            let mut bundles = names(m);
            if let Some(first) = answered.first() {
                let at = first.record.at;
                if let Some(due) = due
                    && at > due
                {
                    bundles.extend(names(first));
                    bundles.sort();
                    bundles.dedup();
                    findings.push(Finding {
                        area: if hit { Area::Surveillance } else { Area::DetectionAndPrioritisation },
                        kind: FindingKind::AcknowledgedLate,
                        alert_id: Some(a.id.clone()),
                        agencies: vec![r.clone(), a.originator.clone()],
                        bundles,
                        detail: format!(
                            "{r} acknowledged {} {what} {} from {} at {}, {} after its deadline ({})",
                            precedence_name(a.precedence),
                            a.id,
                            a.originator,
                            when(at),
                            tocsin_core::human_duration((at - due).num_seconds().max(0).unsigned_abs()),
                            when(due)
                        ),
                    });
                }
                continue;
            }
            match receipt {
                Some(rc) => {
                    bundles.extend(names(rc));
                    bundles.sort();
                    bundles.dedup();
                    findings.push(Finding {
                        area,
                        kind: if hit {
                            FindingKind::HitNotAnswered
                        } else {
                            FindingKind::NeverAcknowledged
                        },
                        alert_id: Some(a.id.clone()),
                        agencies: vec![r.clone(), a.originator.clone()],
                        bundles,
                        detail: format!(
                            "{} {what} {} from {} was delivered to {r} at {}{due_text}, and never acknowledged{}",
                            precedence_name(a.precedence),
                            a.id,
                            a.originator,
                            when(rc.record.at),
                            // Not yet late is not the same gap as late.
                            if due.is_some_and(|d| d > last_export) {
                                " (its deadline had not passed when the last bundle was exported)"
                            } else {
                                ""
                            }
                        ),
                    });
                }
                // Only a bundle of one end can show it never arrived.
                None if has_bundle(&a.originator) || has_bundle(r) => findings.push(Finding {
                    area,
                    kind: if hit {
                        FindingKind::HitNotDelivered
                    } else {
                        FindingKind::NeverDelivered
                    },
                    alert_id: Some(a.id.clone()),
                    agencies: vec![r.clone(), a.originator.clone()],
                    bundles,
                    detail: format!(
                        "{} {what} {} from {} never reached {r}: no receipt in any record{due_text}",
                        precedence_name(a.precedence),
                        a.id,
                        a.originator
                    ),
                }),
                None => {}
            }
        }
    }
    // Escalations: did an observer act on one?
    for ((alert_id, laggard), ns) in &notices {
        let at = ns
            .iter()
            .map(|m| m.record.at)
            .min()
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let originator = ns[0].record.signer.as_str();
        let acted = merged.values().any(|m| {
            let r = &m.record;
            if r.at < at || r.signer == originator || r.signer == *laggard {
                return false;
            }
            match &r.body {
                Body::Alert(x) => {
                    x.references.iter().any(|re| re.alert_id == *alert_id)
                        || x.text.contains(alert_id)
                }
                Body::Ack(x) => x.alert_id == *alert_id,
                _ => false,
            }
        });
        if acted {
            continue;
        }
        let told: BTreeSet<String> = ns
            .iter()
            .flat_map(|m| m.holders.iter().map(|&i| held[i].agency.clone()))
            .filter(|a| a != originator)
            .collect();
        let told = if told.is_empty() {
            "the observers".to_owned()
        } else {
            told.into_iter().collect::<Vec<_>>().join(", ")
        };
        let mut bundles: Vec<String> = ns.iter().flat_map(|m| names(m)).collect();
        bundles.sort();
        bundles.dedup();
        findings.push(Finding {
            area: Area::DetectionAndPrioritisation,
            kind: FindingKind::EscalationNotActedOn,
            alert_id: Some((*alert_id).to_owned()),
            agencies: vec![(*laggard).to_owned(), originator.to_owned()],
            bundles,
            detail: format!(
                "{originator} escalated alert {alert_id} at {}: {laggard} left it unanswered; {told} were told, and no observer sent an alert or acknowledgement about it afterwards",
                when(at)
            ),
        });
    }
}

/// Keeps the records and findings linked to the subject `query` names.
fn filter_subject(
    out: &mut PostMortem,
    merged: &BTreeMap<(RecordKind, String), Merged>,
    query: &str,
) {
    let query = query.trim();
    let (doc, name) = tocsin_core::subject::query_keys(query);
    let wanted: Vec<&str> = name.split(' ').filter(|w| !w.is_empty()).collect();
    let keyed: Vec<(&str, std::collections::BTreeSet<String>)> = merged
        .values()
        .filter_map(|m| match &m.record.body {
            Body::Alert(a) => Some((
                a.id.as_str(),
                tocsin_core::Alert::try_from((**a).clone())
                    .map(|core| tocsin_core::subject::alert_keys(&core))
                    .unwrap_or_default(),
            )),
            _ => None,
        })
        .collect();
    let matches = |key: &str| {
        key == doc
            || (!wanted.is_empty()
                && key.strip_prefix("person:").is_some_and(|rest| {
                    let words: Vec<&str> = rest
                        .split('|')
                        .next()
                        .unwrap_or_default()
                        .split(' ')
                        .collect();
                    wanted.iter().all(|w| words.contains(w))
                }))
    };
    let start: Vec<&(&str, BTreeSet<String>)> = keyed
        .iter()
        .filter(|(id, keys)| *id == query || keys.iter().any(|k| matches(k)))
        .collect();
    let keys: BTreeSet<&String> = start.iter().flat_map(|(_, k)| k.iter()).collect();
    let mut linked: BTreeSet<&str> = start.iter().map(|(id, _)| *id).collect();
    for (id, k) in &keyed {
        if k.iter().any(|k| keys.contains(k)) {
            linked.insert(id);
        }
    }
    if linked.is_empty() {
        out.limits.insert(
            0,
            format!("no alert in the verified bundles is about {query:?}"),
        );
    }
    out.timeline
        .retain(|t| linked.contains(t.alert_id.as_str()));
    out.findings
        .retain(|f| f.alert_id.as_deref().is_none_or(|id| linked.contains(id)));
}
