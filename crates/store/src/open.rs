//! What is open: sent alerts awaiting an acknowledgement, received alerts
//! this agency owes one, and either past its deadline; soonest deadline
//! first.

use async_trait::async_trait;

use crate::error::Error;
use crate::records::AlertHistory;

/// What is awaited, owed and overdue. Part of [`crate::Backend`].
#[async_trait]
pub trait OpenStore: Send + Sync {
    /// Sent alerts that some recipient (not refused) has not acknowledged,
    /// soonest deadline first, with their deliveries.
    async fn list_awaiting(&self, limit: u32) -> Result<Vec<AlertHistory>, Error>;

    /// Received alerts this agency has not acknowledged, soonest deadline first.
    async fn list_owed(&self, limit: u32) -> Result<Vec<AlertHistory>, Error>;

    /// Open items whose deadline has passed: sent alerts a recipient has
    /// not acknowledged, received alerts we have not, soonest first.
    async fn list_overdue(&self, limit: u32) -> Result<Vec<AlertHistory>, Error>;
}
