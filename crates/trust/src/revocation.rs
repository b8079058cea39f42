//! Certificate revocation: CRLs signed by the federation CA.
//!
//! A node reads the CRL files its configuration names, checks that the
//! federation CA signed each, and refuses any certificate whose serial
//! number they list: in the TLS handshake (both directions), on the
//! connections already open, and on the envelopes it receives.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls_pki_types::CertificateRevocationListDer;
use x509_parser::prelude::*;

use crate::Error;

/// A serial number as compared: big-endian, without leading zero bytes.
pub(crate) fn normalise(serial: &[u8]) -> Vec<u8> {
    let start = serial.iter().position(|b| *b != 0).unwrap_or(serial.len());
    serial[start..].to_vec()
}

/// The serial number of a DER certificate, if it parses.
pub(crate) fn serial_of(cert_der: &[u8]) -> Option<Vec<u8>> {
    X509Certificate::from_der(cert_der)
        .ok()
        .map(|(_, c)| normalise(c.raw_serial()))
}

/// The certificates revoked by a set of CRLs.
#[derive(Debug, Default, Clone)]
pub struct Revocations {
    serials: HashSet<Vec<u8>>,
    crls: Vec<CertificateRevocationListDer<'static>>,
}

impl Revocations {
    /// Nothing revoked (no CRL configured).
    pub fn none() -> Self {
        Self::default()
    }

    /// Reads the CRL files at `paths`; each must be signed by the CA
    /// certificate `ca_der`.
    pub fn load(paths: &[PathBuf], ca_der: &[u8]) -> Result<Self, Error> {
        let mut crls = Vec::new();
        for path in paths {
            crls.extend(read_crls(path)?);
        }
        Self::from_der(crls, ca_der)
    }

    /// Checks DER CRLs against the CA certificate `ca_der`.
    pub fn from_der(
        crls: Vec<CertificateRevocationListDer<'static>>,
        ca_der: &[u8],
    ) -> Result<Self, Error> {
        let (_, ca) = X509Certificate::from_der(ca_der)
            .map_err(|e| Error::unreadable("CA certificate", e))?;
        let mut serials = HashSet::new();
        for der in &crls {
            let (_, crl) = parse_x509_crl(der.as_ref()).map_err(|e| Error::unreadable("CRL", e))?;
            if crl.issuer() != ca.subject() {
                return Err(Error::Certificate(format!(
                    "CRL issued by {}, not by the federation CA",
                    crl.issuer()
                )));
            }
            crl.verify_signature(ca.public_key()).map_err(|_| {
                Error::Certificate("CRL signature is not the federation CA's".into())
            })?;
            for revoked in crl.iter_revoked_certificates() {
                serials.insert(normalise(revoked.raw_serial()));
            }
        }
        Ok(Self { serials, crls })
    }

    /// Whether the certificate with this serial number is revoked.
    pub fn serial_is_revoked(&self, serial: &[u8]) -> bool {
        !self.serials.is_empty() && self.serials.contains(&normalise(serial))
    }

    /// Whether this DER certificate is revoked.
    pub fn is_revoked(&self, cert_der: &[u8]) -> bool {
        !self.serials.is_empty() && serial_of(cert_der).is_some_and(|s| self.serials.contains(&s))
    }

    /// How many certificates are revoked.
    pub fn len(&self) -> usize {
        self.serials.len()
    }

    /// Whether nothing is revoked.
    pub fn is_empty(&self) -> bool {
        self.serials.is_empty()
    }

    /// The CRLs, for rustls's verifier.
    pub fn crls(&self) -> &[CertificateRevocationListDer<'static>] {
        &self.crls
    }
}

/// Reads every CRL in a PEM file.
pub fn read_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, Error> {
    crate::files::read_pem_blocks(path, "CRL", "X509 CRL")
}

/// The revocations in force, shared by everything that checks
/// certificates, and replaced as a whole when the CRL files change.
#[derive(Debug, Clone, Default)]
pub struct SharedRevocations(Arc<RwLock<Arc<Revocations>>>);

impl SharedRevocations {
    /// Starts with `revocations`.
    pub fn new(revocations: Revocations) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(revocations))))
    }

    /// The revocations now in force.
    pub fn current(&self) -> Arc<Revocations> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the revocations.
    pub fn set(&self, revocations: Revocations) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(revocations);
    }
}
