//! What the unit tests of signed records share: a federation CA, two
//! agencies' signers and a verifier.

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tocsin_core::{AgencyId, FederationId};

use crate::pki::CertificateAuthority;
use crate::{Signer, Verifier};

/// FR-DGSI's and BE-VSSE's signers, and a verifier of their federation.
pub(crate) fn two_signers() -> (Signer, Signer, Verifier) {
    let fed = FederationId::new("test.tocsin").unwrap();
    let ca = CertificateAuthority::generate(&fed).unwrap();
    let signer = |id: &str| {
        let issued = ca.issue_signing(&AgencyId::new(id).unwrap()).unwrap();
        Signer::from_pem(&issued.cert_pem, &issued.key_pem, &fed).unwrap()
    };
    let ca_der = CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).unwrap();
    let verifier = Verifier::new(ca_der.as_ref(), &fed).unwrap();
    (signer("FR-DGSI"), signer("BE-VSSE"), verifier)
}
