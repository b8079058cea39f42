//! The node's domain logic: accepting alerts from operators, receiving them
//! from peers, and answering queries. No SQL (that is the store's) and no TLS
//! (that is the trust crate's): callers arrive here already authenticated.
//!
//! One module per use case, each an `impl Node` of its own: `submit`
//! (an operator's alert), `receive` (a peer's alerts, alone or batched),
//! `acknowledge` (ours, and recipients'), `due` (what the tracker does
//! when it wakes), `ladder` (reminders, escalations,
//! notices, LAPSED; and those received), `subjects` (REPEATED_UNANSWERED and
//! the subject view), `queries` (one alert, lists) and `watch` (the event
//! stream). What several share (the `Node` itself, the rows made from an
//! alert or an acknowledgement, the check of who signed what a peer
//! delivered) is here.

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

/// Everything a node's handlers share.
#[derive(Clone)]
pub(crate) struct Node {
    pub(crate) agency: AgencyId,
    pub(crate) federation: Arc<Federation>,
    pub(crate) store: Store,
    pub(crate) signer: Arc<Signer>,
    pub(crate) verifier: Verifier,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) outbox: OutboxHandle,
    /// Wakes the deadline tracker when a new deadline may come first.
    pub(crate) tracker: Arc<crate::tracker::TrackerWake>,
    /// Turns true when the node shuts down; ends watch streams.
    pub(crate) shutdown: tokio::sync::watch::Receiver<bool>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("agency", &self.agency)
            .finish_non_exhaustive()
    }
}

fn new_alert_row(
    alert: &Alert,
    envelope: &pb::Envelope,
    digest: [u8; 32],
    stored_at: chrono::DateTime<chrono::Utc>,
    due_at: chrono::DateTime<chrono::Utc>,
    first_step_at: Option<chrono::DateTime<chrono::Utc>>,
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
                (r.alert_id.to_string(), status)
            })
            .collect(),
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
    )
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
mod ladder;
mod queries;
mod receive;
mod subjects;
mod submit;
mod watch;

impl Node {
    /// The agency this node speaks for.
    pub(crate) fn agency(&self) -> &AgencyId {
        &self.agency
    }
}

/// The envelope a peer's request must carry in `field`.
fn required(envelope: Option<pb::Envelope>, field: &str) -> Result<pb::Envelope, Error> {
    envelope.ok_or_else(|| tocsin_core::ValidationError::new(field, "missing envelope").into())
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
