use chrono::{DateTime, TimeZone, Utc};

/// Converts a protobuf timestamp to UTC; `None` if it is out of range.
///
/// Protobuf allows nanos in `0..1_000_000_000` only. chrono would also take
/// up to two seconds' worth on a leap second, and `to_timestamp` would then
/// give back a timestamp other protobuf readers refuse, so those are refused
/// here.
pub fn from_timestamp(ts: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    let nanos = u32::try_from(ts.nanos)
        .ok()
        .filter(|n| *n < 1_000_000_000)?;
    Utc.timestamp_opt(ts.seconds, nanos).single()
}

/// A wire timestamp that may be unset, as a time: `None` if it is unset or
/// out of range (see [`from_timestamp`]).
pub fn time_of(ts: &Option<prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    ts.as_ref().and_then(from_timestamp)
}

/// Converts a UTC time to a protobuf timestamp.
pub fn to_timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// A duration to the minute, as people write it: "1 day 21 h 1 min",
/// "2 days", "3 h 12 min", "45 min"; under a minute, "under a minute".
pub fn human_duration(seconds: u64) -> String {
    let minutes = seconds / 60;
    if minutes == 0 {
        return "under a minute".into();
    }
    let (days, hours, minutes) = (minutes / 1440, minutes % 1440 / 60, minutes % 60);
    let mut parts = Vec::new();
    match days {
        0 => {}
        1 => parts.push("1 day".to_owned()),
        n => parts.push(format!("{n} days")),
    }
    if hours > 0 {
        parts.push(format!("{hours} h"));
    }
    if minutes > 0 {
        parts.push(format!("{minutes} min"));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human_duration(0), "under a minute");
        assert_eq!(human_duration(59), "under a minute");
        assert_eq!(human_duration(60), "1 min");
        assert_eq!(human_duration(45 * 60 + 59), "45 min");
        assert_eq!(human_duration(3 * 3600 + 12 * 60), "3 h 12 min");
        assert_eq!(human_duration(3600), "1 h");
        assert_eq!(human_duration(86_400), "1 day");
        assert_eq!(human_duration(2 * 86_400), "2 days");
        assert_eq!(human_duration(86_400 + 21 * 3600 + 60), "1 day 21 h 1 min");
        assert_eq!(human_duration(3 * 86_400 + 5 * 60), "3 days 5 min");
    }

    fn ts(seconds: i64, nanos: i32) -> prost_types::Timestamp {
        prost_types::Timestamp { seconds, nanos }
    }

    #[test]
    fn nanos_outside_protobufs_range_are_refused() {
        // 2017-07-14T02:40:59Z: chrono reads nanos past a second here as a
        // leap second; protobuf does not allow them.
        let leap = 1_500_000_059;
        assert!(from_timestamp(&ts(leap, 1_000_000_000)).is_none());
        assert!(from_timestamp(&ts(leap, 1_999_999_999)).is_none());
        assert!(from_timestamp(&ts(leap, -1)).is_none());
        let last = from_timestamp(&ts(leap, 999_999_999)).unwrap();
        assert_eq!(to_timestamp(last), ts(leap, 999_999_999));
    }

    #[test]
    fn times_beyond_chronos_range_are_refused() {
        assert!(from_timestamp(&ts(i64::MAX, 0)).is_none());
        assert!(from_timestamp(&ts(i64::MIN, 0)).is_none());
    }
}
