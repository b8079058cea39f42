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

#[cfg(test)]
mod tests {
    use super::super::testing::{Fixture, agency, flash_about};
    use super::Open;
    use tocsin_store::Direction;

    #[tokio::test]
    async fn lists_sort_by_direction_and_what_is_open() {
        let f = Fixture::new();
        let sent = f.send(flash_about("Jean Dupont", &["TR-MIT"])).await;
        let tr = f.signer_of("TR-MIT");
        let envelope = f.signed_alert(&tr, "TR-MIT", flash_about("Ahmet Yilmaz", &["FR-DGSI"]));
        f.node.receive(&agency("TR-MIT"), envelope).await.unwrap();

        let ids = |views: Vec<crate::views::AlertView>| {
            views
                .into_iter()
                .map(|v| v.alert.originator.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(f.node.list(None, 10).await.unwrap()).len(), 2);
        assert_eq!(
            ids(f.node.list(Some(Direction::Outbound), 10).await.unwrap()),
            ["FR-DGSI"]
        );
        assert_eq!(
            ids(f.node.list(Some(Direction::Inbound), 10).await.unwrap()),
            ["TR-MIT"]
        );
        assert_eq!(ids(f.node.list(None, 1).await.unwrap()).len(), 1);
        assert_eq!(
            ids(f.node.list_open(Open::Awaiting, 10).await.unwrap()),
            ["FR-DGSI"]
        );
        assert_eq!(
            ids(f.node.list_open(Open::Owed, 10).await.unwrap()),
            ["TR-MIT"]
        );
        assert!(
            f.node
                .list_open(Open::Overdue, 10)
                .await
                .unwrap()
                .is_empty()
        );

        f.clock.set(sent.due_at.unwrap());
        f.store
            .flag_overdue(f.node.now(), super::super::wording::flagged)
            .await
            .unwrap();
        assert_eq!(f.node.list_open(Open::Overdue, 10).await.unwrap().len(), 2);

        let one = f
            .node
            .get(&sent.alert.id.to_string())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(one.alert, sent.alert);
        assert!(
            f.node
                .get("01J00000000000000000000000")
                .await
                .unwrap()
                .is_none()
        );
    }
}
