//! Strategies for the wire messages peers send each other: alerts that
//! follow every validation rule (with non-ASCII text, extreme but valid
//! times, every optional field), and edits that put one field out of line.
//!
//! They build `tocsin.v1` messages only, without the domain crate, so that
//! the domain's own tests can use them to check it.

use proptest::prelude::*;
use proptest::sample::{Index, select};
use tocsin_proto::pb;

/// Seconds since the epoch that chrono can represent (about ±262,000
/// years), with a margin.
const MAX_SECONDS: i64 = 8_000_000_000_000;

/// An agency id: 2–32 characters of `A-Z`, `0-9` and `-`, not starting or
/// ending with `-`.
pub fn agency_id() -> impl Strategy<Value = String> {
    "[A-Z0-9][A-Z0-9-]{0,30}[A-Z0-9]"
}

/// A ULID as text.
pub fn ulid() -> impl Strategy<Value = String> {
    any::<u128>().prop_map(|n| ulid::Ulid::from(n).to_string())
}

/// A valid timestamp chrono can represent: mostly recent, sometimes near
/// the ends of its range.
pub fn timestamp() -> impl Strategy<Value = prost_types::Timestamp> {
    prop_oneof![
        4 => (1_400_000_000i64..2_100_000_000, 0i32..1_000_000_000),
        1 => (-MAX_SECONDS..MAX_SECONDS, 0i32..1_000_000_000),
        1 => (select(vec![-MAX_SECONDS, -1, 0, MAX_SECONDS]), select(vec![0, 999_999_999])),
    ]
    .prop_map(|(seconds, nanos)| prost_types::Timestamp { seconds, nanos })
}

/// Free text a validator must accept: not blank, no control characters
/// but line breaks and tabs, any script, at most `max_chars` characters.
pub fn text(max_chars: usize) -> impl Strategy<Value = String> {
    (
        "[\\p{L}\\p{N}]",
        proptest::collection::vec(
            prop_oneof![
                8 => "\\PC",
                1 => select(vec!["\n", "\t", "\r", " "]).prop_map(str::to_owned)
            ],
            0..max_chars,
        ),
    )
        .prop_map(|(first, rest)| format!("{first}{}", rest.concat()))
}

fn date() -> impl Strategy<Value = String> {
    (1u32..=9999, 1u32..=12, 1u32..=28).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}"))
}

fn document() -> impl Strategy<Value = pb::Document> {
    (text(20), text(20), prop_oneof!["", "[A-Z]{2,3}"]).prop_map(|(kind, number, country)| {
        pb::Document {
            kind,
            number,
            issuing_country: country,
        }
    })
}

/// A subject: a person with at least one name, or an identifier.
pub fn subject() -> impl Strategy<Value = pb::Subject> {
    let person = (
        proptest::collection::vec(text(40), 1..3),
        proptest::collection::vec(text(40), 0..3),
        prop_oneof!["", date()],
        proptest::collection::vec("[A-Z]{2}", 0..3),
        proptest::collection::vec(document(), 0..3),
    )
        .prop_map(
            |(names, aliases, date_of_birth, nationalities, documents)| {
                pb::subject::Kind::Person(pb::Person {
                    names,
                    aliases,
                    date_of_birth,
                    nationalities,
                    documents,
                })
            },
        );
    let identifier = (text(20), text(40))
        .prop_map(|(kind, value)| pb::subject::Kind::Identifier(pb::Identifier { kind, value }));
    prop_oneof![person, identifier].prop_map(|kind| pb::Subject { kind: Some(kind) })
}

fn later(t: &prost_types::Timestamp, by_seconds: i64) -> Option<prost_types::Timestamp> {
    let seconds = t.seconds.checked_add(by_seconds)?;
    (seconds < MAX_SECONDS).then_some(prost_types::Timestamp {
        seconds,
        nanos: t.nanos,
    })
}

/// An alert from `originator` to one or more of `recipients` (or other
/// agencies) that follows every rule a receiving node checks.
pub fn valid_alert(
    originator: &str,
    recipients: &'static [&'static str],
) -> impl Strategy<Value = pb::Alert> {
    let originator = originator.to_owned();
    (
        (
            ulid(),
            timestamp(),
            1i32..=4,
            text(15),
            1i32..=6,
            1i32..=6,
            1i32..=5,
        ),
        proptest::collection::vec(subject(), 1..4),
        text(200),
        proptest::collection::vec(
            prop_oneof![3 => select(recipients).prop_map(str::to_owned), 1 => agency_id()],
            1..4,
        ),
        proptest::collection::vec((ulid(), 1i32..=3), 0..3),
        (
            proptest::option::of(1i64..400 * 24 * 3600),
            proptest::option::of(1i64..30 * 24 * 3600),
        ),
    )
        .prop_map(
            move |(
                (id, created_at, precedence, category, reliability, credibility, tlp),
                subjects,
                text,
                mut recipients,
                references,
                (expires_in, respond_in),
            )| {
                recipients.retain(|r| r != &originator);
                recipients.dedup();
                let mut seen = std::collections::BTreeSet::new();
                recipients.retain(|r| seen.insert(r.clone()));
                if recipients.is_empty() {
                    recipients.push(
                        if originator == "ZZ-OTHER" {
                            "ZZ-ANOTHER"
                        } else {
                            "ZZ-OTHER"
                        }
                        .into(),
                    );
                }
                pb::Alert {
                    references: references
                        .into_iter()
                        .filter(|(r, _)| r != &id)
                        .map(|(alert_id, kind)| pb::Reference { alert_id, kind })
                        .collect(),
                    id,
                    originator: originator.clone(),
                    expires_at: expires_in.and_then(|s| later(&created_at, s)),
                    respond_by: respond_in.and_then(|s| later(&created_at, s)),
                    created_at: Some(created_at),
                    precedence,
                    category,
                    subjects,
                    text,
                    source_reliability: reliability,
                    information_credibility: credibility,
                    tlp,
                    recipients,
                    hit: None,
                }
            },
        )
}

/// A wild value for one field of an alert.
#[derive(Debug, Clone)]
pub enum AlertEdit {
    /// Replace a string field (by number: id, originator, category, text,
    /// a recipient, a reference id, a subject's text) with this text.
    Text(u8, Index, String),
    /// Set an enum field (precedence, reliability, credibility, TLP, a
    /// reference kind) to this number.
    Enum(u8, Index, i32),
    /// Set or clear a timestamp (created, expires, respond by).
    Time(u8, Option<prost_types::Timestamp>),
    /// Duplicate or drop list items.
    List(u8, Index, bool),
    /// Grow a list to just over its limit.
    Flood(u8),
    /// Clear a subject's kind.
    NoSubjectKind(Index),
}

fn wild_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "\\PC{0,20}",
        1 => "[\\x00-\\x1f\\x7f]{1,4}",
        1 => Just(String::new()),
        1 => Just(" \t\n".to_owned()),
        1 => (0usize..20_000).prop_map(|n| "x".repeat(n)),
        1 => agency_id(),
        1 => ulid(),
        1 => select(vec!["1985-02-30", "+10000-01-01", "1985-1-2", "0000-00-00", "-0001-12-31"])
            .prop_map(str::to_owned),
    ]
}

fn wild_time() -> impl Strategy<Value = prost_types::Timestamp> {
    prop_oneof![
        (any::<i64>(), any::<i32>()),
        // Out of protobuf's range for nanos, on and off a leap second.
        (
            (25_000_000i64..35_000_000).prop_map(|m| m * 60 + 59),
            1_000_000_000i32..=i32::MAX
        ),
        (1_400_000_000i64..2_100_000_000, 1_000_000_000i32..=i32::MAX),
        (1_400_000_000i64..2_100_000_000, i32::MIN..0),
    ]
    .prop_map(|(seconds, nanos)| prost_types::Timestamp { seconds, nanos })
}

/// An edit that may break an alert.
pub fn alert_edit() -> impl Strategy<Value = AlertEdit> {
    prop_oneof![
        4 => (0u8..10, any::<Index>(), wild_text()).prop_map(|(f, i, t)| AlertEdit::Text(f, i, t)),
        2 => (0u8..5, any::<Index>(), prop_oneof![-2i32..10, any::<i32>()])
            .prop_map(|(f, i, v)| AlertEdit::Enum(f, i, v)),
        2 => (0u8..3, proptest::option::of(prop_oneof![timestamp(), wild_time()]))
            .prop_map(|(f, t)| AlertEdit::Time(f, t)),
        1 => (0u8..5, any::<Index>(), any::<bool>()).prop_map(|(f, i, d)| AlertEdit::List(f, i, d)),
        1 => (0u8..8).prop_map(AlertEdit::Flood),
        1 => any::<Index>().prop_map(AlertEdit::NoSubjectKind),
    ]
}

fn pick<'a, T>(list: &'a mut [T], i: &Index) -> Option<&'a mut T> {
    if list.is_empty() {
        None
    } else {
        let k = i.index(list.len());
        list.get_mut(k)
    }
}

fn edit_list<T: Clone>(list: &mut Vec<T>, i: &Index, duplicate: bool) {
    if list.is_empty() {
        return;
    }
    let k = i.index(list.len());
    if duplicate {
        let item = list[k].clone();
        list.insert(k, item);
    } else {
        list.remove(k);
    }
}

fn flood<T: Clone>(list: &mut Vec<T>, to: usize) {
    if let Some(first) = list.first().cloned() {
        list.resize(to, first);
    }
}

fn subject_text<'a>(s: &'a mut pb::Subject, i: &Index) -> Option<&'a mut String> {
    match s.kind.as_mut()? {
        pb::subject::Kind::Identifier(id) => Some(if i.index(2) == 0 {
            &mut id.kind
        } else {
            &mut id.value
        }),
        pb::subject::Kind::Person(p) => match i.index(6) {
            0 => pick(&mut p.names, i),
            1 => pick(&mut p.aliases, i),
            2 => Some(&mut p.date_of_birth),
            3 => pick(&mut p.nationalities, i),
            4 => pick(&mut p.documents, i).map(|d| &mut d.number),
            _ => pick(&mut p.documents, i).map(|d| &mut d.issuing_country),
        },
    }
}

impl AlertEdit {
    /// Applies the edit to `a`.
    pub fn apply(&self, a: &mut pb::Alert) {
        match self {
            AlertEdit::Text(field, i, t) => {
                let target = match field {
                    0 => Some(&mut a.id),
                    1 => Some(&mut a.originator),
                    2 => Some(&mut a.category),
                    3 => Some(&mut a.text),
                    4 => pick(&mut a.recipients, i),
                    5 => pick(&mut a.references, i).map(|r| &mut r.alert_id),
                    _ => pick(&mut a.subjects, i).and_then(|s| subject_text(s, i)),
                };
                if let Some(target) = target {
                    *target = t.clone();
                }
            }
            AlertEdit::Enum(field, i, v) => match field {
                0 => a.precedence = *v,
                1 => a.source_reliability = *v,
                2 => a.information_credibility = *v,
                3 => a.tlp = *v,
                _ => {
                    if let Some(r) = pick(&mut a.references, i) {
                        r.kind = *v;
                    }
                }
            },
            AlertEdit::Time(field, t) => match field {
                0 => a.created_at = *t,
                1 => a.expires_at = *t,
                _ => a.respond_by = *t,
            },
            AlertEdit::List(field, i, duplicate) => match field {
                0 => edit_list(&mut a.subjects, i, *duplicate),
                1 => edit_list(&mut a.recipients, i, *duplicate),
                2 => edit_list(&mut a.references, i, *duplicate),
                _ => {
                    if let Some(pb::subject::Kind::Person(p)) =
                        pick(&mut a.subjects, i).and_then(|s| s.kind.as_mut())
                    {
                        if *field == 3 {
                            edit_list(&mut p.names, i, *duplicate);
                        } else {
                            edit_list(&mut p.documents, i, *duplicate);
                        }
                    }
                }
            },
            AlertEdit::Flood(field) => match field {
                0 => flood(&mut a.subjects, 65),
                1 => flood(&mut a.recipients, 257),
                2 => flood(&mut a.references, 17),
                3 => a.text = "x".repeat(16 * 1024 + 1),
                4 => a.category = "x".repeat(65),
                _ => {
                    if let Some(pb::subject::Kind::Person(p)) =
                        a.subjects.first_mut().and_then(|s| s.kind.as_mut())
                    {
                        match field {
                            5 => flood(&mut p.names, 33),
                            6 => flood(&mut p.documents, 33),
                            _ => p.names = vec!["x".repeat(257)],
                        }
                    }
                }
            },
            AlertEdit::NoSubjectKind(i) => {
                if let Some(s) = pick(&mut a.subjects, i) {
                    s.kind = None;
                }
            }
        }
    }
}

/// A valid alert with up to four edits that may break it.
pub fn edited_alert(
    originator: &str,
    recipients: &'static [&'static str],
) -> impl Strategy<Value = pb::Alert> {
    (
        valid_alert(originator, recipients),
        proptest::collection::vec(alert_edit(), 1..4),
    )
        .prop_map(|(mut a, edits)| {
            for e in &edits {
                e.apply(&mut a);
            }
            a
        })
}

/// An acknowledgement by `recipient` that follows every rule.
pub fn valid_ack(recipient: &str) -> impl Strategy<Value = pb::Acknowledgement> {
    let recipient = recipient.to_owned();
    (
        ulid(),
        ulid(),
        proptest::collection::vec(any::<u8>(), 32),
        "[a-zA-Z0-9._-]{1,64}",
        1i32..=5,
        prop_oneof![Just(String::new()), text(100)],
        timestamp(),
    )
        .prop_map(
            move |(id, alert_id, alert_digest, operator, disposition, note, at)| {
                pb::Acknowledgement {
                    id,
                    alert_id,
                    alert_digest,
                    recipient: recipient.clone(),
                    operator,
                    disposition,
                    note,
                    acknowledged_at: Some(at),
                }
            },
        )
}

/// A valid acknowledgement with one field replaced by a wild value.
pub fn edited_ack(recipient: &str) -> impl Strategy<Value = pb::Acknowledgement> {
    (
        valid_ack(recipient),
        0u8..8,
        wild_text(),
        prop_oneof![-2i32..10, any::<i32>()],
        proptest::option::of(prop_oneof![timestamp(), wild_time()]),
        proptest::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(|(mut a, field, text, number, time, bytes)| {
            match field {
                0 => a.id = text,
                1 => a.alert_id = text,
                2 => a.alert_digest = bytes,
                3 => a.recipient = text,
                4 => a.operator = text,
                5 => a.disposition = number,
                6 => a.note = text,
                _ => a.acknowledged_at = time,
            }
            a
        })
}
