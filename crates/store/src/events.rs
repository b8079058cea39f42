//! The event log and the deadline tracker's queries.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::codes::{DeadlineFlag, Direction, EventKind};
use crate::error::Error;

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    /// Increasing id.
    pub id: u64,
    /// When (node clock).
    pub at: DateTime<Utc>,
    /// What happened.
    pub kind: EventKind,
    /// The alert concerned.
    pub alert_id: String,
    /// The other agency concerned.
    pub agency: String,
    /// Which way the alert went.
    pub direction: Direction,
    /// A readable account.
    pub detail: String,
}

/// A deadline the tracker just flagged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flagged {
    /// The alert.
    pub alert_id: String,
    /// Outbound: the recipient that did not answer. Inbound: the originator.
    pub agency: String,
    /// Which side this node is on.
    pub direction: Direction,
    /// [`DeadlineFlag::Overdue`] or [`DeadlineFlag::Undelivered`].
    pub flag: DeadlineFlag,
    /// The deadline that passed.
    pub due_at: DateTime<Utc>,
}

/// An event to insert: what happened, to which alert, with which agency.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewEvent<'a> {
    /// When it happened.
    pub(crate) at: DateTime<Utc>,
    /// What happened.
    pub(crate) kind: EventKind,
    /// The alert concerned.
    pub(crate) alert_id: &'a str,
    /// The other agency concerned.
    pub(crate) agency: &'a str,
    /// Which way the alert went.
    pub(crate) direction: Direction,
    /// A readable account.
    pub(crate) detail: &'a str,
}

/// The event log, and the deadline tracker's queries and flags. Part of [`crate::Backend`].
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Events with an id above `after`, oldest first.
    async fn events_after(&self, after: u64, limit: u32) -> Result<Vec<EventRow>, Error>;

    /// The id of the latest event (0 if none).
    async fn last_event_id(&self) -> Result<u64, Error>;

    /// The earliest deadline not yet flagged nor answered, on either side,
    /// or ladder step not yet taken.
    async fn next_deadline(&self) -> Result<Option<DateTime<Utc>>, Error>;

    /// Flags every unanswered deadline at or before `now`, in deadline
    /// order, each with its event (OVERDUE or UNDELIVERED) whose text
    /// `detail` words, in one transaction. Returns what was flagged.
    async fn flag_overdue(
        &self,
        now: DateTime<Utc>,
        detail: for<'f> fn(&'f Flagged) -> String,
    ) -> Result<Vec<Flagged>, Error>;
}
