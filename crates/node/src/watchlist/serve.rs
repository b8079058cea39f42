//! This agency's log as a peer may read it.

use prost::Message;
use tocsin_core::{AgencyId, to_timestamp};
use tocsin_proto::{MAX_WATCHLIST_PAGE, MAX_WATCHLIST_PAGE_BYTES, pb};
use tocsin_store::LogHead;

use super::Watchlists;
use crate::Error;

/// The wire form of a log head.
pub(super) fn head_of(head: LogHead) -> pb::WatchlistHead {
    pb::WatchlistHead {
        seq: head.seq,
        at: head.at.map(to_timestamp),
    }
}

impl Watchlists {
    /// The changes after `after` as `reader` may read them: every seq, in
    /// full, as a withdrawal or as a stub; at most `limit` (0: the most)
    /// and about [`MAX_WATCHLIST_PAGE_BYTES`].
    pub(crate) async fn page(
        &self,
        reader: &AgencyId,
        after: u64,
        limit: u32,
    ) -> Result<pb::PullChangesResponse, Error> {
        let limit = match usize::try_from(limit).unwrap_or(MAX_WATCHLIST_PAGE) {
            0 => MAX_WATCHLIST_PAGE,
            n => n.min(MAX_WATCHLIST_PAGE),
        };
        let (rows, head) = self
            .store
            .own_watchlist_page(reader.to_string(), after, limit)
            .await?;
        let mut total = 0;
        let changes = rows
            .into_iter()
            .take_while(|(_, bytes)| {
                let first = total == 0;
                total += bytes.len();
                first || total <= MAX_WATCHLIST_PAGE_BYTES
            })
            .map(|(seq, bytes)| {
                pb::Envelope::decode(bytes.as_slice()).map_err(|e| {
                    Error::Unavailable(format!("stored watchlist change {seq} is unreadable: {e}"))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(pb::PullChangesResponse {
            changes,
            head: Some(head_of(head)),
        })
    }

    /// The head of this agency's log now, then each time it moves, until
    /// the caller goes away or the node stops.
    pub(crate) fn follow(
        &self,
    ) -> tokio_stream::wrappers::ReceiverStream<Result<pb::WatchlistHead, tonic::Status>> {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let mut heads = self.head.subscribe();
        let mut shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            loop {
                let head = *heads.borrow_and_update();
                if tx.send(Ok(head_of(head))).await.is_err() {
                    return;
                }
                tokio::select! {
                    changed = heads.changed() => if changed.is_err() { return },
                    _ = tx.closed() => return,
                    _ = shutdown.changed() => return,
                }
            }
        });
        tokio_stream::wrappers::ReceiverStream::new(rx)
    }
}
