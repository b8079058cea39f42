//! The text of the events the store writes on the domain's behalf: the
//! store records what happened, the domain says it in words. Where the
//! text depends on what the store finds inside its transaction (which
//! deadlines passed, which alerts a subject links), the store is handed
//! one of these functions; otherwise the text travels in the request.

use chrono::{DateTime, Utc};
use tocsin_store::{AlertStatus, DeadlineFlag, Direction, Flagged, OutcomeWords, SubjectFlag};

/// How event texts write a deadline.
const DEADLINE: &str = "%Y-%m-%d %H:%M UTC";

/// SUBMITTED: an alert this agency sends, to `recipients`.
pub(crate) fn sent(alert: &tocsin_core::Alert, recipients: &[String]) -> String {
    match &alert.hit {
        Some(hit) => format!(
            "hit report sent to {}: {}",
            recipients.join(", "),
            hit.summary()
        ),
        None => format!("sent to {}", recipients.join(", ")),
    }
}

/// RECEIVED: an alert from its originator.
pub(crate) fn received(alert: &tocsin_core::Alert) -> String {
    match &alert.hit {
        Some(hit) => format!("hit report from {}: {}", alert.originator, hit.summary()),
        None => format!("received from {}", alert.originator),
    }
}

/// SUPERSEDED or CANCELLED: an earlier alert that alert `by` closed.
pub(crate) fn closed(status: AlertStatus, by: &str) -> String {
    let verb = if status == AlertStatus::Cancelled {
        "cancelled"
    } else {
        "superseded"
    };
    format!("{verb} by {by}; its clock is stopped")
}

/// How the outbox's outcomes read when the store records them.
pub const OUTCOME_WORDS: OutcomeWords = OutcomeWords {
    delivered,
    rejected,
    refused_ack,
};

/// DELIVERED: `recipient`'s receipt, with when it committed the alert.
fn delivered(recipient: &str, committed_at: DateTime<Utc>) -> String {
    format!(
        "receipt from {recipient}: committed {}",
        committed_at.format("%Y-%m-%d %H:%M:%S UTC")
    )
}

/// REJECTED: `recipient` refused our alert for good.
fn rejected(recipient: &str, error: &str) -> String {
    format!("{recipient} refused it: {error}")
}

/// REJECTED, of an alert we received: its originator refused our
/// acknowledgement for good.
fn refused_ack(originator: &str, ack_id: &str, error: &str) -> String {
    format!("{originator} refused our acknowledgement {ack_id} for good: {error}")
}

/// OVERDUE or UNDELIVERED: a deadline that passed unanswered.
pub(crate) fn flagged(f: &Flagged) -> String {
    let due = f.due_at.format(DEADLINE);
    match (f.direction, f.flag) {
        (Direction::Outbound, DeadlineFlag::Undelivered) => {
            format!("{} never received it; deadline {due} passed", f.agency)
        }
        (Direction::Outbound, _) => {
            format!("{} has not acknowledged; deadline {due} passed", f.agency)
        }
        (Direction::Inbound, _) => {
            format!(
                "we have not acknowledged {}'s alert; deadline {due} passed",
                f.agency
            )
        }
    }
}

/// FLAGGED: a REPEATED_UNANSWERED flag raised or grown; `Inbound` when
/// this agency is the one that left the alerts unanswered.
pub(crate) fn repeated(flag: &SubjectFlag, direction: Direction) -> String {
    let who = match direction {
        Direction::Inbound => "we",
        Direction::Outbound => flag.recipient.as_str(),
    };
    format!(
        "REPEATED_UNANSWERED: {who} left {} alerts about {} unanswered: {}",
        flag.alert_ids.len(),
        flag.label,
        flag.alert_ids.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use tocsin_proto::pb;

    use super::*;

    /// The texts are the ones the store wrote before it was handed them:
    /// operators, tests and post-mortems read them.
    #[test]
    fn texts_read_as_before() {
        let due_at = chrono::Utc.with_ymd_and_hms(2026, 3, 1, 9, 30, 0).unwrap();
        let f = |direction, flag| Flagged {
            alert_id: "A1".into(),
            agency: "FR-DGSI".into(),
            direction,
            flag,
            due_at,
        };
        assert_eq!(
            flagged(&f(Direction::Outbound, DeadlineFlag::Undelivered)),
            "FR-DGSI never received it; deadline 2026-03-01 09:30 UTC passed"
        );
        assert_eq!(
            flagged(&f(Direction::Outbound, DeadlineFlag::Overdue)),
            "FR-DGSI has not acknowledged; deadline 2026-03-01 09:30 UTC passed"
        );
        assert_eq!(
            flagged(&f(Direction::Inbound, DeadlineFlag::Overdue)),
            "we have not acknowledged FR-DGSI's alert; deadline 2026-03-01 09:30 UTC passed"
        );
        let flag = SubjectFlag {
            subject: "doc:x".into(),
            recipient: "FR-DGSI".into(),
            label: "Jane Doe".into(),
            alert_ids: vec!["A1".into(), "A2".into()],
            flagged_at: due_at,
        };
        assert_eq!(
            repeated(&flag, Direction::Outbound),
            "REPEATED_UNANSWERED: FR-DGSI left 2 alerts about Jane Doe unanswered: A1, A2"
        );
        assert_eq!(
            repeated(&flag, Direction::Inbound),
            "REPEATED_UNANSWERED: we left 2 alerts about Jane Doe unanswered: A1, A2"
        );
        assert_eq!(
            closed(AlertStatus::Cancelled, "A3"),
            "cancelled by A3; its clock is stopped"
        );
        assert_eq!(
            closed(AlertStatus::Superseded, "A3"),
            "superseded by A3; its clock is stopped"
        );
        let mut wire = super::super::testing::flash_about("Jane Doe", &["FR-DGSI", "BE-VSSE"]);
        wire.id = tocsin_core::AlertId::generate().to_string();
        wire.originator = "TR-MIT".into();
        wire.created_at = Some(tocsin_core::to_timestamp(chrono::Utc::now()));
        let alert = tocsin_core::Alert::try_from(wire.clone()).unwrap();
        assert_eq!(
            sent(&alert, &["FR-DGSI".into(), "BE-VSSE".into()]),
            "sent to FR-DGSI, BE-VSSE"
        );
        assert_eq!(received(&alert), "received from TR-MIT");
        wire.recipients = vec!["BE-VSSE".into()];
        wire.category = tocsin_core::hit::HIT_CATEGORY.into();
        wire.hit = Some(pb::WatchlistHit {
            entry_owner: "BE-VSSE".into(),
            entry_ref: "BE-17".into(),
            screened: Some(pb::Person {
                names: vec!["Jane Doe".into()],
                ..Default::default()
            }),
            seen_place: "Leros".into(),
            score: 0.9,
            ..Default::default()
        });
        let hit = tocsin_core::Alert::try_from(wire).unwrap();
        assert_eq!(
            received(&hit),
            "hit report from TR-MIT: seen at Leros, matching BE-VSSE's entry BE-17 (score 0.90)"
        );
        let committed = chrono::Utc.with_ymd_and_hms(2026, 3, 1, 9, 30, 5).unwrap();
        assert_eq!(
            (OUTCOME_WORDS.delivered)("FR-DGSI", committed),
            "receipt from FR-DGSI: committed 2026-03-01 09:30:05 UTC"
        );
        assert_eq!(
            (OUTCOME_WORDS.rejected)("FR-DGSI", "no such recipient"),
            "FR-DGSI refused it: no such recipient"
        );
        assert_eq!(
            (OUTCOME_WORDS.refused_ack)("TR-MIT", "K1", "late"),
            "TR-MIT refused our acknowledgement K1 for good: late"
        );
    }
}
