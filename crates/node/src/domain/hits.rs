//! Hit reports: a screen here matched another agency's watchlist entry, so
//! the entry's owner is sent a signed hit report, unless the same person
//! was reported on the same entry within the repeat window.
//!
//! The report is an alert (`Alert::hit` set) to the owner alone, at the
//! entry's precedence and TLP, about the entry's subject: from the commit
//! on, it is delivered, receipted, falls due, is reminded, escalated and
//! acknowledged by the same code as every alert, and the owner's node links
//! it to the subject as it links alerts (`subject show`,
//! REPEATED_UNANSWERED). The owner's acknowledgement comes back here as any
//! recipient's does.

use chrono::{DateTime, Utc};
use prost::Message;
use tocsin_core::alert::{InformationCredibility, SourceReliability};
use tocsin_core::hit::{HIT_CATEGORY, Hit};
use tocsin_core::subject::{normalise_document, normalise_name};
use tocsin_core::watchlist::Entry;
use tocsin_core::{Alert, AlertId, Identity};
use tocsin_proto::{ALERT_PAYLOAD_TYPE, pb};
use tocsin_store::{HitKey, HitOutcome};

use super::{Node, outbound_row};
use crate::Error;

/// How long a report of one person on one entry covers later screens of
/// them, unless the node's configuration says otherwise.
pub(crate) const DEFAULT_REPEAT_WINDOW: std::time::Duration = std::time::Duration::from_secs(3600);

/// A screen's hit on another agency's entry, to report.
#[derive(Debug, Clone)]
pub(crate) struct Sighting {
    /// The entry matched, as held here.
    pub(crate) entry: Entry,
    /// What was seen and how well it matched (its `entry_*` fields name
    /// the entry).
    pub(crate) hit: Hit,
    /// Whether a document or identifier matched, not only names.
    pub(crate) identified: bool,
}

/// What reporting a sighting did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reported {
    /// A new hit report was committed; delivery follows.
    Sent(String),
    /// The same person was reported on this entry within the window: that
    /// report's id.
    Repeat(String),
}

impl Node {
    /// Sends the owner of `sighting.entry` a hit report, or finds the one
    /// sent for the same person on that entry within the repeat window.
    /// Returns once the report is committed.
    pub(crate) async fn report_hit(
        &self,
        operator: &Identity,
        sighting: Sighting,
    ) -> Result<Reported, Error> {
        if operator.agency() != &self.agency {
            return Err(Error::PermissionDenied(format!(
                "{operator} cannot act for {}",
                self.agency
            )));
        }
        let Sighting {
            entry,
            hit,
            identified,
        } = sighting;
        if entry.owner == self.agency || !self.federation.is_member(&entry.owner) {
            return Err(Error::InvalidArgument(format!(
                "{} is not another agency of federation {}: no hit report is due",
                entry.owner,
                self.federation.id()
            )));
        }
        let now = self.now();
        let key = HitKey {
            owner: entry.owner.to_string(),
            entry_ref: entry.reference.clone(),
            person_key: person_key(&hit),
            repeat_since: now
                .checked_sub_signed(self.hit_window)
                .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC),
        };
        let alert = report_of(&self.agency, &entry, hit, identified, now);
        let wire = pb::Alert::from(&alert);
        // The owner's node checks what it receives as any alert; what it
        // would refuse is refused here, naming the field, not sent.
        Alert::try_from(wire.clone())?;
        let payload = wire.encode_to_vec();
        let envelope = self.signer.sign(ALERT_PAYLOAD_TYPE, payload);
        let row = outbound_row(&self.federation, &alert, &envelope, now);
        let due_at = row.due_at;
        match self.store.insert_hit_report(row, key).await? {
            HitOutcome::Sent(_) => {
                tracing::info!(
                    alert = %alert.id,
                    owner = %entry.owner,
                    entry = %entry.reference,
                    precedence = %alert.precedence,
                    "hit report sent"
                );
                self.outbox.wake(&alert.recipients);
                self.tracker.deadline(due_at);
                Ok(Reported::Sent(alert.id.to_string()))
            }
            HitOutcome::Repeat(id) => {
                tracing::info!(
                    earlier = %id,
                    owner = %entry.owner,
                    entry = %entry.reference,
                    "same person on the same entry within the window: no second hit report"
                );
                Ok(Reported::Repeat(id))
            }
        }
    }
}

/// The hit report of `hit` on `entry`, from `reporter`, at `now`.
///
/// The grading is the reporter's about its own check: the source is
/// completely reliable (A: its own officers saw the person), and the
/// information is probably true (2) when a document or identifier matched,
/// possibly true (3) on names alone.
fn report_of(
    reporter: &tocsin_core::AgencyId,
    entry: &Entry,
    hit: Hit,
    identified: bool,
    now: DateTime<Utc>,
) -> Alert {
    let screened = hit
        .screened
        .as_ref()
        .map(|p| tocsin_core::alert::Subject::Person(p.clone()).label())
        .or_else(|| {
            hit.screened_identifiers
                .first()
                .map(|(k, v)| format!("{k} {v}"))
        })
        .unwrap_or_default();
    let mut text = format!(
        "Hit on your watchlist entry {}: {} screened by {reporter}, {}.",
        entry.reference,
        screened,
        hit.summary()
    );
    text.push_str(&format!(" Requested action: {}.", entry.action));
    if !hit.reasons.is_empty() {
        text.push_str(&format!(" Evidence: {}.", hit.reasons.join("; ")));
    }
    // The text is bounded like any alert's; the evidence stays whole in
    // `hit` whatever the text keeps.
    truncate(&mut text, tocsin_core::alert::MAX_TEXT_BYTES);
    Alert {
        id: AlertId::generate(),
        originator: reporter.clone(),
        created_at: now,
        precedence: entry.hit_precedence,
        category: HIT_CATEGORY.to_owned(),
        subjects: vec![entry.subject.clone()],
        text,
        source_reliability: SourceReliability::A,
        information_credibility: if identified {
            InformationCredibility::C2
        } else {
            InformationCredibility::C3
        },
        tlp: entry.tlp,
        recipients: vec![entry.owner.clone()],
        references: Vec::new(),
        expires_at: None,
        respond_by: None,
        hit: Some(hit),
    }
}

fn truncate(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

/// The person as screened, normalised (case, diacritics, word order,
/// document punctuation), so the same person screened twice gives the same
/// key however the two screens wrote them.
fn person_key(hit: &Hit) -> Vec<u8> {
    let mut parts: Vec<String> = Vec::new();
    if let Some(p) = &hit.screened {
        let mut names: Vec<String> = p
            .names
            .iter()
            .chain(&p.aliases)
            .map(|n| normalise_name(n))
            .collect();
        names.sort();
        names.dedup();
        parts.push(names.join("|"));
        parts.push(p.date_of_birth.map(|d| d.to_string()).unwrap_or_default());
        let mut documents: Vec<String> = p
            .documents
            .iter()
            .map(|d| normalise_document(&d.number))
            .collect();
        documents.sort();
        parts.push(documents.join("|"));
    }
    let mut identifiers: Vec<String> = hit
        .screened_identifiers
        .iter()
        .map(|(k, v)| format!("{}:{}", k.to_lowercase(), normalise_document(v)))
        .collect();
    identifiers.sort();
    parts.push(identifiers.join("|"));
    parts.join("\u{1f}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::super::testing::Fixture;
    use super::*;
    use tocsin_core::alert::Person;
    use tocsin_store::Direction;

    fn sighting(f: &Fixture, screened_as: &str) -> Sighting {
        let entry = Entry::try_from(pb::WatchlistEntry {
            owner: "TR-MIT".into(),
            r#ref: "TR-17".into(),
            subject: Some(pb::Subject {
                kind: Some(pb::subject::Kind::Person(pb::Person {
                    names: vec!["Salah Abdeslam".into()],
                    ..Default::default()
                })),
            }),
            reason: "known to MIT".into(),
            action: pb::WatchlistAction::DiscreetCheck as i32,
            hit_precedence: pb::Precedence::Immediate as i32,
            tlp: pb::Tlp::Amber as i32,
            releasable_to: vec!["FR-DGSI".into()],
            ..Default::default()
        })
        .unwrap();
        let hit = Hit {
            entry_owner: entry.owner.clone(),
            entry_ref: entry.reference.clone(),
            entry_seq: 1,
            screened: Some(Person {
                names: vec![screened_as.into()],
                aliases: vec![],
                date_of_birth: None,
                nationalities: vec![],
                documents: vec![],
            }),
            screened_identifiers: vec![],
            seen_at: Some(f.node.now()),
            seen_place: "A2 near Cambrai".into(),
            screen_ref: "GN-1".into(),
            score: 0.96,
            reasons: vec!["names: ABDESLAM ~ ABDESLAM (exact)".into()],
            requested_action: "DISCREET_CHECK".into(),
        };
        Sighting {
            entry,
            hit,
            identified: false,
        }
    }

    #[tokio::test]
    async fn a_hit_sends_the_owner_a_report_at_the_entrys_precedence() {
        let f = Fixture::new();
        let Reported::Sent(id) = f
            .node
            .report_hit(&f.operator(), sighting(&f, "Salah Abdeslam"))
            .await
            .unwrap()
        else {
            panic!("a first hit is sent");
        };
        let view = f.node.get(&id).await.unwrap().expect("stored");
        assert_eq!(view.direction, Direction::Outbound);
        let alert = &view.alert;
        assert_eq!(alert.recipients, [super::super::testing::agency("TR-MIT")]);
        assert_eq!(alert.category, HIT_CATEGORY);
        assert_eq!(alert.precedence, tocsin_core::alert::Precedence::Immediate);
        let hit = alert.hit.as_ref().expect("a hit report");
        assert_eq!(hit.entry_ref, "TR-17");
        assert_eq!(hit.seen_place, "A2 near Cambrai");
        assert!(alert.text.contains("TR-17"), "{}", alert.text);
        // Due by the precedence, like any alert: IMMEDIATE is 1 h.
        assert_eq!(
            view.due_at.unwrap() - alert.created_at,
            chrono::Duration::hours(1)
        );
    }

    #[tokio::test]
    async fn the_same_person_within_the_window_is_one_report() {
        let f = Fixture::new();
        let first = f
            .node
            .report_hit(&f.operator(), sighting(&f, "Salah Abdeslam"))
            .await
            .unwrap();
        let Reported::Sent(id) = first else {
            panic!("{first:?}")
        };
        // Written otherwise, ten minutes later: the same person.
        f.clock.advance(chrono::Duration::minutes(10));
        let again = f
            .node
            .report_hit(&f.operator(), sighting(&f, "ABDESLAM, Salah"))
            .await
            .unwrap();
        assert_eq!(again, Reported::Repeat(id.clone()));
        // Another person on the same entry is reported.
        let other = f
            .node
            .report_hit(&f.operator(), sighting(&f, "Salah Abdesalam"))
            .await
            .unwrap();
        assert!(
            matches!(other, Reported::Sent(ref o) if *o != id),
            "{other:?}"
        );
        // After the window, the same person is reported again.
        f.clock.advance(chrono::Duration::hours(2));
        let later = f
            .node
            .report_hit(&f.operator(), sighting(&f, "Salah Abdeslam"))
            .await
            .unwrap();
        assert!(
            matches!(later, Reported::Sent(ref l) if *l != id),
            "{later:?}"
        );
    }

    #[tokio::test]
    async fn no_report_on_an_own_entry_or_for_another_agency() {
        let f = Fixture::new();
        let mut own = sighting(&f, "Salah Abdeslam");
        own.entry.owner = super::super::testing::agency("FR-DGSI");
        let err = f.node.report_hit(&f.operator(), own).await.unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
        let stranger = Identity::Operator {
            agency: super::super::testing::agency("TR-MIT"),
            name: "mallory".into(),
        };
        let err = f
            .node
            .report_hit(&stranger, sighting(&f, "Salah Abdeslam"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::PermissionDenied(_)), "{err:?}");
    }
}
