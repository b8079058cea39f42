//! [`crate::OpenStore`] on SQLite; the trait says what each method promises.

use crate::codes::{DeadlineFlag, DeliveryState, Direction};
use async_trait::async_trait;

use super::db::Sqlite;
use super::records::{ALERT_COLUMNS, alert_row, with_history};
use super::sql::sql;
use crate::error::Error;
use crate::open::*;
use crate::records::AlertHistory;

#[async_trait]
impl OpenStore for Sqlite {
    async fn list_awaiting(&self, limit: u32) -> Result<Vec<AlertHistory>, Error> {
        self.alerts_where(
            sql!(
                "a.settled = 0 AND a.direction = {outbound} AND EXISTS (
                SELECT 1 FROM deliveries d WHERE d.alert_id = a.id AND d.state != {rejected} AND d.settled = 0)",
                outbound = Direction::Outbound.code(),
                rejected = DeliveryState::Rejected.code(),
            ),
            limit,
        )
        .await
    }

    async fn list_owed(&self, limit: u32) -> Result<Vec<AlertHistory>, Error> {
        self.alerts_where(
            sql!(
                "a.settled = 0 AND a.direction = {inbound}",
                inbound = Direction::Inbound.code()
            ),
            limit,
        )
        .await
    }

    async fn list_overdue(&self, limit: u32) -> Result<Vec<AlertHistory>, Error> {
        self.alerts_where(
            sql!(
                "a.settled = 0 AND ((a.direction = {outbound} AND EXISTS (
                 SELECT 1 FROM deliveries d WHERE d.alert_id = a.id AND d.flag != {none} AND d.settled = 0))
              OR (a.direction = {inbound} AND a.flag != {none}))",
                outbound = Direction::Outbound.code(),
                inbound = Direction::Inbound.code(),
                none = DeadlineFlag::None.code(),
            ),
            limit,
        )
        .await
    }
}

impl Sqlite {
    /// Alerts matching `condition` (on `a`), soonest deadline first, each
    /// with its history.
    pub(crate) async fn alerts_where(
        &self,
        condition: &'static str,
        limit: u32,
    ) -> Result<Vec<AlertHistory>, Error> {
        self.read_snapshot(move |conn| {
            let sql = format!(
                "SELECT {ALERT_COLUMNS} FROM alerts a WHERE {condition} ORDER BY a.due_at IS NULL, a.due_at, a.id LIMIT ?1"
            );
            let rows = conn
                .prepare_cached(&sql)?
                .query_map([limit], alert_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(with_history(conn, rows)?)
        })
        .await
    }
}
