//! Alerts, sent and received, and their deliveries: the rows a node
//! keeps for each, and the operations on them.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::codes::{AlertStatus, DeadlineFlag, DeliveryState, Direction, LadderStep};
use crate::error::Error;

/// An alert to store.
#[derive(Debug, Clone)]
pub struct NewAlert {
    /// The alert id.
    pub id: String,
    /// The originating agency.
    pub originator: String,
    /// The signed creation time.
    pub created_at: DateTime<Utc>,
    /// When this node stores it.
    pub stored_at: DateTime<Utc>,
    /// Precedence, as its wire number.
    pub precedence: i32,
    /// Category.
    pub category: String,
    /// Subjects, for listings.
    pub summary: String,
    /// SHA-256 of the envelope's signed bytes.
    pub digest: Vec<u8>,
    /// The encoded envelope.
    pub envelope: Vec<u8>,
    /// When recipients must acknowledge it.
    pub due_at: DateTime<Utc>,
    /// Outbound: when the first escalation step falls if no one answers.
    pub first_step_at: Option<DateTime<Utc>>,
    /// The subjects' match keys (see `tocsin_core::subject`).
    pub keys: Vec<String>,
    /// Earlier alerts of the same originator this one closes.
    pub closes: Vec<Closing>,
    /// The text of the event that records storing it (SUBMITTED or
    /// RECEIVED); the node's domain words it.
    pub detail: String,
}

/// An earlier alert that a new one closes, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closing {
    /// The earlier alert.
    pub alert_id: String,
    /// The status it takes: [`AlertStatus::Superseded`] or
    /// [`AlertStatus::Cancelled`].
    pub status: AlertStatus,
    /// The text of its SUPERSEDED or CANCELLED event, written only if it
    /// was still open.
    pub detail: String,
}

/// A stored alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRow {
    /// The alert id.
    pub id: String,
    /// Which way it went.
    pub direction: Direction,
    /// The originating agency.
    pub originator: String,
    /// The signed creation time.
    pub created_at: DateTime<Utc>,
    /// When this node committed it.
    pub stored_at: DateTime<Utc>,
    /// Precedence, as its wire number.
    pub precedence: i32,
    /// Category.
    pub category: String,
    /// Subjects, for listings.
    pub summary: String,
    /// SHA-256 of the envelope's signed bytes.
    pub digest: Vec<u8>,
    /// The encoded envelope.
    pub envelope: Vec<u8>,
    /// Inbound: the encoded receipt envelope this node issued.
    pub receipt: Option<Vec<u8>>,
    /// When recipients must acknowledge it (none for rows older than the
    /// acknowledgement schema).
    pub due_at: Option<DateTime<Utc>>,
    /// Inbound: the deadline's flag.
    pub flag: DeadlineFlag,
    /// When the flag was set.
    pub flagged_at: Option<DateTime<Utc>>,
    /// Inbound: reminders received.
    pub reminders: i64,
    /// Whether a later alert closed it.
    pub status: AlertStatus,
    /// The later alert that closed this one.
    pub closed_by: Option<String>,
}

/// One outbound alert's delivery to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    /// The alert.
    pub alert_id: String,
    /// The recipient agency.
    pub recipient: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts so far.
    pub attempts: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When the recipient committed it, from its receipt.
    pub delivered_at: Option<DateTime<Utc>>,
    /// The encoded receipt envelope.
    pub receipt: Option<Vec<u8>>,
    /// When the recipient must acknowledge by.
    pub due_at: Option<DateTime<Utc>>,
    /// The deadline's flag.
    pub flag: DeadlineFlag,
    /// When the flag was set.
    pub flagged_at: Option<DateTime<Utc>>,
    /// The escalation rung reached.
    pub ladder: LadderStep,
    /// When the next rung falls.
    pub next_step_at: Option<DateTime<Utc>>,
    /// While pending: why it cannot go, if its recipient is blocked (see
    /// [`Store::block_peer`]).
    pub blocked: Option<String>,
}

/// An alert with its deliveries (by recipient) and acknowledgements
/// (oldest first), read in one transaction.
#[derive(Debug, Clone)]
pub struct AlertHistory {
    /// The alert.
    pub alert: AlertRow,
    /// Its deliveries; none for a received alert.
    pub deliveries: Vec<DeliveryRow>,
    /// Its acknowledgements.
    pub acks: Vec<crate::AckRow>,
}

/// A pending delivery that is due.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    /// The alert.
    pub alert_id: String,
    /// The encoded alert envelope.
    pub envelope: Vec<u8>,
    /// Attempts so far.
    pub attempts: u32,
}

/// What became of one delivery attempt.
#[derive(Debug, Clone)]
pub enum AttemptOutcome {
    /// The recipient returned a verified receipt.
    Delivered {
        /// When the recipient committed the alert.
        delivered_at: DateTime<Utc>,
        /// The encoded receipt envelope.
        receipt: Vec<u8>,
    },
    /// A failure worth retrying.
    Retry {
        /// What went wrong.
        error: String,
        /// When to try again.
        next_attempt_at: DateTime<Utc>,
    },
    /// The recipient refused for good.
    Rejected {
        /// What it said.
        error: String,
    },
}

/// How the events that attempt outcomes record read: the node words them
/// (see [`Store::record_attempts`], [`Store::record_message_attempts`]).
/// Functions, because an event is written only if the outcome changed a
/// row, which the transaction finds out.
#[derive(Debug, Clone, Copy)]
pub struct OutcomeWords {
    /// DELIVERED: `recipient`'s receipt says it committed the alert at
    /// `committed_at`.
    pub delivered: fn(recipient: &str, committed_at: DateTime<Utc>) -> String,
    /// REJECTED: `recipient` refused our alert for good with `error`.
    pub rejected: fn(recipient: &str, error: &str) -> String,
    /// REJECTED, of an alert we received: its `originator` refused our
    /// acknowledgement `ack_id` for good with `error`.
    pub refused_ack: fn(originator: &str, ack_id: &str, error: &str) -> String,
}

/// The result of storing a received alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundOutcome {
    /// Newly stored; the receipt given was kept.
    Stored,
    /// Already stored with the same content; here is the receipt issued then.
    Duplicate(Vec<u8>),
}

/// Alerts and their deliveries: storing them sent or received, the
/// outbox's attempts, and reading them back with their history. Part of [`crate::Backend`].
#[async_trait]
pub trait RecordStore: Send + Sync {
    /// Stores an alert this agency sends, with one pending delivery per
    /// recipient due at once, and returns it as stored. An alert with this
    /// id already stored is [`Error::Conflict`]; resolves once committed.
    async fn insert_outbound(
        &self,
        alert: NewAlert,
        recipients: Vec<String>,
    ) -> Result<AlertHistory, Error>;

    /// Stores an alert received from a peer with the receipt this node signs
    /// for it. The same alert again returns the receipt issued the first
    /// time; the same id with other content is [`Error::Conflict`]. Resolves
    /// once committed.
    async fn insert_inbound(
        &self,
        alert: NewAlert,
        receipt: Vec<u8>,
    ) -> Result<InboundOutcome, Error>;

    /// Records the outcomes of delivery attempts, in one transaction, each
    /// final one with its event, worded by `words`. Outcomes for
    /// deliveries no longer pending are ignored, so a late duplicate
    /// receipt cannot undo anything.
    async fn record_attempts(
        &self,
        outcomes: Vec<(String, String, AttemptOutcome)>,
        at: DateTime<Utc>,
        words: OutcomeWords,
    ) -> Result<(), Error>;

    /// Makes every pending delivery to `recipient` due at `now` (the peer
    /// is known to be up again). Returns how many were brought forward.
    async fn retry_now(&self, recipient: &str, now: DateTime<Utc>) -> Result<usize, Error>;

    /// One alert.
    async fn alert(&self, id: &str) -> Result<Option<AlertRow>, Error>;

    /// An alert with its deliveries and acknowledgements, read together.
    async fn alert_history(&self, id: &str) -> Result<Option<AlertHistory>, Error>;

    /// Alerts, newest first, each with its history.
    async fn list_alerts(
        &self,
        direction: Option<Direction>,
        limit: u32,
    ) -> Result<Vec<AlertHistory>, Error>;

    /// Pending deliveries to `recipient` due at `now`, oldest due first.
    /// On PostgreSQL, where several front nodes share the outbox, they are
    /// claimed for this node until `record_attempts` (or a lease) ends the
    /// claim, and rows another node holds are not due here.
    async fn due_deliveries(
        &self,
        recipient: &str,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, Error>;

    /// When the next pending delivery or message to `recipient` is due, if
    /// any is pending.
    async fn next_due(&self, recipient: &str) -> Result<Option<DateTime<Utc>>, Error>;
}
