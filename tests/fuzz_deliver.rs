//! Fuzz target: what a node does on receipt of `Deliver`, `DeliverBatch`
//! and `Acknowledge`, through real gRPC over mutual TLS to a real node and
//! store.
//!
//! A peer signs alerts and acknowledgements, valid or with fields out of
//! line, or mutates the signed envelope's bytes, and delivers them. The
//! node answers with a receipt or a status that tells the caller what is
//! wrong (INVALID_ARGUMENT, PERMISSION_DENIED, NOT_FOUND, ALREADY_EXISTS),
//! never a panic or a store failure; what it accepts is exactly what its
//! validation accepts, is stored as sent, and is receipted for what was
//! signed; and it never lets one agency close another's alert.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use prost::Message;
use tocsin_core::{AgencyId, Alert, FederationId};
use tocsin_proto::pb;
use tocsin_proto::pb::federation_client::FederationClient;
use tocsin_proto::pb::operator_client::OperatorClient;
use tocsin_proto::{ACK_PAYLOAD_TYPE, ALERT_PAYLOAD_TYPE, RECEIPT_PAYLOAD_TYPE};
use tocsin_testkit::{TestFederation, draft, sign_as};
use tocsin_trust::{Signer, Verifier};
use tonic::Code;
use tonic::transport::Channel;

const REGRESSIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/proptest-regressions/fuzz_deliver.txt"
);

/// Panics anywhere in this test binary, the nodes' tasks included.
static PANICS: AtomicUsize = AtomicUsize::new(0);

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
});

/// TR-MIT delivers to FR-DGSI; EU-EUROPOL has sent FR-DGSI an alert that
/// TR-MIT's alerts must never be able to close; TR-MIT has sent FR-DGSI an
/// alert that FR-DGSI's acknowledgements refer to.
struct World {
    _fed: TestFederation,
    peer: FederationClient<Channel>,
    ack_peer: FederationClient<Channel>,
    recipient: OperatorClient<Channel>,
    tr: Signer,
    fr: Signer,
    verifier: Verifier,
    others_alert: String,
    acked_alert: (String, Vec<u8>),
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // proptest reports a failed property with a panic of its own on
        // the test's thread; any other panic is the nodes'.
        let proptest_failure = info
            .payload()
            .downcast_ref::<String>()
            .is_some_and(|m| m.starts_with("Test failed"));
        if !proptest_failure {
            PANICS.fetch_add(1, Ordering::SeqCst);
        }
        default(info);
    }));
    RUNTIME.block_on(async {
        let fed = TestFederation::builder()
            .agencies(["TR-MIT", "FR-DGSI", "EU-EUROPOL"])
            .start()
            .await
            .unwrap();
        let eu = fed.desk("EU-EUROPOL").await.unwrap();
        let others = eu.submit(draft(&["FR-DGSI"])).await.unwrap();
        let others_alert = others.alert.unwrap().id;
        eu.wait_delivered(&others_alert, "FR-DGSI").await.unwrap();
        let tr = fed.desk("TR-MIT").await.unwrap();
        let sent = tr.submit(draft(&["FR-DGSI"])).await.unwrap();
        let sent_id = sent.alert.unwrap().id;
        tr.wait_delivered(&sent_id, "FR-DGSI").await.unwrap();
        let digest = tocsin_trust::signing::digest(&sent.envelope.unwrap()).to_vec();
        let ca = std::fs::read(fed.pki().ca_cert()).unwrap();
        let ca = der(&ca);
        World {
            peer: fed.peer_client("TR-MIT", "FR-DGSI").unwrap(),
            ack_peer: fed.peer_client("FR-DGSI", "TR-MIT").unwrap(),
            recipient: fed.operator("FR-DGSI").await.unwrap(),
            tr: fed.signer("TR-MIT").unwrap(),
            fr: fed.signer("FR-DGSI").unwrap(),
            verifier: Verifier::new(&ca, &FederationId::new("test.tocsin").unwrap()).unwrap(),
            others_alert,
            acked_alert: (sent_id, digest),
            _fed: fed,
        }
    })
});

fn der(pem: &[u8]) -> Vec<u8> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem)
        .unwrap()
        .as_ref()
        .to_vec()
}

/// The codes a node may refuse a delivery with: each tells the peer what
/// is wrong with what it sent. UNAVAILABLE (a store failure), UNKNOWN or
/// INTERNAL (a panic, a broken connection) are bugs here.
const REFUSALS: &[Code] = &[
    Code::InvalidArgument,
    Code::PermissionDenied,
    Code::NotFound,
    Code::AlreadyExists,
];

/// Delivers `envelope` as TR-MIT and checks the answer against what the
/// node's validation says of the alert inside; true if it was received.
fn deliver(envelope: pb::Envelope) -> Result<bool, TestCaseError> {
    let w = &*WORLD;
    let before = PANICS.load(Ordering::SeqCst);
    let (answer, stored, others) = RUNTIME.block_on(async {
        let answer = w
            .peer
            .clone()
            .deliver(pb::DeliverRequest {
                alert: Some(envelope.clone()),
            })
            .await;
        let wire = pb::Alert::decode(envelope.payload.as_slice()).ok();
        let stored = match (&answer, &wire) {
            (Ok(_), Some(wire)) => w
                .recipient
                .clone()
                .get_alert(pb::GetAlertRequest {
                    // The node keeps an alert under its id's canonical
                    // (upper-case) spelling.
                    id: wire
                        .id
                        .parse::<tocsin_core::AlertId>()
                        .map(|id| id.to_string())
                        .unwrap_or_else(|_| wire.id.clone()),
                })
                .await
                .ok()
                .map(tonic::Response::into_inner),
            _ => None,
        };
        let others = w
            .recipient
            .clone()
            .get_alert(pb::GetAlertRequest {
                id: w.others_alert.clone(),
            })
            .await
            .map(|r| r.into_inner().status);
        (answer, stored, others)
    });
    prop_assert_eq!(
        PANICS.load(Ordering::SeqCst),
        before,
        "a node task panicked"
    );
    prop_assert_eq!(
        others.as_ref().ok(),
        Some(&(pb::AlertStatus::Active as i32)),
        "TR-MIT closed EU-EUROPOL's alert: {:?}",
        others
    );

    let verified = w.verifier.verify(&envelope, ALERT_PAYLOAD_TYPE);
    let wire = pb::Alert::decode(envelope.payload.as_slice());
    let valid = wire
        .clone()
        .ok()
        .and_then(|wire| Alert::try_from(wire).ok())
        .filter(|a| a.originator.as_str() == "TR-MIT")
        .filter(|a| a.is_releasable_to(&AgencyId::new("FR-DGSI").unwrap()));
    match answer {
        Err(status) => {
            prop_assert!(
                REFUSALS.contains(&status.code()),
                "refused with {:?}: {}",
                status.code(),
                status.message()
            );
            // A valid, genuinely signed alert is refused only if its id is
            // already taken by other content.
            if verified.is_ok() && valid.is_some() {
                prop_assert_eq!(status.code(), Code::AlreadyExists, "{}", status.message());
            }
            Ok(false)
        }
        Ok(response) => {
            prop_assert!(
                verified.is_ok(),
                "accepted an envelope that does not verify"
            );
            let Some(alert) = valid else {
                return Err(TestCaseError::fail(format!(
                    "accepted an alert its validation refuses: {:?}",
                    wire.map(Alert::try_from)
                )));
            };
            let receipt = response.into_inner().receipt;
            let receipt = receipt.as_ref().map(|r| {
                (
                    w.verifier.verify(r, RECEIPT_PAYLOAD_TYPE),
                    pb::Receipt::decode(r.payload.as_slice()),
                )
            });
            let Some((Ok(signed), Ok(receipt))) = receipt else {
                return Err(TestCaseError::fail(format!("bad receipt: {receipt:?}")));
            };
            prop_assert_eq!(signed.signer.as_str(), "FR-DGSI");
            prop_assert_eq!(receipt.alert_id, alert.id.to_string());
            prop_assert_eq!(
                receipt.alert_digest,
                tocsin_trust::signing::digest(&envelope).to_vec()
            );
            let stored = stored.ok_or_else(|| TestCaseError::fail("accepted but not stored"))?;
            prop_assert_eq!(
                stored.envelope.as_ref(),
                Some(&envelope),
                "stored other bytes"
            );
            // Stored as signed (a ULID written in lower case stays so),
            // and still the same valid alert.
            prop_assert_eq!(stored.alert.as_ref(), wire.as_ref().ok());
            let again = stored.alert.map(Alert::try_from);
            prop_assert_eq!(again, Some(Ok(alert)));
            Ok(true)
        }
    }
}

/// Delivers `envelopes` as TR-MIT in one DeliverBatch: each answer must be
/// the one Deliver gives that envelope alone (asked right after, so an
/// alert the batch stored answers with the same receipt), and that answer
/// must agree with the node's validation.
fn deliver_batch(envelopes: Vec<pb::Envelope>) -> Result<(), TestCaseError> {
    let w = &*WORLD;
    let before = PANICS.load(Ordering::SeqCst);
    let request = pb::DeliverBatchRequest {
        alerts: envelopes.clone(),
    };
    let request_bytes = request.encoded_len();
    let answer = RUNTIME.block_on(w.peer.clone().deliver_batch(request));
    prop_assert_eq!(
        PANICS.load(Ordering::SeqCst),
        before,
        "a node task panicked"
    );
    // A request over the node's message limit is refused whole, before
    // any alert in it is looked at (the outbox packs under that limit).
    if request_bytes > tocsin_node::config::Limits::default().max_message_bytes {
        let status = answer.err();
        prop_assert_eq!(status.map(|s| s.code()), Some(Code::OutOfRange));
        return Ok(());
    }
    let results = answer
        .map_err(|s| TestCaseError::fail(format!("batch refused as a whole: {s:?}")))?
        .into_inner()
        .results;
    prop_assert_eq!(results.len(), envelopes.len());
    for (envelope, result) in envelopes.into_iter().zip(results) {
        let alone = RUNTIME.block_on(w.peer.clone().deliver(pb::DeliverRequest {
            alert: Some(envelope.clone()),
        }));
        match (result.outcome, alone) {
            (Some(pb::deliver_result::Outcome::Receipt(r)), Ok(answer)) => {
                prop_assert_eq!(Some(r), answer.into_inner().receipt);
            }
            (Some(pb::deliver_result::Outcome::Refused(r)), Err(status)) => {
                prop_assert_eq!(Code::from(r.code), status.code(), "{}", r.message);
            }
            (batch, alone) => {
                return Err(TestCaseError::fail(format!(
                    "in a batch {batch:?}, alone {alone:?}"
                )));
            }
        }
        deliver(envelope)?;
    }
    Ok(())
}

/// Signed alerts from TR-MIT, valid or with fields out of line, and
/// byte-level mutants of a signed envelope.
fn any_envelope() -> impl Strategy<Value = pb::Envelope> {
    prop_oneof![
        (
            tocsin_fuzz::wire::valid_alert("TR-MIT", OTHERS),
            any::<bool>()
        )
            .prop_map(|(wire, r)| {
                WORLD
                    .tr
                    .sign(ALERT_PAYLOAD_TYPE, to_fr(wire, r).encode_to_vec())
            }),
        tocsin_fuzz::wire::edited_alert("TR-MIT", OTHERS).prop_map(|wire| {
            WORLD
                .tr
                .sign(ALERT_PAYLOAD_TYPE, to_fr(wire, false).encode_to_vec())
        }),
        tocsin_fuzz::mutated_bytes(vec![
            sign_as(&WORLD.tr, draft(&["FR-DGSI"])).1.encode_to_vec(),
        ])
        .prop_filter_map("not an envelope", |bytes| {
            pb::Envelope::decode(bytes.as_slice()).ok()
        }),
    ]
}

/// A valid alert from TR-MIT that names FR-DGSI among its recipients, and
/// sometimes references EU-EUROPOL's alert.
fn to_fr(mut wire: pb::Alert, reference_others: bool) -> pb::Alert {
    if !wire.recipients.iter().any(|r| r == "FR-DGSI") {
        wire.recipients.push("FR-DGSI".into());
    }
    if reference_others {
        wire.references.push(pb::Reference {
            alert_id: WORLD.others_alert.clone(),
            kind: pb::reference::Kind::Cancel as i32,
        });
    }
    wire
}

/// Acknowledges, as FR-DGSI, to TR-MIT.
fn acknowledge(envelope: pb::Envelope) -> Result<(), TestCaseError> {
    let w = &*WORLD;
    let before = PANICS.load(Ordering::SeqCst);
    let answer = RUNTIME.block_on(w.ack_peer.clone().acknowledge(pb::AcknowledgeRequest {
        acknowledgement: Some(envelope.clone()),
    }));
    prop_assert_eq!(
        PANICS.load(Ordering::SeqCst),
        before,
        "a node task panicked"
    );
    let valid = w.verifier.verify(&envelope, ACK_PAYLOAD_TYPE).is_ok()
        && pb::Acknowledgement::decode(envelope.payload.as_slice())
            .ok()
            .and_then(|a| tocsin_core::ack::Acknowledgement::try_from(a).ok())
            .is_some_and(|a| {
                a.recipient.as_str() == "FR-DGSI"
                    && a.alert_id.to_string() == w.acked_alert.0
                    && a.alert_digest.as_slice() == w.acked_alert.1
            });
    match answer {
        Err(status) => {
            prop_assert!(
                REFUSALS.contains(&status.code()),
                "refused with {:?}: {}",
                status.code(),
                status.message()
            );
            if valid {
                prop_assert_eq!(status.code(), Code::AlreadyExists, "{}", status.message());
            }
        }
        Ok(_) => prop_assert!(valid, "accepted an acknowledgement that is not valid"),
    }
    Ok(())
}

fn ack_of(mut wire: pb::Acknowledgement, matching: bool) -> pb::Acknowledgement {
    if matching {
        wire.alert_id = WORLD.acked_alert.0.clone();
        wire.alert_digest = WORLD.acked_alert.1.clone();
    }
    wire
}

const OTHERS: &[&str] = &["FR-DGSI", "EU-EUROPOL"];

proptest! {
    #![proptest_config(tocsin_fuzz::config(64, REGRESSIONS))]

    /// Valid alerts are received, receipted and stored exactly as sent;
    /// the same delivery again gets the same answer.
    #[test]
    fn valid_alerts_are_received_intact(
        wire in tocsin_fuzz::wire::valid_alert("TR-MIT", OTHERS),
        reference_others in any::<bool>(),
    ) {
        let wire = to_fr(wire, reference_others);
        let envelope = WORLD.tr.sign(ALERT_PAYLOAD_TYPE, wire.encode_to_vec());
        prop_assert!(deliver(envelope.clone())?, "a valid alert was refused");
        prop_assert!(deliver(envelope)?, "a valid alert was refused the second time");
    }

    /// Alerts with fields out of line: received if valid, refused with a
    /// status that says why otherwise.
    #[test]
    fn edited_alerts_are_received_or_refused(
        wire in tocsin_fuzz::wire::edited_alert("TR-MIT", OTHERS),
        reference_others in any::<bool>(),
    ) {
        let wire = to_fr(wire, reference_others);
        deliver(WORLD.tr.sign(ALERT_PAYLOAD_TYPE, wire.encode_to_vec()))?;
    }

    /// Byte-level mutants of a signed alert envelope, and of its payload
    /// signed again.
    #[test]
    fn mutated_envelopes_are_refused_cleanly(
        mutated in tocsin_fuzz::mutated_bytes(vec![
            sign_as(&WORLD.tr, draft(&["FR-DGSI"])).1.encode_to_vec(),
        ]),
        wire in tocsin_fuzz::wire::valid_alert("TR-MIT", OTHERS),
        edits in tocsin_fuzz::byte_edits(),
    ) {
        if let Ok(envelope) = pb::Envelope::decode(mutated.as_slice()) {
            deliver(envelope)?;
        }
        // The payload's bytes mutated, then signed: the node decodes what
        // a genuine peer signed, however broken.
        let mut payload = to_fr(wire, false).encode_to_vec();
        for e in &edits {
            e.apply(&mut payload);
        }
        deliver(WORLD.tr.sign(ALERT_PAYLOAD_TYPE, payload))?;
    }

    /// A batch of alerts, good and bad mixed, some sent twice: each is
    /// answered exactly as Deliver would answer it alone.
    #[test]
    fn batches_are_answered_alert_by_alert(
        mut envelopes in prop::collection::vec(any_envelope(), 1..6),
        repeat in any::<prop::sample::Index>(),
    ) {
        let again = envelopes[repeat.index(envelopes.len())].clone();
        envelopes.push(again);
        deliver_batch(envelopes)?;
    }

    /// Acknowledgements, valid or with a field out of line: recorded if
    /// valid, refused with a status that says why otherwise.
    #[test]
    fn acknowledgements_are_recorded_or_refused(
        wire in prop_oneof![
            tocsin_fuzz::wire::valid_ack("FR-DGSI"),
            tocsin_fuzz::wire::edited_ack("FR-DGSI"),
        ],
        matching in prop::bool::weighted(0.8),
    ) {
        let wire = ack_of(wire, matching);
        acknowledge(WORLD.fr.sign(ACK_PAYLOAD_TYPE, wire.encode_to_vec()))?;
    }
}
