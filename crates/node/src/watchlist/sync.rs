//! Keeping the entries of every other owner current: one puller per owner.
//!
//! A puller follows the owner's head (a server stream that answers at once
//! and again whenever the owner's log grows) and pulls pages after its
//! cursor until it has caught up; a periodic pull backs the stream up. A
//! page is checked whole before anything of it is applied: every change
//! signed by the owner (one batch check of the signatures), its seq the
//! next after the cursor, every entry it puts the owner's and releasable to
//! this agency. A page that fails is refused and logged, and the cursor
//! stays where it was: the owner's log is not followed past a forgery or a
//! gap. A page that passes is applied in one store transaction, cursor
//! included, so a restart of either side resumes at the cursor.

use std::time::Duration;

use prost::Message;
use tocsin_core::watchlist::{Change, ChangeKind};
use tocsin_core::{AgencyId, from_timestamp};
use tocsin_proto::pb::watchlist_sync_client::WatchlistSyncClient;
use tocsin_proto::{MAX_WATCHLIST_PAGE, WATCHLIST_CHANGE_PAYLOAD_TYPE, pb};
use tocsin_store::{HeldChange, HeldOp, LogHead};
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use super::Watchlists;
use crate::screening::Update;

/// How often a puller pulls even when the owner's stream says nothing: the
/// backstop should a head be missed.
const BACKSTOP: Duration = Duration::from_secs(30);

/// How often a long catch-up refreshes the metrics board.
const BOARD_EVERY: Duration = Duration::from_secs(1);

/// Why a pull stopped.
#[derive(Debug, thiserror::Error)]
enum PullError {
    /// The owner could not be reached or answered with an error.
    #[error("{0}")]
    Rpc(#[from] tonic::Status),
    /// The owner's log was refused.
    #[error("refused: {0}")]
    Refused(String),
    /// Our store failed.
    #[error("store: {0}")]
    Store(#[from] tocsin_store::Error),
}

fn head_from(head: Option<pb::WatchlistHead>) -> LogHead {
    head.map(|h| LogHead {
        seq: h.seq,
        at: h.at.as_ref().and_then(from_timestamp),
    })
    .unwrap_or_default()
}

/// One page of the owner's log after `after`, as large as the owner serves.
async fn pull(
    mut client: WatchlistSyncClient<Channel>,
    after: u64,
) -> Result<pb::PullChangesResponse, PullError> {
    Ok(client
        .pull_changes(pb::PullChangesRequest {
            after_seq: after,
            limit: MAX_WATCHLIST_PAGE as u32,
        })
        .await?
        .into_inner())
}

/// Starts one puller per other owner over its channel; each ends when the
/// node stops.
pub(crate) fn spawn_pullers(
    watchlists: &Watchlists,
    peers: &[(AgencyId, Channel)],
    backoff: (Duration, Duration),
    max_message_bytes: usize,
) -> Vec<JoinHandle<()>> {
    peers
        .iter()
        .map(|(owner, channel)| {
            let client = WatchlistSyncClient::new(channel.clone())
                .max_decoding_message_size(max_message_bytes)
                .max_encoding_message_size(max_message_bytes);
            tokio::spawn(
                Puller {
                    watchlists: watchlists.clone(),
                    owner: owner.clone(),
                    client,
                    following: false,
                }
                .run(backoff),
            )
        })
        .collect()
}

struct Puller {
    watchlists: Watchlists,
    owner: AgencyId,
    client: WatchlistSyncClient<Channel>,
    /// Whether the owner answered the last FollowHead: a stream that ends
    /// after that (the owner's request timeout cuts long streams) is
    /// followed again at once, not after a grown backoff.
    following: bool,
}

impl Puller {
    async fn run(mut self, (initial, max): (Duration, Duration)) {
        let mut shutdown = self.watchlists.shutdown.clone();
        let Some(wake) = self.watchlists.wake.get(&self.owner).cloned() else {
            return;
        };
        let mut backoff = initial;
        loop {
            if *shutdown.borrow() {
                return;
            }
            self.following = false;
            let followed = self.follow().await;
            if self.following {
                backoff = initial;
            }
            match followed {
                Ok(()) => backoff = initial,
                Err(PullError::Rpc(status)) => {
                    tracing::debug!(owner = %self.owner, error = %status, "watchlist pull failed; will retry");
                }
                Err(e) => {
                    tracing::warn!(owner = %self.owner, error = %e, "watchlist sync stopped; will retry");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = wake.notified() => {}
                _ = shutdown.changed() => return,
            }
            backoff = (backoff * 2).min(max);
        }
    }

    /// Catches up, then follows the owner's head until the stream or the
    /// node ends.
    async fn follow(&mut self) -> Result<(), PullError> {
        let mut shutdown = self.watchlists.shutdown.clone();
        self.catch_up().await?;
        let mut heads = self
            .client
            .follow_head(pb::FollowHeadRequest {})
            .await?
            .into_inner();
        self.following = true;
        let mut backstop = tokio::time::interval(BACKSTOP);
        backstop.tick().await;
        loop {
            tokio::select! {
                head = heads.message() => match head? {
                    Some(head) => {
                        let head = head_from(Some(head));
                        if head.seq > self.cursor().await? {
                            self.catch_up().await?;
                        }
                    }
                    None => return Ok(()),
                },
                _ = backstop.tick() => self.catch_up().await?,
                _ = shutdown.changed() => return Ok(()),
            }
        }
    }

    /// Where to pull from: the last seq of the owner's log applied here,
    /// both to the store and to this node's index. With several front
    /// nodes on one store, another may have applied pages to the store
    /// that this node's index lacks, or this index may hold pages whose
    /// store write another node's made moot: the lower of the two, so that
    /// both catch up (a page applied again changes nothing).
    async fn cursor(&self) -> Result<u64, PullError> {
        let stored = self
            .watchlists
            .store
            .watchlist_cursor_seq(self.owner.to_string())
            .await?;
        Ok(stored.min(self.watchlists.indexed.held(self.owner.as_str())))
    }

    /// Pulls and applies pages until the cursor reaches the owner's head.
    ///
    /// The cursor is read once; after that each applied page says where
    /// it stands (the store refuses a page applied from anywhere else).
    /// While a checked page is being applied, the next one is already
    /// being pulled after its last seq: the owner's serving and our
    /// commit overlap. That next page is checked against the cursor the
    /// applied page left, as every page is, and dropped if the apply
    /// failed. Reading the cursors counts the held entries, so on a long
    /// catch-up the board is refreshed every [`BOARD_EVERY`] and at the
    /// end, not at every page.
    ///
    /// With several front nodes, a page whose store write another node
    /// made moot (the stored cursor had moved) still goes to this node's
    /// index; if the store's cursor is then left below the head (the other
    /// node applied part of it only), the catch-up runs again from there,
    /// a few times at most, so that the store does not lag until the next
    /// head or backstop.
    async fn catch_up(&mut self) -> Result<(), PullError> {
        for _ in 0..3 {
            if !self.catch_up_once().await? {
                break;
            }
        }
        Ok(())
    }

    /// One catch-up from [`Puller::cursor`]; whether the store's cursor
    /// was left below the head after a moot page.
    async fn catch_up_once(&mut self) -> Result<bool, PullError> {
        let w = self.watchlists.clone();
        let mut moot = false;
        let mut cursor = self.cursor().await?;
        let mut refreshed = tokio::time::Instant::now();
        let mut page = pull(self.client.clone(), cursor).await?;
        loop {
            let head = head_from(page.head);
            let now = w.clock.now();
            if page.changes.is_empty() {
                w.store
                    .note_watchlist_head(self.owner.to_string(), head, now)
                    .await?;
                w.refresh_board().await;
                if head.seq > cursor {
                    return Err(self
                        .refuse(format!(
                            "the owner's head is at {} but it served nothing after {cursor}",
                            head.seq
                        ))
                        .await);
                }
                return Ok(false);
            }
            let checked = match self.check(cursor, &page.changes, now) {
                Ok(checked) => checked,
                Err(reason) => return Err(self.refuse(reason).await),
            };
            let updates = checked
                .iter()
                .filter_map(|c| match &c.op {
                    HeldOp::Put { entry, .. } => Some(Update::Put {
                        entry: entry.clone(),
                        seq: c.seq,
                    }),
                    HeldOp::Remove { reference } => Some(Update::Remove {
                        owner: self.owner.to_string(),
                        reference: reference.clone(),
                    }),
                    HeldOp::Skip => None,
                })
                .collect();
            // The check made the page's seqs cursor + 1 onwards.
            let last = cursor + page.changes.len() as u64;
            // The lock covers the commit and the index update only, not the
            // pull of the next page beside them: readers of what is held wait
            // for one commit, never for the network.
            let apply = async {
                let _applying = w.applying.write().await;
                let applied = match w
                    .store
                    .apply_held_watchlist(self.owner.to_string(), cursor, checked, head, now)
                    .await
                {
                    Ok(applied) => Some(applied.seq),
                    // Another front node applied it to the store first: the
                    // page is still this node's index's to apply.
                    Err(tocsin_store::Error::Conflict(_)) => None,
                    Err(e) => return Err(e.into()),
                };
                w.screening.apply(updates).await;
                w.indexed.held_applied(self.owner.as_str(), last);
                Ok::<_, PullError>(applied)
            };
            let (applied, next): (Option<u64>, _) = if last < head.seq {
                let (applied, next) = tokio::join!(apply, pull(self.client.clone(), last));
                (applied?, Some(next))
            } else {
                (apply.await?, None)
            };
            tracing::debug!(owner = %self.owner, stored = ?applied, last, head = head.seq, "watchlist page applied");
            moot |= applied.is_none();
            // Pulled on from the page's end: the store's cursor may be
            // elsewhere when another front node applied first.
            if last >= head.seq {
                w.refresh_board().await;
                if moot {
                    let stored = w.store.watchlist_cursor_seq(self.owner.to_string()).await?;
                    return Ok(stored < head.seq);
                }
                return Ok(false);
            }
            if refreshed.elapsed() >= BOARD_EVERY {
                w.refresh_board().await;
                refreshed = tokio::time::Instant::now();
            }
            cursor = last;
            page = match next {
                Some(next) => next?,
                None => pull(self.client.clone(), cursor).await?,
            };
        }
    }

    /// Logs and records a refusal of the owner's log.
    async fn refuse(&self, reason: String) -> PullError {
        tracing::warn!(owner = %self.owner, %reason, "watchlist log refused");
        let w = &self.watchlists;
        if let Err(e) = w
            .store
            .note_watchlist_refusal(self.owner.to_string(), reason.clone())
            .await
        {
            tracing::warn!(error = %e, "cannot record a watchlist refusal");
        }
        w.refresh_board().await;
        PullError::Refused(reason)
    }

    /// Checks a whole page pulled after `cursor`, or says why it is refused.
    fn check(
        &self,
        cursor: u64,
        envelopes: &[pb::Envelope],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<HeldChange>, String> {
        let w = &self.watchlists;
        let refs: Vec<&pb::Envelope> = envelopes.iter().collect();
        let verified = w
            .verifier
            .verify_batch(&refs, WATCHLIST_CHANGE_PAYLOAD_TYPE);
        let mut out = Vec::with_capacity(envelopes.len());
        for (expected, (envelope, verified)) in (cursor + 1..).zip(envelopes.iter().zip(verified)) {
            let verified = verified.map_err(|e| format!("change {expected}: {e}"))?;
            if verified.signer != self.owner {
                return Err(format!(
                    "change {expected} is signed by {}, not by its owner {}",
                    verified.signer, self.owner
                ));
            }
            let wire = pb::WatchlistChange::decode(envelope.payload.as_slice())
                .map_err(|e| format!("change {expected} is not a watchlist change: {e}"))?;
            let change = Change::try_from(wire).map_err(|e| format!("change {expected}: {e}"))?;
            if change.owner != self.owner {
                return Err(format!(
                    "change {expected} is of {}'s list, not {}'s",
                    change.owner, self.owner
                ));
            }
            if change.seq != expected {
                return Err(format!(
                    "gap in the log: expected change {expected}, got {}",
                    change.seq
                ));
            }
            let op = match change.kind {
                ChangeKind::Put(entry) => {
                    if !entry.is_releasable_to(&w.agency) {
                        return Err(format!(
                            "change {expected} puts entry {:?}, which is not releasable to {}",
                            entry.reference, w.agency
                        ));
                    }
                    if entry.is_expired(now) {
                        HeldOp::Remove {
                            reference: entry.reference,
                        }
                    } else {
                        HeldOp::Put {
                            entry: pb::WatchlistEntry::from(entry.as_ref()).encode_to_vec(),
                            envelope: envelope.encode_to_vec(),
                            expires_at: entry.expires_at,
                            reference: entry.reference,
                        }
                    }
                }
                ChangeKind::Removed { reference, .. } => HeldOp::Remove { reference },
                ChangeKind::Stub => HeldOp::Skip,
            };
            out.push(HeldChange {
                seq: change.seq,
                authored_at: change.authored_at,
                op,
            });
        }
        Ok(out)
    }
}
