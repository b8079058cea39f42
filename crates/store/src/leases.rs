//! Leases: work that one front node of an agency must do at a time (the
//! deadline tracker's), held for a while and renewed, with an epoch that
//! fences a holder that lost its lease without knowing it.
//!
//! Why not a session-scoped advisory lock (`pg_advisory_lock`): it is
//! held by a connection, not by the work. A front node whose connection
//! dies server-side keeps running as if it held the lock while another
//! node takes it (split brain, with nothing to refuse the first node's
//! writes), a pool that hands the locked connection to other tasks
//! stacks re-acquisitions on it, and a connection that hangs holds the
//! lock for as long as TCP keeps it up. A lease row names its holder and
//! an epoch that rises at each change of holder; every write the tracker
//! makes checks, inside its own transaction, that the row still names
//! this holder at this epoch ([`Error::LeaseLost`] otherwise), so a stale
//! holder's write commits nothing, whatever it believes.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

use crate::error::Error;

/// The deadline tracker's lease: flags, ladder steps and repeated-warning
/// checks are made by its holder only.
pub const TRACKER_LEASE: &str = "tracker";

/// A lease this store handle holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldLease {
    /// Rises by one each time another holder takes the lease.
    pub epoch: u64,
    /// When it lapses unless renewed; `None` when it never does (SQLite,
    /// where one node owns the store).
    pub expires_at: Option<DateTime<Utc>>,
}

/// Leases with fencing. Part of [`crate::Backend`].
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes lease `name` until `now + ttl` if it is free or lapsed (the
    /// epoch rises by one), or renews it if this handle holds it (same
    /// epoch); `None` while another holder's lease is live. From then on
    /// this handle's tracker writes are fenced by the answer: refused with
    /// [`Error::LeaseLost`] unless the lease still names this handle at
    /// this epoch. SQLite, one node per store, always holds it at epoch 1.
    async fn hold_lease(
        &self,
        name: &str,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Result<Option<HeldLease>, Error>;
}
