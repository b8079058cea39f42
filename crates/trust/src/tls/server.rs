//! The server side: TLS 1.3, a client certificate required, the access
//! policy applied in the handshake.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, UnixTime};
use tocsin_core::{FederationId, Identity};

use super::material::{LiveKey, TlsMaterial};
use super::{CLIENT_REFUSAL, note};
use crate::Error;
use crate::identity::{IdentityError, read_identity};
use crate::live::LiveTls;
use crate::refusals::Refusal;

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
