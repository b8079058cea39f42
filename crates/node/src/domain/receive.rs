//! Receiving alerts from peers: checking, committing and receipting them,
//! alone or in a batch.

use crate::Error;
use prost::Message;
use tocsin_core::{AgencyId, Alert};
use tocsin_proto::{ALERT_PAYLOAD_TYPE, pb};
use tocsin_store::{InboundOutcome, NewAlert};

use super::{Node, new_alert_row, signed_by};

impl Node {
    /// Receives an alert delivered by the peer `caller`. Returns the signed
    /// receipt once the alert is committed; the same alert again gets the
    /// same receipt.
    pub(crate) async fn receive(
        &self,
        caller: &AgencyId,
        envelope: Option<pb::Envelope>,
    ) -> Result<pb::Envelope, Error> {
        let envelope = super::required(envelope, "alert")?;
        self.receive_batch(caller, vec![envelope])
            .await
            .pop()
            .unwrap_or_else(|| Err(Error::Unavailable("the alert went unanswered".into())))
    }

    /// Receives alerts delivered together by the peer `caller`: each is
    /// checked, stored and answered as [`Self::receive`] would answer it
    /// alone, in the order given. Their signatures are checked in one batch
    /// and their writes join one group commit.
    pub(crate) async fn receive_batch(
        &self,
        caller: &AgencyId,
        envelopes: Vec<pb::Envelope>,
    ) -> Vec<Result<pb::Envelope, Error>> {
        let refs: Vec<&pb::Envelope> = envelopes.iter().collect();
        let verified = self.verifier.verify_batch(&refs, ALERT_PAYLOAD_TYPE);
        let prepared: Vec<_> = envelopes
            .into_iter()
            .zip(verified)
            .map(|(envelope, verified)| {
                let verified = signed_by(caller, verified, "alert")?;
                self.inbound(caller, envelope, verified)
            })
            .collect();
        futures::future::join_all(prepared.into_iter().map(|p| async move {
            let (row, receipt, precedence) = p?;
            self.store_inbound(caller, row, receipt, precedence).await
        }))
        .await
    }

    /// Checks a verified alert from `caller` and signs its receipt.
    fn inbound(
        &self,
        caller: &AgencyId,
        envelope: pb::Envelope,
        verified: tocsin_trust::signing::Verified,
    ) -> Result<(NewAlert, pb::Envelope, tocsin_core::alert::Precedence), Error> {
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
        let receipt = tocsin_trust::receipt::issue(
            &self.signer,
            &alert.id.to_string(),
            &verified.digest,
            now,
        );
        let due_at = self.federation.deadlines.due_at(&alert);
        let row = new_alert_row(&alert, &envelope, verified.digest, now, due_at, None);
        Ok((row, receipt, alert.precedence))
    }

    /// Commits a received alert with its receipt; answers the receipt
    /// first issued for it if it was received before.
    async fn store_inbound(
        &self,
        caller: &AgencyId,
        row: NewAlert,
        receipt: pb::Envelope,
        precedence: tocsin_core::alert::Precedence,
    ) -> Result<pb::Envelope, Error> {
        let (id, due_at) = (row.id.clone(), row.due_at);
        match self
            .store
            .insert_inbound(row, receipt.encode_to_vec())
            .await
        {
            Ok(InboundOutcome::Stored) => {
                self.tracker.deadline(due_at);
                tracing::info!(alert = %id, from = %caller, %precedence, "alert received");
                Ok(receipt)
            }
            Ok(InboundOutcome::Duplicate(stored)) => pb::Envelope::decode(stored.as_slice())
                .map_err(|e| Error::corrupt("stored receipt unreadable", e)),
            Err(tocsin_store::Error::Conflict(id)) => Err(Error::AlreadyExists(format!(
                "alert {id} was already received with different content"
            ))),
            Err(e) => Err(e.into()),
        }
    }
}
