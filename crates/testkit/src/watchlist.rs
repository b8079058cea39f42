//! Watchlists as a test writes them: [`WatchEntry`] builds an entry, and
//! the [`Desk`] publishes, updates and removes its agency's entries, lists
//! what its node holds, and waits until an entry of another owner arrives,
//! changes or goes.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> anyhow::Result<()> {
//! use tocsin_testkit::{TestFederation, WatchEntry};
//!
//! let fed = TestFederation::builder().agencies(["TR-MIT", "FR-DGSI"]).start().await?;
//! let (tr, fr) = (fed.desk("TR-MIT").await?, fed.desk("FR-DGSI").await?);
//! tr.publish(WatchEntry::person("W-1", "Ana Ruiz").to(["FR-DGSI"])).await?;
//! let held = fr.wait_held("TR-MIT", "W-1").await?;
//! assert_eq!(held.entry.unwrap().reason, "wanted for questioning");
//! # Ok(()) }
//! ```
//!
//! The waits poll the node's operator API (`ListEntries`, `SyncStatus`)
//! until the condition holds or the desk's patience runs out, and say
//! what is there on a timeout.

use anyhow::Context;
use tocsin_proto::pb;
use tocsin_proto::pb::watchlist_desk_client::WatchlistDeskClient;
use tonic::transport::Channel;

use crate::flow::{Desk, Probe, wait_for};

/// A watchlist entry under construction: a person or an identifier,
/// DISCREET_CHECK, ROUTINE, AMBER, releasable to nobody until
/// [`to`](Self::to) names agencies.
#[derive(Debug, Clone)]
pub struct WatchEntry(pb::WatchlistEntry);

impl WatchEntry {
    fn with_subject(reference: &str, subject: pb::subject::Kind) -> Self {
        WatchEntry(pb::WatchlistEntry {
            owner: String::new(),
            r#ref: reference.to_owned(),
            subject: Some(pb::Subject {
                kind: Some(subject),
            }),
            reason: "wanted for questioning".into(),
            action: pb::WatchlistAction::DiscreetCheck as i32,
            hit_precedence: pb::Precedence::Routine as i32,
            tlp: pb::Tlp::Amber as i32,
            releasable_to: vec![],
            review_at: None,
            expires_at: None,
            hit_threshold: 0.0,
        })
    }

    /// An entry about a person named `name`.
    pub fn person(reference: &str, name: &str) -> Self {
        Self::with_subject(
            reference,
            pb::subject::Kind::Person(pb::Person {
                names: vec![name.to_owned()],
                ..Default::default()
            }),
        )
    }

    /// An entry about this person (names, aliases, date of birth,
    /// nationalities, documents).
    pub fn of(reference: &str, person: crate::alerts::Person) -> Self {
        Self::with_subject(reference, pb::subject::Kind::Person(person.into()))
    }

    /// An entry about an identifier (`phone`, `+33 6 12 34 56 78`).
    pub fn identifier(reference: &str, kind: &str, value: &str) -> Self {
        Self::with_subject(
            reference,
            pb::subject::Kind::Identifier(pb::Identifier {
                kind: kind.to_owned(),
                value: value.to_owned(),
            }),
        )
    }

    /// Releasable to these agencies (replacing any named before).
    #[must_use]
    pub fn to<I, S>(mut self, agencies: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.0.releasable_to = agencies.into_iter().map(Into::into).collect();
        self
    }

    /// With this reason.
    #[must_use]
    pub fn reason(mut self, reason: &str) -> Self {
        self.0.reason = reason.to_owned();
        self
    }

    /// With this action on a hit.
    #[must_use]
    pub fn action(mut self, action: pb::WatchlistAction) -> Self {
        self.0.action = action as i32;
        self
    }

    /// Asking for this hit threshold (stricter than the default).
    #[must_use]
    pub fn hit_threshold(mut self, score: f32) -> Self {
        self.0.hit_threshold = score;
        self
    }

    /// Asking for hit reports of this precedence.
    #[must_use]
    pub fn hit_precedence(mut self, precedence: pb::Precedence) -> Self {
        self.0.hit_precedence = precedence as i32;
        self
    }

    /// Expiring at `at`.
    #[must_use]
    pub fn expires(mut self, at: chrono::DateTime<chrono::Utc>) -> Self {
        self.0.expires_at = Some(tocsin_core::to_timestamp(at));
        self
    }

    /// The wire entry, to change what the builder does not cover.
    pub fn wire(&mut self) -> &mut pb::WatchlistEntry {
        &mut self.0
    }
}

impl From<WatchEntry> for pb::WatchlistEntry {
    fn from(e: WatchEntry) -> Self {
        e.0
    }
}

fn describe(records: &[pb::WatchlistRecord]) -> String {
    if records.is_empty() {
        return "it holds none".into();
    }
    let refs: Vec<String> = records
        .iter()
        .filter_map(|r| r.entry.as_ref())
        .map(|e| format!("{}/{}", e.owner, e.r#ref))
        .collect();
    format!("it holds {}", refs.join(", "))
}

impl Desk {
    /// The watchlist client on this desk's node.
    pub fn watchlist(&self) -> anyhow::Result<WatchlistDeskClient<Channel>> {
        self.watchlist
            .clone()
            .context("this desk has no watchlist client (see Desk::with_watchlist)")
    }

    fn wl(&self) -> Result<WatchlistDeskClient<Channel>, tonic::Status> {
        self.watchlist
            .clone()
            .ok_or_else(|| tonic::Status::failed_precondition("this desk has no watchlist client"))
    }

    /// Publishes one entry of this agency; returns it as stored, or the
    /// node's refusal.
    pub async fn publish(
        &self,
        entry: impl Into<pb::WatchlistEntry>,
    ) -> Result<pb::WatchlistRecord, tonic::Status> {
        let mut stored = self.publish_all(vec![entry.into()]).await?;
        stored
            .pop()
            .ok_or_else(|| tonic::Status::internal("AddEntries answered with no entry"))
    }

    /// Publishes entries of this agency, all or none.
    pub async fn publish_all(
        &self,
        entries: Vec<pb::WatchlistEntry>,
    ) -> Result<Vec<pb::WatchlistRecord>, tonic::Status> {
        Ok(self
            .wl()?
            .add_entries(pb::AddEntriesRequest { entries })
            .await?
            .into_inner()
            .entries)
    }

    /// Replaces an entry of this agency (found by its ref).
    pub async fn update_entry(
        &self,
        entry: impl Into<pb::WatchlistEntry>,
    ) -> Result<pb::WatchlistRecord, tonic::Status> {
        self.wl()?
            .update_entry(pb::UpdateEntryRequest {
                entry: Some(entry.into()),
            })
            .await?
            .into_inner()
            .entry
            .ok_or_else(|| tonic::Status::internal("UpdateEntry answered with no entry"))
    }

    /// Removes an entry of this agency; returns the removal's seq.
    pub async fn remove_entry(&self, reference: &str) -> Result<u64, tonic::Status> {
        Ok(self
            .wl()?
            .remove_entry(pb::RemoveEntryRequest {
                r#ref: reference.to_owned(),
            })
            .await?
            .into_inner()
            .seq)
    }

    /// Every entry this node holds, its agency's and others', by owner and
    /// ref.
    pub async fn entries(&self) -> Result<Vec<pb::WatchlistRecord>, tonic::Status> {
        self.held("").await
    }

    /// The entries this node holds of `owner` (every owner's when empty).
    pub async fn held(&self, owner: &str) -> Result<Vec<pb::WatchlistRecord>, tonic::Status> {
        Ok(self
            .wl()?
            .list_entries(pb::ListEntriesRequest {
                owner: owner.to_owned(),
            })
            .await?
            .into_inner()
            .entries)
    }

    /// How far behind each other owner this node is.
    pub async fn sync_status(&self) -> Result<Vec<pb::OwnerSyncStatus>, tonic::Status> {
        Ok(self
            .wl()?
            .sync_status(pb::SyncStatusRequest {})
            .await?
            .into_inner()
            .owners)
    }

    /// How far behind `owner` this node is.
    pub async fn sync_of(&self, owner: &str) -> anyhow::Result<pb::OwnerSyncStatus> {
        self.sync_status()
            .await?
            .into_iter()
            .find(|s| s.owner == owner)
            .with_context(|| format!("{owner} is not a peer of {}", self.agency()))
    }

    /// Waits until this node holds `owner`'s entry `reference`.
    pub async fn wait_held(
        &self,
        owner: &str,
        reference: &str,
    ) -> anyhow::Result<pb::WatchlistRecord> {
        self.wait_held_where(owner, reference, "to hold it", |_| true)
            .await
    }

    /// Waits until this node holds `owner`'s entry `reference` and `check`
    /// holds of it (`what` says what is awaited, for the timeout).
    pub async fn wait_held_where<F>(
        &self,
        owner: &str,
        reference: &str,
        what: &str,
        check: F,
    ) -> anyhow::Result<pb::WatchlistRecord>
    where
        F: Fn(&pb::WatchlistRecord) -> bool,
    {
        let expected = format!(
            "{}'s node, with {owner}'s watchlist entry {reference}, {what}",
            self.agency()
        );
        let check = &check;
        wait_for(self.patience, &expected, || async move {
            match self.held(owner).await {
                Err(s) => Probe::NotYet(format!("listing failed: {s}")),
                Ok(records) => {
                    let found = records.iter().find(|r| {
                        r.entry
                            .as_ref()
                            .is_some_and(|e| e.r#ref == reference && e.owner == owner)
                    });
                    match found {
                        Some(r) if check(r) => Probe::Done(r.clone()),
                        Some(r) => Probe::NotYet(format!("it holds {r:?}")),
                        None => Probe::NotYet(describe(&records)),
                    }
                }
            }
        })
        .await
    }

    /// Waits until this node no longer holds `owner`'s entry `reference`.
    pub async fn wait_not_held(&self, owner: &str, reference: &str) -> anyhow::Result<()> {
        let expected = format!(
            "{}'s node to drop {owner}'s watchlist entry {reference}",
            self.agency()
        );
        wait_for(self.patience, &expected, || async move {
            match self.held(owner).await {
                Err(s) => Probe::NotYet(format!("listing failed: {s}")),
                Ok(records) => {
                    if records.iter().any(|r| {
                        r.entry
                            .as_ref()
                            .is_some_and(|e| e.r#ref == reference && e.owner == owner)
                    }) {
                        Probe::NotYet(describe(&records))
                    } else {
                        Probe::Done(())
                    }
                }
            }
        })
        .await
    }

    /// Waits until this node has applied `owner`'s log up to `seq`.
    pub async fn wait_synced(&self, owner: &str, seq: u64) -> anyhow::Result<pb::OwnerSyncStatus> {
        self.wait_sync_where(owner, &format!("to reach change {seq}"), |s| {
            s.cursor >= seq
        })
        .await
    }

    /// Waits until this node has refused `owner`'s log.
    pub async fn wait_refused(&self, owner: &str) -> anyhow::Result<pb::OwnerSyncStatus> {
        self.wait_sync_where(owner, "to refuse it", |s| !s.last_refusal.is_empty())
            .await
    }

    /// Waits until `check` holds of this node's sync status for `owner`.
    pub async fn wait_sync_where<F>(
        &self,
        owner: &str,
        what: &str,
        check: F,
    ) -> anyhow::Result<pb::OwnerSyncStatus>
    where
        F: Fn(&pb::OwnerSyncStatus) -> bool,
    {
        let expected = format!("{}'s copy of {owner}'s watchlist {what}", self.agency());
        let check = &check;
        wait_for(self.patience, &expected, || async move {
            match self.sync_of(owner).await {
                Err(e) => Probe::NotYet(format!("sync status failed: {e}")),
                Ok(s) if check(&s) => Probe::Done(s),
                Ok(s) => Probe::NotYet(format!(
                    "its cursor is {} of {}, last refusal {:?}",
                    s.cursor, s.head, s.last_refusal
                )),
            }
        })
        .await
    }
}
