//! The TLS material of a node or an operator, and what is in force now.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::SignatureScheme;
use rustls::client::ResolvesClientCert;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tocsin_core::{FederationId, Identity};

use crate::Error;
use crate::files::{read_certs, read_private_key};
use crate::identity::identity_of;
use crate::live::LiveTls;

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

/// Presents the certificate and key now in force.
#[derive(Debug)]
pub(super) struct LiveKey(pub(super) Arc<LiveTls>);

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
