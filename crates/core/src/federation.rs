//! The federation file (`federation.toml`): who is in the federation, where
//! each agency's node listens, and the policies every node applies alike.
//!
//! ```toml
//! [federation]
//! id = "demo.tocsin"
//! name = "Demo federation"
//!
//! [escalation]           # optional; multiples of the precedence's
//! remind = 0.0           # allowance after the deadline (these are
//! escalate = 0.5         # the defaults)
//! lapse = 1.0
//!
//! [deadlines]            # optional; these are the defaults
//! flash = "10m"
//! immediate = "1h"
//! priority = "12h"
//! routine = "7days"
//!
//! [[agencies]]
//! id = "TR-MIT"
//! name = "Millî İstihbarat Teşkilatı"
//! country = "TR"
//! endpoint = "127.0.0.1:7101"
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::alert::Precedence;
use crate::ids::{AgencyId, FederationId};

/// Why a federation file was refused.
#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    /// The file could not be read.
    #[error("cannot read federation file {path}: {cause}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        cause: std::io::Error,
    },
    /// The file is not valid TOML for a federation.
    #[error("invalid federation file {path}: {error}")]
    Parse {
        /// The file.
        path: String,
        /// What is missing or wrong.
        #[source]
        error: crate::toml_file::TomlError,
    },
    /// The file parses but says something impossible.
    #[error("invalid federation file {path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// The `[federation]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationInfo {
    /// The trust domain in every identity URI.
    pub id: FederationId,
    /// A human name.
    #[serde(default)]
    pub name: String,
}

/// One member agency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agency {
    /// The agency id, such as `TR-MIT`.
    pub id: AgencyId,
    /// Its full name.
    #[serde(default)]
    pub name: String,
    /// Its country code.
    #[serde(default)]
    pub country: String,
    /// Where its node's gRPC endpoint listens, as `host:port`: the first
    /// of its front nodes. May be left out when `endpoints` is given (it
    /// is then the first of them).
    #[serde(default)]
    pub endpoint: String,
    /// Further front nodes of the agency (several processes on one
    /// database, each presenting the agency's certificate), as
    /// `host:port`; peers use any that answers (see
    /// [`Agency::all_endpoints`]). Empty for an agency of one node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
    /// Extra DNS names to put in its node certificate (the endpoint's host is
    /// always included), for standard gRPC tools that check host names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Observers (such as a hub) receive escalations.
    #[serde(default)]
    pub observer: bool,
}

impl Agency {
    /// Every endpoint of the agency, `endpoint` first, each once: where
    /// peers try to reach it, in that order.
    pub fn all_endpoints(&self) -> Vec<&str> {
        let mut all: Vec<&str> = Vec::with_capacity(1 + self.endpoints.len());
        for e in std::iter::once(&self.endpoint).chain(&self.endpoints) {
            if !e.is_empty() && !all.contains(&e.as_str()) {
                all.push(e);
            }
        }
        all
    }

    /// The host part of the endpoint.
    pub fn endpoint_host(&self) -> &str {
        match self.endpoint.rsplit_once(':') {
            Some((host, _)) => host.trim_start_matches('[').trim_end_matches(']'),
            None => &self.endpoint,
        }
    }
}

/// How long a recipient has to acknowledge, per precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deadlines {
    /// FLASH (default 10 minutes, the ACP handling target).
    #[serde(with = "humantime_serde", default = "d_flash")]
    pub flash: Duration,
    /// IMMEDIATE (default 1 hour).
    #[serde(with = "humantime_serde", default = "d_immediate")]
    pub immediate: Duration,
    /// PRIORITY (default 12 hours, the SIRENE reply time).
    #[serde(with = "humantime_serde", default = "d_priority")]
    pub priority: Duration,
    /// ROUTINE (default 7 days, directive (EU) 2023/977).
    #[serde(with = "humantime_serde", default = "d_routine")]
    pub routine: Duration,
}

fn d_flash() -> Duration {
    Duration::from_secs(10 * 60)
}
fn d_immediate() -> Duration {
    Duration::from_secs(3600)
}
fn d_priority() -> Duration {
    Duration::from_secs(12 * 3600)
}
fn d_routine() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            flash: d_flash(),
            immediate: d_immediate(),
            priority: d_priority(),
            routine: d_routine(),
        }
    }
}

impl Deadlines {
    /// When a recipient must acknowledge `alert`: its creation time plus the
    /// allowance for its precedence, or the alert's own `respond_by` if
    /// that is earlier (an alert may shorten its deadline, never extend it).
    /// Both ends compute it from the originator's signed times, so they agree.
    pub fn due_at(&self, alert: &crate::alert::Alert) -> chrono::DateTime<chrono::Utc> {
        let allowance = chrono::Duration::from_std(self.for_precedence(alert.precedence))
            .unwrap_or(chrono::Duration::MAX);
        let by_policy = alert
            .created_at
            .checked_add_signed(allowance)
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
        match alert.respond_by {
            Some(asked) if asked < by_policy => asked,
            _ => by_policy,
        }
    }

    /// The allowance for `precedence`.
    pub fn for_precedence(&self, precedence: Precedence) -> Duration {
        match precedence {
            Precedence::Flash => self.flash,
            Precedence::Immediate => self.immediate,
            Precedence::Priority => self.priority,
            Precedence::Routine => self.routine,
        }
    }
}

/// The escalation ladder for deliveries left unacknowledged. Each step's
/// time is a multiple of the precedence's allowance, counted from the
/// deadline, so one ladder fits FLASH (minutes) and ROUTINE (days) alike.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    /// Remind the recipient (default 0: at the deadline).
    #[serde(default)]
    pub remind: f64,
    /// Escalate: a reminder one precedence higher, and notices to the
    /// observers (default 0.5).
    #[serde(default = "half")]
    pub escalate: f64,
    /// The ladder's last step: the delivery LAPSED, for the originator's
    /// operators (default 1). `unanswered`, its earlier name, is still read.
    #[serde(default = "one", alias = "unanswered")]
    pub lapse: f64,
}

fn half() -> f64 {
    0.5
}
fn one() -> f64 {
    1.0
}

impl Default for Escalation {
    fn default() -> Self {
        Self {
            remind: 0.0,
            escalate: half(),
            lapse: one(),
        }
    }
}

impl Escalation {
    /// When ladder step `step` (1 remind, 2 escalate, 3 lapse) falls
    /// for a delivery due at `due_at` with precedence allowance `allowance`.
    pub fn step_at(
        &self,
        step: u8,
        due_at: chrono::DateTime<chrono::Utc>,
        allowance: Duration,
    ) -> chrono::DateTime<chrono::Utc> {
        let factor = match step {
            1 => self.remind,
            2 => self.escalate,
            _ => self.lapse,
        };
        // `Duration::mul_f64` panics past Duration::MAX, and the file may
        // well say `lapse = 1e300`: such a step never comes.
        let offset =
            std::time::Duration::try_from_secs_f64(allowance.as_secs_f64() * factor.max(0.0))
                .ok()
                .and_then(|d| chrono::Duration::from_std(d).ok())
                .unwrap_or(chrono::Duration::MAX);
        due_at
            .checked_add_signed(offset)
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
    }
}

/// A parsed and checked federation file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Federation {
    /// The `[federation]` table.
    pub federation: FederationInfo,
    /// The deadline policy.
    #[serde(default)]
    pub deadlines: Deadlines,
    /// The escalation ladder.
    #[serde(default)]
    pub escalation: Escalation,
    /// The member agencies.
    pub agencies: Vec<Agency>,
}

impl Federation {
    /// Reads and checks a federation file.
    pub fn load(path: &Path) -> Result<Self, FederationError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|cause| FederationError::Read {
            path: shown.clone(),
            cause,
        })?;
        Self::parse(&text, &shown)
    }

    /// Parses and checks federation TOML; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, FederationError> {
        let mut fed: Federation =
            crate::toml_file::from_str(text).map_err(|error| FederationError::Parse {
                path: origin.to_owned(),
                error,
            })?;
        // `endpoints` alone: the first is the agency's `endpoint`.
        for a in &mut fed.agencies {
            if a.endpoint.is_empty()
                && let Some(first) = a.endpoints.first()
            {
                a.endpoint = first.clone();
            }
        }
        fed.check().map_err(|message| FederationError::Invalid {
            path: origin.to_owned(),
            message,
        })?;
        Ok(fed)
    }

    fn check(&self) -> Result<(), String> {
        let e = &self.escalation;
        let ordered = 0.0 <= e.remind && e.remind <= e.escalate && e.escalate <= e.lapse;
        if !ordered || !e.lapse.is_finite() {
            return Err(format!(
                "[escalation] steps must satisfy 0 <= remind <= escalate <= lapse (got {}, {}, {})",
                e.remind, e.escalate, e.lapse
            ));
        }
        if self.agencies.is_empty() {
            return Err("no [[agencies]]: a federation needs at least one agency".into());
        }
        let mut seen = BTreeMap::new();
        for (i, a) in self.agencies.iter().enumerate() {
            if seen.insert(a.id.clone(), ()).is_some() {
                return Err(format!("agency {} is listed twice", a.id));
            }
            if a.endpoint.is_empty() {
                // As the parser words a missing field (`endpoints` may
                // stand in for it, so the parser cannot tell).
                return Err(format!(
                    "missing field `endpoint` in [[agencies]] #{}",
                    i + 1
                ));
            }
            for endpoint in a.all_endpoints() {
                let port_ok = endpoint
                    .rsplit_once(':')
                    .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
                if !port_ok {
                    return Err(format!(
                        "agency {}: endpoint {:?} is not host:port",
                        a.id, endpoint
                    ));
                }
            }
        }
        Ok(())
    }

    /// The federation's id.
    pub fn id(&self) -> &FederationId {
        &self.federation.id
    }

    /// The agency with this id, if it is a member.
    pub fn agency(&self, id: &AgencyId) -> Option<&Agency> {
        self.agencies.iter().find(|a| &a.id == id)
    }

    /// Whether `id` is a member.
    pub fn is_member(&self, id: &AgencyId) -> bool {
        self.agency(id).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FED: &str = r#"
        [federation]
        id = "demo.tocsin"
        [deadlines]
        flash = "5m"
        [[agencies]]
        id = "TR-MIT"
        endpoint = "127.0.0.1:7101"
        [[agencies]]
        id = "FR-DGSI"
        endpoint = "localhost:7102"
    "#;

    #[test]
    fn parses_with_default_deadlines() {
        let fed = Federation::parse(FED, "test").unwrap();
        assert_eq!(fed.deadlines.flash, Duration::from_secs(300));
        assert_eq!(fed.deadlines.routine, Duration::from_secs(7 * 24 * 3600));
        assert!(fed.is_member(&AgencyId::new("FR-DGSI").unwrap()));
        assert_eq!(fed.agencies[1].endpoint_host(), "localhost");
    }

    /// Several front nodes: `endpoints` beside `endpoint` (tried after
    /// it, once each), or instead of it (its first is the endpoint); each
    /// must be host:port, and an agency needs one at least.
    #[test]
    fn an_agency_may_list_several_endpoints() {
        let fed = Federation::parse(FED, "test").unwrap();
        assert_eq!(fed.agencies[0].all_endpoints(), ["127.0.0.1:7101"]);

        let beside = FED.replace(
            "endpoint = \"127.0.0.1:7101\"",
            "endpoint = \"127.0.0.1:7101\"\nendpoints = [\"127.0.0.1:7101\", \"10.0.0.2:7101\"]",
        );
        let fed = Federation::parse(&beside, "test").unwrap();
        assert_eq!(
            fed.agencies[0].all_endpoints(),
            ["127.0.0.1:7101", "10.0.0.2:7101"]
        );

        let instead = FED.replace(
            "endpoint = \"127.0.0.1:7101\"",
            "endpoints = [\"10.0.0.1:7101\", \"10.0.0.2:7101\"]",
        );
        let fed = Federation::parse(&instead, "test").unwrap();
        assert_eq!(fed.agencies[0].endpoint, "10.0.0.1:7101");
        assert_eq!(fed.agencies[0].endpoint_host(), "10.0.0.1");
        assert_eq!(
            fed.agencies[0].all_endpoints(),
            ["10.0.0.1:7101", "10.0.0.2:7101"]
        );

        let bad = FED.replace(
            "endpoint = \"127.0.0.1:7101\"",
            "endpoints = [\"10.0.0.1:7101\", \"10.0.0.2\"]",
        );
        let err = Federation::parse(&bad, "f.toml").unwrap_err().to_string();
        assert!(
            err.contains("endpoint \"10.0.0.2\" is not host:port"),
            "{err}"
        );
        let none = FED.replace("endpoint = \"127.0.0.1:7101\"", "");
        let err = Federation::parse(&none, "f.toml").unwrap_err().to_string();
        assert!(
            err.ends_with("missing field `endpoint` in [[agencies]] #1"),
            "{err}"
        );
    }

    #[test]
    fn an_alert_may_shorten_its_deadline_never_extend_it() {
        use crate::alert::Alert;
        use tocsin_proto::pb;
        let fed = Federation::parse(FED, "test").unwrap();
        let created = chrono::Utc::now();
        let mut wire = pb::Alert {
            id: crate::AlertId::generate().to_string(),
            originator: "TR-MIT".into(),
            created_at: Some(crate::to_timestamp(created)),
            precedence: pb::Precedence::Flash as i32,
            category: "c".into(),
            subjects: vec![pb::Subject {
                kind: Some(pb::subject::Kind::Identifier(pb::Identifier {
                    kind: "phone".into(),
                    value: "1".into(),
                })),
            }],
            text: "t".into(),
            source_reliability: 1,
            information_credibility: 1,
            tlp: 1,
            recipients: vec!["FR-DGSI".into()],
            ..Default::default()
        };
        let five_min = chrono::Duration::minutes(5);
        let policy = Alert::try_from(wire.clone()).unwrap();
        assert_eq!(fed.deadlines.due_at(&policy), created + five_min);

        wire.respond_by = Some(crate::to_timestamp(created + chrono::Duration::minutes(2)));
        let sooner = Alert::try_from(wire.clone()).unwrap();
        assert_eq!(
            fed.deadlines.due_at(&sooner),
            created + chrono::Duration::minutes(2)
        );

        wire.respond_by = Some(crate::to_timestamp(created + chrono::Duration::hours(2)));
        let later = Alert::try_from(wire).unwrap();
        assert_eq!(fed.deadlines.due_at(&later), created + five_min);
    }

    #[test]
    fn a_ladder_step_too_far_away_never_comes() {
        // Found by the configuration fuzz target: `unanswered = 1e300`
        // passes the file's checks, and computing the step panicked.
        let text = FED.replace(
            "[deadlines]",
            "[escalation]\nunanswered = 1e300\n[deadlines]",
        );
        let fed = Federation::parse(&text, "test").unwrap();
        let due = chrono::Utc::now();
        let week = fed.deadlines.for_precedence(Precedence::Routine);
        assert_eq!(
            fed.escalation.step_at(3, due, week),
            chrono::DateTime::<chrono::Utc>::MAX_UTC
        );
        assert_eq!(
            fed.escalation.step_at(2, due, week),
            due + chrono::Duration::from_std(week / 2).unwrap()
        );
    }

    #[test]
    fn problems_are_named() {
        let dup = FED.replace("FR-DGSI", "TR-MIT");
        let err = Federation::parse(&dup, "f.toml").unwrap_err().to_string();
        assert!(err.contains("TR-MIT is listed twice"), "{err}");

        let bad_port = FED.replace("localhost:7102", "localhost");
        let err = Federation::parse(&bad_port, "f.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not host:port"), "{err}");

        let typo = FED.replace("endpoint = \"127", "endpont = \"127");
        let err = Federation::parse(&typo, "f.toml").unwrap_err().to_string();
        assert!(err.contains("endpont"), "{err}");
    }

    /// A missing field is named with its table, not placed at a position
    /// that points at something else.
    #[test]
    fn a_missing_field_is_named_with_its_table() {
        for (text, expected) in [
            (
                FED.replace("id = \"demo.tocsin\"", "name = \"demo\""),
                "f.toml: missing field `id` in [federation]",
            ),
            (
                FED.replace("endpoint = \"localhost:7102\"", ""),
                "f.toml: missing field `endpoint` in [[agencies]] #2",
            ),
            (
                FED.replace("[federation]\n        id = \"demo.tocsin\"", ""),
                "f.toml: missing field `federation` (top level)",
            ),
        ] {
            let err = Federation::parse(&text, "f.toml").unwrap_err().to_string();
            assert!(err.ends_with(expected), "{err}");
            assert!(!err.contains("line"), "{err}");
        }
    }
}
