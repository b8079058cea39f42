//! Mutual TLS: TLS 1.3 only, client certificates required, identities from
//! certificates alone.
//!
//! tonic's built-in TLS offers one client CA and nothing else; Tocsin owns
//! the rustls configuration instead, so it can apply its access policy in
//! the handshake and carry the verified identity into the handlers.
//!
//! Every refused session is counted and logged with its reason
//! ([`crate::refusals`]); a client that reaches a server other than the
//! one it expected fails with an [`UnexpectedServer`] error naming both.
//! rustls carries only its own error types back from a verifier, and the
//! TLS alert it sends follows from them, so the verifiers keep returning
//! the errors they always did and note what they found in a slot of the
//! task running the handshake ([`Acceptor`], [`connector`]).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::client::ResolvesClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ParsedCertificate, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore,
    ServerConfig, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tocsin_core::{FederationId, Identity};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tonic::transport::server::Connected;

use crate::Error;
use crate::files::{read_certs, read_private_key};
use crate::identity::{IdentityError, identity_of, read_identity};
use crate::live::{Guarded, LiveTls};
use crate::refusals::{Refusal, Refusals};
use crate::revocation::SharedRevocations;

/// What a verifier found, for the task whose handshake called it.
type Noted<T> = Arc<Mutex<Option<T>>>;

tokio::task_local! {
    /// Why the client verifier refused the client's certificate.
    static CLIENT_REFUSAL: Noted<(Refusal, String)>;
    /// Whom the server verifier expected, and what the server presented.
    static SERVER_MISMATCH: Noted<(Identity, Presented)>;
}

/// Notes `value` for the handshake's task, if it has a slot for it.
fn note<T: 'static>(key: &'static tokio::task::LocalKey<Noted<T>>, value: T) {
    let _ = key.try_with(|slot| *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(value));
}

/// Takes what was noted in `slot`.
fn noted<T>(slot: &Noted<T>) -> Option<T> {
    slot.lock().unwrap_or_else(|e| e.into_inner()).take()
}

/// A node's or operator's TLS material: the federation CA, its certificate
/// chain and its key.
pub struct TlsMaterial {
    /// The federation the certificates belong to.
    pub federation: FederationId,
    /// The federation CA certificate.
    pub ca: CertificateDer<'static>,
    /// This party's certificate chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// This party's private key.
    pub key: PrivateKeyDer<'static>,
    /// The identity the leaf certificate carries.
    pub identity: Identity,
}

impl fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("federation", &self.federation)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl Clone for TlsMaterial {
    fn clone(&self) -> Self {
        Self {
            federation: self.federation.clone(),
            ca: self.ca.clone(),
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            identity: self.identity.clone(),
        }
    }
}

impl TlsMaterial {
    /// Loads and checks the CA, certificate and key files.
    pub fn load(
        ca: &Path,
        cert: &Path,
        key: &Path,
        federation: &FederationId,
    ) -> Result<Self, Error> {
        let ca = read_certs(ca)?.remove(0);
        let chain = read_certs(cert)?;
        let key = read_private_key(key)?;
        Self::new(ca, chain, key, federation)
    }

    /// Checks DER material: the leaf names an identity in `federation`.
    pub fn new(
        ca: CertificateDer<'static>,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        federation: &FederationId,
    ) -> Result<Self, Error> {
        let leaf = chain
            .first()
            .ok_or_else(|| Error::Certificate("empty certificate chain".into()))?;
        let (fed, identity) = identity_of(leaf)?;
        if &fed != federation {
            return Err(Error::Certificate(format!(
                "certificate is for federation {fed}, not {federation}"
            )));
        }
        Ok(Self {
            federation: federation.clone(),
            ca,
            chain,
            key,
            identity,
        })
    }
}

/// Decides which verified identities may open a session on a node. A
/// refused agency is counted as [`Refusal::UnknownAgency`], a refused
/// operator as [`Refusal::ForeignOperator`].
pub type AccessPolicy = Arc<dyn Fn(&Identity) -> bool + Send + Sync>;

/// Wraps rustls's chain and CRL verification (as now in force) with
/// Tocsin's identity checks.
struct PolicyVerifier {
    live: Arc<LiveTls>,
    hints: Vec<DistinguishedName>,
    federation: FederationId,
    policy: AccessPolicy,
}

impl fmt::Debug for PolicyVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyVerifier")
            .field("federation", &self.federation)
            .finish_non_exhaustive()
    }
}

impl ClientCertVerifier for PolicyVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified =
            self.live
                .state()
                .client_verifier
                .verify_client_cert(end_entity, intermediates, now)?;
        // The client is told only that access is denied; the acceptor
        // logs and counts why.
        let refuse = |reason: Refusal, detail: String| {
            note(&CLIENT_REFUSAL, (reason, detail));
            rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
        };
        let (fed, identity) = read_identity(end_entity).map_err(|e| match e {
            IdentityError::SeveralUris => refuse(Refusal::SeveralIdentities, e.to_string()),
            e => refuse(Refusal::NoIdentity, e.to_string()),
        })?;
        if fed != self.federation {
            return Err(refuse(
                Refusal::OtherFederation,
                format!("{identity} of federation {fed}"),
            ));
        }
        if !(self.policy)(&identity) {
            let reason = match identity {
                Identity::Agency(_) => Refusal::UnknownAgency,
                Identity::Operator { .. } => Refusal::ForeignOperator,
            };
            return Err(refuse(reason, identity.to_string()));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.live
            .state()
            .client_verifier
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.live
            .state()
            .client_verifier
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.live.state().client_verifier.supported_verify_schemes()
    }
}

/// The server side of a node: TLS 1.3 only, a client certificate chaining
/// to the federation CA required, and `policy` deciding which identities
/// get a session at all.
pub fn server_config(
    material: &TlsMaterial,
    policy: AccessPolicy,
) -> Result<Arc<ServerConfig>, Error> {
    live_server_config(&LiveTls::fixed(material)?, policy)
}

/// Like [`server_config`], with the certificate, key and CRLs now in force
/// in `live`, for every new handshake.
pub fn live_server_config(
    live: &Arc<LiveTls>,
    policy: AccessPolicy,
) -> Result<Arc<ServerConfig>, Error> {
    let verifier = Arc::new(PolicyVerifier {
        hints: live.state().client_verifier.root_hint_subjects().to_vec(),
        live: live.clone(),
        federation: live.federation.clone(),
        policy,
    });
    let mut config = ServerConfig::builder_with_provider(live.provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(LiveKey(live.clone())));
    config.alpn_protocols = vec![b"h2".to_vec()];
    // No session resumption: a resumed handshake skips the certificate
    // checks, so a revoked peer could come back on an old ticket.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// Presents the certificate and key now in force.
#[derive(Debug)]
struct LiveKey(Arc<LiveTls>);

impl ResolvesServerCert for LiveKey {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.state().key.clone())
    }
}

impl ResolvesClientCert for LiveKey {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.state().key.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Checks that a server is the expected identity of the federation,
/// whatever host name it was reached by (SPIFFE-style).
struct IdentityServerVerifier {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
    federation: FederationId,
    expected: Identity,
    revocations: SharedRevocations,
}

impl fmt::Debug for IdentityServerVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityServerVerifier")
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

impl ServerCertVerifier for IdentityServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        if self.revocations.current().is_revoked(end_entity.as_ref()) {
            return Err(rustls::Error::InvalidCertificate(CertificateError::Revoked));
        }
        let presented = match read_identity(end_entity) {
            Ok((fed, identity)) if fed == self.federation && identity == self.expected => {
                return Ok(ServerCertVerified::assertion());
            }
            Ok((fed, identity)) if fed == self.federation => Presented::Identity(identity),
            Ok((fed, identity)) => Presented::OtherFederation(fed, identity),
            Err(e) => Presented::Nothing(e.to_string()),
        };
        note(&SERVER_MISMATCH, (self.expected.clone(), presented));
        Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName,
        ))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The client side: TLS 1.3 only, presenting `material`'s certificate, and
/// accepting only a server whose certificate names `expected`.
pub fn client_config(
    material: &TlsMaterial,
    expected: Identity,
) -> Result<Arc<ClientConfig>, Error> {
    live_client_config(&LiveTls::fixed(material)?, expected)
}

/// Like [`client_config`], presenting the certificate now in force in
/// `live` and refusing a server certificate its CRLs revoke.
pub fn live_client_config(
    live: &Arc<LiveTls>,
    expected: Identity,
) -> Result<Arc<ClientConfig>, Error> {
    let verifier = Arc::new(IdentityServerVerifier {
        roots: live.roots.clone(),
        provider: live.provider.clone(),
        federation: live.federation.clone(),
        expected,
        revocations: live.revocations(),
    });
    let mut config = ClientConfig::builder_with_provider(live.provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_cert_resolver(Arc::new(LiveKey(live.clone())));
    config.alpn_protocols = vec![b"h2".to_vec()];
    // Every connection checks the server's certificate afresh.
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// What a server's certificate names, when it is not what the client
/// expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    /// Another identity of the federation.
    Identity(Identity),
    /// An identity of another federation (with a certificate of this
    /// federation's CA).
    OtherFederation(FederationId, Identity),
    /// No usable identity, and why.
    Nothing(String),
}

impl fmt::Display for Presented {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Presented::Identity(identity) => write!(f, "{identity}"),
            Presented::OtherFederation(fed, identity) => {
                write!(f, "{identity} of federation {fed}")
            }
            Presented::Nothing(why) => write!(f, "a certificate with no identity ({why})"),
        }
    }
}

/// A client reached a server of the federation that is not the one it
/// expected: the server's certificate chains to the federation CA but
/// names someone else (the address belongs to another agency's node).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct UnexpectedServer {
    /// The address dialled, `host:port`.
    pub address: String,
    /// The identity the client expected.
    pub expected: Identity,
    /// What the server's certificate names.
    pub presented: Presented,
}

impl UnexpectedServer {
    fn describe(&self) -> String {
        match (&self.presented, &self.expected) {
            (Presented::Identity(Identity::Agency(found)), Identity::Agency(expected)) => {
                format!(
                    "the node at {} is {found}'s, not {expected}'s",
                    self.address
                )
            }
            (presented, expected) => format!(
                "the server at {} is {presented}, not {expected}",
                self.address
            ),
        }
    }
}

/// The [`UnexpectedServer`] error somewhere in `error`'s chain of causes
/// (tonic and hyper wrap what a connector returns).
pub fn unexpected_server<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a UnexpectedServer> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<UnexpectedServer>() {
            return Some(found);
        }
        // An io::Error's source is its inner error's source, skipping the
        // inner error itself.
        if let Some(found) = e
            .downcast_ref::<io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<UnexpectedServer>())
        {
            return Some(found);
        }
        next = e.source();
    }
    None
}

/// A TLS connection to a peer, as hyper wants it.
pub type ClientIo = TokioIo<Guarded<tokio_rustls::client::TlsStream<TcpStream>>>;

/// The future a [`connector`] returns.
pub type Connecting = Pin<Box<dyn Future<Output = io::Result<ClientIo>> + Send>>;

/// A connector for `tonic::transport::Endpoint::connect_with_connector`:
/// dials the endpoint's host and port and runs the TLS handshake with
/// `config`.
pub fn connector(
    config: Arc<ClientConfig>,
) -> impl tower::Service<http::Uri, Response = ClientIo, Error = io::Error, Future = Connecting> + Clone
{
    connector_tracked(config, None)
}

/// Like [`connector`]; each connection is also registered with `live`, so
/// that it is closed should the server's certificate be revoked.
pub fn connector_tracked(
    config: Arc<ClientConfig>,
    live: Option<Arc<LiveTls>>,
) -> impl tower::Service<http::Uri, Response = ClientIo, Error = io::Error, Future = Connecting> + Clone
{
    let tls = tokio_rustls::TlsConnector::from(config);
    tower::service_fn(move |uri: http::Uri| {
        let tls = tls.clone();
        let live = live.clone();
        Box::pin(async move {
            let host = uri
                .host()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "endpoint has no host"))?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let port = uri.port_u16().unwrap_or(443);
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            let name = ServerName::try_from(host)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let mismatch = Noted::default();
            let stream = SERVER_MISMATCH
                .scope(mismatch.clone(), tls.connect(name, tcp))
                .await
                .map_err(|e| match noted(&mismatch) {
                    Some((expected, presented)) => io::Error::new(
                        io::ErrorKind::InvalidData,
                        UnexpectedServer {
                            address: uri.authority().map(|a| a.to_string()).unwrap_or_default(),
                            expected,
                            presented,
                        },
                    ),
                    None => e,
                })?;
            let guard = live.as_ref().and_then(|live| {
                let cert = stream.get_ref().1.peer_certificates()?.first()?;
                Some(live.track(cert))
            });
            Ok(TokioIo::new(Guarded::new(stream, guard)))
        }) as Connecting
    })
}

/// What a handler knows about its caller, from the verified certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The caller's identity.
    pub identity: Identity,
    /// The caller's address.
    pub remote_addr: SocketAddr,
}

/// An accepted, authenticated connection.
pub struct TlsConn {
    inner: Guarded<tokio_rustls::server::TlsStream<TcpStream>>,
    info: PeerInfo,
    _slot: Held,
}

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

impl fmt::Debug for TlsConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConn").field("info", &self.info).finish()
    }
}

impl Connected for TlsConn {
    type ConnectInfo = PeerInfo;
    fn connect_info(&self) -> PeerInfo {
        self.info.clone()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

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
fn handshake_slots(limit: usize) -> Semaphore {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_limits_beyond_a_semaphore_are_capped() {
        // Found by the configuration fuzz target: max_concurrent_handshakes
        // = 2305843009213693952 made the accept loop panic, and the node
        // accepted no connection at all.
        assert_eq!(
            handshake_slots(usize::MAX).available_permits(),
            Semaphore::MAX_PERMITS
        );
        assert_eq!(handshake_slots(0).available_permits(), 1);
        assert_eq!(handshake_slots(256).available_permits(), 256);
    }

    /// A resumed handshake skips the certificate checks, so a revoked peer
    /// could come back on an old ticket: neither side resumes.
    #[test]
    fn no_session_is_ever_resumed() {
        use rustls_pki_types::pem::PemObject;
        let fed = FederationId::new("test.tocsin").unwrap();
        let ca = crate::pki::CertificateAuthority::generate(&fed).unwrap();
        let agency = tocsin_core::AgencyId::new("TR-MIT").unwrap();
        let node = ca.issue_node(&agency, &[]).unwrap();
        let material = TlsMaterial::new(
            CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).unwrap(),
            vec![CertificateDer::from_pem_slice(node.cert_pem.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(node.key_pem.as_bytes()).unwrap(),
            &fed,
        )
        .unwrap();
        let server = server_config(&material, Arc::new(|_: &Identity| true)).unwrap();
        assert_eq!(server.send_tls13_tickets, 0);
        assert!(!server.session_storage.can_cache());
        let client = client_config(&material, Identity::Agency(agency)).unwrap();
        assert!(
            format!("{:?}", client.resumption).contains("Disabled"),
            "{:?}",
            client.resumption
        );
    }
}
