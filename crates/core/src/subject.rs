//! Linking alerts about the same subject.
//!
//! Every subject yields match keys; two alerts are about the same subject
//! when they share a key:
//!
//! - `doc:<NUMBER>`: a document number, upper-cased, spaces and dashes removed;
//! - `person:<words>|<date of birth>`: a name or alias with its date of
//!   birth, where the name is folded so that case, diacritics and word order
//!   do not matter ("Ismaël Omar MOSTEFAÏ" = "mostefai ismael omar");
//! - `id:<kind>:<value>`: a typed identifier, folded the same way.
//!
//! A name without a date of birth links nothing on its own: too many people
//! share one.

use std::collections::BTreeSet;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::alert::{Alert, Subject};

/// Folds text for matching: compatibility decomposition, diacritics
/// dropped, lower case, words split on anything not alphanumeric.
fn words(text: &str) -> Vec<String> {
    let folded: String = text
        .nfkd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect();
    folded
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A name folded so that case, diacritics and word order do not matter.
pub fn normalise_name(name: &str) -> String {
    let mut w = words(name);
    w.sort();
    w.join(" ")
}

/// A document number as a match key component.
pub fn normalise_document(number: &str) -> String {
    number
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_uppercase)
        .collect()
}

/// The match keys of one subject.
pub fn keys_of(subject: &Subject) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    match subject {
        Subject::Person(p) => {
            for d in &p.documents {
                let n = normalise_document(&d.number);
                if !n.is_empty() {
                    keys.insert(format!("doc:{n}"));
                }
            }
            if let Some(dob) = p.date_of_birth {
                for name in p.names.iter().chain(&p.aliases) {
                    let n = normalise_name(name);
                    if !n.is_empty() {
                        keys.insert(format!("person:{n}|{dob}"));
                    }
                }
            }
        }
        Subject::Identifier { kind, value } => {
            let v = words(value).join("");
            if !v.is_empty() {
                keys.insert(format!("id:{}:{v}", normalise_name(kind)));
            }
        }
    }
    keys
}

/// The match keys of every subject of an alert. A hit report is also
/// keyed by the entry it matched, under each of the entry's names: every
/// report on one entry is about the entry's subject, even when the entry
/// gives neither date of birth nor document (which name keys need), and a
/// name query still finds it.
pub fn alert_keys(alert: &Alert) -> BTreeSet<String> {
    let mut keys: BTreeSet<String> = alert.subjects.iter().flat_map(keys_of).collect();
    if let Some(hit) = &alert.hit {
        let entry = format!("entry:{}/{}", hit.entry_owner, hit.entry_ref);
        for subject in &alert.subjects {
            if let Subject::Person(p) = subject {
                for name in p.names.iter().chain(&p.aliases) {
                    let n = normalise_name(name);
                    if !n.is_empty() {
                        keys.insert(format!("person:{n}|{entry}"));
                    }
                }
            }
        }
    }
    keys
}

/// What to look for when an operator asks about a subject: a document key,
/// and a folded name to match against person keys.
pub fn query_keys(query: &str) -> (String, String) {
    (
        format!("doc:{}", normalise_document(query)),
        normalise_name(query),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Document, Person};

    fn person(name: &str, dob: Option<&str>, doc: Option<&str>) -> Subject {
        Subject::Person(Person {
            names: vec![name.into()],
            date_of_birth: dob.map(|d| d.parse().unwrap()),
            documents: doc
                .map(|n| {
                    vec![Document {
                        kind: "passport".into(),
                        number: n.into(),
                        issuing_country: "FR".into(),
                    }]
                })
                .unwrap_or_default(),
            ..Default::default()
        })
    }

    #[test]
    fn case_diacritics_and_word_order_do_not_matter() {
        let a = keys_of(&person("Ismaël Omar Mostefaï", Some("1985-11-21"), None));
        let b = keys_of(&person("MOSTEFAI, Ismael Omar", Some("1985-11-21"), None));
        assert_eq!(a, b);
        assert_eq!(
            a.iter().next().unwrap(),
            "person:ismael mostefai omar|1985-11-21"
        );
    }

    #[test]
    fn the_date_of_birth_must_agree_and_be_known() {
        let a = keys_of(&person("Omar Mostefai", Some("1985-11-21"), None));
        let b = keys_of(&person("Omar Mostefai", Some("1986-01-01"), None));
        assert!(a.is_disjoint(&b));
        assert!(keys_of(&person("Omar Mostefai", None, None)).is_empty());
    }

    #[test]
    fn document_numbers_link_whatever_the_spelling_of_the_name() {
        let a = keys_of(&person("O. Mostefai", None, Some("12ab-34 567")));
        let b = keys_of(&person("Abu Rayyan", None, Some("12AB34567")));
        assert!(!a.is_disjoint(&b));
    }
}
