//! The federation at one scenario instant, as its nodes' operator APIs
//! tell it: agencies as nodes, each alert or hit report to each recipient
//! as an edge with its state, and the subject flags raised.
//!
//! [`Picture::from_readings`] is pure: what each node listed in, a
//! picture out. [`read`] is the one place that asks the nodes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::Serialize;
use tocsin_core::{AgencyId, time_of};
use tocsin_proto::pb;
use tocsin_scenario::{Clients, Observer};

/// Where a warning to one recipient stands, worst last but one: the
/// ladder's steps outrank the deadline, which outranks delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EdgeState {
    /// Acknowledged by the recipient.
    Acknowledged,
    /// Closed by a later alert (cancelled or superseded) before an answer.
    Closed,
    /// Receipted, not yet acknowledged, deadline not passed.
    Delivered,
    /// In the originator's outbox, not yet receipted.
    Pending,
    /// In the outbox, and cannot go until the recipient's certificate does.
    Blocked,
    /// Refused for good by the recipient.
    Rejected,
    /// The deadline passed without an acknowledgement (reminded, maybe).
    Overdue,
    /// Escalated: observers were told.
    Escalated,
    /// The ladder ran out with no acknowledgement.
    Lapsed,
}

impl EdgeState {
    /// Every state, in the order the legend lists them.
    pub const ALL: [EdgeState; 9] = [
        EdgeState::Pending,
        EdgeState::Blocked,
        EdgeState::Delivered,
        EdgeState::Acknowledged,
        EdgeState::Overdue,
        EdgeState::Escalated,
        EdgeState::Lapsed,
        EdgeState::Rejected,
        EdgeState::Closed,
    ];

    /// The word the view writes beside the colour.
    pub fn word(self) -> &'static str {
        match self {
            EdgeState::Pending => "PENDING",
            EdgeState::Blocked => "BLOCKED",
            EdgeState::Delivered => "DELIVERED",
            EdgeState::Acknowledged => "ACKNOWLEDGED",
            EdgeState::Overdue => "OVERDUE",
            EdgeState::Escalated => "ESCALATED",
            EdgeState::Lapsed => "LAPSED",
            EdgeState::Rejected => "REJECTED",
            EdgeState::Closed => "CLOSED",
        }
    }

    /// Whether the recipient let a deadline pass.
    pub fn is_late(self) -> bool {
        matches!(
            self,
            EdgeState::Overdue | EdgeState::Escalated | EdgeState::Lapsed
        )
    }
}

/// Alert or hit report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EdgeKind {
    /// A warning.
    Alert,
    /// A report of a watchlist hit, to the entry's owner.
    HitReport,
}

/// One alert or hit report to one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Edge {
    /// The alert's id.
    pub alert_id: String,
    /// Alert or hit report.
    pub kind: EdgeKind,
    /// The originator.
    pub from: String,
    /// The recipient.
    pub to: String,
    /// Where it stands.
    pub state: EdgeState,
    /// Whether an acknowledgement came after the deadline.
    pub late: bool,
    /// The precedence, as operators write it.
    pub precedence: String,
    /// Who or what it is about (its first subject).
    pub subject: String,
    /// The recipient's deadline.
    pub due_at: Option<DateTime<Utc>>,
}

/// A subject flag (REPEATED_UNANSWERED) as one node raised it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flag {
    /// The node that raised it.
    pub raised_by: String,
    /// Who or what the subject is.
    pub subject: String,
    /// The agency that did not answer.
    pub recipient: String,
    /// The unanswered alerts, oldest first.
    pub alerts: Vec<String>,
    /// When it was raised.
    pub at: Option<DateTime<Utc>>,
}

/// An agency, and whether its node answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Agency {
    /// The agency.
    pub id: String,
    /// Whether its node answered this time (a scenario may stop it).
    pub up: bool,
}

/// What one node's operator API says.
#[derive(Debug, Clone, Default)]
pub struct NodeReading {
    /// Its alerts and hit reports, sent and received.
    pub alerts: Vec<pb::AlertRecord>,
    /// The subject flags it raised.
    pub flags: Vec<pb::SubjectFlag>,
}

/// The federation at one scenario instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Picture {
    /// The scenario clock.
    pub clock: DateTime<Utc>,
    /// Every agency, in id order.
    pub agencies: Vec<Agency>,
    /// Every alert and hit report to every recipient, by originator then
    /// alert id then recipient.
    pub edges: Vec<Edge>,
    /// The flags raised, in the order they rose.
    pub flags: Vec<Flag>,
}

impl Picture {
    /// A federation of `agencies` where nothing happened yet.
    pub fn empty(clock: DateTime<Utc>, agencies: impl IntoIterator<Item = AgencyId>) -> Self {
        Self {
            clock,
            agencies: agencies
                .into_iter()
                .map(|id| Agency {
                    id: id.to_string(),
                    up: true,
                })
                .collect(),
            edges: Vec::new(),
            flags: Vec::new(),
        }
    }

    /// The picture at `clock` from each agency's reading; `None` for a
    /// node that did not answer, whose edges and flags are then taken
    /// from `previous` (what it last said still stands while it is down).
    pub fn from_readings(
        clock: DateTime<Utc>,
        readings: impl IntoIterator<Item = (AgencyId, Option<NodeReading>)>,
        previous: Option<&Picture>,
    ) -> Self {
        let mut agencies = Vec::new();
        let mut edges = Vec::new();
        let mut flags = Vec::new();
        for (id, reading) in readings {
            let id = id.to_string();
            match reading {
                Some(r) => {
                    edges.extend(edges_of(&id, &r.alerts));
                    flags.extend(r.flags.iter().map(|f| Flag {
                        raised_by: id.clone(),
                        subject: f.label.clone(),
                        recipient: f.recipient.clone(),
                        alerts: f.alert_ids.clone(),
                        at: time_of(&f.flagged_at),
                    }));
                    agencies.push(Agency { id, up: true });
                }
                None => {
                    if let Some(p) = previous {
                        edges.extend(p.edges.iter().filter(|e| e.from == id).cloned());
                        flags.extend(p.flags.iter().filter(|f| f.raised_by == id).cloned());
                    }
                    agencies.push(Agency { id, up: false });
                }
            }
        }
        agencies.sort_by(|a, b| a.id.cmp(&b.id));
        edges.sort_by(|a, b| (&a.from, &a.alert_id, &a.to).cmp(&(&b.from, &b.alert_id, &b.to)));
        flags.sort_by(|a, b| {
            (a.at, &a.raised_by, &a.subject).cmp(&(b.at, &b.raised_by, &b.subject))
        });
        Self {
            clock,
            agencies,
            edges,
            flags,
        }
    }

    /// Whether `other` shows the same federation, whatever its clock.
    pub fn same_state(&self, other: &Picture) -> bool {
        self.agencies == other.agencies && self.edges == other.edges && self.flags == other.flags
    }

    /// The edges between each ordered pair of agencies.
    pub fn pairs(&self) -> BTreeMap<(&str, &str), Vec<&Edge>> {
        let mut out: BTreeMap<_, Vec<_>> = BTreeMap::new();
        for e in &self.edges {
            out.entry((e.from.as_str(), e.to.as_str()))
                .or_default()
                .push(e);
        }
        out
    }

    /// How many edges are in each state.
    pub fn counts(&self) -> BTreeMap<EdgeState, usize> {
        let mut out = BTreeMap::new();
        for e in &self.edges {
            *out.entry(e.state).or_default() += 1;
        }
        out
    }
}

/// One node's outbound alerts as edges, one per recipient.
fn edges_of(originator: &str, alerts: &[pb::AlertRecord]) -> Vec<Edge> {
    let mut out = Vec::new();
    for r in alerts
        .iter()
        .filter(|r| r.direction == pb::Direction::Outbound as i32)
    {
        let Some(alert) = &r.alert else { continue };
        let kind = if alert.hit.is_some() {
            EdgeKind::HitReport
        } else {
            EdgeKind::Alert
        };
        let precedence = tocsin_core::alert::Precedence::from_wire(alert.precedence)
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default();
        let subject = alert
            .subjects
            .first()
            .map(subject_label)
            .unwrap_or_default();
        for d in &r.deliveries {
            out.push(Edge {
                alert_id: alert.id.clone(),
                kind,
                from: originator.to_owned(),
                to: d.recipient.clone(),
                state: state_of(r, d),
                late: d.acknowledgements.iter().any(|a| a.late_by_seconds > 0),
                precedence: precedence.clone(),
                subject: subject.clone(),
                due_at: time_of(&d.due_at),
            });
        }
    }
    out
}

/// Where one delivery stands: an answer first, then a closed alert, then
/// the ladder, the deadline, and delivery.
fn state_of(r: &pb::AlertRecord, d: &pb::Delivery) -> EdgeState {
    use pb::{DeadlineFlag, DeliveryState, LadderStep};
    if !d.acknowledgements.is_empty() {
        EdgeState::Acknowledged
    } else if r.status != pb::AlertStatus::Active as i32 {
        EdgeState::Closed
    } else if d.state == DeliveryState::Rejected as i32 {
        EdgeState::Rejected
    } else if d.ladder >= LadderStep::Lapsed as i32 {
        EdgeState::Lapsed
    } else if d.ladder >= LadderStep::Escalated as i32 {
        EdgeState::Escalated
    } else if d.flag != DeadlineFlag::None as i32 {
        EdgeState::Overdue
    } else if d.state == DeliveryState::Delivered as i32 {
        EdgeState::Delivered
    } else if d.state == DeliveryState::Blocked as i32 {
        EdgeState::Blocked
    } else {
        EdgeState::Pending
    }
}

fn subject_label(s: &pb::Subject) -> String {
    match &s.kind {
        Some(pb::subject::Kind::Person(p)) => {
            let name = p.names.first().map(String::as_str).unwrap_or("(unnamed)");
            if p.date_of_birth.is_empty() {
                name.to_owned()
            } else {
                format!("{name} (b. {})", p.date_of_birth)
            }
        }
        Some(pb::subject::Kind::Identifier(i)) => format!("{} {}", i.kind, i.value),
        None => String::new(),
    }
}

/// As many alerts as one reading lists.
const LIST_LIMIT: u32 = 1000;

/// Reads every agency's node through its operator API (alerts, subject
/// flags) and makes the picture at `clock`. A node that does not answer
/// is down; `previous` keeps what it last said.
pub async fn read(clients: &Clients, clock: DateTime<Utc>, previous: Option<&Picture>) -> Picture {
    let readings = futures::future::join_all(clients.iter().map(|(id, c)| async move {
        let mut op = c.operator.clone();
        let alerts = op
            .list_alerts(pb::ListAlertsRequest {
                limit: LIST_LIMIT,
                ..Default::default()
            })
            .await;
        let flags = op.list_subject_flags(pb::ListSubjectFlagsRequest {}).await;
        let reading = match (alerts, flags) {
            (Ok(a), Ok(f)) => Some(NodeReading {
                alerts: a.into_inner().alerts,
                flags: f.into_inner().flags,
            }),
            _ => None,
        };
        (id.clone(), reading)
    }))
    .await;
    Picture::from_readings(clock, readings, previous)
}

impl Observer for crate::View {
    fn observe<'a>(&'a self, now: DateTime<Utc>, clients: &'a Clients) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let previous = self.latest();
            let picture = read(clients, now, previous.as_ref()).await;
            self.show(picture);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn ts(s: &str) -> Option<prost_types::Timestamp> {
        Some(tocsin_core::to_timestamp(t(s)))
    }

    fn alert(id: &str, from: &str, deliveries: Vec<pb::Delivery>) -> pb::AlertRecord {
        pb::AlertRecord {
            alert: Some(pb::Alert {
                id: id.into(),
                originator: from.into(),
                precedence: pb::Precedence::Priority as i32,
                subjects: vec![pb::Subject {
                    kind: Some(pb::subject::Kind::Person(pb::Person {
                        names: vec!["Ismaël Omar Mostefaï".into()],
                        ..Default::default()
                    })),
                }],
                ..Default::default()
            }),
            direction: pb::Direction::Outbound as i32,
            deliveries,
            ..Default::default()
        }
    }

    fn delivery(to: &str, state: pb::DeliveryState) -> pb::Delivery {
        pb::Delivery {
            recipient: to.into(),
            state: state as i32,
            due_at: ts("2015-01-01T00:00:00Z"),
            ..Default::default()
        }
    }

    fn acked(mut d: pb::Delivery, late_by_seconds: u64) -> pb::Delivery {
        d.acknowledgements.push(pb::AckRecord {
            late_by_seconds,
            ..Default::default()
        });
        d
    }

    fn flagged(mut d: pb::Delivery, ladder: pb::LadderStep) -> pb::Delivery {
        d.flag = pb::DeadlineFlag::Overdue as i32;
        d.ladder = ladder as i32;
        d
    }

    fn id(s: &str) -> AgencyId {
        s.parse().unwrap()
    }

    #[test]
    fn each_delivery_is_an_edge_in_the_state_its_node_reports() {
        use pb::DeliveryState::*;
        let tr = NodeReading {
            alerts: vec![alert(
                "A1",
                "TR-MIT",
                vec![
                    delivery("BE-VSSE", Pending),
                    delivery("DE-BFV", Delivered),
                    acked(delivery("FR-DGSE", Delivered), 0),
                    acked(
                        flagged(delivery("FR-GN", Delivered), pb::LadderStep::Lapsed),
                        60,
                    ),
                    flagged(delivery("FR-DGSI", Delivered), pb::LadderStep::Reminded),
                    flagged(delivery("GR-EYP", Delivered), pb::LadderStep::Escalated),
                    flagged(delivery("IQ-INIS", Delivered), pb::LadderStep::Lapsed),
                    delivery("AT-BVT", Blocked),
                    delivery("NL-AIVD", Rejected),
                ],
            )],
            flags: vec![],
        };
        // Inbound records are the other side's edges: not drawn twice.
        let mut inbound = alert("A1", "TR-MIT", vec![]);
        inbound.direction = pb::Direction::Inbound as i32;
        let fr = NodeReading {
            alerts: vec![inbound],
            flags: vec![],
        };
        let p = Picture::from_readings(
            t("2015-01-02T00:00:00Z"),
            [(id("TR-MIT"), Some(tr)), (id("FR-DGSI"), Some(fr))],
            None,
        );
        let states: Vec<(&str, EdgeState, bool)> = p
            .edges
            .iter()
            .map(|e| (e.to.as_str(), e.state, e.late))
            .collect();
        assert_eq!(
            states,
            [
                ("AT-BVT", EdgeState::Blocked, false),
                ("BE-VSSE", EdgeState::Pending, false),
                ("DE-BFV", EdgeState::Delivered, false),
                ("FR-DGSE", EdgeState::Acknowledged, false),
                ("FR-DGSI", EdgeState::Overdue, false),
                ("FR-GN", EdgeState::Acknowledged, true),
                ("GR-EYP", EdgeState::Escalated, false),
                ("IQ-INIS", EdgeState::Lapsed, false),
                ("NL-AIVD", EdgeState::Rejected, false),
            ]
        );
        let e = &p.edges[0];
        assert_eq!((e.from.as_str(), e.alert_id.as_str()), ("TR-MIT", "A1"));
        assert_eq!(e.kind, EdgeKind::Alert);
        assert_eq!(e.precedence, "PRIORITY");
        assert_eq!(e.subject, "Ismaël Omar Mostefaï");
        assert_eq!(e.due_at, Some(t("2015-01-01T00:00:00Z")));
        assert_eq!(p.pairs().len(), 9);
        assert_eq!(p.counts()[&EdgeState::Acknowledged], 2);
        assert!(EdgeState::Lapsed.is_late() && !EdgeState::Delivered.is_late());
    }

    #[test]
    fn a_cancelled_alert_is_closed_and_a_hit_report_is_told_apart() {
        let mut cancelled = alert(
            "A2",
            "IQ-INIS",
            vec![flagged(
                delivery("DE-BFV", pb::DeliveryState::Delivered),
                pb::LadderStep::Escalated,
            )],
        );
        cancelled.status = pb::AlertStatus::Cancelled as i32;
        let mut hit = alert(
            "H1",
            "AT-BVT",
            vec![delivery("BE-VSSE", pb::DeliveryState::Delivered)],
        );
        if let Some(a) = hit.alert.as_mut() {
            a.hit = Some(pb::WatchlistHit::default());
        }
        let p = Picture::from_readings(
            t("2015-01-02T00:00:00Z"),
            [
                (
                    id("IQ-INIS"),
                    Some(NodeReading {
                        alerts: vec![cancelled],
                        flags: vec![],
                    }),
                ),
                (
                    id("AT-BVT"),
                    Some(NodeReading {
                        alerts: vec![hit],
                        flags: vec![],
                    }),
                ),
            ],
            None,
        );
        assert_eq!(p.edges[0].kind, EdgeKind::HitReport);
        assert_eq!(p.edges[0].state, EdgeState::Delivered);
        assert_eq!(p.edges[1].state, EdgeState::Closed);
        assert_eq!(
            p.agencies.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
            ["AT-BVT", "IQ-INIS"]
        );
    }

    #[test]
    fn flags_are_listed_as_they_rose_and_a_down_node_keeps_what_it_said() {
        let flag = |label: &str, at: &str| pb::SubjectFlag {
            subject: "k".into(),
            label: label.into(),
            recipient: "FR-DGSI".into(),
            alert_ids: vec!["A1".into(), "A2".into()],
            flagged_at: ts(at),
        };
        let reading = NodeReading {
            alerts: vec![alert(
                "A1",
                "TR-MIT",
                vec![delivery("FR-DGSI", pb::DeliveryState::Delivered)],
            )],
            flags: vec![
                flag("later", "2015-03-01T00:00:00Z"),
                flag("Ismaël Omar Mostefaï", "2015-02-01T00:00:00Z"),
            ],
        };
        let first = Picture::from_readings(
            t("2015-03-02T00:00:00Z"),
            [(id("TR-MIT"), Some(reading)), (id("FR-DGSI"), None)],
            None,
        );
        assert_eq!(first.flags[0].subject, "Ismaël Omar Mostefaï");
        assert_eq!(first.flags[0].raised_by.as_str(), "TR-MIT");
        assert_eq!(first.flags[0].alerts, ["A1", "A2"]);
        assert_eq!(first.flags[0].at, Some(t("2015-02-01T00:00:00Z")));
        assert_eq!(first.flags[1].subject, "later");
        assert!(!first.agencies[0].up, "{:?}", first.agencies);

        let later = Picture::from_readings(
            t("2015-03-03T00:00:00Z"),
            [(id("TR-MIT"), None), (id("FR-DGSI"), None)],
            Some(&first),
        );
        assert_eq!(later.edges, first.edges);
        assert_eq!(later.flags, first.flags);
        assert!(!later.same_state(&first), "TR-MIT went down");
        let again = Picture {
            clock: t("2016-01-01T00:00:00Z"),
            ..later.clone()
        };
        assert!(again.same_state(&later), "only the clock moved");
        let empty = Picture::empty(later.clock, [id("FR-DGSI")]);
        assert!(empty.edges.is_empty() && empty.agencies[0].up);
    }
}
