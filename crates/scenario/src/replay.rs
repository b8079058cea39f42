//! Replaying a scenario: each step at its scenario time, through each
//! agency's operator service.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tocsin_core::alert::Person;
use tocsin_core::{AgencyId, to_timestamp};
use tocsin_proto::pb;
use tocsin_proto::pb::operator_client::OperatorClient;
use tocsin_proto::pb::watchlist_desk_client::WatchlistDeskClient;
use tonic::transport::Channel;

use crate::file::{Action, Scenario};
use crate::post_mortem::human_duration;

/// One agency's operator services on its node: alerts, and watchlists.
#[derive(Debug, Clone)]
pub struct AgencyClient {
    /// Alerts, acknowledgements, events, subject flags.
    pub operator: OperatorClient<Channel>,
    /// Watchlist entries and screening.
    pub watchlist: WatchlistDeskClient<Channel>,
}

impl AgencyClient {
    /// Both services over one channel to the agency's node.
    pub fn new(channel: Channel) -> Self {
        Self {
            operator: OperatorClient::new(channel.clone()),
            watchlist: WatchlistDeskClient::new(channel),
        }
    }
}

/// The operator clients of the agencies, by agency.
pub type Clients = BTreeMap<AgencyId, AgencyClient>;

/// How long a screen waits, in real time, for the screening node to hold
/// the entries listed before it.
const SYNC_PATIENCE: Duration = Duration::from_secs(30);

/// Any error, from whatever starts and stops nodes.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a replay sees of the federation between two steps: each agency's
/// operator client, and which nodes the replay has stopped.
#[derive(Debug, Clone, Copy)]
pub struct Nodes<'a> {
    clients: &'a Clients,
    down: &'a BTreeSet<AgencyId>,
}

impl<'a> Nodes<'a> {
    /// The agencies of `clients`, those in `down` stopped.
    pub fn new(clients: &'a Clients, down: &'a BTreeSet<AgencyId>) -> Self {
        Self { clients, down }
    }

    /// Every agency's operator client, up or down.
    pub fn clients(&self) -> &'a Clients {
        self.clients
    }

    /// Whether `agency` has a client and its node was not stopped.
    pub fn is_up(&self, agency: &str) -> bool {
        self.up().any(|(a, _)| a.as_str() == agency)
    }

    /// The agencies whose nodes run, with their clients.
    pub fn up(&self) -> impl Iterator<Item = (&'a AgencyId, &'a AgencyClient)> + use<'a> {
        let down = self.down;
        self.clients.iter().filter(move |(a, _)| !down.contains(*a))
    }
}

/// Takes nodes down and up for `stop` and `start` steps.
pub trait NodeControl: Send {
    /// Stops `agency`'s node.
    fn stop<'a>(&'a mut self, agency: &'a AgencyId) -> BoxFuture<'a, Result<(), BoxError>>;
    /// Starts `agency`'s node again.
    fn start<'a>(&'a mut self, agency: &'a AgencyId) -> BoxFuture<'a, Result<(), BoxError>>;
}

/// How a replay follows scenario time.
///
/// [`ScaledDriver`](crate::ScaledDriver) waits in real time while nodes run
/// on a scaled clock of their own (separate processes); [`ManualDriver`](crate::ManualDriver)
/// moves an in-process federation's `ManualClock` through every deadline
/// and ladder step on the way, and waits for the federation to settle.
pub trait ClockDriver: Send {
    /// The scenario time now.
    fn now(&self) -> DateTime<Utc>;

    /// Returns once the federation's clock reads `t`, with everything due
    /// before it done.
    fn advance_to<'a>(
        &'a mut self,
        t: DateTime<Utc>,
        nodes: Nodes<'a>,
    ) -> BoxFuture<'a, Result<(), ReplayError>>;

    /// Returns once what the last step set going has happened (as far as
    /// this driver can tell; on real time, at once).
    fn settle<'a>(&'a mut self, nodes: Nodes<'a>) -> BoxFuture<'a, Result<(), ReplayError>>;
}

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// A step's agency has no operator client.
    #[error("no operator client for {0}")]
    NoClient(AgencyId),
    /// A node refused what a step asked of it.
    #[error("{agency} could not {action} {label:?}: {}", status.message())]
    Refused {
        /// The agency whose node refused.
        agency: AgencyId,
        /// What it was asked: send, acknowledge, read, cancel, show, list,
        /// screen.
        action: &'static str,
        /// The alert's label (or the screen's, or the listing owner's).
        label: String,
        /// Its answer.
        status: tonic::Status,
    },
    /// A node's answer lacked what it always carries.
    #[error("{agency}'s node answered with {what}")]
    Invalid {
        /// The agency.
        agency: AgencyId,
        /// What was wrong.
        what: String,
    },
    /// A `triage` step's expected first item was not first.
    #[error("triage step {step}: {agency} ranks {first} first, not {expected}")]
    TriageOrder {
        /// The step's index.
        step: usize,
        /// The agency.
        agency: AgencyId,
        /// The label expected first.
        expected: String,
        /// What came first (label or id, and its reasons), or "nothing".
        first: String,
    },
    /// A screen that was to hit another agency's entry did not.
    #[error("screen {label:?}: {agency} found no hit on another agency's entry{}", best.as_deref().map(|b| format!(" (best match: {b})")).unwrap_or_default())]
    NoHit {
        /// The screen's label.
        label: String,
        /// The screening agency.
        agency: AgencyId,
        /// The best match it did find, if any.
        best: Option<String>,
    },
    /// The screening node did not come to hold what was listed before the
    /// screen.
    #[error(
        "screen {label:?}: {agency} still holds {owner}'s list only up to change {cursor}, not {seq}, after {waited:?}"
    )]
    NotSynced {
        /// The screen's label.
        label: String,
        /// The screening agency.
        agency: AgencyId,
        /// The owner of the entries.
        owner: AgencyId,
        /// How far the screening node holds the owner's log.
        cursor: u64,
        /// The owner's change it waited for.
        seq: u64,
        /// How long it waited, in real time.
        waited: Duration,
    },
    /// A node could not be stopped or started.
    #[error("cannot {action} {agency}'s node")]
    Node {
        /// The agency.
        agency: AgencyId,
        /// `stop` or `start`.
        action: &'static str,
        /// Why.
        #[source]
        source: BoxError,
    },
    /// The federation was still busy after the driver's patience ran out.
    #[error("the federation did not settle within {waited:?} at scenario time {at}: {pending}")]
    Unsettled {
        /// The scenario time.
        at: DateTime<Utc>,
        /// How long it waited, in real time.
        waited: Duration,
        /// What was still going on.
        pending: String,
    },
}

/// What a replay produced: the alert id and originator behind each label.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Replay {
    /// Label to (alert id, originator); a screen's label names its hit
    /// report, whose originator is the screening agency.
    pub labels: BTreeMap<String, (String, AgencyId)>,
    /// The labels of hit reports, in the order the screens made them. A
    /// screen that hit several entries names the first report by its own
    /// label and the next `LABEL-2`, `LABEL-3`...; a screen that repeated
    /// an earlier report (same person, same entry, within the node's
    /// window) names that report again.
    pub hit_reports: Vec<String>,
    /// What each `triage` step saw, in order.
    pub triages: Vec<TriageSeen>,
    /// Alert id to the first label it was given: a repeated hit report is
    /// named again under a later screen's label, but is told by its first.
    first_labels: BTreeMap<String, String>,
}

/// What a `triage` step saw: the agency, the scenario time, and the owed
/// items first to last, each as (label or id, tier, reasons).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TriageSeen {
    /// The agency.
    pub agency: AgencyId,
    /// The step's time.
    pub at: DateTime<Utc>,
    /// The items, first to look at first.
    pub items: Vec<TriagedItem>,
}

/// One ranked item a `triage` step saw.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TriagedItem {
    /// The scenario's label for it, or its id if it has none.
    pub label: String,
    /// The tier it ranked in.
    pub tier: String,
    /// Why, as one line.
    pub reasons: String,
}

impl Replay {
    /// The id of the alert sent as `label`.
    pub fn id(&self, label: &str) -> Option<&str> {
        self.labels.get(label).map(|(id, _)| id.as_str())
    }

    /// The first label the alert `id` was given, if any.
    pub fn label_of(&self, id: &str) -> Option<&str> {
        self.first_labels.get(id).map(String::as_str)
    }

    /// Names the alert `id`, sent by `by`, as `label`.
    fn name(&mut self, label: String, id: String, by: AgencyId) {
        self.first_labels
            .entry(id.clone())
            .or_insert_with(|| label.clone());
        self.labels.insert(label, (id, by));
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// A person as a line shows them: the names as written at the check.
pub(crate) fn person_text(p: &Person) -> String {
    let names = p
        .names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(" / ");
    match p.date_of_birth {
        Some(dob) => format!("{names} (b. {dob})"),
        None => names,
    }
}

fn place_text(place: &str) -> String {
    if place.is_empty() {
        String::new()
    } else {
        format!(" at {place}")
    }
}

/// The wire form of a person to screen.
/// Waits until `agency`'s node holds `owner`'s log up to `seq`, as its
/// sync status says: entries travel by the holders' pulls, in real time.
async fn wait_synced(
    desk: &mut WatchlistDeskClient<Channel>,
    agency: &AgencyId,
    owner: &AgencyId,
    seq: u64,
    label: &str,
) -> Result<(), ReplayError> {
    let began = Instant::now();
    loop {
        let status = desk
            .sync_status(pb::SyncStatusRequest {})
            .await
            .map_err(|status| ReplayError::Refused {
                agency: agency.clone(),
                action: "read the sync status for",
                label: label.to_owned(),
                status,
            })?
            .into_inner();
        let cursor = status
            .owners
            .iter()
            .find(|o| o.owner == owner.as_str())
            .map(|o| o.cursor)
            .unwrap_or(0);
        if cursor >= seq {
            return Ok(());
        }
        if began.elapsed() >= SYNC_PATIENCE {
            return Err(ReplayError::NotSynced {
                label: label.to_owned(),
                agency: agency.clone(),
                owner: owner.clone(),
                cursor,
                seq,
                waited: began.elapsed(),
            });
        }
        // The pull is under way on the node; look again shortly.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A scenario time as the replay's lines show it.
pub(crate) fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

/// Replays `scenario`: for each step, `driver` brings the federation to
/// the step's time, the step is performed through the operator clients,
/// and `driver` lets the federation settle; at the end, to the scenario's
/// end. `control` takes nodes down and up (without it, `stop` and `start`
/// are skipped and said so). `narrate` gets one line per step, as
/// `tocsin demo` prints them.
pub async fn replay(
    scenario: &Scenario,
    clients: &Clients,
    driver: &mut dyn ClockDriver,
    mut control: Option<&mut dyn NodeControl>,
    narrate: &mut (dyn FnMut(&str) + Send),
) -> Result<Replay, ReplayError> {
    let mut replay = Replay::default();
    let mut down = BTreeSet::new();
    // The last change of each owner's log the replay made, and to whom
    // its entries are releasable: a screen waits until its node holds
    // them.
    let mut published: BTreeMap<AgencyId, (u64, BTreeSet<String>)> = BTreeMap::new();
    let agency_client = |agency: &AgencyId| -> Result<AgencyClient, ReplayError> {
        clients
            .get(agency)
            .cloned()
            .ok_or_else(|| ReplayError::NoClient(agency.clone()))
    };
    let client = |agency: &AgencyId| agency_client(agency).map(|c| c.operator);
    let refused = |agency: &AgencyId, action: &'static str, label: &str| {
        let (agency, label) = (agency.clone(), label.to_owned());
        move |status| ReplayError::Refused {
            agency,
            action,
            label,
            status,
        }
    };
    for (index, step) in scenario.steps.iter().enumerate() {
        driver
            .advance_to(step.at, Nodes::new(clients, &down))
            .await?;
        let when = stamp(step.at);
        match &step.action {
            Action::Send { from, label, alert } => {
                let record = client(from)?
                    .submit_alert(pb::SubmitAlertRequest {
                        alert: Some(alert.to_proto()),
                    })
                    .await
                    .map_err(refused(from, "send", label))?
                    .into_inner()
                    .record;
                let id = record.and_then(|r| r.alert).map(|a| a.id).ok_or_else(|| {
                    ReplayError::Invalid {
                        agency: from.clone(),
                        what: format!("no record of {label:?}"),
                    }
                })?;
                narrate(&format!(
                    "[{when}] {from} sends {label} ({}) to {}",
                    alert.precedence,
                    alert
                        .recipients
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                replay.name(label.clone(), id, from.clone());
            }
            Action::Ack {
                by,
                label,
                disposition,
                note,
            } => {
                let id = replay.id(label).unwrap_or_default().to_owned();
                match client(by)?
                    .acknowledge_alert(pb::AcknowledgeAlertRequest {
                        id: String::new(),
                        alert_id: id,
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
                            format!(", LATE by {}", human_duration(late_by))
                        } else {
                            String::new()
                        };
                        narrate(&format!(
                            "[{when}] {by} acknowledges {label}: {disposition}{lateness}"
                        ));
                    }
                    // The alert may not have reached the recipient (it was
                    // down): that is part of the story, not a failure.
                    Err(s) if s.code() == tonic::Code::NotFound => {
                        narrate(&format!(
                            "[{when}] {by} cannot acknowledge {label}: it has not received it"
                        ));
                    }
                    Err(s) => return Err(refused(by, "acknowledge", label)(s)),
                }
            }
            Action::Cancel {
                from,
                label,
                as_label,
                note,
            } => {
                let id = replay.id(label).unwrap_or_default().to_owned();
                let mut c = client(from)?;
                let original = c
                    .get_alert(pb::GetAlertRequest { id: id.clone() })
                    .await
                    .map_err(refused(from, "read", label))?
                    .into_inner()
                    .alert
                    .ok_or_else(|| ReplayError::Invalid {
                        agency: from.clone(),
                        what: format!("a record of {label:?} without its alert"),
                    })?;
                let note = if note.is_empty() {
                    tocsin_core::alert::DEFAULT_CANCEL_NOTE
                } else {
                    note
                };
                let record = c
                    .submit_alert(pb::SubmitAlertRequest {
                        alert: Some(tocsin_core::alert::cancel_of(original, &id, note)),
                    })
                    .await
                    .map_err(refused(from, "cancel", label))?
                    .into_inner()
                    .record;
                let cancel_id = record.and_then(|r| r.alert).map(|a| a.id).ok_or_else(|| {
                    ReplayError::Invalid {
                        agency: from.clone(),
                        what: format!("no record of {as_label:?}"),
                    }
                })?;
                replay.name(as_label.clone(), cancel_id, from.clone());
                narrate(&format!("[{when}] {from} cancels {label} ({as_label})"));
            }
            Action::Stop { agency } => match control.as_deref_mut() {
                Some(c) => {
                    c.stop(agency).await.map_err(|source| ReplayError::Node {
                        agency: agency.clone(),
                        action: "stop",
                        source,
                    })?;
                    down.insert(agency.clone());
                    narrate(&format!("[{when}] {agency}'s node goes DOWN"));
                }
                None => narrate(&format!(
                    "[{when}] ({agency} would go down; skipped: nodes are not ours to stop)"
                )),
            },
            Action::Start { agency } => match control.as_deref_mut() {
                Some(c) => {
                    c.start(agency).await.map_err(|source| ReplayError::Node {
                        agency: agency.clone(),
                        action: "start",
                        source,
                    })?;
                    down.remove(agency);
                    narrate(&format!("[{when}] {agency}'s node is back UP"));
                }
                None => narrate(&format!("[{when}] ({agency} would come back; skipped)")),
            },
            Action::Note { text } => narrate(&format!("[{when}] -- {text}")),
            Action::Triage { by, expect_first } => {
                // What was sent must have arrived before it is ranked.
                driver.settle(Nodes::new(clients, &down)).await?;
                let items = client(by)?
                    .triage(pb::TriageRequest { limit: 1000 })
                    .await
                    .map_err(refused(by, "triage", "its owed items"))?
                    .into_inner()
                    .items;
                let label_of = |id: &str| replay.label_of(id).unwrap_or(id).to_owned();
                let seen: Vec<TriagedItem> = items
                    .iter()
                    .map(|i| TriagedItem {
                        label: label_of(
                            i.record
                                .as_ref()
                                .and_then(|r| r.alert.as_ref())
                                .map(|a| a.id.as_str())
                                .unwrap_or_default(),
                        ),
                        tier: tocsin_core::alert::Precedence::from_wire(i.tier)
                            .map(|p| p.as_str().to_owned())
                            .unwrap_or_default(),
                        reasons: i.reasons_text.clone(),
                    })
                    .collect();
                let top: Vec<String> = seen
                    .iter()
                    .take(3)
                    .enumerate()
                    .map(|(n, t)| format!("  {}. {} ({}): {}", n + 1, t.label, t.tier, t.reasons))
                    .collect();
                narrate(&format!(
                    "[{when}] {by}'s triage, first to look at first ({} owed):\n{}",
                    seen.len(),
                    top.join("\n")
                ));
                if let Some(expected) = expect_first
                    && seen.first().map(|t| &t.label) != Some(expected)
                {
                    return Err(ReplayError::TriageOrder {
                        step: index,
                        agency: by.clone(),
                        expected: expected.clone(),
                        first: seen
                            .first()
                            .map(|t| format!("{} ({})", t.label, t.reasons))
                            .unwrap_or_else(|| "nothing".into()),
                    });
                }
                replay.triages.push(TriageSeen {
                    agency: by.clone(),
                    at: step.at,
                    items: seen,
                });
            }
            Action::Watchlist { from, entries } => {
                let refs: Vec<&str> = entries.iter().map(|e| e.reference.as_str()).collect();
                let stored = agency_client(from)?
                    .watchlist
                    .add_entries(pb::AddEntriesRequest {
                        entries: entries.iter().map(|e| e.to_proto()).collect(),
                    })
                    .await
                    .map_err(refused(from, "list", &refs.join(", ")))?
                    .into_inner()
                    .entries;
                let last = published.entry(from.clone()).or_default();
                for r in &stored {
                    last.0 = last.0.max(r.seq);
                }
                for e in entries {
                    last.1.extend(e.releasable_to.iter().cloned());
                }
                let to: BTreeSet<&str> = entries
                    .iter()
                    .flat_map(|e| e.releasable_to.iter().map(String::as_str))
                    .collect();
                narrate(&format!(
                    "[{when}] {from} lists {} ({}), releasable to {}",
                    plural(entries.len(), "watchlist entry", "watchlist entries"),
                    refs.join(", "),
                    to.into_iter().collect::<Vec<_>>().join(", ")
                ));
            }
            Action::Screen {
                by,
                label,
                person,
                place,
                seen_at,
                reference,
            } => {
                let mut desk = agency_client(by)?.watchlist;
                // Entries travel by the holders' pulls: screen only once
                // this node holds every list released to it so far.
                for (owner, (seq, to)) in &published {
                    if owner != by && to.contains(by.as_str()) {
                        wait_synced(&mut desk, by, owner, *seq, label).await?;
                    }
                }
                let response = desk
                    .screen(pb::ScreenRequest {
                        person: Some(pb::Person::from(person)),
                        identifiers: Vec::new(),
                        seen_at: Some(to_timestamp(seen_at.unwrap_or(step.at))),
                        seen_place: place.clone(),
                        r#ref: reference.clone(),
                        ..Default::default()
                    })
                    .await
                    .map_err(refused(by, "screen", label))?
                    .into_inner();
                let reports: Vec<&pb::ScreenMatch> = response
                    .matches
                    .iter()
                    .filter(|m| m.hit && !m.hit_report_id.is_empty())
                    .collect();
                if reports.is_empty() {
                    return Err(ReplayError::NoHit {
                        label: label.clone(),
                        agency: by.clone(),
                        best: response.matches.first().map(|m| {
                            let hit = match (m.hit, m.owner == by.as_str()) {
                                (false, _) => "",
                                (true, true) => ", a hit on its own entry",
                                (true, false) => ", a hit, but its node sent no hit report",
                            };
                            format!("{}/{} at {:.2}{hit}", m.owner, m.r#ref, m.score)
                        }),
                    });
                }
                let mut told = Vec::new();
                for (n, m) in reports.iter().enumerate() {
                    let name = if n == 0 {
                        label.clone()
                    } else {
                        format!("{label}-{}", n + 1)
                    };
                    let action = m
                        .entry
                        .as_ref()
                        .and_then(|e| pb::WatchlistAction::try_from(e.action).ok())
                        .map(|a| {
                            a.as_str_name()
                                .trim_start_matches("WATCHLIST_ACTION_")
                                .to_owned()
                        })
                        .unwrap_or_default();
                    let earlier = replay.label_of(&m.hit_report_id).map(str::to_owned);
                    told.push(format!(
                        "HIT on {}/{} ({action}, score {:.2}): {}",
                        m.owner,
                        m.r#ref,
                        m.score,
                        match (&earlier, m.hit_report_repeated) {
                            (Some(e), _) => format!("repeats hit report {e}"),
                            (None, true) => format!("repeats an earlier hit report, as {name}"),
                            (None, false) => format!("hit report {name} to {}", m.owner),
                        }
                    ));
                    replay.name(name.clone(), m.hit_report_id.clone(), by.clone());
                    replay.hit_reports.push(name);
                }
                let seen = place_text(place);
                narrate(&format!(
                    "[{when}] {by} screens {}{seen}: {}",
                    person_text(person),
                    told.join("; ")
                ));
            }
        }
        driver.settle(Nodes::new(clients, &down)).await?;
    }
    driver
        .advance_to(scenario.end, Nodes::new(clients, &down))
        .await?;
    driver.settle(Nodes::new(clients, &down)).await?;
    Ok(replay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_named_twice_is_told_by_its_first_label() {
        let mut r = Replay::default();
        let be = AgencyId::new("BE-VSSE").unwrap();
        // A hit report, then a later screen repeating it under its own label.
        r.name("cambrai".into(), "01ID".into(), be.clone());
        r.name("austria".into(), "01ID".into(), be);
        assert_eq!(r.label_of("01ID"), Some("cambrai"));
        assert_eq!(r.id("austria"), Some("01ID"));
        assert_eq!(r.id("cambrai"), Some("01ID"));
        assert_eq!(r.label_of("01OTHER"), None);
    }
}
