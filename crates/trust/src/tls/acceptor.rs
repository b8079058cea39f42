//! Accepting connections: handshakes run concurrently, bounded in number
//! and in time, each refusal counted and logged with its reason.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::{CertificateError, ServerConfig};
use tocsin_core::Identity;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};

use super::conn::{PeerInfo, TlsConn};
use super::per_identity::PerIdentity;
use super::{CLIENT_REFUSAL, Noted, noted};
use crate::identity::identity_of;
use crate::live::{Guarded, LiveTls};
use crate::refusals::{Refusal, Refusals};

/// Limits on the handshakes an [`Acceptor`] runs.
#[derive(Debug, Clone, Copy)]
pub struct AcceptorLimits {
    /// How long a client may take to complete its handshake.
    pub handshake_timeout: Duration,
    /// How many handshakes may run at once; more wait in the TCP backlog.
    pub max_concurrent_handshakes: usize,
    /// How many sessions one identity (a peer, an operator) may hold at
    /// once; a handshake beyond is closed at once.
    pub max_connections_per_peer: usize,
}

impl Default for AcceptorLimits {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            max_concurrent_handshakes: 256,
            max_connections_per_peer: 32,
        }
    }
}

/// Called with the identity of every newly authenticated session.
pub type SessionHook = Arc<dyn Fn(&Identity) + Send + Sync>;

/// Accepts TCP connections and runs their TLS handshakes concurrently, each
/// with a timeout, so a slow or hostile client cannot hold up the others.
/// Every refused session is counted and logged with its reason
/// ([`Refusals`]).
pub struct Acceptor {
    listener: TcpListener,
    config: Arc<ServerConfig>,
    limits: AcceptorLimits,
    on_session: Option<SessionHook>,
    live: Option<Arc<LiveTls>>,
    refusals: Refusals,
}

impl fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acceptor")
            .field("listener", &self.listener)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Permits for `limit` handshakes at once: at least one, so the acceptor
/// is never dead, and at most what a semaphore holds (more would panic).
pub(super) fn handshake_slots(limit: usize) -> Semaphore {
    Semaphore::new(limit.clamp(1, Semaphore::MAX_PERMITS))
}

impl Acceptor {
    /// An acceptor on a bound listener.
    pub fn new(listener: TcpListener, config: Arc<ServerConfig>, limits: AcceptorLimits) -> Self {
        Self {
            listener,
            config,
            limits,
            on_session: None,
            live: None,
            refusals: Refusals::default(),
        }
    }

    /// Counts and logs refusals in `refusals` (shared, for example, with a
    /// metrics endpoint) instead of counts of its own.
    pub fn counting(mut self, refusals: Refusals) -> Self {
        self.refusals = refusals;
        self
    }

    /// The counts of refused sessions.
    pub fn refusals(&self) -> Refusals {
        self.refusals.clone()
    }

    /// Registers every session with `live`, so that it is closed should the
    /// client's certificate be revoked.
    pub fn tracked_by(mut self, live: Arc<LiveTls>) -> Self {
        self.live = Some(live);
        self
    }

    /// Calls `hook` with the identity of every new session (for example, to
    /// learn that a peer is up again).
    pub fn on_session(mut self, hook: SessionHook) -> Self {
        self.on_session = Some(hook);
        self
    }

    /// The authenticated connections, for `serve_with_incoming`. The accept
    /// loop stops when the stream is dropped.
    pub fn into_stream(self) -> tokio_stream::wrappers::ReceiverStream<io::Result<TlsConn>> {
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(self.run(tx));
        tokio_stream::wrappers::ReceiverStream::new(rx)
    }

    async fn run(self, tx: mpsc::Sender<io::Result<TlsConn>>) {
        let tls = tokio_rustls::TlsAcceptor::from(self.config);
        let slots = Arc::new(handshake_slots(self.limits.max_concurrent_handshakes));
        let sessions = PerIdentity::new(self.limits.max_connections_per_peer);
        loop {
            let permit = tokio::select! {
                _ = tx.closed() => return,
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => return,
                },
            };
            let (tcp, remote_addr) = tokio::select! {
                _ = tx.closed() => return,
                accepted = self.listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off
                        // rather than spin.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            let tls = tls.clone();
            let tx = tx.clone();
            let hook = self.on_session.clone();
            let live = self.live.clone();
            let sessions = sessions.clone();
            let refusals = self.refusals.clone();
            let timeout = self.limits.handshake_timeout;
            tokio::spawn(async move {
                let _permit = permit;
                let refusal = Noted::default();
                let handshake = CLIENT_REFUSAL.scope(refusal.clone(), tls.accept(tcp));
                match tokio::time::timeout(timeout, handshake).await {
                    Ok(Ok(stream)) => {
                        let leaf = stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first());
                        let identity = leaf.map(|c| identity_of(c));
                        let guard = live.as_ref().zip(leaf).map(|(live, c)| live.track(c));
                        match identity {
                            Some(Ok((_, identity)))
                                if guard.as_ref().is_some_and(|g| g.is_closed()) =>
                            {
                                refusals.record(
                                    remote_addr,
                                    Refusal::Revoked,
                                    &identity.to_string(),
                                );
                            }
                            Some(Ok((_, identity))) => {
                                let Some(slot) = sessions.take(&identity) else {
                                    refusals.record(
                                        remote_addr,
                                        Refusal::TooManySessions,
                                        &format!("{identity} holds {} already", sessions.limit()),
                                    );
                                    let mut stream = stream;
                                    let _ = tokio::time::timeout(
                                        Duration::from_secs(1),
                                        tokio::io::AsyncWriteExt::shutdown(&mut stream),
                                    )
                                    .await;
                                    return;
                                };
                                tracing::debug!(%remote_addr, %identity, "session opened");
                                if let (Some(live), Some(leaf)) = (&live, leaf) {
                                    live.note_peer(&identity, leaf);
                                }
                                if let Some(hook) = &hook {
                                    hook(&identity);
                                }
                                let conn = TlsConn {
                                    inner: Guarded::new(stream, guard),
                                    info: PeerInfo {
                                        identity,
                                        remote_addr,
                                    },
                                    _slot: slot,
                                };
                                let _ = tx.send(Ok(conn)).await;
                            }
                            Some(Err(e)) => {
                                refusals.record(remote_addr, Refusal::NoIdentity, &e.to_string())
                            }
                            None => refusals.record(
                                remote_addr,
                                Refusal::NoClientCertificate,
                                "no certificate after the handshake",
                            ),
                        }
                    }
                    Ok(Err(e)) => {
                        let (reason, detail) = refusal_of(&e, noted(&refusal));
                        refusals.record(remote_addr, reason, &detail);
                    }
                    Err(_) => refusals.record(
                        remote_addr,
                        Refusal::Timeout,
                        &format!("no handshake within {timeout:?}"),
                    ),
                }
            });
        }
    }
}

/// Why a handshake that failed with `error` was refused, and what more
/// to say: what the client verifier noted, or else what the error says.
fn refusal_of(error: &io::Error, noted: Option<(Refusal, String)>) -> (Refusal, String) {
    if let Some(noted) = noted {
        return noted;
    }
    let Some(tls) = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    else {
        let reason = match error.kind() {
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => Refusal::Closed,
            _ => Refusal::TlsError,
        };
        return (reason, error.to_string());
    };
    let reason = match tls {
        rustls::Error::NoCertificatesPresented => Refusal::NoClientCertificate,
        rustls::Error::InvalidCertificate(e) => match e {
            // A certificate signed by another CA of the same name fails
            // its signature check rather than its issuer's.
            CertificateError::UnknownIssuer | CertificateError::BadSignature => Refusal::UnknownCa,
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => Refusal::Expired,
            CertificateError::Revoked => Refusal::Revoked,
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                Refusal::WrongPurpose
            }
            _ => Refusal::BadCertificate,
        },
        rustls::Error::InvalidMessage(_)
        | rustls::Error::InappropriateMessage { .. }
        | rustls::Error::InappropriateHandshakeMessage { .. }
        | rustls::Error::PeerSentOversizedRecord => Refusal::NotTls,
        rustls::Error::AlertReceived(_) => Refusal::ClientAborted,
        _ => Refusal::TlsError,
    };
    (reason, tls.to_string())
}
