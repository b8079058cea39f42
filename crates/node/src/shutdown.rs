//! One shutdown signal for every part of a node. `serve` holds the
//! [`Shutdown`]; each component it starts gets a [`Stopping`] (or, for
//! those written on a `watch` channel, its receiver) and hands back its
//! task, so that draining is one call: signal, then wait for every task.

use std::future::Future;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The node's shutdown signal and the tasks that stop on it.
#[derive(Debug)]
pub(crate) struct Shutdown {
    signal: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self {
            signal: watch::Sender::new(false),
            tasks: Vec::new(),
        }
    }
}

impl Shutdown {
    /// What a component watches to know when to stop.
    pub(crate) fn stopping(&self) -> Stopping {
        Stopping(self.signal.subscribe())
    }

    /// Waits for `task` when draining.
    pub(crate) fn track(&mut self, task: JoinHandle<()>) {
        self.tasks.push(task);
    }

    /// Runs `work` in a task of its own, waited for when draining.
    pub(crate) fn spawn(&mut self, work: impl Future<Output = ()> + Send + 'static) {
        self.track(tokio::spawn(work));
    }

    /// Tells every component to stop, and waits until each has.
    pub(crate) async fn drain(self) {
        self.signal.send_replace(true);
        for task in self.tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "a node task failed while stopping");
            }
        }
    }
}

/// Turns when the node stops; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Stopping(watch::Receiver<bool>);

impl Stopping {
    /// The signal as a `watch` receiver (true once stopping), for the
    /// components that select on one.
    pub(crate) fn receiver(&self) -> watch::Receiver<bool> {
        self.0.clone()
    }

    /// Whether the node is stopping.
    pub(crate) fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the node stops (or the signal is gone).
    pub(crate) async fn stopped(&mut self) {
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drain_stops_and_waits_for_every_task() {
        let mut shutdown = Shutdown::default();
        let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
        for i in 0..3 {
            let mut stopping = shutdown.stopping();
            let done = done_tx.clone();
            shutdown.spawn(async move {
                stopping.stopped().await;
                let _ = done.send(i);
            });
        }
        let mut late = shutdown.stopping();
        drop(done_tx);
        shutdown.drain().await;
        // Every task has finished by the time drain returns.
        let mut finished = Vec::new();
        while let Ok(i) = done_rx.try_recv() {
            finished.push(i);
        }
        finished.sort_unstable();
        assert_eq!(finished, [0, 1, 2]);
        // A component that looks after the signal went sees it at once.
        late.stopped().await;
    }
}
