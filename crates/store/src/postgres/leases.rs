//! [`crate::LeaseStore`] on PostgreSQL: the `leases` table (migration
//! 002), and the fence each of the tracker's writes checks inside its
//! transaction (see `crate::leases` for why a lease row and not an
//! advisory lock).
//!
//! A handle remembers, per lease, what its last `hold_lease` answered. A
//! handle that never asked writes unfenced (a single node, the tests of
//! each kind); one that holds the lease checks, in the write's own
//! transaction, that the row still names it at that epoch; one that was
//! told another node holds it is refused without a query. All writes are
//! serialised (`db.rs`), `hold_lease` too, so the check sees the last
//! take-over that committed before it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

use super::db::{Postgres, Tx};
use crate::error::Error;
use crate::leases::{HeldLease, LeaseStore, TRACKER_LEASE};
use crate::millis::{from_ms, ms};

/// What a handle's last `hold_lease` answered, per lease: the epoch it
/// holds, or `None` when another front node held it.
pub(crate) type Fences = Arc<Mutex<HashMap<String, Option<i64>>>>;

/// A write's fence: checked inside its transaction by [`Fence::check`].
pub(crate) struct Fence {
    name: &'static str,
    holder: String,
    /// `None`: never asked, unfenced; `Some(None)`: lost.
    held: Option<Option<i64>>,
}

impl Fence {
    /// Refuses the write ([`Error::LeaseLost`]) unless this handle still
    /// holds the lease at the epoch it took it with.
    pub(crate) async fn check(&self, tx: &Tx) -> Result<(), Error> {
        let epoch = match self.held {
            None => return Ok(()),
            Some(None) => return Err(Error::LeaseLost { name: self.name }),
            Some(Some(epoch)) => epoch,
        };
        let still = tx
            .client()
            .query_opt(
                "SELECT 1 FROM leases WHERE name = $1 AND holder = $2 AND epoch = $3",
                &[&self.name, &self.holder, &epoch],
            )
            .await?;
        match still {
            Some(_) => Ok(()),
            None => Err(Error::LeaseLost { name: self.name }),
        }
    }
}

impl Postgres {
    /// The fence of the tracker's writes, as this handle's last
    /// `hold_lease` left it.
    pub(crate) fn tracker_fence(&self) -> Fence {
        let held = self
            .fences()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(TRACKER_LEASE)
            .copied();
        Fence {
            name: TRACKER_LEASE,
            holder: self.holder().to_owned(),
            held,
        }
    }
}

#[async_trait]
impl LeaseStore for Postgres {
    async fn hold_lease(
        &self,
        name: &str,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Result<Option<HeldLease>, Error> {
        let key = name.to_owned();
        let holder = self.holder().to_owned();
        let until = ms(now
            .checked_add_signed(ttl)
            .unwrap_or(DateTime::<Utc>::MAX_UTC));
        let held = self
            .write(move |tx| {
                Box::pin(async move {
                    // Free: ours at epoch 1. Ours: renewed, same epoch.
                    // Another's, lapsed: ours at its epoch + 1. Another's,
                    // live: untouched, no row returned.
                    let row = tx
                        .client()
                        .query_opt(
                            "INSERT INTO leases (name, holder, epoch, expires_at) VALUES ($1, $2, 1, $4)
                             ON CONFLICT (name) DO UPDATE SET
                                 holder = EXCLUDED.holder,
                                 epoch = CASE WHEN leases.holder = EXCLUDED.holder
                                              THEN leases.epoch ELSE leases.epoch + 1 END,
                                 expires_at = EXCLUDED.expires_at
                              WHERE leases.holder = EXCLUDED.holder OR leases.expires_at <= $3
                             RETURNING epoch, expires_at",
                            &[&key, &holder, &ms(now), &until],
                        )
                        .await?;
                    row.map(|r| Ok::<_, Error>((r.try_get::<_, i64>(0)?, r.try_get::<_, i64>(1)?)))
                        .transpose()
                })
            })
            .await?;
        self.fences()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_owned(), held.map(|(epoch, _)| epoch));
        Ok(held.map(|(epoch, expires_at)| HeldLease {
            epoch: u64::try_from(epoch).unwrap_or(0),
            expires_at: Some(from_ms(expires_at)),
        }))
    }
}
