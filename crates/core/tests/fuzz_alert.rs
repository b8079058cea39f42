//! Fuzz target: alert and acknowledgement validation, and the alert files
//! operators write.
//!
//! Whatever a peer signs and sends, `Alert::try_from` (what a node runs on
//! every `Deliver`) and `Acknowledgement::try_from` answer with a
//! validation error naming a field, or a value; they never panic. What a
//! node then computes from a valid alert (deadline, ladder, match keys,
//! labels) never panics either, and a valid alert or acknowledgement
//! survives the round trip through the wire form unchanged.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use prost::Message;
use tocsin_core::ack::Acknowledgement;
use tocsin_core::alert::{Alert, AlertDraft};
use tocsin_core::federation::Federation;
use tocsin_core::{AgencyId, AlertId, subject, to_timestamp};
use tocsin_fuzz::wire;
use tocsin_proto::pb;

const REGRESSIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/proptest-regressions/fuzz_alert.txt"
);

const RECIPIENTS: &[&str] = &["FR-DGSI", "EU-EUROPOL", "TR-MIT"];

static FEDERATION: LazyLock<Federation> =
    LazyLock::new(|| Federation::parse(&tocsin_fuzz::seed("federation.toml"), "seed").unwrap());

fn seed_draft() -> AlertDraft {
    toml::from_str(&tocsin_fuzz::seed("alert.toml")).unwrap()
}

fn seed_alert() -> pb::Alert {
    let mut wire = seed_draft().to_proto();
    wire.originator = "TR-MIT".into();
    wire.created_at = Some(to_timestamp("2026-01-01T00:00:00Z".parse().unwrap()));
    wire
}

fn seed_ack() -> pb::Acknowledgement {
    pb::Acknowledgement {
        id: AlertId::generate().to_string(),
        alert_id: "01JD3Z8X6Q2N4V5W7Y9A0B1C2D".into(),
        alert_digest: vec![7; 32],
        recipient: "FR-DGSI".into(),
        operator: "analyst".into(),
        disposition: pb::Disposition::Noted as i32,
        note: "Seen.".into(),
        acknowledged_at: Some(to_timestamp("2026-01-01T00:05:00Z".parse().unwrap())),
    }
}

/// Everything a node computes from an alert it receives or submits.
fn exercise(a: &Alert) -> Result<(), TestCaseError> {
    for t in [
        a.created_at,
        DateTime::<Utc>::MIN_UTC,
        DateTime::<Utc>::MAX_UTC,
        Utc::now(),
    ] {
        let _ = a.check_timely(t);
    }
    let fed = &*FEDERATION;
    let due = fed.deadlines.due_at(a);
    prop_assert!(due >= a.created_at, "due {due} before creation");
    if let Some(by) = a.respond_by {
        prop_assert!(due <= by, "due {due} after respond_by {by}");
    }
    let allowance = fed.deadlines.for_precedence(a.precedence);
    let mut previous = due;
    for step in 1..=3 {
        let at = fed.escalation.step_at(step, due, allowance);
        prop_assert!(
            at >= previous,
            "ladder step {step} at {at} before {previous}"
        );
        previous = at;
    }
    let _ = subject::alert_keys(a);
    let _ = a.subjects_label();
    let _ = a.is_releasable_to(&AgencyId::new("FR-DGSI").unwrap());
    for s in &a.subjects {
        let _ = s.label();
    }
    Ok(())
}

/// Validates `wire`; a valid alert must round-trip and be usable.
fn check_alert(wire: pb::Alert) -> Result<Option<Alert>, TestCaseError> {
    match Alert::try_from(wire) {
        Err(e) => {
            prop_assert!(!e.field.is_empty() && !e.problem.is_empty(), "{e:?}");
            Ok(None)
        }
        Ok(a) => {
            let again = pb::Alert::from(&a);
            for t in [&again.created_at, &again.expires_at, &again.respond_by] {
                // What a node signs must be valid protobuf for any reader.
                prop_assert!(
                    t.as_ref()
                        .is_none_or(|t| (0..1_000_000_000).contains(&t.nanos)),
                    "timestamp out of protobuf's range: {t:?}"
                );
            }
            let decoded = pb::Alert::decode(again.encode_to_vec().as_slice()).unwrap();
            prop_assert_eq!(&decoded, &again);
            let b = Alert::try_from(decoded);
            prop_assert_eq!(
                b.as_ref(),
                Ok(&a),
                "a valid alert changed in the round trip"
            );
            prop_assert_eq!(pb::Alert::from(&b.unwrap()), again);
            exercise(&a)?;
            Ok(Some(a))
        }
    }
}

fn check_ack(wire: pb::Acknowledgement) -> Result<Option<Acknowledgement>, TestCaseError> {
    match Acknowledgement::try_from(wire) {
        Err(e) => {
            prop_assert!(!e.field.is_empty() && !e.problem.is_empty(), "{e:?}");
            Ok(None)
        }
        Ok(a) => {
            let again = pb::Acknowledgement::from(&a);
            let nanos = again.acknowledged_at.as_ref().map(|t| t.nanos).unwrap_or(0);
            prop_assert!((0..1_000_000_000).contains(&nanos), "nanos {nanos}");
            let decoded = pb::Acknowledgement::decode(again.encode_to_vec().as_slice()).unwrap();
            let b = Acknowledgement::try_from(decoded);
            prop_assert_eq!(b.as_ref(), Ok(&a));
            Ok(Some(a))
        }
    }
}

proptest! {
    #![proptest_config(tocsin_fuzz::config(256, REGRESSIONS))]

    /// Alerts that follow every rule are accepted, and survive the round
    /// trip through the wire form.
    #[test]
    fn valid_alerts_stay_valid(wire in wire::valid_alert("TR-MIT", RECIPIENTS)) {
        let accepted = check_alert(wire.clone())?;
        prop_assert!(accepted.is_some(), "refused: {:?}", Alert::try_from(wire).unwrap_err());
    }

    /// Valid alerts with fields put out of line: an error naming a field,
    /// or a usable alert.
    #[test]
    fn edited_alerts_are_refused_cleanly(wire in wire::edited_alert("TR-MIT", RECIPIENTS)) {
        check_alert(wire)?;
    }

    /// Byte-level mutants of encoded alerts.
    #[test]
    fn mutated_alert_encodings_are_refused_cleanly(
        bytes in tocsin_fuzz::mutated_bytes(vec![seed_alert().encode_to_vec()]),
    ) {
        if let Ok(wire) = pb::Alert::decode(bytes.as_slice()) {
            check_alert(wire)?;
        }
    }

    /// Arbitrary bytes as an alert or an acknowledgement.
    #[test]
    fn arbitrary_bytes_are_refused_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        if let Ok(wire) = pb::Alert::decode(bytes.as_slice()) {
            check_alert(wire)?;
        }
        if let Ok(wire) = pb::Acknowledgement::decode(bytes.as_slice()) {
            check_ack(wire)?;
        }
    }

    /// Acknowledgements that follow every rule are accepted and survive the
    /// round trip.
    #[test]
    fn valid_acknowledgements_stay_valid(wire in wire::valid_ack("FR-DGSI")) {
        let accepted = check_ack(wire.clone())?;
        prop_assert!(accepted.is_some(), "refused: {:?}", Acknowledgement::try_from(wire).unwrap_err());
    }

    /// Acknowledgements with a field out of line, and byte-level mutants.
    #[test]
    fn edited_acknowledgements_are_refused_cleanly(
        wire in wire::edited_ack("FR-DGSI"),
        bytes in tocsin_fuzz::mutated_bytes(vec![seed_ack().encode_to_vec()]),
    ) {
        check_ack(wire)?;
        if let Ok(wire) = pb::Acknowledgement::decode(bytes.as_slice()) {
            check_ack(wire)?;
        }
    }

    /// Alert files (`tocsin alert send --file`): mutated text parses into a
    /// draft or is refused; a draft survives being written back; what it
    /// makes is checked like any alert.
    #[test]
    fn alert_files_parse_or_are_refused(
        text in prop_oneof![
            6 => tocsin_fuzz::mutated_values(vec![tocsin_fuzz::seed("alert.toml")]),
            3 => tocsin_fuzz::mutated_text(vec![tocsin_fuzz::seed("alert.toml")]),
            1 => tocsin_fuzz::any_text(),
        ],
    ) {
        if let Ok(draft) = toml::from_str::<AlertDraft>(&text) {
            let written = toml::to_string(&draft);
            prop_assert!(written.is_ok(), "cannot write back {draft:?}: {written:?}");
            let reread = toml::from_str::<AlertDraft>(&written.unwrap());
            prop_assert_eq!(reread.as_ref().ok(), Some(&draft), "{:?}", reread);
            let mut wire = draft.to_proto();
            wire.id = AlertId::generate().to_string();
            wire.originator = "TR-MIT".into();
            wire.created_at = Some(to_timestamp(tocsin_core::clock::truncate_ms(Utc::now())));
            check_alert(wire)?;
        }
    }
}

#[test]
fn the_seeds_are_valid() {
    assert!(Alert::try_from(seed_alert()).is_ok());
    assert!(Acknowledgement::try_from(seed_ack()).is_ok());
    assert_eq!(seed_draft().subjects.len(), 2);
}
