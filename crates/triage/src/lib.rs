//! Triage: what an agency owes (alerts and hit reports it has not
//! acknowledged), ranked by risk, each with the reasons shown.
//!
//! A pure function over records ([`rank`]): no store, no network, no
//! clock but the `now` it is given. The node gathers each [`Item`] (the
//! alert's precedence, deadline and grading, and what it knows of the
//! alert's linked subject) and shows the [`Ranked`] result as it is.
//!
//! # The rule
//!
//! Items are ordered by these keys, in this order; each is shown among
//! the item's reasons, so an analyst can see why one item is above another:
//!
//! 1. **Tier**: the item's own precedence (FLASH, IMMEDIATE, PRIORITY,
//!    ROUTINE), raised one level (never above FLASH, and never more than
//!    one level however many apply) by any of the **escalators**:
//!    - REPEATED_UNANSWERED on its subject (this agency has left warnings
//!      about the subject unanswered before);
//!    - **corroboration**: two or more independent originators (distinct
//!      agencies) reporting on the linked subject; several alerts from one
//!      agency are one source, not corroboration;
//!    - a **watchlist hit** on the subject (a partner's check found the
//!      person; the item may be that hit report itself);
//!    - a **strong grading**: source reliability A or B *and* information
//!      credibility 1 or 2 (Admiralty code; the two are kept as two fields
//!      and shown as written, "B2", never fused into a number).
//! 2. **Still answerable in time before overdue**: an item whose deadline
//!    has not passed can still be answered on time; one already overdue
//!    has lost that, and its lateness is shown, but it does not climb over
//!    a fresh warning by having waited longer.
//! 3. **More escalators first**.
//! 4. **Deadline**, soonest first (for overdue items: longest overdue
//!    first).
//! 5. **Grading**: reliability (A first), then credibility (1 first).
//! 6. The id, so that equal items keep one order every time.
//!
//! Ranking is a sort on a key computed once per item: O(n log n), about
//! 100,000 items in a few tens of milliseconds (`tocsin-bench triage`).

#![forbid(unsafe_code)]

use std::cmp::Ordering;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tocsin_core::alert::{InformationCredibility, Precedence, SourceReliability};
use tocsin_core::human_duration;

/// How many independent originators make corroboration.
pub const CORROBORATION: usize = 2;

/// What is owed: an alert, or a hit report on one of our entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An alert.
    Alert,
    /// A hit report: a partner's screen matched our watchlist entry.
    HitReport,
}

/// One item this agency owes an acknowledgement, with what the node knows
/// of its linked subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    /// The alert's id.
    pub id: String,
    /// Alert or hit report.
    pub kind: Kind,
    /// Who sent it.
    pub originator: String,
    /// A one-line label of its subjects.
    pub subject: String,
    /// Its precedence.
    pub precedence: Precedence,
    /// Its acknowledgement deadline.
    pub due_at: DateTime<Utc>,
    /// Admiralty source reliability.
    pub reliability: SourceReliability,
    /// Admiralty information credibility.
    pub credibility: InformationCredibility,
    /// Distinct agencies that sent alerts about the linked subject (this
    /// item's originator among them), sorted.
    pub originators: Vec<String>,
    /// Hit reports about the linked subject (this item, if it is one).
    pub hits: usize,
    /// Whether the subject is flagged REPEATED_UNANSWERED.
    pub repeated_unanswered: bool,
}

/// Why an item ranks where it does: one input of the rule each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// Its own precedence.
    Precedence {
        /// The precedence.
        precedence: Precedence,
    },
    /// Raised one tier, to this precedence, by the escalators that follow.
    Raised {
        /// The tier it ranks in.
        to: Precedence,
    },
    /// Time left before the deadline.
    DueIn {
        /// Seconds left.
        seconds: i64,
    },
    /// The deadline passed this long ago.
    Overdue {
        /// Seconds since the deadline.
        seconds: i64,
    },
    /// The Admiralty grading, as written ("B2"); `strong` when it is an
    /// escalator.
    Grading {
        /// Source reliability.
        reliability: SourceReliability,
        /// Information credibility.
        credibility: InformationCredibility,
        /// A or B and 1 or 2.
        strong: bool,
    },
    /// Independent agencies on the subject.
    Corroborated {
        /// The agencies.
        agencies: Vec<String>,
    },
    /// Watchlist hits on the subject.
    Hits {
        /// How many.
        count: usize,
    },
    /// REPEATED_UNANSWERED on the subject.
    RepeatedUnanswered,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Precedence { precedence } => write!(f, "{precedence}"),
            Reason::Raised { to } => write!(f, "ranked as {to}"),
            Reason::DueIn { seconds } => write!(f, "due in {}", span(*seconds)),
            Reason::Overdue { seconds } => write!(f, "overdue by {}", span(*seconds)),
            Reason::Grading {
                reliability,
                credibility,
                strong,
            } => {
                let grade = format!("{reliability}{credibility}");
                if *strong {
                    write!(f, "{grade} (reliable source, probably true)")
                } else {
                    write!(f, "{grade}")
                }
            }
            Reason::Corroborated { agencies } => write!(
                f,
                "{} agencies on this subject ({})",
                agencies.len(),
                agencies.join(", ")
            ),
            Reason::Hits { count: 1 } => write!(f, "1 watchlist hit on this subject"),
            Reason::Hits { count } => write!(f, "{count} watchlist hits on this subject"),
            Reason::RepeatedUnanswered => write!(f, "REPEATED_UNANSWERED on this subject"),
        }
    }
}

fn span(seconds: i64) -> String {
    human_duration(seconds.max(0) as u64)
}

/// An item in its place, with the reasons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ranked {
    /// 1 for the first.
    pub rank: usize,
    /// The tier it ranks in: its precedence, or one higher if raised.
    pub tier: Precedence,
    /// The item.
    pub item: Item,
    /// Why, one input each: precedence, raise, deadline, grading, then the
    /// escalators.
    pub reasons: Vec<Reason>,
}

impl Ranked {
    /// The reasons as one line: "IMMEDIATE; ranked as FLASH; due in 40 min;
    /// B2 (reliable source, probably true); 3 agencies on this subject".
    pub fn reasons_text(&self) -> String {
        self.reasons
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// One level more urgent, FLASH staying FLASH.
fn raised(p: Precedence) -> Precedence {
    match p {
        Precedence::Flash | Precedence::Immediate => Precedence::Flash,
        Precedence::Priority => Precedence::Immediate,
        Precedence::Routine => Precedence::Priority,
    }
}

fn strong(item: &Item) -> bool {
    matches!(
        item.reliability,
        SourceReliability::A | SourceReliability::B
    ) && matches!(
        item.credibility,
        InformationCredibility::C1 | InformationCredibility::C2
    )
}

/// The sort key of an item and its reasons.
struct Keyed {
    tier: Precedence,
    overdue: bool,
    escalators: usize,
    reasons: Vec<Reason>,
    item: Item,
}

fn keyed(item: Item, now: DateTime<Utc>) -> Keyed {
    let strong = strong(&item);
    let corroborated = item.originators.len() >= CORROBORATION;
    let hit = item.hits > 0;
    let escalators = [item.repeated_unanswered, corroborated, hit, strong]
        .iter()
        .filter(|e| **e)
        .count();
    let tier = if escalators > 0 {
        raised(item.precedence)
    } else {
        item.precedence
    };
    let left = (item.due_at - now).num_seconds();
    let overdue = item.due_at <= now;
    let mut reasons = vec![Reason::Precedence {
        precedence: item.precedence,
    }];
    if tier != item.precedence {
        reasons.push(Reason::Raised { to: tier });
    }
    reasons.push(if overdue {
        Reason::Overdue { seconds: -left }
    } else {
        Reason::DueIn { seconds: left }
    });
    reasons.push(Reason::Grading {
        reliability: item.reliability,
        credibility: item.credibility,
        strong,
    });
    if item.repeated_unanswered {
        reasons.push(Reason::RepeatedUnanswered);
    }
    if corroborated {
        reasons.push(Reason::Corroborated {
            agencies: item.originators.clone(),
        });
    }
    if hit {
        reasons.push(Reason::Hits { count: item.hits });
    }
    Keyed {
        tier,
        overdue,
        escalators,
        reasons,
        item,
    }
}

fn order(a: &Keyed, b: &Keyed) -> Ordering {
    a.tier
        .cmp(&b.tier)
        .then(a.overdue.cmp(&b.overdue))
        .then(b.escalators.cmp(&a.escalators))
        .then(a.item.due_at.cmp(&b.item.due_at))
        .then(a.item.reliability.cmp(&b.item.reliability))
        .then(a.item.credibility.cmp(&b.item.credibility))
        .then_with(|| a.item.id.cmp(&b.item.id))
}

/// Ranks `items` at `now` by the rule in the crate's documentation.
pub fn rank(items: Vec<Item>, now: DateTime<Utc>) -> Vec<Ranked> {
    let mut keyed: Vec<Keyed> = items.into_iter().map(|i| keyed(i, now)).collect();
    keyed.sort_unstable_by(order);
    keyed
        .into_iter()
        .enumerate()
        .map(|(i, k)| Ranked {
            rank: i + 1,
            tier: k.tier,
            item: k.item,
            reasons: k.reasons,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn now() -> DateTime<Utc> {
        "2015-11-12T10:00:00Z".parse().unwrap()
    }

    fn item(id: &str, precedence: Precedence, due_in_min: i64) -> Item {
        Item {
            id: id.into(),
            kind: Kind::Alert,
            originator: "XX-ONE".into(),
            subject: format!("subject of {id}"),
            precedence,
            due_at: now() + Duration::minutes(due_in_min),
            reliability: SourceReliability::C,
            credibility: InformationCredibility::C3,
            originators: vec!["XX-ONE".into()],
            hits: 0,
            repeated_unanswered: false,
        }
    }

    fn ids(ranked: &[Ranked]) -> Vec<&str> {
        ranked.iter().map(|r| r.item.id.as_str()).collect()
    }

    #[test]
    fn precedence_first_then_the_deadline() {
        let ranked = rank(
            vec![
                item("routine", Precedence::Routine, 10),
                item("immediate-late", Precedence::Immediate, 50),
                item("immediate-soon", Precedence::Immediate, 20),
                item("flash", Precedence::Flash, 9),
            ],
            now(),
        );
        assert_eq!(
            ids(&ranked),
            ["flash", "immediate-soon", "immediate-late", "routine"]
        );
        assert_eq!(ranked[0].rank, 1);
        assert_eq!(ranked[1].reasons_text(), "IMMEDIATE; due in 20 min; C3");
    }

    #[test]
    fn ties_keep_one_order_by_grading_then_id() {
        let mut b = item("b", Precedence::Priority, 30);
        b.reliability = SourceReliability::B;
        b.credibility = InformationCredibility::C3;
        let a = item("a", Precedence::Priority, 30);
        let c = item("c", Precedence::Priority, 30);
        let first = rank(vec![c.clone(), a.clone(), b.clone()], now());
        let again = rank(vec![a, b, c], now());
        assert_eq!(ids(&first), ["b", "a", "c"]);
        assert_eq!(first, again);
    }

    #[test]
    fn one_agency_twice_is_not_corroboration() {
        // Two alerts from TR-MIT on the subject: one source.
        let mut once = item("one-agency", Precedence::Priority, 30);
        once.originators = vec!["TR-MIT".into()];
        let mut twice = item("two-agencies", Precedence::Priority, 60);
        twice.originators = vec!["IQ-INIS".into(), "TR-MIT".into()];
        let ranked = rank(vec![once, twice], now());
        assert_eq!(ids(&ranked), ["two-agencies", "one-agency"]);
        assert_eq!(ranked[0].tier, Precedence::Immediate);
        assert_eq!(ranked[1].tier, Precedence::Priority);
        assert!(
            ranked[0]
                .reasons_text()
                .contains("2 agencies on this subject (IQ-INIS, TR-MIT)"),
            "{}",
            ranked[0].reasons_text()
        );
        assert!(!ranked[1].reasons_text().contains("agencies"));
    }

    #[test]
    fn escalators_raise_one_tier_only() {
        let mut all = item("all", Precedence::Routine, 30);
        all.repeated_unanswered = true;
        all.hits = 2;
        all.originators = vec!["A".into(), "B".into(), "C".into()];
        all.reliability = SourceReliability::A;
        all.credibility = InformationCredibility::C1;
        let priority = item("priority", Precedence::Priority, 10);
        let ranked = rank(vec![all, priority], now());
        // Raised from ROUTINE to PRIORITY, not beyond: the PRIORITY item
        // due sooner still ties on tier; the one with more evidence leads.
        assert_eq!(ranked[0].item.id, "all");
        assert_eq!(ranked[0].tier, Precedence::Priority);
        assert_eq!(
            ranked[0].reasons_text(),
            "ROUTINE; ranked as PRIORITY; due in 30 min; A1 (reliable source, probably true); \
             REPEATED_UNANSWERED on this subject; 3 agencies on this subject (A, B, C); \
             2 watchlist hits on this subject"
        );
    }

    #[test]
    fn a_fresh_warning_ranks_above_an_old_overdue_one_of_its_tier() {
        // Iraq's IMMEDIATE warning arrives; two notices from Turkey, months
        // overdue and flagged REPEATED_UNANSWERED, are raised to IMMEDIATE.
        let mut iraq = item("iraq", Precedence::Immediate, 60);
        iraq.reliability = SourceReliability::C;
        let mut mit = item("mit", Precedence::Priority, -150 * 24 * 60);
        mit.repeated_unanswered = true;
        mit.reliability = SourceReliability::B;
        mit.credibility = InformationCredibility::C2;
        let ranked = rank(vec![mit, iraq], now());
        assert_eq!(ids(&ranked), ["iraq", "mit"]);
        assert!(
            ranked[1].reasons_text().contains("overdue by 150 days"),
            "{}",
            ranked[1].reasons_text()
        );
    }

    #[test]
    fn a_hit_on_the_subject_raises_it() {
        let mut hit = item("hit", Precedence::Routine, 60 * 24);
        hit.kind = Kind::HitReport;
        hit.hits = 1;
        let routine = item("routine", Precedence::Routine, 10);
        let ranked = rank(vec![routine, hit], now());
        assert_eq!(ids(&ranked), ["hit", "routine"]);
        assert!(
            ranked[0]
                .reasons_text()
                .ends_with("1 watchlist hit on this subject")
        );
    }
}
