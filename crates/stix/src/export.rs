//! An agency's records as one STIX 2.1 bundle.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use tocsin_core::alert::{Subject, Tlp};
use tocsin_core::hit::Hit;
use tocsin_core::watchlist::Entry;
use tocsin_core::{AgencyId, Alert, FederationId};

use crate::ids::{self, timestamp};
use crate::markings::{confidence, stricter, tlp_definition, tlp_id};
use crate::props::{self, put, put_subject};

/// A watchlist entry as the node holds it: the version and when it was
/// made, which become the STIX object's `modified`.
#[derive(Debug, Clone)]
pub struct HeldEntry {
    /// The entry.
    pub entry: Entry,
    /// Its place in the owner's log.
    pub seq: u64,
    /// When the owner made this version.
    pub changed_at: DateTime<Utc>,
}

/// What one agency exports.
#[derive(Debug, Clone, Copy)]
pub struct Export<'a> {
    /// The federation the agency belongs to.
    pub federation: &'a FederationId,
    /// The exporting agency.
    pub agency: &'a AgencyId,
    /// Its alerts, sent and received; hit reports among them.
    pub alerts: &'a [Alert],
    /// The watchlist entries it holds, its own and others'.
    pub entries: &'a [HeldEntry],
}

/// The bundle: a JSON object ready to write. The objects come in a fixed
/// order (definitions, agencies, subjects, entries, reports, sightings,
/// each sorted by id), so the same records give the same bytes.
pub fn export(e: &Export<'_>) -> Value {
    let mut b = Builder::new(e.federation);
    b.agency(e.agency);
    for held in e.entries {
        b.entry(held, e.agency);
    }
    for alert in e.alerts {
        match &alert.hit {
            Some(hit) => b.sighting(alert, hit),
            None => b.report(alert),
        }
    }
    b.finish(e.agency)
}

/// A score as the decimal it was written as (0.97, not the f32's
/// 0.9700000286102295), which reads back as the same f32.
fn decimal(score: f32) -> f64 {
    score.to_string().parse().unwrap_or(f64::from(score))
}

/// A subject identity seen in one or more alerts of one originator.
struct SeenSubject {
    subject: Subject,
    originator: AgencyId,
    first: DateTime<Utc>,
    tlp: Tlp,
}

struct Builder<'a> {
    federation: &'a FederationId,
    agencies: BTreeMap<String, AgencyId>,
    subjects: BTreeMap<String, SeenSubject>,
    entries: BTreeMap<String, Value>,
    reports: BTreeMap<String, Value>,
    sightings: BTreeMap<String, Value>,
    tlps: Vec<Tlp>,
}

impl<'a> Builder<'a> {
    fn new(federation: &'a FederationId) -> Self {
        Builder {
            federation,
            agencies: BTreeMap::new(),
            subjects: BTreeMap::new(),
            entries: BTreeMap::new(),
            reports: BTreeMap::new(),
            sightings: BTreeMap::new(),
            tlps: Vec::new(),
        }
    }

    /// The id of `agency`'s identity, which the bundle will hold.
    fn agency(&mut self, agency: &AgencyId) -> String {
        let id = ids::agency(self.federation, agency);
        self.agencies.insert(id.clone(), agency.clone());
        id
    }

    fn marking(&mut self, tlp: Tlp) -> Value {
        if !self.tlps.contains(&tlp) {
            self.tlps.push(tlp);
        }
        json!([tlp_id(tlp)])
    }

    /// The common properties of an object `creator` wrote.
    fn base(
        &mut self,
        kind: &str,
        id: &str,
        creator: &AgencyId,
        created: DateTime<Utc>,
        modified: DateTime<Utc>,
        tlp: Tlp,
    ) -> Map<String, Value> {
        let mut o = Map::new();
        o.insert("type".into(), kind.into());
        o.insert("spec_version".into(), "2.1".into());
        o.insert("id".into(), id.into());
        o.insert("created_by_ref".into(), self.agency(creator).into());
        o.insert("created".into(), timestamp(created).into());
        o.insert("modified".into(), timestamp(modified).into());
        o.insert("object_marking_refs".into(), self.marking(tlp));
        o.insert("extensions".into(), props::uses_extension());
        o.insert(
            "x_tocsin_federation".into(),
            self.federation.to_string().into(),
        );
        o
    }

    fn entry(&mut self, held: &HeldEntry, exporter: &AgencyId) {
        let e = &held.entry;
        let id = ids::entry(self.federation, &e.owner, &e.reference);
        let mut o = self.base(
            "identity",
            &id,
            &e.owner,
            held.changed_at,
            held.changed_at,
            e.tlp,
        );
        put_subject(&mut o, &e.subject);
        put(&mut o, "description", e.reason.clone().into());
        let role = if &e.owner == exporter {
            props::ROLE_ENTRY
        } else {
            props::ROLE_HELD
        };
        o.insert("x_tocsin_role".into(), role.into());
        o.insert("x_tocsin_owner".into(), e.owner.to_string().into());
        o.insert("x_tocsin_ref".into(), e.reference.clone().into());
        o.insert("x_tocsin_entry_seq".into(), held.seq.into());
        o.insert("x_tocsin_action".into(), e.action.as_str().into());
        o.insert(
            "x_tocsin_hit_precedence".into(),
            e.hit_precedence.as_str().into(),
        );
        put(
            &mut o,
            "x_tocsin_releasable_to",
            json!(
                e.releasable_to
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
            ),
        );
        if let Some(t) = e.review_at {
            o.insert("x_tocsin_review_at".into(), timestamp(t).into());
        }
        if let Some(t) = e.expires_at {
            o.insert("x_tocsin_expires_at".into(), timestamp(t).into());
        }
        if let Some(t) = e.hit_threshold {
            o.insert("x_tocsin_hit_threshold".into(), json!(decimal(t.get())));
        }
        self.entries.insert(id, Value::Object(o));
    }

    /// What reports and sightings share: the alert's fields STIX has no
    /// property for, and its confidence.
    fn alert_fields(o: &mut Map<String, Value>, alert: &Alert) {
        put(o, "description", alert.text.clone().into());
        if let Some(c) = confidence(alert.information_credibility) {
            o.insert("confidence".into(), c.into());
        }
        o.insert("x_tocsin_alert_id".into(), alert.id.to_string().into());
        o.insert("x_tocsin_category".into(), alert.category.clone().into());
        o.insert(
            "x_tocsin_precedence".into(),
            alert.precedence.as_str().into(),
        );
        o.insert(
            "x_tocsin_source_reliability".into(),
            alert.source_reliability.as_str().into(),
        );
        o.insert(
            "x_tocsin_information_credibility".into(),
            alert.information_credibility.as_str().into(),
        );
        put(
            o,
            "x_tocsin_recipients",
            json!(
                alert
                    .recipients
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
            ),
        );
        put(
            o,
            "x_tocsin_references",
            serde_json::to_value(&alert.references).unwrap_or_default(),
        );
        if let Some(t) = alert.expires_at {
            o.insert("x_tocsin_expires_at".into(), timestamp(t).into());
        }
        if let Some(t) = alert.respond_by {
            o.insert("x_tocsin_respond_by".into(), timestamp(t).into());
        }
    }

    fn report(&mut self, alert: &Alert) {
        let id = ids::report(self.federation, &alert.id);
        let mut o = self.base(
            "report",
            &id,
            &alert.originator,
            alert.created_at,
            alert.created_at,
            alert.tlp,
        );
        o.insert(
            "name".into(),
            format!(
                "{} from {}: {}",
                alert.category,
                alert.originator,
                alert.subjects_label()
            )
            .into(),
        );
        o.insert("report_types".into(), json!(["identity"]));
        o.insert("published".into(), timestamp(alert.created_at).into());
        let mut refs = Vec::new();
        for subject in &alert.subjects {
            let sid = ids::subject(self.federation, &alert.originator, subject);
            let seen = self
                .subjects
                .entry(sid.clone())
                .or_insert_with(|| SeenSubject {
                    subject: subject.clone(),
                    originator: alert.originator.clone(),
                    first: alert.created_at,
                    tlp: alert.tlp,
                });
            seen.first = seen.first.min(alert.created_at);
            seen.tlp = stricter(seen.tlp, alert.tlp);
            if !refs.contains(&sid) {
                refs.push(sid);
            }
        }
        o.insert("object_refs".into(), json!(refs));
        Self::alert_fields(&mut o, alert);
        self.reports.insert(id, Value::Object(o));
    }

    fn sighting(&mut self, alert: &Alert, hit: &Hit) {
        let id = ids::sighting(self.federation, &alert.id);
        let mut o = self.base(
            "sighting",
            &id,
            &alert.originator,
            alert.created_at,
            alert.created_at,
            alert.tlp,
        );
        let seen = timestamp(hit.seen_at.unwrap_or(alert.created_at));
        o.insert(
            "sighting_of_ref".into(),
            ids::entry(self.federation, &hit.entry_owner, &hit.entry_ref).into(),
        );
        let reporter = self.agency(&alert.originator);
        o.insert("where_sighted_refs".into(), json!([reporter]));
        o.insert("first_seen".into(), seen.clone().into());
        o.insert("last_seen".into(), seen.into());
        o.insert("count".into(), 1.into());
        Self::alert_fields(&mut o, alert);
        o.insert(
            "x_tocsin_entry_owner".into(),
            hit.entry_owner.to_string().into(),
        );
        o.insert("x_tocsin_entry_ref".into(), hit.entry_ref.clone().into());
        o.insert("x_tocsin_entry_seq".into(), hit.entry_seq.into());
        if let Some(p) = &hit.screened {
            o.insert(
                "x_tocsin_screened".into(),
                serde_json::to_value(p).unwrap_or_default(),
            );
        }
        put(
            &mut o,
            "x_tocsin_screened_identifiers",
            json!(
                hit.screened_identifiers
                    .iter()
                    .map(|(kind, value)| json!({"kind": kind, "value": value}))
                    .collect::<Vec<_>>()
            ),
        );
        put(&mut o, "x_tocsin_seen_place", hit.seen_place.clone().into());
        put(&mut o, "x_tocsin_screen_ref", hit.screen_ref.clone().into());
        o.insert("x_tocsin_score".into(), json!(decimal(hit.score)));
        put(&mut o, "x_tocsin_reasons", json!(hit.reasons));
        put(
            &mut o,
            "x_tocsin_requested_action",
            hit.requested_action.clone().into(),
        );
        self.sightings.insert(id, Value::Object(o));
    }

    fn finish(mut self, exporter: &AgencyId) -> Value {
        let mut subjects = BTreeMap::new();
        for (id, seen) in std::mem::take(&mut self.subjects) {
            let mut o = self.base(
                "identity",
                &id,
                &seen.originator,
                seen.first,
                seen.first,
                seen.tlp,
            );
            put_subject(&mut o, &seen.subject);
            o.insert("x_tocsin_role".into(), props::ROLE_SUBJECT.into());
            subjects.insert(id, Value::Object(o));
        }
        let mut objects: Vec<Value> = props::definitions().into();
        self.tlps.sort();
        objects.extend(self.tlps.iter().map(|t| tlp_definition(*t)));
        for (id, agency) in &self.agencies {
            objects.push(json!({
                "type": "identity",
                "spec_version": "2.1",
                "id": id,
                // An agency speaks for itself: the same object in every
                // agency's export.
                "created_by_ref": id,
                "created": props::DEFINED,
                "modified": props::DEFINED,
                "name": agency.to_string(),
                "identity_class": "organization",
                "extensions": props::uses_extension(),
                "x_tocsin_federation": self.federation.to_string(),
            }));
        }
        objects.extend(subjects.into_values());
        objects.extend(self.entries.into_values());
        objects.extend(self.reports.into_values());
        objects.extend(self.sightings.into_values());
        let id = ids::bundle(
            exporter,
            objects.iter().map(|o| {
                (
                    o["id"].as_str().unwrap_or(""),
                    o.get("modified").and_then(Value::as_str),
                )
            }),
        );
        json!({ "type": "bundle", "id": id, "objects": objects })
    }
}
