//! Acknowledgements: the one place one is signed and the one place it is
//! checked.
//!
//! An acknowledgement is the recipient's signed statement that one of its
//! analysts looked at an alert, and what they decided. The recipient's node
//! signs it ([`sign`]); the originator's node, the audit check and the
//! timeline check it ([`check`], or [`verify`] when its signature is still
//! to be checked) against what they expect of it ([`Expected`]).

use prost::Message;
use tocsin_core::AgencyId;
use tocsin_core::ValidationError;
use tocsin_core::ack::Acknowledgement;
use tocsin_proto::{ACK_PAYLOAD_TYPE, pb};

use crate::signing::Verified;
use crate::{Signer, Verifier};

/// What is wrong with an acknowledgement.
#[derive(Debug, thiserror::Error)]
pub enum AckError {
    /// Its signature does not hold.
    #[error("{0}")]
    Signature(#[from] crate::Error),
    /// Signed by another agency than the recipient it should come from.
    #[error("signed by {signer}, not {expected}")]
    Signer {
        /// Who signed it.
        signer: AgencyId,
        /// Who should have.
        expected: String,
    },
    /// Its payload is not an acknowledgement.
    #[error("not an acknowledgement: {0}")]
    Decode(#[from] prost::DecodeError),
    /// It is an acknowledgement, with a field out of line.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// It names another recipient than the agency that signed it.
    #[error("acknowledgement {id} by {recipient}, signed by {signer}")]
    Recipient {
        /// Its id.
        id: String,
        /// The recipient it names.
        recipient: AgencyId,
        /// Who signed it.
        signer: AgencyId,
    },
    /// It is another acknowledgement, or of another alert.
    #[error("acknowledgement {id} of alert {alert_id}, not the one expected")]
    Other {
        /// Its id.
        id: String,
        /// The alert it acknowledges.
        alert_id: String,
    },
    /// Its digest is not that of the alert sent.
    #[error("its digest does not match the alert sent")]
    Digest,
}

/// What an acknowledgement must say to count. Whatever is `None` is not
/// checked; an acknowledgement must always name its signer as recipient.
#[derive(Debug, Clone, Copy, Default)]
pub struct Expected<'a> {
    /// The recipient that must have signed it.
    pub recipient: Option<&'a str>,
    /// Its id, where the checker knows it (the audit, by its location).
    pub id: Option<&'a str>,
    /// The alert it must acknowledge.
    pub alert_id: Option<&'a str>,
    /// The digest of that alert's envelope, where the checker holds it.
    pub alert_digest: Option<&'a [u8]>,
}

/// The envelope `signer`'s node sends for `ack`. The acknowledgement must
/// name `signer`'s agency as recipient, or no one will accept it.
pub fn sign(signer: &Signer, ack: &Acknowledgement) -> pb::Envelope {
    signer.sign(
        ACK_PAYLOAD_TYPE,
        pb::Acknowledgement::from(ack).encode_to_vec(),
    )
}

/// Checks an acknowledgement whose signature was checked already
/// (`verified`) against `expected`: signer, then payload, then what it
/// names. Returns it validated.
pub fn check(
    verified: Result<Verified, crate::Error>,
    envelope: &pb::Envelope,
    expected: Expected<'_>,
) -> Result<Acknowledgement, AckError> {
    let verified = verified?;
    if let Some(recipient) = expected.recipient
        && verified.signer.as_str() != recipient
    {
        return Err(AckError::Signer {
            signer: verified.signer,
            expected: recipient.to_owned(),
        });
    }
    let wire = pb::Acknowledgement::decode(envelope.payload.as_slice())?;
    let id = wire.id.clone();
    let ack = Acknowledgement::try_from(wire)?;
    if ack.recipient != verified.signer {
        return Err(AckError::Recipient {
            id,
            recipient: ack.recipient,
            signer: verified.signer,
        });
    }
    let alert_id = ack.alert_id.to_string();
    if expected.id.is_some_and(|e| e != id) || expected.alert_id.is_some_and(|e| e != alert_id) {
        return Err(AckError::Other { id, alert_id });
    }
    if let Some(digest) = expected.alert_digest {
        check_digest(&ack, digest)?;
    }
    Ok(ack)
}

/// Checks an acknowledgement's signature against the federation CA, then
/// `expected`.
pub fn verify(
    verifier: &Verifier,
    envelope: &pb::Envelope,
    expected: Expected<'_>,
) -> Result<Acknowledgement, AckError> {
    check(
        verifier.verify(envelope, ACK_PAYLOAD_TYPE),
        envelope,
        expected,
    )
}

/// Checks that a checked acknowledgement is of the alert whose envelope
/// has `alert_digest`: for the originator, who learns which alert it names
/// only from the acknowledgement itself.
pub fn check_digest(ack: &Acknowledgement, alert_digest: &[u8]) -> Result<(), AckError> {
    if ack.alert_digest.as_slice() == alert_digest {
        Ok(())
    } else {
        Err(AckError::Digest)
    }
}

#[cfg(test)]
mod tests {
    use tocsin_core::AlertId;
    use tocsin_core::alert::Disposition;

    use super::*;
    use crate::testing::two_signers;

    fn ack_by(recipient: &str) -> Acknowledgement {
        Acknowledgement {
            id: AlertId::generate(),
            alert_id: AlertId::generate(),
            alert_digest: [7; 32],
            recipient: AgencyId::new(recipient).unwrap(),
            operator: "bob".into(),
            disposition: Disposition::Noted,
            note: "Seen.".into(),
            acknowledged_at: chrono::DateTime::from_timestamp(1_447_322_400, 0).unwrap(),
        }
    }

    #[test]
    fn a_signed_acknowledgement_checks_out_and_any_other_does_not() {
        let (fr, be, verifier) = two_signers();
        let ack = ack_by("FR-DGSI");
        let env = sign(&fr, &ack);
        let id = ack.id.to_string();
        let alert_id = ack.alert_id.to_string();
        let expected = Expected {
            recipient: Some("FR-DGSI"),
            id: Some(&id),
            alert_id: Some(&alert_id),
            alert_digest: Some(&[7; 32]),
        };
        assert_eq!(verify(&verifier, &env, expected).unwrap(), ack);
        assert!(verify(&verifier, &env, Expected::default()).is_ok());

        // Wrong signer: BE-VSSE's acknowledgement is not FR-DGSI's.
        let theirs = sign(&be, &ack_by("BE-VSSE"));
        assert!(matches!(
            verify(
                &verifier,
                &theirs,
                Expected {
                    recipient: Some("FR-DGSI"),
                    ..Default::default()
                }
            ),
            Err(AckError::Signer { .. })
        ));
        // BE-VSSE cannot acknowledge in FR-DGSI's name.
        let forged = sign(&be, &ack);
        assert!(matches!(
            verify(&verifier, &forged, Expected::default()),
            Err(AckError::Recipient { .. })
        ));
        // Wrong alert, wrong id, wrong digest.
        let other = AlertId::generate().to_string();
        assert!(matches!(
            verify(
                &verifier,
                &env,
                Expected {
                    alert_id: Some(&other),
                    ..expected
                }
            ),
            Err(AckError::Other { .. })
        ));
        assert!(matches!(
            verify(
                &verifier,
                &env,
                Expected {
                    id: Some(&other),
                    ..expected
                }
            ),
            Err(AckError::Other { .. })
        ));
        assert!(matches!(
            verify(
                &verifier,
                &env,
                Expected {
                    alert_digest: Some(&[8; 32]),
                    ..expected
                }
            ),
            Err(AckError::Digest)
        ));
        // Wrong payload type: a reminder's envelope is no acknowledgement.
        let reminder = fr.sign(tocsin_proto::REMINDER_PAYLOAD_TYPE, env.payload.clone());
        assert!(matches!(
            verify(&verifier, &reminder, expected),
            Err(AckError::Signature(_))
        ));
        // Corrupt payload: changed after signing, or signed broken.
        let mut tampered = env.clone();
        tampered.payload[2] ^= 1;
        assert!(matches!(
            verify(&verifier, &tampered, expected),
            Err(AckError::Signature(_))
        ));
        let broken = fr.sign(ACK_PAYLOAD_TYPE, vec![0xff, 0xff, 0xff]);
        assert!(matches!(
            verify(&verifier, &broken, expected),
            Err(AckError::Decode(_))
        ));
        // Signed, decodable, and out of line.
        let mut wire = pb::Acknowledgement::from(&ack);
        wire.disposition = 0;
        let invalid = fr.sign(ACK_PAYLOAD_TYPE, wire.encode_to_vec());
        assert!(matches!(
            verify(&verifier, &invalid, expected),
            Err(AckError::Invalid(e)) if e.field == "disposition"
        ));
    }
}
