//! The merge on hand-made bundles: signed by a test federation's keys,
//! chained and headed as an export writes them.

use chrono::{DateTime, Duration, TimeZone, Utc};
use prost::Message;
use tocsin_core::{AgencyId, AlertId, FederationId, to_timestamp};
use tocsin_proto::{
    ACK_PAYLOAD_TYPE, ALERT_PAYLOAD_TYPE, NOTICE_PAYLOAD_TYPE, REMINDER_PAYLOAD_TYPE, pb,
};
use tocsin_store::audit::{
    AuditEntry, AuditEvent, AuditHead, EvidenceKind, EvidenceRef, GENESIS, Location,
    encode_evidence, entry_hash, sha256,
};
use tocsin_trust::pki::CertificateAuthority;
use tocsin_trust::{Signer, receipt};

use super::*;
use crate::{AUDIT_HEAD_PAYLOAD_TYPE, BUNDLE_FORMAT, BUNDLE_VERSION, HeadLine, Header, Line};

/// A federation's CA and its agencies' signing keys.
struct Pki {
    fed: FederationId,
    ca: CertificateAuthority,
    dir: tempfile::TempDir,
}

impl Pki {
    fn new(fed: &str) -> Self {
        let fed = FederationId::new(fed).unwrap();
        let ca = CertificateAuthority::generate(&fed).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.crt"), ca.cert_pem()).unwrap();
        Self { fed, ca, dir }
    }

    fn signer(&self, agency: &str) -> Signer {
        let issued = self
            .ca
            .issue_signing(&AgencyId::new(agency).unwrap())
            .unwrap();
        Signer::from_pem(&issued.cert_pem, &issued.key_pem, &self.fed).unwrap()
    }

    fn trust(&self) -> Trust {
        Trust::load(&self.dir.path().join("ca.crt")).unwrap()
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2015, 11, 13, 9, 0, 0).unwrap()
}

fn alert(
    by: &Signer,
    to: &[&str],
    precedence: pb::Precedence,
    at: DateTime<Utc>,
    text: &str,
) -> (String, pb::Envelope) {
    let id = AlertId::generate().to_string();
    let a = pb::Alert {
        id: id.clone(),
        originator: by.agency().to_string(),
        created_at: Some(to_timestamp(at)),
        precedence: precedence as i32,
        category: "terrorism".into(),
        subjects: vec![pb::Subject {
            kind: Some(pb::subject::Kind::Person(pb::Person {
                names: vec!["Salah Abdeslam".into()],
                date_of_birth: "1989-09-15".into(),
                ..Default::default()
            })),
        }],
        text: text.into(),
        source_reliability: pb::SourceReliability::B as i32,
        information_credibility: pb::InformationCredibility::InformationCredibility2 as i32,
        tlp: pb::Tlp::Amber as i32,
        recipients: to.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    (id, by.sign(ALERT_PAYLOAD_TYPE, a.encode_to_vec()))
}

fn ack(
    by: &Signer,
    alert_id: &str,
    alert: &pb::Envelope,
    at: DateTime<Utc>,
) -> (String, pb::Envelope) {
    let id = AlertId::generate().to_string();
    let a = pb::Acknowledgement {
        id: id.clone(),
        alert_id: alert_id.into(),
        alert_digest: tocsin_trust::signing::digest(alert).to_vec(),
        recipient: by.agency().to_string(),
        operator: "analyst".into(),
        disposition: pb::Disposition::Noted as i32,
        note: String::new(),
        acknowledged_at: Some(to_timestamp(at)),
    };
    (id, by.sign(ACK_PAYLOAD_TYPE, a.encode_to_vec()))
}

fn notice(by: &Signer, alert_id: &str, laggard: &str, at: DateTime<Utc>) -> (String, pb::Envelope) {
    let id = AlertId::generate().to_string();
    let n = pb::EscalationNotice {
        id: id.clone(),
        alert_id: alert_id.into(),
        originator: by.agency().to_string(),
        recipient: laggard.into(),
        precedence: pb::Precedence::Priority as i32,
        category: "terrorism".into(),
        due_at: Some(to_timestamp(at - Duration::hours(6))),
        escalated_at: Some(to_timestamp(at)),
        delivered: true,
    };
    (id, by.sign(NOTICE_PAYLOAD_TYPE, n.encode_to_vec()))
}

fn reminder(
    by: &Signer,
    alert_id: &str,
    alert: &pb::Envelope,
    to: &str,
    due: DateTime<Utc>,
) -> (String, pb::Envelope) {
    let id = AlertId::generate().to_string();
    let r = pb::Reminder {
        id: id.clone(),
        alert_id: alert_id.into(),
        alert_digest: tocsin_trust::signing::digest(alert).to_vec(),
        originator: by.agency().to_string(),
        recipient: to.into(),
        step: 1,
        precedence: pb::Precedence::Priority as i32,
        due_at: Some(to_timestamp(due)),
        sent_at: Some(to_timestamp(due + Duration::minutes(1))),
    };
    (id, by.sign(REMINDER_PAYLOAD_TYPE, r.encode_to_vec()))
}

/// One agency's audit log, built entry by entry.
struct Log<'a> {
    pki: &'a Pki,
    signer: Signer,
    entries: Vec<(AuditEntry, Vec<Option<Vec<u8>>>)>,
}

impl<'a> Log<'a> {
    fn of(pki: &'a Pki, agency: &str) -> Self {
        Self {
            pki,
            signer: pki.signer(agency),
            entries: Vec::new(),
        }
    }

    /// An entry recording one envelope at `kind`/`key`/`key2`.
    fn record(
        &mut self,
        kind: EvidenceKind,
        key: &str,
        key2: &str,
        env: &pb::Envelope,
    ) -> &mut Self {
        let bytes = env.encode_to_vec();
        let evidence = vec![EvidenceRef {
            location: Location {
                kind,
                key: key.into(),
                key2: key2.into(),
            },
            digest: sha256(&bytes),
        }];
        let seq = self.entries.len() as u64 + 1;
        let prev = self.entries.last().map_or(GENESIS, |(e, _)| e.hash);
        let event = AuditEvent {
            id: seq as i64,
            at: seq as i64,
            kind: 1,
            alert_id: key.into(),
            agency: key2.into(),
            direction: 1,
            detail: format!("entry {seq}"),
        };
        let hash = entry_hash(seq, &prev, &event, &encode_evidence(&evidence));
        self.entries.push((
            AuditEntry {
                seq,
                event,
                evidence,
                prev_hash: prev,
                hash,
            },
            vec![Some(bytes)],
        ));
        self
    }

    /// The bundle, exported at `at`, as an export writes it.
    fn bundle(&self, name: &str, at: DateTime<Utc>) -> Input {
        let mut out = Vec::new();
        let mut line = |l: &Line| {
            out.extend(serde_json::to_vec(l).unwrap());
            out.push(b'\n');
        };
        line(&Line::Header(Header {
            format: BUNDLE_FORMAT.into(),
            version: BUNDLE_VERSION,
            federation: self.pki.fed.to_string(),
            agency: self.signer.agency().to_string(),
            exported_at: at,
        }));
        for (e, found) in &self.entries {
            line(&Line::Entry(crate::entry_line(e, found)));
        }
        let (seq, hash) = self
            .entries
            .last()
            .map_or((0, GENESIS), |(e, _)| (e.seq, e.hash));
        let head = AuditHead {
            federation: self.pki.fed.to_string(),
            agency: self.signer.agency().to_string(),
            seq,
            hash,
            at: at.timestamp_millis(),
        };
        let env = self.signer.sign(AUDIT_HEAD_PAYLOAD_TYPE, head.encode());
        line(&Line::Head(HeadLine {
            seq,
            hash: hex::encode(hash),
            envelope: base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                env.encode_to_vec(),
            ),
        }));
        Input {
            name: name.into(),
            bytes: out,
        }
    }
}

/// TR-MIT warns FR-DGSI and BE-VSSE (PRIORITY, 12 h); FR-DGSI answers in
/// an hour, BE-VSSE never. Each side's log holds what its node stores.
struct Warning<'a> {
    tr: Log<'a>,
    fr: Log<'a>,
    be: Log<'a>,
    id: String,
    alert: pb::Envelope,
}

fn warning(pki: &Pki) -> Warning<'_> {
    let (mut tr, mut fr, mut be) = (
        Log::of(pki, "TR-MIT"),
        Log::of(pki, "FR-DGSI"),
        Log::of(pki, "BE-VSSE"),
    );
    let (id, env) = alert(
        &tr.signer,
        &["FR-DGSI", "BE-VSSE"],
        pb::Precedence::Priority,
        t0(),
        "Abdeslam crossing",
    );
    let digest = tocsin_trust::signing::digest(&env);
    tr.record(EvidenceKind::Alert, &id, "", &env);
    for log in [&mut fr, &mut be] {
        let rc = receipt::issue(&log.signer, &id, &digest, t0() + Duration::seconds(1));
        log.record(EvidenceKind::Alert, &id, "", &env).record(
            EvidenceKind::ReceiptIssued,
            &id,
            "",
            &rc,
        );
        let agency = log.signer.agency().to_string();
        tr.record(EvidenceKind::ReceiptReceived, &id, &agency, &rc);
    }
    let (ack_id, a) = ack(&fr.signer, &id, &env, t0() + Duration::hours(1));
    fr.record(EvidenceKind::Message, &ack_id, "", &a);
    tr.record(EvidenceKind::Acknowledgement, &ack_id, "", &a);
    Warning {
        tr,
        fr,
        be,
        id,
        alert: env,
    }
}

fn run(inputs: &[Input], pki: &Pki) -> PostMortem {
    post_mortem(inputs, &pki.trust(), &Options::default()).unwrap()
}

fn later() -> DateTime<Utc> {
    t0() + Duration::days(2)
}

#[test]
fn bundles_merge_into_one_timeline_and_name_the_unanswered() {
    let pki = Pki::new("test.tocsin");
    let w = warning(&pki);
    let pm = run(
        &[
            w.tr.bundle("tr.jsonl", later()),
            w.fr.bundle("fr.jsonl", later()),
            w.be.bundle("be.jsonl", later()),
        ],
        &pki,
    );
    assert!(pm.bundles.iter().all(|b| b.verified), "{:?}", pm.bundles);
    // The alert, two receipts, one acknowledgement: once each, in time order.
    let kinds: Vec<RecordKind> = pm.timeline.iter().map(|t| t.kind).collect();
    assert_eq!(
        kinds,
        [
            RecordKind::Alert,
            RecordKind::Receipt,
            RecordKind::Receipt,
            RecordKind::Acknowledgement
        ]
    );
    assert_eq!(pm.timeline[0].held_by, ["tr.jsonl", "fr.jsonl", "be.jsonl"]);
    assert!(pm.timeline.windows(2).all(|p| p[0].at <= p[1].at));
    // BE-VSSE never answered; nothing contradicts.
    let gaps: Vec<&Finding> = pm.of_kind(FindingKind::NeverAcknowledged).collect();
    assert_eq!(gaps.len(), 1, "{:#?}", pm.findings);
    assert_eq!(gaps[0].agencies[0], "BE-VSSE");
    assert_eq!(gaps[0].area, Area::InformationSharing);
    assert!(
        !gaps[0].detail.contains("had not passed"),
        "{}",
        gaps[0].detail
    );
    assert_eq!(pm.findings.len(), 1, "{:#?}", pm.findings);
    let text = pm.to_string();
    assert!(text.contains("Information sharing"), "{text}");
    assert!(text.contains("never acknowledged"), "{text}");
    // No escalation, so nothing to say about observers.
    assert!(
        !pm.limits.iter().any(|l| l.contains("escalation")),
        "{:?}",
        pm.limits
    );
}

#[test]
fn a_tampered_bundle_is_reported_and_the_rest_still_merge() {
    let pki = Pki::new("test.tocsin");
    let w = warning(&pki);
    let be = w.be.bundle("be.jsonl", later());
    let text = String::from_utf8(be.bytes)
        .unwrap()
        .replacen("entry 1", "entry one", 1);
    let be = Input {
        name: be.name,
        bytes: text.into_bytes(),
    };
    let pm = run(&[w.tr.bundle("tr.jsonl", later()), be], &pki);
    let failed: Vec<&Finding> = pm.of_kind(FindingKind::BundleFailed).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].bundles, ["be.jsonl"]);
    assert!(failed[0].detail.contains("entry 1"), "{}", failed[0].detail);
    assert!(!pm.bundles[1].verified);
    // TR-MIT's records still merge: FR-DGSI has no bundle, BE-VSSE's failed.
    assert_eq!(pm.timeline.len(), 4);
    assert!(
        pm.limits
            .iter()
            .any(|l| l.starts_with("no bundle from FR-DGSI")),
        "{:?}",
        pm.limits
    );
    assert!(
        pm.limits
            .iter()
            .any(|l| l.starts_with("BE-VSSE's bundle fails")),
        "{:?}",
        pm.limits
    );
}

#[test]
fn an_acknowledgement_the_originator_lacks_is_a_contradiction() {
    let pki = Pki::new("test.tocsin");
    let mut w = warning(&pki);
    // BE-VSSE's record says it acknowledged; TR-MIT's, exported later, has no such ack.
    let (ack_id, a) = ack(&w.be.signer, &w.id, &w.alert, t0() + Duration::hours(2));
    w.be.record(EvidenceKind::Message, &ack_id, "", &a);
    let pm = run(
        &[
            w.tr.bundle("tr.jsonl", later()),
            w.be.bundle("be.jsonl", later()),
        ],
        &pki,
    );
    let c: Vec<&Finding> = pm.of_kind(FindingKind::Contradiction).collect();
    assert_eq!(c.len(), 1, "{:#?}", pm.findings);
    assert_eq!(c[0].bundles, ["be.jsonl", "tr.jsonl"]);
    assert!(
        c[0].detail.contains("has no such acknowledgement"),
        "{}",
        c[0].detail
    );
    // Exported before the ack was signed, TR-MIT's record cannot hold it.
    let pm = run(
        &[
            w.tr.bundle("tr.jsonl", t0() + Duration::minutes(90)),
            w.be.bundle("be.jsonl", later()),
        ],
        &pki,
    );
    assert_eq!(
        pm.of_kind(FindingKind::Contradiction).count(),
        0,
        "{:#?}",
        pm.findings
    );
}

#[test]
fn two_signed_versions_of_one_record_contradict_each_other() {
    let pki = Pki::new("test.tocsin");
    let mut w = warning(&pki);
    // FR-DGSI holds a receipt BE-VSSE signed for the same alert at another time.
    let digest = tocsin_trust::signing::digest(&w.alert);
    let other = receipt::issue(&w.be.signer, &w.id, &digest, t0() + Duration::hours(5));
    w.fr.record(EvidenceKind::ReceiptReceived, &w.id, "BE-VSSE", &other);
    let pm = run(
        &[
            w.be.bundle("be.jsonl", later()),
            w.fr.bundle("fr.jsonl", later()),
        ],
        &pki,
    );
    let c: Vec<&Finding> = pm.of_kind(FindingKind::Contradiction).collect();
    assert_eq!(c.len(), 1, "{:#?}", pm.findings);
    assert_eq!(c[0].bundles, ["be.jsonl", "fr.jsonl"]);
    assert!(c[0].detail.contains("the time received"), "{}", c[0].detail);

    // An alert whose content differs for the same id, both signed.
    let pki = Pki::new("test.tocsin");
    let w = warning(&pki);
    let mut a = pb::Alert::decode(w.alert.payload.as_slice()).unwrap();
    a.text = "nothing to see".into();
    let forged = w.tr.signer.sign(ALERT_PAYLOAD_TYPE, a.encode_to_vec());
    let mut nl = Log::of(&pki, "FR-DGSI");
    nl.record(EvidenceKind::Alert, &w.id, "", &forged);
    let pm = run(
        &[
            w.tr.bundle("tr.jsonl", later()),
            nl.bundle("fr.jsonl", later()),
        ],
        &pki,
    );
    let c: Vec<&Finding> = pm.of_kind(FindingKind::Contradiction).collect();
    assert!(
        c.iter().any(|f| f.detail.contains("differ in text")),
        "{:#?}",
        pm.findings
    );
}

#[test]
fn late_acknowledgements_use_the_recorded_deadline_or_the_policy() {
    let pki = Pki::new("test.tocsin");
    let mut tr = Log::of(&pki, "TR-MIT");
    let fr = pki.signer("FR-DGSI");
    let (id, env) = alert(
        &tr.signer,
        &["FR-DGSI"],
        pb::Precedence::Flash,
        t0(),
        "Flash",
    );
    let rc = receipt::issue(&fr, &id, &tocsin_trust::signing::digest(&env), t0());
    let (ack_id, a) = ack(&fr, &id, &env, t0() + Duration::minutes(25));
    tr.record(EvidenceKind::Alert, &id, "", &env)
        .record(EvidenceKind::ReceiptReceived, &id, "FR-DGSI", &rc)
        .record(EvidenceKind::Acknowledgement, &ack_id, "", &a);
    let late = |pm: &PostMortem| pm.of_kind(FindingKind::AcknowledgedLate).count();
    // FLASH: 10 minutes by default.
    let pm = run(&[tr.bundle("tr.jsonl", later())], &pki);
    assert_eq!(late(&pm), 1, "{:#?}", pm.findings);
    let f = pm.of_kind(FindingKind::AcknowledgedLate).next().unwrap();
    assert_eq!(f.area, Area::DetectionAndPrioritisation);
    assert!(
        f.detail.contains("15 min") || f.detail.contains("15m") || f.detail.contains("minutes"),
        "{}",
        f.detail
    );
    assert!(pm.limits.iter().any(|l| l.contains("protocol's defaults")));
    // The federation allows 30 minutes: on time.
    let options = Options {
        deadlines: Some(tocsin_core::federation::Deadlines {
            flash: std::time::Duration::from_secs(30 * 60),
            ..Default::default()
        }),
        ..Default::default()
    };
    let pm = post_mortem(&[tr.bundle("tr.jsonl", later())], &pki.trust(), &options).unwrap();
    assert_eq!(late(&pm), 0, "{:#?}", pm.findings);
    // A reminder records the deadline that passed: it wins over the policy.
    let (rid, rem) = reminder(
        &tr.signer,
        &id,
        &env,
        "FR-DGSI",
        t0() + Duration::minutes(5),
    );
    tr.record(EvidenceKind::Message, &rid, "", &rem);
    let pm = post_mortem(&[tr.bundle("tr.jsonl", later())], &pki.trust(), &options).unwrap();
    assert_eq!(late(&pm), 1, "{:#?}", pm.findings);
}

#[test]
fn hit_reports_and_escalations_have_their_gaps() {
    let pki = Pki::new("test.tocsin");
    let mut fr = Log::of(&pki, "FR-DGSI");
    let be = pki.signer("BE-VSSE");
    // FR-DGSI reports a hit on BE-VSSE's entry; BE-VSSE never answers.
    let id = AlertId::generate().to_string();
    let report = pb::Alert {
        id: id.clone(),
        originator: "FR-DGSI".into(),
        created_at: Some(to_timestamp(t0())),
        precedence: pb::Precedence::Immediate as i32,
        category: "watchlist-hit".into(),
        subjects: vec![pb::Subject {
            kind: Some(pb::subject::Kind::Person(pb::Person {
                names: vec!["Salah Abdeslam".into()],
                ..Default::default()
            })),
        }],
        text: "seen".into(),
        source_reliability: pb::SourceReliability::A as i32,
        information_credibility: pb::InformationCredibility::InformationCredibility1 as i32,
        tlp: pb::Tlp::Amber as i32,
        recipients: vec!["BE-VSSE".into()],
        hit: Some(pb::WatchlistHit {
            entry_owner: "BE-VSSE".into(),
            entry_ref: "BE-2015-017".into(),
            seen_place: "A2 near Cambrai".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let env = fr.signer.sign(ALERT_PAYLOAD_TYPE, report.encode_to_vec());
    let rc = receipt::issue(&be, &id, &tocsin_trust::signing::digest(&env), t0());
    fr.record(EvidenceKind::Alert, &id, "", &env).record(
        EvidenceKind::ReceiptReceived,
        &id,
        "BE-VSSE",
        &rc,
    );
    // ...and escalates: EU-EUROPOL is told, and does nothing.
    let (nid, n) = notice(&fr.signer, &id, "BE-VSSE", t0() + Duration::hours(2));
    fr.record(EvidenceKind::Message, &nid, "", &n);
    let mut eu = Log::of(&pki, "EU-EUROPOL");
    eu.record(EvidenceKind::ReceivedMessage, &nid, "", &n);
    let pm = run(
        &[
            fr.bundle("fr.jsonl", later()),
            eu.bundle("eu.jsonl", later()),
        ],
        &pki,
    );
    let hit: Vec<&Finding> = pm.in_area(Area::Surveillance).collect();
    assert_eq!(hit.len(), 1, "{:#?}", pm.findings);
    assert_eq!(hit[0].kind, FindingKind::HitNotAnswered);
    let esc: Vec<&Finding> = pm.of_kind(FindingKind::EscalationNotActedOn).collect();
    assert_eq!(esc.len(), 1, "{:#?}", pm.findings);
    assert!(
        esc[0].detail.contains("EU-EUROPOL were told"),
        "{}",
        esc[0].detail
    );
    assert!(pm.limits.iter().any(|l| l.contains("hit never reported")));
    assert!(
        pm.limits
            .iter()
            .any(|l| l.contains("escalation counts as acted on"))
    );
    assert!(pm.to_string().contains("hit report"));

    // EU-EUROPOL follows up with an alert that refers to it: acted on.
    let (_, follow) = {
        let eu_signer = &eu.signer;
        let fid = AlertId::generate().to_string();
        let mut a = report.clone();
        a.id = fid.clone();
        a.originator = "EU-EUROPOL".into();
        a.hit = None;
        a.category = "terrorism".into();
        a.created_at = Some(to_timestamp(t0() + Duration::hours(3)));
        a.references = vec![pb::Reference {
            alert_id: id.clone(),
            kind: pb::reference::Kind::Update as i32,
        }];
        (fid, eu_signer.sign(ALERT_PAYLOAD_TYPE, a.encode_to_vec()))
    };
    let fid = pb::Alert::decode(follow.payload.as_slice()).unwrap().id;
    eu.record(EvidenceKind::Alert, &fid, "", &follow);
    let pm = run(
        &[
            fr.bundle("fr.jsonl", later()),
            eu.bundle("eu.jsonl", later()),
        ],
        &pki,
    );
    assert_eq!(
        pm.of_kind(FindingKind::EscalationNotActedOn).count(),
        0,
        "{:#?}",
        pm.findings
    );
}

#[test]
fn the_subject_filter_keeps_the_linked_records() {
    let pki = Pki::new("test.tocsin");
    let mut w = warning(&pki);
    let (other, env) = alert(
        &w.tr.signer,
        &["FR-DGSI"],
        pb::Precedence::Routine,
        t0(),
        "x",
    );
    let mut a = pb::Alert::decode(env.payload.as_slice()).unwrap();
    a.subjects = vec![pb::Subject {
        kind: Some(pb::subject::Kind::Identifier(pb::Identifier {
            kind: "phone".into(),
            value: "+33 6 00 00 00 00".into(),
        })),
    }];
    let env = w.tr.signer.sign(ALERT_PAYLOAD_TYPE, a.encode_to_vec());
    w.tr.record(EvidenceKind::Alert, &other, "", &env);
    let all = run(&[w.tr.bundle("tr.jsonl", later())], &pki);
    assert!(all.timeline.iter().any(|t| t.alert_id == other));
    let options = Options {
        subject: Some("abdeslam SALAH".into()),
        ..Default::default()
    };
    let pm = post_mortem(&[w.tr.bundle("tr.jsonl", later())], &pki.trust(), &options).unwrap();
    assert!(
        pm.timeline.iter().all(|t| t.alert_id == w.id),
        "{:#?}",
        pm.timeline
    );
    assert_eq!(pm.timeline.len(), 4);
    assert!(
        pm.findings
            .iter()
            .all(|f| f.alert_id.as_deref() == Some(w.id.as_str()))
    );
    assert!(
        pm.findings
            .iter()
            .any(|f| f.kind == FindingKind::NeverAcknowledged)
    );
    let options = Options {
        subject: Some("nobody at all".into()),
        ..Default::default()
    };
    let pm = post_mortem(&[w.tr.bundle("tr.jsonl", later())], &pki.trust(), &options).unwrap();
    assert!(pm.timeline.is_empty());
    assert!(pm.limits[0].contains("no alert"), "{:?}", pm.limits);
}

#[test]
fn unusable_input_is_refused_with_a_clear_message() {
    let pki = Pki::new("test.tocsin");
    let w = warning(&pki);
    assert!(matches!(
        post_mortem(&[], &pki.trust(), &Options::default()),
        Err(Error::NoBundles)
    ));
    let junk = Input {
        name: "notes.txt".into(),
        bytes: b"hello\n".to_vec(),
    };
    let e = post_mortem(
        &[w.tr.bundle("tr.jsonl", later()), junk],
        &pki.trust(),
        &Options::default(),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("notes.txt: not a Tocsin audit bundle"),
        "{e}"
    );
    // Another federation's bundle.
    let other = Pki::new("other.tocsin");
    let mut x = Log::of(&other, "TR-MIT");
    let (id, env) = alert(&x.signer, &["FR-DGSI"], pb::Precedence::Routine, t0(), "x");
    x.record(EvidenceKind::Alert, &id, "", &env);
    let e = post_mortem(
        &[
            w.tr.bundle("tr.jsonl", later()),
            x.bundle("x.jsonl", later()),
        ],
        &pki.trust(),
        &Options::default(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::OtherFederation { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("x.jsonl is a bundle of federation other.tocsin, not of test.tocsin"),
        "{e}"
    );
    // Nothing verifies.
    let e = post_mortem(
        &[x.bundle("x.jsonl", later())],
        &pki.trust(),
        &Options::default(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::NoneVerifies(_)), "{e}");
}
