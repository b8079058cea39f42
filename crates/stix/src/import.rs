//! STIX individuals as watchlist entries.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};
use tocsin_core::alert::{Document, Person, Precedence, Subject, Tlp};
use tocsin_core::watchlist::{Action, EntryDraft, HitThreshold};
use tocsin_core::{AgencyId, FederationId};

use crate::markings::{stricter, tlp_of};
use crate::props::{ROLE_HELD, ROLE_SUBJECT};

/// Why a bundle was refused; nothing of it is imported.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The text is not JSON.
    #[error("not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    /// JSON, but not a STIX bundle.
    #[error("not a STIX bundle: {0}")]
    NotABundle(String),
    /// One object is malformed.
    #[error("object {object}: {problem}")]
    Object {
        /// The object, by id and place: `identity--… (objects[3])`.
        object: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The bundle was written in another federation.
    #[error("object {object} belongs to federation {found}, not {expected}")]
    OtherFederation {
        /// The object, by id and place.
        object: String,
        /// Its `x_tocsin_federation`.
        found: String,
        /// The importer's federation.
        expected: FederationId,
    },
    /// No object to import.
    #[error(
        "the bundle holds no identity of an individual to import (alert subjects are not watchlist entries)"
    )]
    NoIndividuals,
}

/// An entry read from a bundle, with the object it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The STIX id of the object.
    pub object: String,
    /// The entry, for the importer to publish as its own.
    pub draft: EntryDraft,
}

/// The watchlist entries in the STIX bundle `text`, for `importer` of
/// `federation` to publish: every `identity` of an individual (and
/// every Tocsin entry about an identifier), in bundle order. Alert
/// subjects are left out. The first problem refuses the whole bundle.
pub fn import(
    text: &str,
    importer: &AgencyId,
    federation: &FederationId,
) -> Result<Vec<Imported>, Error> {
    let bundle: Value = serde_json::from_str(text)?;
    let Some(bundle) = bundle.as_object() else {
        return Err(Error::NotABundle(
            "the top level is not a JSON object".into(),
        ));
    };
    if bundle.get("type").and_then(Value::as_str) != Some("bundle") {
        return Err(Error::NotABundle("its \"type\" is not \"bundle\"".into()));
    }
    let Some(objects) = bundle.get("objects").and_then(Value::as_array) else {
        return Err(Error::NotABundle("it has no \"objects\" list".into()));
    };
    let mut out = Vec::new();
    let mut refs: BTreeMap<String, String> = BTreeMap::new();
    for (i, object) in objects.iter().enumerate() {
        let Some(o) = object.as_object() else {
            return Err(Error::Object {
                object: format!("objects[{i}]"),
                problem: "not a JSON object".into(),
            });
        };
        let (kind, id) = match (
            o.get("type").and_then(Value::as_str),
            o.get("id").and_then(Value::as_str),
        ) {
            (Some(kind), Some(id))
                if id.strip_prefix(kind).is_some_and(|r| r.starts_with("--")) =>
            {
                (kind, id)
            }
            _ => {
                return Err(Error::Object {
                    object: format!("objects[{i}]"),
                    problem: "needs a \"type\" and an \"id\" of the form TYPE--UUID".into(),
                });
            }
        };
        let name = format!("{id} (objects[{i}])");
        if let Some(found) = o.get("x_tocsin_federation").and_then(Value::as_str)
            && found != federation.as_str()
        {
            return Err(Error::OtherFederation {
                object: name,
                found: found.to_owned(),
                expected: federation.clone(),
            });
        }
        if kind != "identity" {
            continue;
        }
        let draft = match entry(o, id, importer) {
            Ok(Some(d)) => d,
            Ok(None) => continue,
            Err(problem) => {
                return Err(Error::Object {
                    object: name,
                    problem,
                });
            }
        };
        if let Some(first) = refs.insert(draft.reference.clone(), id.to_owned()) {
            return Err(Error::Object {
                object: name,
                problem: format!("its ref {:?} is also the ref of {first}", draft.reference),
            });
        }
        out.push(Imported {
            object: id.to_owned(),
            draft,
        });
    }
    if out.is_empty() {
        return Err(Error::NoIndividuals);
    }
    Ok(out)
}

type Problem = String;

/// The entry an identity object describes, if it is one to import.
fn entry(
    o: &Map<String, Value>,
    id: &str,
    importer: &AgencyId,
) -> Result<Option<EntryDraft>, Problem> {
    if let Some(v) = o.get("spec_version")
        && v.as_str() != Some("2.1")
    {
        return Err(format!("spec_version {v} is not \"2.1\""));
    }
    // An alert's subject is not an entry, and an entry the exporter held
    // from another owner is that owner's to share.
    if matches!(
        text(o, "x_tocsin_role")?.as_deref(),
        Some(ROLE_SUBJECT | ROLE_HELD)
    ) {
        return Ok(None);
    }
    let name = text(o, "name")?.ok_or("an identity needs a \"name\"")?;
    let subject = match o.get("identity_class").and_then(Value::as_str) {
        Some("individual") => Subject::Person(person(o, name)?),
        _ => match o.get("x_tocsin_identifier") {
            Some(v) => identifier(v)?,
            // Organisations, groups, systems: not a person to watch for.
            None => return Ok(None),
        },
    };
    let reason = text(o, "description")?
        .ok_or("needs a \"description\": the reason the subject is listed")?;
    let action = match text(o, "x_tocsin_action")? {
        Some(a) => a
            .parse::<Action>()
            .map_err(|e| format!("x_tocsin_action: {}", e.problem))?,
        // The least intrusive: a foreign bundle says nothing of what to do.
        None => Action::DiscreetCheck,
    };
    let hit_precedence = match text(o, "x_tocsin_hit_precedence")? {
        Some(p) => p
            .parse::<Precedence>()
            .map_err(|e| format!("x_tocsin_hit_precedence: {}", e.problem))?,
        None => Precedence::Routine,
    };
    Ok(Some(EntryDraft {
        reference: text(o, "x_tocsin_ref")?.unwrap_or_else(|| id.to_owned()),
        subject,
        reason,
        action,
        hit_precedence,
        tlp: tlp(o)?,
        // The importer owns its copy, and an owner holds its own entries.
        releasable_to: texts(o, "x_tocsin_releasable_to")?
            .into_iter()
            .filter(|a| a != importer.as_str())
            .collect(),
        review_at: time(o, "x_tocsin_review_at")?,
        expires_at: time(o, "x_tocsin_expires_at")?,
        hit_threshold: match o.get("x_tocsin_hit_threshold") {
            None => None,
            Some(v) => {
                let score = v.as_f64().ok_or("x_tocsin_hit_threshold: not a number")?;
                Some(
                    HitThreshold::new(score as f32)
                        .map_err(|e| format!("x_tocsin_hit_threshold: {}", e.problem))?,
                )
            }
        },
    }))
}

fn person(o: &Map<String, Value>, name: String) -> Result<Person, Problem> {
    let mut names = texts(o, "x_tocsin_names")?;
    if names.is_empty() {
        names.push(name);
    }
    let date_of_birth = match text(o, "x_tocsin_date_of_birth")? {
        None => None,
        Some(d) => Some(
            NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                .map_err(|e| format!("x_tocsin_date_of_birth {d:?}: {e}; expected YYYY-MM-DD"))?,
        ),
    };
    let documents = match o.get("x_tocsin_documents") {
        None => Vec::new(),
        Some(v) => serde_json::from_value::<Vec<Document>>(v.clone()).map_err(|e| {
            format!("x_tocsin_documents: {e}; expected a list of {{\"kind\", \"number\", \"issuing_country\"}}")
        })?,
    };
    Ok(Person {
        names,
        aliases: texts(o, "x_tocsin_aliases")?,
        date_of_birth,
        nationalities: texts(o, "x_tocsin_nationalities")?,
        documents,
    })
}

fn identifier(v: &Value) -> Result<Subject, Problem> {
    let field = |f: &str| {
        v.get(f)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("x_tocsin_identifier needs a string \"{f}\""))
    };
    Ok(Subject::Identifier {
        kind: field("kind")?,
        value: field("value")?,
    })
}

/// The strictest TLP among the object's markings; AMBER (Tocsin's
/// default for entries) if it has no marking at all. A marking Tocsin
/// does not know (another tool's TLP ids, PAP, a statement) or granular
/// markings count as RED: an import never loosens the handling a
/// bundle asked for.
fn tlp(o: &Map<String, Value>) -> Result<Tlp, Problem> {
    let mut found: Option<Tlp> = None;
    for id in texts(o, "object_marking_refs")? {
        let t = tlp_of(&id).unwrap_or(Tlp::Red);
        found = Some(found.map_or(t, |f| stricter(f, t)));
    }
    if o.contains_key("granular_markings") {
        found = Some(Tlp::Red);
    }
    Ok(found.unwrap_or(Tlp::Amber))
}

fn text(o: &Map<String, Value>, key: &str) -> Result<Option<String>, Problem> {
    match o.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("{key}: {other} is not a string")),
    }
}

fn texts(o: &Map<String, Value>, key: &str) -> Result<Vec<String>, Problem> {
    match o.get(key) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("{key}[{i}]: {v} is not a string"))
            })
            .collect(),
        Some(other) => Err(format!("{key}: {other} is not a list of strings")),
    }
}

fn time(o: &Map<String, Value>, key: &str) -> Result<Option<DateTime<Utc>>, Problem> {
    text(o, key)?
        .map(|t| {
            DateTime::parse_from_rfc3339(&t)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| format!("{key} {t:?}: {e}; expected a STIX timestamp"))
        })
        .transpose()
}
