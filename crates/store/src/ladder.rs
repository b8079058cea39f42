//! The escalation ladder: steps due, steps taken, and the reminders and
//! notices received from others.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::codes::{EventKind, LadderStep, MessageKind};
use crate::error::Error;

/// A ladder step that is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueStep {
    /// The alert.
    pub alert_id: String,
    /// The recipient that has not answered.
    pub recipient: String,
    /// The rung reached so far ([`LadderStep::None`],
    /// [`LadderStep::Reminded`] or [`LadderStep::Escalated`]).
    pub ladder: LadderStep,
    /// Whether the alert reached the recipient.
    pub delivered: bool,
    /// The alert's precedence (wire number).
    pub precedence: i32,
    /// The alert's category.
    pub category: String,
    /// The alert's digest.
    pub digest: Vec<u8>,
    /// The delivery's deadline.
    pub due_at: DateTime<Utc>,
    /// When this step fell due.
    pub step_at: DateTime<Utc>,
}

/// A signed message to queue for a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// Its id.
    pub id: String,
    /// The peer.
    pub peer: String,
    /// [`MessageKind::Reminder`] or [`MessageKind::Notice`].
    pub kind: MessageKind,
    /// The encoded envelope.
    pub envelope: Vec<u8>,
}

/// A reminder received from the originator of an alert this agency
/// received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedReminder {
    /// The reminder's id.
    pub id: String,
    /// The alert it is about.
    pub alert_id: String,
    /// The alert's originator, who sent the reminder.
    pub originator: String,
    /// The encoded envelope.
    pub envelope: Vec<u8>,
    /// When this node received it.
    pub at: DateTime<Utc>,
    /// Whether it is an escalated reminder (an ESCALATED event, not a
    /// REMINDED one).
    pub escalated: bool,
    /// The event's text.
    pub detail: String,
}

/// An escalation notice received by this node as an observer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedNotice {
    /// The notice's id.
    pub id: String,
    /// The alert it is about.
    pub alert_id: String,
    /// The recipient that left the alert unanswered.
    pub laggard: String,
    /// The encoded envelope.
    pub envelope: Vec<u8>,
    /// When this node received it.
    pub at: DateTime<Utc>,
    /// The event's text.
    pub detail: String,
}

/// One step taken: the new rung, when the next falls, what to send, and
/// the event that records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepTaken {
    /// The alert.
    pub alert_id: String,
    /// The recipient.
    pub recipient: String,
    /// The rung reached (never [`LadderStep::None`]).
    pub ladder: LadderStep,
    /// When the next step falls; none after the last.
    pub next_step_at: Option<DateTime<Utc>>,
    /// Messages to queue.
    pub messages: Vec<NewMessage>,
    /// The event that records the step: [`EventKind::Reminded`], [`EventKind::Escalated`] or [`EventKind::Lapsed`].
    pub event_kind: EventKind,
    /// Event text.
    pub detail: String,
    /// When the step is taken (event time).
    pub at: DateTime<Utc>,
}

/// The escalation ladder: steps due and taken, reminders and notices
/// received. Part of [`crate::Backend`].
#[async_trait]
pub trait LadderStore: Send + Sync {
    /// Ladder steps due at `now`, earliest first.
    async fn due_steps(&self, now: DateTime<Utc>) -> Result<Vec<DueStep>, Error>;

    /// Records steps taken, each with its messages and event, in one
    /// transaction. A step for a delivery acknowledged in the meantime is
    /// skipped: an acknowledgement stops the ladder.
    async fn take_steps(&self, steps: Vec<StepTaken>) -> Result<usize, Error>;

    /// Records a reminder received from `originator` for an alert this
    /// agency received from it. Idempotent by id. [`Error::NotFound`] if
    /// no such alert came from `originator`.
    async fn record_reminder(&self, reminder: ReceivedReminder) -> Result<bool, Error>;

    /// Records an escalation notice received by this observer. Idempotent
    /// by id.
    async fn record_notice(&self, notice: ReceivedNotice) -> Result<bool, Error>;
}
