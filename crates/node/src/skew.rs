//! How far each peer's clock is from ours.
//!
//! Deadlines never depend on it: both ends compute a deadline from the
//! originator's signed alert time, and each flags it on its own clock. But
//! when two clocks disagree, each side sees the other's answers, flags and
//! receipts early or late by the difference, so an operator must know.
//!
//! Every answer a node gives carries its clock reading in the
//! [`TIME_HEADER`] response header (see [`stamp`]). Whenever this node calls
//! a peer (a delivery, an acknowledgement, a reminder, a notice, the health
//! check that greets and probes it), it reads its own clock before the call
//! and after the answer, and takes the peer's reading to have been made
//! halfway between: the skew is the peer's reading minus that midpoint, and
//! the true skew is within half the round trip of it. A peer is beyond
//! tolerance only when that is certain (the skew less the uncertainty
//! exceeds the tolerance) and back within it only when that is certain too,
//! so a slow round trip (or a scenario clock that turns a millisecond into
//! minutes) cannot make the verdict flap.
//!
//! Times the peer signed are not used: an alert's creation time or an
//! acknowledgement's time can be days old when it was queued, and a
//! receipt for a delivery retried after a lost answer is the stored one.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use tocsin_core::{AgencyId, Clock};
use tocsin_proto::TIME_HEADER;
use tokio::sync::{Notify, watch};
use tonic::metadata::MetadataMap;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// While a peer stays beyond tolerance, its warning is repeated at most this
/// often.
const WARN_EVERY: Duration = Duration::from_secs(600);

/// The last measurement of one peer's clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PeerSkew {
    /// The peer's clock minus ours (negative: the peer is behind).
    pub(crate) skew: chrono::Duration,
    /// The true skew lies within this of `skew`: half the round trip.
    pub(crate) uncertainty: chrono::Duration,
    /// Whether the peer's clock is beyond tolerance, as last shown for
    /// certain.
    pub(crate) exceeded: bool,
    /// When the measurement was made (real time).
    pub(crate) measured_at: SystemTime,
}

#[derive(Debug)]
struct Entry {
    last: PeerSkew,
    measured: Instant,
    warned: Option<Instant>,
}

/// What a measurement changed, and was logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Notice {
    /// The peer is beyond tolerance (first seen, or a reminder).
    Beyond,
    /// The peer, beyond tolerance before, is back within it.
    Back,
}

/// Per-peer clock skew, shared by the outbox, the prober and the metrics
/// endpoint; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct SkewMonitor {
    tolerance: chrono::Duration,
    peers: Arc<Mutex<BTreeMap<AgencyId, Entry>>>,
    /// Asks the prober for a pass now.
    probe_now: Arc<Notify>,
}

impl SkewMonitor {
    /// A monitor that flags peers more than `tolerance` away.
    pub(crate) fn new(tolerance: Duration) -> Self {
        Self {
            tolerance: chrono::Duration::from_std(tolerance).unwrap_or(chrono::Duration::MAX),
            peers: Arc::default(),
            probe_now: Arc::default(),
        }
    }

    /// `peer` opened a session with us, so it is up: if its clock is not
    /// measured (it was down when we greeted it) or not lately, probe it
    /// now rather than at the next round.
    pub(crate) fn peer_up(&self, peer: &AgencyId) {
        if self.stale(peer, PROBE_EVERY) {
            self.probe_now.notify_one();
        }
    }

    /// The tolerance.
    pub(crate) fn tolerance(&self) -> chrono::Duration {
        self.tolerance
    }

    /// Records a call to `peer` made at `sent` and answered at `answered`
    /// (both on our clock), whose answer carried `metadata`. Answers
    /// without a readable clock header (from an older node, or a failure
    /// before the peer answered) are ignored.
    pub(crate) fn observe_answer(
        &self,
        peer: &AgencyId,
        sent: DateTime<Utc>,
        answered: DateTime<Utc>,
        metadata: &MetadataMap,
    ) {
        if let Some(peer_time) = peer_time(metadata) {
            self.observe(peer, sent, answered, peer_time);
        }
    }

    /// Records that `peer`'s clock read `peer_time` during a call made at
    /// `sent` and answered at `answered` on our clock.
    pub(crate) fn observe(
        &self,
        peer: &AgencyId,
        sent: DateTime<Utc>,
        answered: DateTime<Utc>,
        peer_time: DateTime<Utc>,
    ) -> Option<Notice> {
        self.observe_at(
            peer,
            sent,
            answered,
            peer_time,
            Instant::now(),
            SystemTime::now(),
        )
    }

    fn observe_at(
        &self,
        peer: &AgencyId,
        sent: DateTime<Utc>,
        answered: DateTime<Utc>,
        peer_time: DateTime<Utc>,
        now: Instant,
        wall: SystemTime,
    ) -> Option<Notice> {
        // If our own clock was set back during the call, the span is still
        // the honest bound on when the peer read its clock.
        let (early, late) = if sent <= answered {
            (sent, answered)
        } else {
            (answered, sent)
        };
        let uncertainty = (late - early) / 2;
        let skew = peer_time - (early + uncertainty);
        let off = skew.abs();
        let verdict = if off - uncertainty > self.tolerance {
            Some(true)
        } else if off + uncertainty <= self.tolerance {
            Some(false)
        } else {
            None
        };
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        let entry = peers.entry(peer.clone()).or_insert_with(|| Entry {
            last: PeerSkew {
                skew,
                uncertainty,
                exceeded: false,
                measured_at: wall,
            },
            measured: now,
            warned: None,
        });
        let was = entry.last.exceeded;
        let exceeded = verdict.unwrap_or(was);
        entry.last = PeerSkew {
            skew,
            uncertainty,
            exceeded,
            measured_at: wall,
        };
        entry.measured = now;
        let notice = match (was, exceeded) {
            (_, true)
                if entry
                    .warned
                    .is_none_or(|w| now.duration_since(w) >= WARN_EVERY) =>
            {
                entry.warned = Some(now);
                Some(Notice::Beyond)
            }
            (true, false) => {
                entry.warned = None;
                Some(Notice::Back)
            }
            _ => None,
        };
        drop(peers);
        let skew_ms = skew.num_milliseconds();
        let uncertainty_ms = uncertainty.num_milliseconds();
        match notice {
            Some(Notice::Beyond) => tracing::warn!(
                %peer,
                skew_ms,
                uncertainty_ms,
                tolerance_ms = self.tolerance.num_milliseconds(),
                "peer clock is {} {} ours, beyond tolerance: deadlines hold (both ends take them from the signed alert time), but each side sees the other's receipts, answers and flags off by that much",
                humantime::format_duration(Duration::from_millis(off.num_milliseconds().unsigned_abs())),
                if skew > chrono::Duration::zero() { "ahead of" } else { "behind" },
            ),
            Some(Notice::Back) => tracing::info!(
                %peer,
                skew_ms,
                uncertainty_ms,
                "peer clock is back within tolerance"
            ),
            None => tracing::trace!(%peer, skew_ms, uncertainty_ms, "peer clock measured"),
        }
        notice
    }

    /// Whether `peer` was last measured longer than `age` ago, or never.
    pub(crate) fn stale(&self, peer: &AgencyId, age: Duration) -> bool {
        self.peers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(peer)
            .is_none_or(|e| e.measured.elapsed() >= age)
    }

    /// The last measurement of every peer measured so far, by agency.
    pub(crate) fn snapshot(&self) -> Vec<(AgencyId, PeerSkew)> {
        self.peers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(peer, e)| (peer.clone(), e.last))
            .collect()
    }
}

/// A peer nothing has measured for this long (no delivery, no message) is
/// probed with a health check.
pub(crate) const PROBE_EVERY: Duration = Duration::from_secs(60);

/// Greets every peer at once with a health check, measuring its clock,
/// then, every [`PROBE_EVERY`] or when an unmeasured peer turns out to be up
/// ([`SkewMonitor::peer_up`]), probes the peers nothing measured meanwhile
/// (the outbox measures the others as it goes). Stops when `shutdown`
/// turns true.
pub(crate) async fn probe(
    peers: Vec<(AgencyId, Channel)>,
    clock: Arc<dyn Clock>,
    skew: SkewMonitor,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let checks = peers
            .iter()
            .filter(|(peer, _)| skew.stale(peer, PROBE_EVERY))
            .map(|(peer, channel)| {
                let (clock, skew) = (clock.clone(), skew.clone());
                let mut health = HealthClient::new(channel.clone());
                async move {
                    let sent = clock.now();
                    let answer = health
                        .check(HealthCheckRequest {
                            service: String::new(),
                        })
                        .await;
                    let answered = clock.now();
                    match answer {
                        Ok(response) => {
                            skew.observe_answer(peer, sent, answered, response.metadata())
                        }
                        Err(status) => {
                            skew.observe_answer(peer, sent, answered, status.metadata());
                            tracing::debug!(%peer, %status, "peer did not answer a health check");
                        }
                    }
                }
            });
        let checks = futures::future::join_all(checks);
        tokio::select! {
            _ = checks => {}
            _ = shutdown.changed() => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(PROBE_EVERY) => {}
            _ = skew.probe_now.notified() => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// The clock reading in an answer's [`TIME_HEADER`], if it has a valid one.
pub(crate) fn peer_time(metadata: &MetadataMap) -> Option<DateTime<Utc>> {
    let ms: i64 = metadata
        .get(TIME_HEADER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    DateTime::from_timestamp_millis(ms)
}

/// Puts our clock reading `now` into an answer's headers.
pub(crate) fn stamp<B>(response: &mut http::Response<B>, now: DateTime<Utc>) {
    if let Ok(value) = http::HeaderValue::from_str(&now.timestamp_millis().to_string()) {
        response.headers_mut().insert(TIME_HEADER, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn fr() -> AgencyId {
        AgencyId::new("FR-DGSI").unwrap()
    }

    #[test]
    fn the_skew_is_taken_at_the_midpoint_of_the_round_trip() {
        let m = SkewMonitor::new(Duration::from_secs(120));
        // Sent at 10:00:00, answered at 10:00:02: the peer read its clock
        // at 10:00:01 of ours, give or take a second.
        m.observe(
            &fr(),
            at("2026-01-01T10:00:00Z"),
            at("2026-01-01T10:00:02Z"),
            at("2026-01-01T09:50:01Z"),
        );
        let (peer, s) = m.snapshot().remove(0);
        assert_eq!(peer, fr());
        assert_eq!(s.skew, -chrono::Duration::minutes(10));
        assert_eq!(s.uncertainty, chrono::Duration::seconds(1));
        assert!(s.exceeded);
    }

    #[test]
    fn only_a_certain_verdict_changes_the_flag() {
        let m = SkewMonitor::new(Duration::from_secs(120));
        let t0 = at("2026-01-01T10:00:00Z");
        let later = |s| t0 + chrono::Duration::seconds(s);
        // 100 s ahead, give or take 30 s: could be 130 s, could be 70 s.
        assert_eq!(m.observe(&fr(), t0, later(60), later(130)), None);
        assert!(!m.snapshot()[0].1.exceeded);
        // 150 s ahead give or take 10: certainly beyond.
        assert_eq!(
            m.observe(&fr(), t0, later(20), later(160)),
            Some(Notice::Beyond)
        );
        // 100 s give or take 30 again: not certain, so still flagged.
        assert_eq!(m.observe(&fr(), t0, later(60), later(130)), None);
        assert!(m.snapshot()[0].1.exceeded);
        assert_eq!(m.snapshot()[0].1.skew, chrono::Duration::seconds(100));
        // Exactly at tolerance is within it.
        assert_eq!(m.observe(&fr(), t0, t0, later(120)), Some(Notice::Back));
        assert!(!m.snapshot()[0].1.exceeded);
    }

    #[test]
    fn a_peer_beyond_tolerance_is_warned_about_once_per_period() {
        let m = SkewMonitor::new(Duration::from_secs(120));
        let t0 = at("2026-01-01T10:00:00Z");
        let behind = t0 - chrono::Duration::minutes(10);
        let start = Instant::now();
        let wall = SystemTime::now();
        let obs = |after: Duration| m.observe_at(&fr(), t0, t0, behind, start + after, wall);
        assert_eq!(obs(Duration::ZERO), Some(Notice::Beyond));
        assert_eq!(obs(Duration::from_secs(1)), None);
        assert_eq!(obs(WARN_EVERY - Duration::from_secs(1)), None);
        assert_eq!(obs(WARN_EVERY), Some(Notice::Beyond));
        // Another peer has its own allowance.
        let be = AgencyId::new("BE-VSSE").unwrap();
        assert_eq!(
            m.observe_at(&be, t0, t0, behind, start + WARN_EVERY, wall),
            Some(Notice::Beyond)
        );
        // Back within tolerance, then beyond again: warned at once.
        assert_eq!(
            m.observe_at(&fr(), t0, t0, t0, start + WARN_EVERY, wall),
            Some(Notice::Back)
        );
        assert_eq!(
            m.observe_at(&fr(), t0, t0, behind, start + WARN_EVERY, wall),
            Some(Notice::Beyond)
        );
    }

    #[test]
    fn the_header_carries_milliseconds_and_bad_values_are_ignored() {
        let now = at("2026-01-01T10:00:00.123Z");
        let mut response = http::Response::new(());
        stamp(&mut response, now);
        let metadata = MetadataMap::from_headers(response.headers().clone());
        assert_eq!(peer_time(&metadata), Some(now));
        for bad in ["", "soon", "1e3", "99999999999999999999"] {
            let mut headers = http::HeaderMap::new();
            headers.insert(TIME_HEADER, http::HeaderValue::from_static(bad));
            assert_eq!(
                peer_time(&MetadataMap::from_headers(headers)),
                None,
                "{bad}"
            );
        }
        assert_eq!(peer_time(&MetadataMap::new()), None);
    }
}
