//! Acknowledgements: ours (queued for the originator) and recipients'.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::Error;

/// An acknowledgement to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAck {
    /// Its id.
    pub id: String,
    /// The alert acknowledged.
    pub alert_id: String,
    /// The acknowledging agency.
    pub agency: String,
    /// The operator.
    pub operator: String,
    /// Disposition, as its wire number.
    pub disposition: i32,
    /// Note.
    pub note: String,
    /// The signed time.
    pub acknowledged_at: DateTime<Utc>,
    /// When this node stores it.
    pub stored_at: DateTime<Utc>,
    /// The encoded envelope.
    pub envelope: Vec<u8>,
}

/// A stored acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckRow {
    /// The acknowledgement as stored.
    pub ack: NewAck,
    /// Sent by this node: whether the originator has it. Received: always true.
    pub delivered: bool,
    /// Sent by this node: the originator's answer if it refused it for
    /// good (it is not retried). Received: always `None`.
    pub refusal: Option<String>,
}

/// What storing a received acknowledgement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckOutcome {
    /// Newly recorded.
    Stored,
    /// Already recorded with the same content.
    Duplicate,
}

/// Acknowledgements: this agency's own, queued for the originator, and
/// those recipients send back. Part of [`crate::Backend`].
#[async_trait]
pub trait AckStore: Send + Sync {
    /// Stores this agency's acknowledgement of an inbound alert and queues
    /// it for the originator `peer`, in one transaction. `Conflict` when an
    /// acknowledgement with its id is stored already (a retried call).
    async fn insert_own_ack(&self, ack: NewAck, peer: String, detail: String) -> Result<(), Error>;

    /// Records an acknowledgement received from a recipient of an outbound
    /// alert. [`Error::NotFound`] if the alert is not ours or `ack.agency`
    /// is not one of its recipients; [`Error::Conflict`] if the id is taken
    /// by other content.
    async fn record_received_ack(&self, ack: NewAck, detail: String) -> Result<AckOutcome, Error>;
}
