//! The event stream operators watch, resumable from any event.

use crate::Error;
use crate::views::{self, EventView};

use super::Node;

impl Node {
    /// Streams events: first those after `after` (if given), then new ones
    /// as they are committed, until the client goes away or the node stops.
    pub(crate) async fn watch(
        &self,
        after: Option<u64>,
    ) -> Result<tokio_stream::wrappers::ReceiverStream<Result<EventView, Error>>, Error> {
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let store = self.store.clone();
        let mut shutdown = self.shutdown.clone();
        // "From now" is read before the call is answered: an event the
        // caller causes once it has its answer is always after it.
        let mut last = match after {
            Some(id) => id,
            None => store.last_event_id().await?,
        };
        tokio::spawn(async move {
            let signal = store.event_signal();
            loop {
                // Register before reading: an event committed in between
                // still wakes us.
                let changed = signal.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                let batch = match store.events_after(last, 256).await {
                    Ok(b) => b,
                    Err(e) => {
                        let _ = tx.send(Err(Error::from(e))).await;
                        return;
                    }
                };
                let full = batch.len() == 256;
                for e in batch {
                    last = e.id;
                    if tx.send(Ok(views::event(&e))).await.is_err() {
                        return; // the client went away
                    }
                }
                if full {
                    continue;
                }
                tokio::select! {
                    _ = &mut changed => {}
                    _ = tx.closed() => return,
                    _ = shutdown.stopped() => return,
                }
            }
        });
        Ok(tokio_stream::wrappers::ReceiverStream::new(rx))
    }
}
