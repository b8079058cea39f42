//! Admission per calling agency.
//!
//! At most `concurrency` federation requests of one peer are worked on at
//! once, and at most `queue` more wait for a turn; anything beyond is
//! refused with RESOURCE_EXHAUSTED after a short hold (the peer's outbox
//! retries it after a backoff). A flood from one agency therefore neither starves the
//! others of the store and CPU nor grows memory without bound, and nobody
//! hangs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tocsin_core::AgencyId;
use tocsin_trust::tls::PerIdentity;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a refusal is held before it is answered: with
/// `max_concurrent_streams` per connection, this caps how many refusals a
/// flooding connection can draw per second.
pub(crate) const REFUSAL_DELAY: std::time::Duration = std::time::Duration::from_millis(100);

/// Per-peer concurrency limits with a bounded wait queue.
#[derive(Debug)]
pub(crate) struct PeerGate {
    concurrency: usize,
    queue: usize,
    peers: Mutex<HashMap<AgencyId, Arc<Slot>>>,
}

#[derive(Debug)]
struct Slot {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
}

/// A turn to work on one request; the next waiter goes when it drops.
#[derive(Debug)]
pub(crate) struct Turn(#[allow(dead_code)] OwnedSemaphorePermit);

/// Refused: the peer has too many requests in progress and waiting.
#[derive(Debug)]
pub(crate) struct Busy {
    pub(crate) in_progress: usize,
    pub(crate) waiting: usize,
}

/// Counts a waiter for as long as it waits, even if its request is
/// cancelled meanwhile.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl PeerGate {
    pub(crate) fn new(concurrency: usize, queue: usize) -> Self {
        Self {
            // A semaphore of more permits than MAX_PERMITS panics.
            concurrency: concurrency.clamp(1, Semaphore::MAX_PERMITS),
            queue,
            peers: Mutex::new(HashMap::new()),
        }
    }

    fn slot(&self, agency: &AgencyId) -> Arc<Slot> {
        // Only federation members get a session, so this map is bounded by
        // the federation's size.
        self.peers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(agency.clone())
            .or_insert_with(|| {
                Arc::new(Slot {
                    permits: Arc::new(Semaphore::new(self.concurrency)),
                    waiting: AtomicUsize::new(0),
                })
            })
            .clone()
    }

    /// Waits for `agency`'s turn, or refuses at once when its queue is full.
    pub(crate) async fn admit(&self, agency: &AgencyId) -> Result<Turn, Busy> {
        let slot = self.slot(agency);
        if let Ok(permit) = slot.permits.clone().try_acquire_owned() {
            return Ok(Turn(permit));
        }
        let before = slot.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&slot.waiting);
        if before >= self.queue {
            return Err(Busy {
                in_progress: self.concurrency,
                waiting: before,
            });
        }
        let permit = slot
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Busy {
                in_progress: self.concurrency,
                waiting: before,
            })?;
        Ok(Turn(permit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_peer_is_capped_and_others_are_not() {
        let gate = PeerGate::new(2, 1);
        let flood = AgencyId::new("XX-FLOOD").unwrap();
        let other = AgencyId::new("YY-OTHER").unwrap();
        let a = gate.admit(&flood).await.unwrap();
        let _b = gate.admit(&flood).await.unwrap();
        // The third waits in the queue; the fourth is refused at once.
        let gate = Arc::new(gate);
        let waiter = {
            let (gate, flood) = (gate.clone(), flood.clone());
            tokio::spawn(async move { gate.admit(&flood).await.is_ok() })
        };
        tokio::task::yield_now().await;
        while gate.slot(&flood).waiting.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let refused = gate.admit(&flood).await.unwrap_err();
        assert_eq!((refused.in_progress, refused.waiting), (2, 1));
        // Another agency is not held up by the flood.
        let _c = gate.admit(&other).await.unwrap();
        // A turn given back lets the waiter in.
        drop(a);
        assert!(waiter.await.unwrap());
        assert_eq!(gate.slot(&flood).waiting.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn limits_beyond_a_semaphore_are_capped() {
        // Found by the configuration fuzz target: peer_concurrency above
        // tokio's MAX_PERMITS made the first request of each peer panic.
        let gate = PeerGate::new(usize::MAX, usize::MAX);
        let peer = AgencyId::new("XX-PEER").unwrap();
        let _turn = gate.admit(&peer).await.unwrap();
        assert_eq!(
            gate.slot(&peer).permits.available_permits(),
            Semaphore::MAX_PERMITS - 1
        );
    }
}

/// Requests one identity may have in flight on a node at once, counted
/// before their bodies are read: what bounds the memory a flood of large
/// messages can take (at most this many messages of `max_message_bytes`
/// per identity), whatever the streams and connections it spreads over.
/// The [`PeerGate`] then decides which of them are worked on.
#[derive(Debug, Clone)]
pub(crate) struct InFlightLayer(PerIdentity);

impl InFlightLayer {
    pub(crate) fn new(limit: usize) -> Self {
        Self(PerIdentity::new(limit))
    }
}

impl<S> tower::Layer<S> for InFlightLayer {
    type Service = InFlight<S>;
    fn layer(&self, inner: S) -> InFlight<S> {
        InFlight {
            inner,
            in_flight: self.0.clone(),
        }
    }
}

/// See [`InFlightLayer`].
#[derive(Debug, Clone)]
pub(crate) struct InFlight<S> {
    inner: S,
    in_flight: PerIdentity,
}

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for InFlight<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let identity = req
            .extensions()
            .get::<tocsin_trust::tls::PeerInfo>()
            .map(|p| p.identity.clone());
        let slot = match identity {
            None => None,
            Some(identity) => match self.in_flight.take(&identity) {
                Some(held) => Some(held),
                None => {
                    let limit = self.in_flight.limit();
                    return Box::pin(async move {
                        // Held a moment, as the gate's refusals are.
                        tokio::time::sleep(REFUSAL_DELAY).await;
                        Ok(tonic::Status::resource_exhausted(format!(
                            "{identity} has {limit} requests in flight on this node; retry later"
                        ))
                        .into_http())
                    });
                }
            },
        };
        // The ready inner service serves this call; a fresh clone waits
        // for the next (the usual tower pattern).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let _slot = slot;
            inner.call(req).await
        })
    }
}
