//! Screening in the node: an index of every watchlist entry this node
//! holds (its agency's own and other owners' entries releasable to it),
//! kept current as entries change, and the operator's screen against it.
//!
//! - `convert`: a watchlist entry into a `tocsin_screening::Candidate`, an
//!   operator's `ScreenRequest` into a `Query` (naming the bad field), and
//!   a `Match` into the `ScreenMatch` the operator gets.
//! - this module: [`Screening`], the index behind a lock. It is built once
//!   at start from the store, off the async runtime, and then changed by
//!   the watchlist code right after each of its commits (a sync page
//!   applied, an own entry published, updated, removed or expired). A
//!   screen takes the read lock, an update the write lock; both run on a
//!   blocking thread since both are CPU work.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use chrono::{DateTime, Utc};
use prost::Message;
use tocsin_core::watchlist::Entry;
use tocsin_proto::pb;
use tocsin_screening::{Index, Options};
use tocsin_store::{HeldEntry, Store};

mod convert;

pub(crate) use convert::query_of;

/// Most requests in one `ScreenBatch`.
pub(crate) const MAX_BATCH: usize = 1_000;

/// One entry of the index: who owns it, and what the operator is shown.
#[derive(Debug)]
struct Held {
    owner: String,
    reference: String,
    /// The seq of the change that made the entry what it is.
    seq: u64,
    /// The owner's stricter hit threshold, if any.
    threshold: Option<f32>,
    expires_at: Option<DateTime<Utc>>,
    /// The entry as the node holds it (encoded `WatchlistEntry`), decoded
    /// only for a match: a million decoded entries would double the memory.
    entry: Vec<u8>,
}

/// The index and the map from its keys to entries.
#[derive(Default)]
struct State {
    index: Index,
    keys: HashMap<(String, String), u64>,
    held: HashMap<u64, Held>,
    next: u64,
}

/// A change to apply to the index after its store commit.
#[derive(Debug)]
pub(crate) enum Update {
    /// The entry as it now is.
    Put {
        /// The encoded `WatchlistEntry`.
        entry: Vec<u8>,
        /// The seq of the change that made it so.
        seq: u64,
    },
    /// The entry of this owner and ref is gone.
    Remove {
        /// The owner.
        owner: String,
        /// The owner's ref.
        reference: String,
    },
}

impl State {
    fn put(&mut self, bytes: Vec<u8>, seq: u64) {
        let entry = match pb::WatchlistEntry::decode(bytes.as_slice())
            .map_err(|e| e.to_string())
            .and_then(|w| Entry::try_from(w).map_err(|e| e.to_string()))
        {
            Ok(entry) => entry,
            Err(e) => {
                // The store only holds entries that passed these checks.
                tracing::warn!(error = %e, "a held watchlist entry is unreadable; not screened");
                return;
            }
        };
        let id = (entry.owner.to_string(), entry.reference.clone());
        let key = match self.keys.get(&id) {
            Some(&k) => k,
            None => {
                self.next += 1;
                self.keys.insert(id.clone(), self.next);
                self.next
            }
        };
        self.index.insert(convert::candidate(key, &entry));
        self.held.insert(
            key,
            Held {
                owner: id.0,
                reference: id.1,
                seq,
                threshold: entry.hit_threshold.map(|t| t.get()),
                expires_at: entry.expires_at,
                entry: bytes,
            },
        );
    }

    fn remove(&mut self, owner: String, reference: String) {
        if let Some(key) = self.keys.remove(&(owner, reference)) {
            self.index.remove(key);
            self.held.remove(&key);
        }
    }

    fn apply(&mut self, update: Update) {
        match update {
            Update::Put { entry, seq } => self.put(entry, seq),
            Update::Remove { owner, reference } => self.remove(owner, reference),
        }
    }
}

/// The node's screening index; cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct Screening {
    state: Arc<RwLock<State>>,
}

impl std::fmt::Debug for Screening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Screening").finish_non_exhaustive()
    }
}

impl Screening {
    /// The index of every entry `store` holds for `agency`'s node, unexpired
    /// at `now`.
    pub(crate) async fn build(
        store: &Store,
        agency: &str,
        now: DateTime<Utc>,
    ) -> Result<Self, tocsin_store::Error> {
        let started = Instant::now();
        let mut rows: Vec<HeldEntry> = store.own_watchlist(agency.to_owned()).await?;
        rows.extend(store.held_watchlist(None, now).await?);
        let read = started.elapsed();
        let count = rows.len();
        let state = tokio::task::spawn_blocking(move || {
            let mut state = State::default();
            for row in rows {
                state.put(row.entry, row.seq);
            }
            state
        })
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "building the screening index failed");
            State::default()
        });
        tracing::info!(
            entries = count,
            read_ms = read.as_millis() as u64,
            total_ms = started.elapsed().as_millis() as u64,
            "screening index built"
        );
        Ok(Screening {
            state: Arc::new(RwLock::new(state)),
        })
    }

    /// Applies changes just committed to the store.
    pub(crate) async fn apply(&self, updates: Vec<Update>) {
        if updates.is_empty() {
            return;
        }
        let state = self.state.clone();
        let work = move || {
            let mut state = state.write().unwrap_or_else(|e| e.into_inner());
            for u in updates {
                state.apply(u);
            }
        };
        if let Err(e) = tokio::task::spawn_blocking(work).await {
            tracing::error!(error = %e, "updating the screening index failed");
        }
    }

    /// Screens each query against the index, at `now`: an expired entry is
    /// never matched. Results are in the order of the queries.
    pub(crate) async fn screen(
        &self,
        requests: Vec<(pb::ScreenRequest, tocsin_screening::Query)>,
        now: DateTime<Utc>,
    ) -> Result<Vec<pb::ScreenResponse>, crate::Error> {
        let state = self.state.clone();
        let work = move || {
            let state = state.read().unwrap_or_else(|e| e.into_inner());
            let options = Options::default();
            requests
                .into_iter()
                .map(|(request, query)| {
                    let matches = state
                        .index
                        .screen(&query, &options)
                        .into_iter()
                        .filter_map(|m| {
                            let held = state.held.get(&m.key)?;
                            if held.expires_at.is_some_and(|e| e <= now) {
                                return None;
                            }
                            Some(convert::screen_match(
                                &m,
                                convert::HeldRef {
                                    owner: &held.owner,
                                    reference: &held.reference,
                                    seq: held.seq,
                                    threshold: held.threshold,
                                    entry: &held.entry,
                                },
                            ))
                        })
                        .collect();
                    pb::ScreenResponse {
                        r#ref: request.r#ref.clone(),
                        matches,
                        screened: Some(request),
                        screened_at: Some(tocsin_core::to_timestamp(now)),
                    }
                })
                .collect()
        };
        tokio::task::spawn_blocking(work).await.map_err(|e| {
            tracing::error!(error = %e, "a screen failed");
            crate::Error::Unavailable("the screen failed on this node".into())
        })
    }
}
