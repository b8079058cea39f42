//! This agency's changes to its own list: add, update, remove, and the
//! removal logged when an entry expires.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use prost::Message;
use tocsin_core::ValidationError;
use tocsin_core::watchlist::{Audience, Change, ChangeKind, Entry, RemovalReason};
use tocsin_core::{AgencyId, to_timestamp};
use tocsin_proto::{WATCHLIST_CHANGE_PAYLOAD_TYPE, pb};
use tocsin_store::{OwnChange, OwnEntry, OwnOp, SignForms, SignedForms};
use tocsin_trust::Signer;

use super::Watchlists;
use crate::Error;
use crate::screening::Update;

/// Most entries one `AddEntries` request may hold.
pub(crate) const MAX_ADD: usize = 10_000;

fn at_index(i: usize, e: ValidationError) -> Error {
    ValidationError::new(format!("entries[{i}].{}", e.field), e.problem).into()
}

/// Signs `kind` at `seq` of `owner`'s log, encoded.
fn signed(
    signer: &Signer,
    owner: &AgencyId,
    seq: u64,
    at: DateTime<Utc>,
    kind: ChangeKind,
) -> Vec<u8> {
    let change = Change {
        owner: owner.clone(),
        seq,
        authored_at: at,
        kind,
    };
    signer
        .sign(
            WATCHLIST_CHANGE_PAYLOAD_TYPE,
            pb::WatchlistChange::from(&change).encode_to_vec(),
        )
        .encode_to_vec()
}

fn agencies(list: &[String]) -> Vec<AgencyId> {
    list.iter()
        .filter_map(|a| AgencyId::new(a.as_str()).ok())
        .collect()
}

fn names(list: &[AgencyId]) -> Vec<String> {
    list.iter().map(ToString::to_string).collect()
}

/// The one way a change of this agency's list is signed: in full for its
/// audience, as a withdrawal for those no longer named, as a stub for the
/// rest. Removals are read by those the entry was releasable to.
fn sign_forms(
    signer: Arc<Signer>,
    owner: AgencyId,
    at: DateTime<Utc>,
    removal: RemovalReason,
) -> SignForms {
    Arc::new(move |seq, change: &OwnChange, before: &[String]| {
        let before = agencies(before);
        let stub = signed(&signer, &owner, seq, at, ChangeKind::Stub);
        match &change.op {
            OwnOp::Add(own) | OwnOp::Update(own) => {
                // The node encoded this entry from a validated one.
                let entry = pb::WatchlistEntry::decode(own.entry.as_slice())
                    .ok()
                    .and_then(|e| Entry::try_from(e).ok());
                let Some(entry) = entry else {
                    return SignedForms {
                        full: stub.clone(),
                        full_to: vec![],
                        withdrawal: None,
                        withdrawn_from: vec![],
                        stub,
                    };
                };
                let audience = Audience::of_put(&before, &entry);
                let withdrawal = (!audience.withdrawn.is_empty()).then(|| {
                    signed(
                        &signer,
                        &owner,
                        seq,
                        at,
                        ChangeKind::Removed {
                            reference: change.reference.clone(),
                            reason: RemovalReason::Withdrawn,
                        },
                    )
                });
                SignedForms {
                    full: signed(&signer, &owner, seq, at, ChangeKind::Put(Box::new(entry))),
                    full_to: names(&audience.full),
                    withdrawal,
                    withdrawn_from: names(&audience.withdrawn),
                    stub,
                }
            }
            OwnOp::Remove => SignedForms {
                full: signed(
                    &signer,
                    &owner,
                    seq,
                    at,
                    ChangeKind::Removed {
                        reference: change.reference.clone(),
                        reason: removal,
                    },
                ),
                full_to: names(&Audience::of_removal(&before).full),
                withdrawal: None,
                withdrawn_from: vec![],
                stub,
            },
        }
    })
}

/// The signed forms of additions and updates to `owner`'s own list made at
/// `at`, exactly as the node signs them when an operator publishes: for
/// tools that fill a node's store before it starts (the benchmarks).
pub fn own_watchlist_forms(signer: Arc<Signer>, owner: AgencyId, at: DateTime<Utc>) -> SignForms {
    sign_forms(signer, owner, at, RemovalReason::Removed)
}

impl Watchlists {
    /// Validates an operator's entry as this agency's, published at `now`.
    fn own_entry(
        &self,
        mut wire: pb::WatchlistEntry,
        now: DateTime<Utc>,
    ) -> Result<Entry, ValidationError> {
        wire.owner = self.agency.to_string();
        let entry = Entry::try_from(wire)?;
        entry.check_timely(now)?;
        if let Some(t) = entry.hit_threshold
            && t.get() < tocsin_screening::DEFAULT_THRESHOLD
        {
            // Below the default, precision falls (crates/screening/README.md).
            return Err(ValidationError::new(
                "hit_threshold",
                format!(
                    "{} is below the screening default {}: an entry may ask only for a stricter one",
                    t.get(),
                    tocsin_screening::DEFAULT_THRESHOLD
                ),
            ));
        }
        for (i, a) in entry.releasable_to.iter().enumerate() {
            if !self.federation.is_member(a) {
                return Err(ValidationError::new(
                    format!("releasable_to[{i}]"),
                    format!("{a} is not an agency of this federation"),
                ));
            }
        }
        Ok(entry)
    }

    fn record(entry: &Entry, seq: u64, at: DateTime<Utc>) -> pb::WatchlistRecord {
        pb::WatchlistRecord {
            entry: Some(pb::WatchlistEntry::from(entry)),
            seq,
            changed_at: Some(to_timestamp(at)),
        }
    }

    fn own_change(entry: &Entry, update: bool) -> OwnChange {
        let own = OwnEntry {
            entry: pb::WatchlistEntry::from(entry).encode_to_vec(),
            releasable_to: names(&entry.releasable_to),
            expires_at: entry.expires_at,
        };
        OwnChange {
            reference: entry.reference.clone(),
            op: if update {
                OwnOp::Update(own)
            } else {
                OwnOp::Add(own)
            },
        }
    }

    /// Appends changes and tells followers and the expiry loop.
    async fn append(
        &self,
        changes: Vec<OwnChange>,
        at: DateTime<Utc>,
        removal: RemovalReason,
    ) -> Result<Vec<u64>, Error> {
        let sign = sign_forms(self.signer.clone(), self.agency.clone(), at, removal);
        // What each change does to the index, once its seq is known.
        let updates: Vec<Result<Vec<u8>, String>> = changes
            .iter()
            .map(|c| match &c.op {
                OwnOp::Add(own) | OwnOp::Update(own) => Ok(own.entry.clone()),
                OwnOp::Remove => Err(c.reference.clone()),
            })
            .collect();
        let applying = self.applying.write().await;
        let seqs = self.store.append_own_watchlist(changes, at, sign).await?;
        let updates = updates
            .into_iter()
            .zip(&seqs)
            .map(|(u, &seq)| match u {
                Ok(entry) => Update::Put { entry, seq },
                Err(reference) => Update::Remove {
                    owner: self.agency.to_string(),
                    reference,
                },
            })
            .collect();
        self.screening.apply(updates).await;
        self.indexed.own_applied(&seqs);
        drop(applying);
        if let Some(&last) = seqs.last() {
            self.advance_head(tocsin_store::LogHead {
                seq: last,
                at: Some(at),
            });
            self.expiry.notify_one();
        }
        Ok(seqs)
    }

    /// Adds entries, all or none.
    pub(crate) async fn add(
        &self,
        entries: Vec<pb::WatchlistEntry>,
    ) -> Result<Vec<pb::WatchlistRecord>, Error> {
        if entries.is_empty() {
            return Err(Error::InvalidArgument(
                "invalid field `entries`: no entry to add".into(),
            ));
        }
        if entries.len() > MAX_ADD {
            return Err(Error::InvalidArgument(format!(
                "invalid field `entries`: {} entries, at most {MAX_ADD} in one request",
                entries.len()
            )));
        }
        let now = tocsin_core::clock::truncate_ms(self.clock.now());
        let mut seen = std::collections::BTreeSet::new();
        let mut checked = Vec::with_capacity(entries.len());
        for (i, wire) in entries.into_iter().enumerate() {
            let entry = self.own_entry(wire, now).map_err(|e| at_index(i, e))?;
            if !seen.insert(entry.reference.clone()) {
                return Err(at_index(
                    i,
                    ValidationError::new("ref", format!("{:?} is given twice", entry.reference)),
                ));
            }
            checked.push(entry);
        }
        let changes = checked.iter().map(|e| Self::own_change(e, false)).collect();
        let seqs = self.append(changes, now, RemovalReason::Removed).await?;
        Ok(checked
            .iter()
            .zip(seqs)
            .map(|(e, seq)| Self::record(e, seq, now))
            .collect())
    }

    /// Replaces an entry of this agency.
    pub(crate) async fn update(
        &self,
        wire: pb::WatchlistEntry,
    ) -> Result<pb::WatchlistRecord, Error> {
        let now = tocsin_core::clock::truncate_ms(self.clock.now());
        let entry = self.own_entry(wire, now)?;
        let seqs = self
            .append(
                vec![Self::own_change(&entry, true)],
                now,
                RemovalReason::Removed,
            )
            .await?;
        Ok(Self::record(&entry, seqs[0], now))
    }

    /// Removes an entry of this agency.
    pub(crate) async fn remove(&self, reference: String) -> Result<u64, Error> {
        if reference.trim().is_empty() {
            return Err(Error::InvalidArgument(
                "invalid field `ref`: must not be empty".into(),
            ));
        }
        let now = tocsin_core::clock::truncate_ms(self.clock.now());
        let change = OwnChange {
            reference,
            op: OwnOp::Remove,
        };
        let seqs = self
            .append(vec![change], now, RemovalReason::Removed)
            .await?;
        Ok(seqs[0])
    }

    /// Logs the removal of every entry of this agency that has expired,
    /// then sleeps until the next expiry (or a publication) by the node's
    /// clock, until the node stops.
    pub(crate) async fn run_expiry(self) {
        let mut shutdown = self.shutdown.clone();
        loop {
            let published = self.expiry.notified();
            tokio::pin!(published);
            published.as_mut().enable();
            let now = tocsin_core::clock::truncate_ms(self.clock.now());
            let next = match self.store.own_watchlist_expiries(now).await {
                Ok((expired, next)) => {
                    if !expired.is_empty() {
                        let changes = expired
                            .into_iter()
                            .map(|reference| OwnChange {
                                reference,
                                op: OwnOp::Remove,
                            })
                            .collect();
                        match self.append(changes, now, RemovalReason::Expired).await {
                            Ok(seqs) => {
                                tracing::info!(
                                    entries = seqs.len(),
                                    "expired watchlist entries removed"
                                );
                                continue;
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "cannot log expired watchlist entries");
                                Some(now + chrono::Duration::seconds(5))
                            }
                        }
                    } else {
                        next
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read watchlist expiries");
                    Some(now + chrono::Duration::seconds(5))
                }
            };
            let sleep = match next {
                Some(t) => self.clock.sleep_until(t),
                None => Box::pin(std::future::pending()),
            };
            tokio::select! {
                _ = sleep => {}
                _ = &mut published => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
