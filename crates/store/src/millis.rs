//! Times as both backends store them: milliseconds since the epoch, in a
//! 64-bit integer column.

use chrono::{DateTime, TimeZone, Utc};

/// Times are stored as milliseconds since the epoch.
pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The inverse of [`ms`].
pub(crate) fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or_default()
}
