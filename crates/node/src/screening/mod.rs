//! Screening in the node: an index of every watchlist entry this node
//! holds (its agency's own and other owners' entries releasable to it),
//! kept current as entries change, and the operator's screen against it.
//!
//! - `convert`: a watchlist entry into a `tocsin_screening::Candidate`, an
//!   operator's `ScreenRequest` into a `Query` (naming the bad field), and
//!   a `Match` into the `ScreenMatch` the operator gets.
//! - this module: [`Screening`], the index behind a lock. It is built once
//!   at start from the store, a page of rows at a time, off the async
//!   runtime, and then changed by the watchlist code right after each of
//!   its commits (a sync page applied, an own entry published, updated,
//!   removed or expired). A screen takes the read lock, an update the
//!   write lock. An update, and the screens of a batch of more than one,
//!   run on a blocking thread; a single small screen (unary, or a batch of
//!   one) runs where its call arrived unless an update holds the lock
//!   ([`Screening::screen`]).
//!
//! Memory: beside the index the node keeps per entry what a screen needs
//! to pick, filter and show its matches: owner, ref, seq, threshold,
//! expiry and the encoded entry as the index scored it, about 240 bytes.
//! A match shows that entry, so what a screen returns is always what it
//! scored, with no read of the store (which cost a quarter of the node's
//! CPU in a batch; see docs/ARCHITECTURE.md, "The index").

use std::hash::BuildHasher;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use chrono::{DateTime, Utc};
use hashbrown::HashTable;
use prost::Message;
use tocsin_core::watchlist::Entry;
use tocsin_proto::{pb, wire};
use tocsin_screening::{Index, Options, Query};
use tocsin_store::{HeldEntry, Store};
use tokio::sync::Semaphore;

mod convert;

pub(crate) use convert::query_of;
pub use convert::{MAX_LIMIT as MAX_SCREEN_LIMIT, options as screen_options};

/// Most requests in one `ScreenBatch`.
pub(crate) const MAX_BATCH: usize = 1_000;

/// Rows read from the store at a time while the index is built: enough to
/// keep a read cheap per row, few enough that a page in memory is small.
const BUILD_PAGE: usize = 20_000;

/// What the node keeps of one entry beside the index: who owns it, what
/// picks and filters its matches, and the entry a match shows.
#[derive(Debug)]
struct Held {
    /// The owner's ref.
    reference: Box<str>,
    /// The seq of the change that made the entry what it is.
    seq: u64,
    expires_at: Option<DateTime<Utc>>,
    /// The owner's stricter hit threshold, if any.
    threshold: Option<f32>,
    /// The owner, in `State::owners`.
    owner: u32,
    /// The encoded `WatchlistEntry`, the version the index holds.
    entry: Box<[u8]>,
}

/// The index and what it keeps per entry. An entry's index key is its
/// slot in `slots`; a slot freed by a removal is used again.
#[derive(Default)]
struct State {
    index: Index,
    /// Owner ids, each once (a few dozen agencies hold a million entries).
    owners: Vec<String>,
    slots: Vec<Option<Held>>,
    free: Vec<u32>,
    /// Slots by (owner, ref), hashed from the slot's own fields, so no
    /// ref is kept twice.
    keys: HashTable<u32>,
    hasher: std::hash::RandomState,
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

fn same(held: Option<&Held>, owner: u32, reference: &str) -> bool {
    held.is_some_and(|h| h.owner == owner && &*h.reference == reference)
}

impl State {
    fn owner_id(&self, owner: &str) -> Option<u32> {
        self.owners
            .iter()
            .position(|o| o == owner)
            .and_then(|i| u32::try_from(i).ok())
    }

    fn slot_of(&self, owner: u32, reference: &str) -> Option<u32> {
        let hash = self.hasher.hash_one((owner, reference));
        self.keys
            .find(hash, |&s| {
                same(self.slots[s as usize].as_ref(), owner, reference)
            })
            .copied()
    }

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
        let owner = match self.owner_id(entry.owner.as_str()) {
            Some(id) => id,
            None => {
                self.owners.push(entry.owner.to_string());
                (self.owners.len() - 1) as u32
            }
        };
        let held = Held {
            reference: entry.reference.as_str().into(),
            seq,
            expires_at: entry.expires_at,
            threshold: entry.hit_threshold.map(|t| t.get()),
            owner,
            entry: bytes.into_boxed_slice(),
        };
        let slot = match self.slot_of(owner, &entry.reference) {
            Some(slot) => {
                self.slots[slot as usize] = Some(held);
                slot
            }
            None => {
                let slot = match self.free.pop() {
                    Some(slot) => {
                        self.slots[slot as usize] = Some(held);
                        slot
                    }
                    None => {
                        self.slots.push(Some(held));
                        (self.slots.len() - 1) as u32
                    }
                };
                let hash = self.hasher.hash_one((owner, entry.reference.as_str()));
                let (slots, hasher) = (&self.slots, &self.hasher);
                self.keys.insert_unique(hash, slot, |&s| {
                    let h = slots[s as usize].as_ref();
                    hasher.hash_one((h.map_or(0, |h| h.owner), h.map_or("", |h| &*h.reference)))
                });
                slot
            }
        };
        self.index
            .insert(convert::candidate(u64::from(slot), &entry));
    }

    fn remove(&mut self, owner: &str, reference: &str) {
        let Some(owner) = self.owner_id(owner) else {
            return;
        };
        let hash = self.hasher.hash_one((owner, reference));
        let slots = &self.slots;
        if let Ok(found) = self.keys.find_entry(hash, |&s| {
            same(slots[s as usize].as_ref(), owner, reference)
        }) {
            let (slot, _) = found.remove();
            self.index.remove(u64::from(slot));
            self.slots[slot as usize] = None;
            self.free.push(slot);
        }
    }

    fn apply(&mut self, update: Update) {
        match update {
            Update::Put { entry, seq } => self.put(entry, seq),
            Update::Remove { owner, reference } => self.remove(&owner, &reference),
        }
    }

    /// The matches of `query` at `now` (an expired entry never matches),
    /// each showing the version of its entry the index scored, and
    /// whether more may have matched than the options' limit let in.
    fn screen(&self, query: &Query, options: &Options, now: DateTime<Utc>) -> Screened {
        let page = self.index.screen_page(query, options);
        let matches = page
            .matches
            .iter()
            .filter_map(|m| {
                let slot = u32::try_from(m.key).ok()?;
                let held = self.slots.get(slot as usize)?.as_ref()?;
                if held.expires_at.is_some_and(|e| e <= now) {
                    return None;
                }
                Some(convert::screen_match(
                    m,
                    &self.owners[held.owner as usize],
                    held,
                ))
            })
            .collect();
        (matches, page.more)
    }
}

/// The node's screening index; cheap to clone.
#[derive(Clone)]
pub(crate) struct Screening {
    state: Arc<RwLock<State>>,
    /// One permit a core: screens run at most this many at once, the rest
    /// wait their turn here. A screen is pure CPU work, so more at once
    /// only adds blocking threads (each with its own allocator heap) and
    /// switches between them.
    cores: Arc<Semaphore>,
}

impl std::fmt::Debug for Screening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Screening").finish_non_exhaustive()
    }
}

/// Where the build has got to: this agency's own entries by ref, then the
/// held ones by owner and ref.
enum Page {
    /// After this ref, this many rows a read.
    Own(String, usize),
    Held((String, String), usize),
    Done,
}

impl Page {
    /// The next rows to index (none: all read).
    async fn next(
        &mut self,
        store: &Store,
        agency: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<HeldEntry>, tocsin_store::Error> {
        loop {
            match self {
                Page::Own(after, page) => {
                    let page = *page;
                    let rows = store
                        .own_watchlist_after(agency.to_owned(), after.clone(), page)
                        .await?;
                    match rows.last() {
                        Some(last) if rows.len() == page => *after = last.reference.clone(),
                        _ => *self = Page::Held((String::new(), String::new()), page),
                    }
                    if !rows.is_empty() {
                        return Ok(rows);
                    }
                }
                Page::Held(after, page) => {
                    let page = *page;
                    let rows = store.held_watchlist_after(after.clone(), now, page).await?;
                    match rows.last() {
                        Some(last) if rows.len() == page => {
                            *after = (last.owner.clone(), last.reference.clone());
                        }
                        _ => *self = Page::Done,
                    }
                    return Ok(rows);
                }
                Page::Done => return Ok(Vec::new()),
            }
        }
    }
}

impl Screening {
    /// The index of every entry `store` holds for `agency`'s node, unexpired
    /// at `now`, read a page at a time: the next page is read while the
    /// last one is indexed.
    pub(crate) async fn build(
        store: &Store,
        agency: &str,
        now: DateTime<Utc>,
    ) -> Result<Self, tocsin_store::Error> {
        Self::build_paged(store, agency, now, BUILD_PAGE).await
    }

    /// [`Screening::build`] reading `page` rows at a time.
    async fn build_paged(
        store: &Store,
        agency: &str,
        now: DateTime<Utc>,
        page: usize,
    ) -> Result<Self, tocsin_store::Error> {
        let started = Instant::now();
        let mut state = State::default();
        let mut count = 0;
        let mut pages = Page::Own(String::new(), page);
        let mut rows = pages.next(store, agency, now).await?;
        while !rows.is_empty() {
            count += rows.len();
            let index = tokio::task::spawn_blocking(move || {
                for row in rows {
                    state.put(row.entry, row.seq);
                }
                state
            });
            let (indexed, next) = tokio::join!(index, pages.next(store, agency, now));
            rows = next?;
            state = match indexed {
                Ok(state) => state,
                Err(e) => {
                    // As before paging: the node still starts, with an
                    // empty index rather than a partial one.
                    tracing::error!(error = %e, "building the screening index failed");
                    rows = Vec::new();
                    State::default()
                }
            };
        }
        tracing::info!(
            entries = count,
            total_ms = started.elapsed().as_millis() as u64,
            "screening index built"
        );
        Ok(Screening {
            state: Arc::new(RwLock::new(state)),
            cores: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
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
    /// never matched. Results are in the order of the queries. Each match
    /// shows its entry as the index holds it, the version it was scored
    /// on; a change committed to the store shows once its index update is
    /// applied, which the watchlist code does right after the commit.
    ///
    /// One small screen runs here, on the runtime's worker, unless an
    /// index update holds the lock; more than one, or a larger one, run on
    /// a blocking thread. Either way at most one a core runs at once.
    pub(crate) async fn screen(
        &self,
        requests: Vec<(pb::ScreenRequest, tocsin_screening::Query)>,
        now: DateTime<Utc>,
    ) -> Result<Vec<wire::ScreenResponse>, crate::Error> {
        let (requests, queries): (Vec<_>, Vec<_>) = requests
            .into_iter()
            .map(|(r, q)| {
                let options = convert::options(r.limit);
                (r, (q, options))
            })
            .unzip();
        let core = self.cores.clone().acquire_owned().await.map_err(|_| {
            crate::Error::Unavailable("screening is shutting down on this node".into())
        })?;
        let results = match self.screen_inline(&queries, now) {
            Some(results) => {
                drop(core);
                results?
            }
            None => {
                let state = self.state.clone();
                let work = move || {
                    // Held until the work is done, even if the caller goes away.
                    let _core = core;
                    let state = state.read().unwrap_or_else(|e| e.into_inner());
                    screen_all(&state, &queries, now)
                };
                tokio::task::spawn_blocking(work)
                    .await
                    .map_err(|e| screen_failed(&e))?
            }
        };
        Ok(requests
            .into_iter()
            .zip(results)
            .map(|(request, (matches, more))| wire::ScreenResponse {
                r#ref: request.r#ref.clone(),
                matches,
                more_matches: more,
                screened: Some(request),
                screened_at: Some(tocsin_core::to_timestamp(now)),
            })
            .collect())
    }

    /// A single screen, run where the caller is, on the async runtime's
    /// worker: it is a fraction of a millisecond of CPU (about what a TLS
    /// handshake's signature costs, which also runs there), and handing it
    /// to a blocking thread and back cost the node more than the rest of
    /// the call's overhead (docs/ARCHITECTURE.md, "Screening in the node").
    /// `None` when it is not one screen, when the screen is not [`small`],
    /// or when an index update holds the lock: then the caller sends the
    /// work to a blocking thread, so that a worker never waits on the
    /// lock nor runs a long screen.
    fn screen_inline(
        &self,
        queries: &[(Query, Options)],
        now: DateTime<Utc>,
    ) -> Option<Result<Vec<Screened>, crate::Error>> {
        let [(query, options)] = queries else {
            return None;
        };
        if !small(query, options) {
            return None;
        }
        let state = match self.state.try_read() {
            Ok(state) => state,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        let results = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            screen_all(&state, queries, now)
        }));
        Some(results.map_err(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("a panic");
            screen_failed(&message)
        }))
    }
}

/// What the caller is told of a screen that panicked, on either path.
fn screen_failed(error: &dyn std::fmt::Display) -> crate::Error {
    tracing::error!(error = %error, "a screen failed");
    crate::Error::Unavailable("the screen failed on this node".into())
}

/// Most names (primary and aliases) of a screen run on a worker.
const INLINE_NAMES: usize = 2;
/// Most documents and identifiers, together, of a screen run on a worker.
const INLINE_EXACT: usize = 4;

/// Whether a screen is small enough to run on a worker: its cost grows
/// with its names (each one's candidates are scored, up to the library's
/// cap) and with the matches it returns, and a request may carry any
/// number of aliases; an operator's check of a person usually has one or
/// two names and the default limit. A larger one goes to a blocking
/// thread, so that no request can hold a worker for long.
fn small(query: &Query, options: &Options) -> bool {
    query.names.len() <= INLINE_NAMES
        && query.documents.len() + query.identifiers.len() <= INLINE_EXACT
        && options.max_results <= convert::DEFAULT_LIMIT
}

/// What one screen found: its matches, and whether the limit left more out.
type Screened = (Vec<wire::ScreenMatch>, bool);

/// Each query screened against `state`, in order.
fn screen_all(state: &State, queries: &[(Query, Options)], now: DateTime<Utc>) -> Vec<Screened> {
    queries
        .iter()
        .map(|(query, options)| state.screen(query, options, now))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tocsin_store::{HeldChange, HeldOp, LogHead, OwnChange, OwnEntry, OwnOp, SignedForms};

    fn wire(owner: &str, reference: &str, name: &str) -> pb::WatchlistEntry {
        pb::WatchlistEntry {
            owner: owner.into(),
            r#ref: reference.into(),
            subject: Some(pb::Subject {
                kind: Some(pb::subject::Kind::Person(pb::Person {
                    names: vec![name.into()],
                    ..Default::default()
                })),
            }),
            reason: "wanted for questioning".into(),
            action: pb::WatchlistAction::DiscreetCheck as i32,
            hit_precedence: pb::Precedence::Routine as i32,
            tlp: pb::Tlp::Amber as i32,
            ..Default::default()
        }
    }

    fn own(reference: &str, name: &str) -> OwnChange {
        OwnChange {
            reference: reference.into(),
            op: OwnOp::Add(OwnEntry {
                entry: wire("TR-MIT", reference, name).encode_to_vec(),
                releasable_to: vec![],
                expires_at: None,
            }),
        }
    }

    fn unsigned() -> tocsin_store::SignForms {
        Arc::new(|_, _, _| SignedForms {
            full: b"full".to_vec(),
            full_to: vec![],
            withdrawal: None,
            withdrawn_from: vec![],
            stub: b"stub".to_vec(),
        })
    }

    async fn screen_for(s: &Screening, name: &str) -> Vec<pb::ScreenMatch> {
        screen_limited(s, name, 0).await.matches
    }

    fn request(names: &[&str], limit: u32) -> pb::ScreenRequest {
        pb::ScreenRequest {
            person: Some(pb::Person {
                names: names.iter().map(|n| n.to_string()).collect(),
                ..Default::default()
            }),
            limit,
            ..Default::default()
        }
    }

    async fn screen_limited(s: &Screening, name: &str, limit: u32) -> pb::ScreenResponse {
        let request = request(&[name], limit);
        let query = query_of(&request).unwrap();
        let mut out = s.screen(vec![(request, query)], Utc::now()).await.unwrap();
        // As the operator's client decodes it.
        out.pop()
            .unwrap()
            .decoded()
            .expect("a screen's response decodes")
    }

    /// Built a page at a time over own and held entries, the index finds
    /// each; a match carries the entry as stored, at its seq; a match
    /// always shows the version it was scored on, also while a change is
    /// committed and its index update not yet applied; once it is, a
    /// removed entry is gone and a changed one matches as it now is.
    #[tokio::test]
    async fn matches_carry_the_entry_at_the_scored_version() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), tocsin_store::StoreOptions::default()).unwrap();
        let now = Utc::now();
        let names = [
            ("A", "Salah Abdeslam"),
            ("B", "Abdelhamid Abaaoud"),
            ("C", "Omar Ismail Mostefai"),
        ];
        let changes = names.iter().map(|(r, n)| own(r, n)).collect();
        store
            .append_own_watchlist(changes, now, unsigned())
            .await
            .unwrap();
        let held = ["Samy Amimour", "Bilal Hadfi"]
            .iter()
            .enumerate()
            .map(|(i, n)| HeldChange {
                seq: i as u64 + 1,
                authored_at: now,
                op: HeldOp::Put {
                    reference: format!("D{i}"),
                    entry: wire("DE-BFV", &format!("D{i}"), n).encode_to_vec(),
                    envelope: b"env".to_vec(),
                    expires_at: None,
                },
            })
            .collect();
        let head = LogHead {
            seq: 2,
            at: Some(now),
        };
        store
            .apply_held_watchlist("DE-BFV".into(), 0, held, head, now)
            .await
            .unwrap();

        let s = Screening::build_paged(&store, "TR-MIT", now, 2)
            .await
            .unwrap();
        for (owner, reference, name, seq) in [
            ("TR-MIT", "A", "Salah Abdeslam", 1),
            ("TR-MIT", "C", "Omar Ismail Mostefai", 3),
            ("DE-BFV", "D1", "Bilal Hadfi", 2),
        ] {
            let m = screen_for(&s, name).await;
            let m = m.iter().find(|m| m.r#ref == reference).unwrap();
            assert!(m.hit, "{name}");
            assert_eq!((m.owner.as_str(), m.entry_seq), (owner, seq));
            assert_eq!(m.entry.as_ref().unwrap(), &wire(owner, reference, name));
        }

        // B removed: gone once its index update is applied.
        store
            .append_own_watchlist(
                vec![OwnChange {
                    reference: "B".into(),
                    op: OwnOp::Remove,
                }],
                now,
                unsigned(),
            )
            .await
            .unwrap();
        assert!(!screen_for(&s, "Abdelhamid Abaaoud").await.is_empty());
        s.apply(vec![Update::Remove {
            owner: "TR-MIT".into(),
            reference: "B".into(),
        }])
        .await;
        assert!(screen_for(&s, "Abdelhamid Abaaoud").await.is_empty());

        // A's new version (another person's name) is committed; until its
        // index update is applied, A matches as the index scored it, old
        // name and old seq together: never the new entry under the old
        // name's score ("Salah Abdeslam" shown as Jean Dupont).
        let old = wire("TR-MIT", "A", "Salah Abdeslam");
        let updated = wire("TR-MIT", "A", "Jean Dupont");
        let change = OwnChange {
            reference: "A".into(),
            op: OwnOp::Update(OwnEntry {
                entry: updated.encode_to_vec(),
                releasable_to: vec![],
                expires_at: None,
            }),
        };
        let seqs = store
            .append_own_watchlist(vec![change], now, unsigned())
            .await
            .unwrap();
        let update = Update::Put {
            entry: updated.encode_to_vec(),
            seq: seqs[0],
        };
        let m = screen_for(&s, "Salah Abdeslam").await;
        let m = m.iter().find(|m| m.r#ref == "A").unwrap();
        assert_eq!((m.entry.as_ref().unwrap(), m.entry_seq), (&old, 1));
        // And with the update racing the screen, either whole version.
        let (m, ()) = tokio::join!(screen_for(&s, "Salah Abdeslam"), s.apply(vec![update]));
        for m in m.iter().filter(|m| m.r#ref == "A") {
            assert_eq!((m.entry.as_ref().unwrap(), m.entry_seq), (&old, 1), "{m:?}");
        }
        assert!(
            screen_for(&s, "Salah Abdeslam")
                .await
                .iter()
                .all(|m| m.r#ref != "A")
        );
        let m = screen_for(&s, "Jean Dupont").await;
        let m = m.iter().find(|m| m.r#ref == "A").unwrap();
        assert_eq!(m.entry.as_ref().unwrap(), &updated);
        assert_eq!(m.entry_seq, seqs[0]);
    }

    /// A screen returns the request's `limit` of matches, best first, and
    /// the default when it sets none: of 30 namesakes, 10, or 25 asked for.
    #[tokio::test]
    async fn a_screen_returns_at_most_its_limit_of_matches() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), tocsin_store::StoreOptions::default()).unwrap();
        let now = Utc::now();
        let changes = (0..30)
            .map(|i| own(&format!("N{i}"), "Karim Benhaddou"))
            .collect();
        store
            .append_own_watchlist(changes, now, unsigned())
            .await
            .unwrap();
        let s = Screening::build(&store, "TR-MIT", now).await.unwrap();
        let shown = screen_limited(&s, "Karim Benhaddou", 0).await;
        assert_eq!(shown.matches.len(), convert::DEFAULT_LIMIT);
        assert!(shown.more_matches);
        assert!(shown.matches.iter().all(|m| m.hit));
        let some = screen_limited(&s, "Karim Benhaddou", 25).await;
        assert_eq!((some.matches.len(), some.more_matches), (25, true));
        let all = screen_limited(&s, "Karim Benhaddou", 100).await;
        assert_eq!((all.matches.len(), all.more_matches), (30, false));
    }
    /// A single small screen runs on the runtime's own thread (more than
    /// one, more names or more matches do not), but never waits there on
    /// the index's lock: while an update holds it, the screen goes to a
    /// blocking thread and the runtime goes on with its other work; once
    /// the update is done, the screen finishes with its match.
    #[test]
    fn a_small_screen_runs_in_place_and_never_blocks_the_runtime_on_an_update() {
        let s = Screening {
            state: Arc::new(RwLock::new(State::default())),
            cores: Arc::new(Semaphore::new(2)),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(s.apply(vec![Update::Put {
            entry: wire("TR-MIT", "A", "Salah Abdeslam").encode_to_vec(),
            seq: 1,
        }]));
        let inline = rt.block_on(screen_for(&s, "Salah Abdeslam"));
        assert!(inline.iter().any(|m| m.r#ref == "A" && m.hit), "{inline:?}");
        // Run in place: one small screen, the lock free.
        let query = |names: &[&str], limit: u32| {
            (
                query_of(&request(names, limit)).unwrap(),
                convert::options(limit),
            )
        };
        let one = query(&["Salah Abdeslam"], 0);
        let found = s.screen_inline(std::slice::from_ref(&one), Utc::now());
        let found = found.expect("run in place").unwrap();
        assert!(found[0].0.iter().any(|m| m.r#ref == "A" && m.hit));
        // Not in place: more than one screen, many names, many matches.
        let now = Utc::now();
        assert!(s.screen_inline(&[one.clone(), one], now).is_none());
        let aliases = query(&["Salah Abdeslam", "Abdeslam Salah", "Salah Abdesalam"], 0);
        assert!(s.screen_inline(&[aliases], now).is_none());
        assert!(
            s.screen_inline(&[query(&["Salah Abdeslam"], 100)], now)
                .is_none()
        );

        let update = s.state.write().unwrap();
        let (alive, alive_rx) = std::sync::mpsc::channel();
        let (done, done_rx) = std::sync::mpsc::channel();
        let runtime = {
            let s = s.clone();
            std::thread::spawn(move || {
                rt.block_on(async {
                    let mut screen = std::pin::pin!(screen_for(&s, "Salah Abdeslam"));
                    // Polled once: waiting for the lock, and this thread free.
                    let first = std::future::poll_fn(|cx| {
                        std::task::Poll::Ready(screen.as_mut().poll(cx).is_pending())
                    })
                    .await;
                    alive.send(first).unwrap();
                    done.send(screen.await).unwrap();
                })
            })
        };
        let wait = std::time::Duration::from_secs(60);
        assert_eq!(alive_rx.recv_timeout(wait), Ok(true));
        drop(update);
        let matches = done_rx.recv_timeout(wait).unwrap();
        assert!(
            matches.iter().any(|m| m.r#ref == "A" && m.hit),
            "{matches:?}"
        );
        runtime.join().unwrap();
    }
}
