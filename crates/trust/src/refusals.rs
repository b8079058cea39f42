//! Refused TLS sessions: why each was refused, counted by reason, and
//! logged with a limit per source address.
//!
//! Every refusal is counted ([`Refusals::counts`], shown by a node's
//! metrics endpoint as `tocsin_tls_handshake_refusals_total{reason}`).
//! Each is logged with its reason, but one source address gets at most
//! [`LOG_BURST`] lines at once and one more per [`LOG_REFILL`] after that:
//! a client sending garbage in a loop cannot fill the log. What is not
//! logged is counted ([`Refusals::suppressed_logs`]), and the next line
//! logged for that address says how many of its refusals went unlogged.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why a node refused a TLS session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Refusal {
    /// What the client sent is not TLS (or not well-formed TLS).
    NotTls,
    /// A TLS failure of another kind (no common protocol version or
    /// cipher suite, an unexpected message).
    TlsError,
    /// The client ended the handshake itself, with an alert (for example,
    /// because it does not accept this node's certificate).
    ClientAborted,
    /// The connection was closed before the handshake completed.
    Closed,
    /// The handshake did not complete within the handshake timeout.
    Timeout,
    /// The client presented no certificate.
    NoClientCertificate,
    /// The certificate was not issued by the federation CA.
    UnknownCa,
    /// The certificate has expired or is not valid yet.
    Expired,
    /// The certificate is revoked by the federation's CRL.
    Revoked,
    /// The certificate is not meant for a TLS client (an agency's signing
    /// certificate, for example).
    WrongPurpose,
    /// The certificate is unusable otherwise (bad encoding, bad signature).
    BadCertificate,
    /// The certificate names no agency: no `spiffe://` URI.
    NoIdentity,
    /// The certificate names two identities or more.
    SeveralIdentities,
    /// The certificate names an identity of another federation.
    OtherFederation,
    /// The certificate names an agency that is not in the federation.
    UnknownAgency,
    /// The certificate is an operator's of another agency.
    ForeignOperator,
    /// The identity already holds as many sessions as it may.
    TooManySessions,
}

impl Refusal {
    /// Every reason, in the order metrics list them.
    pub const ALL: [Refusal; 17] = [
        Refusal::NotTls,
        Refusal::TlsError,
        Refusal::ClientAborted,
        Refusal::Closed,
        Refusal::Timeout,
        Refusal::NoClientCertificate,
        Refusal::UnknownCa,
        Refusal::Expired,
        Refusal::Revoked,
        Refusal::WrongPurpose,
        Refusal::BadCertificate,
        Refusal::NoIdentity,
        Refusal::SeveralIdentities,
        Refusal::OtherFederation,
        Refusal::UnknownAgency,
        Refusal::ForeignOperator,
        Refusal::TooManySessions,
    ];

    /// The reason's label on the metrics endpoint and in the log.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::NotTls => "not_tls",
            Refusal::TlsError => "tls_error",
            Refusal::ClientAborted => "client_aborted",
            Refusal::Closed => "closed",
            Refusal::Timeout => "handshake_timeout",
            Refusal::NoClientCertificate => "no_client_certificate",
            Refusal::UnknownCa => "unknown_ca",
            Refusal::Expired => "expired",
            Refusal::Revoked => "revoked",
            Refusal::WrongPurpose => "wrong_purpose",
            Refusal::BadCertificate => "bad_certificate",
            Refusal::NoIdentity => "no_identity",
            Refusal::SeveralIdentities => "several_identities",
            Refusal::OtherFederation => "other_federation",
            Refusal::UnknownAgency => "unknown_agency",
            Refusal::ForeignOperator => "foreign_operator",
            Refusal::TooManySessions => "too_many_sessions",
        }
    }

    /// Whether the client proved it holds a certificate of the federation
    /// CA: such a refusal is logged as a warning, the others (scanners,
    /// strangers) as information.
    fn holds_a_federation_certificate(self) -> bool {
        matches!(
            self,
            Refusal::Revoked
                | Refusal::Expired
                | Refusal::WrongPurpose
                | Refusal::NoIdentity
                | Refusal::SeveralIdentities
                | Refusal::OtherFederation
                | Refusal::UnknownAgency
                | Refusal::ForeignOperator
                | Refusal::TooManySessions
        )
    }

    fn index(self) -> usize {
        Refusal::ALL
            .iter()
            .position(|r| *r == self)
            .unwrap_or_default()
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::NotTls => "not TLS",
            Refusal::TlsError => "TLS error",
            Refusal::ClientAborted => "the client ended the handshake",
            Refusal::Closed => "connection closed during the handshake",
            Refusal::Timeout => "handshake timed out",
            Refusal::NoClientCertificate => "no client certificate",
            Refusal::UnknownCa => "certificate not issued by the federation CA",
            Refusal::Expired => "certificate expired or not yet valid",
            Refusal::Revoked => "certificate revoked",
            Refusal::WrongPurpose => "certificate not meant for TLS client use",
            Refusal::BadCertificate => "unusable certificate",
            Refusal::NoIdentity => "certificate names no agency (no spiffe:// URI)",
            Refusal::SeveralIdentities => "certificate names more than one identity",
            Refusal::OtherFederation => "certificate of another federation",
            Refusal::UnknownAgency => "agency not in the federation",
            Refusal::ForeignOperator => "operator of another agency",
            Refusal::TooManySessions => "too many sessions for one identity",
        })
    }
}

/// Log lines one source address may have at once.
pub const LOG_BURST: u32 = 10;
/// After the burst, one more log line per source address per this long.
pub const LOG_REFILL: Duration = Duration::from_secs(6);
/// Source addresses whose log budgets are remembered; beyond this, a new
/// address is logged only once an old one's budget is full again.
const MAX_ADDRESSES: usize = 4096;

/// One source address's log budget.
#[derive(Debug)]
struct Budget {
    tokens: f64,
    at: Instant,
    suppressed: u64,
}

impl Budget {
    fn refill(&mut self, now: Instant) {
        let earned = now.duration_since(self.at).as_secs_f64() / LOG_REFILL.as_secs_f64();
        self.tokens = (self.tokens + earned).min(f64::from(LOG_BURST));
        self.at = now;
    }
}

#[derive(Debug)]
struct Inner {
    counts: [AtomicU64; Refusal::ALL.len()],
    suppressed: AtomicU64,
    budgets: Mutex<HashMap<IpAddr, Budget>>,
}

/// Counts of refused sessions by reason, and the per-address log limit;
/// clones share them.
#[derive(Debug, Clone)]
pub struct Refusals(Arc<Inner>);

impl Default for Refusals {
    fn default() -> Self {
        Self(Arc::new(Inner {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            suppressed: AtomicU64::new(0),
            budgets: Mutex::new(HashMap::new()),
        }))
    }
}

impl Refusals {
    /// Sessions refused for `reason` so far.
    pub fn count(&self, reason: Refusal) -> u64 {
        self.0.counts[reason.index()].load(Ordering::Relaxed)
    }

    /// Every reason with its count, in the order of [`Refusal::ALL`].
    pub fn counts(&self) -> Vec<(Refusal, u64)> {
        Refusal::ALL.iter().map(|r| (*r, self.count(*r))).collect()
    }

    /// Refusals counted but not logged, because their source address had
    /// used its log budget.
    pub fn suppressed_logs(&self) -> u64 {
        self.0.suppressed.load(Ordering::Relaxed)
    }

    /// Counts a refusal of a session from `remote` and logs it, within
    /// the address's budget. `detail` says more (which agency, which
    /// federation, what the TLS library said); it never holds a secret.
    pub fn record(&self, remote: SocketAddr, reason: Refusal, detail: &str) {
        self.0.counts[reason.index()].fetch_add(1, Ordering::Relaxed);
        let Some(suppressed) = self.may_log(remote.ip(), Instant::now()) else {
            self.0.suppressed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let label = reason.label();
        if reason.holds_a_federation_certificate() {
            tracing::warn!(%remote, reason = label, detail, suppressed, "refused TLS session: {reason}");
        } else {
            tracing::info!(%remote, reason = label, detail, suppressed, "refused TLS session: {reason}");
        }
    }

    /// Whether `ip` may log a line now; if so, how many of its refusals
    /// went unlogged since its last line.
    fn may_log(&self, ip: IpAddr, now: Instant) -> Option<u64> {
        let mut budgets = self.0.budgets.lock().unwrap_or_else(|e| e.into_inner());
        if !budgets.contains_key(&ip) && budgets.len() >= MAX_ADDRESSES {
            // Forget the addresses whose budgets are full again: they
            // start afresh as new ones would.
            budgets.retain(|_, b| {
                b.refill(now);
                b.tokens < f64::from(LOG_BURST) || b.suppressed > 0
            });
            if budgets.len() >= MAX_ADDRESSES {
                return None;
            }
        }
        let budget = budgets.entry(ip).or_insert(Budget {
            tokens: f64::from(LOG_BURST),
            at: now,
            suppressed: 0,
        });
        budget.refill(now);
        if budget.tokens >= 1.0 {
            budget.tokens -= 1.0;
            Some(std::mem::take(&mut budget.suppressed))
        } else {
            budget.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_has_its_own_budget_which_refills() {
        let refusals = Refusals::default();
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let t0 = Instant::now();
        for _ in 0..LOG_BURST {
            assert_eq!(refusals.may_log(a, t0), Some(0));
        }
        assert_eq!(refusals.may_log(a, t0), None);
        assert_eq!(refusals.may_log(a, t0), None);
        assert_eq!(refusals.may_log(b, t0), Some(0), "another address");
        // One refill period later, one line, saying two went unlogged.
        assert_eq!(refusals.may_log(a, t0 + LOG_REFILL), Some(2));
        assert_eq!(refusals.may_log(a, t0 + LOG_REFILL), None);
    }

    #[test]
    fn remembered_addresses_are_bounded() {
        let refusals = Refusals::default();
        let t0 = Instant::now();
        let ip = |i: usize| IpAddr::from([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
        for i in 0..MAX_ADDRESSES {
            assert!(refusals.may_log(ip(i), t0).is_some());
        }
        // Every budget is in use: a new address waits ...
        assert_eq!(refusals.may_log(ip(MAX_ADDRESSES), t0), None);
        // ... until the old ones are full again and forgotten.
        let later = t0 + LOG_REFILL * 2;
        assert_eq!(refusals.may_log(ip(MAX_ADDRESSES), later), Some(0));
        let len = refusals.0.budgets.lock().unwrap().len();
        assert!(len <= MAX_ADDRESSES, "{len}");
    }

    #[test]
    fn labels_are_distinct() {
        let mut labels: Vec<_> = Refusal::ALL.iter().map(|r| r.label()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), Refusal::ALL.len());
        for (i, r) in Refusal::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
