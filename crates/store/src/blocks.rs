//! Peers the outbox cannot deliver to for a reason that retrying alone will
//! not fix (their node presents a revoked certificate). Their pending
//! deliveries read as blocked, with the reason, and stay in the outbox.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::Error;

/// Peers blocked for a revoked certificate. Part of [`crate::Backend`].
#[async_trait]
pub trait BlockStore: Send + Sync {
    /// Marks `peer` blocked for `reason`, from `at` (kept if already
    /// blocked, with the new reason). Returns whether it was not blocked
    /// before. Its pending deliveries then read as blocked; they stay due.
    async fn block_peer(&self, peer: &str, reason: &str, at: DateTime<Utc>) -> Result<bool, Error>;

    /// Lifts `peer`'s block, if any (something reached it). Returns whether
    /// it was blocked.
    async fn unblock_peer(&self, peer: &str) -> Result<bool, Error>;

    /// Why `peer` is blocked, if it is.
    async fn peer_block(&self, peer: &str) -> Result<Option<String>, Error>;
}
