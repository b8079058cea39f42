//! Answering operators' queries: one alert, lists, what is owed and awaited.

use crate::Error;
use crate::views::{self, AlertView};
use tocsin_store::Direction;

use super::{Node, Open};

impl Node {
    /// One alert, sent or received.
    pub(crate) async fn get(&self, id: &str) -> Result<Option<AlertView>, Error> {
        self.store
            .alert_history(id)
            .await?
            .as_ref()
            .map(views::alert)
            .transpose()
    }

    /// Alerts, newest first.
    pub(crate) async fn list(
        &self,
        direction: Option<Direction>,
        limit: u32,
    ) -> Result<Vec<AlertView>, Error> {
        self.store
            .list_alerts(direction, limit)
            .await?
            .iter()
            .map(views::alert)
            .collect()
    }

    /// Open items, soonest deadline first.
    pub(crate) async fn list_open(&self, which: Open, limit: u32) -> Result<Vec<AlertView>, Error> {
        let rows = match which {
            Open::Owed => self.store.list_owed(limit).await?,
            Open::Awaiting => self.store.list_awaiting(limit).await?,
            Open::Overdue => self.store.list_overdue(limit).await?,
        };
        rows.iter().map(views::alert).collect()
    }
}
