//! The outbox of signed messages other than alerts (acknowledgements,
//! reminders, escalation notices): what is due for a peer, and the
//! outcomes of sending it. Each kind is queued by the use case that makes
//! it (`acks`, `ladder`); sending them is one queue.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::codes::{MessageKind, UnknownCode};
use crate::error::Error;
use crate::records::{AttemptOutcome, OutcomeWords};

/// A pending message that is due.
#[derive(Debug, Clone)]
pub struct DueMessage {
    /// The message id.
    pub id: String,
    /// What kind of message, or the code found if it names none (a
    /// corrupt row, which the caller refuses for good rather than letting
    /// it stop the queue behind it).
    pub kind: Result<MessageKind, UnknownCode>,
    /// The encoded envelope.
    pub envelope: Vec<u8>,
    /// Attempts so far.
    pub attempts: u32,
}

/// The outbox of messages other than alerts. Part of [`crate::Backend`].
#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Pending messages to `peer` due at `now`, oldest due first; claimed
    /// on PostgreSQL, as `RecordStore::due_deliveries` says.
    async fn due_messages(
        &self,
        peer: &str,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DueMessage>, Error>;

    /// Records the outcomes of message attempts, in one transaction, at
    /// `at` (events worded by `words`). An acknowledgement the originator refused for good keeps the
    /// refusal (see [`AckRow::refusal`](crate::AckRow::refusal)) and is an event of its alert.
    async fn record_message_attempts(
        &self,
        outcomes: Vec<(String, AttemptOutcome)>,
        at: DateTime<Utc>,
        words: OutcomeWords,
    ) -> Result<(), Error>;
}
