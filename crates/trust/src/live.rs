//! A node's TLS trust, kept in step with the files on disk.
//!
//! [`LiveTls`] holds the node's certificate and key and the revocations in
//! force. A watcher re-reads the files every few seconds: a renewed
//! certificate and key are used for every new connection, in both
//! directions; a new CRL refuses the revoked certificates in new
//! handshakes and closes the connections they already hold. Nothing needs
//! a restart. A change that does not check out (a key that does not match
//! its certificate, a CRL the CA did not sign) is refused with a warning
//! and the node goes on with what it had.

use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::task::AtomicWaker;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tocsin_core::{FederationId, Identity};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;

use crate::Error;
use crate::revocation::{Revocations, SharedRevocations, serial_of};
use crate::tls::TlsMaterial;

/// The files a node's TLS trust is reloaded from.
#[derive(Debug, Clone)]
pub struct TlsSource {
    /// The node's certificate chain.
    pub cert: PathBuf,
    /// The node's private key.
    pub key: PathBuf,
    /// CRLs signed by the federation CA.
    pub crls: Vec<PathBuf>,
}

/// The files of a [`TlsSource`], as read.
struct Files {
    cert: Vec<u8>,
    key: Vec<u8>,
    crls: Vec<Vec<u8>>,
}

/// What is in force now.
pub(crate) struct State {
    pub(crate) key: Arc<CertifiedKey>,
    pub(crate) client_verifier: Arc<dyn ClientCertVerifier>,
}

/// A node's certificate, key and revocations, reloaded when their files
/// change.
pub struct LiveTls {
    pub(crate) federation: FederationId,
    identity: Identity,
    pub(crate) ca: CertificateDer<'static>,
    /// The federation CA, as rustls's verifiers take it.
    pub(crate) roots: Arc<rustls::RootCertStore>,
    pub(crate) provider: Arc<CryptoProvider>,
    source: Option<TlsSource>,
    state: RwLock<Arc<State>>,
    revocations: SharedRevocations,
    /// A hash of the files (contents, key mode) last applied.
    seen: Mutex<u64>,
    /// The last reload error reported, so it is not repeated every turn.
    last_error: Mutex<Option<String>>,
    connections: Mutex<Vec<Weak<ConnGuard>>>,
    /// When each peer's certificate expires, as it last presented it.
    peers: Mutex<std::collections::HashMap<Identity, chrono::DateTime<chrono::Utc>>>,
}

impl fmt::Debug for LiveTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveTls")
            .field("identity", &self.identity)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl LiveTls {
    /// Trust that never changes: `material`, nothing revoked.
    pub fn fixed(material: &TlsMaterial) -> Result<Arc<Self>, Error> {
        Self::build(material, None, Revocations::none())
    }

    /// Trust reloaded from `source`, starting from `material` (which must
    /// have been loaded from the same files) and the CRLs it names.
    pub fn watched(material: &TlsMaterial, source: TlsSource) -> Result<Arc<Self>, Error> {
        let revocations = Revocations::load(&source.crls, material.ca.as_ref())?;
        let (fingerprint, _) = Self::read_source(&source);
        let live = Self::build(material, Some(source), revocations)?;
        // What was just loaded; a change in between is picked up at the
        // first turn, since the files are read again then.
        *live.seen.lock().unwrap_or_else(|e| e.into_inner()) = fingerprint;
        Ok(live)
    }

    fn build(
        material: &TlsMaterial,
        source: Option<TlsSource>,
        revocations: Revocations,
    ) -> Result<Arc<Self>, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(material.ca.clone())?;
        let roots = Arc::new(roots);
        let state = state(
            material.chain.clone(),
            material.key.clone_key(),
            &roots,
            &revocations,
            &provider,
        )?;
        Ok(Arc::new(Self {
            federation: material.federation.clone(),
            identity: material.identity.clone(),
            ca: material.ca.clone(),
            roots,
            provider,
            source,
            state: RwLock::new(Arc::new(state)),
            revocations: SharedRevocations::new(revocations),
            seen: Mutex::new(0),
            last_error: Mutex::new(None),
            connections: Mutex::default(),
            peers: Mutex::default(),
        }))
    }

    /// Notes the certificate a peer presented in a handshake this trust
    /// accepted (a client's, or the server's this node dialled), for its
    /// expiry. One that cannot be read is not noted: the handshake already
    /// parsed it, so that does not happen.
    pub(crate) fn note_peer(&self, identity: &Identity, certificate: &CertificateDer<'_>) {
        if let Ok(expires) = crate::identity::not_after(certificate.as_ref()) {
            self.peers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(identity.clone(), expires);
        }
    }

    /// When each peer's certificate expires, as it presented it in its
    /// last handshake with this node since it started; a peer not heard
    /// from since is absent.
    pub fn peer_certificates(
        &self,
    ) -> std::collections::HashMap<Identity, chrono::DateTime<chrono::Utc>> {
        self.peers.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The identity this trust presents.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The revocations in force, shared (for envelope verification).
    pub fn revocations(&self) -> SharedRevocations {
        self.revocations.clone()
    }

    pub(crate) fn state(&self) -> Arc<State> {
        self.state.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The node's certificate chain now presented, leaf first.
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.state().key.cert.clone()
    }

    /// The files' contents (and the key's permissions), read once.
    fn read_source(source: &TlsSource) -> (u64, Result<Files, Error>) {
        let mut h = DefaultHasher::new();
        let read = |path: &PathBuf| {
            std::fs::read(path).map_err(|cause| Error::Io {
                path: path.display().to_string(),
                cause,
            })
        };
        let cert = read(&source.cert);
        let key = read(&source.key);
        let crls: Vec<_> = source.crls.iter().map(read).collect();
        cert.as_ref().ok().hash(&mut h);
        key.as_ref().ok().hash(&mut h);
        for c in &crls {
            c.as_ref().ok().hash(&mut h);
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(&source.key)
                .ok()
                .map(|m| m.permissions().mode())
                .hash(&mut h);
        }
        let files = (|| {
            Ok(Files {
                cert: cert?,
                key: key?,
                crls: crls.into_iter().collect::<Result<_, _>>()?,
            })
        })();
        (h.finish(), files)
    }

    /// Re-reads the files if they changed since they were last applied.
    /// Returns whether anything new is in force; an error means the change
    /// was refused and the previous trust stays (it is tried again at the
    /// next turn, and reported again only if the error changes).
    pub fn reload(&self) -> Result<bool, Error> {
        let Some(source) = &self.source else {
            return Ok(false);
        };
        let (fingerprint, files) = Self::read_source(source);
        if *self.seen.lock().unwrap_or_else(|e| e.into_inner()) == fingerprint {
            return Ok(false);
        }
        let state = files.and_then(|files| self.check(source, files));
        let (state, revocations) = match state {
            Ok(s) => s,
            Err(e) => {
                let message = e.to_string();
                let mut last = self.last_error.lock().unwrap_or_else(|e| e.into_inner());
                if last.as_deref() == Some(message.as_str()) {
                    return Ok(false);
                }
                *last = Some(message);
                return Err(e);
            }
        };
        let revoked = revocations.len();
        *self.state.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(state);
        self.revocations.set(revocations);
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = fingerprint;
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let closed = self.close_revoked();
        tracing::info!(identity = %self.identity, revoked, closed, "TLS certificate and CRLs reloaded");
        Ok(true)
    }

    /// Checks files just read: a certificate of this identity, chaining to
    /// the CA and not revoked, its key (mode 0600, matching), CRLs the CA
    /// signed.
    fn check(&self, source: &TlsSource, files: Files) -> Result<(State, Revocations), Error> {
        use crate::files::{check_key_permissions, parse_pem_blocks, parse_private_key};
        check_key_permissions(&source.key)?;
        let chain = parse_pem_blocks(&files.cert, &source.cert, "certificate", "CERTIFICATE")?;
        let key = parse_private_key(&files.key, &source.key)?;
        let material = TlsMaterial::new(self.ca.clone(), chain, key, &self.federation)?;
        if material.identity != self.identity {
            return Err(Error::Certificate(format!(
                "{} is now {}'s certificate, not {}'s",
                source.cert.display(),
                material.identity,
                self.identity
            )));
        }
        let mut crls = Vec::new();
        for (path, data) in source.crls.iter().zip(&files.crls) {
            crls.extend(parse_pem_blocks(data, path, "CRL", "X509 CRL")?);
        }
        let revocations = Revocations::from_der(crls, self.ca.as_ref())?;
        // The new certificate must be one peers will accept.
        let leaf = &material.chain[0];
        let parsed = rustls::server::ParsedCertificate::try_from(leaf)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            &material.chain[1..],
            rustls_pki_types::UnixTime::now(),
            self.provider.signature_verification_algorithms.all,
        )?;
        if revocations.is_revoked(leaf.as_ref()) {
            return Err(Error::Certificate(format!(
                "{} is revoked by the CRL",
                source.cert.display()
            )));
        }
        let state = state(
            material.chain,
            material.key,
            &self.roots,
            &revocations,
            &self.provider,
        )?;
        Ok((state, revocations))
    }

    /// Reloads every `interval` until `shutdown` turns true.
    pub fn watch(
        self: &Arc<Self>,
        interval: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let live = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = shutdown.changed() => return,
                }
                let this = live.clone();
                match tokio::task::spawn_blocking(move || this.reload()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "TLS files changed but were refused; keeping the previous ones")
                    }
                    Err(e) => tracing::error!(error = %e, "TLS reload failed"),
                }
            }
        })
    }

    /// Registers a connection whose peer presented `cert`, so that it is
    /// closed should that certificate be revoked.
    pub fn track(&self, cert: &CertificateDer<'_>) -> Arc<ConnGuard> {
        let guard = Arc::new(ConnGuard {
            serial: serial_of(cert.as_ref()).unwrap_or_default(),
            closed: AtomicBool::new(false),
            read: AtomicWaker::new(),
            write: AtomicWaker::new(),
        });
        let mut conns = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        // Forget the connections gone since, now and then.
        if conns.len() >= 64 && conns.len().is_power_of_two() {
            conns.retain(|w| w.strong_count() > 0);
        }
        // Registered first, checked second, both under the lock: a reload
        // sets the new revocations before it walks this list, so either
        // this check sees them or that walk sees this connection.
        conns.push(Arc::downgrade(&guard));
        if self.revocations.current().serial_is_revoked(&guard.serial) {
            guard.close();
        }
        drop(conns);
        guard
    }

    /// Closes the open connections of revoked certificates; returns how
    /// many.
    fn close_revoked(&self) -> usize {
        let revocations = self.revocations.current();
        let mut conns = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        conns.retain(|w| w.strong_count() > 0);
        let mut closed = 0;
        for guard in conns.iter().filter_map(Weak::upgrade) {
            if !guard.is_closed() && revocations.serial_is_revoked(&guard.serial) {
                guard.close();
                closed += 1;
            }
        }
        closed
    }
}

fn state(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    roots: &Arc<rustls::RootCertStore>,
    revocations: &Revocations,
    provider: &Arc<CryptoProvider>,
) -> Result<State, Error> {
    let key = Arc::new(CertifiedKey::from_der(chain, key, provider)?);
    let mut builder = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone());
    if !revocations.crls().is_empty() {
        builder = builder
            .with_crls(revocations.crls().iter().cloned())
            .only_check_end_entity_revocation();
    }
    Ok(State {
        key,
        client_verifier: builder.build()?,
    })
}

/// Lets a connection be closed from outside, when its peer's certificate
/// is revoked.
#[derive(Debug)]
pub struct ConnGuard {
    serial: Vec<u8>,
    closed: AtomicBool,
    read: AtomicWaker,
    write: AtomicWaker,
}

impl ConnGuard {
    /// Closes the connection: its next read or write fails.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.read.wake();
        self.write.wake();
    }

    /// Whether the connection was closed.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn check(&self, waker: &AtomicWaker, cx: &Context<'_>) -> io::Result<()> {
        if !self.is_closed() {
            waker.register(cx.waker());
        }
        if self.is_closed() {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "peer certificate revoked",
            ));
        }
        Ok(())
    }
}

/// A stream that fails once its guard is closed.
#[derive(Debug)]
pub struct Guarded<S> {
    inner: S,
    guard: Option<Arc<ConnGuard>>,
}

impl<S> Guarded<S> {
    /// Wraps `inner`; with no guard, it is never closed from outside.
    pub fn new(inner: S, guard: Option<Arc<ConnGuard>>) -> Self {
        Self { inner, guard }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(g) = &self.guard {
            g.check(&g.read, cx)?;
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(g) = &self.guard {
            g.check(&g.write, cx)?;
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(g) = &self.guard {
            g.check(&g.write, cx)?;
        }
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
        if let Some(g) = &self.guard {
            g.check(&g.write, cx)?;
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
