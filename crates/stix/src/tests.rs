//! The mapping as a whole: an export's shape, its round trip through an
//! import at another agency, and the bundles an import refuses.

use chrono::{DateTime, Utc};
use serde_json::Value;
use tocsin_core::alert::{
    Document, InformationCredibility, Person, Precedence, SourceReliability, Subject, Tlp,
};
use tocsin_core::hit::Hit;
use tocsin_core::watchlist::{Action, EntryDraft, HitThreshold};
use tocsin_core::{AgencyId, Alert, AlertId, FederationId};

use crate::{Error, Export, HeldEntry, export, import};

fn at(t: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc)
}

fn agency(a: &str) -> AgencyId {
    AgencyId::new(a).unwrap()
}

fn fed() -> FederationId {
    FederationId::new("eu.tocsin").unwrap()
}

fn abdeslam() -> Person {
    Person {
        names: vec!["Salah Abdeslam".into(), "Salah ABDESLAM".into()],
        aliases: vec!["Abou Abderrahmane".into()],
        date_of_birth: Some("1989-09-15".parse().unwrap()),
        nationalities: vec!["FR".into(), "BE".into()],
        documents: vec![Document {
            kind: "passport".into(),
            number: "EH123456".into(),
            issuing_country: "BE".into(),
        }],
    }
}

fn drafts() -> Vec<EntryDraft> {
    vec![
        EntryDraft {
            reference: "BE-2015-017".into(),
            subject: Subject::Person(abdeslam()),
            reason: "wanted: Paris attacks".into(),
            action: Action::Arrest,
            hit_precedence: Precedence::Flash,
            tlp: Tlp::AmberStrict,
            releasable_to: vec!["FR-DGSI".into(), "DE-BKA".into()],
            review_at: Some(at("2016-01-01T00:00:00Z")),
            expires_at: Some(at("2030-01-01T00:00:00Z")),
            hit_threshold: Some(HitThreshold::new(0.9).unwrap()),
        },
        EntryDraft {
            reference: "BE-2015-018".into(),
            subject: Subject::Identifier {
                kind: "phone".into(),
                value: "+32 470 12 34 56".into(),
            },
            reason: "burner phone".into(),
            action: Action::DiscreetCheck,
            hit_precedence: Precedence::Routine,
            tlp: Tlp::Green,
            releasable_to: vec!["FR-DGSI".into()],
            review_at: None,
            expires_at: None,
            hit_threshold: None,
        },
    ]
}

fn held() -> Vec<HeldEntry> {
    drafts()
        .iter()
        .enumerate()
        .map(|(i, d)| HeldEntry {
            entry: d.check(&agency("BE-VSSE")).unwrap(),
            seq: i as u64 + 1,
            changed_at: at("2015-11-14T08:00:00.123Z"),
        })
        .collect()
}

fn warning() -> Alert {
    Alert {
        id: AlertId::generate(),
        originator: agency("BE-VSSE"),
        created_at: at("2015-11-14T09:00:00Z"),
        precedence: Precedence::Immediate,
        category: "terrorism".into(),
        subjects: vec![
            Subject::Person(abdeslam()),
            Subject::Identifier {
                kind: "plate".into(),
                value: "GJK-123".into(),
            },
        ],
        text: "Likely heading for the border.".into(),
        source_reliability: SourceReliability::B,
        information_credibility: InformationCredibility::C2,
        tlp: Tlp::Amber,
        recipients: vec![agency("FR-DGSI")],
        references: Vec::new(),
        expires_at: None,
        respond_by: Some(at("2015-11-14T10:00:00Z")),
        hit: None,
    }
}

fn hit_report() -> Alert {
    Alert {
        id: AlertId::generate(),
        originator: agency("FR-DGSI"),
        created_at: at("2015-11-14T09:30:00Z"),
        precedence: Precedence::Flash,
        category: tocsin_core::hit::HIT_CATEGORY.into(),
        subjects: vec![Subject::Person(Person {
            names: vec!["Salah Abdeslam".into()],
            ..Person::default()
        })],
        text: "Seen at a checkpoint.".into(),
        source_reliability: SourceReliability::A,
        information_credibility: InformationCredibility::C6,
        tlp: Tlp::Red,
        recipients: vec![agency("BE-VSSE")],
        references: Vec::new(),
        expires_at: None,
        respond_by: None,
        hit: Some(Hit {
            entry_owner: agency("BE-VSSE"),
            entry_ref: "BE-2015-017".into(),
            entry_seq: 1,
            screened: Some(Person {
                names: vec!["Salah Abdeslam".into()],
                ..Person::default()
            }),
            screened_identifiers: Vec::new(),
            seen_at: Some(at("2015-11-14T09:10:00Z")),
            seen_place: "A2 near Cambrai".into(),
            screen_ref: "check-7".into(),
            score: 0.97,
            reasons: vec!["names: SALAH ~ SALAH (exact)".into()],
            requested_action: "ARREST".into(),
        }),
    }
}

fn bundle(alerts: &[Alert], entries: &[HeldEntry]) -> Value {
    export(&Export {
        federation: &fed(),
        agency: &agency("BE-VSSE"),
        alerts,
        entries,
    })
}

fn of_type<'a>(b: &'a Value, kind: &str) -> Vec<&'a Value> {
    b["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["type"] == kind)
        .collect()
}

fn by_id<'a>(b: &'a Value, id: &Value) -> &'a Value {
    b["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == *id)
        .unwrap_or_else(|| panic!("no object {id}"))
}

#[test]
fn an_alert_is_a_report_about_identities_with_confidence_and_tlp() {
    let alert = warning();
    let b = bundle(std::slice::from_ref(&alert), &[]);
    assert_eq!(b["type"], "bundle");
    let reports = of_type(&b, "report");
    assert_eq!(reports.len(), 1);
    let r = reports[0];
    assert_eq!(r["x_tocsin_alert_id"], alert.id.to_string());
    assert_eq!(r["published"], "2015-11-14T09:00:00.000Z");
    assert_eq!(r["description"], "Likely heading for the border.");
    // Credibility 2 is 70 on the Admiralty Credibility scale; reliability
    // has no STIX scale and is kept beside it.
    assert_eq!(r["confidence"], 70);
    assert_eq!(r["x_tocsin_source_reliability"], "B");
    assert_eq!(r["x_tocsin_information_credibility"], "2");
    assert_eq!(r["x_tocsin_precedence"], "IMMEDIATE");
    assert_eq!(r["x_tocsin_respond_by"], "2015-11-14T10:00:00.000Z");
    assert_eq!(
        r["object_marking_refs"][0],
        "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
    );
    let originator = by_id(&b, &r["created_by_ref"]);
    assert_eq!(originator["identity_class"], "organization");
    assert_eq!(originator["name"], "BE-VSSE");
    let refs = r["object_refs"].as_array().unwrap();
    assert_eq!(refs.len(), 2);
    let person = by_id(&b, &refs[0]);
    assert_eq!(person["identity_class"], "individual");
    assert_eq!(person["name"], "Salah Abdeslam");
    assert_eq!(person["x_tocsin_date_of_birth"], "1989-09-15");
    assert_eq!(person["x_tocsin_role"], "alert-subject");
    let plate = by_id(&b, &refs[1]);
    assert_eq!(plate["identity_class"], "unknown");
    assert_eq!(plate["x_tocsin_identifier"]["value"], "GJK-123");
    // The marking definition is the official TLP 2.0 object.
    let markings = of_type(&b, "marking-definition");
    assert_eq!(markings.len(), 1);
    assert_eq!(markings[0]["name"], "TLP:AMBER");
}

#[test]
fn a_hit_report_is_a_sighting_of_the_entry_where_the_reporter_saw_it() {
    let hit = hit_report();
    let entries = held();
    let b = bundle(std::slice::from_ref(&hit), &entries);
    assert!(of_type(&b, "report").is_empty());
    let sightings = of_type(&b, "sighting");
    assert_eq!(sightings.len(), 1);
    let s = sightings[0];
    let entry = by_id(&b, &s["sighting_of_ref"]);
    assert_eq!(entry["x_tocsin_ref"], "BE-2015-017");
    let reporter = by_id(&b, &s["where_sighted_refs"][0]);
    assert_eq!(reporter["name"], "FR-DGSI");
    assert_eq!(s["created_by_ref"], reporter["id"]);
    assert_eq!(s["first_seen"], "2015-11-14T09:10:00.000Z");
    assert_eq!(s["last_seen"], s["first_seen"]);
    assert_eq!(s["count"], 1);
    assert_eq!(s["x_tocsin_seen_place"], "A2 near Cambrai");
    assert_eq!(s["x_tocsin_score"], 0.97);
    // Credibility 6 (truth cannot be judged) has no STIX confidence.
    assert!(s.get("confidence").is_none(), "{s}");
    assert_eq!(
        s["object_marking_refs"][0],
        "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"
    );
}

#[test]
fn every_object_names_its_creator_and_re_exports_are_identical() {
    let alerts = [warning(), hit_report()];
    let entries = held();
    let b = bundle(&alerts, &entries);
    let objects = b["objects"].as_array().unwrap();
    let ids: Vec<&str> = objects.iter().map(|o| o["id"].as_str().unwrap()).collect();
    for o in objects {
        if o["type"] == "marking-definition" {
            // The official TLP 2.0 objects carry no creator; copied as is.
            assert!(o.get("created_by_ref").is_none());
            continue;
        }
        let creator = o["created_by_ref"].as_str().expect("created_by_ref");
        assert!(ids.contains(&creator), "{creator} not in the bundle");
        for marking in o["object_marking_refs"].as_array().into_iter().flatten() {
            assert!(ids.contains(&marking.as_str().unwrap()), "{marking}");
        }
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "duplicate ids");
    assert_eq!(b, bundle(&alerts, &entries));
    assert_eq!(
        serde_json::to_string(&b).unwrap(),
        serde_json::to_string(&bundle(&alerts, &entries)).unwrap()
    );
}

#[test]
fn entries_round_trip_through_an_import_at_another_agency() {
    let b = bundle(&[warning(), hit_report()], &held());
    let text = serde_json::to_string_pretty(&b).unwrap();
    let imported = import(&text, &agency("FR-DGSI"), &fed()).unwrap();
    // Alert subjects are not entries: only the two entries come back.
    let mut got: Vec<EntryDraft> = imported.iter().map(|i| i.draft.clone()).collect();
    got.sort_by(|a, b| a.reference.cmp(&b.reference));
    let mut want = drafts();
    for d in &mut want {
        // FR-DGSI owns its copy: it is not releasable to itself.
        d.releasable_to.retain(|a| a != "FR-DGSI");
    }
    assert_eq!(got, want);
    for i in &imported {
        assert!(i.draft.check(&agency("FR-DGSI")).is_ok(), "{:?}", i.draft);
    }
}

#[test]
fn a_foreign_individual_imports_with_documented_defaults() {
    let text = r#"{"type": "bundle", "id": "bundle--6a1b0c6e-8a3a-4b7e-9a55-55b1f3e3c1a0", "objects": [
        {"type": "identity", "spec_version": "2.1", "id": "identity--023d105b-752e-4e3c-941c-7d3f3cb15e9e",
         "created": "2017-06-01T00:00:00.000Z", "modified": "2017-06-01T00:00:00.000Z",
         "name": "Jean Dupont", "identity_class": "individual", "description": "known courier",
         "object_marking_refs": ["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"]},
        {"type": "identity", "spec_version": "2.1", "id": "identity--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
         "created": "2017-06-01T00:00:00.000Z", "modified": "2017-06-01T00:00:00.000Z",
         "name": "ACME", "identity_class": "organization"}
    ]}"#;
    let imported = import(text, &agency("FR-DGSI"), &fed()).unwrap();
    assert_eq!(imported.len(), 1);
    let d = &imported[0].draft;
    assert_eq!(
        d.reference,
        "identity--023d105b-752e-4e3c-941c-7d3f3cb15e9e"
    );
    assert_eq!(
        d.subject,
        Subject::Person(Person {
            names: vec!["Jean Dupont".into()],
            ..Person::default()
        })
    );
    assert_eq!(d.reason, "known courier");
    assert_eq!(d.action, Action::DiscreetCheck);
    // TLP 1.0 GREEN, as STIX 2.1 defines it.
    assert_eq!(d.tlp, Tlp::Green);
}

#[test]
fn bad_bundles_are_refused_naming_the_problem() {
    let fr = agency("FR-DGSI");
    let refuse = |text: &str| import(text, &fr, &fed()).unwrap_err();
    assert!(matches!(refuse("ref,name\nW-1,Ana"), Error::NotJson(_)));
    let e = refuse(r#"{"type": "report", "objects": []}"#);
    assert!(e.to_string().starts_with("not a STIX bundle"), "{e}");
    let e = refuse(r#"[{"type": "identity"}]"#);
    assert!(matches!(e, Error::NotABundle(_)), "{e}");
    let e = refuse(r#"{"type": "bundle", "id": "bundle--1", "objects": []}"#);
    assert!(matches!(e, Error::NoIndividuals), "{e}");

    // One bad object refuses the bundle, and the message names it.
    let mut b = bundle(&[warning()], &held());
    let entry = b["objects"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|o| o["x_tocsin_ref"] == "BE-2015-017")
        .unwrap();
    let id = entry["id"].as_str().unwrap().to_owned();
    entry["x_tocsin_date_of_birth"] = "15/09/1989".into();
    let e = refuse(&b.to_string());
    let msg = e.to_string();
    assert!(
        msg.contains(&id) && msg.contains("x_tocsin_date_of_birth"),
        "{msg}"
    );
    entry_mut(&mut b, &id)["x_tocsin_date_of_birth"] = "1989-09-15".into();
    entry_mut(&mut b, &id)
        .as_object_mut()
        .unwrap()
        .remove("description");
    let msg = refuse(&b.to_string()).to_string();
    assert!(msg.contains(&id) && msg.contains("description"), "{msg}");

    let e = refuse(
        r#"{"type": "bundle", "id": "bundle--1", "objects": [{"type": "identity", "id": "report--x"}]}"#,
    );
    assert!(e.to_string().contains("objects[0]"), "{e}");

    // A bundle from another federation.
    let other = FederationId::new("other.tocsin").unwrap();
    let e = import(&bundle(&[], &held()).to_string(), &fr, &other).unwrap_err();
    assert!(matches!(e, Error::OtherFederation { .. }), "{e}");
    assert!(e.to_string().contains("eu.tocsin"), "{e}");
}

fn entry_mut<'a>(b: &'a mut Value, id: &str) -> &'a mut Value {
    b["objects"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|o| o["id"] == id)
        .unwrap()
}

#[test]
fn an_entry_held_from_another_owner_is_shown_but_never_imported() {
    // FR-DGSI's export holds BE-VSSE's entries: a third agency importing
    // it must not take them over (BE-VSSE shares them by sync).
    let b = export(&Export {
        federation: &fed(),
        agency: &agency("FR-DGSI"),
        alerts: &[warning()],
        entries: &held(),
    });
    let held_ids: Vec<&Value> = of_type(&b, "identity")
        .into_iter()
        .filter(|o| o["x_tocsin_role"] == "held-entry")
        .collect();
    assert_eq!(held_ids.len(), 2, "{b:#}");
    let text = serde_json::to_string(&b).unwrap();
    let err = import(&text, &agency("NL-AIVD"), &fed()).unwrap_err();
    assert!(matches!(err, Error::NoIndividuals), "{err}");
}

#[test]
fn an_unknown_marking_is_read_as_red_never_looser() {
    let text = r#"{"type": "bundle", "id": "bundle--6a1b0c6e-8a3a-4b7e-9a55-55b1f3e3c1a0", "objects": [
        {"type": "identity", "spec_version": "2.1", "id": "identity--023d105b-752e-4e3c-941c-7d3f3cb15e9e",
         "created": "2017-06-01T00:00:00.000Z", "modified": "2017-06-01T00:00:00.000Z",
         "name": "Jean Dupont", "identity_class": "individual", "description": "known courier",
         "object_marking_refs": ["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
                                 "marking-definition--00000000-0000-4000-8000-000000000001"]}
    ]}"#;
    let imported = import(text, &agency("FR-DGSI"), &fed()).unwrap();
    assert_eq!(imported[0].draft.tlp, Tlp::Red);
}
