//! Watchlist entries and the changes of an owner's watchlist, validated.
//!
//! An agency (the owner) publishes [`Entry`]s about subjects; every change
//! of its list is a [`Change`] at a gapless place in the owner's log, which
//! other agencies' nodes pull. [`EntryDraft`] is the serde form operators
//! write (one JSON object per line in `tocsin watchlist import`).
//!
//! A reader may not see every change of an owner's log: [`Audience`] says
//! who sees a change in full, who sees it as a withdrawal, and so (by
//! elimination) who sees only a stub, which keeps the log gapless for
//! every reader without showing it what it may not read.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tocsin_proto::pb;

use crate::alert::{
    Precedence, Subject, Tlp, ValidationError, check_text, invalid, time_field, wire_enum,
};
use crate::ids::AgencyId;
use crate::time::to_timestamp;

/// The generated enums under the names the `wire_enum!` declarations use.
mod wire {
    pub(super) use tocsin_proto::pb::WatchlistAction as Action;
    pub(super) use tocsin_proto::pb::watchlist_removal::Reason as RemovalReason;
}

/// Longest entry reference, in bytes.
pub const MAX_REF_BYTES: usize = 128;
/// Longest reason, in bytes.
pub const MAX_REASON_BYTES: usize = 4 * 1024;
/// Most agencies an entry may be releasable to.
pub const MAX_RELEASABLE: usize = 256;

wire_enum! {
    /// What the owner asks a holder to do on a hit (after the SIS categories).
    Action <=> Action, field "action" {
        /// Note the encounter without the subject knowing.
        DiscreetCheck = DiscreetCheck, "DISCREET_CHECK";
        /// Question the subject.
        InquiryCheck = InquiryCheck, "INQUIRY_CHECK";
        /// Search the subject and what they carry.
        SpecificCheck = SpecificCheck, "SPECIFIC_CHECK";
        /// Refuse entry.
        RefuseEntry = RefuseEntry, "REFUSE_ENTRY";
        /// Arrest.
        Arrest = Arrest, "ARREST";
    }
}

wire_enum! {
    /// Why an entry leaves a holder's list.
    RemovalReason <=> RemovalReason, field "removed.reason" {
        /// The owner removed it.
        Removed = Removed, "REMOVED";
        /// It is no longer releasable to the holder.
        Withdrawn = Withdrawn, "WITHDRAWN";
        /// It reached its expiry.
        Expired = Expired, "EXPIRED";
    }
}

/// A validated watchlist entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The owning agency.
    pub owner: AgencyId,
    /// The owner's reference, unique per owner.
    #[serde(rename = "ref")]
    pub reference: String,
    /// What a check matches against.
    pub subject: Subject,
    /// Why the subject is listed.
    pub reason: String,
    /// What to do on a hit.
    pub action: Action,
    /// The precedence of the hit report the owner wants.
    pub hit_precedence: Precedence,
    /// Handling label.
    pub tlp: Tlp,
    /// The agencies it is releasable to, without duplicates.
    pub releasable_to: Vec<AgencyId>,
    /// When the owner will review it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_at: Option<DateTime<Utc>>,
    /// When it lapses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// The score at or above which a match is a hit, when stricter than
    /// the screening default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hit_threshold: Option<HitThreshold>,
}

/// A score in (0, 1] an owner asks a match of its entry to reach before it
/// is a hit. The node refuses one below the screening default, which the
/// screening library owns.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f32", into = "f32")]
pub struct HitThreshold(f32);

impl TryFrom<f32> for HitThreshold {
    type Error = ValidationError;
    fn try_from(value: f32) -> Result<Self, Self::Error> {
        HitThreshold::new(value)
    }
}

impl From<HitThreshold> for f32 {
    fn from(t: HitThreshold) -> f32 {
        t.0
    }
}

// Finite by construction, so equality is total.
impl Eq for HitThreshold {}

impl HitThreshold {
    /// `value`, if it is a score in (0, 1].
    pub fn new(value: f32) -> Result<Self, ValidationError> {
        if value.is_finite() && value > 0.0 && value <= 1.0 {
            Ok(HitThreshold(value))
        } else {
            invalid("hit_threshold", format!("{value} is not a score in (0, 1]"))
        }
    }

    /// The score.
    pub fn get(self) -> f32 {
        self.0
    }
}

/// The wire's 0 (unset) as none, anything else checked.
fn hit_threshold(value: f32) -> Result<Option<HitThreshold>, ValidationError> {
    if value == 0.0 {
        Ok(None)
    } else {
        HitThreshold::new(value).map(Some)
    }
}

impl Entry {
    /// Whether `agency`'s node may hold it.
    pub fn is_releasable_to(&self, agency: &AgencyId) -> bool {
        self.releasable_to.contains(agency)
    }

    /// Whether it has lapsed at `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }

    /// Checks what depends on the time of publication: an entry cannot be
    /// published already expired.
    pub fn check_timely(&self, now: DateTime<Utc>) -> Result<(), ValidationError> {
        match self.expires_at {
            Some(e) if e <= now => invalid("expires_at", format!("{e} is in the past")),
            _ => Ok(()),
        }
    }
}

impl TryFrom<pb::WatchlistEntry> for Entry {
    type Error = ValidationError;

    fn try_from(e: pb::WatchlistEntry) -> Result<Self, Self::Error> {
        let owner =
            AgencyId::new(e.owner).map_err(|err| ValidationError::new("owner", err.to_string()))?;
        check_text("ref", &e.r#ref, MAX_REF_BYTES)?;
        if e.r#ref.trim() != e.r#ref {
            return invalid("ref", "must not start or end with white space");
        }
        let subject = match e.subject {
            None => {
                return invalid(
                    "subject",
                    "an entry needs something a check can match: a person with a name or a document, or an identifier",
                );
            }
            Some(s) => Subject::try_from(s).map_err(|err| {
                ValidationError::new(format!("subject.{}", err.field), err.problem)
            })?,
        };
        check_text("reason", &e.reason, MAX_REASON_BYTES)?;
        let action = Action::from_wire(e.action)?;
        let hit_precedence = Precedence::from_wire(e.hit_precedence)
            .map_err(|err| ValidationError::new("hit_precedence", err.problem))?;
        let tlp = Tlp::from_wire(e.tlp)?;
        if e.releasable_to.len() > MAX_RELEASABLE {
            return invalid("releasable_to", format!("at most {MAX_RELEASABLE} allowed"));
        }
        let mut seen = BTreeSet::new();
        let mut releasable_to = Vec::with_capacity(e.releasable_to.len());
        for (i, a) in e.releasable_to.into_iter().enumerate() {
            let field = format!("releasable_to[{i}]");
            let a =
                AgencyId::new(a).map_err(|err| ValidationError::new(&field, err.to_string()))?;
            if a == owner {
                return invalid(
                    field,
                    "the owner holds its own entries; name other agencies",
                );
            }
            if !seen.insert(a.clone()) {
                return invalid(field, format!("{a} is named twice"));
            }
            releasable_to.push(a);
        }
        Ok(Entry {
            owner,
            reference: e.r#ref,
            subject,
            reason: e.reason,
            action,
            hit_precedence,
            tlp,
            releasable_to,
            review_at: time_field("review_at", e.review_at)?,
            expires_at: time_field("expires_at", e.expires_at)?,
            hit_threshold: hit_threshold(e.hit_threshold)?,
        })
    }
}

impl From<&Entry> for pb::WatchlistEntry {
    fn from(e: &Entry) -> Self {
        pb::WatchlistEntry {
            owner: e.owner.to_string(),
            r#ref: e.reference.clone(),
            subject: Some(pb::Subject::from(&e.subject)),
            reason: e.reason.clone(),
            action: e.action.to_wire(),
            hit_precedence: e.hit_precedence.to_wire(),
            tlp: e.tlp.to_wire(),
            releasable_to: e.releasable_to.iter().map(ToString::to_string).collect(),
            review_at: e.review_at.map(to_timestamp),
            expires_at: e.expires_at.map(to_timestamp),
            hit_threshold: e.hit_threshold.map_or(0.0, HitThreshold::get),
        }
    }
}

/// What one change does to the list of the reader it is served to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    /// The entry as it now is.
    Put(Box<Entry>),
    /// The entry leaves the reader's list.
    Removed {
        /// Its reference.
        reference: String,
        /// Why.
        reason: RemovalReason,
    },
    /// A change the reader may not see.
    Stub,
}

/// A validated change of an owner's watchlist, as one reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The owner, who signed it.
    pub owner: AgencyId,
    /// Its place in the owner's log, from 1, gapless.
    pub seq: u64,
    /// When the owner made it.
    pub authored_at: DateTime<Utc>,
    /// What it does.
    pub kind: ChangeKind,
}

impl TryFrom<pb::WatchlistChange> for Change {
    type Error = ValidationError;

    fn try_from(c: pb::WatchlistChange) -> Result<Self, Self::Error> {
        let owner =
            AgencyId::new(c.owner).map_err(|err| ValidationError::new("owner", err.to_string()))?;
        if c.seq == 0 {
            return invalid("seq", "sequence numbers start at 1");
        }
        let authored_at = time_field("authored_at", c.authored_at)?
            .ok_or_else(|| ValidationError::new("authored_at", "is required"))?;
        let kind = match c.change {
            None => return invalid("change", "a change must be a put, a removal or a stub"),
            Some(pb::watchlist_change::Change::Put(e)) => {
                let entry = Entry::try_from(e).map_err(|err| {
                    ValidationError::new(format!("put.{}", err.field), err.problem)
                })?;
                if entry.owner != owner {
                    return invalid(
                        "put.owner",
                        format!("{} is not the change's owner {owner}", entry.owner),
                    );
                }
                ChangeKind::Put(Box::new(entry))
            }
            Some(pb::watchlist_change::Change::Removed(r)) => {
                check_text("removed.ref", &r.r#ref, MAX_REF_BYTES)?;
                ChangeKind::Removed {
                    reference: r.r#ref,
                    reason: RemovalReason::from_wire(r.reason)?,
                }
            }
            Some(pb::watchlist_change::Change::Stub(_)) => ChangeKind::Stub,
        };
        Ok(Change {
            owner,
            seq: c.seq,
            authored_at,
            kind,
        })
    }
}

impl From<&Change> for pb::WatchlistChange {
    fn from(c: &Change) -> Self {
        use pb::watchlist_change::Change as Wire;
        pb::WatchlistChange {
            owner: c.owner.to_string(),
            seq: c.seq,
            authored_at: Some(to_timestamp(c.authored_at)),
            change: Some(match &c.kind {
                ChangeKind::Put(e) => Wire::Put(pb::WatchlistEntry::from(e.as_ref())),
                ChangeKind::Removed { reference, reason } => Wire::Removed(pb::WatchlistRemoval {
                    r#ref: reference.clone(),
                    reason: reason.to_wire(),
                }),
                ChangeKind::Stub => Wire::Stub(pb::WatchlistStub {}),
            }),
        }
    }
}

/// Who reads a change of an entry, and how: those named now read it in
/// full; those named before but not now read a withdrawal; every other
/// agency reads a stub.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Audience {
    /// Read the change in full.
    pub full: Vec<AgencyId>,
    /// Read a withdrawal of the entry.
    pub withdrawn: Vec<AgencyId>,
}

impl Audience {
    /// An entry put, releasable before to `before` (nobody if new).
    pub fn of_put(before: &[AgencyId], entry: &Entry) -> Self {
        Audience {
            full: entry.releasable_to.clone(),
            withdrawn: before
                .iter()
                .filter(|a| !entry.releasable_to.contains(a))
                .cloned()
                .collect(),
        }
    }

    /// An entry removed, releasable to `before`: they all read the removal.
    pub fn of_removal(before: &[AgencyId]) -> Self {
        Audience {
            full: before.to_vec(),
            withdrawn: Vec::new(),
        }
    }
}

fn routine() -> Precedence {
    Precedence::Routine
}

fn amber() -> Tlp {
    Tlp::Amber
}

/// An entry as an operator writes it: everything but the owner, which the
/// owner's node sets. One JSON object, for example
/// `{"ref": "W-1", "subject": {"person": {"names": ["Ana Ruiz"]}}, "reason": "...", "action": "DISCREET_CHECK", "releasable_to": ["FR-DGSI"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryDraft {
    /// The owner's reference.
    #[serde(rename = "ref")]
    pub reference: String,
    /// What a check matches against.
    pub subject: Subject,
    /// Why the subject is listed.
    pub reason: String,
    /// What to do on a hit.
    pub action: Action,
    /// The precedence of the hit report wanted; ROUTINE unless given.
    #[serde(default = "routine")]
    pub hit_precedence: Precedence,
    /// Handling label; AMBER unless given.
    #[serde(default = "amber")]
    pub tlp: Tlp,
    /// Agencies it is releasable to.
    #[serde(default)]
    pub releasable_to: Vec<String>,
    /// When the owner will review it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_at: Option<DateTime<Utc>>,
    /// When it lapses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// A hit threshold stricter than the screening default, in (0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hit_threshold: Option<HitThreshold>,
}

impl EntryDraft {
    /// The wire form, owner left empty for the node to set.
    pub fn to_proto(&self) -> pb::WatchlistEntry {
        pb::WatchlistEntry {
            owner: String::new(),
            r#ref: self.reference.clone(),
            subject: Some(pb::Subject::from(&self.subject)),
            reason: self.reason.clone(),
            action: self.action.to_wire(),
            hit_precedence: self.hit_precedence.to_wire(),
            tlp: self.tlp.to_wire(),
            releasable_to: self.releasable_to.clone(),
            review_at: self.review_at.map(to_timestamp),
            expires_at: self.expires_at.map(to_timestamp),
            hit_threshold: self.hit_threshold.map_or(0.0, HitThreshold::get),
        }
    }

    /// Validates the draft as `owner`'s entry, as the node will.
    pub fn check(&self, owner: &AgencyId) -> Result<Entry, ValidationError> {
        let mut wire = self.to_proto();
        wire.owner = owner.to_string();
        Entry::try_from(wire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Person;

    fn owner() -> AgencyId {
        AgencyId::new("TR-MIT").unwrap()
    }

    fn draft() -> EntryDraft {
        serde_json::from_str(
            r#"{"ref": "W-1", "subject": {"person": {"names": ["Ana Ruiz"], "date_of_birth": "1990-02-03"}},
                "reason": "wanted for questioning", "action": "INQUIRY_CHECK", "releasable_to": ["FR-DGSI"]}"#,
        )
        .unwrap()
    }

    #[test]
    fn a_draft_becomes_an_entry_and_back() {
        let entry = draft().check(&owner()).unwrap();
        assert_eq!(entry.action, Action::InquiryCheck);
        assert_eq!(entry.hit_precedence, Precedence::Routine);
        assert_eq!(
            Entry::try_from(pb::WatchlistEntry::from(&entry)).unwrap(),
            entry
        );
    }

    #[test]
    fn an_entry_with_nothing_to_match_is_refused_naming_the_field() {
        let mut d = draft();
        d.subject = Subject::Person(Person::default());
        let e = d.check(&owner()).unwrap_err();
        assert_eq!(e.field, "subject.person.names");
        d.subject = Subject::Identifier {
            kind: "phone".into(),
            value: " ".into(),
        };
        assert_eq!(
            d.check(&owner()).unwrap_err().field,
            "subject.identifier.value"
        );
        let mut wire = draft().to_proto();
        wire.owner = "TR-MIT".into();
        wire.subject = None;
        assert_eq!(Entry::try_from(wire).unwrap_err().field, "subject");
    }

    #[test]
    fn an_entry_cannot_name_its_owner_or_an_agency_twice() {
        let mut d = draft();
        d.releasable_to = vec!["TR-MIT".into()];
        assert_eq!(d.check(&owner()).unwrap_err().field, "releasable_to[0]");
        d.releasable_to = vec!["FR-DGSI".into(), "FR-DGSI".into()];
        assert_eq!(d.check(&owner()).unwrap_err().field, "releasable_to[1]");
    }

    #[test]
    fn narrowing_withdraws_from_those_no_longer_named() {
        let fr = AgencyId::new("FR-DGSI").unwrap();
        let de = AgencyId::new("DE-BKA").unwrap();
        let entry = draft().check(&owner()).unwrap();
        let audience = Audience::of_put(&[fr.clone(), de.clone()], &entry);
        assert_eq!(audience.full, vec![fr.clone()]);
        assert_eq!(audience.withdrawn, vec![de]);
        assert_eq!(
            Audience::of_removal(std::slice::from_ref(&fr)).full,
            vec![fr]
        );
    }

    #[test]
    fn a_put_of_another_owners_entry_is_refused() {
        let entry = draft().check(&owner()).unwrap();
        let change = Change {
            owner: AgencyId::new("FR-DGSI").unwrap(),
            seq: 1,
            authored_at: Utc::now(),
            kind: ChangeKind::Put(Box::new(entry)),
        };
        let e = Change::try_from(pb::WatchlistChange::from(&change)).unwrap_err();
        assert_eq!(e.field, "put.owner");
    }
}
