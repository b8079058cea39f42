//! Watchlists: publishing this agency's entries, serving its log to peers,
//! and keeping a current copy of every other owner's entries releasable to
//! this agency.
//!
//! - `publish`: an operator's add, update and remove, and the removal the
//!   owner logs when an entry expires (its own loop, woken by the clock);
//!   each change is signed in the three forms its readers get (full,
//!   withdrawal, stub) in the write transaction that gives it its seq.
//! - `serve`: a page of this agency's log as one peer may read it, and the
//!   head a peer follows to pull as soon as the log grows.
//! - `sync`: one puller per other owner: follows the owner's head, pulls
//!   pages after its cursor, checks them (signed by the owner, gapless,
//!   releasable to us) and applies each page in one store transaction.
//! - `service`: the thin gRPC handlers (`WatchlistSync` for peers,
//!   `WatchlistDesk` for operators, screening included).
//! - `status`: the entries held and each owner's lag, for the gRPC and
//!   web desks.
//! - `report`: after a screen, each hit on another agency's entry reported
//!   to its owner through the domain (`Node::report_hit`).
//! - `follow`: with several front nodes on one store, what the others
//!   commit reaches this node's index and log head too.
//!
//! Every commit of an entry (an own change in `publish`, a page in `sync`)
//! is followed by the same change to the screening index
//! (`crate::screening`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tocsin_core::federation::Federation;
use tocsin_core::{AgencyId, Clock};
use tocsin_store::{Cursor, LogHead, Store};
use tocsin_trust::{Signer, Verifier};
use tokio::sync::{Notify, watch};

use crate::screening::Screening;

mod follow;
mod publish;
mod report;
mod serve;
mod service;
mod status;
mod sync;

pub(crate) use follow::spawn_own_follower;
pub use publish::own_watchlist_forms;
pub(crate) use service::{DeskService, SyncService};
pub(crate) use status::OwnerLag;
pub(crate) use sync::spawn_pullers;

/// What the watchlist handlers, the pullers and the expiry loop share.
#[derive(Clone)]
pub(crate) struct Watchlists {
    pub(crate) agency: AgencyId,
    pub(crate) federation: Arc<Federation>,
    pub(crate) store: Store,
    pub(crate) signer: Arc<Signer>,
    pub(crate) verifier: Verifier,
    pub(crate) clock: Arc<dyn Clock>,
    /// The head of this agency's log; peers following it are woken when
    /// it moves.
    head: Arc<watch::Sender<LogHead>>,
    /// Wakes the expiry loop when an entry is published (its expiry may
    /// come first).
    expiry: Arc<Notify>,
    /// Wakes the puller of an owner (its node just opened a session).
    wake: Arc<BTreeMap<AgencyId, Arc<Notify>>>,
    /// Every owner's cursor as last stored, for the metrics endpoint.
    pub(crate) board: SyncBoard,
    /// Turns true when the node begins to shut down: ends follow streams,
    /// pullers and the expiry loop.
    pub(crate) shutdown: watch::Receiver<bool>,
    /// The screening index of every entry held here, changed after each
    /// commit of an entry.
    pub(crate) screening: Screening,
    /// Written across each commit of entries and its index update (an own
    /// change, a page from an owner), so two changes of one entry reach the
    /// index in the order of their seqs; read by what reports what is held
    /// (sync status, listings), so nothing is reported held that a screen
    /// would not yet find.
    pub(crate) applying: Arc<tokio::sync::RwLock<()>>,
    /// How far the index has applied each list's log (see `follow`).
    indexed: Arc<follow::Indexed>,
}

impl std::fmt::Debug for Watchlists {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watchlists")
            .field("agency", &self.agency)
            .finish_non_exhaustive()
    }
}

impl Watchlists {
    /// The watchlists of `agency`'s node, its log head read from `store`.
    pub(crate) async fn new(
        agency: AgencyId,
        federation: Arc<Federation>,
        store: Store,
        signer: Arc<Signer>,
        verifier: Verifier,
        clock: Arc<dyn Clock>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Self, tocsin_store::Error> {
        let head = store.own_watchlist_head().await?;
        let wake = federation
            .agencies
            .iter()
            .filter(|a| a.id != agency)
            .map(|a| (a.id.clone(), Arc::new(Notify::new())))
            .collect();
        let board = SyncBoard::default();
        board.replace(store.watchlist_cursors(clock.now()).await?);
        // Where the index starts, read before it is built (see `follow`).
        let mut held = BTreeMap::new();
        for owner in federation.agencies.iter().filter(|a| a.id != agency) {
            let at = store.watchlist_cursor_seq(owner.id.to_string()).await?;
            held.insert(owner.id.to_string(), at);
        }
        let indexed = Arc::new(follow::Indexed::new(head.seq, held));
        let screening = Screening::build(&store, agency.as_str(), clock.now()).await?;
        Ok(Self {
            agency,
            federation,
            store,
            signer,
            verifier,
            clock,
            head: Arc::new(watch::channel(head).0),
            expiry: Arc::new(Notify::new()),
            wake: Arc::new(wake),
            board,
            shutdown,
            screening,
            applying: Arc::new(tokio::sync::RwLock::new(())),
            indexed,
        })
    }

    /// Moves the head peers follow to `head`, never back: this node's
    /// publish and the follower of the other front nodes' (`follow`) race
    /// to announce, and the later seq wins. Whether it moved.
    pub(crate) fn advance_head(&self, head: LogHead) -> bool {
        self.head.send_if_modified(|now| {
            let later = head.seq > now.seq;
            if later {
                *now = head;
            }
            later
        })
    }

    /// `owner`'s node is up (it opened a session with us): pull from it now
    /// rather than after the backoff.
    pub(crate) fn owner_up(&self, owner: &AgencyId) {
        if let Some(wake) = self.wake.get(owner) {
            wake.notify_one();
        }
    }

    /// Reads the cursors again for the metrics endpoint.
    async fn refresh_board(&self) {
        match self.store.watchlist_cursors(self.clock.now()).await {
            Ok(cursors) => self.board.replace(cursors),
            Err(e) => tracing::warn!(error = %e, "cannot read watchlist cursors"),
        }
    }
}

/// How far behind an owner's log a cursor is: changes not applied, and
/// the time since the last change applied was made (since the head was
/// made, when none was applied), 0 when caught up.
pub(crate) fn lag(cursor: &Cursor, now: DateTime<Utc>) -> (u64, f64) {
    let behind = cursor.head.seq.saturating_sub(cursor.applied.seq);
    if behind == 0 {
        return (0, 0.0);
    }
    let since = cursor.applied.at.or(cursor.head.at);
    let seconds = since
        .map(|t| ((now - t).num_milliseconds().max(0) as f64) / 1000.0)
        .unwrap_or(0.0);
    (behind, seconds)
}

/// Every owner's cursor, as last stored: what the metrics endpoint shows
/// (it renders without waiting on the store).
#[derive(Debug, Clone, Default)]
pub(crate) struct SyncBoard(Arc<Mutex<Vec<Cursor>>>);

impl SyncBoard {
    fn replace(&self, cursors: Vec<Cursor>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = cursors;
    }

    /// The cursors, by owner.
    pub(crate) fn snapshot(&self) -> Vec<Cursor> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_changes_and_the_age_of_what_is_held() {
        let t0 = DateTime::from_timestamp(1_000, 0).unwrap();
        let mut cursor = Cursor {
            owner: "TR-MIT".into(),
            applied: LogHead {
                seq: 3,
                at: Some(t0),
            },
            head: LogHead {
                seq: 5,
                at: Some(t0 + chrono::Duration::seconds(5)),
            },
            heard_at: None,
            refusal: None,
            held: 0,
        };
        assert_eq!(lag(&cursor, t0 + chrono::Duration::seconds(8)), (2, 8.0));
        cursor.applied.seq = 5;
        assert_eq!(lag(&cursor, t0 + chrono::Duration::seconds(8)), (0, 0.0));
    }
}
