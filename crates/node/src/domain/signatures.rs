//! Whether a stored signed record still verifies: the web desk shows it
//! beside each envelope, receipt and acknowledgement, checked now against
//! the federation trust (a certificate revoked since shows as failing).

use tocsin_core::AgencyId;
use tocsin_proto::pb;

use super::Node;

/// The answer of [`Node::check_signature`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SignatureCheck {
    /// The signature verifies and was made by the agency expected.
    Verifies {
        /// The agency whose signing certificate made it.
        signer: AgencyId,
    },
    /// It does not verify, or another agency signed it.
    Fails {
        /// Why, in words.
        reason: String,
    },
}

impl Node {
    /// Checks `envelope` (of `payload_type`) with this node's `Verifier`,
    /// and that `expected` signed it: a valid signature by the wrong
    /// agency proves nothing about the record.
    pub(crate) fn check_signature(
        &self,
        envelope: &pb::Envelope,
        payload_type: &str,
        expected: &AgencyId,
    ) -> SignatureCheck {
        match self.verifier.verify(envelope, payload_type) {
            Ok(v) if &v.signer == expected => SignatureCheck::Verifies { signer: v.signer },
            Ok(v) => SignatureCheck::Fails {
                reason: format!("signed by {}, not by {expected}", v.signer),
            },
            Err(e) => SignatureCheck::Fails {
                reason: e.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Fixture, agency, flash_about};
    use super::SignatureCheck;
    use tocsin_proto::ALERT_PAYLOAD_TYPE;

    #[tokio::test]
    async fn a_signature_verifies_by_its_signer_and_not_when_tampered_or_misattributed() {
        let f = Fixture::new();
        let tr = f.signer_of("TR-MIT");
        let mut envelope = f.signed_alert(&tr, "TR-MIT", flash_about("Ahmet Yilmaz", &["FR-DGSI"]));
        assert_eq!(
            f.node
                .check_signature(&envelope, ALERT_PAYLOAD_TYPE, &agency("TR-MIT")),
            SignatureCheck::Verifies {
                signer: agency("TR-MIT")
            }
        );
        let SignatureCheck::Fails { reason } =
            f.node
                .check_signature(&envelope, ALERT_PAYLOAD_TYPE, &agency("FR-DGSI"))
        else {
            panic!("another agency's signature passed");
        };
        assert!(
            reason.contains("signed by TR-MIT, not by FR-DGSI"),
            "{reason}"
        );
        envelope.payload.push(0);
        assert!(matches!(
            f.node
                .check_signature(&envelope, ALERT_PAYLOAD_TYPE, &agency("TR-MIT")),
            SignatureCheck::Fails { .. }
        ));
    }
}
