//! Replaying a scenario: each step at its scenario time, through each
//! agency's operator service.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tocsin_core::AgencyId;
use tocsin_proto::pb;
use tocsin_proto::pb::operator_client::OperatorClient;
use tonic::transport::Channel;

use crate::file::{Action, Scenario};
use crate::post_mortem::human_duration;

/// The operator clients of the agencies, by agency.
pub type Clients = BTreeMap<AgencyId, OperatorClient<Channel>>;

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
    pub fn up(
        &self,
    ) -> impl Iterator<Item = (&'a AgencyId, &'a OperatorClient<Channel>)> + use<'a> {
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
        /// What it was asked: send, acknowledge, read, cancel, show.
        action: &'static str,
        /// The alert's label.
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
    /// Label to (alert id, originator).
    pub labels: BTreeMap<String, (String, AgencyId)>,
}

impl Replay {
    /// The id of the alert sent as `label`.
    pub fn id(&self, label: &str) -> Option<&str> {
        self.labels.get(label).map(|(id, _)| id.as_str())
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
    let client = |agency: &AgencyId| -> Result<OperatorClient<Channel>, ReplayError> {
        clients
            .get(agency)
            .cloned()
            .ok_or_else(|| ReplayError::NoClient(agency.clone()))
    };
    let refused = |agency: &AgencyId, action: &'static str, label: &str| {
        let (agency, label) = (agency.clone(), label.to_owned());
        move |status| ReplayError::Refused {
            agency,
            action,
            label,
            status,
        }
    };
    for step in &scenario.steps {
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
                replay.labels.insert(label.clone(), (id, from.clone()));
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
                replay
                    .labels
                    .insert(as_label.clone(), (cancel_id, from.clone()));
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
        }
        driver.settle(Nodes::new(clients, &down)).await?;
    }
    driver
        .advance_to(scenario.end, Nodes::new(clients, &down))
        .await?;
    driver.settle(Nodes::new(clients, &down)).await?;
    Ok(replay)
}
