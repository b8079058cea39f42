//! The codes the store keeps in its integer columns, each an enum, in one
//! place: event kinds, outbox message kinds, deadline flags and alert
//! statuses. Event kinds and flags are numbered as the protocol numbers
//! them (`tocsin.v1.EventKind`, `tocsin.v1.DeadlineFlag`), so a stored
//! event goes out on the wire as it is.

use rusqlite::ToSql;
use rusqlite::types::ToSqlOutput;

/// Declares a code enum with its `code`, `from_code` and SQL conversion.
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
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.code()))
            }
        }
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_and_codes_are_distinct() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::from_code(k.code()), Some(*k));
        }
        assert_eq!(EventKind::from_code(0), None);
        assert_eq!(EventKind::from_code(14), None);
        for k in MessageKind::ALL {
            assert_eq!(MessageKind::from_code(k.code()), Some(*k));
        }
        for f in DeadlineFlag::ALL {
            assert_eq!(DeadlineFlag::from_code(f.code()), Some(*f));
        }
        for s in AlertStatus::ALL {
            assert_eq!(AlertStatus::from_code(s.code()), Some(*s));
        }
    }
}
