//! The client side: TLS 1.3, and a server that must be the agency
//! expected; the connector tonic dials with.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;

use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tocsin_core::{FederationId, Identity};
use tokio::net::TcpStream;

use super::material::{LiveKey, TlsMaterial};
use super::{Noted, SERVER_MISMATCH, note, noted};
use crate::Error;
use crate::identity::read_identity;
use crate::live::{Guarded, LiveTls};
use crate::revocation::SharedRevocations;

/// Checks that a server is the expected identity of the federation,
/// whatever host name it was reached by (SPIFFE-style).
struct IdentityServerVerifier {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
    federation: FederationId,
    expected: Identity,
    revocations: SharedRevocations,
    /// Where the server's certificate expiry is noted.
    live: Arc<LiveTls>,
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
                self.live.note_peer(&identity, end_entity);
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
        live: live.clone(),
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
