//! A Tocsin agency node.
//!
//! - [`config`]: the node's TOML configuration.
//! - [`serve`]: runs a node on a bound listener until a shutdown future
//!   resolves: the mutual-TLS acceptor, the federation and operator gRPC
//!   services, health and reflection, the outbox.
//! - `domain` (private): the use cases, one module each (submitting,
//!   receiving, acknowledging, the ladder, subjects, queries, the event
//!   stream); the handlers in `service` are thin wrappers around it.
//! - `admission` (private): per-peer concurrency limits and bounded queues.
//! - `outbox` (private): per-peer delivery workers with backoff.
//! - `tracker` (private): wakes when a deadline or ladder step falls, and
//!   has the domain take what is due.
//! - `skew` (private): measures each peer's clock against ours on every
//!   call, and warns about those beyond tolerance.
//! - `metrics` (private): the optional Prometheus endpoint.
//! - `web` (private): the optional web desk, a thin HTML and server-sent
//!   events adapter over the domain, on loopback behind a per-start token.
//! - [`web_access`]: that token's guard, shared with the demo's federation
//!   view (`tocsin-fedview`).
//! - `shutdown` (private): the one stop signal every component watches,
//!   and the tasks waited for when the node drains.
//! - `views` (private): stored rows as domain views; `service::convert`
//!   turns them into wire records.
//! - `watchlist` (private): publishing this agency's watchlist, serving
//!   its log to peers, and pulling every other owner's.
//! - `screening` (private): the index of every entry held, kept current
//!   after each watchlist commit, that operators screen a person against.

#![forbid(unsafe_code)]

mod admission;
pub mod config;
mod domain;
mod error;
mod failover;
mod metrics;
mod outbox;
mod screening;
mod server;
mod service;
mod shutdown;
mod skew;
mod tracker;
mod views;
mod watchlist;
mod web;
pub mod web_access;

pub use config::NodeConfig;
pub use domain::outbound_row;
pub use domain::wording::OUTCOME_WORDS;
pub use error::Error;
pub use screening::{MAX_SCREEN_LIMIT, screen_options};
pub use server::{NodeOptions, StartError, serve};
pub use watchlist::own_watchlist_forms;
pub use web::TOKEN_FILE as WEB_TOKEN_FILE;
