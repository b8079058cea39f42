//! Counts held per identity: sessions, requests in flight.

use std::sync::Arc;

use tocsin_core::Identity;

/// How many of something (sessions, requests in flight) each identity
/// holds at once, up to a limit; what one takes is given back when its
/// [`Held`] drops.
#[derive(Debug, Clone)]
pub struct PerIdentity {
    limit: usize,
    counts: Arc<std::sync::Mutex<std::collections::HashMap<Identity, usize>>>,
}

impl PerIdentity {
    /// At most `limit` (at least one) per identity.
    pub fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            counts: Arc::default(),
        }
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Takes one for `identity`, if it holds fewer than the limit.
    pub fn take(&self, identity: &Identity) -> Option<Held> {
        let mut map = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(identity.clone()).or_insert(0);
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(Held {
            counts: self.counts.clone(),
            identity: identity.clone(),
        })
    }
}

/// One identity's hold on a [`PerIdentity`] count.
#[derive(Debug)]
pub struct Held {
    counts: Arc<std::sync::Mutex<std::collections::HashMap<Identity, usize>>>,
    identity: Identity,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut map = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.identity) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.identity);
            }
        }
    }
}
