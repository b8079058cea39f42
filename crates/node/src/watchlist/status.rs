//! What this node holds and how far behind each owner it is: the answers
//! the operators' gRPC desk (`ListEntries`, `SyncStatus`) and the web
//! desk's `/watchlists` both give, read here once.

use tocsin_store::{Cursor, HeldEntry};

use super::{Watchlists, lag};
use crate::Error;

/// How far behind one other owner's log this node is.
#[derive(Debug, Clone)]
pub(crate) struct OwnerLag {
    /// The owner's cursor as stored (an empty one if never pulled).
    pub(crate) cursor: Cursor,
    /// Changes in the owner's log not applied here.
    pub(crate) behind_changes: u64,
    /// Age of what is held when behind, 0 when caught up.
    pub(crate) behind_seconds: f64,
}

impl Watchlists {
    /// The entries held, by owner then ref: this agency's own (when
    /// `owner` is empty or this agency) and those pulled from others
    /// (when `owner` is empty or another agency), unexpired.
    pub(crate) async fn entries(&self, owner: &str) -> Result<Vec<HeldEntry>, Error> {
        // Nothing is reported held that a screen would not yet find.
        let _applied = self.applying.read().await;
        let now = self.clock.now();
        let mut rows = Vec::new();
        if owner.is_empty() || owner == self.agency.as_str() {
            rows.extend(self.store.own_watchlist(self.agency.to_string()).await?);
        }
        if owner != self.agency.as_str() {
            let only = (!owner.is_empty()).then(|| owner.to_owned());
            rows.extend(self.store.held_watchlist(only, now).await?);
        }
        rows.sort_by(|a, b| (&a.owner, &a.reference).cmp(&(&b.owner, &b.reference)));
        Ok(rows)
    }

    /// Every other owner of the federation with its cursor and lag, in
    /// the federation's order.
    pub(crate) async fn sync_status(&self) -> Result<Vec<OwnerLag>, Error> {
        let _applied = self.applying.read().await;
        let now = self.clock.now();
        let cursors = self.store.watchlist_cursors(now).await?;
        Ok(self
            .federation
            .agencies
            .iter()
            .filter(|a| a.id != self.agency)
            .map(|a| {
                let cursor = cursors
                    .iter()
                    .find(|c| c.owner == a.id.as_str())
                    .cloned()
                    .unwrap_or_else(|| Cursor {
                        owner: a.id.to_string(),
                        applied: Default::default(),
                        head: Default::default(),
                        heard_at: None,
                        refusal: None,
                        held: 0,
                    });
                let (behind_changes, behind_seconds) = lag(&cursor, now);
                OwnerLag {
                    cursor,
                    behind_changes,
                    behind_seconds,
                }
            })
            .collect())
    }
}
