//! The identity a certificate carries: exactly one SPIFFE-style URI SAN.

use tocsin_core::{FederationId, Identity};
use x509_parser::prelude::*;

use crate::Error;

/// Reads the Tocsin identity of a DER certificate.
pub fn identity_of(der: &[u8]) -> Result<(FederationId, Identity), Error> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| Error::Certificate(format!("not an X.509 certificate: {e}")))?;
    identity_of_parsed(&cert)
}

pub(crate) fn identity_of_parsed(
    cert: &X509Certificate<'_>,
) -> Result<(FederationId, Identity), Error> {
    let san = cert
        .subject_alternative_name()
        .map_err(|e| Error::Certificate(format!("bad subjectAltName: {e}")))?
        .ok_or_else(|| Error::Certificate("no subjectAltName".into()))?;
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
        [uri] => Identity::from_uri(uri).map_err(|e| Error::Certificate(e.to_string())),
        [] => Err(Error::Certificate(
            "no spiffe:// URI in subjectAltName".into(),
        )),
        _ => Err(Error::Certificate(
            "more than one spiffe:// URI in subjectAltName".into(),
        )),
    }
}
