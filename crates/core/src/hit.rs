//! Hit reports: what a partner's screen saw that matched a watchlist
//! entry, carried by an alert to the entry's owner.
//!
//! A hit report is an [`Alert`](crate::Alert) with a [`Hit`]: it travels,
//! is receipted, falls due, is reminded and escalated, and is acknowledged
//! exactly as any alert, so everything the protocol does about silence it
//! does about an unanswered hit. What makes it a hit report is checked
//! here: its only recipient is the entry's owner, and the evidence is
//! bounded like the rest of an alert.

use chrono::{DateTime, Utc};
use tocsin_proto::pb;

use crate::alert::{Person, ValidationError, check_text, invalid, time_field};
use crate::ids::AgencyId;
use crate::time::to_timestamp;
use crate::watchlist::MAX_REF_BYTES;

/// The category every hit report carries.
pub const HIT_CATEGORY: &str = "watchlist-hit";
/// Most reasons a hit report carries.
pub const MAX_REASONS: usize = 32;
/// Longest reason line, in bytes.
pub const MAX_REASON_LINE_BYTES: usize = 512;
/// Longest place, in bytes.
pub const MAX_PLACE_BYTES: usize = 256;
/// Most identifiers screened on.
pub const MAX_IDENTIFIERS: usize = 16;

/// What a screen saw that matched an entry: a validated `WatchlistHit`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Hit {
    /// The entry's owner: the hit report's only recipient.
    pub entry_owner: AgencyId,
    /// The owner's reference for the entry.
    pub entry_ref: String,
    /// The log sequence number of the version matched.
    pub entry_seq: u64,
    /// The person as screened, if a person was.
    pub screened: Option<Person>,
    /// Identifiers screened on: (kind, value).
    pub screened_identifiers: Vec<(String, String)>,
    /// When the person was seen, if given.
    pub seen_at: Option<DateTime<Utc>>,
    /// Where, if given.
    pub seen_place: String,
    /// The reporting agency's own reference for the screen.
    pub screen_ref: String,
    /// How well it matched, in [0, 1].
    pub score: f32,
    /// The evidence, one line each.
    pub reasons: Vec<String>,
    /// The action the entry asks for, by name.
    pub requested_action: String,
}

// The score is checked finite on the way in, so equality is total.
impl Eq for Hit {}

impl Hit {
    /// A line for listings: "seen at Leros on 2015-10-03, score 0.93".
    pub fn summary(&self) -> String {
        let mut s = String::from("seen");
        if !self.seen_place.is_empty() {
            s.push_str(&format!(" at {}", self.seen_place));
        }
        if let Some(at) = self.seen_at {
            s.push_str(&format!(" on {}", at.format("%Y-%m-%d %H:%M UTC")));
        }
        s.push_str(&format!(
            ", matching {}'s entry {} (score {:.2})",
            self.entry_owner, self.entry_ref, self.score
        ));
        s
    }
}

fn optional_text(field: &str, value: &str, max: usize) -> Result<(), ValidationError> {
    if value.is_empty() {
        Ok(())
    } else {
        check_text(field, value, max)
    }
}

impl TryFrom<pb::WatchlistHit> for Hit {
    type Error = ValidationError;

    fn try_from(h: pb::WatchlistHit) -> Result<Self, Self::Error> {
        let entry_owner = AgencyId::new(h.entry_owner)
            .map_err(|e| ValidationError::new("entry_owner", e.to_string()))?;
        check_text("entry_ref", &h.entry_ref, MAX_REF_BYTES)?;
        let screened = h
            .screened
            .filter(|p| *p != pb::Person::default())
            .map(|p| {
                Person::try_from(p)
                    .map_err(|e| ValidationError::new(format!("screened.{}", e.field), e.problem))
            })
            .transpose()?;
        if h.screened_identifiers.len() > MAX_IDENTIFIERS {
            return invalid(
                "screened_identifiers",
                format!("at most {MAX_IDENTIFIERS} allowed"),
            );
        }
        let mut screened_identifiers = Vec::with_capacity(h.screened_identifiers.len());
        for (i, id) in h.screened_identifiers.into_iter().enumerate() {
            check_text(&format!("screened_identifiers[{i}].kind"), &id.kind, 256)?;
            check_text(&format!("screened_identifiers[{i}].value"), &id.value, 256)?;
            screened_identifiers.push((id.kind, id.value));
        }
        if screened.is_none() && screened_identifiers.is_empty() {
            return invalid(
                "screened",
                "a hit report needs the person or the identifiers screened",
            );
        }
        optional_text("seen_place", &h.seen_place, MAX_PLACE_BYTES)?;
        optional_text("screen_ref", &h.screen_ref, MAX_REF_BYTES)?;
        if !(h.score.is_finite() && (0.0..=1.0).contains(&h.score)) {
            return invalid("score", format!("{} is not in [0, 1]", h.score));
        }
        if h.reasons.len() > MAX_REASONS {
            return invalid("reasons", format!("at most {MAX_REASONS} allowed"));
        }
        for (i, r) in h.reasons.iter().enumerate() {
            check_text(&format!("reasons[{i}]"), r, MAX_REASON_LINE_BYTES)?;
        }
        optional_text("requested_action", &h.requested_action, 64)?;
        Ok(Hit {
            entry_owner,
            entry_ref: h.entry_ref,
            entry_seq: h.entry_seq,
            screened,
            screened_identifiers,
            seen_at: time_field("seen_at", h.seen_at)?,
            seen_place: h.seen_place,
            screen_ref: h.screen_ref,
            score: h.score,
            reasons: h.reasons,
            requested_action: h.requested_action,
        })
    }
}

impl From<&Hit> for pb::WatchlistHit {
    fn from(h: &Hit) -> Self {
        let screened = h.screened.as_ref().map(pb::Person::from);
        pb::WatchlistHit {
            entry_owner: h.entry_owner.to_string(),
            entry_ref: h.entry_ref.clone(),
            entry_seq: h.entry_seq,
            screened,
            screened_identifiers: h
                .screened_identifiers
                .iter()
                .map(|(kind, value)| pb::Identifier {
                    kind: kind.clone(),
                    value: value.clone(),
                })
                .collect(),
            seen_at: h.seen_at.map(to_timestamp),
            seen_place: h.seen_place.clone(),
            screen_ref: h.screen_ref.clone(),
            score: h.score,
            reasons: h.reasons.clone(),
            requested_action: h.requested_action.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> pb::WatchlistHit {
        pb::WatchlistHit {
            entry_owner: "BE-VSSE".into(),
            entry_ref: "BE-2015-017".into(),
            entry_seq: 3,
            screened: Some(pb::Person {
                names: vec!["Salah Abdeslam".into()],
                ..Default::default()
            }),
            seen_place: "A2 near Cambrai".into(),
            score: 0.97,
            reasons: vec!["names: SALAH ~ SALAH (exact)".into()],
            requested_action: "DISCREET_CHECK".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_valid_hit_round_trips() {
        let hit = Hit::try_from(valid()).unwrap();
        assert_eq!(hit.entry_owner.as_str(), "BE-VSSE");
        assert_eq!(Hit::try_from(pb::WatchlistHit::from(&hit)).unwrap(), hit);
        assert!(
            hit.summary().contains("A2 near Cambrai"),
            "{}",
            hit.summary()
        );
    }

    #[test]
    fn only_a_hit_report_carries_the_hit_category() {
        let alert = pb::Alert {
            id: crate::AlertId::generate().to_string(),
            originator: "FR-GN".into(),
            created_at: Some(to_timestamp(chrono::Utc::now())),
            precedence: pb::Precedence::Routine as i32,
            category: HIT_CATEGORY.into(),
            subjects: vec![pb::Subject {
                kind: Some(pb::subject::Kind::Person(pb::Person {
                    names: vec!["Salah Abdeslam".into()],
                    ..Default::default()
                })),
            }],
            text: "a sighting, or so it says".into(),
            source_reliability: pb::SourceReliability::A as i32,
            information_credibility: pb::InformationCredibility::InformationCredibility2 as i32,
            tlp: pb::Tlp::Amber as i32,
            recipients: vec!["BE-VSSE".into()],
            ..Default::default()
        };
        let err = crate::Alert::try_from(alert.clone()).unwrap_err();
        assert_eq!(err.field, "category");
        let mut real = alert;
        real.hit = Some(valid());
        assert!(crate::Alert::try_from(real).is_ok());
    }

    #[test]
    fn bad_hits_name_their_field() {
        let mut h = valid();
        h.score = f32::NAN;
        assert_eq!(Hit::try_from(h).unwrap_err().field, "score");
        let mut h = valid();
        h.score = 1.5;
        assert_eq!(Hit::try_from(h).unwrap_err().field, "score");
        let mut h = valid();
        h.entry_ref = String::new();
        assert_eq!(Hit::try_from(h).unwrap_err().field, "entry_ref");
        let mut h = valid();
        h.screened = None;
        assert_eq!(Hit::try_from(h).unwrap_err().field, "screened");
        let mut h = valid();
        h.reasons = vec!["x".into(); MAX_REASONS + 1];
        assert_eq!(Hit::try_from(h).unwrap_err().field, "reasons");
        let mut h = valid();
        h.entry_owner = "not an agency".into();
        assert_eq!(Hit::try_from(h).unwrap_err().field, "entry_owner");
    }
}
