//! An agency of several front nodes on one store (PostgreSQL): what the
//! others commit to the watchlists reaches this node's screening index and
//! the log head its followers watch.
//!
//! Each node's index applies what the node itself commits (`publish`,
//! `sync`). [`Indexed`] keeps, per list, how far the index has applied the
//! store's log without a gap, and the rest is followed:
//! - the own list: every [`OWN_EVERY`], the store's head of this agency's
//!   log; changes after the index's place (published on another front
//!   node) are read as their entries now are and applied, and the head
//!   that peers' follow streams watch moves to the store's;
//! - held lists: a puller pulls after the lower of the store's cursor and
//!   the index's, so a page that another front node applied first is
//!   still applied to this node's index (see `sync`).
//!
//! On a store of one node (SQLite) the index is never behind the store,
//! and following costs one read of the head a second.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::Watchlists;
use crate::screening::Update;

/// How often a node looks for own-list changes another front node made.
const OWN_EVERY: Duration = Duration::from_secs(1);

/// Changes read per page when catching up.
const PAGE: usize = 1_000;

/// How far the screening index has applied each list's log, with no gap.
#[derive(Debug, Default)]
pub(crate) struct Indexed {
    own: Mutex<u64>,
    held: Mutex<BTreeMap<String, u64>>,
}

impl Indexed {
    /// The places the index starts from: read before the index is built,
    /// so that it holds at least that much (what it holds beyond is
    /// applied again, which changes nothing).
    pub(crate) fn new(own: u64, held: BTreeMap<String, u64>) -> Self {
        Self {
            own: Mutex::new(own),
            held: Mutex::new(held),
        }
    }

    pub(crate) fn own(&self) -> u64 {
        *self.own.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// This node applied its own changes `seqs` (in order): the place moves
    /// only if they follow it, else the follower fills the gap first.
    pub(crate) fn own_applied(&self, seqs: &[u64]) {
        let mut own = self.own.lock().unwrap_or_else(|e| e.into_inner());
        if seqs.first() == Some(&(*own + 1))
            && let Some(&last) = seqs.last()
        {
            *own = last;
        }
    }

    fn own_caught_up(&self, last: u64) {
        let mut own = self.own.lock().unwrap_or_else(|e| e.into_inner());
        *own = (*own).max(last);
    }

    /// The last seq of `owner`'s log the index applied.
    pub(crate) fn held(&self, owner: &str) -> u64 {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.get(owner).copied().unwrap_or(0)
    }

    /// The index applied `owner`'s changes after a place at or before its
    /// own, up to `last`.
    pub(crate) fn held_applied(&self, owner: &str, last: u64) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let at = held.entry(owner.to_owned()).or_default();
        *at = (*at).max(last);
    }
}

/// Follows the own list's changes made on other front nodes until the
/// node stops.
pub(crate) fn spawn_own_follower(watchlists: &Watchlists) -> JoinHandle<()> {
    let w = watchlists.clone();
    tokio::spawn(async move {
        let mut shutdown = w.shutdown.clone();
        let mut every = tokio::time::interval(OWN_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
            if let Err(e) = follow_own(&w).await {
                tracing::warn!(error = %e, "cannot follow the own watchlist's changes; will retry");
            }
        }
    })
}

/// Applies to the index the own-list changes after its place, and moves
/// the head peers follow to the store's.
async fn follow_own(w: &Watchlists) -> Result<(), tocsin_store::Error> {
    let head = w.store.own_watchlist_head().await?;
    if head.seq <= w.indexed.own() {
        return Ok(());
    }
    let own = w.agency.to_string();
    {
        // As every commit and its index update: two changes of one entry
        // reach the index in the order of their seqs.
        let _applying = w.applying.write().await;
        let mut after = w.indexed.own();
        loop {
            let changes = w.store.own_watchlist_refs_after(after, PAGE).await?;
            let Some(&(last, _)) = changes.last() else {
                break;
            };
            // Each ref once, as it now is: its last change wins.
            let refs: BTreeMap<String, u64> =
                changes.into_iter().map(|(seq, r)| (r, seq)).collect();
            let keys: Vec<(String, String)> =
                refs.keys().map(|r| (own.clone(), r.clone())).collect();
            let entries = w.store.watchlist_entries(own.clone(), keys).await?;
            let updates = refs
                .into_keys()
                .zip(entries)
                .map(|(reference, entry)| match entry {
                    Some(e) => Update::Put {
                        entry: e.entry,
                        seq: e.seq,
                    },
                    None => Update::Remove {
                        owner: own.clone(),
                        reference,
                    },
                })
                .collect();
            w.screening.apply(updates).await;
            w.indexed.own_caught_up(last);
            tracing::debug!(
                after,
                last,
                "applied own watchlist changes made on another front node"
            );
            after = last;
        }
    }
    if w.advance_head(head) {
        w.expiry.notify_one();
    }
    Ok(())
}
