//! The cross-node event signal: a commit that adds events sends
//! `NOTIFY tocsin_events` in its transaction (PostgreSQL delivers it when,
//! and only if, the transaction commits), and every front node keeps one
//! connection that LISTENs for it and wakes the node's watchers (the
//! `Backend::event_signal`), so that a watcher on one front node sees a
//! commit made on another as soon as it lands.
//!
//! The listening connection is not from the pool: it is held for as long
//! as the handle lives. When it drops (the server restarts, a failover),
//! it is made again, with a growing pause between failures; once it
//! listens again, watchers are woken once, because a commit made while it
//! was away sent a notification nobody heard. A spurious wake costs a
//! watcher one read of the log; a missed one would leave it asleep.

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{Notify, watch};
use tokio_postgres::{AsyncMessage, NoTls};

/// What a commit with events sends, on the channel `tocsin_events`.
pub(crate) const NOTIFY: &str = "NOTIFY tocsin_events";

/// What the listening connection subscribes with.
const LISTEN: &str = "LISTEN tocsin_events";

/// The longest pause between attempts to listen again.
const MAX_PAUSE: Duration = Duration::from_secs(30);

/// The listening task; dropping the last handle's ends it.
#[derive(Debug)]
pub(crate) struct Listener {
    task: tokio::task::JoinHandle<()>,
    /// How many times it has started listening: for tests, which must
    /// know that it listens before they commit.
    #[cfg_attr(not(test), expect(dead_code, reason = "read by tests only"))]
    listening: watch::Receiver<u64>,
}

impl Listener {
    /// Starts listening on a connection of its own to `config`, waking
    /// `events`' waiters for each notification. `name` is the
    /// connection's `application_name` (the server's view of who it is).
    pub(crate) fn start(
        mut config: tokio_postgres::Config,
        name: &str,
        events: &Arc<Notify>,
    ) -> Self {
        config.application_name(name);
        let (tx, listening) = watch::channel(0);
        let task = tokio::spawn(listen(config, Arc::downgrade(events), tx));
        Self { task, listening }
    }

    /// Stops listening.
    pub(crate) fn stop(&self) {
        self.task.abort();
    }

    /// Waits until it has started listening at least `times` times.
    #[cfg(test)]
    pub(crate) async fn listening(&self, times: u64) {
        let mut listening = self.listening.clone();
        listening
            .wait_for(|n| *n >= times)
            .await
            .expect("the listener runs while its handle lives");
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn listen(
    config: tokio_postgres::Config,
    events: Weak<Notify>,
    listening: watch::Sender<u64>,
) {
    let mut pause = Duration::ZERO;
    loop {
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        pause = (pause * 2).clamp(Duration::from_millis(250), MAX_PAUSE);
        let (client, mut connection) = match config.connect(NoTls).await {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(error = %super::db::describe(&e), "cannot listen for other front nodes' commits; will retry");
                continue;
            }
        };
        // The connection does its work when polled, LISTEN's reply too.
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        let subscribed = {
            let subscribe = client.batch_execute(LISTEN);
            tokio::pin!(subscribe);
            loop {
                tokio::select! {
                    done = &mut subscribe => break done.is_ok(),
                    message = messages.next() => {
                        if !matches!(message, Some(Ok(_))) {
                            break false;
                        }
                    }
                }
            }
        };
        if !subscribed {
            tracing::warn!("cannot listen for other front nodes' commits; will retry");
            continue;
        }
        pause = Duration::ZERO;
        // Whatever committed while nobody listened: wake once.
        let Some(signal) = events.upgrade() else {
            return;
        };
        signal.notify_waiters();
        drop(signal);
        listening.send_modify(|n| *n += 1);
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(_)) => match events.upgrade() {
                    Some(signal) => signal.notify_waiters(),
                    None => return,
                },
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %super::db::describe(&e), "lost the connection that listens for other front nodes' commits; listening again");
                    break;
                }
            }
        }
        drop(client);
    }
}
