//! Deterministic STIX identifiers.
//!
//! STIX 2.1 (section 2.9) lets a producer pick any RFC 4122 UUID and
//! suggests version 4 for domain objects; Tocsin uses version 5 instead,
//! named by the Tocsin ids, so that exporting the same records twice
//! gives the same ids, and a consumer such as MISP or OpenCTI updates the
//! objects it already holds instead of duplicating them. The names include
//! the federation, since agency ids are only unique within one.

use chrono::{DateTime, Utc};
use tocsin_core::alert::Subject;
use tocsin_core::{AgencyId, AlertId, FederationId};
use uuid::Uuid;

/// The name of Tocsin's UUIDv5 namespace, itself in the URL namespace.
pub const NAMESPACE_NAME: &str = "https://example.invalid/tocsin/stix";

/// Tocsin's UUIDv5 namespace: v5(URL namespace, [`NAMESPACE_NAME`]).
pub fn namespace() -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, NAMESPACE_NAME.as_bytes())
}

fn id(kind: &str, name: &str) -> String {
    format!("{kind}--{}", Uuid::new_v5(&namespace(), name.as_bytes()))
}

/// The `identity` of an agency (an organisation).
pub fn agency(federation: &FederationId, agency: &AgencyId) -> String {
    id("identity", &format!("{federation}/agency/{agency}"))
}

/// The `report` of an alert.
pub fn report(federation: &FederationId, alert: &AlertId) -> String {
    id("report", &format!("{federation}/alert/{alert}"))
}

/// The `sighting` of a hit report.
pub fn sighting(federation: &FederationId, alert: &AlertId) -> String {
    id("sighting", &format!("{federation}/hit/{alert}"))
}

/// The `identity` of a watchlist entry, by its owner and reference: every
/// version of the entry is the same STIX object.
pub fn entry(federation: &FederationId, owner: &AgencyId, reference: &str) -> String {
    id(
        "identity",
        &format!("{federation}/entry/{owner}/{reference}"),
    )
}

/// The `identity` of a subject as `originator`'s alerts describe it:
/// alerts of one agency naming the same subject in the same terms share it.
pub fn subject(federation: &FederationId, originator: &AgencyId, subject: &Subject) -> String {
    // The struct's serde form has a fixed field order, so it is canonical.
    let canonical = serde_json::to_string(subject).unwrap_or_default();
    id(
        "identity",
        &format!("{federation}/subject/{originator}/{canonical}"),
    )
}

/// The `bundle`, from its objects' ids and versions: the same content
/// gives the same bundle id.
pub fn bundle<'a>(
    agency: &AgencyId,
    objects: impl Iterator<Item = (&'a str, Option<&'a str>)>,
) -> String {
    let mut name = format!("bundle/{agency}");
    for (id, modified) in objects {
        name.push('\n');
        name.push_str(id);
        name.push(' ');
        name.push_str(modified.unwrap_or(""));
    }
    id("bundle", &name)
}

/// A STIX timestamp: UTC, `Z`, to the millisecond, as STIX 2.1 requires
/// of `created` and `modified`.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fed() -> FederationId {
        FederationId::new("eu.tocsin").unwrap()
    }

    #[test]
    fn ids_are_stable_version_5_and_distinct() {
        let tr = AgencyId::new("TR-MIT").unwrap();
        let a = agency(&fed(), &tr);
        assert_eq!(a, agency(&fed(), &tr));
        let uuid = Uuid::parse_str(a.strip_prefix("identity--").unwrap()).unwrap();
        assert_eq!(uuid.get_version_num(), 5);
        assert_ne!(a, entry(&fed(), &tr, "W-1"));
        let other = FederationId::new("other.tocsin").unwrap();
        assert_ne!(a, agency(&other, &tr));
        let alert = AlertId::generate();
        assert!(report(&fed(), &alert).starts_with("report--"));
        assert_ne!(
            report(&fed(), &alert).strip_prefix("report--"),
            sighting(&fed(), &alert).strip_prefix("sighting--")
        );
    }

    #[test]
    fn timestamps_have_milliseconds_and_z() {
        let t = DateTime::parse_from_rfc3339("2015-11-13T21:16:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(timestamp(t), "2015-11-13T21:16:00.000Z");
    }
}
