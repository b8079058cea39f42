//! Scenarios: alert flows replayed against a federation on scenario time.
//!
//! A scenario file (TOML) says at which scenario time which agency sends
//! which alert to whom, and which recipient acknowledges what, when, with
//! which disposition; silence is simply the absence of an `ack` step:
//!
//! ```toml
//! name = "paris-2015"
//! title = "..."
//! start = "2014-12-01T00:00:00Z"   # scenario time when the replay begins
//! end = "2015-11-20T00:00:00Z"     # and ends
//! speed = 500000                   # default: scenario seconds per real second
//!
//! [[pace]]                         # optional: slower stretches, where minutes count
//! from = "2015-11-12T09:00:00Z"
//! until = "2015-11-12T13:00:00Z"
//! speed = 2000
//!
//! [[steps]]
//! at = "2014-12-10T09:00:00Z"
//! action = "send"                  # send | ack | cancel | stop | start | note
//! from = "TR-MIT"
//! label = "mit-notice-1"           # names the alert for later steps
//! [steps.alert]                    # the alert, as in `tocsin alert send --file`
//! precedence = "PRIORITY"
//! ...
//!
//! [[steps]]
//! at = "2014-12-10T15:30:00Z"
//! action = "ack"
//! by = "FR-DGSI"
//! label = "mit-notice-1"
//! disposition = "ACTIONED"
//! note = "..."
//! ```
//!
//! `cancel` (`from`, `label`, `as` for the cancel's own label) cancels an
//! earlier alert; `stop` and `start` (`agency`) take a node down and up
//! (only under `tocsin demo`, which runs the nodes); `note` (`text`)
//! narrates.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tocsin_core::alert::{AlertDraft, Disposition};
use tocsin_core::federation::Federation;
use tocsin_core::{AgencyId, ScaledClock};
use tocsin_proto::pb;
use tocsin_proto::pb::operator_client::OperatorClient;
use tonic::transport::Channel;

use crate::operator::{DEFAULT_CANCEL_NOTE, cancel_of, stored_events};
use crate::output::{flag_name, status_name, time};

/// A scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Scenario {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) title: String,
    pub(crate) start: DateTime<Utc>,
    pub(crate) end: DateTime<Utc>,
    #[serde(default = "default_speed")]
    pub(crate) speed: f64,
    /// Stretches of scenario time replayed at their own speed: slower
    /// around moments where minutes count.
    #[serde(default)]
    pub(crate) pace: Vec<tocsin_core::Pace>,
    #[serde(default)]
    pub(crate) steps: Vec<Step>,
}

impl Scenario {
    /// The paces, scaled by `speed / self.speed` when the replay runs at
    /// another speed than the scenario's own.
    pub(crate) fn pace_at(&self, speed: f64) -> Vec<tocsin_core::Pace> {
        let factor = speed / self.speed;
        self.pace
            .iter()
            .map(|p| tocsin_core::Pace {
                speed: (p.speed * factor).max(1.0),
                ..*p
            })
            .collect()
    }

    /// The scenario clock for a replay at `speed` from real time `origin`.
    pub(crate) fn clock(&self, speed: f64, origin: DateTime<Utc>) -> ScaledClock {
        ScaledClock::with_pace(self.start, origin, speed, &self.pace_at(speed))
    }
}

fn default_speed() -> f64 {
    1.0
}

/// One step at a scenario time.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Step {
    pub(crate) at: DateTime<Utc>,
    #[serde(flatten)]
    pub(crate) action: Action,
}

/// What a step does.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub(crate) enum Action {
    Send {
        from: AgencyId,
        label: String,
        alert: Box<AlertDraft>,
    },
    Ack {
        by: AgencyId,
        label: String,
        disposition: Disposition,
        #[serde(default)]
        note: String,
    },
    Cancel {
        from: AgencyId,
        label: String,
        #[serde(rename = "as")]
        as_label: String,
        #[serde(default)]
        note: String,
    },
    Stop {
        agency: AgencyId,
    },
    Start {
        agency: AgencyId,
    },
    Note {
        text: String,
    },
}

impl Scenario {
    /// Reads and checks a scenario against `federation`.
    pub(crate) fn load(path: &Path, federation: &Federation) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read scenario {}", path.display()))?;
        let mut s: Scenario = toml::from_str(&text)
            .with_context(|| format!("invalid scenario {}", path.display()))?;
        s.check(federation)
            .with_context(|| format!("invalid scenario {}", path.display()))?;
        s.steps.sort_by_key(|st| st.at);
        Ok(s)
    }

    fn check(&self, federation: &Federation) -> anyhow::Result<()> {
        if self.end <= self.start {
            bail!("end {} is not after start {}", self.end, self.start);
        }
        if !(self.speed.is_finite() && self.speed >= 1.0) {
            bail!("speed must be at least 1, not {}", self.speed);
        }
        for (i, p) in self.pace.iter().enumerate() {
            if p.until <= p.from || !(p.speed.is_finite() && p.speed >= 1.0) {
                bail!("pace[{i}]: needs from < until and a speed of at least 1");
            }
        }
        let member = |a: &AgencyId, i: usize| -> anyhow::Result<()> {
            if federation.is_member(a) {
                Ok(())
            } else {
                bail!(
                    "steps[{i}]: {a} is not an agency of federation {}",
                    federation.id()
                )
            }
        };
        let mut order: Vec<(usize, &Step)> = self.steps.iter().enumerate().collect();
        order.sort_by_key(|(_, s)| s.at);
        let mut labels: BTreeMap<&str, (&AgencyId, Vec<AgencyId>)> = BTreeMap::new();
        for (i, step) in order {
            if step.at < self.start || step.at > self.end {
                bail!(
                    "steps[{i}]: {} is outside the scenario ({} to {})",
                    step.at,
                    self.start,
                    self.end
                );
            }
            match &step.action {
                Action::Send { from, label, alert } => {
                    member(from, i)?;
                    for r in &alert.recipients {
                        member(r, i)?;
                    }
                    if labels
                        .insert(label, (from, alert.recipients.clone()))
                        .is_some()
                    {
                        bail!("steps[{i}]: label {label:?} is used twice");
                    }
                }
                Action::Ack { by, label, .. } => {
                    member(by, i)?;
                    let Some((_, recipients)) = labels.get(label.as_str()) else {
                        bail!("steps[{i}]: no alert {label:?} is sent before this step");
                    };
                    if !recipients.contains(by) {
                        bail!("steps[{i}]: {by} is not a recipient of {label:?}");
                    }
                }
                Action::Cancel {
                    from,
                    label,
                    as_label,
                    ..
                } => {
                    member(from, i)?;
                    let Some((sender, recipients)) = labels.get(label.as_str()).cloned() else {
                        bail!("steps[{i}]: no alert {label:?} is sent before this step");
                    };
                    if sender != from {
                        bail!("steps[{i}]: {from} cannot cancel {label:?}, which {sender} sent");
                    }
                    if labels.insert(as_label, (from, recipients)).is_some() {
                        bail!("steps[{i}]: label {as_label:?} is used twice");
                    }
                }
                Action::Stop { agency } | Action::Start { agency } => member(agency, i)?,
                Action::Note { .. } => {}
            }
        }
        Ok(())
    }

    /// The agencies that send or acknowledge something.
    pub(crate) fn actors(&self) -> BTreeSet<AgencyId> {
        self.steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::Send { from, .. } | Action::Cancel { from, .. } => Some(from.clone()),
                Action::Ack { by, .. } => Some(by.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Takes nodes down and up for `stop` and `start` steps.
pub(crate) trait NodeControl {
    /// Stops `agency`'s node.
    fn stop(&mut self, agency: &AgencyId) -> anyhow::Result<()>;
    /// Starts `agency`'s node again.
    fn start(&mut self, agency: &AgencyId) -> anyhow::Result<()>;
}

/// The operator clients of the agencies, by agency.
pub(crate) type Clients = BTreeMap<AgencyId, OperatorClient<Channel>>;

/// What a replay produced: the alert id behind each label.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    pub(crate) labels: BTreeMap<String, (String, AgencyId)>,
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

/// Counts per agency, for the live table.
#[derive(Debug, Default, Clone, Serialize)]
struct Counts {
    sent: usize,
    delivered: usize,
    acknowledged: usize,
    awaiting: usize,
    overdue: usize,
    escalated: usize,
    received: usize,
    owed: usize,
    flags: usize,
}

async fn counts(client: &mut OperatorClient<Channel>) -> Option<Counts> {
    let alerts = client
        .list_alerts(pb::ListAlertsRequest {
            limit: 1000,
            ..Default::default()
        })
        .await
        .ok()?
        .into_inner()
        .alerts;
    let flags = client
        .list_subject_flags(pb::ListSubjectFlagsRequest {})
        .await
        .ok()?
        .into_inner()
        .flags
        .len();
    let mut c = Counts {
        flags,
        ..Default::default()
    };
    for a in &alerts {
        if a.direction == pb::Direction::Outbound as i32 {
            c.sent += 1;
            for d in &a.deliveries {
                let acked = !d.acknowledgements.is_empty();
                c.delivered += usize::from(d.state == pb::DeliveryState::Delivered as i32);
                c.acknowledged += usize::from(acked);
                c.awaiting += usize::from(!acked && a.status == 0);
                c.overdue += usize::from(!acked && d.flag != 0);
                c.escalated += usize::from(d.ladder >= pb::LadderStep::Escalated as i32);
            }
        } else {
            c.received += 1;
            c.owed += usize::from(a.acknowledgements.is_empty() && a.status == 0);
        }
    }
    Some(c)
}

/// The live view: narrative lines, and a table per agency refreshed in
/// place on a terminal (plain lines otherwise).
struct Progress {
    tty: bool,
    table_lines: usize,
    quiet: bool,
}

impl Progress {
    fn line(&mut self, text: &str) {
        if self.quiet {
            return;
        }
        let mut out = std::io::stdout().lock();
        if self.tty && self.table_lines > 0 {
            // Move above the table and clear it; the line goes there.
            let _ = write!(out, "\x1b[{}A\x1b[J", self.table_lines);
            self.table_lines = 0;
        }
        let _ = writeln!(out, "{text}");
    }

    fn table(&mut self, now: DateTime<Utc>, rows: &BTreeMap<AgencyId, Option<Counts>>) {
        if self.quiet || !self.tty {
            return;
        }
        let mut t = comfy_table::Table::new();
        t.load_preset(comfy_table::presets::NOTHING);
        t.set_header(vec![
            "AGENCY",
            "SENT",
            "DELIVERED",
            "ACKED",
            "AWAITING",
            "OVERDUE",
            "ESCALATED",
            "RECEIVED",
            "OWED",
            "FLAGS",
        ]);
        for (agency, c) in rows {
            match c {
                Some(c) => t.add_row(vec![
                    agency.to_string(),
                    c.sent.to_string(),
                    c.delivered.to_string(),
                    c.acknowledged.to_string(),
                    c.awaiting.to_string(),
                    c.overdue.to_string(),
                    c.escalated.to_string(),
                    c.received.to_string(),
                    c.owed.to_string(),
                    if c.flags > 0 {
                        format!("!! {}", c.flags)
                    } else {
                        "0".into()
                    },
                ]),
                None => t.add_row(vec![agency.to_string(), "(down)".into()]),
            };
        }
        let text = format!("-- scenario time {} --\n{t}", stamp(now));
        let mut out = std::io::stdout().lock();
        if self.table_lines > 0 {
            let _ = write!(out, "\x1b[{}A\x1b[J", self.table_lines);
        }
        let _ = writeln!(out, "{text}");
        self.table_lines = text.lines().count();
    }
}

/// Replays `scenario` on `clock`: each step at its scenario time.
pub(crate) async fn replay(
    scenario: &Scenario,
    clients: &Clients,
    clock: ScaledClock,
    mut control: Option<&mut dyn NodeControl>,
    quiet: bool,
) -> anyhow::Result<Replay> {
    let mut replay = Replay::default();
    let mut progress = Progress {
        tty: std::io::stdout().is_terminal(),
        table_lines: 0,
        quiet,
    };
    // The live table is drawn only on a terminal, and not under --json: its
    // counts are fetched only then.
    let live = progress.tty && !quiet;
    let client = |agency: &AgencyId| -> anyhow::Result<OperatorClient<Channel>> {
        clients
            .get(agency)
            .cloned()
            .with_context(|| format!("no operator profile for {agency}"))
    };
    let mut refresh = tokio::time::interval(Duration::from_millis(400));
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut steps = scenario.steps.iter().peekable();
    loop {
        let next_at = steps.peek().map(|s| s.at).unwrap_or(scenario.end);
        let wait = (clock.real_time_of(next_at) - Utc::now())
            .to_std()
            .unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = refresh.tick(), if live => {
                let mut rows = BTreeMap::new();
                for (agency, c) in clients {
                    rows.insert(agency.clone(), counts(&mut c.clone()).await);
                }
                progress.table(clock.at(Utc::now()), &rows);
                continue;
            }
        }
        let Some(step) = steps.next() else { break };
        let when = stamp(step.at);
        match &step.action {
            Action::Send { from, label, alert } => {
                let record = client(from)?
                    .submit_alert(pb::SubmitAlertRequest {
                        alert: Some(alert.to_proto()),
                    })
                    .await
                    .map_err(|s| {
                        anyhow::anyhow!("{from} could not send {label:?}: {}", s.message())
                    })?
                    .into_inner()
                    .record
                    .context("no record")?;
                let id = record.alert.map(|a| a.id).unwrap_or_default();
                progress.line(&format!(
                    "[{when}] {from} sends {label} ({}) to {}",
                    alert.precedence,
                    alert
                        .recipients
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                replay.labels.insert(label.clone(), (id, from.clone()));
            }
            Action::Ack {
                by,
                label,
                disposition,
                note,
            } => {
                let (id, _) = replay.labels.get(label).cloned().context("unknown label")?;
                match client(by)?
                    .acknowledge_alert(pb::AcknowledgeAlertRequest {
                        alert_id: id.clone(),
                        disposition: disposition.to_wire(),
                        note: note.clone(),
                    })
                    .await
                {
                    Ok(r) => {
                        let late_by = r
                            .into_inner()
                            .acknowledgement
                            .map(|a| a.late_by_seconds)
                            .unwrap_or(0);
                        let lateness = if late_by > 0 {
                            format!(", LATE by {}", late(late_by))
                        } else {
                            String::new()
                        };
                        progress.line(&format!(
                            "[{when}] {by} acknowledges {label}: {disposition}{lateness}"
                        ));
                    }
                    // The alert may not have reached the recipient (it was
                    // down): that is part of the story, not a failure.
                    Err(s) if s.code() == tonic::Code::NotFound => {
                        progress.line(&format!(
                            "[{when}] {by} cannot acknowledge {label}: it has not received it"
                        ));
                    }
                    Err(s) => bail!("{by} could not acknowledge {label:?}: {}", s.message()),
                }
            }
            Action::Cancel {
                from,
                label,
                as_label,
                note,
            } => {
                let (id, _) = replay.labels.get(label).cloned().context("unknown label")?;
                let mut c = client(from)?;
                let original = c
                    .get_alert(pb::GetAlertRequest { id: id.clone() })
                    .await
                    .map_err(|s| {
                        anyhow::anyhow!("{from} could not read {label:?}: {}", s.message())
                    })?
                    .into_inner();
                let note = if note.is_empty() {
                    DEFAULT_CANCEL_NOTE
                } else {
                    note
                };
                let alert = cancel_of(original.alert.context("no alert")?, &id, note);
                let record = c
                    .submit_alert(pb::SubmitAlertRequest { alert: Some(alert) })
                    .await
                    .map_err(|s| {
                        anyhow::anyhow!("{from} could not cancel {label:?}: {}", s.message())
                    })?
                    .into_inner()
                    .record
                    .context("no record")?;
                replay.labels.insert(
                    as_label.clone(),
                    (record.alert.map(|a| a.id).unwrap_or_default(), from.clone()),
                );
                progress.line(&format!("[{when}] {from} cancels {label} ({as_label})"));
            }
            Action::Stop { agency } => match control.as_deref_mut() {
                Some(c) => {
                    c.stop(agency)?;
                    progress.line(&format!("[{when}] {agency}'s node goes DOWN"));
                }
                None => progress.line(&format!(
                    "[{when}] ({agency} would go down; skipped: nodes are not ours to stop)"
                )),
            },
            Action::Start { agency } => match control.as_deref_mut() {
                Some(c) => {
                    c.start(agency)?;
                    progress.line(&format!("[{when}] {agency}'s node is back UP"));
                }
                None => progress.line(&format!("[{when}] ({agency} would come back; skipped)")),
            },
            Action::Note { text } => progress.line(&format!("[{when}] -- {text}")),
        }
    }
    // A last refresh, so the table shows the end state.
    if live {
        let mut rows = BTreeMap::new();
        for (agency, c) in clients {
            rows.insert(agency.clone(), counts(&mut c.clone()).await);
        }
        progress.table(clock.at(Utc::now()), &rows);
    }
    Ok(replay)
}

/// One acknowledgement in the post-mortem.
#[derive(Debug, Serialize)]
struct AckReport {
    disposition: String,
    at: Option<DateTime<Utc>>,
    late_by_seconds: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    note: String,
}

/// One step of the escalation ladder in the post-mortem.
#[derive(Debug, Serialize)]
struct StepReport {
    step: String,
    at: Option<DateTime<Utc>>,
    detail: String,
}

/// One recipient of one alert.
#[derive(Debug, Serialize)]
struct RecipientReport {
    agency: String,
    received_at: Option<DateTime<Utc>>,
    delivery_attempts: u32,
    due_at: Option<DateTime<Utc>>,
    acknowledgements: Vec<AckReport>,
    flag: Option<String>,
    escalation: Vec<StepReport>,
}

/// One alert.
#[derive(Debug, Serialize)]
struct AlertReport {
    label: String,
    id: String,
    originator: String,
    precedence: String,
    sent_at: Option<DateTime<Utc>>,
    status: String,
    recipients: Vec<RecipientReport>,
}

/// One REPEATED_UNANSWERED flag, and where it was raised.
#[derive(Debug, Serialize)]
struct FlagReport {
    subject: String,
    recipient: String,
    alerts: Vec<String>,
    seen_at: Vec<String>,
}

/// The story of a replay.
#[derive(Debug, Serialize)]
pub(crate) struct PostMortem {
    scenario: String,
    title: String,
    alerts: Vec<AlertReport>,
    repeated_unanswered: Vec<FlagReport>,
}

/// Gathers, from the nodes, what happened to every alert of the replay.
pub(crate) async fn post_mortem(
    scenario: &Scenario,
    clients: &Clients,
    replay: &Replay,
) -> anyhow::Result<PostMortem> {
    let mut events: HashMap<AgencyId, Vec<pb::Event>> = HashMap::new();
    for (agency, c) in clients {
        let found = stored_events(&mut c.clone()).await.unwrap_or_default();
        events.insert(agency.clone(), found);
    }
    let by_id: HashMap<&str, &str> = replay
        .labels
        .iter()
        .map(|(l, (id, _))| (id.as_str(), l.as_str()))
        .collect();
    let mut alerts = Vec::new();
    for step in &scenario.steps {
        let label = match &step.action {
            Action::Send { label, .. } => label,
            Action::Cancel { as_label, .. } => as_label,
            _ => continue,
        };
        let Some((id, originator)) = replay.labels.get(label) else {
            continue;
        };
        let Some(client) = clients.get(originator) else {
            continue;
        };
        let record = client
            .clone()
            .get_alert(pb::GetAlertRequest { id: id.clone() })
            .await
            .map_err(|s| anyhow::anyhow!("{originator} could not show {label:?}: {}", s.message()))?
            .into_inner();
        let alert = record.alert.clone().unwrap_or_default();
        let ladder_events: Vec<&pb::Event> = events
            .get(originator)
            .map(|e| {
                e.iter()
                    .filter(|e| {
                        e.alert_id == *id
                            && [
                                pb::EventKind::Reminded,
                                pb::EventKind::Escalated,
                                pb::EventKind::Lapsed,
                            ]
                            .iter()
                            .any(|k| *k as i32 == e.kind)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let recipients = record
            .deliveries
            .iter()
            .map(|d| RecipientReport {
                agency: d.recipient.clone(),
                received_at: time(&d.delivered_at),
                delivery_attempts: d.attempts,
                due_at: time(&d.due_at),
                acknowledgements: d
                    .acknowledgements
                    .iter()
                    .map(|a| {
                        let ack = a.acknowledgement.clone().unwrap_or_default();
                        AckReport {
                            disposition: Disposition::from_wire(ack.disposition)
                                .map(|d| d.to_string())
                                .unwrap_or_default(),
                            at: time(&ack.acknowledged_at),
                            late_by_seconds: a.late_by_seconds,
                            note: ack.note,
                        }
                    })
                    .collect(),
                flag: flag_name(d.flag).map(Into::into),
                escalation: ladder_events
                    .iter()
                    .filter(|e| e.agency == d.recipient)
                    .map(|e| StepReport {
                        step: match pb::EventKind::try_from(e.kind) {
                            Ok(pb::EventKind::Reminded) => "REMINDED",
                            Ok(pb::EventKind::Escalated) => "ESCALATED",
                            _ => "LAPSED",
                        }
                        .into(),
                        at: time(&e.at),
                        detail: e.detail.clone(),
                    })
                    .collect(),
            })
            .collect();
        alerts.push(AlertReport {
            label: label.clone(),
            id: id.clone(),
            originator: originator.to_string(),
            precedence: tocsin_core::alert::Precedence::from_wire(alert.precedence)
                .map(|p| p.to_string())
                .unwrap_or_default(),
            sent_at: time(&alert.created_at),
            status: status_name(record.status).into(),
            recipients,
        });
    }
    let mut flags: BTreeMap<(String, String), FlagReport> = BTreeMap::new();
    for (agency, c) in clients {
        let Ok(found) = c
            .clone()
            .list_subject_flags(pb::ListSubjectFlagsRequest {})
            .await
        else {
            continue;
        };
        for f in found.into_inner().flags {
            let entry = flags
                .entry((f.subject.clone(), f.recipient.clone()))
                .or_insert_with(|| FlagReport {
                    subject: f.label.clone(),
                    recipient: f.recipient.clone(),
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
                });
            entry.seen_at.push(agency.to_string());
        }
    }
    Ok(PostMortem {
        scenario: scenario.name.clone(),
        title: scenario.title.clone(),
        alerts,
        repeated_unanswered: flags.into_values().collect(),
    })
}

fn late(seconds: u64) -> String {
    humantime::format_duration(Duration::from_secs(seconds / 60 * 60)).to_string()
}

fn at(t: Option<DateTime<Utc>>) -> String {
    t.map(stamp).unwrap_or_else(|| "-".into())
}

/// Prints the post-mortem for people.
pub(crate) fn print_post_mortem(pm: &PostMortem) {
    println!();
    println!("==== Post-mortem: {} ====", pm.scenario);
    if !pm.title.is_empty() {
        println!("{}", pm.title);
    }
    println!();
    for f in &pm.repeated_unanswered {
        println!(
            "!!!!!! REPEATED_UNANSWERED: {} left {} warnings about {} unanswered: {} (flagged at {})",
            f.recipient,
            f.alerts.len(),
            f.subject,
            f.alerts.join(", "),
            f.seen_at.join(", ")
        );
    }
    if !pm.repeated_unanswered.is_empty() {
        println!();
    }
    let (mut in_time, mut late_count, mut never) = (0, 0, 0);
    for a in &pm.alerts {
        println!(
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
            if a.status == "ACTIVE" {
                String::new()
            } else {
                format!(" [{}]", a.status)
            }
        );
        for r in &a.recipients {
            let received = match r.received_at {
                Some(t) if r.delivery_attempts > 1 => format!(
                    "receipt {} after {} attempts (held in the outbox meanwhile)",
                    stamp(t),
                    r.delivery_attempts
                ),
                Some(t) => format!("receipt {}", stamp(t)),
                None => "NEVER RECEIVED".into(),
            };
            let answer = match r.acknowledgements.last() {
                Some(ack) if ack.late_by_seconds > 0 => {
                    late_count += 1;
                    format!(
                        "{} at {}, LATE by {}",
                        ack.disposition,
                        at(ack.at),
                        late(ack.late_by_seconds)
                    )
                }
                Some(ack) => {
                    in_time += 1;
                    format!("{} at {}, in time", ack.disposition, at(ack.at))
                }
                None => {
                    never += 1;
                    "NO ACKNOWLEDGEMENT".into()
                }
            };
            let flag = r
                .flag
                .as_deref()
                .map(|f| format!("; {f}"))
                .unwrap_or_default();
            println!(
                "    {:<11} {received}; deadline {}; {answer}{flag}",
                r.agency,
                at(r.due_at)
            );
            for s in &r.escalation {
                println!("        {} {}: {}", at(s.at), s.step, s.detail);
            }
        }
    }
    println!();
    println!(
        "{} deliveries: {in_time} acknowledged in time, {late_count} late, {never} never acknowledged; {} subject(s) flagged REPEATED_UNANSWERED",
        in_time + late_count + never,
        pm.repeated_unanswered.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn federation() -> Federation {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/demo/federation.toml"
        ))
        .unwrap();
        Federation::parse(&text, "demo").unwrap()
    }

    #[test]
    fn the_shipped_scenarios_are_valid() {
        let fed = federation();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/demo/scenarios");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let s = Scenario::load(&path, &fed)
                    .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
                assert!(!s.steps.is_empty());
                n += 1;
            }
        }
        assert!(n >= 3, "{n} scenarios");
    }

    #[test]
    fn the_shipped_host_configurations_are_valid() {
        let base = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/hosts");
        let fed = Federation::load(&Path::new(base).join("federation.toml")).unwrap();
        for a in &fed.agencies {
            let path = Path::new(base).join("nodes").join(format!("{}.toml", a.id));
            let config = tocsin_node::NodeConfig::load(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(config.agency, a.id);
        }
        assert!(fed.agencies.iter().any(|a| a.observer));
    }

    #[test]
    fn mistakes_are_named() {
        let fed = federation();
        let check = |text: &str| {
            let s: Scenario = toml::from_str(text).unwrap();
            s.check(&fed).unwrap_err().to_string()
        };
        let head =
            "name = \"t\"\nstart = \"2015-01-01T00:00:00Z\"\nend = \"2015-02-01T00:00:00Z\"\n";
        let err = check(&format!(
            "{head}[[steps]]\nat = \"2015-01-02T00:00:00Z\"\naction = \"ack\"\nby = \"FR-DGSI\"\nlabel = \"x\"\ndisposition = \"NOTED\"\n"
        ));
        assert!(err.contains("no alert \"x\" is sent before"), "{err}");
        let err = check(&format!(
            "{head}[[steps]]\nat = \"2016-01-02T00:00:00Z\"\naction = \"note\"\ntext = \"late\"\n"
        ));
        assert!(err.contains("outside the scenario"), "{err}");
        let err = check(&format!(
            "{head}[[steps]]\nat = \"2015-01-02T00:00:00Z\"\naction = \"stop\"\nagency = \"XX-NONE\"\n"
        ));
        assert!(err.contains("XX-NONE is not an agency"), "{err}");
    }
}
