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
        envelope: pb::Envelope,
    ) -> Result<pb::Envelope, Error> {
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
        let row = new_alert_row(
            &alert,
            &envelope,
            verified.digest,
            now,
            due_at,
            None,
            super::wording::received(&alert),
        );
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

#[cfg(test)]
mod tests {
    use super::super::testing::{Fixture, agency, flash_about};
    use crate::Error;
    use tocsin_store::Direction;

    #[tokio::test]
    async fn an_alert_is_stored_and_receipted_once() {
        let f = Fixture::new();
        let tr = f.signer_of("TR-MIT");
        let envelope = f.signed_alert(&tr, "TR-MIT", flash_about("Jean Dupont", &["FR-DGSI"]));
        let receipt = f
            .node
            .receive(&agency("TR-MIT"), envelope.clone())
            .await
            .unwrap();
        assert_eq!(receipt.payload_type, tocsin_proto::RECEIPT_PAYLOAD_TYPE);
        // A redelivery (the answer was lost) gets the same receipt back.
        f.clock.advance(chrono::Duration::seconds(30));
        let again = f.node.receive(&agency("TR-MIT"), envelope).await.unwrap();
        assert_eq!(again, receipt);
        let received = f.node.list(Some(Direction::Inbound), 10).await.unwrap();
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].alert.originator, agency("TR-MIT"));
        assert_eq!(received[0].receipt.as_ref(), Some(&receipt));
    }

    #[tokio::test]
    async fn an_alert_signed_by_another_agency_than_the_caller_is_refused() {
        let f = Fixture::new();
        // BE-VSSE's signature on an alert claiming to be TR-MIT's, handed
        // over by TR-MIT.
        let be = f.signer_of("BE-VSSE");
        let envelope = f.signed_alert(&be, "TR-MIT", flash_about("Jean Dupont", &["FR-DGSI"]));
        let err = f
            .node
            .receive(&agency("TR-MIT"), envelope)
            .await
            .expect_err("signed by BE-VSSE");
        assert!(
            matches!(&err, Error::PermissionDenied(m) if m == "alert signed by BE-VSSE cannot be delivered by TR-MIT"),
            "{err:?}"
        );
        assert_eq!(
            tonic::Status::from(err).code(),
            tonic::Code::PermissionDenied
        );
        assert!(f.node.list(None, 10).await.unwrap().is_empty());
    }
}
