//! Hit reports this agency sent, by the entry they matched and the person
//! as screened: what makes a second screen of the same person within the
//! repeat window find the first report instead of sending another.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::Error;
use crate::records::{AlertHistory, NewAlert};

/// What identifies a report for its repeat check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HitKey {
    /// The entry's owner (the report's recipient).
    pub owner: String,
    /// The owner's ref for the entry.
    pub entry_ref: String,
    /// A digest of the person as screened, normalised.
    pub person_key: Vec<u8>,
    /// A report at or after this time is a repeat.
    pub repeat_since: DateTime<Utc>,
}

/// What storing a hit report did.
#[derive(Debug, Clone)]
pub enum HitOutcome {
    /// The report was stored, with its delivery pending.
    Sent(Box<AlertHistory>),
    /// A report of the same person on the same entry was sent within the
    /// window: nothing stored; its id.
    Repeat(String),
}

/// Hit reports sent, checked against their repeat window. Part of [`crate::Backend`].
#[async_trait]
pub trait HitStore: Send + Sync {
    /// Stores `alert`, a hit report to `key.owner`, unless one of the same
    /// person on the same entry was stored at or after `key.repeat_since`;
    /// the check and the insert are one transaction, so two screens at once
    /// send one report. Resolves once committed.
    async fn insert_hit_report(&self, alert: NewAlert, key: HitKey) -> Result<HitOutcome, Error>;
}
