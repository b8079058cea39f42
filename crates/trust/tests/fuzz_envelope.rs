//! Fuzz target: envelope decoding and signature checks.
//!
//! Whatever bytes arrive as an envelope, decoding and `Verifier::verify`
//! answer with an error or a verified envelope, never a panic; and a
//! verified envelope always carries a type and payload that a federation
//! agency's signing key signed, and names that agency. Short pass under
//! `cargo test`; `PROPTEST_CASES=20000` for a long one (README).

use std::sync::LazyLock;

use proptest::prelude::*;
use proptest::sample::{Index, select};
use prost::Message;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tocsin_core::alert::AlertDraft;
use tocsin_core::{AgencyId, FederationId};
use tocsin_proto::pb;
use tocsin_trust::pki::CertificateAuthority;
use tocsin_trust::{Signer, Verifier};

const REGRESSIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/proptest-regressions/fuzz_envelope.txt"
);

const TYPES: &[&str] = &[
    tocsin_proto::ALERT_PAYLOAD_TYPE,
    tocsin_proto::RECEIPT_PAYLOAD_TYPE,
    tocsin_proto::ACK_PAYLOAD_TYPE,
    tocsin_proto::REMINDER_PAYLOAD_TYPE,
    tocsin_proto::NOTICE_PAYLOAD_TYPE,
];

/// Everything the target signs with and checks against, made once.
struct World {
    verifier: Verifier,
    /// What the federation's agencies really signed: (signer, type, payload).
    genuine: Vec<(AgencyId, String, Vec<u8>)>,
    /// Envelopes to take apart: genuine ones, one signed by another CA's
    /// certificate for the same agency, and raw parts to splice in.
    envelopes: Vec<pb::Envelope>,
    /// Certificates to splice in: the agencies' signing certificates, a
    /// node (TLS) certificate, another CA's, and the CA's own.
    certificates: Vec<Vec<u8>>,
}

fn der(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .as_ref()
        .to_vec()
}

fn seed_alert() -> pb::Alert {
    let draft: AlertDraft = toml::from_str(&tocsin_fuzz::seed("alert.toml")).unwrap();
    let mut wire = draft.to_proto();
    wire.originator = "TR-MIT".into();
    wire.created_at = Some(tocsin_core::to_timestamp(
        "2026-01-01T00:00:00Z".parse().unwrap(),
    ));
    wire
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let fed = FederationId::new("fuzz.tocsin").unwrap();
    let ca = CertificateAuthority::generate(&fed).unwrap();
    let rogue_ca = CertificateAuthority::generate(&fed).unwrap();
    let tr = AgencyId::new("TR-MIT").unwrap();
    let fr = AgencyId::new("FR-DGSI").unwrap();
    let signer = |ca: &CertificateAuthority, agency: &AgencyId| {
        let issued = ca.issue_signing(agency).unwrap();
        (
            Signer::from_pem(&issued.cert_pem, &issued.key_pem, &fed).unwrap(),
            der(&issued.cert_pem),
        )
    };
    let (tr_signer, tr_cert) = signer(&ca, &tr);
    let (fr_signer, fr_cert) = signer(&ca, &fr);
    let (rogue_signer, rogue_cert) = signer(&rogue_ca, &tr);
    let node_cert = der(&ca.issue_node(&tr, &[]).unwrap().cert_pem);

    let alert = seed_alert().encode_to_vec();
    let ack = pb::Acknowledgement {
        id: "01JD3Z8X6Q2N4V5W7Y9A0B1C2F".into(),
        alert_id: "01JD3Z8X6Q2N4V5W7Y9A0B1C2D".into(),
        alert_digest: vec![7; 32],
        recipient: "FR-DGSI".into(),
        operator: "analyst".into(),
        disposition: pb::Disposition::Noted as i32,
        note: "Seen.".into(),
        acknowledged_at: Some(prost_types::Timestamp {
            seconds: 1_800_000_000,
            nanos: 0,
        }),
    }
    .encode_to_vec();
    let genuine = vec![
        (tr.clone(), TYPES[0].to_owned(), alert.clone()),
        (tr.clone(), TYPES[1].to_owned(), b"receipt".to_vec()),
        (fr.clone(), TYPES[2].to_owned(), ack.clone()),
        (fr.clone(), TYPES[0].to_owned(), Vec::new()),
    ];
    let mut envelopes: Vec<pb::Envelope> = genuine
        .iter()
        .map(|(who, t, p)| {
            let s = if who == &tr { &tr_signer } else { &fr_signer };
            s.sign(t, p.clone())
        })
        .collect();
    // The rogue CA's signer claims TR-MIT and signs what TR-MIT never did.
    envelopes.push(rogue_signer.sign(TYPES[0], b"forged".to_vec()));
    envelopes.push(rogue_signer.sign(TYPES[0], alert));

    let verifier = Verifier::new(&der(ca.cert_pem()), &fed).unwrap();
    for e in &envelopes[..genuine.len()] {
        verifier
            .verify(e, &e.payload_type)
            .expect("genuine seed verifies");
    }
    World {
        verifier,
        genuine,
        envelopes,
        certificates: vec![
            tr_cert,
            fr_cert,
            rogue_cert,
            node_cert,
            der(ca.cert_pem()),
            der(rogue_ca.cert_pem()),
        ],
    }
});

/// The key id a signer puts in an envelope: SHA-256 of the certificate.
/// Recomputed for a mutant's certificate, so that the check of the
/// certificate itself is reached.
fn key_id(cert: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, cert))
}

/// Verifies `envelope` as every payload type and checks the soundness
/// property: anything accepted is something an agency of the federation
/// signed, and the verifier names that agency.
fn check(envelope: &pb::Envelope) -> Result<bool, TestCaseError> {
    let w = &*WORLD;
    let mut accepted = false;
    let mut expected: Vec<&str> = TYPES.to_vec();
    expected.push(&envelope.payload_type);
    for t in expected {
        if let Ok(v) = w.verifier.verify(envelope, t) {
            let genuine = w.genuine.iter().position(|(who, ty, payload)| {
                who == &v.signer && ty == &envelope.payload_type && payload == &envelope.payload
            });
            let Some(i) = genuine else {
                return Err(TestCaseError::fail(format!(
                    "accepted what no agency signed: signer {} type {:?} payload {:?}",
                    v.signer, envelope.payload_type, envelope.payload
                )));
            };
            // Ed25519 as ring checks it is not malleable: the very bytes
            // the agency produced, under the name it signed with.
            let (got, want) = (
                envelope.signature.as_ref(),
                w.envelopes[i].signature.as_ref(),
            );
            prop_assert_eq!(got.map(|s| &s.sig), want.map(|s| &s.sig));
            prop_assert_eq!(got.map(|s| &s.signer), want.map(|s| &s.signer));
            prop_assert_eq!(v.digest, tocsin_trust::signing::digest(envelope));
            accepted = true;
        }
    }
    // What a node does next with a verified payload must not panic either.
    let _ = pb::Alert::decode(envelope.payload.as_slice()).map(tocsin_core::Alert::try_from);
    let _ = pb::Acknowledgement::decode(envelope.payload.as_slice())
        .map(tocsin_core::ack::Acknowledgement::try_from);
    let _ = pb::Receipt::decode(envelope.payload.as_slice());
    let _ = pb::Reminder::decode(envelope.payload.as_slice());
    let _ = pb::EscalationNotice::decode(envelope.payload.as_slice());
    Ok(accepted)
}

/// A change to one field of an envelope.
#[derive(Debug, Clone)]
enum FieldEdit {
    /// Flip a bit of the payload (or add a byte to an empty one).
    Payload(Index, u8),
    /// Change the payload type: to another known type, or by a character.
    PayloadType(String),
    /// Flip a bit of the signature, or cut it.
    Sig(Index, u8, bool),
    /// Name another signer.
    Signer(String),
    /// Flip a bit of the certificate; recompute the key id or not.
    Certificate(Index, u8, bool),
    /// Put another certificate in, with its key id.
    SwapCertificate(Index),
    /// Take the signature of another envelope.
    SwapSignature(Index),
    /// Take the payload of another envelope.
    SwapPayload(Index),
    /// Drop the signature.
    Unsigned,
}

fn field_edit() -> impl Strategy<Value = FieldEdit> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| FieldEdit::Payload(i, b)),
        prop_oneof![
            select(TYPES).prop_map(str::to_owned),
            "[ -~]{0,40}",
            "application/vnd\\.tocsin\\.alert\\.v1\\+proto.",
        ]
        .prop_map(FieldEdit::PayloadType),
        (any::<Index>(), 0u8..8, any::<bool>()).prop_map(|(i, b, c)| FieldEdit::Sig(i, b, c)),
        prop_oneof![
            Just("FR-DGSI".to_owned()),
            Just("TR-MIT".to_owned()),
            "[ -~]{0,12}"
        ]
        .prop_map(FieldEdit::Signer),
        (any::<Index>(), 0u8..8, any::<bool>())
            .prop_map(|(i, b, k)| FieldEdit::Certificate(i, b, k)),
        any::<Index>().prop_map(FieldEdit::SwapCertificate),
        any::<Index>().prop_map(FieldEdit::SwapSignature),
        any::<Index>().prop_map(FieldEdit::SwapPayload),
        Just(FieldEdit::Unsigned),
    ]
}

impl FieldEdit {
    fn apply(&self, e: &mut pb::Envelope) {
        let w = &*WORLD;
        match self {
            FieldEdit::Payload(i, bit) => {
                if e.payload.is_empty() {
                    e.payload.push(1 << bit);
                } else {
                    let k = i.index(e.payload.len());
                    e.payload[k] ^= 1 << bit;
                }
            }
            FieldEdit::PayloadType(t) => e.payload_type = t.clone(),
            FieldEdit::Unsigned => e.signature = None,
            FieldEdit::SwapPayload(i) => {
                e.payload = w.envelopes[i.index(w.envelopes.len())].payload.clone();
            }
            FieldEdit::SwapSignature(i) => {
                e.signature = w.envelopes[i.index(w.envelopes.len())].signature.clone();
            }
            _ => {
                let Some(sig) = e.signature.as_mut() else {
                    return;
                };
                match self {
                    FieldEdit::Sig(i, bit, cut) => {
                        if *cut {
                            sig.sig.truncate(i.index(sig.sig.len() + 1));
                        } else if !sig.sig.is_empty() {
                            let k = i.index(sig.sig.len());
                            sig.sig[k] ^= 1 << bit;
                        }
                    }
                    FieldEdit::Signer(s) => sig.signer = s.clone(),
                    FieldEdit::Certificate(i, bit, rekey) => {
                        if !sig.certificate.is_empty() {
                            let k = i.index(sig.certificate.len());
                            sig.certificate[k] ^= 1 << bit;
                        }
                        if *rekey {
                            sig.key_id = key_id(&sig.certificate);
                        }
                    }
                    FieldEdit::SwapCertificate(i) => {
                        sig.certificate = w.certificates[i.index(w.certificates.len())].clone();
                        sig.key_id = key_id(&sig.certificate);
                    }
                    _ => unreachable!("handled above"),
                }
            }
        }
    }

    /// Whether this edit, on its own, must make a genuine envelope fail.
    fn must_break(&self, e: &pb::Envelope) -> bool {
        match self {
            FieldEdit::Payload(..) | FieldEdit::Sig(..) | FieldEdit::Unsigned => true,
            FieldEdit::PayloadType(t) => t != &e.payload_type,
            FieldEdit::Signer(s) => e.signature.as_ref().is_some_and(|sig| &sig.signer != s),
            // A swap may put back what was there, and a certificate bit
            // flip may land where DER parsing ignores it: for those the
            // soundness check decides.
            _ => false,
        }
    }
}

fn genuine_index() -> impl Strategy<Value = usize> {
    0..WORLD.genuine.len()
}

proptest! {
    #![proptest_config(tocsin_fuzz::config(512, REGRESSIONS))]

    /// Arbitrary bytes: decoding fails or yields an envelope that no
    /// payload type verifies.
    #[test]
    fn arbitrary_bytes_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(envelope) = pb::Envelope::decode(bytes.as_slice()) {
            prop_assert!(!check(&envelope)?, "random bytes verified");
        }
    }

    /// Arbitrary envelopes, field by field, with real certificates: none
    /// verifies.
    #[test]
    fn arbitrary_envelopes_are_refused(
        payload_type in prop_oneof![select(TYPES).prop_map(str::to_owned), "\\PC{0,40}"],
        payload in proptest::collection::vec(any::<u8>(), 0..512),
        cert in any::<Index>(),
        signer in prop_oneof![Just("TR-MIT".to_owned()), Just("FR-DGSI".to_owned()), "\\PC{0,12}"],
        sig in proptest::collection::vec(any::<u8>(), 0..80),
        with_key_id in any::<bool>(),
    ) {
        let certificate = WORLD.certificates[cert.index(WORLD.certificates.len())].clone();
        let envelope = pb::Envelope {
            payload_type,
            payload,
            signature: Some(pb::Signature {
                signer,
                key_id: if with_key_id { key_id(&certificate) } else { String::new() },
                sig,
                certificate,
            }),
        };
        prop_assert!(!check(&envelope)?, "a made-up envelope verified");
    }

    /// Byte-level mutants of the encoded envelopes: decoding and checking
    /// never panic, and whatever verifies is still genuine.
    #[test]
    fn mutated_encodings_stay_sound(
        bytes in tocsin_fuzz::mutated_bytes(WORLD.envelopes.iter().map(Message::encode_to_vec).collect()),
    ) {
        if let Ok(envelope) = pb::Envelope::decode(bytes.as_slice()) {
            check(&envelope)?;
        }
    }

    /// Field-level mutants of genuine envelopes: a changed payload, type,
    /// signature or signer is refused; spliced certificates and signatures
    /// never make an envelope verify that no agency signed.
    #[test]
    fn mutated_fields_are_refused(which in genuine_index(), edits in proptest::collection::vec(field_edit(), 1..4)) {
        let original = WORLD.envelopes[which].clone();
        let mut envelope = original.clone();
        for edit in &edits {
            edit.apply(&mut envelope);
        }
        let accepted = check(&envelope)?;
        if let [edit] = edits.as_slice()
            && edit.must_break(&original)
            && envelope != original
        {
            prop_assert!(!accepted, "verified after {edit:?}");
        }
    }
}

#[test]
fn the_genuine_seeds_verify_and_the_forged_do_not() {
    let w = &*WORLD;
    let n = w.genuine.len();
    for e in &w.envelopes[..n] {
        assert!(check(e).unwrap(), "genuine seed refused");
    }
    for e in &w.envelopes[n..] {
        assert!(!check(e).unwrap(), "forged seed accepted");
    }
}
