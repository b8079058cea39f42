//! Trust in Tocsin: where certificates come from and how they become
//! identities. This is the one crate that configures rustls.
//!
//! - [`pki`]: issues the federation CA, agency node and signing
//!   certificates, and operator certificates (rcgen); keys are written 0600.
//! - [`identity`]: reads the SPIFFE-style identity a certificate carries.
//! - [`tls`]: TLS 1.3-only server and client configurations. The server's
//!   client-certificate verifier applies an access policy, so a certificate
//!   from another CA, of an unknown agency or of another agency's operator
//!   never gets a session; [`tls::Acceptor`] turns accepted connections into
//!   streams that carry the verified [`PeerInfo`](tls::PeerInfo) into gRPC
//!   handlers; [`tls::connector`] dials a peer and checks that it is the
//!   agency expected.
//! - [`refusals`]: why a node refused a TLS session, counted by reason and
//!   logged with a limit per source address.
//! - [`receipt`], [`ack`], [`reminder`], [`notice`]: the one place each
//!   signed record is made and the one place it is checked (signer, what
//!   it is about, for whom), each against an `Expected`, with a typed error.
//! - [`signing`]: DSSE-style envelope signatures with Ed25519 keys whose
//!   certificates the federation CA issued, so any holder of the CA
//!   certificate can check any stored envelope later.

#![forbid(unsafe_code)]

pub mod ack;
mod error;
pub mod files;
pub mod identity;
pub mod live;
pub mod notice;
pub mod pki;
pub mod receipt;
pub mod refusals;
pub mod reminder;
pub mod revocation;
pub mod signing;
#[cfg(test)]
mod testing;
pub mod tls;

pub use error::Error;
pub use signing::{Signer, Verifier};

/// Installs the process-wide rustls crypto provider (ring). Call once, early
/// in `main`; later calls are harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
