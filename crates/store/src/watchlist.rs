//! Watchlists: this agency's own log of changes and entries, the entries
//! held from other owners, and the cursor kept per owner.
//!
//! The store keeps bytes: the node encodes and signs. What the store owns
//! is the log's shape: a change's seq is the next one, taken in the same
//! transaction that writes it (so the log has no gap and no seq twice),
//! and a holder's cursor moves only in the transaction that applies the
//! changes up to it (so a restart resumes exactly where it stopped).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::Error;

/// The stored form of a list of agencies (an own entry's `releasable_to`):
/// one per line, the same on both backends.
pub(crate) fn lines(agencies: &[String]) -> String {
    agencies.join("\n")
}

/// The inverse of [`lines`].
pub(crate) fn unlines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// An entry of this agency's list, as the node encoded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnEntry {
    /// The encoded `WatchlistEntry`.
    pub entry: Vec<u8>,
    /// Who may read it.
    pub releasable_to: Vec<String>,
    /// When it lapses.
    pub expires_at: Option<DateTime<Utc>>,
}

/// What a change does to this agency's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnOp {
    /// A new entry; refused if the ref is taken.
    Add(OwnEntry),
    /// New content for an entry; refused if there is none.
    Update(OwnEntry),
    /// The entry goes; refused if there is none.
    Remove,
}

/// One change to this agency's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnChange {
    /// The entry's ref.
    pub reference: String,
    /// What happens to it.
    pub op: OwnOp,
}

/// The signed forms of one change, made once its seq is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedForms {
    /// For `full_to`.
    pub full: Vec<u8>,
    /// The readers of `full`.
    pub full_to: Vec<String>,
    /// A withdrawal, for `withdrawn_from`.
    pub withdrawal: Option<Vec<u8>>,
    /// The readers of `withdrawal`.
    pub withdrawn_from: Vec<String>,
    /// For everyone else.
    pub stub: Vec<u8>,
}

/// Makes the signed forms of a change given its seq and who could read the
/// entry before it (nobody for a new entry). Called inside the write
/// transaction, possibly twice (see `Store::write`), so it must be pure.
pub type SignForms = Arc<dyn Fn(u64, &OwnChange, &[String]) -> SignedForms + Send + Sync>;

/// An entry as a node holds it (its own or another owner's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldEntry {
    /// The owner.
    pub owner: String,
    /// The owner's ref.
    pub reference: String,
    /// The encoded `WatchlistEntry`.
    pub entry: Vec<u8>,
    /// The seq of the change that made it so.
    pub seq: u64,
    /// When the owner made that change.
    pub changed_at: DateTime<Utc>,
}

/// What one pulled change does to the entries held from its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeldOp {
    /// The entry as it now is.
    Put {
        /// The owner's ref.
        reference: String,
        /// The encoded `WatchlistEntry`.
        entry: Vec<u8>,
        /// The owner's signed change.
        envelope: Vec<u8>,
        /// When it lapses.
        expires_at: Option<DateTime<Utc>>,
    },
    /// The entry goes (removed, withdrawn, expired).
    Remove {
        /// The owner's ref.
        reference: String,
    },
    /// Nothing for this node (a stub): only the cursor moves.
    Skip,
}

/// One pulled change, checked by the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldChange {
    /// Its seq in the owner's log.
    pub seq: u64,
    /// When the owner made it.
    pub authored_at: DateTime<Utc>,
    /// What it does here.
    pub op: HeldOp,
}

/// An owner's log position: its last seq and when that change was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogHead {
    /// The last seq (0: empty).
    pub seq: u64,
    /// When change `seq` was made.
    pub at: Option<DateTime<Utc>>,
}

/// How far this node has read one owner's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The owner.
    pub owner: String,
    /// The last change applied, and when the owner made it.
    pub applied: LogHead,
    /// The owner's head as last heard.
    pub head: LogHead,
    /// When the head was last heard of (node clock).
    pub heard_at: Option<DateTime<Utc>>,
    /// Why the owner's log was last refused.
    pub refusal: Option<String>,
    /// Entries of this owner held here.
    pub held: u64,
}

/// This agency's watchlist log and entries, the entries held from other
/// owners, and the cursor per owner. Part of [`crate::Backend`].
#[async_trait]
pub trait WatchlistStore: Send + Sync {
    /// Appends `changes` to this agency's log, all or none, in one
    /// transaction: each takes the next seq, its signed forms from `sign`,
    /// and changes the entry. Returns the seqs in order. A change that
    /// adds a ref already used fails with [`Error::Exists`], one that
    /// updates or removes an unknown ref with [`Error::NotFound`], and
    /// then nothing of `changes` is written.
    async fn append_own_watchlist(
        &self,
        changes: Vec<OwnChange>,
        at: DateTime<Utc>,
        sign: SignForms,
    ) -> Result<Vec<u64>, Error>;

    /// This agency's log as `reader` may read it: the changes after
    /// `after`, at most `limit`, each in the signed form `reader` gets,
    /// with the head of the log in the same snapshot.
    async fn own_watchlist_page(
        &self,
        reader: String,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<(u64, Vec<u8>)>, LogHead), Error>;

    /// The head of this agency's log.
    async fn own_watchlist_head(&self) -> Result<LogHead, Error>;

    /// The changes of this agency's log after `after`, at most `limit`, as
    /// (seq, ref), by seq: what a front node's screening index follows of
    /// the changes the agency's other front nodes made.
    async fn own_watchlist_refs_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, String)>, Error>;

    /// This agency's entries, by ref.
    async fn own_watchlist(&self, owner: String) -> Result<Vec<HeldEntry>, Error>;

    /// The refs of this agency's entries that have expired at `now`, and
    /// the soonest expiry still to come.
    async fn own_watchlist_expiries(
        &self,
        now: DateTime<Utc>,
    ) -> Result<(Vec<String>, Option<DateTime<Utc>>), Error>;

    /// Applies a checked page of `owner`'s log in one transaction: the
    /// entries it puts and removes, and the cursor moved to its last seq.
    /// `from` is the cursor the page was pulled after; if the stored
    /// cursor is elsewhere (another pull, perhaps another front node's,
    /// applied first), nothing is written and the answer is
    /// [`Error::Conflict`]. Entries that expired by `now` are dropped as well.
    async fn apply_held_watchlist(
        &self,
        owner: String,
        from: u64,
        changes: Vec<HeldChange>,
        head: LogHead,
        now: DateTime<Utc>,
    ) -> Result<LogHead, Error>;

    /// Records what this node last heard of `owner`'s head.
    async fn note_watchlist_head(
        &self,
        owner: String,
        head: LogHead,
        now: DateTime<Utc>,
    ) -> Result<(), Error>;

    /// Records why `owner`'s log was refused; the cursor stays.
    async fn note_watchlist_refusal(&self, owner: String, reason: String) -> Result<(), Error>;

    /// The last seq of `owner`'s log applied here (0: none): a puller's
    /// cursor, without the count of held entries that
    /// [`Store::watchlist_cursors`] makes, which reads an index entry for
    /// every entry held.
    async fn watchlist_cursor_seq(&self, owner: String) -> Result<u64, Error>;

    /// The cursor kept for every owner this node has pulled from, with the
    /// number of its entries held here unexpired at `now`.
    async fn watchlist_cursors(&self, now: DateTime<Utc>) -> Result<Vec<Cursor>, Error>;

    /// The entries held from other owners (or from `owner` only) that have
    /// not expired at `now`, by owner and ref.
    async fn held_watchlist(
        &self,
        owner: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Vec<HeldEntry>, Error>;

    /// One page of this agency's entries: at most `limit` with a ref after
    /// `after` ("" for the first page), by ref. Keyed on the ref, so a
    /// page costs the same wherever it starts: the node builds its
    /// screening index page by page rather than holding every row at once.
    async fn own_watchlist_after(
        &self,
        owner: String,
        after: String,
        limit: usize,
    ) -> Result<Vec<HeldEntry>, Error>;

    /// One page of the entries held from other owners unexpired at `now`:
    /// at most `limit` after `after` (owner, ref; empty strings for the
    /// first page), by owner and ref. See [`Store::own_watchlist_after`].
    async fn held_watchlist_after(
        &self,
        after: (String, String),
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<HeldEntry>, Error>;

    /// The entries of `keys` (owner, ref) as they now are, in the order of
    /// `keys`, `None` for one this node no longer holds: `own` names this
    /// agency, whose entries are its own list, every other owner's are
    /// held ones. One read for all, from one snapshot: a front node's
    /// follower reads the entries other nodes changed.
    async fn watchlist_entries(
        &self,
        own: String,
        keys: Vec<(String, String)>,
    ) -> Result<Vec<Option<HeldEntry>>, Error>;
}

/// Refuses an own-list change that does not fit what is stored: an add
/// over an entry that exists, an update or removal of one that does not.
/// `index` is the change's place in its request, for the message.
pub(crate) fn check_change(index: usize, change: &OwnChange, exists: bool) -> Result<(), Error> {
    match (&change.op, exists) {
        (OwnOp::Add(_), true) => Err(Error::Exists(format!(
            "entries[{index}]: this agency already has a watchlist entry with ref {:?}",
            change.reference
        ))),
        (OwnOp::Update(_) | OwnOp::Remove, false) => Err(Error::NotFound(format!(
            "this agency has no watchlist entry with ref {:?}",
            change.reference
        ))),
        _ => Ok(()),
    }
}
