//! The codes the store keeps in its integer columns, each an enum, in one
//! place: directions, delivery states, ladder steps, event kinds, outbox
//! message kinds, deadline flags and alert statuses. Event kinds, flags,
//! statuses and ladder steps are numbered as the protocol numbers them
//! (`tocsin.v1.EventKind`, `tocsin.v1.DeadlineFlag`, ...), so a stored
//! value goes out on the wire as it is.
//!
//! Each enum converts to SQL ([`ToSql`]) and back ([`FromSql`]); a stored
//! code that names no value reads as [`UnknownCode`], which the store
//! reports as [`Error::Corrupt`](crate::Error::Corrupt). SQL text that
//! must name a code literally (partial indexes are matched on literals)
//! is built from [`code`](Direction::code) once, never typed as a number.

use rusqlite::ToSql;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};

/// A stored code that names no value of its enum: the database holds what
/// this version of the store never wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} code {code}")]
pub struct UnknownCode {
    /// The enum the code was read as.
    pub what: &'static str,
    /// The code found.
    pub code: i64,
}

/// Declares a code enum with its `code`, `from_code` and SQL conversions.
macro_rules! codes {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $value:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant = $value,)+
        }

        impl $name {
            /// Every value, in code order.
            pub const ALL: &[$name] = &[$($name::$variant,)+];

            /// The code stored for it.
            pub const fn code(self) -> i64 {
                self as i64
            }

            /// The value a stored code stands for, if any.
            pub fn from_code(code: i64) -> Option<Self> {
                match code {
                    $($value => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// The value a stored code stands for, or what is wrong with it.
            pub fn decode(code: i64) -> Result<Self, UnknownCode> {
                Self::from_code(code).ok_or(UnknownCode {
                    what: stringify!($name),
                    code,
                })
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.code()))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let code = i64::column_result(value)?;
                Self::decode(code).map_err(|e| FromSqlError::Other(Box::new(e)))
            }
        }
    };
}

codes! {
    /// Which way an alert went, seen from this node, numbered as
    /// `tocsin.v1.Direction`.
    Direction {
        /// This agency sent it.
        Outbound = 1,
        /// This agency received it.
        Inbound = 2,
    }
}

codes! {
    /// Where an outgoing alert stands with one recipient, or an outbox
    /// message with its peer (`deliveries.state`, `messages.state`).
    DeliveryState {
        /// Not yet receipted (for a message: not yet accepted); still tried.
        Pending = 1,
        /// Receipted (accepted).
        Delivered = 2,
        /// Refused by the peer for good; no longer tried.
        Rejected = 3,
    }
}

codes! {
    /// The escalation rung a delivery has reached, numbered as
    /// `tocsin.v1.LadderStep`.
    LadderStep {
        /// No step taken yet.
        None = 0,
        /// A reminder was sent (or could not be).
        Reminded = 1,
        /// Escalated: a reminder one precedence higher, observers told.
        Escalated = 2,
        /// The ladder ran out: the last rung.
        Lapsed = 3,
    }
}

impl LadderStep {
    /// The rung after this one; none after [`LadderStep::Lapsed`].
    pub fn next(self) -> Option<Self> {
        Self::from_code(self.code() + 1)
    }
}

codes! {
    /// What an event records, numbered as `tocsin.v1.EventKind`.
    EventKind {
        /// This agency sent an alert.
        Submitted = 1,
        /// This agency received an alert.
        Received = 2,
        /// A recipient receipted our alert.
        Delivered = 3,
        /// A peer refused our alert, or our acknowledgement, for good.
        Rejected = 4,
        /// An acknowledgement, ours or a recipient's.
        Acknowledged = 5,
        /// A deadline passed without an acknowledgement.
        Overdue = 6,
        /// A deadline passed before delivery.
        Undelivered = 7,
        /// A reminder was sent or received.
        Reminded = 8,
        /// An escalation was sent, or an observer was told of one.
        Escalated = 9,
        /// The ladder ran out: the delivery lapsed.
        Lapsed = 10,
        /// A subject was flagged REPEATED_UNANSWERED.
        Flagged = 11,
        /// A later alert updated or superseded this one.
        Superseded = 12,
        /// A later alert cancelled this one.
        Cancelled = 13,
    }
}

codes! {
    /// What an outbox message carries.
    MessageKind {
        /// An acknowledgement, to the alert's originator.
        Ack = 1,
        /// A reminder, to a recipient.
        Reminder = 2,
        /// An escalation notice, to an observer.
        Notice = 3,
    }
}

codes! {
    /// A deadline's flag, numbered as `tocsin.v1.DeadlineFlag`.
    DeadlineFlag {
        /// No flag.
        None = 0,
        /// Past the deadline, not acknowledged.
        Overdue = 1,
        /// Past the deadline, not even delivered.
        Undelivered = 2,
    }
}

codes! {
    /// Whether a later alert closed an alert, numbered as
    /// `tocsin.v1.AlertStatus`.
    AlertStatus {
        /// No later alert closed it.
        Active = 0,
        /// Updated or superseded by a later alert.
        Superseded = 1,
        /// Cancelled by a later alert.
        Cancelled = 2,
    }
}

codes! {
    /// Which signed form of a watchlist change a reader is served (kept in
    /// `watchlist_log_readers.view`); a reader without a row gets the stub.
    WatchlistView {
        /// The change in full: the entry is releasable to the reader.
        Full = 1,
        /// A withdrawal: a narrowing update dropped the reader.
        Withdrawal = 2,
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;

    /// Writes `value` to SQLite and reads it back as `T`.
    fn through_sql<T: ToSql + FromSql>(conn: &Connection, value: &T) -> rusqlite::Result<T> {
        conn.query_row("SELECT ?1", [value], |r| r.get(0))
    }

    /// Reads a bare integer as `T`, as a row holding it would.
    fn read_code<T: FromSql>(conn: &Connection, code: i64) -> rusqlite::Result<T> {
        conn.query_row("SELECT ?1", [code], |r| r.get(0))
    }

    /// Every value of `all` survives SQL; codes are distinct; `unknown`
    /// codes read as [`UnknownCode`] naming the enum.
    fn round_trip<T>(all: &[T], code: fn(T) -> i64, unknown: &[i64], name: &'static str)
    where
        T: ToSql + FromSql + Copy + PartialEq + std::fmt::Debug,
    {
        let conn = Connection::open_in_memory().unwrap();
        let mut seen = std::collections::HashSet::new();
        for v in all {
            assert_eq!(through_sql(&conn, v).unwrap(), *v);
            assert!(seen.insert(code(*v)), "{v:?}: code {} twice", code(*v));
            assert_eq!(read_code::<T>(&conn, code(*v)).unwrap(), *v);
        }
        for &bad in unknown {
            let err = read_code::<T>(&conn, bad).unwrap_err();
            let rusqlite::Error::FromSqlConversionFailure(_, _, cause) = err else {
                panic!("{name} {bad}: {err:?}");
            };
            assert_eq!(
                cause.downcast_ref::<UnknownCode>(),
                Some(&UnknownCode {
                    what: name,
                    code: bad
                })
            );
        }
        // Not an integer at all is no code either.
        assert!(
            conn.query_row("SELECT 'x'", [], |r| r.get::<_, T>(0))
                .is_err()
        );
    }

    #[test]
    fn every_code_goes_through_sql_and_unknown_codes_are_errors() {
        round_trip(Direction::ALL, Direction::code, &[0, 3, -1], "Direction");
        round_trip(
            WatchlistView::ALL,
            WatchlistView::code,
            &[0, 3],
            "WatchlistView",
        );
        round_trip(
            DeliveryState::ALL,
            DeliveryState::code,
            &[0, 4],
            "DeliveryState",
        );
        round_trip(LadderStep::ALL, LadderStep::code, &[-1, 4], "LadderStep");
        round_trip(EventKind::ALL, EventKind::code, &[0, 14], "EventKind");
        round_trip(MessageKind::ALL, MessageKind::code, &[0, 4], "MessageKind");
        round_trip(
            DeadlineFlag::ALL,
            DeadlineFlag::code,
            &[-1, 3],
            "DeadlineFlag",
        );
        round_trip(AlertStatus::ALL, AlertStatus::code, &[-1, 3], "AlertStatus");
    }

    #[test]
    fn the_ladder_climbs_one_rung_at_a_time_and_stops_at_lapsed() {
        assert_eq!(LadderStep::None.next(), Some(LadderStep::Reminded));
        assert_eq!(LadderStep::Reminded.next(), Some(LadderStep::Escalated));
        assert_eq!(LadderStep::Escalated.next(), Some(LadderStep::Lapsed));
        assert_eq!(LadderStep::Lapsed.next(), None);
    }
}
