//! Tocsin's domain: what an agency, an alert and a federation are, with no
//! gRPC, TLS or SQL in sight.
//!
//! - [`ids`]: agency and alert identifiers, and the SPIFFE-style identities
//!   that certificates carry.
//! - [`alert`]: the validated [`Alert`](alert::Alert) and its parts, with
//!   conversions from and to the generated `tocsin.v1` types; a conversion
//!   error names the field that is missing or bad.
//! - [`ack`]: the validated acknowledgement a recipient signs.
//! - [`hit`]: what a partner's screen saw that matched a watchlist entry,
//!   carried by a hit report (an alert to the entry's owner).
//! - [`federation`]: the federation file (`federation.toml`): member
//!   agencies, endpoints, deadline policy.
//! - [`envelope`]: the pre-authentication encoding signed in envelopes and
//!   the digest that receipts carry.
//! - [`subject`]: match keys that link alerts about the same subject.
//! - [`watchlist`]: watchlist entries and the signed changes of an owner's
//!   list that other nodes pull, and who may read each change.
//! - [`clock`]: the source of time, injectable so tests can control it.
//! - [`toml_file`]: reading a TOML file into a typed value, with errors
//!   that name a missing field's table.

#![forbid(unsafe_code)]

pub mod ack;
pub mod alert;
pub mod clock;
pub mod envelope;
pub mod federation;
pub mod hit;
pub mod ids;
pub mod subject;
mod time;
pub mod toml_file;
pub mod watchlist;

pub use alert::{Alert, ValidationError};
pub use clock::{Clock, Pace, ScaledClock, SystemClock};
pub use federation::Federation;
pub use ids::{AgencyId, AlertId, FederationId, Identity};
pub use time::{from_timestamp, human_duration, time_of, to_timestamp};
