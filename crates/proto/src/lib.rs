//! The `tocsin.v1` protocol, generated at build time from `proto/tocsin/v1/`.
//!
//! Generated types stay at the edge: the domain types live in `tocsin-core`,
//! which converts from these with errors that name the missing or bad field.
//! [`FILE_DESCRIPTOR_SET`] feeds gRPC server reflection.

#![forbid(unsafe_code)]

/// Generated protobuf messages and gRPC stubs for `tocsin.v1`.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod pb {
    tonic::include_proto!("tocsin.v1");
}

pub mod wire;

/// The watchlist services as the node serves them: generated from the same
/// `watchlist.proto` as [`pb`], with the same messages, except that the
/// desk's screens answer with the [`wire`] forms. Its clients decode those
/// forms too, leaving each match's entry encoded.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod desk {
    include!(concat!(env!("OUT_DIR"), "/desk/tocsin.v1.rs"));
}

/// The encoded file descriptor set of `tocsin.v1`, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("tocsin_v1_descriptor");

/// The payload type of an envelope that carries an [`pb::Alert`].
pub const ALERT_PAYLOAD_TYPE: &str = "application/vnd.tocsin.alert.v1+proto";
/// The payload type of an envelope that carries a [`pb::Receipt`].
pub const RECEIPT_PAYLOAD_TYPE: &str = "application/vnd.tocsin.receipt.v1+proto";
/// The payload type of an envelope that carries a [`pb::Acknowledgement`].
pub const ACK_PAYLOAD_TYPE: &str = "application/vnd.tocsin.ack.v1+proto";
/// The payload type of an envelope that carries a [`pb::Reminder`].
pub const REMINDER_PAYLOAD_TYPE: &str = "application/vnd.tocsin.reminder.v1+proto";
/// The payload type of an envelope that carries a [`pb::EscalationNotice`].
pub const NOTICE_PAYLOAD_TYPE: &str = "application/vnd.tocsin.notice.v1+proto";

/// The response header in which a node gives its clock reading when it
/// answers, in milliseconds since the Unix epoch (for example
/// `tocsin-time: 1764583200123`). Callers use it to measure how far their
/// clocks are apart; nothing depends on it, and a node that does not send
/// it is simply not measured.
pub const TIME_HEADER: &str = "tocsin-time";

/// The most alerts a `DeliverBatch` request may hold.
pub const MAX_DELIVER_BATCH: usize = 64;

/// The payload type of an envelope that carries a [`pb::WatchlistChange`].
pub const WATCHLIST_CHANGE_PAYLOAD_TYPE: &str = "application/vnd.tocsin.watchlist-change.v1+proto";

/// The most changes a `PullChanges` response holds: a page of entries
/// stays well under the message limit.
pub const MAX_WATCHLIST_PAGE: usize = 1000;

/// The most bytes of changes a `PullChanges` response holds (at least one
/// change whatever its size): half the default message limit, so that a
/// page of large entries stays under any peer's limit.
pub const MAX_WATCHLIST_PAGE_BYTES: usize = 512 * 1024;
