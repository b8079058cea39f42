//! [`crate::OpenStore`] on SQLite; the trait says what each method promises.

use async_trait::async_trait;

use super::db::Sqlite;
use super::records::{ALERT_COLUMNS, alert_row, with_history};
use crate::conditions::{AWAITING, OVERDUE, OWED};
use crate::error::Error;
use crate::open::*;
use crate::records::AlertHistory;

#[async_trait]
impl OpenStore for Sqlite {
    async fn list_awaiting(&self, limit: u32) -> Result<Vec<AlertHistory>, Error> {
        self.alerts_where(&AWAITING, limit).await
    }

    async fn list_owed(&self, limit: u32) -> Result<Vec<AlertHistory>, Error> {
        self.alerts_where(&OWED, limit).await
    }

    async fn list_overdue(&self, limit: u32) -> Result<Vec<AlertHistory>, Error> {
        self.alerts_where(&OVERDUE, limit).await
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
