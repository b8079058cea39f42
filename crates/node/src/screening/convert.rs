//! Conversions at the edge of screening: entries into candidates, an
//! operator's request into a query, a match into what the operator sees.

use std::fmt::Write as _;

use chrono::Datelike;
use tocsin_core::ValidationError;
use tocsin_core::alert::Subject;
use tocsin_core::watchlist::Entry;
use tocsin_proto::{pb, wire};
use tocsin_screening::{Candidate, Dob, Document, Identifier, Match, Options, Query, Reason};

/// Matches a screen returns when its request sets no `limit`: the best
/// few are what an operator reads, and each match returned is an entry
/// decoded, encoded and sent (docs/benchmarks.md, "Screening through the
/// node").
pub(crate) const DEFAULT_LIMIT: usize = 10;
/// The most matches one screen may ask for.
pub const MAX_LIMIT: usize = 100;

/// The entry's identifying data under `key`. Entries carry no threshold of
/// their own yet, so the index's default applies.
pub(super) fn candidate(key: u64, entry: &Entry) -> Candidate {
    let mut c = Candidate {
        key,
        ..Candidate::default()
    };
    match &entry.subject {
        Subject::Person(p) => {
            c.names = p.names.iter().chain(&p.aliases).cloned().collect();
            c.dob = p.date_of_birth.map(|d| Dob::Date {
                year: d.year() as u16,
                month: d.month() as u8,
                day: d.day() as u8,
            });
            c.nationalities = p.nationalities.clone();
            c.documents = p
                .documents
                .iter()
                .map(|d| Document {
                    kind: d.kind.clone(),
                    number: d.number.clone(),
                    country: (!d.issuing_country.is_empty()).then(|| d.issuing_country.clone()),
                })
                .collect();
        }
        Subject::Identifier { kind, value } => c.identifiers.push(Identifier {
            kind: kind.clone(),
            value: value.clone(),
        }),
    }
    c
}

fn dob(text: &str) -> Result<Option<Dob>, ValidationError> {
    let field = "person.date_of_birth";
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.len() == 4 {
        return match text.parse::<u16>() {
            Ok(year) => Ok(Some(Dob::Year(year))),
            Err(_) => Err(ValidationError::new(
                field,
                format!("{text:?} is not a date (YYYY-MM-DD or YYYY)"),
            )),
        };
    }
    let d = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        ValidationError::new(
            field,
            format!("{text:?} is not a date (YYYY-MM-DD or YYYY)"),
        )
    })?;
    Ok(Some(Dob::Date {
        year: d.year() as u16,
        month: d.month() as u8,
        day: d.day() as u8,
    }))
}

fn present(s: &str) -> bool {
    !s.trim().is_empty()
}

/// The query an operator's request asks for, or the field that is wrong.
pub(crate) fn query_of(r: &pb::ScreenRequest) -> Result<Query, ValidationError> {
    let mut q = Query::default();
    if let Some(p) = &r.person {
        q.names = p
            .names
            .iter()
            .chain(&p.aliases)
            .filter(|n| present(n))
            .cloned()
            .collect();
        q.dob = dob(&p.date_of_birth)?;
        q.nationalities = p
            .nationalities
            .iter()
            .filter(|n| present(n))
            .cloned()
            .collect();
        for (i, d) in p.documents.iter().enumerate() {
            if !present(&d.number) {
                return Err(ValidationError::new(
                    format!("person.documents[{i}].number"),
                    "must not be empty",
                ));
            }
            q.documents.push(Document {
                kind: d.kind.clone(),
                number: d.number.clone(),
                country: present(&d.issuing_country).then(|| d.issuing_country.clone()),
            });
        }
    }
    for (i, id) in r.identifiers.iter().enumerate() {
        if !present(&id.kind) || !present(&id.value) {
            return Err(ValidationError::new(
                format!("identifiers[{i}]"),
                "needs a kind and a value",
            ));
        }
        q.identifiers.push(Identifier {
            kind: id.kind.clone(),
            value: id.value.clone(),
        });
    }
    if r.limit as usize > MAX_LIMIT {
        return Err(ValidationError::new(
            "limit",
            format!(
                "{} matches asked for, at most {MAX_LIMIT} (0 for the default, {DEFAULT_LIMIT})",
                r.limit
            ),
        ));
    }
    if q.names.is_empty() && q.documents.is_empty() && q.identifiers.is_empty() {
        return Err(ValidationError::new(
            "person.names",
            "nothing to screen on: give a name, a document or an identifier",
        ));
    }
    Ok(q)
}

/// The library's options for a screen asking for `limit` matches (0: the
/// default; more than the most are capped, though [`query_of`] refuses
/// them first).
pub fn options(limit: u32) -> Options {
    Options {
        max_results: match limit as usize {
            0 => DEFAULT_LIMIT,
            n => n.min(MAX_LIMIT),
        },
        ..Options::default()
    }
}

fn reason(r: &Reason) -> pb::MatchReason {
    use pb::match_reason::Kind;
    let (kind, query, candidate, how) = match r {
        Reason::Name {
            query,
            candidate,
            how,
        } => (
            Kind::Name,
            query.clone(),
            candidate.clone(),
            how.to_string(),
        ),
        Reason::Document { kind, number } => {
            (Kind::Document, number.clone(), kind.clone(), String::new())
        }
        Reason::Identifier { kind, value } => {
            (Kind::Identifier, value.clone(), kind.clone(), String::new())
        }
        Reason::DobAgrees(d) => (Kind::DobAgrees, d.to_string(), d.to_string(), String::new()),
        Reason::DobDisagrees { query, candidate } => (
            Kind::DobDisagrees,
            query.to_string(),
            candidate.to_string(),
            String::new(),
        ),
        Reason::NationalityAgrees(c) => (Kind::Nationality, c.clone(), c.clone(), String::new()),
    };
    // Made once, with room: the joined text of a match's reasons is made
    // from these (formatting grew each string a few bytes at a time, and
    // a batch formats thousands).
    let mut text = String::with_capacity(query.len() + candidate.len() + 32);
    let _ = write!(text, "{r}");
    pb::MatchReason {
        kind: kind as i32,
        query,
        candidate,
        how,
        text,
    }
}

/// The reasons' texts joined with "; ", as [`tocsin_screening::Reasons`]
/// writes them.
fn joined(reasons: &[pb::MatchReason]) -> String {
    let texts: Vec<&str> = reasons.iter().map(|r| r.text.as_str()).collect();
    texts.join("; ")
}

/// What the operator is shown of a match of `held`, an entry of `owner`.
/// A hit is the library's (at or above the default threshold, with enough
/// support) and at or above the owner's stricter threshold, if it set one.
/// The entry is the encoded one `held` keeps, sent as it is (see
/// [`tocsin_proto::wire`]). That a client decodes it as the generated
/// message rests on what the index keeps: only entries that decoded and
/// validated when put there, as prost encoded them (the store holds prost's
/// own encodings, so they are canonical and carry no unknown fields).
pub(super) fn screen_match(m: &Match, owner: &str, held: &super::Held) -> wire::ScreenMatch {
    let hit = m.hit && held.threshold.is_none_or(|t| m.score >= t);
    let reasons: Vec<pb::MatchReason> = m.reasons.iter().map(reason).collect();
    wire::ScreenMatch {
        score: m.score,
        hit,
        owner: owner.to_owned(),
        r#ref: held.reference.to_string(),
        entry: held.entry.to_vec(),
        entry_seq: held.seq,
        reasons_text: joined(&reasons),
        reasons,
        hit_report_id: String::new(),
        hit_report_repeated: false,
        hit_report_error: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(names: &[&str]) -> pb::ScreenRequest {
        pb::ScreenRequest {
            person: Some(pb::Person {
                names: names.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn nothing_to_screen_on_names_the_field() {
        let err = query_of(&request(&[" "])).unwrap_err();
        assert_eq!(err.field, "person.names");
        let err = query_of(&pb::ScreenRequest::default()).unwrap_err();
        assert_eq!(err.field, "person.names");
    }

    #[test]
    fn a_bad_date_of_birth_is_named() {
        let mut r = request(&["Salah Abdeslam"]);
        r.person.as_mut().unwrap().date_of_birth = "15/09/1989".into();
        assert_eq!(query_of(&r).unwrap_err().field, "person.date_of_birth");
        r.person.as_mut().unwrap().date_of_birth = "1989".into();
        assert_eq!(query_of(&r).unwrap().dob, Some(Dob::Year(1989)));
    }

    #[test]
    fn a_limit_over_the_most_is_named_and_none_is_the_default() {
        let mut r = request(&["Salah Abdeslam"]);
        assert_eq!(options(r.limit).max_results, DEFAULT_LIMIT);
        r.limit = MAX_LIMIT as u32;
        assert!(query_of(&r).is_ok());
        assert_eq!(options(r.limit).max_results, MAX_LIMIT);
        r.limit = MAX_LIMIT as u32 + 1;
        assert_eq!(query_of(&r).unwrap_err().field, "limit");
    }

    #[test]
    fn an_identifier_alone_is_enough() {
        let r = pb::ScreenRequest {
            identifiers: vec![pb::Identifier {
                kind: "phone".into(),
                value: "+33 6 12".into(),
            }],
            ..Default::default()
        };
        assert_eq!(query_of(&r).unwrap().identifiers.len(), 1);
    }
    #[test]
    fn a_match_shows_each_reason_and_all_of_them_as_the_library_writes_them() {
        let reasons = vec![
            Reason::Name {
                query: "Mostefaï".into(),
                candidate: "MOSTEFAI".into(),
                how: tocsin_screening::How::Folded,
            },
            Reason::Document {
                kind: "passport".into(),
                number: "12AB34567".into(),
            },
            Reason::DobDisagrees {
                query: Dob::Year(1985),
                candidate: Dob::Date {
                    year: 1989,
                    month: 9,
                    day: 15,
                },
            },
            Reason::NationalityAgrees("FR".into()),
        ];
        let shown: Vec<pb::MatchReason> = reasons.iter().map(reason).collect();
        for (r, s) in reasons.iter().zip(&shown) {
            assert_eq!(s.text, r.to_string());
        }
        assert_eq!(
            joined(&shown),
            tocsin_screening::Reasons(&reasons).to_string()
        );
        assert_eq!(joined(&shown[..1]), reasons[0].to_string());
        assert_eq!(joined(&[]), "");
    }
}
