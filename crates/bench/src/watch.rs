//! Waits for events on a node's event stream, keyed by kind and alert.
//! Events are committed in the same transaction as the change they record,
//! so their arrival is the moment a step counts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use tocsin_proto::pb;
use tocsin_proto::pb::operator_client::OperatorClient;
use tokio::sync::oneshot;
use tonic::transport::Channel;

#[derive(Default)]
struct Entry {
    seen: Vec<Instant>,
    waiter: Option<(usize, oneshot::Sender<Instant>)>,
}

type Key = (i32, String);

/// The events of one node, as they arrive.
#[derive(Clone)]
pub(crate) struct EventWatch {
    entries: Arc<Mutex<HashMap<Key, Entry>>>,
}

impl EventWatch {
    /// Follows `op`'s node's events from the beginning of its log.
    pub(crate) async fn start(mut op: OperatorClient<Channel>) -> anyhow::Result<Self> {
        let mut events = op
            .watch_events(pb::WatchEventsRequest { after_id: Some(0) })
            .await?
            .into_inner();
        let entries: Arc<Mutex<HashMap<Key, Entry>>> = Arc::default();
        let shared = entries.clone();
        tokio::spawn(async move {
            while let Ok(Some(e)) = events.message().await {
                let now = Instant::now();
                let mut map = shared.lock().unwrap_or_else(|e| e.into_inner());
                let entry = map.entry((e.kind, e.alert_id)).or_default();
                entry.seen.push(now);
                if entry
                    .waiter
                    .as_ref()
                    .is_some_and(|(n, _)| entry.seen.len() >= *n)
                    && let Some((_, tx)) = entry.waiter.take()
                {
                    let _ = tx.send(now);
                }
            }
        });
        Ok(Self { entries })
    }

    /// When the `count`-th event of `kind` for `alert_id` arrived, waiting
    /// for it if need be.
    pub(crate) async fn wait(
        &self,
        kind: pb::EventKind,
        alert_id: &str,
        count: usize,
    ) -> anyhow::Result<Instant> {
        let rx = {
            let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            let entry = map.entry((kind as i32, alert_id.to_owned())).or_default();
            if entry.seen.len() >= count {
                return Ok(entry.seen[count - 1]);
            }
            let (tx, rx) = oneshot::channel();
            entry.waiter = Some((count, tx));
            rx
        };
        tokio::time::timeout(std::time::Duration::from_secs(300), rx)
            .await
            .with_context(|| format!("no {kind:?} event for alert {alert_id} within 5 minutes"))?
            .context("the event stream ended")
    }
}
