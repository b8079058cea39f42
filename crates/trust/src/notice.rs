//! Escalation notices: the one place one is signed and the one place it is
//! checked.
//!
//! A notice is the originator's signed word to the federation's observers
//! that a recipient let an alert's deadline pass and the ladder escalated
//! it. The originator's ladder signs it ([`sign`]); the observer's node and
//! the audit check check it ([`check`], or [`verify`]) against what they
//! expect of it ([`Expected`]).

use prost::Message;
use tocsin_core::AgencyId;
use tocsin_proto::{NOTICE_PAYLOAD_TYPE, pb};

use crate::signing::Verified;
use crate::{Signer, Verifier};

/// What is wrong with a notice.
#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    /// Its signature does not hold.
    #[error("{0}")]
    Signature(#[from] crate::Error),
    /// Signed by another agency than the originator it should come from.
    #[error("signed by {signer}, not {expected}")]
    Signer {
        /// Who signed it.
        signer: AgencyId,
        /// Who should have.
        expected: String,
    },
    /// Its payload is not a notice.
    #[error("not a notice: {0}")]
    Decode(#[from] prost::DecodeError),
    /// About another agency's alert than its signer's.
    #[error("a notice about {originator}'s alert, signed by {signer}")]
    Originator {
        /// The originator it names.
        originator: String,
        /// Who signed it.
        signer: AgencyId,
    },
    /// Another notice than the one expected.
    #[error("notice {id}, not {expected}")]
    Id {
        /// Its id.
        id: String,
        /// The id expected.
        expected: String,
    },
}

/// What a notice must say to count. Whatever is `None` is not checked; a
/// notice must always name its signer as originator.
#[derive(Debug, Clone, Copy, Default)]
pub struct Expected<'a> {
    /// The originator that must have signed it.
    pub originator: Option<&'a str>,
    /// Its id, where the checker knows it (the audit, by its location).
    pub id: Option<&'a str>,
}

/// The envelope `signer`'s node sends for `notice`, which must name
/// `signer`'s agency as originator.
pub fn sign(signer: &Signer, notice: &pb::EscalationNotice) -> pb::Envelope {
    signer.sign(NOTICE_PAYLOAD_TYPE, notice.encode_to_vec())
}

/// Checks a notice whose signature was checked already (`verified`)
/// against `expected`: signer, then payload, then what it names.
pub fn check(
    verified: Result<Verified, crate::Error>,
    envelope: &pb::Envelope,
    expected: Expected<'_>,
) -> Result<pb::EscalationNotice, NoticeError> {
    let verified = verified?;
    if let Some(originator) = expected.originator
        && verified.signer.as_str() != originator
    {
        return Err(NoticeError::Signer {
            signer: verified.signer,
            expected: originator.to_owned(),
        });
    }
    let notice = pb::EscalationNotice::decode(envelope.payload.as_slice())?;
    if notice.originator != verified.signer.as_str() {
        return Err(NoticeError::Originator {
            originator: notice.originator,
            signer: verified.signer,
        });
    }
    if let Some(id) = expected.id
        && id != notice.id
    {
        return Err(NoticeError::Id {
            id: notice.id,
            expected: id.to_owned(),
        });
    }
    Ok(notice)
}

/// Checks a notice's signature against the federation CA, then `expected`.
pub fn verify(
    verifier: &Verifier,
    envelope: &pb::Envelope,
    expected: Expected<'_>,
) -> Result<pb::EscalationNotice, NoticeError> {
    check(
        verifier.verify(envelope, NOTICE_PAYLOAD_TYPE),
        envelope,
        expected,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::two_signers;

    fn notice(originator: &str) -> pb::EscalationNotice {
        pb::EscalationNotice {
            id: "01NOTICE".into(),
            alert_id: "01ALERT".into(),
            originator: originator.into(),
            recipient: "BE-VSSE".into(),
            precedence: pb::Precedence::Flash as i32,
            category: "terrorism".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_signed_notice_checks_out_and_any_other_does_not() {
        let (fr, be, verifier) = two_signers();
        let env = sign(&fr, &notice("FR-DGSI"));
        let expected = Expected {
            originator: Some("FR-DGSI"),
            id: Some("01NOTICE"),
        };
        assert_eq!(
            verify(&verifier, &env, expected).unwrap(),
            notice("FR-DGSI")
        );
        assert!(verify(&verifier, &env, Expected::default()).is_ok());

        // Wrong signer.
        let theirs = sign(&be, &notice("BE-VSSE"));
        assert!(matches!(
            verify(&verifier, &theirs, expected),
            Err(NoticeError::Signer { .. })
        ));
        // BE-VSSE cannot speak of FR-DGSI's alert.
        let forged = sign(&be, &notice("FR-DGSI"));
        assert!(matches!(
            verify(&verifier, &forged, Expected::default()),
            Err(NoticeError::Originator { .. })
        ));
        assert!(matches!(
            verify(
                &verifier,
                &env,
                Expected {
                    id: Some("01OTHER"),
                    ..expected
                }
            ),
            Err(NoticeError::Id { .. })
        ));
        // Wrong payload type.
        let reminder = fr.sign(tocsin_proto::REMINDER_PAYLOAD_TYPE, env.payload.clone());
        assert!(matches!(
            verify(&verifier, &reminder, expected),
            Err(NoticeError::Signature(_))
        ));
        // Corrupt payload: changed after signing, or signed broken.
        let mut tampered = env.clone();
        tampered.payload[2] ^= 1;
        assert!(matches!(
            verify(&verifier, &tampered, expected),
            Err(NoticeError::Signature(_))
        ));
        let broken = fr.sign(NOTICE_PAYLOAD_TYPE, vec![0xff, 0xff, 0xff]);
        assert!(matches!(
            verify(&verifier, &broken, expected),
            Err(NoticeError::Decode(_))
        ));
    }
}
