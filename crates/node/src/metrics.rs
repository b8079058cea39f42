//! The metrics endpoint: Prometheus text exposition over plain HTTP/1.1
//! (`GET /metrics`), on its own listener, served only when the node is
//! configured with `metrics_listen`.
//!
//! It is apart from the gRPC port because a scraper has no operator
//! certificate, and what it shows (peer agency ids, clock skews, counts of
//! refused TLS sessions by reason) is not sensitive; it should still listen on loopback or a monitoring network
//! only. One request per connection, a few connections at once, headers
//! within a few seconds: a stuck or hostile client cannot hold it.

use std::convert::Infallible;
use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tocsin_trust::refusals::Refusals;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::skew::SkewMonitor;

/// What the metrics are read from.
#[derive(Debug, Clone)]
pub(crate) struct Sources {
    /// Peers' clock skews.
    pub(crate) skew: SkewMonitor,
    /// Refused TLS sessions.
    pub(crate) refusals: Refusals,
    /// How far behind each owner's watchlist this node is.
    pub(crate) watchlist: crate::watchlist::SyncBoard,
    /// The node's clock, to tell how old what it holds is.
    pub(crate) clock: Arc<dyn tocsin_core::Clock>,
}

/// Connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 16;
/// How long a client has to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one connection may last.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// The content type of the Prometheus text format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Serves metrics on `listener` until `shutdown` turns true.
pub(crate) async fn serve(
    listener: TcpListener,
    sources: Sources,
    mut shutdown: watch::Receiver<bool>,
) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(listen = %addr, "metrics serving at /metrics");
    }
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, most likely: let some close.
                tracing::warn!(error = %e, "metrics endpoint cannot accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!("metrics endpoint busy; connection closed");
            continue;
        };
        let sources = sources.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = service_fn(move |req| {
                let answer = answer(&req, &sources);
                async move { Ok::<_, Infallible>(answer) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(CONNECTION_TIMEOUT, conn).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(error = %e, "metrics connection failed"),
                Err(_) => tracing::debug!("metrics connection timed out"),
            }
        });
    }
}

fn answer<B>(req: &Request<B>, sources: &Sources) -> Response<String> {
    let (status, body) = if req.uri().path() != "/metrics" {
        (
            StatusCode::NOT_FOUND,
            "not found: metrics are at /metrics\n".to_owned(),
        )
    } else if req.method() == Method::GET || req.method() == Method::HEAD {
        (StatusCode::OK, render(sources))
    } else {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: use GET\n".to_owned(),
        )
    };
    let content_type = if status == StatusCode::OK {
        CONTENT_TYPE
    } else {
        "text/plain; charset=utf-8"
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        response.headers_mut().insert(
            http::header::ALLOW,
            http::HeaderValue::from_static("GET, HEAD"),
        );
    }
    response
}

fn seconds(d: chrono::Duration) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

/// A label value, escaped as the text format asks.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The metrics in Prometheus text format.
pub(crate) fn render(sources: &Sources) -> String {
    let skew = &sources.skew;
    let peers = skew.snapshot();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP tocsin_tls_handshake_refusals_total TLS sessions refused, by reason (README, metrics)."
    );
    let _ = writeln!(out, "# TYPE tocsin_tls_handshake_refusals_total counter");
    for (reason, count) in sources.refusals.counts() {
        let _ = writeln!(
            out,
            "tocsin_tls_handshake_refusals_total{{reason=\"{}\"}} {count}",
            reason.label()
        );
    }
    let _ = writeln!(
        out,
        "# HELP tocsin_tls_refusal_logs_suppressed_total Refused TLS sessions not logged, their source address having logged too many lately."
    );
    let _ = writeln!(
        out,
        "# TYPE tocsin_tls_refusal_logs_suppressed_total counter"
    );
    let _ = writeln!(
        out,
        "tocsin_tls_refusal_logs_suppressed_total {}",
        sources.refusals.suppressed_logs()
    );
    let mut gauge = |name: &str, help: &str, values: &mut dyn Iterator<Item = (String, f64)>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (labels, value) in values {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    gauge(
        "tocsin_clock_skew_tolerance_seconds",
        "How far a peer's clock may be from this node's before it is flagged ([limits] clock_skew_tolerance).",
        &mut std::iter::once((String::new(), seconds(skew.tolerance()))),
    );
    let per_peer = |f: fn(&crate::skew::PeerSkew) -> f64| {
        peers
            .iter()
            .map(move |(peer, s)| (format!("{{peer=\"{}\"}}", label(peer.as_str())), f(s)))
    };
    gauge(
        "tocsin_peer_clock_skew_seconds",
        "The peer's clock minus this node's, as last measured (negative: the peer is behind).",
        &mut per_peer(|s| seconds(s.skew)),
    );
    gauge(
        "tocsin_peer_clock_skew_uncertainty_seconds",
        "Half the round trip of that measurement: the true skew is within this of it.",
        &mut per_peer(|s| seconds(s.uncertainty)),
    );
    gauge(
        "tocsin_peer_clock_skew_exceeded",
        "1 if the peer's clock is certainly beyond the tolerance, 0 if certainly within it (an uncertain measurement keeps the last verdict).",
        &mut per_peer(|s| if s.exceeded { 1.0 } else { 0.0 }),
    );
    gauge(
        "tocsin_peer_clock_skew_measured_timestamp_seconds",
        "When the peer's clock was last measured (Unix time, this host's real-time clock).",
        &mut per_peer(|s| {
            s.measured_at
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as f64 / 1000.0)
                .unwrap_or(0.0)
        }),
    );
    let now = sources.clock.now();
    let cursors = sources.watchlist.snapshot();
    let per_owner = |f: fn((u64, f64)) -> f64| {
        cursors.iter().map(move |c| {
            (
                format!("{{owner=\"{}\"}}", label(&c.owner)),
                f(crate::watchlist::lag(c, now)),
            )
        })
    };
    gauge(
        "tocsin_watchlist_sync_lag_entries",
        "Changes of the owner's watchlist log not yet applied here (its head as last heard, minus this node's cursor).",
        &mut per_owner(|(changes, _)| changes as f64),
    );
    gauge(
        "tocsin_watchlist_sync_lag_seconds",
        "How old this node's copy of the owner's watchlist is when behind: now minus when the owner made the last change applied; 0 when caught up.",
        &mut per_owner(|(_, seconds)| seconds),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tocsin_core::AgencyId;

    #[test]
    fn renders_one_series_per_measured_peer() {
        let skew = SkewMonitor::new(Duration::from_secs(120));
        let t0: chrono::DateTime<chrono::Utc> = "2026-01-01T10:00:00Z".parse().unwrap();
        let fr = AgencyId::new("FR-DGSI").unwrap();
        let be = AgencyId::new("BE-VSSE").unwrap();
        skew.observe(
            &fr,
            t0,
            t0 + chrono::Duration::milliseconds(500),
            t0 - chrono::Duration::minutes(10),
        );
        skew.observe(&be, t0, t0, t0 + chrono::Duration::seconds(30));
        let text = render(&Sources {
            skew,
            refusals: Refusals::default(),
            watchlist: Default::default(),
            clock: Arc::new(tocsin_core::SystemClock),
        });
        for line in [
            "# TYPE tocsin_peer_clock_skew_seconds gauge",
            "tocsin_clock_skew_tolerance_seconds 120",
            "tocsin_peer_clock_skew_seconds{peer=\"FR-DGSI\"} -600.25",
            "tocsin_peer_clock_skew_uncertainty_seconds{peer=\"FR-DGSI\"} 0.25",
            "tocsin_peer_clock_skew_exceeded{peer=\"FR-DGSI\"} 1",
            "tocsin_peer_clock_skew_seconds{peer=\"BE-VSSE\"} 30",
            "tocsin_peer_clock_skew_exceeded{peer=\"BE-VSSE\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
        }
        // Sorted by peer, so scrapes compare line by line.
        let be_at = text.find("skew_seconds{peer=\"BE-VSSE\"}").unwrap();
        let fr_at = text.find("skew_seconds{peer=\"FR-DGSI\"}").unwrap();
        assert!(be_at < fr_at);
    }

    #[test]
    fn refusals_are_counted_by_reason_every_reason_listed() {
        use tocsin_trust::refusals::Refusal;
        let refusals = Refusals::default();
        let from = "192.0.2.7:4000".parse().unwrap();
        refusals.record(from, Refusal::NotTls, "x");
        refusals.record(from, Refusal::NotTls, "x");
        refusals.record(from, Refusal::UnknownAgency, "agency XX-ROGUE");
        let text = render(&Sources {
            skew: SkewMonitor::new(Duration::from_secs(120)),
            refusals,
            watchlist: Default::default(),
            clock: Arc::new(tocsin_core::SystemClock),
        });
        for line in [
            "# TYPE tocsin_tls_handshake_refusals_total counter",
            "tocsin_tls_handshake_refusals_total{reason=\"not_tls\"} 2",
            "tocsin_tls_handshake_refusals_total{reason=\"unknown_agency\"} 1",
            "tocsin_tls_handshake_refusals_total{reason=\"revoked\"} 0",
            "tocsin_tls_refusal_logs_suppressed_total 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
        }
        let listed = text
            .lines()
            .filter(|l| l.starts_with("tocsin_tls_handshake_refusals_total{"))
            .count();
        assert_eq!(listed, Refusal::ALL.len());
    }

    #[test]
    fn only_get_and_head_of_metrics_are_answered() {
        let skew = Sources {
            skew: SkewMonitor::new(Duration::from_secs(120)),
            refusals: Refusals::default(),
            watchlist: Default::default(),
            clock: Arc::new(tocsin_core::SystemClock),
        };
        let req = |method: Method, path: &str| {
            Request::builder()
                .method(method)
                .uri(path)
                .body(())
                .unwrap()
        };
        let ok = answer(&req(Method::GET, "/metrics"), &skew);
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.headers()[http::header::CONTENT_TYPE], CONTENT_TYPE);
        assert!(
            ok.body()
                .contains("tocsin_clock_skew_tolerance_seconds 120")
        );
        assert_eq!(
            answer(&req(Method::HEAD, "/metrics"), &skew).status(),
            StatusCode::OK
        );
        assert_eq!(
            answer(&req(Method::GET, "/"), &skew).status(),
            StatusCode::NOT_FOUND
        );
        let post = answer(&req(Method::POST, "/metrics"), &skew);
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(post.headers()[http::header::ALLOW], "GET, HEAD");
    }
}
