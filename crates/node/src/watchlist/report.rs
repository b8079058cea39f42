//! After a screen: each hit on another agency's entry is reported to its
//! owner through the domain (`Node::report_hit`), and the report's id is
//! set on the match the operator gets. A hit on this agency's own entry
//! needs no report: the operator is the owner.

use tocsin_core::alert::{MAX_FIELD_BYTES, MAX_LIST_ITEMS, Person};
use tocsin_core::hit::{Hit, MAX_IDENTIFIERS, MAX_PLACE_BYTES, MAX_REASON_LINE_BYTES, MAX_REASONS};
use tocsin_core::watchlist::Entry;
use tocsin_core::watchlist::MAX_REF_BYTES;
use tocsin_core::{AgencyId, Identity};
use tocsin_proto::{pb, wire};

use crate::domain::{Node, Reported, Sighting};

/// Reports every hit of `results` on another agency's entry, as
/// `operator`, and records on each match the report sent or repeated, or
/// why it could not be sent (`hit_report_error`): one report that fails
/// neither hides the screen's results nor stops the other reports, and a
/// retried screen finds the reports already sent.
pub(crate) async fn report_hits(
    node: &Node,
    agency: &AgencyId,
    operator: &Identity,
    results: &mut [wire::ScreenResponse],
) {
    for result in results.iter_mut() {
        let Some(request) = result.screened.as_ref() else {
            continue;
        };
        for m in result.matches.iter_mut() {
            if !m.hit || m.owner == agency.as_str() {
                continue;
            }
            let Some(sighting) = sighting(request, m) else {
                // A held entry passed these checks when it was stored.
                tracing::warn!(owner = %m.owner, entry = %m.r#ref, "a hit on an unreadable entry: not reported");
                continue;
            };
            match node.report_hit(operator, sighting).await {
                Ok(Reported::Sent(id)) => m.hit_report_id = id,
                Ok(Reported::Repeat(id)) => {
                    m.hit_report_id = id;
                    m.hit_report_repeated = true;
                }
                Err(e) => {
                    tracing::error!(owner = %m.owner, entry = %m.r#ref, error = %e, "a hit report could not be sent");
                    m.hit_report_error = e.to_string();
                }
            }
        }
    }
}

/// What `m`, a hit on the screen of `request`, reports.
fn sighting(request: &pb::ScreenRequest, m: &wire::ScreenMatch) -> Option<Sighting> {
    let entry = Entry::try_from(m.decoded_entry()?).ok()?;
    let hit = Hit {
        entry_owner: entry.owner.clone(),
        entry_ref: entry.reference.clone(),
        entry_seq: m.entry_seq,
        screened: request.person.clone().and_then(screened_person),
        screened_identifiers: request
            .identifiers
            .iter()
            .filter(|i| !i.kind.trim().is_empty() && !i.value.trim().is_empty())
            .take(MAX_IDENTIFIERS)
            .map(|i| (clipped(&i.kind, 256), clipped(&i.value, 256)))
            .collect(),
        seen_at: request
            .seen_at
            .as_ref()
            .and_then(tocsin_core::from_timestamp),
        seen_place: clipped(&request.seen_place, MAX_PLACE_BYTES),
        screen_ref: clipped(&request.r#ref, MAX_REF_BYTES),
        score: m.score,
        reasons: m
            .reasons
            .iter()
            .take(MAX_REASONS)
            .map(|r| clipped(&r.text, MAX_REASON_LINE_BYTES))
            .filter(|r| !r.trim().is_empty())
            .collect(),
        requested_action: entry.action.to_string(),
    };
    let identified = m.reasons.iter().any(|r| {
        r.kind == pb::match_reason::Kind::Document as i32
            || r.kind == pb::match_reason::Kind::Identifier as i32
    });
    Some(Sighting {
        entry,
        hit,
        identified,
    })
}

/// The person as screened, in the form an alert carries: a date of birth
/// the screen gave as a year only is left out (the reasons still say
/// whether it agreed), and a person with neither name nor document (a
/// screen on identifiers) is none.
///
/// A screen accepts what an alert refuses (blank or overlong parts, more
/// of them than an alert holds): what was screened is kept within an
/// alert's bounds, so a valid screen always makes a valid report.
fn screened_person(mut p: pb::Person) -> Option<Person> {
    if p.date_of_birth.len() != 10 {
        p.date_of_birth.clear();
    }
    let keep = |v: Vec<String>| -> Vec<String> {
        v.into_iter()
            .filter(|s| !s.trim().is_empty())
            .take(MAX_LIST_ITEMS)
            .map(|s| clipped(&s, MAX_FIELD_BYTES))
            .collect()
    };
    p.names = keep(p.names);
    p.aliases = keep(p.aliases);
    p.nationalities = keep(p.nationalities);
    p.documents = p
        .documents
        .into_iter()
        .filter(|d| !d.number.trim().is_empty())
        .take(MAX_LIST_ITEMS)
        .map(|d| pb::Document {
            kind: if d.kind.trim().is_empty() {
                "document".into()
            } else {
                clipped(&d.kind, MAX_FIELD_BYTES)
            },
            number: clipped(&d.number, MAX_FIELD_BYTES),
            issuing_country: clipped(&d.issuing_country, MAX_FIELD_BYTES),
        })
        .collect();
    match Person::try_from(p) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(error = %e, "the person screened does not fit a hit report; reported without it");
            None
        }
    }
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn clipped(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}
