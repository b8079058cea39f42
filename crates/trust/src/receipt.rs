//! Receipts: the one place a receipt is signed and the one place it is
//! checked.
//!
//! A receipt is the recipient's signed statement that it committed an
//! alert: which alert, which recipient, the SHA-256 of exactly what the
//! originator signed, and when. The recipient's node issues it
//! ([`issue`]); the originator's outbox, the audit check and the timeline
//! check it ([`check`], or [`verify`] when its signature is still to be
//! checked), against what they expect of it ([`Expected`]).

use chrono::{DateTime, Utc};
use prost::Message;
use tocsin_core::{AgencyId, from_timestamp, to_timestamp};
use tocsin_proto::{RECEIPT_PAYLOAD_TYPE, pb};

use crate::signing::Verified;
use crate::{Signer, Verifier};

/// What is wrong with a receipt.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    /// Its signature does not hold.
    #[error("{0}")]
    Signature(#[from] crate::Error),
    /// Its payload is not a receipt.
    #[error("not a receipt: {0}")]
    Decode(#[from] prost::DecodeError),
    /// Signed by another agency than the recipient it should come from.
    #[error("signed by {signer}, not {expected}")]
    Signer {
        /// Who signed it.
        signer: AgencyId,
        /// Who should have.
        expected: String,
    },
    /// For another alert or another recipient.
    #[error(
        "{recipient}'s receipt for alert {alert_id}, not {expected_recipient}'s for {expected_alert}"
    )]
    Other {
        /// The alert it is for.
        alert_id: String,
        /// The recipient it names.
        recipient: String,
        /// The alert expected.
        expected_alert: String,
        /// The recipient expected.
        expected_recipient: String,
    },
    /// Its digest is not that of the alert sent.
    #[error("its digest does not match the alert sent")]
    Digest,
    /// It has no valid time.
    #[error("it has no valid time")]
    NoTime,
}

/// What a receipt must say to count.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The alert it is for.
    pub alert_id: &'a str,
    /// The recipient that issued and signed it.
    pub recipient: &'a str,
    /// The digest of the alert's envelope, where the checker holds it.
    pub alert_digest: Option<&'a [u8]>,
}

/// A receipt that checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The receipt.
    pub receipt: pb::Receipt,
    /// When the recipient committed the alert.
    pub received_at: DateTime<Utc>,
}

/// The receipt `signer`'s node issues for an alert whose envelope has
/// `alert_digest`, committed at `received_at`.
pub fn issue(
    signer: &Signer,
    alert_id: &str,
    alert_digest: &[u8; 32],
    received_at: DateTime<Utc>,
) -> pb::Envelope {
    let receipt = pb::Receipt {
        alert_id: alert_id.to_owned(),
        alert_digest: alert_digest.to_vec(),
        recipient: signer.agency().to_string(),
        received_at: Some(to_timestamp(received_at)),
    };
    signer.sign(RECEIPT_PAYLOAD_TYPE, receipt.encode_to_vec())
}

/// Checks a receipt whose signature was checked already (`verified`, as
/// [`Verifier::verify_batch`] gives it) against `expected`.
pub fn check(
    verified: Result<Verified, crate::Error>,
    envelope: &pb::Envelope,
    expected: Expected<'_>,
) -> Result<Checked, ReceiptError> {
    let verified = verified?;
    if verified.signer.as_str() != expected.recipient {
        return Err(ReceiptError::Signer {
            signer: verified.signer,
            expected: expected.recipient.to_owned(),
        });
    }
    let receipt = pb::Receipt::decode(envelope.payload.as_slice())?;
    if receipt.alert_id != expected.alert_id || receipt.recipient != expected.recipient {
        return Err(ReceiptError::Other {
            alert_id: receipt.alert_id,
            recipient: receipt.recipient,
            expected_alert: expected.alert_id.to_owned(),
            expected_recipient: expected.recipient.to_owned(),
        });
    }
    if let Some(digest) = expected.alert_digest
        && receipt.alert_digest.as_slice() != digest
    {
        return Err(ReceiptError::Digest);
    }
    let received_at = receipt
        .received_at
        .as_ref()
        .and_then(from_timestamp)
        .ok_or(ReceiptError::NoTime)?;
    Ok(Checked {
        receipt,
        received_at,
    })
}

/// Checks a receipt's signature against the federation CA, then
/// `expected`.
pub fn verify(
    verifier: &Verifier,
    envelope: &pb::Envelope,
    expected: Expected<'_>,
) -> Result<Checked, ReceiptError> {
    check(
        verifier.verify(envelope, RECEIPT_PAYLOAD_TYPE),
        envelope,
        expected,
    )
}

#[cfg(test)]
mod tests {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    use tocsin_core::FederationId;

    use super::*;
    use crate::pki::CertificateAuthority;

    /// FR-DGSI's signer and a verifier of the federation.
    fn setup() -> (Signer, Signer, Verifier) {
        let fed = FederationId::new("test.tocsin").unwrap();
        let ca = CertificateAuthority::generate(&fed).unwrap();
        let signer = |id: &str| {
            let issued = ca.issue_signing(&AgencyId::new(id).unwrap()).unwrap();
            Signer::from_pem(&issued.cert_pem, &issued.key_pem, &fed).unwrap()
        };
        let ca_der = CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).unwrap();
        let verifier = Verifier::new(ca_der.as_ref(), &fed).unwrap();
        (signer("FR-DGSI"), signer("BE-VSSE"), verifier)
    }

    #[test]
    fn an_issued_receipt_checks_out_and_any_other_does_not() {
        let (fr, be, verifier) = setup();
        let digest = [7u8; 32];
        let at = chrono::DateTime::from_timestamp(1_447_322_400, 0).unwrap();
        let env = issue(&fr, "01ALERT", &digest, at);
        let expected = Expected {
            alert_id: "01ALERT",
            recipient: "FR-DGSI",
            alert_digest: Some(&digest),
        };
        let checked = verify(&verifier, &env, expected).unwrap();
        assert_eq!(checked.received_at, at);
        assert_eq!(checked.receipt.recipient, "FR-DGSI");
        // Without the digest, the rest is still checked.
        let no_digest = Expected {
            alert_digest: None,
            ..expected
        };
        assert!(verify(&verifier, &env, no_digest).is_ok());

        let other_alert = Expected {
            alert_id: "01OTHER",
            ..expected
        };
        assert!(matches!(
            verify(&verifier, &env, other_alert),
            Err(ReceiptError::Other { .. })
        ));
        let other_digest = [8u8; 32];
        let wrong_digest = Expected {
            alert_digest: Some(&other_digest),
            ..expected
        };
        assert!(matches!(
            verify(&verifier, &env, wrong_digest),
            Err(ReceiptError::Digest)
        ));
        // BE-VSSE cannot issue FR-DGSI's receipt: the signer is checked.
        let forged = {
            let r = pb::Receipt {
                alert_id: "01ALERT".into(),
                alert_digest: digest.to_vec(),
                recipient: "FR-DGSI".into(),
                received_at: Some(to_timestamp(at)),
            };
            be.sign(RECEIPT_PAYLOAD_TYPE, r.encode_to_vec())
        };
        assert!(matches!(
            verify(&verifier, &forged, expected),
            Err(ReceiptError::Signer { .. })
        ));
        // A payload changed after signing fails its signature.
        let mut tampered = env.clone();
        tampered.payload[2] ^= 1;
        assert!(matches!(
            verify(&verifier, &tampered, expected),
            Err(ReceiptError::Signature(_))
        ));
    }
}
