//! The alert: what one agency tells others, validated.
//!
//! [`Alert`] is built from the wire type [`pb::Alert`] by `TryFrom`, which
//! checks every field and names the first bad one; [`AlertDraft`] is the
//! friendly, serde-readable form operators write in files and on the command
//! line.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use tocsin_proto::pb;

/// The generated enums under the names the `wire_enum!` declarations use.
mod wire {
    pub(super) use tocsin_proto::pb::reference::Kind as ReferenceKind;
    pub(super) use tocsin_proto::pb::{
        Disposition, InformationCredibility, Precedence, SourceReliability, Tlp,
    };
}

use crate::ids::{AgencyId, AlertId};
use crate::time::{from_timestamp, to_timestamp};

/// Longest free text an alert may carry, in bytes.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;
/// Most subjects one alert may name.
pub const MAX_SUBJECTS: usize = 64;
/// Most recipients one alert may name.
pub const MAX_RECIPIENTS: usize = 256;
/// Longest category, in bytes.
pub const MAX_CATEGORY_BYTES: usize = 64;
/// Longest single name, alias, document number or identifier, in bytes.
pub const MAX_FIELD_BYTES: usize = 256;
/// Most names, aliases, nationalities or documents on one person.
pub const MAX_LIST_ITEMS: usize = 32;
/// Most references to earlier alerts.
pub const MAX_REFERENCES: usize = 16;

/// A field that failed validation, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid field `{field}`: {problem}")]
pub struct ValidationError {
    /// The field's path, for example `subjects[0].person.names`.
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

impl ValidationError {
    /// A validation error on `field`.
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

pub(crate) fn invalid<T>(
    field: impl Into<String>,
    problem: impl Into<String>,
) -> Result<T, ValidationError> {
    Err(ValidationError::new(field, problem))
}

/// Declares a domain enum mirrored by a protobuf enum, with its text names.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])* $name:ident <=> $pb:ident, field $field:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $pbv:ident, $text:literal; )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            /// Every value, in order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The conventional text name.
            pub fn as_str(self) -> &'static str {
                match self { $( $name::$variant => $text, )+ }
            }

            /// From the wire value; unspecified or unknown values are refused.
            pub fn from_wire(value: i32) -> Result<Self, ValidationError> {
                match wire::$pb::try_from(value) {
                    $( Ok(wire::$pb::$pbv) => Ok($name::$variant), )+
                    _ => invalid($field, format!(
                        "missing or unknown value {value}; expected one of {}",
                        [$($text),+].join(", ")
                    )),
                }
            }

            /// The wire value.
            pub fn to_wire(self) -> i32 {
                match self { $( $name::$variant => wire::$pb::$pbv as i32, )+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ValidationError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let upper = s.trim().to_ascii_uppercase();
                let wanted = upper.strip_prefix("TLP:").unwrap_or(&upper);
                // Lenient about separators: AMBER_STRICT, no-action.
                let forms = [wanted.to_owned(), wanted.replace('_', "+"), wanted.replace('-', "_")];
                $( if forms.iter().any(|f| f == $text) {
                    return Ok($name::$variant);
                } )+
                invalid($field, format!(
                    "unknown value {s:?}; expected one of {}",
                    [$($text),+].join(", ")
                ))
            }
        }
    };
}

/// For the other domain modules' enums (`watchlist`).
pub(crate) use wire_enum;

wire_enum! {
    /// How fast the recipient must act (ACP 121/127 precedence), most urgent first.
    Precedence <=> Precedence, field "precedence" {
        /// Act at once; minutes count.
        Flash = Flash, "FLASH";
        /// Act within the hour.
        Immediate = Immediate, "IMMEDIATE";
        /// Act within the working day.
        Priority = Priority, "PRIORITY";
        /// Act in the normal course of business.
        Routine = Routine, "ROUTINE";
    }
}

wire_enum! {
    /// FIRST TLP 2.0 handling label.
    Tlp <=> Tlp, field "tlp" {
        /// No limit on disclosure.
        Clear = Clear, "CLEAR";
        /// The recipient's community.
        Green = Green, "GREEN";
        /// The recipient's organisation and its clients, need to know.
        Amber = Amber, "AMBER";
        /// The recipient's organisation only.
        AmberStrict = AmberStrict, "AMBER+STRICT";
        /// The named recipients only.
        Red = Red, "RED";
    }
}

wire_enum! {
    /// Admiralty code source reliability.
    SourceReliability <=> SourceReliability, field "source_reliability" {
        /// Completely reliable.
        A = A, "A";
        /// Usually reliable.
        B = B, "B";
        /// Fairly reliable.
        C = C, "C";
        /// Not usually reliable.
        D = D, "D";
        /// Unreliable.
        E = E, "E";
        /// Reliability cannot be judged.
        F = F, "F";
    }
}

wire_enum! {
    /// Admiralty code information credibility.
    InformationCredibility <=> InformationCredibility, field "information_credibility" {
        /// Confirmed by other sources.
        C1 = InformationCredibility1, "1";
        /// Probably true.
        C2 = InformationCredibility2, "2";
        /// Possibly true.
        C3 = InformationCredibility3, "3";
        /// Doubtful.
        C4 = InformationCredibility4, "4";
        /// Improbable.
        C5 = InformationCredibility5, "5";
        /// Truth cannot be judged.
        C6 = InformationCredibility6, "6";
    }
}

wire_enum! {
    /// How an alert relates to an earlier one (CAP 1.2 message types).
    ReferenceKind <=> ReferenceKind, field "references.kind" {
        /// Adds to or corrects the earlier alert.
        Update = Update, "UPDATE";
        /// Withdraws the earlier alert.
        Cancel = Cancel, "CANCEL";
        /// Replaces the earlier alert.
        Supersede = Supersede, "SUPERSEDE";
    }
}

wire_enum! {
    /// What a recipient decided about an alert.
    Disposition <=> Disposition, field "disposition" {
        /// Acted on it.
        Actioned = Actioned, "ACTIONED";
        /// Read and recorded; no action now.
        Noted = Noted, "NOTED";
        /// Assessed; no action warranted.
        NoAction = NoAction, "NO_ACTION";
        /// Needs more information from the originator.
        NeedsInfo = NeedsInfo, "NEEDS_INFO";
        /// Will not handle it.
        Declined = Declined, "DECLINED";
    }
}

/// An identity or travel document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    /// For example `passport`.
    pub kind: String,
    /// The number as printed.
    pub number: String,
    /// Issuing country code, if known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub issuing_country: String,
}

/// A person an alert is about.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Person {
    /// Full names.
    #[serde(default)]
    pub names: Vec<String>,
    /// Other names used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Date of birth, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<NaiveDate>,
    /// Country codes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nationalities: Vec<String>,
    /// Identity and travel documents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub documents: Vec<Document>,
}

/// What an alert is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Subject {
    /// A person.
    Person(Person),
    /// Another entity, by a typed identifier.
    Identifier {
        /// For example `phone`.
        kind: String,
        /// For example `+33 6 12 34 56 78`.
        value: String,
    },
}

impl Subject {
    /// A one-line description for listings.
    pub fn label(&self) -> String {
        match self {
            Subject::Person(p) => {
                let name = p.names.first().map(String::as_str).unwrap_or("(unnamed)");
                match p.date_of_birth {
                    Some(dob) => format!("{name} (b. {dob})"),
                    None => name.to_owned(),
                }
            }
            Subject::Identifier { kind, value } => format!("{kind} {value}"),
        }
    }
}

/// A reference to an earlier alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    /// The earlier alert.
    #[serde(with = "alert_id_text")]
    pub alert_id: AlertId,
    /// How this alert relates to it.
    pub kind: ReferenceKind,
}

/// A validated alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// Unique id (ULID).
    pub id: AlertId,
    /// The sending agency.
    pub originator: AgencyId,
    /// When the originating node accepted it.
    pub created_at: DateTime<Utc>,
    /// Urgency.
    pub precedence: Precedence,
    /// Short category.
    pub category: String,
    /// At least one subject.
    pub subjects: Vec<Subject>,
    /// Free text.
    pub text: String,
    /// Admiralty source reliability.
    pub source_reliability: SourceReliability,
    /// Admiralty information credibility.
    pub information_credibility: InformationCredibility,
    /// Handling label.
    pub tlp: Tlp,
    /// The agencies it is releasable to, in the order given, without duplicates.
    pub recipients: Vec<AgencyId>,
    /// Earlier alerts this one updates, cancels or supersedes.
    pub references: Vec<Reference>,
    /// When it stops being relevant.
    pub expires_at: Option<DateTime<Utc>>,
    /// An acknowledgement deadline earlier than the precedence's default.
    pub respond_by: Option<DateTime<Utc>>,
    /// Set when the alert is a hit report on the recipient's watchlist entry.
    pub hit: Option<crate::hit::Hit>,
}

impl Alert {
    /// Checks what depends on the time of submission: the expiry and the
    /// requested deadline must not lie before `now`.
    pub fn check_timely(&self, now: DateTime<Utc>) -> Result<(), ValidationError> {
        if let Some(exp) = self.expires_at
            && exp <= now
        {
            return invalid("expires_at", format!("{exp} is in the past"));
        }
        if let Some(by) = self.respond_by
            && by <= now
        {
            return invalid("respond_by", format!("{by} is in the past"));
        }
        Ok(())
    }

    /// Whether `agency` is among the recipients.
    pub fn is_releasable_to(&self, agency: &AgencyId) -> bool {
        self.recipients.contains(agency)
    }

    /// A one-line summary of the subjects, for listings.
    pub fn subjects_label(&self) -> String {
        let mut labels: Vec<String> = self.subjects.iter().take(2).map(Subject::label).collect();
        if self.subjects.len() > 2 {
            labels.push(format!("+{} more", self.subjects.len() - 2));
        }
        labels.join("; ")
    }
}

pub(crate) fn check_text(field: &str, value: &str, max: usize) -> Result<(), ValidationError> {
    if value.trim().is_empty() {
        return invalid(field, "must not be empty");
    }
    if value.len() > max {
        return invalid(
            field,
            format!("{} bytes, at most {max} allowed", value.len()),
        );
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return invalid(field, "contains control characters");
    }
    Ok(())
}

fn check_list(field: &str, values: &[String]) -> Result<(), ValidationError> {
    if values.len() > MAX_LIST_ITEMS {
        return invalid(
            field,
            format!("{} items, at most {MAX_LIST_ITEMS} allowed", values.len()),
        );
    }
    for (i, v) in values.iter().enumerate() {
        check_text(&format!("{field}[{i}]"), v, MAX_FIELD_BYTES)?;
    }
    Ok(())
}

pub(crate) fn time_field(
    field: &str,
    ts: Option<prost_types::Timestamp>,
) -> Result<Option<DateTime<Utc>>, ValidationError> {
    match ts {
        None => Ok(None),
        Some(ts) => from_timestamp(&ts)
            .map(Some)
            .ok_or_else(|| ValidationError::new(field, "timestamp out of range")),
    }
}

impl TryFrom<pb::Person> for Person {
    type Error = ValidationError;
    fn try_from(p: pb::Person) -> Result<Self, Self::Error> {
        // Field paths are relative; the caller prefixes them.
        check_list("names", &p.names)?;
        check_list("aliases", &p.aliases)?;
        check_list("nationalities", &p.nationalities)?;
        if p.documents.len() > MAX_LIST_ITEMS {
            return invalid("documents", format!("at most {MAX_LIST_ITEMS} allowed"));
        }
        let mut documents = Vec::with_capacity(p.documents.len());
        for (i, d) in p.documents.into_iter().enumerate() {
            check_text(&format!("documents[{i}].kind"), &d.kind, MAX_FIELD_BYTES)?;
            check_text(
                &format!("documents[{i}].number"),
                &d.number,
                MAX_FIELD_BYTES,
            )?;
            if !d.issuing_country.is_empty() {
                check_text(
                    &format!("documents[{i}].issuing_country"),
                    &d.issuing_country,
                    8,
                )?;
            }
            documents.push(Document {
                kind: d.kind,
                number: d.number,
                issuing_country: d.issuing_country,
            });
        }
        if p.names.is_empty() && documents.is_empty() {
            return invalid("names", "a person needs at least one name or one document");
        }
        let date_of_birth = if p.date_of_birth.is_empty() {
            None
        } else {
            Some(
                NaiveDate::parse_from_str(&p.date_of_birth, "%Y-%m-%d").map_err(|_| {
                    ValidationError::new(
                        "date_of_birth",
                        format!("{:?} is not a date (YYYY-MM-DD)", p.date_of_birth),
                    )
                })?,
            )
        };
        Ok(Person {
            names: p.names,
            aliases: p.aliases,
            date_of_birth,
            nationalities: p.nationalities,
            documents,
        })
    }
}

impl TryFrom<pb::Subject> for Subject {
    type Error = ValidationError;
    fn try_from(s: pb::Subject) -> Result<Self, Self::Error> {
        match s.kind {
            Some(pb::subject::Kind::Person(p)) => Person::try_from(p)
                .map(Subject::Person)
                .map_err(|e| ValidationError::new(format!("person.{}", e.field), e.problem)),
            Some(pb::subject::Kind::Identifier(id)) => {
                check_text("identifier.kind", &id.kind, MAX_FIELD_BYTES)?;
                check_text("identifier.value", &id.value, MAX_FIELD_BYTES)?;
                Ok(Subject::Identifier {
                    kind: id.kind,
                    value: id.value,
                })
            }
            None => invalid("kind", "a subject must be a person or an identifier"),
        }
    }
}

impl TryFrom<pb::Alert> for Alert {
    type Error = ValidationError;

    fn try_from(a: pb::Alert) -> Result<Self, Self::Error> {
        let id: AlertId =
            a.id.parse()
                .map_err(|e: crate::ids::IdError| ValidationError::new("id", e.to_string()))?;
        let originator = AgencyId::new(a.originator)
            .map_err(|e| ValidationError::new("originator", e.to_string()))?;
        let created_at = time_field("created_at", a.created_at)?
            .ok_or_else(|| ValidationError::new("created_at", "is required"))?;
        let precedence = Precedence::from_wire(a.precedence)?;
        check_text("category", &a.category, MAX_CATEGORY_BYTES)?;
        if a.subjects.is_empty() {
            return invalid("subjects", "at least one subject is required");
        }
        if a.subjects.len() > MAX_SUBJECTS {
            return invalid(
                "subjects",
                format!(
                    "{} subjects, at most {MAX_SUBJECTS} allowed",
                    a.subjects.len()
                ),
            );
        }
        let subjects = a
            .subjects
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                Subject::try_from(s).map_err(|e| {
                    ValidationError::new(format!("subjects[{i}].{}", e.field), e.problem)
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        check_text("text", &a.text, MAX_TEXT_BYTES)?;
        let source_reliability = SourceReliability::from_wire(a.source_reliability)?;
        let information_credibility = InformationCredibility::from_wire(a.information_credibility)?;
        let tlp = Tlp::from_wire(a.tlp)?;
        if a.recipients.is_empty() {
            return invalid("recipients", "at least one recipient is required");
        }
        if a.recipients.len() > MAX_RECIPIENTS {
            return invalid("recipients", format!("at most {MAX_RECIPIENTS} allowed"));
        }
        let mut seen = BTreeSet::new();
        let mut recipients = Vec::with_capacity(a.recipients.len());
        for (i, r) in a.recipients.into_iter().enumerate() {
            let r = AgencyId::new(r)
                .map_err(|e| ValidationError::new(format!("recipients[{i}]"), e.to_string()))?;
            if r == originator {
                return invalid(
                    format!("recipients[{i}]"),
                    "an agency cannot send an alert to itself",
                );
            }
            if !seen.insert(r.clone()) {
                return invalid(format!("recipients[{i}]"), format!("{r} is named twice"));
            }
            recipients.push(r);
        }
        if a.references.len() > MAX_REFERENCES {
            return invalid("references", format!("at most {MAX_REFERENCES} allowed"));
        }
        let references = a
            .references
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let alert_id = r.alert_id.parse().map_err(|e: crate::ids::IdError| {
                    ValidationError::new(format!("references[{i}].alert_id"), e.to_string())
                })?;
                if alert_id == id {
                    return invalid(
                        format!("references[{i}].alert_id"),
                        "an alert cannot reference itself",
                    );
                }
                let kind = ReferenceKind::from_wire(r.kind).map_err(|e| {
                    ValidationError::new(format!("references[{i}].kind"), e.problem)
                })?;
                Ok(Reference { alert_id, kind })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let expires_at = time_field("expires_at", a.expires_at)?;
        if let Some(exp) = expires_at
            && exp <= created_at
        {
            return invalid("expires_at", "must be after created_at");
        }
        let respond_by = time_field("respond_by", a.respond_by)?;
        if let Some(by) = respond_by
            && by <= created_at
        {
            return invalid("respond_by", "must be after created_at");
        }
        let hit = a
            .hit
            .map(|h| {
                crate::hit::Hit::try_from(h)
                    .map_err(|e| ValidationError::new(format!("hit.{}", e.field), e.problem))
            })
            .transpose()?;
        if hit.is_none() && a.category == crate::hit::HIT_CATEGORY {
            // Triage counts this category as a sighting: only a hit
            // report may carry it.
            return invalid(
                "category",
                format!(
                    "{:?} is the category of hit reports, which carry a `hit`",
                    crate::hit::HIT_CATEGORY
                ),
            );
        }
        if let Some(hit) = &hit {
            // A hit report goes to the entry's owner and no one else: the
            // evidence of a sighting is the owner's to share further.
            if recipients.len() != 1 || recipients[0] != hit.entry_owner {
                return invalid(
                    "recipients",
                    format!(
                        "a hit report goes to the entry's owner {} only",
                        hit.entry_owner
                    ),
                );
            }
            if a.category != crate::hit::HIT_CATEGORY {
                return invalid(
                    "category",
                    format!("a hit report's category is {:?}", crate::hit::HIT_CATEGORY),
                );
            }
            if !references.is_empty() {
                return invalid("references", "a hit report references no alert");
            }
        }
        Ok(Alert {
            id,
            originator,
            created_at,
            precedence,
            category: a.category,
            subjects,
            text: a.text,
            source_reliability,
            information_credibility,
            tlp,
            recipients,
            references,
            expires_at,
            respond_by,
            hit,
        })
    }
}

impl From<&Person> for pb::Person {
    fn from(p: &Person) -> Self {
        pb::Person {
            names: p.names.clone(),
            aliases: p.aliases.clone(),
            date_of_birth: p
                .date_of_birth
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_default(),
            nationalities: p.nationalities.clone(),
            documents: p
                .documents
                .iter()
                .map(|d| pb::Document {
                    kind: d.kind.clone(),
                    number: d.number.clone(),
                    issuing_country: d.issuing_country.clone(),
                })
                .collect(),
        }
    }
}

impl From<&Subject> for pb::Subject {
    fn from(s: &Subject) -> Self {
        let kind = match s {
            Subject::Person(p) => pb::subject::Kind::Person(pb::Person::from(p)),
            Subject::Identifier { kind, value } => pb::subject::Kind::Identifier(pb::Identifier {
                kind: kind.clone(),
                value: value.clone(),
            }),
        };
        pb::Subject { kind: Some(kind) }
    }
}

impl From<&Alert> for pb::Alert {
    fn from(a: &Alert) -> Self {
        pb::Alert {
            id: a.id.to_string(),
            originator: a.originator.to_string(),
            created_at: Some(to_timestamp(a.created_at)),
            precedence: a.precedence.to_wire(),
            category: a.category.clone(),
            subjects: a.subjects.iter().map(pb::Subject::from).collect(),
            text: a.text.clone(),
            source_reliability: a.source_reliability.to_wire(),
            information_credibility: a.information_credibility.to_wire(),
            tlp: a.tlp.to_wire(),
            recipients: a.recipients.iter().map(ToString::to_string).collect(),
            references: a
                .references
                .iter()
                .map(|r| pb::Reference {
                    alert_id: r.alert_id.to_string(),
                    kind: r.kind.to_wire(),
                })
                .collect(),
            expires_at: a.expires_at.map(to_timestamp),
            respond_by: a.respond_by.map(to_timestamp),
            hit: a.hit.as_ref().map(pb::WatchlistHit::from),
        }
    }
}

/// An alert as an operator writes it: everything but the id, originator and
/// creation time, which the originating node sets. Reads from TOML or JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertDraft {
    /// Optional client-chosen id, for idempotent resubmission.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_alert_id_text"
    )]
    pub id: Option<AlertId>,
    /// Urgency.
    pub precedence: Precedence,
    /// Short category.
    pub category: String,
    /// Recipients.
    pub recipients: Vec<AgencyId>,
    /// Subjects.
    pub subjects: Vec<Subject>,
    /// Free text.
    pub text: String,
    /// Admiralty source reliability (default F, cannot be judged).
    #[serde(default = "default_reliability")]
    pub source_reliability: SourceReliability,
    /// Admiralty information credibility (default 6, cannot be judged).
    #[serde(default = "default_credibility")]
    pub information_credibility: InformationCredibility,
    /// Handling label (default AMBER).
    #[serde(default = "default_tlp")]
    pub tlp: Tlp,
    /// Earlier alerts referenced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
    /// Expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Requested acknowledgement deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub respond_by: Option<DateTime<Utc>>,
}

fn default_reliability() -> SourceReliability {
    SourceReliability::F
}
fn default_credibility() -> InformationCredibility {
    InformationCredibility::C6
}
fn default_tlp() -> Tlp {
    Tlp::Amber
}

impl AlertDraft {
    /// The wire form for `SubmitAlert`: id (if any) set, originator and
    /// creation time left for the node.
    pub fn to_proto(&self) -> pb::Alert {
        pb::Alert {
            id: self.id.map(|i| i.to_string()).unwrap_or_default(),
            originator: String::new(),
            created_at: None,
            precedence: self.precedence.to_wire(),
            category: self.category.clone(),
            subjects: self.subjects.iter().map(pb::Subject::from).collect(),
            text: self.text.clone(),
            source_reliability: self.source_reliability.to_wire(),
            information_credibility: self.information_credibility.to_wire(),
            tlp: self.tlp.to_wire(),
            recipients: self.recipients.iter().map(ToString::to_string).collect(),
            references: self
                .references
                .iter()
                .map(|r| pb::Reference {
                    alert_id: r.alert_id.to_string(),
                    kind: r.kind.to_wire(),
                })
                .collect(),
            expires_at: self.expires_at.map(to_timestamp),
            respond_by: self.respond_by.map(to_timestamp),
            hit: None,
        }
    }
}

mod alert_id_text {
    use super::AlertId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(id: &AlertId, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(id)
    }
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<AlertId, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

mod opt_alert_id_text {
    use super::AlertId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(id: &Option<AlertId>, s: S) -> Result<S::Ok, S::Error> {
        match id {
            Some(id) => s.collect_str(id),
            None => s.serialize_none(),
        }
    }
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<AlertId>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| s.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// What a cancel says when no note is given.
pub const DEFAULT_CANCEL_NOTE: &str = "Cancelled: stand down.";

/// The cancel of `original` (whose id is `id`), saying `note`, ready to
/// submit: it goes to the same recipients, about the same subjects, at the
/// same precedence, so it reaches whoever acted on the original. Its id,
/// originator and times are cleared for the node to set.
pub fn cancel_of(mut original: pb::Alert, id: &str, note: &str) -> pb::Alert {
    original.id = String::new();
    original.originator = String::new();
    original.created_at = None;
    original.expires_at = None;
    original.respond_by = None;
    original.text = note.to_owned();
    original.references = vec![pb::Reference {
        alert_id: id.to_owned(),
        kind: pb::reference::Kind::Cancel as i32,
    }];
    original
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> pb::Alert {
        pb::Alert {
            id: AlertId::generate().to_string(),
            originator: "TR-MIT".into(),
            created_at: Some(to_timestamp(Utc::now())),
            precedence: Precedence::Priority.to_wire(),
            category: "terrorism".into(),
            subjects: vec![pb::Subject {
                kind: Some(pb::subject::Kind::Person(pb::Person {
                    names: vec!["Ömer Mostefaï".into()],
                    date_of_birth: "1985-11-21".into(),
                    ..Default::default()
                })),
            }],
            text: "Subject linked to a terrorist cell.".into(),
            source_reliability: SourceReliability::B.to_wire(),
            information_credibility: InformationCredibility::C2.to_wire(),
            tlp: Tlp::Amber.to_wire(),
            recipients: vec!["FR-DGSI".into()],
            ..Default::default()
        }
    }

    #[test]
    fn a_valid_alert_round_trips() {
        let wire = valid();
        let alert = Alert::try_from(wire.clone()).unwrap();
        assert_eq!(pb::Alert::from(&alert), wire);
    }

    fn field_of(a: pb::Alert) -> String {
        Alert::try_from(a).unwrap_err().field
    }

    #[test]
    fn each_bad_field_is_named() {
        let mut a = valid();
        a.subjects.clear();
        assert_eq!(field_of(a), "subjects");

        let mut a = valid();
        a.precedence = 0;
        assert_eq!(field_of(a), "precedence");

        let mut a = valid();
        a.precedence = 99;
        assert_eq!(field_of(a), "precedence");

        let mut a = valid();
        a.text = "x".repeat(MAX_TEXT_BYTES + 1);
        assert_eq!(field_of(a), "text");

        let mut a = valid();
        a.recipients = vec!["TR-MIT".into()];
        assert_eq!(field_of(a), "recipients[0]");

        let mut a = valid();
        a.recipients = vec!["FR-DGSI".into(), "FR-DGSI".into()];
        assert_eq!(field_of(a), "recipients[1]");

        let mut a = valid();
        a.subjects[0] = pb::Subject {
            kind: Some(pb::subject::Kind::Person(pb::Person {
                names: vec!["X".into()],
                date_of_birth: "21/11/1985".into(),
                ..Default::default()
            })),
        };
        assert_eq!(field_of(a), "subjects[0].person.date_of_birth");

        let mut a = valid();
        a.id = "not-a-ulid".into();
        assert_eq!(field_of(a), "id");
    }

    #[test]
    fn expiry_in_the_past_is_refused_at_submission() {
        let mut a = valid();
        let created = Utc::now();
        a.created_at = Some(to_timestamp(created));
        a.expires_at = Some(to_timestamp(created + chrono::Duration::hours(1)));
        let alert = Alert::try_from(a).unwrap();
        assert!(alert.check_timely(created).is_ok());
        let err = alert
            .check_timely(created + chrono::Duration::hours(2))
            .unwrap_err();
        assert_eq!(err.field, "expires_at");
    }

    #[test]
    fn enum_names_parse_leniently() {
        assert_eq!("flash".parse::<Precedence>().unwrap(), Precedence::Flash);
        assert_eq!("TLP:AMBER+STRICT".parse::<Tlp>().unwrap(), Tlp::AmberStrict);
        assert_eq!("amber_strict".parse::<Tlp>().unwrap(), Tlp::AmberStrict);
        assert!("URGENT".parse::<Precedence>().is_err());
        assert_eq!(
            "no_action".parse::<Disposition>().unwrap(),
            Disposition::NoAction
        );
        assert_eq!(
            "needs-info".parse::<Disposition>().unwrap(),
            Disposition::NeedsInfo
        );
    }

    #[test]
    fn drafts_read_from_toml() {
        let draft: AlertDraft = toml::from_str(
            r#"
            precedence = "IMMEDIATE"
            category = "terrorism"
            recipients = ["FR-DGSI", "BE-VSSE"]
            text = "Attacks imminent."
            [[subjects]]
            person = { names = ["A B"], date_of_birth = "1990-01-02" }
            [[subjects]]
            identifier = { kind = "phone", value = "+33 6 00 00 00 00" }
            "#,
        )
        .unwrap();
        assert_eq!(draft.tlp, Tlp::Amber);
        assert_eq!(draft.subjects.len(), 2);
        let mut wire = draft.to_proto();
        wire.id = AlertId::generate().to_string();
        wire.originator = "IQ-INIS".into();
        wire.created_at = Some(to_timestamp(Utc::now()));
        assert!(Alert::try_from(wire).is_ok());
    }
}
