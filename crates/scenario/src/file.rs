//! The scenario file: what happens when, checked against a federation.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use tocsin_core::alert::{AlertDraft, Disposition, Person};
use tocsin_core::federation::Federation;
use tocsin_core::watchlist::EntryDraft;
use tocsin_core::{AgencyId, FederationId, Pace, ScaledClock};
use tocsin_node::config::ClockOptions;

/// A scenario file, checked: every step inside `start`..`end`, in time
/// order, naming member agencies and labels sent before they are used.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, such as `paris-2015`.
    pub name: String,
    /// What the run shows, in one line.
    #[serde(default)]
    pub title: String,
    /// Scenario time when the replay begins.
    pub start: DateTime<Utc>,
    /// Scenario time when it ends.
    pub end: DateTime<Utc>,
    /// Scenario seconds per real second, for a replay on real time.
    #[serde(default = "default_speed")]
    pub speed: f64,
    /// Stretches of scenario time replayed at their own speed: slower
    /// around moments where minutes count.
    #[serde(default)]
    pub pace: Vec<Pace>,
    /// The steps, earliest first once loaded.
    #[serde(default)]
    pub steps: Vec<Step>,
}

fn default_speed() -> f64 {
    1.0
}

/// One step at a scenario time.
#[derive(Debug, Clone, Deserialize)]
pub struct Step {
    /// When, in scenario time.
    pub at: DateTime<Utc>,
    /// What happens.
    #[serde(flatten)]
    pub action: Action,
}

/// What a step does.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum Action {
    /// An agency sends an alert.
    Send {
        /// The originator.
        from: AgencyId,
        /// How later steps (and the post-mortem) name the alert.
        label: String,
        /// The alert, as in `tocsin alert send --file`.
        alert: Box<AlertDraft>,
    },
    /// A recipient acknowledges an alert.
    Ack {
        /// The recipient.
        by: AgencyId,
        /// The alert's label.
        label: String,
        /// What it decided.
        disposition: Disposition,
        /// Its note, if any.
        #[serde(default)]
        note: String,
    },
    /// The originator cancels an alert it sent.
    Cancel {
        /// The originator.
        from: AgencyId,
        /// The label of the alert cancelled.
        label: String,
        /// The label of the cancel itself.
        #[serde(rename = "as")]
        as_label: String,
        /// What the cancel says ([`tocsin_core::alert::DEFAULT_CANCEL_NOTE`] if empty).
        #[serde(default)]
        note: String,
    },
    /// An agency publishes watchlist entries (through its
    /// `WatchlistDesk.AddEntries`, all or none).
    Watchlist {
        /// The owner.
        from: AgencyId,
        /// The entries, each as in `tocsin watchlist import`.
        entries: Vec<EntryDraft>,
    },
    /// An agency screens a person against the lists its node holds
    /// (`WatchlistDesk.Screen`); it must hit another agency's entry, whose
    /// owner gets a hit report.
    Screen {
        /// The screening agency.
        by: AgencyId,
        /// How later steps (an `ack` by the entry's owner) and the
        /// post-mortem name the hit report.
        label: String,
        /// The person as written at the check.
        person: Person,
        /// Where the person was seen.
        #[serde(default)]
        place: String,
        /// When the person was seen; the step's time if not given.
        #[serde(default)]
        seen_at: Option<DateTime<Utc>>,
        /// The screening agency's own reference for the check.
        #[serde(default, rename = "ref")]
        reference: String,
    },
    /// An agency looks at what it owes, ranked by risk (the `Triage`
    /// RPC, as `tocsin alerts list --triage`); the replay narrates the top
    /// of the list with the reasons.
    Triage {
        /// The agency.
        by: AgencyId,
        /// The label of an alert that must then rank first: the replay
        /// stops with an error naming the step if it does not.
        #[serde(default)]
        expect_first: Option<String>,
    },
    /// An agency's node goes down.
    Stop {
        /// The agency.
        agency: AgencyId,
    },
    /// An agency's node comes back.
    Start {
        /// The agency.
        agency: AgencyId,
    },
    /// Narration.
    Note {
        /// What to say.
        text: String,
    },
}

/// Why a scenario file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read scenario {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid scenario.
    #[error("invalid scenario {}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: ScenarioError,
    },
}

/// Why a scenario text was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// Not a scenario file: bad TOML, a missing or unknown field, a bad value.
    #[error(transparent)]
    Parse(#[from] toml::de::Error),
    /// A scenario that parses but cannot be replayed.
    #[error(transparent)]
    Mistake(#[from] Mistake),
}

/// A scenario that parses but cannot be replayed against the federation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Mistake {
    /// The scenario ends before it starts.
    #[error("end {end} is not after start {start}")]
    EndNotAfterStart {
        /// Its start.
        start: DateTime<Utc>,
        /// Its end.
        end: DateTime<Utc>,
    },
    /// A replay speed under 1 (or not a number): nodes refuse it.
    #[error("speed must be at least 1, not {0}")]
    Speed(f64),
    /// A pace stretch that ends before it begins or runs under speed 1.
    #[error("pace[{0}]: needs from < until and a speed of at least 1")]
    Pace(usize),
    /// A step names an agency that is not a member.
    #[error("steps[{step}]: {agency} is not an agency of federation {federation}")]
    NotMember {
        /// The step, as numbered in the file.
        step: usize,
        /// The agency named.
        agency: AgencyId,
        /// The federation.
        federation: FederationId,
    },
    /// A step outside `start`..`end`.
    #[error("steps[{step}]: {at} is outside the scenario ({start} to {end})")]
    Outside {
        /// The step, as numbered in the file.
        step: usize,
        /// Its time.
        at: DateTime<Utc>,
        /// The scenario's start.
        start: DateTime<Utc>,
        /// The scenario's end.
        end: DateTime<Utc>,
    },
    /// Two alerts with one label.
    #[error("steps[{step}]: label {label:?} is used twice")]
    LabelTwice {
        /// The second step using it.
        step: usize,
        /// The label.
        label: String,
    },
    /// A step refers to a label no earlier step sent.
    #[error("steps[{step}]: no alert {label:?} is sent before this step")]
    NotSent {
        /// The step.
        step: usize,
        /// The label.
        label: String,
    },
    /// An acknowledgement by an agency the alert was not sent to.
    #[error("steps[{step}]: {agency} is not a recipient of {label:?}")]
    NotRecipient {
        /// The step.
        step: usize,
        /// Who acknowledges.
        agency: AgencyId,
        /// The label.
        label: String,
    },
    /// A watchlist entry its owner's node would refuse.
    #[error("steps[{step}]: entry {reference:?} of {owner} is refused: {reason}")]
    BadEntry {
        /// The step.
        step: usize,
        /// The owner.
        owner: AgencyId,
        /// The entry's ref.
        reference: String,
        /// Why.
        reason: String,
    },
    /// An entry ref its owner already listed earlier in the scenario.
    #[error("steps[{step}]: {owner} lists entry {reference:?} twice")]
    EntryTwice {
        /// The step.
        step: usize,
        /// The owner.
        owner: AgencyId,
        /// The entry's ref.
        reference: String,
    },
    /// A screen with nothing a check could match on.
    #[error("steps[{step}]: screen {label:?} gives no name and no document")]
    NothingToScreen {
        /// The step.
        step: usize,
        /// The screen's label.
        label: String,
    },
    /// A screen when no other agency has listed anything releasable to the
    /// screening agency: it could not hit.
    #[error(
        "steps[{step}]: screen {label:?} by {agency} cannot hit: no earlier watchlist step lists an entry releasable to {agency}"
    )]
    NothingToHit {
        /// The step.
        step: usize,
        /// The screen's label.
        label: String,
        /// The screening agency.
        agency: AgencyId,
    },
    /// A cancel of a hit report: only alerts sent by a `send` step can be
    /// cancelled.
    #[error("steps[{step}]: {label:?} is a hit report, not an alert a cancel can close")]
    NotAnAlert {
        /// The step.
        step: usize,
        /// The label.
        label: String,
    },
    /// A cancel by an agency that did not send the alert.
    #[error("steps[{step}]: {agency} cannot cancel {label:?}, which {sender} sent")]
    NotSender {
        /// The step.
        step: usize,
        /// Who cancels.
        agency: AgencyId,
        /// The label.
        label: String,
        /// Who sent it.
        sender: AgencyId,
    },
}

impl Scenario {
    /// Reads a scenario file and checks it against `federation`.
    pub fn load(path: &Path, federation: &Federation) -> Result<Self, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, federation).map_err(|source| LoadError::Invalid {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Parses a scenario and checks it against `federation`; its steps come
    /// out earliest first.
    pub fn parse(text: &str, federation: &Federation) -> Result<Self, ScenarioError> {
        let mut s: Scenario = toml::from_str(text)?;
        s.check(federation)?;
        s.steps.sort_by_key(|st| st.at);
        Ok(s)
    }

    /// Checks what a replay relies on: an end after the start, sane
    /// speeds, steps inside the scenario naming member agencies, labels sent
    /// before they are used, acknowledgements by recipients, cancels by the
    /// originator, watchlist entries their owner's node would take (each
    /// releasable agency a member, each ref listed once), and screens that
    /// could hit (a name or document to screen on, and an earlier entry of
    /// another agency releasable to the screening one, whose owner alone
    /// may acknowledge the hit report).
    pub fn check(&self, federation: &Federation) -> Result<(), Mistake> {
        if self.end <= self.start {
            return Err(Mistake::EndNotAfterStart {
                start: self.start,
                end: self.end,
            });
        }
        if !(self.speed.is_finite() && self.speed >= 1.0) {
            return Err(Mistake::Speed(self.speed));
        }
        for (i, p) in self.pace.iter().enumerate() {
            if p.until <= p.from || !(p.speed.is_finite() && p.speed >= 1.0) {
                return Err(Mistake::Pace(i));
            }
        }
        let member = |agency: &AgencyId, step: usize| -> Result<(), Mistake> {
            if federation.is_member(agency) {
                Ok(())
            } else {
                Err(Mistake::NotMember {
                    step,
                    agency: agency.clone(),
                    federation: federation.id().clone(),
                })
            }
        };
        let mut order: Vec<(usize, &Step)> = self.steps.iter().enumerate().collect();
        order.sort_by_key(|(_, s)| s.at);
        // Label to (sender, who may acknowledge, whether a hit report).
        let mut labels: BTreeMap<&str, (&AgencyId, Vec<AgencyId>, bool)> = BTreeMap::new();
        // Entries listed so far: (owner, ref) to the agencies they are
        // releasable to.
        let mut listed: BTreeMap<(&AgencyId, &str), &[String]> = BTreeMap::new();
        for (i, step) in order {
            if step.at < self.start || step.at > self.end {
                return Err(Mistake::Outside {
                    step: i,
                    at: step.at,
                    start: self.start,
                    end: self.end,
                });
            }
            match &step.action {
                Action::Send { from, label, alert } => {
                    member(from, i)?;
                    for r in &alert.recipients {
                        member(r, i)?;
                    }
                    if labels
                        .insert(label, (from, alert.recipients.clone(), false))
                        .is_some()
                    {
                        return Err(Mistake::LabelTwice {
                            step: i,
                            label: label.clone(),
                        });
                    }
                }
                Action::Ack { by, label, .. } => {
                    member(by, i)?;
                    received(&labels, label, by, i)?;
                }
                Action::Cancel {
                    from,
                    label,
                    as_label,
                    ..
                } => {
                    member(from, i)?;
                    let Some((sender, recipients, hit)) = labels.get(label.as_str()).cloned()
                    else {
                        return Err(Mistake::NotSent {
                            step: i,
                            label: label.clone(),
                        });
                    };
                    if hit {
                        return Err(Mistake::NotAnAlert {
                            step: i,
                            label: label.clone(),
                        });
                    }
                    if sender != from {
                        return Err(Mistake::NotSender {
                            step: i,
                            agency: from.clone(),
                            label: label.clone(),
                            sender: sender.clone(),
                        });
                    }
                    if labels.insert(as_label, (from, recipients, false)).is_some() {
                        return Err(Mistake::LabelTwice {
                            step: i,
                            label: as_label.clone(),
                        });
                    }
                }
                Action::Watchlist { from, entries } => {
                    member(from, i)?;
                    for e in entries {
                        for r in &e.releasable_to {
                            let agency = AgencyId::new(r).map_err(|err| Mistake::BadEntry {
                                step: i,
                                owner: from.clone(),
                                reference: e.reference.clone(),
                                reason: err.to_string(),
                            })?;
                            member(&agency, i)?;
                        }
                        e.check(from).map_err(|err| Mistake::BadEntry {
                            step: i,
                            owner: from.clone(),
                            reference: e.reference.clone(),
                            reason: err.to_string(),
                        })?;
                        if listed
                            .insert((from, e.reference.as_str()), &e.releasable_to)
                            .is_some()
                        {
                            return Err(Mistake::EntryTwice {
                                step: i,
                                owner: from.clone(),
                                reference: e.reference.clone(),
                            });
                        }
                    }
                }
                Action::Screen {
                    by, label, person, ..
                } => {
                    member(by, i)?;
                    if person.names.iter().all(|n| n.trim().is_empty())
                        && person.documents.is_empty()
                    {
                        return Err(Mistake::NothingToScreen {
                            step: i,
                            label: label.clone(),
                        });
                    }
                    // The hit report goes to an entry's owner: one of those
                    // whose entries this agency may hold.
                    let owners: BTreeSet<AgencyId> = listed
                        .iter()
                        .filter(|((owner, _), to)| {
                            *owner != by && to.iter().any(|t| t == by.as_str())
                        })
                        .map(|((owner, _), _)| (*owner).clone())
                        .collect();
                    if owners.is_empty() {
                        return Err(Mistake::NothingToHit {
                            step: i,
                            label: label.clone(),
                            agency: by.clone(),
                        });
                    }
                    if labels
                        .insert(label, (by, owners.into_iter().collect(), true))
                        .is_some()
                    {
                        return Err(Mistake::LabelTwice {
                            step: i,
                            label: label.clone(),
                        });
                    }
                }
                Action::Triage { by, expect_first } => {
                    member(by, i)?;
                    if let Some(label) = expect_first {
                        received(&labels, label, by, i)?;
                    }
                }
                Action::Stop { agency } | Action::Start { agency } => member(agency, i)?,
                Action::Note { .. } => {}
            }
        }
        Ok(())
    }

    /// The agencies that send, cancel, acknowledge, list or screen
    /// something: a replay needs an operator client for each.
    pub fn actors(&self) -> BTreeSet<AgencyId> {
        self.steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::Send { from, .. }
                | Action::Cancel { from, .. }
                | Action::Watchlist { from, .. } => Some(from.clone()),
                Action::Ack { by, .. } | Action::Screen { by, .. } | Action::Triage { by, .. } => {
                    Some(by.clone())
                }
                _ => None,
            })
            .collect()
    }

    /// The paces, scaled by `speed / self.speed` when the replay runs at
    /// another speed than the scenario's own.
    pub fn pace_at(&self, speed: f64) -> Vec<Pace> {
        let factor = speed / self.speed;
        self.pace
            .iter()
            .map(|p| Pace {
                speed: (p.speed * factor).max(1.0),
                ..*p
            })
            .collect()
    }

    /// The scenario clock of a replay on real time at `speed`, reading
    /// `start` at real time `origin`.
    pub fn clock(&self, speed: f64, origin: DateTime<Utc>) -> ScaledClock {
        ScaledClock::with_pace(self.start, origin, speed, &self.pace_at(speed))
    }

    /// The `[clock]` every node of a replay on real time at `speed` runs
    /// with: the scenario's start read at real time `origin`, and its paces
    /// scaled to `speed`. Nodes refuse a speed under 1, so such a replay is
    /// refused here too.
    pub fn node_clock(&self, speed: f64, origin: DateTime<Utc>) -> Result<ClockOptions, Mistake> {
        if !(speed.is_finite() && speed >= 1.0) {
            return Err(Mistake::Speed(speed));
        }
        Ok(ClockOptions {
            start: self.start,
            origin: Some(origin),
            speed,
            pace: self.pace_at(speed),
        })
    }
}

/// Step `step` needs the alert `label` sent earlier with `by` among its
/// recipients (an `ack` of it, a `triage` expecting it first).
fn received(
    labels: &BTreeMap<&str, (&AgencyId, Vec<AgencyId>, bool)>,
    label: &str,
    by: &AgencyId,
    step: usize,
) -> Result<(), Mistake> {
    let Some((_, recipients, _)) = labels.get(label) else {
        return Err(Mistake::NotSent {
            step,
            label: label.to_owned(),
        });
    };
    if !recipients.contains(by) {
        return Err(Mistake::NotRecipient {
            step,
            agency: by.clone(),
            label: label.to_owned(),
        });
    }
    Ok(())
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
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert!(!s.steps.is_empty());
                assert!(s.steps.windows(2).all(|w| w[0].at <= w[1].at));
                n += 1;
            }
        }
        assert!(n >= 3, "{n} scenarios");
    }

    #[test]
    fn mistakes_are_named() {
        let fed = federation();
        let check = |text: &str| {
            let s: Scenario = toml::from_str(text).unwrap();
            s.check(&fed).unwrap_err()
        };
        let head =
            "name = \"t\"\nstart = \"2015-01-01T00:00:00Z\"\nend = \"2015-02-01T00:00:00Z\"\n";
        let err = check(&format!(
            "{head}[[steps]]\nat = \"2015-01-02T00:00:00Z\"\naction = \"ack\"\nby = \"FR-DGSI\"\nlabel = \"x\"\ndisposition = \"NOTED\"\n"
        ));
        assert_eq!(
            err.to_string(),
            "steps[0]: no alert \"x\" is sent before this step"
        );
        let err = check(&format!(
            "{head}[[steps]]\nat = \"2016-01-02T00:00:00Z\"\naction = \"note\"\ntext = \"late\"\n"
        ));
        assert!(matches!(err, Mistake::Outside { step: 0, .. }), "{err}");
        assert!(err.to_string().contains("outside the scenario"), "{err}");
        let err = check(&format!(
            "{head}[[steps]]\nat = \"2015-01-02T00:00:00Z\"\naction = \"stop\"\nagency = \"XX-NONE\"\n"
        ));
        assert_eq!(
            err.to_string(),
            "steps[0]: XX-NONE is not an agency of federation demo.tocsin"
        );
    }

    #[test]
    fn bad_watchlist_and_screen_steps_are_named() {
        let fed = federation();
        let check = |steps: &str| -> Result<Scenario, ScenarioError> {
            Scenario::parse(
                &format!(
                    "name = \"t\"\nstart = \"2015-01-01T00:00:00Z\"\nend = \"2015-02-01T00:00:00Z\"\n{steps}"
                ),
                &fed,
            )
        };
        let list = |to: &str, subject: &str| {
            format!(
                r#"
[[steps]]
at = "2015-01-02T00:00:00Z"
action = "watchlist"
from = "BE-VSSE"
[[steps.entries]]
ref = "VSSE-1"
subject = {subject}
reason = "Islamic State returnee"
action = "DISCREET_CHECK"
releasable_to = [{to}]
"#
            )
        };
        let person = r#"{ person = { names = ["Salah Abdeslam"] } }"#;
        let screen = |by: &str, names: &str| {
            format!(
                r#"
[[steps]]
at = "2015-01-03T00:00:00Z"
action = "screen"
by = "{by}"
label = "check"
person = {{ names = [{names}] }}
place = "Cambrai"
"#
            )
        };
        let ack = |by: &str| {
            format!(
                "\n[[steps]]\nat = \"2015-01-04T00:00:00Z\"\naction = \"ack\"\nby = \"{by}\"\nlabel = \"check\"\ndisposition = \"ACTIONED\"\n"
            )
        };
        let good = format!(
            "{}{}{}",
            list(r#""FR-GN""#, person),
            screen("FR-GN", r#""Salah ABDESLAM""#),
            ack("BE-VSSE")
        );
        let s = check(&good).unwrap();
        assert!(s.actors().iter().any(|a| a.as_str() == "FR-GN"), "{s:?}");
        let Action::Screen { seen_at, .. } = &s.steps[1].action else {
            panic!("{s:?}")
        };
        assert_eq!(*seen_at, None, "the step's time, at replay");

        let mistake = |steps: String| match check(&steps) {
            Err(ScenarioError::Mistake(m)) => m.to_string(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            mistake(list(r#""XX-NONE""#, person)),
            "steps[0]: XX-NONE is not an agency of federation demo.tocsin"
        );
        let refused = mistake(list(r#""FR-GN""#, r#"{ person = { names = [] } }"#));
        assert!(
            refused.starts_with("steps[0]: entry \"VSSE-1\" of BE-VSSE is refused: "),
            "{refused}"
        );
        assert_eq!(
            mistake(format!(
                "{}{}",
                list(r#""FR-GN""#, person),
                list(r#""AT-BVT""#, person).replace("01-02", "01-05")
            )),
            "steps[1]: BE-VSSE lists entry \"VSSE-1\" twice"
        );
        assert_eq!(
            mistake(format!(
                "{}{}",
                list(r#""FR-GN""#, person),
                screen("FR-GN", "")
            )),
            "steps[1]: screen \"check\" gives no name and no document"
        );
        assert_eq!(
            mistake(format!(
                "{}{}",
                list(r#""FR-GN""#, person),
                screen("AT-BVT", r#""Salah Abdeslam""#)
            )),
            "steps[1]: screen \"check\" by AT-BVT cannot hit: no earlier watchlist step lists an entry releasable to AT-BVT"
        );
        assert_eq!(
            mistake(format!(
                "{}{}{}",
                list(r#""FR-GN""#, person),
                screen("FR-GN", r#""Salah Abdeslam""#),
                ack("FR-DGSI")
            )),
            "steps[2]: FR-DGSI is not a recipient of \"check\""
        );
        let cancel = "\n[[steps]]\nat = \"2015-01-04T00:00:00Z\"\naction = \"cancel\"\nfrom = \"FR-GN\"\nlabel = \"check\"\nas = \"c\"\n";
        assert_eq!(
            mistake(format!(
                "{}{}{cancel}",
                list(r#""FR-GN""#, person),
                screen("FR-GN", r#""Salah Abdeslam""#)
            )),
            "steps[2]: \"check\" is a hit report, not an alert a cancel can close"
        );
        // An entry field the draft does not have is a parse error naming it.
        let err = check(&good.replace("reason = ", "raison = ")).unwrap_err();
        assert!(err.to_string().contains("raison"), "{err}");
    }

    #[test]
    fn a_file_that_cannot_be_replayed_names_itself_and_the_mistake() {
        let fed = federation();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(
            &path,
            "name = \"t\"\nstart = \"2015-02-01T00:00:00Z\"\nend = \"2015-01-01T00:00:00Z\"\n",
        )
        .unwrap();
        let err = Scenario::load(&path, &fed).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("invalid scenario {}", path.display())
        );
        let cause = std::error::Error::source(&err).unwrap().to_string();
        assert!(cause.starts_with("end 2015-01-01"), "{cause}");
        let err = Scenario::load(&dir.path().join("none.toml"), &fed).unwrap_err();
        assert!(matches!(err, LoadError::Read { .. }), "{err}");
    }

    #[test]
    fn a_replay_on_real_time_refuses_a_speed_nodes_would_refuse() {
        let s = Scenario::parse(
            "name = \"t\"\nstart = \"2015-01-01T00:00:00Z\"\nend = \"2015-02-01T00:00:00Z\"\nspeed = 10\n",
            &federation(),
        )
        .unwrap();
        assert_eq!(s.node_clock(0.5, Utc::now()), Err(Mistake::Speed(0.5)));
        let options = s.node_clock(20.0, Utc::now()).unwrap();
        assert_eq!((options.start, options.speed), (s.start, 20.0));
    }
}
