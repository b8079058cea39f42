//! The federated post-mortem (`tocsin_audit::federated`) as a timeline:
//! its signed records and its findings in time order, each finding linked
//! to the records it rests on.
//!
//! A finding carries no time of its own: it is placed at the last record
//! it rests on (the moment it could first be told), or at the end when it
//! rests on none (a bundle that failed, say). A finding rests on the
//! merged records of its alert (or hit report), signed by one of its
//! agencies, or of its alert alone when none is.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tocsin_audit::federated::{Finding, FindingKind, PostMortem, RecordKind};

/// One signed record of the merged timeline, by its place in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    /// Its place in the post-mortem's timeline, from 0: its id here.
    pub seq: usize,
    /// Its signed time.
    pub at: DateTime<Utc>,
    /// What it is.
    pub kind: RecordKind,
    /// The alert (or hit report) it concerns.
    pub alert_id: String,
    /// The agency that signed it.
    pub signer: String,
    /// What it says, in one line.
    pub summary: String,
    /// The bundles that hold it.
    pub held_by: Vec<String>,
}

/// How a finding names a record it rests on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordRef {
    /// The agency that signed it.
    pub agency: String,
    /// What it is.
    pub kind: RecordKind,
    /// Its place in the timeline.
    pub seq: usize,
}

/// One finding, and the records it rests on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FindingItem {
    /// The heading of its area.
    pub area: &'static str,
    /// What it is.
    pub kind: FindingKind,
    /// The alert concerned, if one.
    pub alert_id: Option<String>,
    /// The agencies concerned.
    pub agencies: Vec<String>,
    /// The account, for people.
    pub detail: String,
    /// The records it rests on, in time order.
    pub rests_on: Vec<RecordRef>,
}

/// A timeline item: a record, or a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Entry {
    /// A signed record (by its `seq`).
    Record(Record),
    /// A finding.
    Finding(FindingItem),
}

/// A timeline item at its time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    /// The record's signed time, or the finding's place.
    pub at: DateTime<Utc>,
    /// What it is.
    pub entry: Entry,
}

/// The post-mortem as the view shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Timeline {
    /// The federation.
    pub federation: String,
    /// Records and findings, in time order; at one time, records first.
    pub items: Vec<Item>,
    /// What the findings cannot show, and why.
    pub limits: Vec<String>,
    /// Each bundle, its agency, and whether it verified.
    pub bundles: Vec<(String, String, bool)>,
}

impl Timeline {
    /// The post-mortem's timeline.
    pub fn of(pm: &PostMortem) -> Self {
        let records: Vec<Record> = pm
            .timeline
            .iter()
            .enumerate()
            .map(|(seq, t)| Record {
                seq,
                at: t.at,
                kind: t.kind,
                alert_id: t.alert_id.clone(),
                signer: t.signer.clone(),
                summary: t.summary.clone(),
                held_by: t.held_by.clone(),
            })
            .collect();
        let end = records.iter().map(|r| r.at).max();
        let mut items: Vec<Item> = records
            .iter()
            .map(|r| Item {
                at: r.at,
                entry: Entry::Record(r.clone()),
            })
            .collect();
        for f in &pm.findings {
            let rests_on = rests_on(f, &records);
            let at = rests_on
                .iter()
                .map(|r| records[r.seq].at)
                .max()
                .or(end)
                .unwrap_or(DateTime::<Utc>::MIN_UTC);
            items.push(Item {
                at,
                entry: Entry::Finding(FindingItem {
                    area: f.area.title(),
                    kind: f.kind,
                    alert_id: f.alert_id.clone(),
                    agencies: f.agencies.clone(),
                    detail: f.detail.clone(),
                    rests_on,
                }),
            });
        }
        // Stable: records keep the timeline's order, findings the
        // post-mortem's, and a finding follows what it rests on.
        items.sort_by_key(|i| (i.at, matches!(i.entry, Entry::Finding(_))));
        Self {
            federation: pm.federation.clone(),
            items,
            limits: pm.limits.clone(),
            bundles: pm
                .bundles
                .iter()
                .map(|b| (b.name.clone(), b.agency.clone(), b.verified))
                .collect(),
        }
    }

    /// The record signed by `agency` at place `seq`, if there is one.
    pub fn record(&self, agency: &str, seq: usize) -> Option<&Record> {
        self.items.iter().find_map(|i| match &i.entry {
            Entry::Record(r) if r.seq == seq && r.signer == agency => Some(r),
            _ => None,
        })
    }

    /// The findings, in time order.
    pub fn findings(&self) -> impl Iterator<Item = &FindingItem> {
        self.items.iter().filter_map(|i| match &i.entry {
            Entry::Finding(f) => Some(f),
            Entry::Record(_) => None,
        })
    }
}

/// The records of the finding's alert signed by one of its agencies, or
/// all its alert's records when none is.
fn rests_on(f: &Finding, records: &[Record]) -> Vec<RecordRef> {
    let Some(alert) = &f.alert_id else {
        return Vec::new();
    };
    let of_alert: Vec<&Record> = records.iter().filter(|r| &r.alert_id == alert).collect();
    let signed: Vec<&Record> = of_alert
        .iter()
        .copied()
        .filter(|r| f.agencies.contains(&r.signer))
        .collect();
    let chosen = if signed.is_empty() { of_alert } else { signed };
    chosen
        .into_iter()
        .map(|r| RecordRef {
            agency: r.signer.clone(),
            kind: r.kind,
            seq: r.seq,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tocsin_audit::federated::{Area, BundleStatus, TimelineItem};

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn record(at: &str, kind: RecordKind, alert: &str, signer: &str) -> TimelineItem {
        TimelineItem {
            at: t(at),
            kind,
            alert_id: alert.into(),
            signer: signer.into(),
            summary: format!("{signer} {}", kind.name()),
            held_by: vec![format!("{signer}.jsonl")],
        }
    }

    fn finding(kind: FindingKind, alert: Option<&str>, agencies: &[&str]) -> Finding {
        Finding {
            area: Area::DetectionAndPrioritisation,
            kind,
            alert_id: alert.map(Into::into),
            agencies: agencies.iter().map(|a| a.to_string()).collect(),
            bundles: vec![],
            detail: format!("{kind:?}"),
        }
    }

    fn post_mortem() -> PostMortem {
        PostMortem {
            federation: "demo.tocsin".into(),
            subject: None,
            bundles: vec![BundleStatus {
                name: "TR-MIT.jsonl".into(),
                agency: "TR-MIT".into(),
                entries: 3,
                exported_at: None,
                verified: true,
                problems: vec![],
            }],
            timeline: vec![
                record("2014-12-10T09:00:00Z", RecordKind::Alert, "A1", "TR-MIT"),
                record("2014-12-10T09:00:01Z", RecordKind::Receipt, "A1", "FR-DGSI"),
                record("2015-01-03T09:00:00Z", RecordKind::Alert, "A2", "TR-MIT"),
                record("2015-01-05T09:00:00Z", RecordKind::Notice, "A1", "TR-MIT"),
            ],
            findings: vec![
                finding(FindingKind::NeverAcknowledged, Some("A1"), &["FR-DGSI"]),
                finding(FindingKind::BundleFailed, None, &["BE-VSSE"]),
                finding(FindingKind::NeverDelivered, Some("A2"), &["NL-AIVD"]),
            ],
            limits: vec!["no bundle from NL-AIVD".into()],
        }
    }

    #[test]
    fn records_and_findings_come_in_time_order_each_finding_after_its_records() {
        let tl = Timeline::of(&post_mortem());
        let order: Vec<String> = tl
            .items
            .iter()
            .map(|i| match &i.entry {
                Entry::Record(r) => format!("{} {}", r.seq, r.kind.name()),
                Entry::Finding(f) => format!("{:?}", f.kind),
            })
            .collect();
        assert_eq!(
            order,
            [
                "0 alert",
                "1 receipt",
                // At the last record it rests on: FR-DGSI's receipt.
                "NeverAcknowledged",
                "2 alert",
                // A2's records: NL-AIVD signed none, so its alert.
                "NeverDelivered",
                "3 notice",
                // Resting on no record: at the end.
                "BundleFailed",
            ]
        );
    }

    #[test]
    fn a_finding_links_the_records_of_its_alert_signed_by_its_agencies() {
        let tl = Timeline::of(&post_mortem());
        let found: Vec<&FindingItem> = tl.findings().collect();
        let acks = found
            .iter()
            .find(|f| f.kind == FindingKind::NeverAcknowledged)
            .unwrap();
        assert_eq!(
            acks.rests_on,
            [RecordRef {
                agency: "FR-DGSI".into(),
                kind: RecordKind::Receipt,
                seq: 1
            }]
        );
        assert_eq!(acks.area, "Detection and prioritisation");
        let undelivered = found
            .iter()
            .find(|f| f.kind == FindingKind::NeverDelivered)
            .unwrap();
        assert_eq!(undelivered.rests_on.len(), 1);
        assert_eq!(undelivered.rests_on[0].agency, "TR-MIT");
        let failed = found
            .iter()
            .find(|f| f.kind == FindingKind::BundleFailed)
            .unwrap();
        assert!(failed.rests_on.is_empty());
        // Each link resolves, and only under its signer.
        let r = tl.record("FR-DGSI", 1).unwrap();
        assert_eq!((r.kind, r.alert_id.as_str()), (RecordKind::Receipt, "A1"));
        assert!(tl.record("TR-MIT", 1).is_none());
        assert!(tl.record("TR-MIT", 99).is_none());
        assert_eq!(tl.limits, ["no bundle from NL-AIVD"]);
        assert_eq!(tl.bundles, [("TR-MIT.jsonl".into(), "TR-MIT".into(), true)]);
    }
}
