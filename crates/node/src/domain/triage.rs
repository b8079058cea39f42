//! Triage: what this agency owes, ranked by risk. The ranking is
//! `tocsin_triage::rank`, a pure function; this gathers its inputs (each
//! owed alert or hit report, and what the store knows of its linked
//! subject) and pairs each ranked item with the alert's view.

use std::collections::HashMap;

use tocsin_core::hit::HIT_CATEGORY;
use tocsin_triage::{Item, Kind, Ranked};

use super::Node;
use crate::Error;
use crate::views::{self, AlertView};

/// The most owed items ranked at once (the soonest due, if more are
/// owed): ranking is cheap, reading each alert's subject is not.
pub(crate) const MAX_RANKED: u32 = 10_000;

/// A ranked item and the alert it is.
#[derive(Debug, Clone)]
pub(crate) struct TriagedView {
    /// Its place and the reasons.
    pub(crate) ranked: Ranked,
    /// The alert or hit report.
    pub(crate) view: AlertView,
}

impl Node {
    /// The first `limit` of what this agency owes, ranked. Everything owed
    /// (up to [`MAX_RANKED`]) is ranked before the list is cut, so an item
    /// raised by an escalator is never left out for being due later.
    pub(crate) async fn triage(&self, limit: u32) -> Result<Vec<TriagedView>, Error> {
        let owed: Vec<AlertView> = self
            .store
            .list_owed(MAX_RANKED)
            .await?
            .iter()
            .map(views::alert)
            .collect::<Result<_, _>>()?;
        let ids: Vec<String> = owed.iter().map(|v| v.alert.id.to_string()).collect();
        let contexts = self
            .store
            .subject_contexts(ids, self.agency.to_string(), HIT_CATEGORY)
            .await?;
        let now = self.now();
        let items = owed
            .iter()
            .map(|v| {
                let id = v.alert.id.to_string();
                let context = contexts.get(&id).cloned().unwrap_or_default();
                let mut originators = context.originators;
                let kind = if v.alert.hit.is_some() {
                    Kind::HitReport
                } else {
                    // An alert linked to nothing still has its own sender.
                    if !originators.contains(&v.alert.originator.to_string()) {
                        originators.push(v.alert.originator.to_string());
                        originators.sort();
                    }
                    Kind::Alert
                };
                Item {
                    id,
                    kind,
                    originator: v.alert.originator.to_string(),
                    subject: v.alert.subjects_label(),
                    precedence: v.alert.precedence,
                    due_at: v.due_at.unwrap_or(now),
                    reliability: v.alert.source_reliability,
                    credibility: v.alert.information_credibility,
                    originators,
                    hits: context.hits,
                    repeated_unanswered: context.flagged,
                }
            })
            .collect();
        let mut by_id: HashMap<String, AlertView> = owed
            .into_iter()
            .map(|v| (v.alert.id.to_string(), v))
            .collect();
        Ok(tocsin_triage::rank(items, now)
            .into_iter()
            .take(limit as usize)
            .filter_map(|ranked| {
                let view = by_id.remove(&ranked.item.id)?;
                Some(TriagedView { ranked, view })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Fixture, agency, flash_about};
    use tocsin_proto::pb;

    #[tokio::test]
    async fn what_we_owe_is_ranked_with_the_reasons() {
        let f = Fixture::new();
        let tr = f.signer_of("TR-MIT");
        // A ROUTINE alert due in a week, and a FLASH one due in 5 minutes.
        let mut routine = flash_about("Jean Dupont", &["FR-DGSI"]);
        routine.precedence = pb::Precedence::Routine as i32;
        let slow = f.signed_alert(&tr, "TR-MIT", routine);
        f.node.receive(&agency("TR-MIT"), slow).await.unwrap();
        let fast = f.signed_alert(&tr, "TR-MIT", flash_about("Ahmet Yilmaz", &["FR-DGSI"]));
        f.node.receive(&agency("TR-MIT"), fast).await.unwrap();
        // What we sent is not owed.
        f.send(flash_about("Jean Dupont", &["TR-MIT"])).await;

        let ranked = f.node.triage(100).await.unwrap();
        let subjects: Vec<String> = ranked
            .iter()
            .map(|t| t.ranked.item.subject.clone())
            .collect();
        assert_eq!(subjects.len(), 2, "{subjects:?}");
        assert!(subjects[0].starts_with("Ahmet Yilmaz"), "{subjects:?}");
        let text = ranked[0].ranked.reasons_text();
        assert!(
            text.starts_with("FLASH; ranked as FLASH") || text.starts_with("FLASH; due in"),
            "{text}"
        );
        // Jean Dupont: TR-MIT's alert and ours are about him, two agencies.
        let second = &ranked[1].ranked;
        assert_eq!(second.item.originators, ["FR-DGSI", "TR-MIT"]);
        assert!(
            second.reasons_text().contains("2 agencies on this subject"),
            "{}",
            second.reasons_text()
        );
    }
}
