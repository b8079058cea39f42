//! Reminders: the one place one is signed and the one place it is checked.
//!
//! A reminder is the originator's signed word to a recipient that the
//! deadline of an alert passed with no acknowledgement (step 1), or that it
//! is escalated (step 2). The originator's ladder signs it ([`sign`]); the
//! recipient's node and the audit check check it ([`check`], or
//! [`verify`]) against what they expect of it ([`Expected`]).

use prost::Message;
use tocsin_core::AgencyId;
use tocsin_proto::{REMINDER_PAYLOAD_TYPE, pb};

use crate::signing::Verified;
use crate::{Signer, Verifier};

/// What is wrong with a reminder.
#[derive(Debug, thiserror::Error)]
pub enum ReminderError {
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
    /// Its payload is not a reminder.
    #[error("not a reminder: {0}")]
    Decode(#[from] prost::DecodeError),
    /// From another originator than its signer, or to another recipient.
    #[error(
        "a reminder from {originator} to {recipient}, not from {signer} to {expected_recipient}"
    )]
    Parties {
        /// The originator it names.
        originator: String,
        /// The recipient it names.
        recipient: String,
        /// Who signed it.
        signer: AgencyId,
        /// The recipient expected (its own where none was).
        expected_recipient: String,
    },
    /// Another reminder than the one expected.
    #[error("reminder {id}, not {expected}")]
    Id {
        /// Its id.
        id: String,
        /// The id expected.
        expected: String,
    },
}

/// What a reminder must say to count. Whatever is `None` is not checked; a
/// reminder must always name its signer as originator.
#[derive(Debug, Clone, Copy, Default)]
pub struct Expected<'a> {
    /// The originator that must have signed it.
    pub originator: Option<&'a str>,
    /// The recipient it must be for.
    pub recipient: Option<&'a str>,
    /// Its id, where the checker knows it (the audit, by its location).
    pub id: Option<&'a str>,
}

/// The envelope `signer`'s node sends for `reminder`, which must name
/// `signer`'s agency as originator.
pub fn sign(signer: &Signer, reminder: &pb::Reminder) -> pb::Envelope {
    signer.sign(REMINDER_PAYLOAD_TYPE, reminder.encode_to_vec())
}

/// Checks a reminder whose signature was checked already (`verified`)
/// against `expected`: signer, then payload, then what it names.
pub fn check(
    verified: Result<Verified, crate::Error>,
    envelope: &pb::Envelope,
    expected: Expected<'_>,
) -> Result<pb::Reminder, ReminderError> {
    let verified = verified?;
    if let Some(originator) = expected.originator
        && verified.signer.as_str() != originator
    {
        return Err(ReminderError::Signer {
            signer: verified.signer,
            expected: originator.to_owned(),
        });
    }
    let reminder = pb::Reminder::decode(envelope.payload.as_slice())?;
    if reminder.originator != verified.signer.as_str()
        || expected.recipient.is_some_and(|r| r != reminder.recipient)
    {
        return Err(ReminderError::Parties {
            expected_recipient: expected.recipient.unwrap_or(&reminder.recipient).to_owned(),
            originator: reminder.originator,
            recipient: reminder.recipient,
            signer: verified.signer,
        });
    }
    if let Some(id) = expected.id
        && id != reminder.id
    {
        return Err(ReminderError::Id {
            id: reminder.id,
            expected: id.to_owned(),
        });
    }
    Ok(reminder)
}

/// Checks a reminder's signature against the federation CA, then
/// `expected`.
pub fn verify(
    verifier: &Verifier,
    envelope: &pb::Envelope,
    expected: Expected<'_>,
) -> Result<pb::Reminder, ReminderError> {
    check(
        verifier.verify(envelope, REMINDER_PAYLOAD_TYPE),
        envelope,
        expected,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::two_signers;

    fn reminder(originator: &str) -> pb::Reminder {
        pb::Reminder {
            id: "01REMINDER".into(),
            alert_id: "01ALERT".into(),
            alert_digest: vec![7; 32],
            originator: originator.into(),
            recipient: "BE-VSSE".into(),
            step: 1,
            precedence: pb::Precedence::Flash as i32,
            ..Default::default()
        }
    }

    #[test]
    fn a_signed_reminder_checks_out_and_any_other_does_not() {
        let (fr, be, verifier) = two_signers();
        let env = sign(&fr, &reminder("FR-DGSI"));
        let expected = Expected {
            originator: Some("FR-DGSI"),
            recipient: Some("BE-VSSE"),
            id: Some("01REMINDER"),
        };
        assert_eq!(
            verify(&verifier, &env, expected).unwrap(),
            reminder("FR-DGSI")
        );
        assert!(verify(&verifier, &env, Expected::default()).is_ok());

        // Wrong signer.
        let theirs = sign(&be, &reminder("BE-VSSE"));
        assert!(matches!(
            verify(&verifier, &theirs, expected),
            Err(ReminderError::Signer { .. })
        ));
        // BE-VSSE cannot remind in FR-DGSI's name.
        let forged = sign(&be, &reminder("FR-DGSI"));
        assert!(matches!(
            verify(&verifier, &forged, Expected::default()),
            Err(ReminderError::Parties { .. })
        ));
        // For another recipient, or another reminder.
        assert!(matches!(
            verify(
                &verifier,
                &env,
                Expected {
                    recipient: Some("EU-EUROPOL"),
                    ..expected
                }
            ),
            Err(ReminderError::Parties { .. })
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
            Err(ReminderError::Id { .. })
        ));
        // Wrong payload type.
        let notice = fr.sign(tocsin_proto::NOTICE_PAYLOAD_TYPE, env.payload.clone());
        assert!(matches!(
            verify(&verifier, &notice, expected),
            Err(ReminderError::Signature(_))
        ));
        // Corrupt payload: changed after signing, or signed broken.
        let mut tampered = env.clone();
        tampered.payload[2] ^= 1;
        assert!(matches!(
            verify(&verifier, &tampered, expected),
            Err(ReminderError::Signature(_))
        ));
        let broken = fr.sign(REMINDER_PAYLOAD_TYPE, vec![0xff, 0xff, 0xff]);
        assert!(matches!(
            verify(&verifier, &broken, expected),
            Err(ReminderError::Decode(_))
        ));
    }
}
