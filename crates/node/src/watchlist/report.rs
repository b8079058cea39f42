//! After a screen: each hit on another agency's entry is reported to its
//! owner through the domain (`Node::report_hit`), and the report's id is
//! set on the match the operator gets. A hit on this agency's own entry
//! needs no report: the operator is the owner.

use tocsin_core::alert::Person;
use tocsin_core::hit::Hit;
use tocsin_core::watchlist::Entry;
use tocsin_core::{AgencyId, Identity};
use tocsin_proto::pb;

use crate::domain::{Node, Reported, Sighting};

/// Reports every hit of `results` on another agency's entry, as
/// `operator`, and records on each match the report sent or repeated.
/// Stops at the first report that cannot be committed: the operator is
/// told, and a retried screen finds the reports already sent.
pub(crate) async fn report_hits(
    node: &Node,
    agency: &AgencyId,
    operator: &Identity,
    results: &mut [pb::ScreenResponse],
) -> Result<(), crate::Error> {
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
            match node.report_hit(operator, sighting).await? {
                Reported::Sent(id) => m.hit_report_id = id,
                Reported::Repeat(id) => {
                    m.hit_report_id = id;
                    m.hit_report_repeated = true;
                }
            }
        }
    }
    Ok(())
}

/// What `m`, a hit on the screen of `request`, reports.
fn sighting(request: &pb::ScreenRequest, m: &pb::ScreenMatch) -> Option<Sighting> {
    let entry = Entry::try_from(m.entry.clone()?).ok()?;
    let hit = Hit {
        entry_owner: entry.owner.clone(),
        entry_ref: entry.reference.clone(),
        entry_seq: m.entry_seq,
        screened: request.person.clone().and_then(screened_person),
        screened_identifiers: request
            .identifiers
            .iter()
            .map(|i| (i.kind.clone(), i.value.clone()))
            .collect(),
        seen_at: request
            .seen_at
            .as_ref()
            .and_then(tocsin_core::from_timestamp),
        seen_place: request.seen_place.clone(),
        screen_ref: request.r#ref.clone(),
        score: m.score,
        reasons: m.reasons.iter().map(|r| r.text.clone()).collect(),
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
fn screened_person(mut p: pb::Person) -> Option<Person> {
    if p.date_of_birth.len() != 10 {
        p.date_of_birth.clear();
    }
    Person::try_from(p).ok()
}
