//! The identity a certificate carries: exactly one SPIFFE-style URI SAN.

use tocsin_core::{FederationId, Identity};
use x509_parser::prelude::*;

use crate::Error;

/// Why a certificate carries no usable identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The bytes are not an X.509 certificate.
    #[error("not an X.509 certificate: {0}")]
    NotX509(String),
    /// The subjectAltName extension cannot be read.
    #[error("bad subjectAltName: {0}")]
    BadSubjectAltName(String),
    /// No subjectAltName at all.
    #[error("no subjectAltName")]
    NoSubjectAltName,
    /// A subjectAltName without a `spiffe://` URI: no agency identity.
    #[error("no spiffe:// URI in subjectAltName")]
    NoUri,
    /// More than one `spiffe://` URI: which identity is meant is unclear.
    #[error("more than one spiffe:// URI in subjectAltName")]
    SeveralUris,
    /// One `spiffe://` URI that does not name a Tocsin identity.
    #[error("{0}")]
    BadUri(String),
}

impl From<IdentityError> for Error {
    fn from(e: IdentityError) -> Self {
        Error::Certificate(e.to_string())
    }
}

/// Reads the Tocsin identity of a DER certificate.
pub fn identity_of(der: &[u8]) -> Result<(FederationId, Identity), Error> {
    Ok(read_identity(der)?)
}

/// When a DER certificate expires (its `notAfter`), for operators to see
/// how long this node's certificates have left.
pub fn not_after(der: &[u8]) -> Result<chrono::DateTime<chrono::Utc>, Error> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| Error::Certificate(e.to_string()))?;
    let at = cert.validity().not_after.timestamp();
    chrono::DateTime::from_timestamp(at, 0)
        .ok_or_else(|| Error::Certificate(format!("notAfter {at} is out of range")))
}

/// Like [`identity_of`], saying exactly why there is no identity.
pub fn read_identity(der: &[u8]) -> Result<(FederationId, Identity), IdentityError> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| IdentityError::NotX509(e.to_string()))?;
    read_identity_parsed(&cert)
}

pub(crate) fn identity_of_parsed(
    cert: &X509Certificate<'_>,
) -> Result<(FederationId, Identity), Error> {
    Ok(read_identity_parsed(cert)?)
}

fn read_identity_parsed(
    cert: &X509Certificate<'_>,
) -> Result<(FederationId, Identity), IdentityError> {
    let san = cert
        .subject_alternative_name()
        .map_err(|e| IdentityError::BadSubjectAltName(e.to_string()))?
        .ok_or(IdentityError::NoSubjectAltName)?;
    let uris: Vec<&str> = san
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) if u.starts_with("spiffe://") => Some(*u),
            _ => None,
        })
        .collect();
    match uris.as_slice() {
        [uri] => Identity::from_uri(uri).map_err(|e| IdentityError::BadUri(e.to_string())),
        [] => Err(IdentityError::NoUri),
        _ => Err(IdentityError::SeveralUris),
    }
}
