use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tocsin_core::FederationId;
use tokio::sync::Semaphore;

use super::acceptor::handshake_slots;
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
