//! The post-mortem: what happened to every alert of a replay, read from the
//! nodes.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tocsin_core::alert::{Disposition, Precedence};
use tocsin_core::{AgencyId, time_of};
use tocsin_proto::pb;
use tocsin_proto::pb::operator_client::OperatorClient;
use tonic::transport::Channel;

use crate::file::{Action, Scenario};
use crate::replay::{Clients, Replay, ReplayError, stamp};

/// The flag a delivery got when its deadline passed unanswered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeadlineFlag {
    /// Delivered, not acknowledged by the deadline.
    Overdue,
    /// Not even delivered by the deadline.
    Undelivered,
}

/// A step of the escalation ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LadderStep {
    /// A reminder went to the recipient (if it had the alert).
    Reminded,
    /// A reminder one precedence higher, and notices to the observers.
    Escalated,
    /// The ladder ran out with no acknowledgement.
    Lapsed,
}

/// Whether a later alert closed an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlertStatus {
    /// Not closed.
    Active,
    /// Updated or superseded by a later alert.
    Superseded,
    /// Cancelled by a later alert.
    Cancelled,
}

macro_rules! names {
    ($($ty:ident { $($variant:ident => $text:literal),+ })+) => {$(
        impl $ty {
            /// The name the protocol and the CLI use.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),+ }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )+};
}

names! {
    DeadlineFlag { Overdue => "OVERDUE", Undelivered => "UNDELIVERED" }
    LadderStep { Reminded => "REMINDED", Escalated => "ESCALATED", Lapsed => "LAPSED" }
    AlertStatus { Active => "ACTIVE", Superseded => "SUPERSEDED", Cancelled => "CANCELLED" }
}

/// One acknowledgement from a recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckReport {
    /// What the recipient decided.
    pub disposition: Disposition,
    /// When it acknowledged (its signed time).
    pub at: Option<DateTime<Utc>>,
    /// How long after the deadline; 0 if in time.
    pub late_by_seconds: u64,
    /// Its note.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

impl AckReport {
    /// Whether it came after the deadline.
    pub fn is_late(&self) -> bool {
        self.late_by_seconds > 0
    }

    /// How long after the deadline it came.
    pub fn late_by(&self) -> Duration {
        Duration::from_secs(self.late_by_seconds)
    }
}

/// One step of the escalation ladder, as the originator took it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepReport {
    /// Which step.
    pub step: LadderStep,
    /// When it was taken.
    pub at: Option<DateTime<Utc>>,
    /// The originator's account of it, written when it was taken.
    pub detail: String,
}

/// One recipient of one alert, as its originator saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientReport {
    /// The recipient.
    pub agency: AgencyId,
    /// When the recipient committed the alert (its receipt), if it did.
    pub received_at: Option<DateTime<Utc>>,
    /// Delivery attempts it took.
    pub delivery_attempts: u32,
    /// The acknowledgement deadline.
    pub due_at: Option<DateTime<Utc>>,
    /// Every acknowledgement, oldest first; the last is the current one.
    pub acknowledgements: Vec<AckReport>,
    /// The flag raised when the deadline passed unanswered, as it stands:
    /// UNDELIVERED becomes OVERDUE once the alert arrives.
    pub flag: Option<DeadlineFlag>,
    /// When the deadline was flagged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flagged_at: Option<DateTime<Utc>>,
    /// The ladder steps taken, in order.
    pub escalation: Vec<StepReport>,
}

impl RecipientReport {
    /// The current acknowledgement: the last one.
    pub fn answer(&self) -> Option<&AckReport> {
        self.acknowledgements.last()
    }

    /// Whether the current acknowledgement came by the deadline.
    pub fn answered_in_time(&self) -> bool {
        self.answer().is_some_and(|a| !a.is_late())
    }

    /// The ladder steps taken, in order.
    pub fn steps(&self) -> Vec<LadderStep> {
        self.escalation.iter().map(|s| s.step).collect()
    }
}

/// One alert of the replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertReport {
    /// Its label in the scenario.
    pub label: String,
    /// Its id.
    pub id: String,
    /// Who sent it.
    pub originator: AgencyId,
    /// Its precedence.
    pub precedence: Precedence,
    /// When it was sent (its signed creation time).
    pub sent_at: Option<DateTime<Utc>>,
    /// Whether a later alert closed it.
    pub status: AlertStatus,
    /// Each recipient, as the originator saw it.
    pub recipients: Vec<RecipientReport>,
}

impl AlertReport {
    /// The recipient `agency`.
    pub fn recipient(&self, agency: &str) -> Option<&RecipientReport> {
        self.recipients.iter().find(|r| r.agency.as_str() == agency)
    }
}

/// One REPEATED_UNANSWERED flag: a recipient left several alerts about one
/// subject unanswered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagReport {
    /// The subject, as people read it.
    pub subject: String,
    /// The recipient that left them unanswered.
    pub recipient: AgencyId,
    /// The alerts, by label (by id for alerts not of the replay).
    pub alerts: Vec<String>,
    /// The nodes that raised the flag.
    pub seen_at: Vec<AgencyId>,
}

/// One hit report of the replay: a partner's screen hit an entry, and the
/// entry's owner was told (an alert to it, with the acknowledgement cycle
/// of any alert).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HitReport {
    /// Its label in the scenario: the screen's.
    pub label: String,
    /// Its id (an alert id).
    pub id: String,
    /// The agency that screened, and sent the report.
    pub screened_by: AgencyId,
    /// The person as screened, as people read it.
    pub person: String,
    /// Where they were seen.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub seen_place: String,
    /// When they were seen.
    pub seen_at: Option<DateTime<Utc>>,
    /// The entry's owner, the report's recipient.
    pub entry_owner: AgencyId,
    /// The owner's reference of the entry.
    pub entry_ref: String,
    /// What the entry asks a holder to do on a hit.
    pub requested_action: String,
    /// How well the screen matched the entry, in [0, 1].
    pub score: f32,
    /// The evidence, one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// The report's precedence: the entry's.
    pub precedence: Precedence,
    /// When it was sent.
    pub sent_at: Option<DateTime<Utc>>,
    /// Later screens of the same person that reused this report (within
    /// the screening node's repeat window), by label.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repeated_by: Vec<String>,
    /// What became of it at the owner: receipt, deadline, answer, flag,
    /// ladder.
    pub owner: RecipientReport,
}

/// The deliveries of a replay, counted by their current acknowledgement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Every (alert, recipient).
    pub deliveries: usize,
    /// Acknowledged by the deadline.
    pub in_time: usize,
    /// Acknowledged after the deadline.
    pub late: usize,
    /// Not acknowledged by the end of the replay.
    pub never_acknowledged: usize,
    /// Subjects flagged REPEATED_UNANSWERED.
    pub subjects_flagged: usize,
    /// Hit reports sent (not counted in `deliveries`).
    #[serde(default)]
    pub hit_reports: usize,
    /// Hit reports the owner acknowledged by the deadline.
    #[serde(default)]
    pub hits_in_time: usize,
    /// Hit reports acknowledged after the deadline.
    #[serde(default)]
    pub hits_late: usize,
    /// Hit reports not acknowledged by the end of the replay.
    #[serde(default)]
    pub hits_unanswered: usize,
}

/// The story of a replay, read from the nodes' stores: what they hold is
/// what happened. Its [`Display`](fmt::Display) is the text `tocsin demo`
/// prints; its JSON is what `--json` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostMortem {
    /// The scenario's name.
    pub scenario: String,
    /// Its title.
    pub title: String,
    /// Every alert sent or cancel made, in the scenario's order.
    pub alerts: Vec<AlertReport>,
    /// Every hit report, in the order the screens made them.
    #[serde(default)]
    pub hits: Vec<HitReport>,
    /// What each `triage` step saw: the agency's owed items, ranked.
    #[serde(default)]
    pub triages: Vec<crate::TriageSeen>,
    /// Every REPEATED_UNANSWERED flag, on any node.
    pub repeated_unanswered: Vec<FlagReport>,
    /// The counts.
    pub totals: Totals,
}

impl PostMortem {
    /// The alert sent (or cancel made) as `label`.
    pub fn alert(&self, label: &str) -> Option<&AlertReport> {
        self.alerts.iter().find(|a| a.label == label)
    }

    /// The hit report of the screen `label`.
    pub fn hit(&self, label: &str) -> Option<&HitReport> {
        self.hits
            .iter()
            .find(|h| h.label == label || h.repeated_by.iter().any(|l| l == label))
    }

    /// The REPEATED_UNANSWERED flags on `recipient`.
    pub fn flags_on<'a>(&'a self, recipient: &'a str) -> impl Iterator<Item = &'a FlagReport> {
        self.repeated_unanswered
            .iter()
            .filter(move |f| f.recipient.as_str() == recipient)
    }
}

fn agency(text: &str, node: &AgencyId) -> Result<AgencyId, ReplayError> {
    AgencyId::new(text).map_err(|e| ReplayError::Invalid {
        agency: node.clone(),
        what: e.to_string(),
    })
}

fn ladder_step(kind: i32) -> Option<LadderStep> {
    match pb::EventKind::try_from(kind) {
        Ok(pb::EventKind::Reminded) => Some(LadderStep::Reminded),
        Ok(pb::EventKind::Escalated) => Some(LadderStep::Escalated),
        Ok(pb::EventKind::Lapsed) => Some(LadderStep::Lapsed),
        _ => None,
    }
}

/// The ladder events of `client`'s node for the deliveries in `expected`
/// (alert id and recipient, to how many steps each has taken): read from
/// the start of its event log until all are in (a node writes a step and
/// its event together), the log pauses for long, or it fails.
async fn ladder_events(
    client: &OperatorClient<Channel>,
    mut expected: HashMap<(String, String), u32>,
) -> Vec<pb::Event> {
    expected.retain(|_, n| *n > 0);
    let mut out = Vec::new();
    if expected.is_empty() {
        return out;
    }
    let Ok(stream) = client
        .clone()
        .watch_events(pb::WatchEventsRequest { after_id: Some(0) })
        .await
    else {
        return out;
    };
    let mut stream = stream.into_inner();
    while let Ok(Ok(Some(e))) =
        tokio::time::timeout(Duration::from_secs(10), stream.message()).await
    {
        if ladder_step(e.kind).is_none() || e.direction != pb::Direction::Outbound as i32 {
            continue;
        }
        let key = (e.alert_id.clone(), e.agency.clone());
        if let Some(n) = expected.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                expected.remove(&key);
            }
            out.push(e);
            if expected.is_empty() {
                break;
            }
        }
    }
    out
}

/// Gathers, from the nodes, what happened to every alert of the replay.
/// An alert whose originator has no client is left out; nodes that do not
/// answer contribute no flags.
pub async fn post_mortem(
    scenario: &Scenario,
    clients: &Clients,
    replay: &Replay,
) -> Result<PostMortem, ReplayError> {
    let mut records = Vec::new();
    let mut wanted: Vec<(String, String, AgencyId)> = Vec::new();
    for step in &scenario.steps {
        let label = match &step.action {
            Action::Send { label, .. } => label,
            Action::Cancel { as_label, .. } => as_label,
            _ => continue,
        };
        if let Some((id, originator)) = replay.labels.get(label) {
            wanted.push((label.clone(), id.clone(), originator.clone()));
        }
    }
    // Hit reports after the alerts, once each: a repeat names the first.
    let mut repeats: HashMap<String, Vec<String>> = HashMap::new();
    let mut hit_ids = Vec::new();
    for label in &replay.hit_reports {
        let Some((id, originator)) = replay.labels.get(label) else {
            continue;
        };
        if hit_ids.contains(id) {
            repeats.entry(id.clone()).or_default().push(label.clone());
            continue;
        }
        hit_ids.push(id.clone());
        wanted.push((label.clone(), id.clone(), originator.clone()));
    }
    for (label, id, originator) in wanted {
        let Some(client) = clients.get(&originator) else {
            continue;
        };
        let record = client
            .operator
            .clone()
            .get_alert(pb::GetAlertRequest { id: id.clone() })
            .await
            .map_err(|status| ReplayError::Refused {
                agency: originator.clone(),
                action: "show",
                label: label.clone(),
                status,
            })?
            .into_inner();
        records.push((label, id, originator, record));
    }

    // Read after the records, so every step they show has its event.
    let mut expected: BTreeMap<AgencyId, HashMap<(String, String), u32>> = BTreeMap::new();
    for (_, id, originator, record) in &records {
        for d in &record.deliveries {
            let steps = u32::try_from(d.ladder).unwrap_or(0);
            expected
                .entry(originator.clone())
                .or_default()
                .insert((id.clone(), d.recipient.clone()), steps);
        }
    }
    let mut events: HashMap<AgencyId, Vec<pb::Event>> = HashMap::new();
    for (originator, wanted) in expected {
        if let Some(client) = clients.get(&originator) {
            events.insert(originator, ladder_events(&client.operator, wanted).await);
        }
    }

    let mut totals = Totals::default();
    let mut alerts = Vec::new();
    let mut hits = Vec::new();
    for (label, id, originator, record) in records {
        let alert = record.alert.clone().unwrap_or_default();
        let invalid = |what: String| ReplayError::Invalid {
            agency: originator.clone(),
            what,
        };
        let mut recipients = Vec::new();
        for d in &record.deliveries {
            let report = recipient_report(d, &id, &originator, &events)?;
            let (all, in_time, late, never) = if alert.hit.is_some() {
                (
                    &mut totals.hit_reports,
                    &mut totals.hits_in_time,
                    &mut totals.hits_late,
                    &mut totals.hits_unanswered,
                )
            } else {
                (
                    &mut totals.deliveries,
                    &mut totals.in_time,
                    &mut totals.late,
                    &mut totals.never_acknowledged,
                )
            };
            *all += 1;
            match report.answer() {
                Some(a) if a.is_late() => *late += 1,
                Some(_) => *in_time += 1,
                None => *never += 1,
            }
            recipients.push(report);
        }
        let precedence =
            Precedence::from_wire(alert.precedence).map_err(|e| invalid(e.to_string()))?;
        if let Some(hit) = &alert.hit {
            let owner = recipients
                .pop()
                .ok_or_else(|| invalid(format!("hit report {label:?} without its delivery")))?;
            let person = hit
                .screened
                .as_ref()
                .map(|p| {
                    let dob = if p.date_of_birth.is_empty() {
                        String::new()
                    } else {
                        format!(" (b. {})", p.date_of_birth)
                    };
                    format!("{}{dob}", p.names.join(" / "))
                })
                .unwrap_or_default();
            hits.push(HitReport {
                repeated_by: repeats.remove(&id).unwrap_or_default(),
                label,
                id,
                screened_by: originator.clone(),
                person,
                seen_place: hit.seen_place.clone(),
                seen_at: time_of(&hit.seen_at),
                entry_owner: agency(&hit.entry_owner, &originator)?,
                entry_ref: hit.entry_ref.clone(),
                requested_action: hit.requested_action.clone(),
                score: hit.score,
                reasons: hit.reasons.clone(),
                precedence,
                sent_at: time_of(&alert.created_at),
                owner,
            });
            continue;
        }
        let status = match pb::AlertStatus::try_from(record.status) {
            Ok(pb::AlertStatus::Active) => AlertStatus::Active,
            Ok(pb::AlertStatus::Superseded) => AlertStatus::Superseded,
            Ok(pb::AlertStatus::Cancelled) => AlertStatus::Cancelled,
            Err(_) => return Err(invalid(format!("an unknown status {}", record.status))),
        };
        alerts.push(AlertReport {
            label,
            id,
            originator: originator.clone(),
            precedence,
            sent_at: time_of(&alert.created_at),
            status,
            recipients,
        });
    }

    let by_id: HashMap<&str, &str> = replay
        .labels
        .values()
        .filter_map(|(id, _)| Some((id.as_str(), replay.label_of(id)?)))
        .collect();
    let mut flags: BTreeMap<(String, String), FlagReport> = BTreeMap::new();
    for (node, c) in clients {
        let Ok(found) = c
            .operator
            .clone()
            .list_subject_flags(pb::ListSubjectFlagsRequest {})
            .await
        else {
            continue;
        };
        for f in found.into_inner().flags {
            let key = (f.subject.clone(), f.recipient.clone());
            let entry = match flags.entry(key) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => e.insert(FlagReport {
                    subject: f.label.clone(),
                    recipient: agency(&f.recipient, node)?,
                    alerts: f
                        .alert_ids
                        .iter()
                        .map(|id| {
                            by_id
                                .get(id.as_str())
                                .map(|l| l.to_string())
                                .unwrap_or_else(|| id.clone())
                        })
                        .collect(),
                    seen_at: Vec::new(),
                }),
            };
            entry.seen_at.push(node.clone());
        }
    }
    totals.subjects_flagged = flags.len();
    Ok(PostMortem {
        scenario: scenario.name.clone(),
        title: scenario.title.clone(),
        alerts,
        hits,
        triages: replay.triages.clone(),
        repeated_unanswered: flags.into_values().collect(),
        totals,
    })
}

/// One recipient of one alert, as its originator `originator` holds the
/// delivery, with the ladder steps of `events`.
fn recipient_report(
    d: &pb::Delivery,
    id: &str,
    originator: &AgencyId,
    events: &HashMap<AgencyId, Vec<pb::Event>>,
) -> Result<RecipientReport, ReplayError> {
    let invalid = |what: String| ReplayError::Invalid {
        agency: originator.clone(),
        what,
    };
    let acknowledgements = d
        .acknowledgements
        .iter()
        .map(|a| {
            let ack = a.acknowledgement.clone().unwrap_or_default();
            Ok(AckReport {
                disposition: Disposition::from_wire(ack.disposition)
                    .map_err(|e| invalid(e.to_string()))?,
                at: time_of(&ack.acknowledged_at),
                late_by_seconds: a.late_by_seconds,
                note: ack.note,
            })
        })
        .collect::<Result<Vec<_>, ReplayError>>()?;
    let flag = match pb::DeadlineFlag::try_from(d.flag) {
        Ok(pb::DeadlineFlag::None) => None,
        Ok(pb::DeadlineFlag::Overdue) => Some(DeadlineFlag::Overdue),
        Ok(pb::DeadlineFlag::Undelivered) => Some(DeadlineFlag::Undelivered),
        Err(_) => return Err(invalid(format!("an unknown deadline flag {}", d.flag))),
    };
    let escalation = events
        .get(originator)
        .into_iter()
        .flatten()
        .filter(|e| e.alert_id == id && e.agency == d.recipient)
        .filter_map(|e| {
            Some(StepReport {
                step: ladder_step(e.kind)?,
                at: time_of(&e.at),
                detail: e.detail.clone(),
            })
        })
        .collect();
    Ok(RecipientReport {
        agency: agency(&d.recipient, originator)?,
        received_at: time_of(&d.delivered_at),
        delivery_attempts: d.attempts,
        due_at: time_of(&d.due_at),
        acknowledgements,
        flag,
        flagged_at: time_of(&d.flagged_at),
        escalation,
    })
}

pub use tocsin_core::human_duration;

fn at(t: Option<DateTime<Utc>>) -> String {
    t.map(stamp).unwrap_or_else(|| "-".into())
}

/// The node's account of a step, without the step's own name repeated in
/// front ("LAPSED: LAPSED: ...", "ESCALATED: escalated: ...").
fn account(step: &StepReport) -> &str {
    let name = step.step.as_str();
    match step.detail.get(..name.len()) {
        Some(head) if head.eq_ignore_ascii_case(name) => step.detail[name.len()..]
            .strip_prefix(": ")
            .unwrap_or(&step.detail),
        _ => &step.detail,
    }
}

fn answer_text(ack: &AckReport) -> String {
    if ack.is_late() {
        format!(
            "{} at {}, LATE by {}",
            ack.disposition,
            at(ack.at),
            human_duration(ack.late_by_seconds)
        )
    } else {
        format!("{} at {}, in time", ack.disposition, at(ack.at))
    }
}

impl fmt::Display for RecipientReport {
    /// The recipient's line and, below it, each ladder step with its time;
    /// each stays true whatever came after it: the last step says so when
    /// an acknowledgement followed it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let received = match self.received_at {
            Some(t) if self.delivery_attempts > 1 => format!(
                "receipt {} after {} attempts (held in the outbox meanwhile)",
                stamp(t),
                self.delivery_attempts
            ),
            Some(t) => format!("receipt {}", stamp(t)),
            None => "NEVER RECEIVED".into(),
        };
        let answer = self
            .answer()
            .map(answer_text)
            .unwrap_or_else(|| "NO ACKNOWLEDGEMENT".into());
        // The flag as it stands: an UNDELIVERED delivery becomes OVERDUE
        // once it arrives, so its time would not say which was raised then.
        let flag = self
            .flag
            .map(|flag| format!("; flagged {flag}"))
            .unwrap_or_default();
        write!(
            f,
            "    {:<11} {received}; deadline {}; {answer}{flag}",
            self.agency.as_str(),
            at(self.due_at)
        )?;
        for (i, s) in self.escalation.iter().enumerate() {
            let last = i + 1 == self.escalation.len();
            let followed = match self.acknowledgements.first() {
                Some(ack) if last && ack.at >= s.at => {
                    format!("; then acknowledged: {}", answer_text(ack))
                }
                _ => String::new(),
            };
            write!(
                f,
                "\n        {} {}: {}{followed}",
                at(s.at),
                s.step,
                account(s)
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for PostMortem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "==== Post-mortem: {} ====", self.scenario)?;
        if !self.title.is_empty() {
            writeln!(f, "{}", self.title)?;
        }
        writeln!(f)?;
        for flag in &self.repeated_unanswered {
            let list = |v: &[String]| v.join(", ");
            writeln!(
                f,
                "!!!!!! REPEATED_UNANSWERED: {} left {} warnings about {} unanswered: {} (flagged at {})",
                flag.recipient,
                flag.alerts.len(),
                flag.subject,
                list(&flag.alerts),
                list(
                    &flag
                        .seen_at
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                )
            )?;
        }
        if !self.repeated_unanswered.is_empty() {
            writeln!(f)?;
        }
        for a in &self.alerts {
            writeln!(
                f,
                "{} ({}) {} -> {}, {}, sent {}{}",
                a.label,
                a.id,
                a.originator,
                a.recipients
                    .iter()
                    .map(|r| r.agency.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                a.precedence,
                at(a.sent_at),
                if a.status == AlertStatus::Active {
                    String::new()
                } else {
                    format!(" [{}]", a.status)
                }
            )?;
            for r in &a.recipients {
                writeln!(f, "{r}")?;
            }
        }
        if !self.hits.is_empty() {
            writeln!(f)?;
            writeln!(
                f,
                "Hit reports (a partner's screen hit a listed entry; its owner is told):"
            )?;
        }
        for h in &self.hits {
            writeln!(f, "{h}")?;
        }
        for t in &self.triages {
            writeln!(f)?;
            writeln!(
                f,
                "Triage: what {} owed at {}, first to look at first:",
                t.agency,
                at(Some(t.at))
            )?;
            for (n, item) in t.items.iter().take(3).enumerate() {
                writeln!(
                    f,
                    "  {}. {} ({}): {}",
                    n + 1,
                    item.label,
                    item.tier,
                    item.reasons
                )?;
            }
            if t.items.len() > 3 {
                writeln!(f, "  ... and {} more", t.items.len() - 3)?;
            }
        }
        writeln!(f)?;
        let t = &self.totals;
        write!(
            f,
            "{} deliveries: {} acknowledged in time, {} late, {} never acknowledged; {} subject(s) flagged REPEATED_UNANSWERED",
            t.deliveries, t.in_time, t.late, t.never_acknowledged, t.subjects_flagged
        )?;
        if t.hit_reports > 0 {
            write!(
                f,
                "\n{} hit report(s): {} acknowledged in time, {} late, {} never acknowledged",
                t.hit_reports, t.hits_in_time, t.hits_late, t.hits_unanswered
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for HitReport {
    /// Who screened whom, where and when, which entry and how well, then
    /// the owner's line: what became of the report.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let place = if self.seen_place.is_empty() {
            String::new()
        } else {
            format!(" at {}", self.seen_place)
        };
        let action = if self.requested_action.is_empty() {
            String::new()
        } else {
            format!(", {}", self.requested_action)
        };
        writeln!(
            f,
            "{} ({}) {} screened {}{place}, seen {}",
            self.label,
            self.id,
            self.screened_by,
            self.person,
            at(self.seen_at)
        )?;
        write!(
            f,
            "    HIT on {}/{}{action}, score {:.2}; hit report -> {}, {}, sent {}",
            self.entry_owner,
            self.entry_ref,
            self.score,
            self.entry_owner,
            self.precedence,
            at(self.sent_at)
        )?;
        if !self.repeated_by.is_empty() {
            write!(f, "; repeated by {}", self.repeated_by.join(", "))?;
        }
        write!(f, "\n{}", self.owner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Option<DateTime<Utc>> {
        Some(s.parse().unwrap())
    }

    fn late_answer() -> RecipientReport {
        RecipientReport {
            agency: AgencyId::new("FR-DGSI").unwrap(),
            received_at: t("2015-11-12T10:00:00Z"),
            delivery_attempts: 1,
            due_at: t("2015-11-12T11:00:00Z"),
            acknowledgements: vec![AckReport {
                disposition: Disposition::Noted,
                at: t("2015-11-14T08:01:00Z"),
                late_by_seconds: 86_400 + 21 * 3600 + 60,
                note: String::new(),
            }],
            flag: Some(DeadlineFlag::Overdue),
            flagged_at: t("2015-11-12T11:00:00Z"),
            escalation: vec![
                StepReport {
                    step: LadderStep::Reminded,
                    at: t("2015-11-12T11:00:00Z"),
                    detail: "reminder sent to FR-DGSI at IMMEDIATE".into(),
                },
                StepReport {
                    step: LadderStep::Escalated,
                    at: t("2015-11-12T11:30:00Z"),
                    detail: "escalated: reminder sent to FR-DGSI at FLASH; observers notified: EU-EUROPOL".into(),
                },
                StepReport {
                    step: LadderStep::Lapsed,
                    at: t("2015-11-12T12:00:00Z"),
                    detail: "LAPSED: the ladder ran out with no acknowledgement from FR-DGSI (deadline 2015-11-12 11:00 UTC)".into(),
                },
            ],
        }
    }

    #[test]
    fn a_late_answer_is_told_without_contradicting_the_steps_before_it() {
        let text = late_answer().to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "    FR-DGSI     receipt 2015-11-12 10:00; deadline 2015-11-12 11:00; NOTED at 2015-11-14 08:01, LATE by 1 day 21 h 1 min; flagged OVERDUE",
                "        2015-11-12 11:00 REMINDED: reminder sent to FR-DGSI at IMMEDIATE",
                "        2015-11-12 11:30 ESCALATED: reminder sent to FR-DGSI at FLASH; observers notified: EU-EUROPOL",
                "        2015-11-12 12:00 LAPSED: the ladder ran out with no acknowledgement from FR-DGSI (deadline 2015-11-12 11:00 UTC); then acknowledged: NOTED at 2015-11-14 08:01, LATE by 1 day 21 h 1 min",
            ]
        );
        assert!(!text.contains("never"), "{text}");
    }

    #[test]
    fn an_unanswered_delivery_says_so_and_its_totals_count_it() {
        let mut r = late_answer();
        r.acknowledgements.clear();
        let text = r.to_string();
        assert!(
            text.contains("; NO ACKNOWLEDGEMENT; flagged OVERDUE\n"),
            "{text}"
        );
        assert!(!text.contains("then acknowledged"), "{text}");
        let pm = PostMortem {
            triages: vec![],
            scenario: "s".into(),
            title: String::new(),
            alerts: vec![AlertReport {
                label: "w".into(),
                id: "01".into(),
                originator: AgencyId::new("IQ-INIS").unwrap(),
                precedence: Precedence::Immediate,
                sent_at: t("2015-11-12T10:00:00Z"),
                status: AlertStatus::Cancelled,
                recipients: vec![r],
            }],
            hits: vec![],
            repeated_unanswered: vec![],
            totals: Totals {
                deliveries: 1,
                never_acknowledged: 1,
                ..Totals::default()
            },
        };
        let text = pm.to_string();
        assert!(
            text.contains(
                "w (01) IQ-INIS -> FR-DGSI, IMMEDIATE, sent 2015-11-12 10:00 [CANCELLED]"
            ),
            "{text}"
        );
        assert!(
            text.ends_with("1 deliveries: 0 acknowledged in time, 0 late, 1 never acknowledged; 0 subject(s) flagged REPEATED_UNANSWERED"),
            "{text}"
        );
        // The JSON the demo prints, and back.
        let json = serde_json::to_value(&pm).unwrap();
        assert_eq!(json["alerts"][0]["status"], "CANCELLED");
        assert_eq!(json["alerts"][0]["recipients"][0]["flag"], "OVERDUE");
        assert_eq!(
            json["alerts"][0]["recipients"][0]["escalation"][2]["step"],
            "LAPSED"
        );
        assert_eq!(serde_json::from_value::<PostMortem>(json).unwrap(), pm);
    }

    #[test]
    fn a_hit_report_says_who_saw_whom_where_which_entry_and_its_fate() {
        let mut owner = late_answer();
        owner.agency = AgencyId::new("BE-VSSE").unwrap();
        owner.acknowledgements.clear();
        let hit = HitReport {
            label: "cambrai".into(),
            id: "01H".into(),
            screened_by: AgencyId::new("FR-GN").unwrap(),
            person: "Salah ABDESLAM (b. 1989-09-15)".into(),
            seen_place: "Cambrai".into(),
            seen_at: t("2015-11-14T09:10:00Z"),
            entry_owner: AgencyId::new("BE-VSSE").unwrap(),
            entry_ref: "VSSE-2015-0212".into(),
            requested_action: "DISCREET_CHECK".into(),
            score: 0.974,
            reasons: vec!["names: ABDESLAM ~ ABDESLAM (exact)".into()],
            precedence: Precedence::Immediate,
            sent_at: t("2015-11-14T09:10:00Z"),
            repeated_by: vec!["cambrai-again".into()],
            owner,
        };
        let pm = PostMortem {
            triages: vec![],
            scenario: "s".into(),
            title: String::new(),
            alerts: vec![],
            hits: vec![hit],
            repeated_unanswered: vec![],
            totals: Totals {
                hit_reports: 1,
                hits_unanswered: 1,
                ..Totals::default()
            },
        };
        let text = pm.to_string();
        let lines: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("cambrai"))
            .take(4)
            .collect();
        assert_eq!(
            lines[..3],
            [
                "cambrai (01H) FR-GN screened Salah ABDESLAM (b. 1989-09-15) at Cambrai, seen 2015-11-14 09:10",
                "    HIT on BE-VSSE/VSSE-2015-0212, DISCREET_CHECK, score 0.97; hit report -> BE-VSSE, IMMEDIATE, sent 2015-11-14 09:10; repeated by cambrai-again",
                "    BE-VSSE     receipt 2015-11-12 10:00; deadline 2015-11-12 11:00; NO ACKNOWLEDGEMENT; flagged OVERDUE",
            ],
            "{text}"
        );
        assert!(lines[3].contains("REMINDED"), "{text}");
        assert!(
            text.ends_with(
                "\n1 hit report(s): 0 acknowledged in time, 0 late, 1 never acknowledged"
            ),
            "{text}"
        );
        assert_eq!(pm.hit("cambrai-again").unwrap().label, "cambrai");
        let json = serde_json::to_value(&pm).unwrap();
        assert_eq!(json["hits"][0]["entry_ref"], "VSSE-2015-0212");
        assert_eq!(json["hits"][0]["owner"]["flag"], "OVERDUE");
        assert_eq!(json["totals"]["hits_unanswered"], 1);
        assert_eq!(serde_json::from_value::<PostMortem>(json).unwrap(), pm);
    }
}
