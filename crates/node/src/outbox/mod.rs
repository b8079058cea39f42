//! The durable outbox: one worker per peer, one long-lived HTTP/2 channel
//! each.
//!
//! A worker takes the deliveries that are due from the store, sends them
//! concurrently (alerts waiting together share a DeliverBatch request, and
//! their receipts one batch check of signatures), verifies each receipt,
//! and records every outcome in one transaction. When nothing is due it sleeps until the next delivery is
//! due or a new alert wakes it: no polling. After a failure that may pass
//! (the peer is down, a timeout), it backs off exponentially with jitter and
//! then probes with a single delivery until the peer answers again. State
//! lives only in the store, so a restart of either node loses nothing.
//!
//! The rules of the in-flight window are in `window`, those of the backoff
//! in `backoff`; the worker's loop here only follows them.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::join_all;
use prost::Message;
use tocsin_core::{AgencyId, Clock};
use tocsin_proto::pb::federation_client::FederationClient;
use tocsin_proto::{RECEIPT_PAYLOAD_TYPE, pb};
use tocsin_store::MessageKind;
use tocsin_store::{AttemptOutcome, DueDelivery, DueMessage, Store};
use tocsin_trust::Verifier;
use tocsin_trust::signing::digest;
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};
use tonic::Code;
use tonic::transport::Channel;

use crate::config::OutboxOptions;
use crate::skew::SkewMonitor;
use backoff::{Backoff, Retry};
use window::Window;

mod backoff;
mod window;

/// How a worker is woken.
#[derive(Debug, Default)]
struct Wakers {
    /// New deliveries are due.
    work: Notify,
    /// The peer just opened a session with us, so it is up: retry now
    /// rather than at the end of the backoff.
    peer_up: Notify,
}

/// Wakes the outbox workers.
#[derive(Debug, Clone, Default)]
pub(crate) struct OutboxHandle {
    peers: Arc<HashMap<AgencyId, Arc<Wakers>>>,
    links: LinkBoard,
}

/// A link to one peer as its worker last found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkState {
    /// Nothing sent to the peer since this node started.
    Untried,
    /// The last round of attempts reached the peer's node.
    Reached {
        /// When (node clock).
        at: DateTime<Utc>,
    },
    /// Attempts fail for a reason that may pass (the peer is down or
    /// unreachable), since the first failed round after a success.
    Failing {
        /// The first failed round of this run of failures.
        since: DateTime<Utc>,
    },
    /// The peer's node presented a revoked certificate: BLOCKED.
    Revoked {
        /// When this was found.
        at: DateTime<Utc>,
    },
}

/// Each peer's [`LinkState`], written by the workers and read by the web
/// desk's peers page without waiting on them.
#[derive(Debug, Clone, Default)]
pub(crate) struct LinkBoard(Arc<std::sync::Mutex<std::collections::BTreeMap<AgencyId, LinkState>>>);

impl LinkBoard {
    /// Records what a round of attempts found; a round that neither
    /// reached nor failed (nothing was due) changes nothing.
    fn note(&self, peer: &AgencyId, tally: &Tally, now: DateTime<Utc>) {
        let mut links = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let next = if tally.revoked {
            LinkState::Revoked { at: now }
        } else if tally.reached {
            LinkState::Reached { at: now }
        } else if tally.failed {
            match links.get(peer) {
                Some(LinkState::Failing { since }) => LinkState::Failing { since: *since },
                _ => LinkState::Failing { since: now },
            }
        } else {
            return;
        };
        links.insert(peer.clone(), next);
    }

    /// `peer`'s link as last found.
    pub(crate) fn get(&self, peer: &AgencyId) -> LinkState {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(peer)
            .copied()
            .unwrap_or(LinkState::Untried)
    }
}

impl OutboxHandle {
    /// Tells the workers for `agencies` that deliveries are due.
    pub(crate) fn wake(&self, agencies: &[AgencyId]) {
        for a in agencies {
            if let Some(w) = self.peers.get(a) {
                w.work.notify_one();
            }
        }
    }

    /// The links to peers as the workers last found them.
    pub(crate) fn links(&self) -> &LinkBoard {
        &self.links
    }

    /// Tells the worker for `agency` that the peer is reachable again.
    pub(crate) fn peer_up(&self, agency: &AgencyId) {
        if let Some(w) = self.peers.get(agency) {
            w.peer_up.notify_one();
        }
    }
}

/// What the workers need from the node.
#[derive(Clone)]
pub(crate) struct OutboxContext {
    pub(crate) store: Store,
    pub(crate) verifier: Verifier,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) options: OutboxOptions,
    /// Measures the peer's clock on every answer.
    pub(crate) skew: SkewMonitor,
    /// How the events of outcomes read (the domain's words).
    pub(crate) words: tocsin_store::OutcomeWords,
}

/// Starts one worker per peer; they stop when `shutdown` turns true.
pub(crate) fn spawn(
    ctx: OutboxContext,
    peers: Vec<(AgencyId, Channel)>,
    max_message_bytes: usize,
    shutdown: watch::Receiver<bool>,
) -> (OutboxHandle, Vec<JoinHandle<()>>) {
    let mut notifies = HashMap::new();
    let mut tasks = Vec::new();
    let links = LinkBoard::default();
    for (peer, channel) in peers {
        let wakers = Arc::new(Wakers::default());
        notifies.insert(peer.clone(), wakers.clone());
        let client = FederationClient::new(channel)
            .max_encoding_message_size(max_message_bytes)
            .max_decoding_message_size(max_message_bytes);
        let worker = Worker {
            // What a request may hold besides its alerts' bytes is small;
            // keep well clear of the peer's limit.
            request_budget: max_message_bytes.saturating_sub(1024).max(1),
            link: Link {
                peer: peer.clone(),
                client,
                verifier: ctx.verifier.clone(),
                clock: ctx.clock.clone(),
                skew: ctx.skew.clone(),
                no_batch: Arc::default(),
            },
            peer,
            ctx: ctx.clone(),
            // Not known yet: the first round that reaches the peer clears
            // any block a previous run recorded.
            maybe_blocked: AtomicBool::new(true),
            wakers,
            links: links.clone(),
            shutdown: shutdown.clone(),
        };
        tasks.push(tokio::spawn(worker.run()));
    }
    (
        OutboxHandle {
            peers: Arc::new(notifies),
            links,
        },
        tasks,
    )
}

enum Pause {
    Elapsed,
    PeerUp,
    Shutdown,
}

/// What a delivery attempt came to: when the peer received the alert, and
/// its signed receipt.
type Delivered = Result<(DateTime<Utc>, Vec<u8>), Failure>;

#[derive(Clone)]
enum Failure {
    /// May pass: retry after a backoff.
    Transient(String),
    /// The peer refused for good.
    Permanent(String),
    /// The peer's node presented a certificate our CRL revokes: retrying
    /// alone will not fix it, but a renewed certificate will, so it is
    /// retried like a transient failure and the peer is marked blocked
    /// until something reaches it again.
    Revoked(String),
}

/// What an operator is told about a peer whose certificate is revoked.
fn revoked_reason(peer: &AgencyId) -> String {
    format!(
        "{peer}'s certificate is revoked (CRL): nothing can reach its node until {peer} has a new certificate; delivery resumes then"
    )
}

/// The sending half of a worker: what a delivery in flight needs, cheap to
/// clone (the channel is shared).
#[derive(Clone)]
struct Link {
    peer: AgencyId,
    client: FederationClient<Channel>,
    verifier: Verifier,
    clock: Arc<dyn Clock>,
    skew: SkewMonitor,
    /// Set when the peer answered DeliverBatch with UNIMPLEMENTED (a node
    /// from before the method): from then on, until this node restarts,
    /// its alerts go by Deliver, one per request.
    no_batch: Arc<AtomicBool>,
}

/// Most delivery requests in flight to one peer at once, whatever `batch`
/// says: with [`MESSAGES_AT_ONCE`] they stay within what a peer with the
/// default limits admits from one agency (`peer_concurrency` +
/// `peer_queue`), so two nodes never refuse each other for being busy.
pub(crate) const REQUESTS_AT_ONCE: usize = 96;

/// Most acknowledgements, reminders and notices sent to one peer at once.
pub(crate) const MESSAGES_AT_ONCE: usize = 32;

struct Worker {
    peer: AgencyId,
    link: Link,
    /// The most bytes of alerts one request carries.
    request_budget: usize,
    ctx: OutboxContext,
    /// Whether the store may hold a block on this peer: only then does
    /// reaching the peer cost a write to lift it.
    maybe_blocked: AtomicBool,
    wakers: Arc<Wakers>,
    /// Where this worker says how its link stands.
    links: LinkBoard,
    shutdown: watch::Receiver<bool>,
}

/// What a round of attempts found: each attempt's outcome as the store
/// keeps it, and what they say of the peer.
#[derive(Debug, Default)]
struct Tally {
    /// Some attempt failed for a reason that may pass.
    failed: bool,
    /// The peer's node presented a revoked certificate.
    revoked: bool,
    /// Something reached the peer's node (a receipt, or a refusal, which
    /// only its node can give).
    reached: bool,
}

impl Tally {
    /// What to store for one attempt (`Ok`: what it delivered); failures
    /// that may pass are retried at `retry_at`.
    fn outcome(
        &mut self,
        result: Result<AttemptOutcome, Failure>,
        retry_at: DateTime<Utc>,
    ) -> AttemptOutcome {
        let outcome = match result {
            Ok(delivered) => delivered,
            Err(Failure::Permanent(error)) => AttemptOutcome::Rejected { error },
            Err(Failure::Transient(error)) => {
                self.failed = true;
                AttemptOutcome::Retry {
                    error,
                    next_attempt_at: retry_at,
                }
            }
            Err(Failure::Revoked(error)) => {
                self.failed = true;
                self.revoked = true;
                AttemptOutcome::Retry {
                    error,
                    next_attempt_at: retry_at,
                }
            }
        };
        self.reached |= matches!(
            outcome,
            AttemptOutcome::Delivered { .. } | AttemptOutcome::Rejected { .. }
        );
        outcome
    }
}

impl Worker {
    async fn run(mut self) {
        let mut backoff = Backoff::new(&self.ctx.options);
        // Each request (the alerts that were due together, up to
        // `per_request`) is its own task, so receipts are checked on every
        // core while the worker records the last group.
        let mut flying = JoinSet::new();
        let mut window = Window::new(self.ctx.options.batch);
        // A fresh start: what waited out a backoff before the node stopped
        // is tried now rather than at its old retry time.
        self.peer_is_back().await;
        // Messages are looked for when something may have made one due (a
        // wake-up, a timer, a retry), and at least every `initial_backoff`
        // while deliveries keep the worker busy (for retries falling due),
        // not after every group of deliveries.
        let mut look_for_messages = true;
        let mut looked_at = std::time::Instant::now();
        loop {
            if *self.shutdown.borrow() {
                return;
            }
            // Retries are paced in real time, whatever clock the node's
            // deadlines run on (a scenario clock may run a year a minute).
            let now = Utc::now();
            // Should anything in this pass fail for a reason that may pass,
            // each consecutive failure doubles the delay, up to the maximum;
            // what failed is due again when that delay ends.
            let retry = backoff.plan(now);
            let retry_at = retry.at;
            // While the peer looks down, probe with one delivery at a time.
            let size = window.size(backoff.active());
            // A wake-up for new work (an acknowledgement queued, say) is
            // taken here even while the window is full.
            look_for_messages |= self.wakers.work.notified().now_or_never().is_some()
                || looked_at.elapsed() >= self.ctx.options.initial_backoff;
            let mut messages_failed = false;
            if look_for_messages {
                looked_at = std::time::Instant::now();
                let (failed, more) = self
                    .send_messages(now, size.min(MESSAGES_AT_ONCE), retry_at)
                    .await;
                messages_failed = failed;
                look_for_messages = more;
            }

            if window.has_room(size, flying.len()) {
                let limit = window.to_read(size);
                match self
                    .ctx
                    .store
                    .due_deliveries(self.peer.as_str(), now, limit)
                    .await
                {
                    Ok(due) => {
                        // While backing off the window is 1, so a probe
                        // is a single alert whatever `per_request` says.
                        let fresh = window.fresh(due, size);
                        let most = self.ctx.options.per_request.max(1) as usize;
                        // What does not fit stays due in the store, taken
                        // again when a request comes back.
                        let room = REQUESTS_AT_ONCE.saturating_sub(flying.len());
                        for request in pack(fresh, most, self.request_budget)
                            .into_iter()
                            .take(room)
                        {
                            window.send(&request);
                            flying.spawn(self.link.clone().attempt(request));
                        }
                    }
                    Err(e) => {
                        tracing::error!(peer = %self.peer, error = %e, "outbox cannot read the store");
                        if flying.is_empty() {
                            if let Pause::Shutdown = self.pause(self.ctx.options.max_backoff).await
                            {
                                return;
                            }
                            continue;
                        }
                    }
                }
            }
            if flying.is_empty() {
                let stop = if messages_failed {
                    self.back_off(&mut backoff, &retry).await
                } else {
                    self.idle().await
                };
                if stop {
                    return;
                }
                look_for_messages = true;
                continue;
            }

            // Wait for the next answer, or for new work if there is room.
            let room = window.has_room(size, flying.len());
            let first = tokio::select! {
                done = flying.join_next() => done,
                _ = self.wakers.work.notified(), if room => {
                    look_for_messages = true;
                    continue;
                }
                _ = self.shutdown.changed() => return,
            };
            let mut done = Vec::new();
            let mut next = first;
            while let Some(joined) = next {
                self.collect(joined, &mut done);
                next = flying.try_join_next();
            }
            let failed = self.record(&mut window, done, retry_at).await || messages_failed;
            if failed {
                // The peer may be down: let what is in flight finish (and
                // its receipts be recorded) before backing off, so nothing
                // is sent twice at once.
                let mut rest = Vec::new();
                while let Some(joined) = flying.join_next().await {
                    self.collect(joined, &mut rest);
                }
                self.record(&mut window, rest, retry_at).await;
                if self.back_off(&mut backoff, &retry).await {
                    return;
                }
                look_for_messages = true;
            } else {
                backoff.reset();
            }
        }
    }

    /// Sends the acknowledgements, reminders and notices that are due, at
    /// most `limit`, and records their outcomes. They go first: they are
    /// small and someone's deadline hangs on each. Returns whether any
    /// failed for a reason that may pass, and whether more may be due
    /// (the limit was reached, or the store could not be read).
    async fn send_messages(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        retry_at: DateTime<Utc>,
    ) -> (bool, bool) {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        let messages = match self
            .ctx
            .store
            .due_messages(self.peer.as_str(), now, limit)
            .await
        {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(peer = %self.peer, error = %e, "outbox cannot read the store");
                return (false, true);
            }
        };
        if messages.is_empty() {
            return (false, false);
        }
        let more = messages.len() as u64 >= u64::from(limit);
        let results = join_all(messages.iter().map(|m| self.link.send_message(m))).await;
        let mut tally = Tally::default();
        let outcomes: Vec<_> = messages
            .iter()
            .zip(results)
            .map(|(m, result)| {
                let sent = result.map(|()| AttemptOutcome::Delivered {
                    delivered_at: self.ctx.clock.now(),
                    receipt: Vec::new(),
                });
                let outcome = tally.outcome(sent, retry_at);
                if let AttemptOutcome::Rejected { error } = &outcome {
                    tracing::warn!(message = %m.id, peer = %self.peer, %error, "message refused for good");
                }
                (m.id.clone(), outcome)
            })
            .collect();
        if let Err(e) = self
            .ctx
            .store
            .record_message_attempts(outcomes, self.ctx.clock.now(), self.ctx.words)
            .await
        {
            // Still due in the store: back off rather than resend at once.
            tracing::error!(peer = %self.peer, error = %e, "outbox cannot record message outcomes");
            return (true, true);
        }
        self.note_reach(&tally).await;
        (tally.failed, more)
    }

    /// Keeps a finished delivery's outcome. A task catches its own panic
    /// (see [`Link::attempt`]), so a join error means it was cancelled.
    fn collect(
        &self,
        joined: Result<Vec<(DueDelivery, Delivered)>, tokio::task::JoinError>,
        done: &mut Vec<(DueDelivery, Delivered)>,
    ) {
        match joined {
            Ok(outcomes) => done.extend(outcomes),
            Err(e) => tracing::error!(peer = %self.peer, error = %e, "delivery task failed"),
        }
    }

    /// Records the outcomes of finished deliveries in one transaction and
    /// takes them out of the window. Returns whether any failed for a
    /// reason that may pass.
    async fn record(
        &self,
        in_flight: &mut Window,
        done: Vec<(DueDelivery, Delivered)>,
        retry_at: DateTime<Utc>,
    ) -> bool {
        if done.is_empty() {
            return false;
        }
        let mut tally = Tally::default();
        let outcomes: Vec<_> = done
            .into_iter()
            .map(|(d, result)| {
                let delivered = result.map(|(delivered_at, receipt)| AttemptOutcome::Delivered {
                    delivered_at,
                    receipt,
                });
                let outcome = tally.outcome(delivered, retry_at);
                match &outcome {
                    AttemptOutcome::Delivered { .. } => {
                        tracing::info!(alert = %d.alert_id, peer = %self.peer, "delivered");
                    }
                    AttemptOutcome::Rejected { error } => {
                        tracing::warn!(alert = %d.alert_id, peer = %self.peer, %error, "delivery refused for good");
                    }
                    AttemptOutcome::Retry { error, .. } => {
                        tracing::debug!(alert = %d.alert_id, peer = %self.peer, %error, attempts = d.attempts + 1, "delivery failed; will retry");
                    }
                }
                (d.alert_id, self.peer.to_string(), outcome)
            })
            .collect();
        let ids: Vec<String> = outcomes.iter().map(|(id, _, _)| id.clone()).collect();
        if let Err(e) = self
            .ctx
            .store
            .record_attempts(outcomes, self.ctx.clock.now(), self.ctx.words)
            .await
        {
            // Still due in the store: back off rather than resend at once.
            tracing::error!(peer = %self.peer, error = %e, "outbox cannot record delivery outcomes");
            tally.failed = true;
        }
        // Out of the window only once recorded: until then the store still
        // says they are due, and the next top-up must not send them again.
        in_flight.done(ids);
        self.note_reach(&tally).await;
        tally.failed
    }

    /// Keeps the peer's block in step with what the last attempts found:
    /// blocked when its node presented a revoked certificate, unblocked
    /// when something reached it (a receipt, or a refusal, which only its
    /// node can give).
    async fn note_reach(&self, tally: &Tally) {
        self.links.note(&self.peer, tally, self.ctx.clock.now());
        let store = &self.ctx.store;
        let peer = self.peer.as_str();
        if tally.revoked {
            self.maybe_blocked.store(true, Ordering::SeqCst);
            let reason = revoked_reason(&self.peer);
            match store.block_peer(peer, &reason, self.ctx.clock.now()).await {
                Ok(true) => {
                    tracing::warn!(%peer, "the peer's node presents a revoked certificate: its deliveries are BLOCKED until it has a new one");
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(%peer, error = %e, "cannot record that the peer is blocked")
                }
            }
        } else if tally.reached && self.maybe_blocked.swap(false, Ordering::SeqCst) {
            match store.unblock_peer(peer).await {
                Ok(true) => {
                    tracing::info!(%peer, "the peer is reached again: its deliveries are no longer blocked")
                }
                Ok(false) => {}
                Err(e) => {
                    // Try again at the next round that reaches it.
                    self.maybe_blocked.store(true, Ordering::SeqCst);
                    tracing::error!(%peer, error = %e, "cannot record that the peer is reached")
                }
            }
        }
    }

    /// Backs off after a failure: sleeps `retry.delay` (the jittered
    /// backoff, which failed work was rescheduled by), cut short if the peer
    /// turns out to be up. Returns true on shutdown.
    async fn back_off(&mut self, backoff: &mut Backoff, retry: &Retry) -> bool {
        backoff.failed(retry);
        let delay = retry.delay;
        tracing::info!(peer = %self.peer, retry_in = ?delay, "peer unreachable; backing off");
        match self.pause(delay).await {
            Pause::Shutdown => true,
            Pause::PeerUp => {
                backoff.reset();
                self.peer_is_back().await;
                false
            }
            Pause::Elapsed => false,
        }
    }

    /// Sleeps until the next delivery is due or new work arrives. Returns
    /// true on shutdown.
    async fn idle(&mut self) -> bool {
        let wait = match self.ctx.store.next_due(self.peer.as_str()).await {
            Ok(Some(at)) => until(at, Utc::now()),
            Ok(None) => Duration::from_secs(3600),
            Err(_) => self.ctx.options.max_backoff,
        };
        tokio::select! {
            _ = self.wakers.work.notified() => false,
            _ = self.wakers.peer_up.notified() => {
                self.peer_is_back().await;
                false
            }
            _ = tokio::time::sleep(wait) => false,
            _ = self.shutdown.changed() => true,
        }
    }

    /// The peer opened a session with us: whatever waits for it is due now.
    async fn peer_is_back(&self) {
        match self
            .ctx
            .store
            .retry_now(self.peer.as_str(), Utc::now())
            .await
        {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(peer = %self.peer, deliveries = n, "retrying now what waited for this peer")
            }
            Err(e) => {
                tracing::error!(peer = %self.peer, error = %e, "cannot reschedule deliveries")
            }
        }
    }

    /// Sleeps for a backoff delay; new work does not cut it short, but news
    /// that the peer is up does.
    async fn pause(&mut self, d: Duration) -> Pause {
        tokio::select! {
            _ = tokio::time::sleep(d) => Pause::Elapsed,
            _ = self.wakers.peer_up.notified() => Pause::PeerUp,
            _ = self.shutdown.changed() => Pause::Shutdown,
        }
    }
}

impl Link {
    async fn send_message(&self, m: &DueMessage) -> Result<(), Failure> {
        let envelope = pb::Envelope::decode(m.envelope.as_slice())
            .map_err(|e| Failure::Permanent(format!("stored envelope unreadable: {e}")))?;
        // A row whose kind names nothing is corrupt: refused for good, so
        // it neither goes out as a guess nor stops the messages behind it.
        let kind = m.kind.map_err(|unknown| {
            Failure::Permanent(format!("stored message is corrupt: {unknown}"))
        })?;
        let mut client = self.client.clone();
        match kind {
            MessageKind::Ack => self
                .measured(client.acknowledge(pb::AcknowledgeRequest {
                    acknowledgement: Some(envelope),
                }))
                .await
                .map(|_| ())
                .map_err(classify),
            MessageKind::Reminder => self
                .measured(client.remind(pb::RemindRequest {
                    reminder: Some(envelope),
                }))
                .await
                .map(|_| ())
                .map_err(classify),
            MessageKind::Notice => self
                .measured(client.notify_escalation(pb::NotifyEscalationRequest {
                    notice: Some(envelope),
                }))
                .await
                .map(|_| ())
                .map_err(classify),
        }
    }

    /// Makes a call, measuring the peer's clock by its answer (a refusal
    /// from the peer carries its clock too).
    async fn measured<T>(
        &self,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<tonic::Response<T>, tonic::Status> {
        let sent = self.clock.now();
        let answer = call.await;
        let answered = self.clock.now();
        let metadata = match &answer {
            Ok(response) => response.metadata(),
            Err(status) => status.metadata(),
        };
        self.skew
            .observe_answer(&self.peer, sent, answered, metadata);
        answer
    }

    /// Delivers alerts in one request; hands each delivery back with its
    /// outcome.
    async fn attempt(self, ds: Vec<DueDelivery>) -> Vec<(DueDelivery, Delivered)> {
        // Always hands every delivery back, so that all leave the window.
        let results = std::panic::AssertUnwindSafe(self.deliver(&ds))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| {
                ds.iter()
                    .map(|_| Err(Failure::Transient("the delivery task panicked".into())))
                    .collect()
            });
        debug_assert_eq!(results.len(), ds.len(), "one outcome per delivery");
        ds.into_iter().zip(results).collect()
    }

    /// One outcome per delivery, in order. An alert alone goes by Deliver,
    /// which every node knows; several go by DeliverBatch.
    async fn deliver(&self, ds: &[DueDelivery]) -> Vec<Delivered> {
        if ds.len() == 1 || self.no_batch.load(Ordering::Relaxed) {
            return self.deliver_each(ds).await;
        }
        match self.deliver_together(ds).await {
            Ok(outcomes) => outcomes,
            // Refused as a whole for good (too large for the peer, a peer
            // that does not know DeliverBatch): each alert alone gets the
            // answer that is its own.
            Err(Failure::Permanent(why)) => {
                tracing::debug!(peer = %self.peer, %why, "batch refused; delivering its alerts one by one");
                self.deliver_each(ds).await
            }
            Err(failure) => ds.iter().map(|_| Err(failure.clone())).collect(),
        }
    }

    /// One Deliver request per alert, all at once.
    async fn deliver_each(&self, ds: &[DueDelivery]) -> Vec<Delivered> {
        join_all(ds.iter().map(|d| self.deliver_one(d))).await
    }

    /// Delivers `ds` in one DeliverBatch request and checks the receipts in
    /// one batch. An error is the request's as a whole.
    async fn deliver_together(&self, ds: &[DueDelivery]) -> Result<Vec<Delivered>, Failure> {
        let mut outcomes: Vec<Option<Delivered>> = ds.iter().map(|_| None).collect();
        let mut sent = Vec::with_capacity(ds.len());
        let mut alerts = Vec::with_capacity(ds.len());
        for (i, d) in ds.iter().enumerate() {
            match pb::Envelope::decode(d.envelope.as_slice()) {
                Ok(envelope) => {
                    sent.push((i, digest(&envelope)));
                    alerts.push(envelope);
                }
                Err(e) => {
                    outcomes[i] = Some(Err(Failure::Permanent(format!(
                        "stored envelope unreadable: {e}"
                    ))));
                }
            }
        }
        if !alerts.is_empty() {
            let mut client = self.client.clone();
            let results = self
                .measured(client.deliver_batch(pb::DeliverBatchRequest { alerts }))
                .await
                .map_err(|status| {
                    if status.code() == Code::Unimplemented
                        && !self.no_batch.swap(true, Ordering::Relaxed)
                    {
                        tracing::info!(peer = %self.peer, "the peer does not know DeliverBatch; its alerts go one per request");
                    }
                    classify(status)
                })?
                .into_inner()
                .results;
            if results.len() != sent.len() {
                return Err(Failure::Transient(format!(
                    "answer holds {} results for {} alerts",
                    results.len(),
                    sent.len()
                )));
            }
            let mut receipts = Vec::with_capacity(sent.len());
            for ((i, alert_digest), result) in sent.into_iter().zip(results) {
                match result.outcome {
                    Some(pb::deliver_result::Outcome::Receipt(receipt)) => {
                        receipts.push((i, alert_digest, receipt));
                    }
                    Some(pb::deliver_result::Outcome::Refused(r)) => {
                        let status = tonic::Status::new(Code::from(r.code), r.message);
                        outcomes[i] = Some(Err(classify(status)));
                    }
                    None => {
                        outcomes[i] =
                            Some(Err(Failure::Transient("answer carried no receipt".into())));
                    }
                }
            }
            let envelopes: Vec<&pb::Envelope> = receipts.iter().map(|(_, _, r)| r).collect();
            let verified = self.verifier.verify_batch(&envelopes, RECEIPT_PAYLOAD_TYPE);
            for ((i, alert_digest, receipt), verified) in receipts.into_iter().zip(verified) {
                outcomes[i] =
                    Some(self.accept_receipt(verified, receipt, &ds[i].alert_id, &alert_digest));
            }
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Err(Failure::Transient("no outcome".into()))))
            .collect())
    }

    /// Delivers one alert with a Deliver request.
    async fn deliver_one(&self, d: &DueDelivery) -> Delivered {
        let envelope = pb::Envelope::decode(d.envelope.as_slice())
            .map_err(|e| Failure::Permanent(format!("stored envelope unreadable: {e}")))?;
        let expected_digest = digest(&envelope);
        let mut client = self.client.clone();
        let response = self
            .measured(client.deliver(pb::DeliverRequest {
                alert: Some(envelope),
            }))
            .await
            .map_err(classify)?
            .into_inner();
        let receipt = response
            .receipt
            .ok_or_else(|| Failure::Transient("answer carried no receipt".into()))?;
        let verified = self.verifier.verify(&receipt, RECEIPT_PAYLOAD_TYPE);
        self.accept_receipt(verified, receipt, &d.alert_id, &expected_digest)
    }

    /// A delivery counts only with a receipt the peer signed for exactly
    /// this alert.
    fn accept_receipt(
        &self,
        verified: Result<tocsin_trust::signing::Verified, tocsin_trust::Error>,
        receipt: pb::Envelope,
        alert_id: &str,
        alert_digest: &[u8; 32],
    ) -> Delivered {
        let expected = tocsin_trust::receipt::Expected {
            alert_id,
            recipient: self.peer.as_str(),
            alert_digest: Some(alert_digest),
        };
        let checked = tocsin_trust::receipt::check(verified, &receipt, expected)
            .map_err(|e| Failure::Transient(format!("invalid receipt: {e}")))?;
        Ok((checked.received_at, receipt.encode_to_vec()))
    }
}

/// Splits deliveries into requests of at most `most` alerts and about
/// `budget` bytes of them, in order; an alert larger than the budget goes
/// alone (and the peer answers for it alone).
fn pack(due: Vec<DueDelivery>, most: usize, budget: usize) -> Vec<Vec<DueDelivery>> {
    let mut requests = Vec::new();
    let mut current: Vec<DueDelivery> = Vec::new();
    let mut bytes = 0usize;
    for d in due {
        // The envelope's bytes, its field tag and length prefix.
        let size = d.envelope.len().saturating_add(8);
        if !current.is_empty() && (current.len() >= most || bytes.saturating_add(size) > budget) {
            requests.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes = bytes.saturating_add(size);
        current.push(d);
    }
    if !current.is_empty() {
        requests.push(current);
    }
    requests
}

/// Whether a peer's refusal is for good (the same request would be refused
/// again) or may pass, and whether the call failed because the peer's node
/// presented a certificate our CRL revokes.
fn classify(s: tonic::Status) -> Failure {
    if peer_certificate_revoked(&s) {
        return Failure::Revoked(format!(
            "{:?}: the peer's certificate is revoked (CRL)",
            s.code()
        ));
    }
    let msg = format!("{:?}: {}", s.code(), s.message());
    match s.code() {
        Code::InvalidArgument
        | Code::PermissionDenied
        | Code::AlreadyExists
        | Code::NotFound
        | Code::FailedPrecondition
        | Code::OutOfRange
        | Code::Unimplemented => Failure::Permanent(msg),
        _ => Failure::Transient(msg),
    }
}

/// Whether `s` is a failed TLS handshake in which our verifier refused the
/// peer's server certificate as revoked. The rustls error sits somewhere in
/// the status's chain of causes, inside an I/O error (whose own `source`
/// skips what it wraps, so each I/O error is opened by hand).
fn peer_certificate_revoked(s: &tonic::Status) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(s);
    while let Some(e) = next {
        let tls = e.downcast_ref::<rustls::Error>().or_else(|| {
            e.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(rustls::Error::InvalidCertificate(rustls::CertificateError::Revoked)) = tls {
            return true;
        }
        next = e.source();
    }
    false
}

fn until(at: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (at - now).to_std().unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two nodes with the default limits never refuse each other for being
    /// busy: what one sends at once fits in what the other admits.
    #[test]
    fn requests_at_once_fit_a_default_peers_admission() {
        let limits = crate::config::Limits::default();
        assert!(
            REQUESTS_AT_ONCE + MESSAGES_AT_ONCE <= limits.peer_concurrency + limits.peer_queue,
            "{REQUESTS_AT_ONCE} + {MESSAGES_AT_ONCE} requests at once, a peer admits {} + {}",
            limits.peer_concurrency,
            limits.peer_queue
        );
    }

    #[test]
    fn the_link_board_keeps_the_start_of_a_run_of_failures() {
        let board = LinkBoard::default();
        let peer = AgencyId::new("TR-MIT").unwrap();
        let t = |s| DateTime::from_timestamp(s, 0).unwrap();
        assert_eq!(board.get(&peer), LinkState::Untried);
        let failed = Tally {
            failed: true,
            ..Tally::default()
        };
        board.note(&peer, &failed, t(10));
        board.note(&peer, &failed, t(20));
        assert_eq!(board.get(&peer), LinkState::Failing { since: t(10) });
        // A round with nothing due says nothing of the link.
        board.note(&peer, &Tally::default(), t(25));
        assert_eq!(board.get(&peer), LinkState::Failing { since: t(10) });
        let reached = Tally {
            reached: true,
            ..Tally::default()
        };
        board.note(&peer, &reached, t(30));
        assert_eq!(board.get(&peer), LinkState::Reached { at: t(30) });
        let revoked = Tally {
            revoked: true,
            ..Tally::default()
        };
        board.note(&peer, &revoked, t(40));
        assert_eq!(board.get(&peer), LinkState::Revoked { at: t(40) });
        board.note(&peer, &failed, t(50));
        assert_eq!(board.get(&peer), LinkState::Failing { since: t(50) });
    }

    fn due(id: &str, bytes: usize) -> DueDelivery {
        DueDelivery {
            alert_id: id.into(),
            envelope: vec![0; bytes],
            attempts: 0,
        }
    }

    fn ids(requests: &[Vec<DueDelivery>]) -> Vec<Vec<&str>> {
        requests
            .iter()
            .map(|r| r.iter().map(|d| d.alert_id.as_str()).collect())
            .collect()
    }

    #[test]
    fn requests_hold_at_most_so_many_alerts_and_bytes_in_order() {
        let five: Vec<_> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|id| due(id, 100))
            .collect();
        assert_eq!(
            ids(&pack(five.clone(), 2, 10_000)),
            [vec!["a", "b"], vec!["c", "d"], vec!["e"]]
        );
        // 108 bytes each on the wire: three fit in 330, not four.
        assert_eq!(
            ids(&pack(five.clone(), 16, 330)),
            [vec!["a", "b", "c"], vec!["d", "e"]]
        );
        // One alone over the budget still goes, alone.
        let mixed = vec![due("a", 10), due("big", 5_000), due("c", 10)];
        assert_eq!(
            ids(&pack(mixed, 16, 1_000)),
            [vec!["a"], vec!["big"], vec!["c"]]
        );
        assert!(pack(Vec::new(), 16, 1_000).is_empty());
    }
}
