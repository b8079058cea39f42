//! SQL text both backends share: statement text that spells codes, built
//! once, and the conditions several queries must spell alike (each matches
//! a partial index, which SQLite and PostgreSQL alike use only when a
//! query repeats its literal condition). Plain SQL that both dialects
//! accept; `sqlite::sql` re-exports it.

use std::sync::LazyLock;

use crate::codes::{DeadlineFlag, DeliveryState, Direction, LadderStep};

/// SQL text built once, by `format!`, from the codes' enums: a statement
/// names a code literally (a partial index is used only when the query
/// repeats its literal condition, and a literal costs no binding), and the
/// text is `'static`, so a statement cache finds the statement again.
///
/// `sql!("... WHERE state = {pending}", pending = DeliveryState::Pending.code())`
macro_rules! sql {
    ($($format:tt)+) => {{
        static TEXT: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| format!($($format)+));
        TEXT.as_str()
    }};
}
pub(crate) use sql;

/// A recipient's deadline on an alert we sent is open while it is neither
/// flagged, refused, answered nor closed (`settled`: see migration 007).
/// The conditions match the partial index `deliveries_open_deadlines`.
pub(crate) static OPEN_DELIVERY_DEADLINE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "d.flag = {none} AND d.state != {rejected} AND d.settled = 0 AND d.due_at IS NOT NULL",
        none = DeadlineFlag::None.code(),
        rejected = DeliveryState::Rejected.code(),
    )
});

/// Our deadline on an alert we received, likewise (`alerts_open_deadlines`).
pub(crate) static OPEN_INBOUND_DEADLINE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "a.flag = {none} AND a.direction = {inbound} AND a.settled = 0 AND a.due_at IS NOT NULL",
        none = DeadlineFlag::None.code(),
        inbound = Direction::Inbound.code(),
    )
});

/// A ladder step is open while the delivery is not refused, not answered
/// and its alert not closed (`settled`, kept by triggers; see migration
/// 007), and the ladder has a rung left (`deliveries_next_step`).
pub(crate) static OPEN_STEP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "d.next_step_at IS NOT NULL AND d.ladder < {lapsed} AND d.state != {rejected} AND d.settled = 0",
        lapsed = LadderStep::Lapsed.code(),
        rejected = DeliveryState::Rejected.code(),
    )
});

/// Sent alerts awaiting an answer: open, and some delivery neither refused
/// nor settled (`list_awaiting`).
pub(crate) static AWAITING: LazyLock<String> = LazyLock::new(|| {
    format!(
        "a.settled = 0 AND a.direction = {outbound} AND EXISTS (
         SELECT 1 FROM deliveries d WHERE d.alert_id = a.id AND d.state != {rejected} AND d.settled = 0)",
        outbound = Direction::Outbound.code(),
        rejected = DeliveryState::Rejected.code(),
    )
});

/// Received alerts this agency owes an answer (`list_owed`).
pub(crate) static OWED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "a.settled = 0 AND a.direction = {inbound}",
        inbound = Direction::Inbound.code()
    )
});

/// Open alerts past a deadline, either way (`list_overdue`).
pub(crate) static OVERDUE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "a.settled = 0 AND ((a.direction = {outbound} AND EXISTS (
         SELECT 1 FROM deliveries d WHERE d.alert_id = a.id AND d.flag != {none} AND d.settled = 0))
      OR (a.direction = {inbound} AND a.flag != {none}))",
        outbound = Direction::Outbound.code(),
        inbound = Direction::Inbound.code(),
        none = DeadlineFlag::None.code(),
    )
});
