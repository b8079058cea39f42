//! Tocsin's own properties: the `x_tocsin_*` names, the extension
//! definition that declares them (so STIX 2.1 consumers and the OASIS
//! validator know them for top-level property extensions, not stray
//! custom properties), and how a subject is written in them.

use serde_json::{Map, Value, json};
use tocsin_core::alert::{Person, Subject};

/// The extension definition declaring the `x_tocsin_*` properties:
/// v5(Tocsin namespace, "extension/x_tocsin/1.0.0").
pub(crate) const EXTENSION: &str = "extension-definition--0ff9a1a1-1128-50a4-aa49-6e1930bc2547";

/// The `identity` of the Tocsin project, which authors the extension:
/// v5(Tocsin namespace, "project/tocsin").
pub(crate) const PROJECT: &str = "identity--41d0a927-ee01-53a9-8ac2-2c142483b40e";

/// When this version of the mapping was defined: the `created` of the
/// extension, the project, and every agency's `identity`, which describe
/// the same thing in every agency's export and so must not vary.
pub(crate) const DEFINED: &str = "2026-12-01T00:00:00.000Z";

/// Every property the extension adds, for its `extension_properties`.
pub(crate) const PROPERTIES: &[&str] = &[
    "x_tocsin_action",
    "x_tocsin_alert_id",
    "x_tocsin_aliases",
    "x_tocsin_category",
    "x_tocsin_date_of_birth",
    "x_tocsin_documents",
    "x_tocsin_entry_owner",
    "x_tocsin_entry_ref",
    "x_tocsin_entry_seq",
    "x_tocsin_expires_at",
    "x_tocsin_federation",
    "x_tocsin_hit_precedence",
    "x_tocsin_hit_threshold",
    "x_tocsin_identifier",
    "x_tocsin_information_credibility",
    "x_tocsin_names",
    "x_tocsin_nationalities",
    "x_tocsin_owner",
    "x_tocsin_precedence",
    "x_tocsin_reasons",
    "x_tocsin_recipients",
    "x_tocsin_ref",
    "x_tocsin_references",
    "x_tocsin_releasable_to",
    "x_tocsin_requested_action",
    "x_tocsin_respond_by",
    "x_tocsin_review_at",
    "x_tocsin_role",
    "x_tocsin_score",
    "x_tocsin_screen_ref",
    "x_tocsin_screened",
    "x_tocsin_screened_identifiers",
    "x_tocsin_seen_place",
    "x_tocsin_source_reliability",
];

/// `x_tocsin_role` of a watchlist entry's `identity`.
pub(crate) const ROLE_ENTRY: &str = "watchlist-entry";
/// `x_tocsin_role` of an alert subject's `identity`.
pub(crate) const ROLE_SUBJECT: &str = "alert-subject";
/// `x_tocsin_role` of a watchlist entry the exporter holds from another
/// owner: shown (a sighting may refer to it), never imported, since its
/// owner shares it by sync and an importer must not take it over.
pub(crate) const ROLE_HELD: &str = "held-entry";

/// The `extensions` property of an object carrying `x_tocsin_*` properties.
pub(crate) fn uses_extension() -> Value {
    json!({ EXTENSION: { "extension_type": "toplevel-property-extension" } })
}

/// The extension definition and the project identity that authored it.
pub(crate) fn definitions() -> [Value; 2] {
    [
        json!({
            "type": "identity",
            "spec_version": "2.1",
            "id": PROJECT,
            "created_by_ref": PROJECT,
            "created": DEFINED,
            "modified": DEFINED,
            "name": "Tocsin",
            "identity_class": "organization",
            "description": "The Tocsin project, author of the x_tocsin STIX extension.",
        }),
        json!({
            "type": "extension-definition",
            "spec_version": "2.1",
            "id": EXTENSION,
            "created_by_ref": PROJECT,
            "created": DEFINED,
            "modified": DEFINED,
            "name": "Tocsin warning-sharing properties",
            "description": "Tocsin's alert, hit report and watchlist entry fields that STIX 2.1 has no property for.",
            "schema": "Tocsin docs/stix.md: the x_tocsin_* properties, their types and the Tocsin fields they carry.",
            "version": "1.0.0",
            "extension_types": ["toplevel-property-extension"],
            "extension_properties": PROPERTIES,
        }),
    ]
}

/// `value` under `key`, unless it is empty (an empty list or string says
/// nothing, and STIX forbids empty lists).
pub(crate) fn put(object: &mut Map<String, Value>, key: &str, value: Value) {
    let empty = match &value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    };
    if !empty {
        object.insert(key.to_owned(), value);
    }
}

/// A person's name for `name`, which STIX requires: the first full name,
/// else the first alias, else the first document.
pub(crate) fn display_name(subject: &Subject) -> String {
    match subject {
        Subject::Person(p) => p
            .names
            .first()
            .or(p.aliases.first())
            .cloned()
            .or_else(|| {
                p.documents
                    .first()
                    .map(|d| format!("{} {}", d.kind, d.number))
            })
            .unwrap_or_else(|| "(unnamed)".to_owned()),
        Subject::Identifier { kind, value } => format!("{kind} {value}"),
    }
}

/// `identity_class` and the subject's fields, into `object`.
pub(crate) fn put_subject(object: &mut Map<String, Value>, subject: &Subject) {
    object.insert("name".into(), display_name(subject).into());
    match subject {
        Subject::Person(p) => {
            object.insert("identity_class".into(), "individual".into());
            put_person(object, p);
        }
        Subject::Identifier { kind, value } => {
            object.insert("identity_class".into(), "unknown".into());
            object.insert(
                "x_tocsin_identifier".into(),
                json!({ "kind": kind, "value": value }),
            );
        }
    }
}

fn put_person(object: &mut Map<String, Value>, p: &Person) {
    put(object, "x_tocsin_names", json!(p.names));
    put(object, "x_tocsin_aliases", json!(p.aliases));
    if let Some(dob) = p.date_of_birth {
        object.insert("x_tocsin_date_of_birth".into(), dob.to_string().into());
    }
    put(object, "x_tocsin_nationalities", json!(p.nationalities));
    put(
        object,
        "x_tocsin_documents",
        serde_json::to_value(&p.documents).unwrap_or_default(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixed_ids_are_derived_as_documented() {
        let ns = crate::ids::namespace();
        assert_eq!(ns.to_string(), "de3147e3-a065-5fd1-b908-9fdaffd998e2");
        let v5 = |name: &str| uuid::Uuid::new_v5(&ns, name.as_bytes()).to_string();
        assert_eq!(
            EXTENSION,
            format!("extension-definition--{}", v5("extension/x_tocsin/1.0.0"))
        );
        assert_eq!(PROJECT, format!("identity--{}", v5("project/tocsin")));
    }
}
