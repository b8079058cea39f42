//! Acknowledgements: proof that an analyst of the recipient looked at an
//! alert, and what they decided.

use chrono::{DateTime, Utc};
use tocsin_proto::pb;

use crate::alert::{Disposition, ValidationError};
use crate::ids::{AgencyId, AlertId};
use crate::time::{from_timestamp, to_timestamp};

/// Longest note on an acknowledgement, in bytes.
pub const MAX_NOTE_BYTES: usize = 4 * 1024;

/// A validated acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledgement {
    /// This acknowledgement's id.
    pub id: AlertId,
    /// The alert acknowledged.
    pub alert_id: AlertId,
    /// SHA-256 of the alert envelope's signed bytes.
    pub alert_digest: [u8; 32],
    /// The acknowledging agency.
    pub recipient: AgencyId,
    /// The operator who acknowledged.
    pub operator: String,
    /// The decision.
    pub disposition: Disposition,
    /// Free text.
    pub note: String,
    /// When.
    pub acknowledged_at: DateTime<Utc>,
}

/// Checks a note: at most [`MAX_NOTE_BYTES`], no control characters but
/// line breaks and tabs. Empty is fine.
pub fn check_note(note: &str) -> Result<(), ValidationError> {
    if note.len() > MAX_NOTE_BYTES {
        return Err(ValidationError::new(
            "note",
            format!("{} bytes, at most {MAX_NOTE_BYTES} allowed", note.len()),
        ));
    }
    if note
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(ValidationError::new("note", "contains control characters"));
    }
    Ok(())
}

impl TryFrom<pb::Acknowledgement> for Acknowledgement {
    type Error = ValidationError;

    fn try_from(a: pb::Acknowledgement) -> Result<Self, Self::Error> {
        let field = |f: &str, e: String| ValidationError::new(f, e);
        let id =
            a.id.parse()
                .map_err(|e: crate::ids::IdError| field("id", e.to_string()))?;
        let alert_id = a
            .alert_id
            .parse()
            .map_err(|e: crate::ids::IdError| field("alert_id", e.to_string()))?;
        let alert_digest: [u8; 32] = a
            .alert_digest
            .as_slice()
            .try_into()
            .map_err(|_| field("alert_digest", "must be 32 bytes (SHA-256)".into()))?;
        let recipient =
            AgencyId::new(a.recipient).map_err(|e| field("recipient", e.to_string()))?;
        crate::ids::Identity::operator(recipient.clone(), a.operator.clone())
            .map_err(|e| field("operator", e.to_string()))?;
        let disposition = Disposition::from_wire(a.disposition)?;
        check_note(&a.note)?;
        let acknowledged_at = a
            .acknowledged_at
            .as_ref()
            .and_then(from_timestamp)
            .ok_or_else(|| field("acknowledged_at", "is required".into()))?;
        Ok(Self {
            id,
            alert_id,
            alert_digest,
            recipient,
            operator: a.operator,
            disposition,
            note: a.note,
            acknowledged_at,
        })
    }
}

impl From<&Acknowledgement> for pb::Acknowledgement {
    fn from(a: &Acknowledgement) -> Self {
        pb::Acknowledgement {
            id: a.id.to_string(),
            alert_id: a.alert_id.to_string(),
            alert_digest: a.alert_digest.to_vec(),
            recipient: a.recipient.to_string(),
            operator: a.operator.clone(),
            disposition: a.disposition.to_wire(),
            note: a.note.clone(),
            acknowledged_at: Some(to_timestamp(a.acknowledged_at)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_names_bad_fields() {
        let ack = Acknowledgement {
            id: AlertId::generate(),
            alert_id: AlertId::generate(),
            alert_digest: [7; 32],
            recipient: AgencyId::new("FR-DGSI").unwrap(),
            operator: "bob".into(),
            disposition: Disposition::Noted,
            note: "Seen.".into(),
            acknowledged_at: crate::clock::truncate_ms(Utc::now()),
        };
        let wire = pb::Acknowledgement::from(&ack);
        assert_eq!(Acknowledgement::try_from(wire.clone()).unwrap(), ack);

        let mut bad = wire.clone();
        bad.disposition = 0;
        assert_eq!(
            Acknowledgement::try_from(bad).unwrap_err().field,
            "disposition"
        );
        let mut bad = wire.clone();
        bad.alert_digest = vec![1, 2];
        assert_eq!(
            Acknowledgement::try_from(bad).unwrap_err().field,
            "alert_digest"
        );
        let mut bad = wire;
        bad.note = "x".repeat(MAX_NOTE_BYTES + 1);
        assert_eq!(Acknowledgement::try_from(bad).unwrap_err().field, "note");
    }
}
