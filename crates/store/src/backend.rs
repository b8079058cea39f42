//! The one trait a store backend implements.
//!
//! Each kind of row has a trait of its own, declared beside its types
//! ([`RecordStore`] in `records`, [`WatchlistStore`] in `watchlist`, ...),
//! so that a backend implements one kind per module; [`Backend`] is all of
//! them, plus what the handle needs. The node holds a [`crate::Store`],
//! which derefs to `dyn Backend`: nothing above the store knows which
//! backend it has.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{
    AckStore, BlockStore, EventStore, HitStore, LadderStore, LeaseStore, MessageStore, OpenStore,
    RecordStore, SubjectStore, WatchlistStore,
};

/// Everything a node asks of its store, in typed methods.
#[async_trait]
pub trait Backend:
    RecordStore
    + AckStore
    + MessageStore
    + LadderStore
    + LeaseStore
    + EventStore
    + OpenStore
    + SubjectStore
    + BlockStore
    + HitStore
    + WatchlistStore
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    /// Notified (`notify_waiters`) after every commit that added events.
    /// Register with `Notified::enable` before reading, then wait.
    fn event_signal(&self) -> Arc<tokio::sync::Notify>;

    /// Stops accepting writes, lets queued ones commit, and waits for them.
    /// Later writes fail with [`crate::Error::Closed`].
    async fn close(&self);
}
