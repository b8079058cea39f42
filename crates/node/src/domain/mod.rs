//! The node's domain logic: accepting alerts from operators, receiving them
//! from peers, and answering queries. No SQL (that is the store's) and no TLS
//! (that is the trust crate's): callers arrive here already authenticated.
//!
//! One module per use case, each an `impl Node` of its own: `submit`
//! (an operator's alert), `receive` (a peer's alerts, alone or batched),
//! `acknowledge` (ours, and recipients'), `due` (what the tracker does
//! when it wakes), `ladder` (reminders, escalations,
//! notices, LAPSED; and those received), `subjects` (REPEATED_UNANSWERED and
//! the subject view), `hits` (a screen's hit on another agency's entry,
//! reported to its owner), `queries` (one alert, lists) and `watch` (the
//! event stream), `triage` (what we owe, ranked by `tocsin_triage`); `wording` words the events the store writes for them. What
//! several share (the `Node` itself, the rows made from an alert or an
//! acknowledgement, the check of who signed what a peer delivered) is here,
//! with the fixture the modules' unit tests share (`testing`).
//!
//! The domain takes and returns domain types (`Alert`, `Disposition`, the
//! views of `crate::views`, [`Error`]); the handlers convert to and from
//! protobuf (`service::convert`). Signed messages stay `pb::Envelope`,
//! their signed wire form, where the domain verifies, signs or stores them.

use std::sync::Arc;

use prost::Message;
use tocsin_core::federation::Federation;
use tocsin_core::{AgencyId, Alert, Clock};
use tocsin_proto::pb;
use tocsin_store::{NewAlert, Store};
use tocsin_trust::signing::digest;
use tocsin_trust::{Signer, Verifier};

use crate::Error;
use crate::outbox::OutboxHandle;
use crate::shutdown::Stopping;
use crate::tracker::TrackerHandle;

/// Everything a node's handlers share: the agency's identity, trust and
/// store, and the handles of the components its use cases wake. Built once
/// by [`Node::new`]; cheap to clone.
#[derive(Clone)]
pub(crate) struct Node {
    agency: AgencyId,
    federation: Arc<Federation>,
    store: Store,
    signer: Arc<Signer>,
    verifier: Verifier,
    clock: Arc<dyn Clock>,
    outbox: OutboxHandle,
    /// Wakes the deadline tracker when a new deadline may come first.
    tracker: TrackerHandle,
    /// Turns true when the node shuts down; ends watch streams.
    shutdown: Stopping,
    /// How long a hit report of one person on one entry covers later
    /// screens of them.
    hit_window: chrono::Duration,
}

/// What a [`Node`] is built from.
pub(crate) struct NodeParts {
    /// The agency this node speaks for.
    pub(crate) agency: AgencyId,
    /// The federation it belongs to.
    pub(crate) federation: Arc<Federation>,
    /// Its store.
    pub(crate) store: Store,
    /// Signs what this agency sends.
    pub(crate) signer: Arc<Signer>,
    /// Checks what peers send.
    pub(crate) verifier: Verifier,
    /// The node's time, for deadlines and events.
    pub(crate) clock: Arc<dyn Clock>,
    /// Wakes the outbox workers.
    pub(crate) outbox: OutboxHandle,
    /// Wakes the deadline tracker.
    pub(crate) tracker: TrackerHandle,
    /// The node's shutdown signal.
    pub(crate) shutdown: Stopping,
    /// The repeat window of hit reports.
    pub(crate) hit_window: std::time::Duration,
}

impl Node {
    /// A node of `parts`.
    pub(crate) fn new(parts: NodeParts) -> Self {
        let NodeParts {
            agency,
            federation,
            store,
            signer,
            verifier,
            clock,
            outbox,
            tracker,
            shutdown,
            hit_window,
        } = parts;
        Self {
            // The configuration bounds the window (a year at most).
            hit_window: chrono::Duration::from_std(hit_window)
                .unwrap_or(chrono::Duration::days(366)),
            agency,
            federation,
            store,
            signer,
            verifier,
            clock,
            outbox,
            tracker,
            shutdown,
        }
    }

    /// The node's time now, to the millisecond (as times are signed and
    /// stored).
    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        tocsin_core::clock::truncate_ms(self.clock.now())
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("agency", &self.agency)
            .finish_non_exhaustive()
    }
}

/// The row stored for `alert`; `detail` is the text of the event that
/// records storing it.
fn new_alert_row(
    alert: &Alert,
    envelope: &pb::Envelope,
    digest: [u8; 32],
    stored_at: chrono::DateTime<chrono::Utc>,
    due_at: chrono::DateTime<chrono::Utc>,
    first_step_at: Option<chrono::DateTime<chrono::Utc>>,
    detail: String,
) -> NewAlert {
    NewAlert {
        id: alert.id.to_string(),
        originator: alert.originator.to_string(),
        created_at: alert.created_at,
        stored_at,
        precedence: alert.precedence.to_wire(),
        category: alert.category.clone(),
        summary: alert.subjects_label(),
        digest: digest.to_vec(),
        envelope: envelope.encode_to_vec(),
        due_at,
        first_step_at,
        keys: tocsin_core::subject::alert_keys(alert)
            .into_iter()
            .collect(),
        closes: alert
            .references
            .iter()
            .map(|r| {
                let status = match r.kind {
                    tocsin_core::alert::ReferenceKind::Cancel => {
                        tocsin_store::AlertStatus::Cancelled
                    }
                    _ => tocsin_store::AlertStatus::Superseded,
                };
                tocsin_store::Closing {
                    alert_id: r.alert_id.to_string(),
                    status,
                    detail: wording::closed(status, &alert.id.to_string()),
                }
            })
            .collect(),
        detail,
    }
}

/// The row a node stores for an alert it sends, with its deadline and first
/// ladder step, exactly as `SubmitAlert` computes them. For preloading a
/// store (benchmarks, migrations of data from elsewhere); the envelope must
/// be the originator's signed alert.
pub fn outbound_row(
    federation: &tocsin_core::Federation,
    alert: &Alert,
    envelope: &pb::Envelope,
    stored_at: chrono::DateTime<chrono::Utc>,
) -> NewAlert {
    let due_at = federation.deadlines.due_at(alert);
    let allowance = federation.deadlines.for_precedence(alert.precedence);
    let first_step = federation.escalation.step_at(1, due_at, allowance);
    new_alert_row(
        alert,
        envelope,
        digest(envelope),
        stored_at,
        due_at,
        Some(first_step),
        wording::sent(alert, &recipients(alert)),
    )
}

/// Whom an alert this agency sends goes to, as the store names them.
fn recipients(alert: &Alert) -> Vec<String> {
    alert.recipients.iter().map(ToString::to_string).collect()
}

/// Which open items to list.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Open {
    /// What we owe.
    Owed,
    /// What others owe us.
    Awaiting,
    /// Either, past its deadline.
    Overdue,
}

fn ack_row(
    ack: &tocsin_core::ack::Acknowledgement,
    envelope: &pb::Envelope,
    stored_at: chrono::DateTime<chrono::Utc>,
) -> tocsin_store::NewAck {
    tocsin_store::NewAck {
        id: ack.id.to_string(),
        alert_id: ack.alert_id.to_string(),
        agency: ack.recipient.to_string(),
        operator: ack.operator.clone(),
        disposition: ack.disposition.to_wire(),
        note: ack.note.clone(),
        acknowledged_at: ack.acknowledged_at,
        stored_at,
        envelope: envelope.encode_to_vec(),
    }
}

mod acknowledge;
mod due;
mod hits;
mod ladder;
mod queries;
mod receive;
pub(crate) mod signatures;
mod subjects;
mod submit;
pub(crate) mod triage;
mod watch;
pub(crate) mod wording;

pub(crate) use hits::{DEFAULT_REPEAT_WINDOW, Reported, Sighting};
pub(crate) use submit::Submission;
pub(crate) use triage::TriagedView;

impl Node {
    /// The agency this node speaks for.
    pub(crate) fn agency(&self) -> &AgencyId {
        &self.agency
    }
}

/// A verified envelope's signer, which must be the agency that delivered it.
fn signed_by(
    caller: &AgencyId,
    verified: Result<tocsin_trust::signing::Verified, tocsin_trust::Error>,
    field: &str,
) -> Result<tocsin_trust::signing::Verified, Error> {
    let verified = verified.map_err(|e| Error::InvalidArgument(e.to_string()))?;
    if &verified.signer != caller {
        return Err(Error::PermissionDenied(format!(
            "{field} signed by {} cannot be delivered by {caller}",
            verified.signer
        )));
    }
    Ok(verified)
}

/// What the use cases' unit tests share: a node of FR-DGSI on a real store
/// in a temp dir, a `ManualClock`, and real signing material from a
/// freshly generated federation CA (so peers' envelopes verify or are
/// refused as they would be on the wire).
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Arc;

    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    use tocsin_core::clock::ManualClock;
    use tocsin_core::{AgencyId, Alert, AlertId, Federation, Identity, to_timestamp};
    use tocsin_proto::{ALERT_PAYLOAD_TYPE, pb};
    use tocsin_store::{EventRow, Store, StoreOptions};
    use tocsin_trust::pki::CertificateAuthority;
    use tocsin_trust::{Signer, Verifier};

    use super::{Node, NodeParts, Submission};
    use crate::shutdown::Shutdown;
    use crate::tracker::Tracker;

    /// FR-DGSI (this node), TR-MIT and BE-VSSE (an observer).
    const FEDERATION: &str = r#"
        [federation]
        id = "test.tocsin"
        [deadlines]
        flash = "5m"
        [[agencies]]
        id = "FR-DGSI"
        endpoint = "127.0.0.1:1"
        [[agencies]]
        id = "TR-MIT"
        endpoint = "127.0.0.1:2"
        [[agencies]]
        id = "BE-VSSE"
        endpoint = "127.0.0.1:3"
        observer = true
    "#;

    /// A node of FR-DGSI and what a test needs around it.
    pub(crate) struct Fixture {
        pub(crate) node: Node,
        pub(crate) clock: ManualClock,
        pub(crate) store: Store,
        ca: CertificateAuthority,
        federation: Arc<Federation>,
        // Kept for the node's lifetime: the signal its watch streams end
        // on, and the store's directory.
        _shutdown: Shutdown,
        _dir: tempfile::TempDir,
    }

    /// An agency id.
    pub(crate) fn agency(id: &str) -> AgencyId {
        AgencyId::new(id).expect("agency id")
    }

    /// A FLASH alert (deadline 5 minutes) about `person` (born on 1 May
    /// 1980, so that alerts about them are linked), to `recipients`.
    pub(crate) fn flash_about(person: &str, recipients: &[&str]) -> pb::Alert {
        pb::Alert {
            precedence: pb::Precedence::Flash as i32,
            category: "terrorism".into(),
            text: "Subject seen boarding a flight.".into(),
            source_reliability: pb::SourceReliability::B as i32,
            information_credibility: pb::InformationCredibility::InformationCredibility2 as i32,
            tlp: pb::Tlp::Amber as i32,
            subjects: vec![pb::Subject {
                kind: Some(pb::subject::Kind::Person(pb::Person {
                    names: vec![person.into()],
                    date_of_birth: "1980-05-01".into(),
                    ..Default::default()
                })),
            }],
            recipients: recipients.iter().map(|r| (*r).to_owned()).collect(),
            ..Default::default()
        }
    }

    impl Fixture {
        /// A node of FR-DGSI, its clock at the current second.
        pub(crate) fn new() -> Self {
            let federation = Arc::new(Federation::parse(FEDERATION, "test").expect("federation"));
            let ca = CertificateAuthority::generate(federation.id()).expect("CA");
            let ca_der = CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).expect("CA");
            let verifier = Verifier::new(ca_der.as_ref(), federation.id()).expect("verifier");
            let dir = tempfile::tempdir().expect("temp dir");
            let store = Store::open(dir.path(), StoreOptions::default()).expect("store");
            let start =
                chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp(), 0).expect("now");
            let clock = ManualClock::new(start);
            let shutdown = Shutdown::default();
            let (outbox, _) = crate::outbox::spawn(
                crate::outbox::OutboxContext {
                    store: store.clone(),
                    verifier: verifier.clone(),
                    clock: Arc::new(clock.clone()),
                    options: crate::config::OutboxOptions::default(),
                    skew: crate::skew::SkewMonitor::new(std::time::Duration::from_secs(1)),
                    words: crate::domain::wording::OUTCOME_WORDS,
                },
                Vec::new(),
                1 << 20,
                shutdown.stopping().receiver(),
            );
            let us = agency("FR-DGSI");
            let signer = signer(&ca, &federation, &us);
            let node = Node::new(NodeParts {
                agency: us,
                federation: federation.clone(),
                store: store.clone(),
                signer: Arc::new(signer),
                verifier,
                clock: Arc::new(clock.clone()),
                outbox,
                tracker: Tracker::new(Arc::new(clock.clone())).handle(),
                shutdown: shutdown.stopping(),
                hit_window: super::hits::DEFAULT_REPEAT_WINDOW,
            });
            Self {
                node,
                clock,
                store,
                ca,
                federation,
                _shutdown: shutdown,
                _dir: dir,
            }
        }

        /// The envelope signer of agency `id`.
        pub(crate) fn signer_of(&self, id: &str) -> Signer {
            signer(&self.ca, &self.federation, &agency(id))
        }

        /// An operator of FR-DGSI.
        pub(crate) fn operator(&self) -> Identity {
            Identity::operator(agency("FR-DGSI"), "analyst").expect("operator")
        }

        /// Submits `wire` as FR-DGSI's operator does, which must succeed.
        pub(crate) async fn send(&self, wire: pb::Alert) -> crate::views::AlertView {
            self.node
                .submit(&self.operator(), self.submission(wire))
                .await
                .expect("submitted")
        }

        /// `wire` as FR-DGSI's operator service hands it to the domain: a
        /// new id, this node as originator, created now.
        pub(crate) fn submission(&self, mut wire: pb::Alert) -> Submission {
            let client_id = !wire.id.is_empty();
            if !client_id {
                wire.id = AlertId::generate().to_string();
            }
            wire.originator = "FR-DGSI".into();
            wire.created_at = Some(to_timestamp(self.node.now()));
            Submission {
                alert: Alert::try_from(wire).expect("valid alert"),
                client_id,
            }
        }

        /// `wire` sent by agency `from`, created now and signed by `signer`.
        pub(crate) fn signed_alert(
            &self,
            signer: &Signer,
            from: &str,
            mut wire: pb::Alert,
        ) -> pb::Envelope {
            wire.id = AlertId::generate().to_string();
            wire.originator = from.into();
            wire.created_at = Some(to_timestamp(self.node.now()));
            use prost::Message;
            signer.sign(ALERT_PAYLOAD_TYPE, wire.encode_to_vec())
        }

        /// Every event stored so far.
        pub(crate) async fn events(&self) -> Vec<EventRow> {
            self.store.events_after(0, 1000).await.expect("events")
        }
    }

    fn signer(ca: &CertificateAuthority, federation: &Federation, id: &AgencyId) -> Signer {
        let issued = ca.issue_signing(id).expect("signing certificate");
        Signer::from_pem(&issued.cert_pem, &issued.key_pem, federation.id()).expect("signer")
    }
}
