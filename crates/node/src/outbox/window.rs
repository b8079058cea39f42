//! A worker's sliding window of deliveries in flight.
//!
//! Up to `batch` deliveries are in flight at once; as each group of
//! answers comes back it is recorded and the window is topped up from the
//! store, so the link never waits for the slowest delivery of a batch.
//! While the peer looks down, the window is one: the worker probes with a
//! single delivery until the peer answers again.

use std::collections::HashSet;

use tocsin_store::DueDelivery;

use super::REQUESTS_AT_ONCE;

/// The alerts in flight to one peer, and how many may be.
#[derive(Debug, Default)]
pub(super) struct Window {
    /// `batch`, at least one.
    batch: usize,
    /// Sent, not yet recorded: still due in the store.
    in_flight: HashSet<String>,
}

impl Window {
    /// An empty window of up to `batch` deliveries.
    pub(super) fn new(batch: u32) -> Self {
        Self {
            batch: (batch as usize).max(1),
            in_flight: HashSet::new(),
        }
    }

    /// How many may be in flight now: `batch`, or one while the peer looks
    /// down (`backing_off`).
    pub(super) fn size(&self, backing_off: bool) -> usize {
        if backing_off { 1 } else { self.batch }
    }

    /// Whether another delivery may go, of a window of `size`, with
    /// `requests` requests in flight.
    pub(super) fn has_room(&self, size: usize, requests: usize) -> bool {
        self.in_flight.len() < size && requests < REQUESTS_AT_ONCE
    }

    /// How many due deliveries to ask the store for: rows in flight are
    /// still due there, so enough to fill the window past them.
    pub(super) fn to_read(&self, size: usize) -> u32 {
        u32::try_from(size + self.in_flight.len()).unwrap_or(u32::MAX)
    }

    /// Of what the store says is due, what is not in flight, as much as
    /// fits in a window of `size`.
    pub(super) fn fresh(&self, due: Vec<DueDelivery>, size: usize) -> Vec<DueDelivery> {
        due.into_iter()
            .filter(|d| !self.in_flight.contains(&d.alert_id))
            .take(size.saturating_sub(self.in_flight.len()))
            .collect()
    }

    /// These are in flight now.
    pub(super) fn send(&mut self, request: &[DueDelivery]) {
        self.in_flight
            .extend(request.iter().map(|d| d.alert_id.clone()));
    }

    /// These are recorded: out of the window.
    pub(super) fn done(&mut self, ids: impl IntoIterator<Item = String>) {
        for id in ids {
            self.in_flight.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due(ids: &[&str]) -> Vec<DueDelivery> {
        ids.iter()
            .map(|id| DueDelivery {
                alert_id: (*id).into(),
                envelope: Vec::new(),
                attempts: 0,
            })
            .collect()
    }

    fn ids(d: &[DueDelivery]) -> Vec<&str> {
        d.iter().map(|d| d.alert_id.as_str()).collect()
    }

    #[test]
    fn the_window_fills_to_its_size_and_grows_back_as_answers_come() {
        let mut w = Window::new(3);
        let size = w.size(false);
        assert_eq!(size, 3);
        assert!(w.has_room(size, 0));
        assert_eq!(w.to_read(size), 3);
        let first = w.fresh(due(&["a", "b", "c", "d"]), size);
        assert_eq!(ids(&first), ["a", "b", "c"]);
        w.send(&first);
        assert!(!w.has_room(size, 1), "full");
        // The store still says a, b, c are due: ask past them.
        assert_eq!(w.to_read(size), 6);
        assert!(w.fresh(due(&["a", "b", "c", "d"]), size).is_empty());
        // One answer recorded makes room for one more, and only one.
        w.done(["b".to_owned()]);
        assert!(w.has_room(size, 1));
        let more = w.fresh(due(&["a", "c", "d", "e"]), size);
        assert_eq!(ids(&more), ["d"]);
    }

    #[test]
    fn while_the_peer_looks_down_it_probes_one_at_a_time() {
        let mut w = Window::new(128);
        assert_eq!(w.size(false), 128);
        let size = w.size(true);
        assert_eq!(size, 1);
        let probe = w.fresh(due(&["a", "b"]), size);
        assert_eq!(ids(&probe), ["a"]);
        w.send(&probe);
        assert!(!w.has_room(size, 1));
        assert!(w.fresh(due(&["a", "b"]), size).is_empty());
        // Back up: the whole window again.
        w.done(["a".to_owned()]);
        assert_eq!(ids(&w.fresh(due(&["b", "c"]), w.size(false))), ["b", "c"]);
    }

    #[test]
    fn requests_in_flight_are_capped_and_a_batch_of_zero_is_one() {
        let w = Window::new(0);
        assert_eq!(w.size(false), 1);
        let w = Window::new(1000);
        assert!(w.has_room(1000, REQUESTS_AT_ONCE - 1));
        assert!(!w.has_room(1000, REQUESTS_AT_ONCE));
    }
}
