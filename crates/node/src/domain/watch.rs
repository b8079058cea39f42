//! The event stream operators watch, resumable from any event.

use crate::Error;
use crate::views::{self, EventView};

use super::Node;

impl Node {
    /// The id of the last event committed: a cursor from which a later
    /// `watch` misses nothing that happens after it is read.
    pub(crate) async fn last_event_id(&self) -> Result<u64, Error> {
        Ok(self.store.last_event_id().await?)
    }

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

#[cfg(test)]
mod tests {
    use super::super::testing::{Fixture, flash_about};
    use std::time::Duration;
    use tokio_stream::StreamExt;

    const WAIT: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn a_watch_resumes_after_its_cursor_then_follows_new_events() {
        let f = Fixture::new();
        let mut ids = Vec::new();
        for _ in 0..3 {
            let sent = f.send(flash_about("Jean Dupont", &["TR-MIT"])).await;
            ids.push(sent.alert.id.to_string());
        }
        let events = f.events().await;
        assert_eq!(events.len(), 3);

        // From after the first event: the second and third, in order.
        let mut stream = f.node.watch(Some(events[0].id)).await.unwrap();
        for expected in &ids[1..] {
            let e = tokio::time::timeout(WAIT, stream.next())
                .await
                .expect("an event")
                .expect("open")
                .expect("no error");
            assert_eq!(&e.alert_id, expected);
        }
        // "From now": only what comes after the call.
        let mut from_now = f.node.watch(None).await.unwrap();
        let fourth = f.send(flash_about("Jean Dupont", &["TR-MIT"])).await;
        for s in [&mut stream, &mut from_now] {
            let e = tokio::time::timeout(WAIT, s.next())
                .await
                .expect("the new event")
                .expect("open")
                .expect("no error");
            assert_eq!(e.alert_id, fourth.alert.id.to_string());
            assert_eq!(e.id, events[2].id + 1);
        }
    }
}
