//! Mutual TLS: TLS 1.3 only, client certificates required, identities from
//! certificates alone.
//!
//! tonic's built-in TLS offers one client CA and nothing else; Tocsin owns
//! the rustls configuration instead, so it can apply its access policy in
//! the handshake and carry the verified identity into the handlers.
//!
//! Every refused session is counted and logged with its reason
//! ([`crate::refusals`]); a client that reaches a server other than the
//! one it expected fails with an [`UnexpectedServer`] error naming both.
//! rustls carries only its own error types back from a verifier, and the
//! TLS alert it sends follows from them, so the verifiers keep returning
//! the errors they always did and note what they found in a slot of the
//! task running the handshake ([`Acceptor`], [`connector`]).

//!
//! Its parts: [`material`] (the CA, a certificate chain and its key, and
//! the material now in force), [`server`] (the server configuration and
//! the client-certificate verifier that applies the access policy),
//! [`client`] (the client configuration, the verifier that checks a server
//! is the agency expected, and the connector), [`conn`] (an accepted
//! connection and the identity it carries), [`per_identity`] (counts held
//! per identity) and [`acceptor`] (concurrent, bounded handshakes).

pub mod acceptor;
pub mod client;
pub mod conn;
pub mod material;
pub mod per_identity;
pub mod server;
#[cfg(test)]
mod tests;

pub use acceptor::{Acceptor, AcceptorLimits, SessionHook};
pub use client::{
    ClientIo, Connecting, Presented, UnexpectedServer, client_config, connector, connector_tracked,
    live_client_config, unexpected_server,
};
pub use conn::{PeerInfo, TlsConn};
pub use material::TlsMaterial;
pub use per_identity::{Held, PerIdentity};
pub use server::{AccessPolicy, live_server_config, server_config};

use std::sync::{Arc, Mutex};

use tocsin_core::Identity;

use crate::refusals::Refusal;

/// What a verifier found, for the task whose handshake called it.
type Noted<T> = Arc<Mutex<Option<T>>>;

tokio::task_local! {
    /// Why the client verifier refused the client's certificate.
    static CLIENT_REFUSAL: Noted<(Refusal, String)>;
    /// Whom the server verifier expected, and what the server presented.
    static SERVER_MISMATCH: Noted<(Identity, Presented)>;
}

/// Notes `value` for the handshake's task, if it has a slot for it.
fn note<T: 'static>(key: &'static tokio::task::LocalKey<Noted<T>>, value: T) {
    let _ = key.try_with(|slot| *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(value));
}

/// Takes what was noted in `slot`.
fn noted<T>(slot: &Noted<T>) -> Option<T> {
    slot.lock().unwrap_or_else(|e| e.into_inner()).take()
}
