//! What is open: sent alerts awaiting an acknowledgement, received alerts
//! this agency owes one, and either past its deadline; soonest deadline
//! first.

use crate::records::AlertHistory;
use crate::{Error, Store};

impl Store {
    /// Sent alerts that some recipient (not refused) has not acknowledged,
    /// soonest deadline first, with their deliveries.
    pub async fn list_awaiting(&self, limit: u32) -> Result<Vec<AlertHistory>, Error> {
        self.alerts_where(
            "a.settled = 0 AND a.direction = 1 AND EXISTS (
                SELECT 1 FROM deliveries d WHERE d.alert_id = a.id AND d.state != 3 AND d.settled = 0)",
            limit,
        )
        .await
    }

    /// Received alerts this agency has not acknowledged, soonest deadline first.
    pub async fn list_owed(&self, limit: u32) -> Result<Vec<AlertHistory>, Error> {
        self.alerts_where("a.settled = 0 AND a.direction = 2", limit)
            .await
    }

    /// Alerts matching `condition` (on `a`), soonest deadline first, each
    /// with its history.
    pub(crate) async fn alerts_where(
        &self,
        condition: &'static str,
        limit: u32,
    ) -> Result<Vec<AlertHistory>, Error> {
        self.read_snapshot(move |conn| {
            let sql = format!(
                "SELECT {} FROM alerts a WHERE {condition} ORDER BY a.due_at IS NULL, a.due_at, a.id LIMIT ?1",
                crate::records::ALERT_COLUMNS
            );
            let rows = conn
                .prepare_cached(&sql)?
                .query_map([limit], crate::records::alert_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(crate::records::with_history(conn, rows)?)
        })
        .await
    }

    /// Open items whose deadline has passed: sent alerts a recipient has
    /// not acknowledged, received alerts we have not, soonest first.
    pub async fn list_overdue(&self, limit: u32) -> Result<Vec<AlertHistory>, Error> {
        self.alerts_where(
            "a.settled = 0 AND ((a.direction = 1 AND EXISTS (
                 SELECT 1 FROM deliveries d WHERE d.alert_id = a.id AND d.flag != 0 AND d.settled = 0))
              OR (a.direction = 2 AND a.flag != 0))",
            limit,
        )
        .await
    }
}
