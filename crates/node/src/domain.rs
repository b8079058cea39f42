//! The node's domain logic: accepting alerts from operators, receiving them
//! from peers, and answering queries. No SQL (that is the store's) and no TLS
//! (that is the trust crate's): callers arrive here already authenticated.

use std::sync::Arc;

use prost::Message;
use tocsin_core::federation::Federation;
use tocsin_core::{AgencyId, Alert, AlertId, Clock, Identity, to_timestamp};
use tocsin_proto::{ALERT_PAYLOAD_TYPE, RECEIPT_PAYLOAD_TYPE, pb};
use tocsin_store::{Direction, InboundOutcome, NewAlert, Store};
use tocsin_trust::signing::digest;
use tocsin_trust::{Signer, Verifier};

use crate::Error;
use crate::outbox::OutboxHandle;
use crate::views;

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
    }
}

impl Node {
    /// The agency this node speaks for.
    pub(crate) fn agency(&self) -> &AgencyId {
        &self.agency
    }

    /// Accepts an alert from one of this agency's operators. Returns once the
    /// alert and its outbox entries are committed; delivery follows.
    pub(crate) async fn submit(
        &self,
        operator: &Identity,
        mut wire: pb::Alert,
    ) -> Result<pb::AlertRecord, Error> {
        if operator.agency() != &self.agency {
            return Err(Error::PermissionDenied(format!(
                "{operator} cannot act for {}",
                self.agency
            )));
        }
        if !wire.originator.is_empty() && wire.originator != self.agency.as_str() {
            return Err(Error::PermissionDenied(format!(
                "originator {:?} is not this node's agency {}: an operator sends only for its own agency",
                wire.originator, self.agency
            )));
        }
        let now = tocsin_core::clock::truncate_ms(self.clock.now());
        let client_id = !wire.id.is_empty();
        if !client_id {
            wire.id = AlertId::generate().to_string();
        }
        wire.originator = self.agency.to_string();
        wire.created_at = Some(to_timestamp(now));
        let alert = Alert::try_from(wire)?;
        alert.check_timely(now)?;
        for (i, r) in alert.recipients.iter().enumerate() {
            if !self.federation.is_member(r) {
                return Err(Error::InvalidArgument(format!(
                    "invalid field `recipients[{i}]`: {r} is not an agency of federation {}",
                    self.federation.id()
                )));
            }
        }
        if client_id && let Some(existing) = self.resubmission(&alert).await? {
            return Ok(existing);
        }

        let payload = pb::Alert::from(&alert).encode_to_vec();
        let envelope = self.signer.sign(ALERT_PAYLOAD_TYPE, payload);
        let row = new_alert_row(&alert, &envelope, digest(&envelope), now);
        let recipients: Vec<String> = alert.recipients.iter().map(ToString::to_string).collect();
        match self.store.insert_outbound(row, recipients).await {
            Ok(()) => {}
            Err(tocsin_store::Error::Conflict(_)) => {
                // Lost a race with an identical resubmission, or the id is taken.
                return match self.resubmission(&alert).await? {
                    Some(existing) => Ok(existing),
                    None => Err(Error::AlreadyExists(format!(
                        "alert {} already exists",
                        alert.id
                    ))),
                };
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(alert = %alert.id, precedence = %alert.precedence, recipients = alert.recipients.len(), "alert accepted");
        self.outbox.wake(&alert.recipients);
        self.get(&alert.id.to_string())
            .await?
            .ok_or_else(|| Error::Unavailable("alert vanished after commit".into()))
    }

    /// If an alert with this id is stored: the stored record when it is the
    /// same alert (a retried submission), `AlreadyExists` otherwise.
    async fn resubmission(&self, alert: &Alert) -> Result<Option<pb::AlertRecord>, Error> {
        let Some(row) = self.store.alert(&alert.id.to_string()).await? else {
            return Ok(None);
        };
        let same = row.direction == Direction::Outbound
            && views::decode_alert(&row.envelope)
                .map(|stored| {
                    let mut candidate = alert.clone();
                    candidate.created_at = stored.created_at;
                    candidate == stored
                })
                .unwrap_or(false);
        if !same {
            return Err(Error::AlreadyExists(format!(
                "alert {} already exists with different content",
                alert.id
            )));
        }
        Ok(Some(views::record(
            &row,
            &self.store.deliveries(&row.id).await?,
        )?))
    }

    /// Receives an alert delivered by the peer `caller`. Returns the signed
    /// receipt once the alert is committed; the same alert again gets the
    /// same receipt.
    pub(crate) async fn receive(
        &self,
        caller: &AgencyId,
        envelope: Option<pb::Envelope>,
    ) -> Result<pb::Envelope, Error> {
        let envelope = envelope.ok_or_else(|| {
            Error::InvalidArgument("invalid field `alert`: missing envelope".into())
        })?;
        let verified = self
            .verifier
            .verify(&envelope, ALERT_PAYLOAD_TYPE)
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        if &verified.signer != caller {
            return Err(Error::PermissionDenied(format!(
                "alert signed by {} cannot be delivered by {caller}",
                verified.signer
            )));
        }
        let wire = pb::Alert::decode(envelope.payload.as_slice()).map_err(|e| {
            Error::InvalidArgument(format!("envelope payload is not an alert: {e}"))
        })?;
        let alert = Alert::try_from(wire)?;
        if &alert.originator != caller {
            return Err(Error::PermissionDenied(format!(
                "originator {} is not the calling agency {caller}",
                alert.originator
            )));
        }
        if !alert.is_releasable_to(&self.agency) {
            return Err(Error::PermissionDenied(format!(
                "alert {} is not releasable to {}",
                alert.id, self.agency
            )));
        }

        let now = tocsin_core::clock::truncate_ms(self.clock.now());
        let receipt = pb::Receipt {
            alert_id: alert.id.to_string(),
            alert_digest: verified.digest.to_vec(),
            recipient: self.agency.to_string(),
            received_at: Some(to_timestamp(now)),
        };
        let receipt = self
            .signer
            .sign(RECEIPT_PAYLOAD_TYPE, receipt.encode_to_vec());
        let row = new_alert_row(&alert, &envelope, verified.digest, now);
        match self
            .store
            .insert_inbound(row, receipt.encode_to_vec())
            .await
        {
            Ok(InboundOutcome::Stored) => {
                tracing::info!(alert = %alert.id, from = %caller, precedence = %alert.precedence, "alert received");
                Ok(receipt)
            }
            Ok(InboundOutcome::Duplicate(stored)) => pb::Envelope::decode(stored.as_slice())
                .map_err(|e| Error::Unavailable(format!("stored receipt unreadable: {e}"))),
            Err(tocsin_store::Error::Conflict(id)) => Err(Error::AlreadyExists(format!(
                "alert {id} was already received with different content"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// One alert, sent or received.
    pub(crate) async fn get(&self, id: &str) -> Result<Option<pb::AlertRecord>, Error> {
        let Some(row) = self.store.alert(id).await? else {
            return Ok(None);
        };
        let deliveries = self.store.deliveries(id).await?;
        Ok(Some(views::record(&row, &deliveries)?))
    }

    /// Alerts, newest first.
    pub(crate) async fn list(
        &self,
        direction: Option<Direction>,
        limit: u32,
    ) -> Result<Vec<pb::AlertRecord>, Error> {
        let rows = self.store.list_alerts(direction, limit).await?;
        rows.iter().map(|(a, d)| views::record(a, d)).collect()
    }
}
