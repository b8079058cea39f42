//! Every shipped scenario (`deploy/demo/scenarios/*.toml`, a new file is
//! covered by being there) replayed through the test kit: real nodes in
//! process, mutual TLS on loopback, SQLite stores, on one manual clock.
//!
//! Each post-mortem must agree with what its scenario file and the
//! federation's policy imply (when each alert was sent and received, its
//! deadline, each acknowledgement's time and lateness, each flag and each
//! ladder step at its time); the shipped scenarios must also tell the
//! story they are there to tell, the facts `tocsin demo` shows on real
//! processes (crates/cli/tests/cli.rs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use tocsin_core::alert::Disposition;
use tocsin_core::federation::Federation;
use tocsin_scenario::{Action, DeadlineFlag, LadderStep, PostMortem, RecipientReport, Scenario};
use tocsin_testkit::scenario::ScenarioTest;

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/demo")
}

fn shipped() -> Vec<PathBuf> {
    let dir = demo().join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// Whether `agency`'s node is down at `at`, by the scenario's stop and
/// start steps (a step at `at` has happened by then).
fn down_at(s: &Scenario, agency: &str, at: DateTime<Utc>) -> bool {
    let mut down = false;
    for step in s.steps.iter().filter(|st| st.at <= at) {
        match &step.action {
            Action::Stop { agency: a } if a.as_str() == agency => down = true,
            Action::Start { agency: a } if a.as_str() == agency => down = false,
            _ => {}
        }
    }
    down
}

/// When `agency`'s node is up again after `at` (the scenario's end if the
/// scenario leaves it down: the post-mortem starts it again).
fn back_up(s: &Scenario, agency: &str, at: DateTime<Utc>) -> DateTime<Utc> {
    s.steps
        .iter()
        .filter(|st| st.at >= at)
        .find_map(|st| match &st.action {
            Action::Start { agency: a } if a.as_str() == agency => Some(st.at),
            _ => None,
        })
        .unwrap_or(s.end)
}

/// What the scenario file and the federation's policy say the post-mortem
/// holds, alert by alert and recipient by recipient: on a manual clock
/// every time is exact.
fn agrees_with_the_file(s: &Scenario, fed: &Federation, pm: &PostMortem) {
    let name = &s.name;
    assert_eq!(&pm.scenario, name);
    // What each label was sent as: originator, recipients, precedence.
    let mut sent = BTreeMap::new();
    let mut closed_at = BTreeMap::new();
    for step in &s.steps {
        match &step.action {
            Action::Send { from, label, alert } => {
                sent.insert(
                    label.clone(),
                    (
                        step.at,
                        from.clone(),
                        alert.recipients.clone(),
                        alert.precedence,
                    ),
                );
            }
            Action::Cancel {
                from,
                label,
                as_label,
                ..
            } => {
                let (_, _, recipients, precedence) = sent[label].clone();
                sent.insert(
                    as_label.clone(),
                    (step.at, from.clone(), recipients, precedence),
                );
                closed_at.insert(label.clone(), step.at);
            }
            _ => {}
        }
    }
    assert_eq!(pm.alerts.len(), sent.len(), "{name}: {pm:#?}");
    let mut deliveries = 0;
    for (label, (at, from, recipients, precedence)) in &sent {
        let a = pm
            .alert(label)
            .unwrap_or_else(|| panic!("{name}: no {label} in the post-mortem"));
        assert_eq!(&a.originator, from, "{name}/{label}");
        assert_eq!(a.precedence, *precedence, "{name}/{label}");
        assert_eq!(a.sent_at, Some(*at), "{name}/{label}");
        let mut got: Vec<&str> = a.recipients.iter().map(|r| r.agency.as_str()).collect();
        let mut want: Vec<&str> = recipients.iter().map(|r| r.as_str()).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{name}/{label}");
        let allowance = fed.deadlines.for_precedence(*precedence);
        for r in &a.recipients {
            deliveries += 1;
            let closed = closed_at.get(label).copied();
            delivery_agrees_with_the_file(s, fed, label, *at, allowance, closed, r);
        }
    }
    // Each screen's hit report: sent at the screen's time, to the entry's
    // owner, at the entry's precedence, then like any alert.
    let mut entries = BTreeMap::new();
    for step in &s.steps {
        if let Action::Watchlist {
            from,
            entries: listed,
        } = &step.action
        {
            for e in listed {
                entries.insert((from.to_string(), e.reference.clone()), e.clone());
            }
        }
    }
    let mut reports = 0;
    for step in &s.steps {
        let Action::Screen {
            by,
            label,
            place,
            seen_at,
            ..
        } = &step.action
        else {
            continue;
        };
        let who = format!("{name}/{label}");
        let h = pm
            .hit(label)
            .unwrap_or_else(|| panic!("{who}: no hit report in the post-mortem"));
        if h.label != *label {
            // A repeat of an earlier report, told there.
            continue;
        }
        reports += 1;
        assert_eq!(&h.screened_by, by, "{who}");
        assert_eq!(h.sent_at, Some(step.at), "{who}");
        assert_eq!(h.seen_at, Some(seen_at.unwrap_or(step.at)), "{who}");
        assert_eq!(&h.seen_place, place, "{who}");
        let entry = entries
            .get(&(h.entry_owner.to_string(), h.entry_ref.clone()))
            .unwrap_or_else(|| panic!("{who}: {h:?} is not an entry of the file"));
        assert_eq!(h.precedence, entry.hit_precedence, "{who}");
        assert_eq!(h.requested_action, entry.action.to_string(), "{who}");
        assert!(h.score >= 0.78 && h.score <= 1.0, "{who}: {h:?}");
        assert_eq!(h.owner.agency, h.entry_owner, "{who}");
        let allowance = fed.deadlines.for_precedence(h.precedence);
        delivery_agrees_with_the_file(s, fed, label, step.at, allowance, None, &h.owner);
    }
    assert_eq!(pm.hits.len(), reports, "{name}: {:#?}", pm.hits);
    let totals = &pm.totals;
    assert_eq!(totals.deliveries, deliveries, "{name}");
    assert_eq!(
        totals.in_time + totals.late + totals.never_acknowledged,
        deliveries,
        "{name}"
    );
    assert_eq!(totals.subjects_flagged, pm.repeated_unanswered.len());
    assert_eq!(totals.hit_reports, reports, "{name}");
    assert_eq!(
        totals.hits_in_time + totals.hits_late + totals.hits_unanswered,
        reports,
        "{name}"
    );
}

/// What the file and the federation's policy say of one delivery of the
/// alert (or hit report) `label`, sent at `at` with `allowance` to answer,
/// closed by a cancel at `closed` if it was: when it was received, its
/// deadline, each acknowledgement and its lateness, the flag and the
/// ladder steps at their times.
fn delivery_agrees_with_the_file(
    s: &Scenario,
    fed: &Federation,
    label: &str,
    at: DateTime<Utc>,
    allowance: std::time::Duration,
    closed: Option<DateTime<Utc>>,
    r: &RecipientReport,
) {
    let name = &s.name;
    let allowance = Duration::from_std(allowance).unwrap();
    let who = format!("{name}/{label}/{}", r.agency);
    let due = at + allowance;
    assert_eq!(r.due_at, Some(due), "{who}");
    // Received at once, or when its node came back.
    let agency = r.agency.as_str();
    if down_at(s, agency, at) {
        assert_eq!(r.received_at, Some(back_up(s, agency, at)), "{who}");
        // How many attempts failed while it was down depends on
        // real time, which a manual-clock replay does not hold
        // still; when it arrived is what the file decides.
        assert!(r.delivery_attempts >= 1, "{who}: {r:?}");
    } else {
        assert_eq!(r.received_at, Some(at), "{who}");
    }
    // Each acknowledgement the file makes, at its time, as late as
    // its deadline makes it.
    let acks: Vec<(DateTime<Utc>, Disposition)> = s
        .steps
        .iter()
        .filter_map(|st| match &st.action {
            Action::Ack {
                by,
                label: l,
                disposition,
                ..
            } if l == label && by == &r.agency => Some((st.at, *disposition)),
            _ => None,
        })
        .collect();
    let got: Vec<(DateTime<Utc>, Disposition, u64)> = r
        .acknowledgements
        .iter()
        .map(|a| (a.at.unwrap(), a.disposition, a.late_by_seconds))
        .collect();
    let want: Vec<(DateTime<Utc>, Disposition, u64)> = acks
        .iter()
        .map(|(at, d)| {
            let late = (*at - due).num_seconds().max(0) as u64;
            (*at, *d, late)
        })
        .collect();
    assert_eq!(got, want, "{who}");
    // A deadline that passed unanswered is flagged: UNDELIVERED
    // while the alert has not arrived, OVERDUE once it has.
    let answered = acks.first().map(|(at, _)| *at);
    // (A step at a deadline comes after it: the deadline fires first.)
    let open_at_deadline =
        answered.is_none_or(|a| a >= due) && closed.is_none_or(|c| c >= due) && due <= s.end;
    let expected_flag = open_at_deadline.then(|| {
        if r.received_at.is_some() {
            DeadlineFlag::Overdue
        } else {
            DeadlineFlag::Undelivered
        }
    });
    assert_eq!(r.flag, expected_flag, "{who}");
    if expected_flag.is_some() {
        assert_eq!(r.flagged_at, Some(due), "{who}");
    }
    // Each ladder step at its time, until an answer or a cancel
    // stops the ladder.
    let stops = [answered, closed, Some(s.end)].into_iter().flatten().min();
    let want: Vec<(LadderStep, DateTime<Utc>)> = [
        (LadderStep::Reminded, 1),
        (LadderStep::Escalated, 2),
        (LadderStep::Lapsed, 3),
    ]
    .into_iter()
    .map(|(step, n)| {
        (
            step,
            fed.escalation.step_at(n, due, allowance.to_std().unwrap()),
        )
    })
    .filter(|(_, at)| stops.is_some_and(|end| *at <= end))
    .collect();
    let got: Vec<(LadderStep, DateTime<Utc>)> = r
        .escalation
        .iter()
        .map(|e| (e.step, e.at.unwrap()))
        .collect();
    assert_eq!(got, want, "{who}");
}

/// Turkey's two notices about Mostefaï go unanswered, and Iraq's warning is
/// answered by FR-DGSI a day and 21 hours late.
fn paris_2015(pm: &PostMortem) {
    for notice in ["mit-notice-1", "mit-notice-2"] {
        let fr = pm.alert(notice).unwrap().recipient("FR-DGSI").unwrap();
        assert!(fr.acknowledgements.is_empty(), "{notice}: {fr:?}");
        assert_eq!(fr.flag, Some(DeadlineFlag::Overdue), "{notice}");
        assert_eq!(
            fr.steps(),
            [
                LadderStep::Reminded,
                LadderStep::Escalated,
                LadderStep::Lapsed
            ],
            "{notice}"
        );
        assert!(
            fr.escalation[1]
                .detail
                .contains("observers notified: EU-EUROPOL"),
            "{notice}: {:?}",
            fr.escalation[1]
        );
    }
    // Two subjects flagged: Mostefaï at FR-DGSI (Turkey's notices), and
    // Abdeslam at BE-VSSE (two hit reports on its entry, unanswered).
    let flags: Vec<_> = pm.repeated_unanswered.iter().collect();
    assert_eq!(flags.len(), 2, "{flags:?}");
    let flag = pm.flags_on("FR-DGSI").next().expect("a flag on FR-DGSI");
    assert!(flag.subject.contains("Mostefaï"), "{flag:?}");
    assert_eq!(flag.alerts, ["mit-notice-1", "mit-notice-2"]);
    assert!(
        flag.seen_at.iter().any(|a| a.as_str() == "FR-DGSI"),
        "{flag:?}"
    );

    let inis = pm.alert("inis-warning").unwrap();
    let fr = inis.recipient("FR-DGSI").unwrap();
    let answer = fr.answer().unwrap();
    assert_eq!(answer.disposition, Disposition::Noted);
    assert_eq!(answer.at, Some(t("2015-11-14T08:00:00Z")));
    assert_eq!(answer.late_by_seconds, (24 + 21) * 3600);
    assert_eq!(fr.flag, Some(DeadlineFlag::Overdue));
    for (agency, at) in [
        ("DE-BFV", "2015-11-12T10:40:00Z"),
        ("FR-DGSE", "2015-11-12T10:55:00Z"),
    ] {
        let r = inis.recipient(agency).unwrap();
        assert!(r.answered_in_time(), "{agency}: {r:?}");
        assert_eq!(r.answer().unwrap().at, Some(t(at)));
        assert!(r.escalation.is_empty(), "{agency}: {r:?}");
    }
    assert!(inis.recipient("BE-VSSE").unwrap().answer().is_none());
    let totals = pm.totals;
    assert_eq!(
        (
            totals.deliveries,
            totals.in_time,
            totals.late,
            totals.never_acknowledged
        ),
        (6, 2, 1, 3),
        "{totals:?}"
    );

    let flag = pm.flags_on("BE-VSSE").next().expect("a flag on BE-VSSE");
    assert!(flag.subject.contains("Salah Abdeslam"), "{flag:?}");
    assert_eq!(flag.alerts, ["abdeslam-austria", "abdeslam-cambrai"]);
    assert!(
        flag.seen_at.iter().any(|a| a.as_str() == "BE-VSSE"),
        "{flag:?}"
    );

    // The partners' checks that hit: each reported to the entry's owner,
    // never answered, OVERDUE, reminded, escalated to EU-EUROPOL, lapsed.
    for (label, by, person, owner, entry) in [
        (
            "abdeslam-austria",
            "AT-BVT",
            "Abdeslam Salah",
            "BE-VSSE",
            "VSSE-2015-0032",
        ),
        (
            "leros-1",
            "GR-EYP",
            "Ahmad Almohammad",
            "IQ-INIS",
            "INIS-2015-0918",
        ),
        (
            "leros-2",
            "GR-EYP",
            "Mohamad Almahmod",
            "IQ-INIS",
            "INIS-2015-0919",
        ),
        (
            "abdeslam-cambrai",
            "FR-GN",
            "Salah ABDESLAM",
            "BE-VSSE",
            "VSSE-2015-0032",
        ),
    ] {
        let h = pm
            .hit(label)
            .unwrap_or_else(|| panic!("no hit report {label}: {:#?}", pm.hits));
        assert_eq!(h.screened_by.as_str(), by, "{label}");
        assert!(h.person.starts_with(person), "{label}: {h:?}");
        assert_eq!(
            (h.entry_owner.as_str(), h.entry_ref.as_str()),
            (owner, entry),
            "{label}"
        );
        assert!(h.score >= 0.9, "{label}: {h:?}");
        assert!(!h.reasons.is_empty(), "{label}: {h:?}");
        let o = &h.owner;
        assert_eq!(o.agency.as_str(), owner, "{label}");
        assert!(o.received_at.is_some(), "{label}: {o:?}");
        assert!(o.acknowledgements.is_empty(), "{label}: {o:?}");
        assert_eq!(o.flag, Some(DeadlineFlag::Overdue), "{label}");
        assert_eq!(
            o.steps(),
            [
                LadderStep::Reminded,
                LadderStep::Escalated,
                LadderStep::Lapsed
            ],
            "{label}"
        );
        assert!(
            o.escalation[1]
                .detail
                .contains("observers notified: EU-EUROPOL"),
            "{label}: {:?}",
            o.escalation[1]
        );
    }
    let cambrai = pm.hit("abdeslam-cambrai").unwrap();
    assert_eq!(cambrai.seen_at, Some(t("2015-11-14T09:10:00Z")));
    assert_eq!(cambrai.requested_action, "DISCREET_CHECK");
    assert_eq!(cambrai.owner.due_at, Some(t("2015-11-14T10:10:00Z")));
    assert_eq!(
        (
            totals.hit_reports,
            totals.hits_in_time,
            totals.hits_late,
            totals.hits_unanswered
        ),
        (4, 0, 0, 4),
        "{totals:?}"
    );

    // What the demo prints: the late answer, and steps that stay true.
    let text = pm.to_string();
    let block: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("inis-warning"))
        .skip_while(|l| !l.trim_start().starts_with("FR-DGSI"))
        .take(4)
        .collect();
    assert!(
        block[0].contains("NOTED at 2015-11-14 08:00, LATE by 1 day 21 h; flagged OVERDUE"),
        "{text}"
    );
    assert!(
        block[3].contains("LAPSED: the ladder ran out with no acknowledgement from FR-DGSI")
            && block[3]
                .ends_with("then acknowledged: NOTED at 2015-11-14 08:00, LATE by 1 day 21 h"),
        "{text}"
    );
    assert!(block.iter().all(|l| !l.contains("never")), "{text}");
    // The hits beside the alerts, and their totals.
    let hits: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("abdeslam-cambrai ("))
        .take(3)
        .collect();
    assert!(
        hits[0].contains(") FR-GN screened Salah ABDESLAM (b. 1989-09-15) at road check near Cambrai (A2), with two companions, seen 2015-11-14 09:10"),
        "{text}"
    );
    assert!(
        hits[1].starts_with("    HIT on BE-VSSE/VSSE-2015-0032, DISCREET_CHECK, score ")
            && hits[1].ends_with("; hit report -> BE-VSSE, IMMEDIATE, sent 2015-11-14 09:10"),
        "{text}"
    );
    assert!(
        hits[2].contains("BE-VSSE     receipt 2015-11-14 09:10; deadline 2015-11-14 10:10; NO ACKNOWLEDGEMENT; flagged OVERDUE"),
        "{text}"
    );
    assert!(
        text.ends_with("\n4 hit report(s): 0 acknowledged in time, 0 late, 4 never acknowledged"),
        "{text}"
    );
    assert!(
        text.contains("!!!!!! REPEATED_UNANSWERED: BE-VSSE left 2 warnings about Salah Abdeslam (b. 1989-09-15) unanswered: abdeslam-austria, abdeslam-cambrai"),
        "{text}"
    );
}

/// The same warnings, answered in time: no flag, no ladder step.
fn paris_2015_answered(pm: &PostMortem) {
    assert!(
        pm.repeated_unanswered.is_empty(),
        "{:?}",
        pm.repeated_unanswered
    );
    for a in &pm.alerts {
        for r in &a.recipients {
            assert!(r.answered_in_time(), "{}/{}: {r:?}", a.label, r.agency);
            assert_eq!(r.flag, None, "{}/{}", a.label, r.agency);
            assert!(r.escalation.is_empty(), "{}/{}", a.label, r.agency);
        }
    }
    assert_eq!(pm.totals.in_time, pm.totals.deliveries);
    assert!(pm.totals.deliveries >= 7, "{:?}", pm.totals);
    // Every partner's check that hit, answered by the entry's owner in time.
    for label in ["abdeslam-austria", "leros-1", "leros-2", "abdeslam-cambrai"] {
        let o = &pm.hit(label).unwrap_or_else(|| panic!("{label}")).owner;
        assert!(o.answered_in_time(), "{label}: {o:?}");
        assert_eq!(o.flag, None, "{label}");
        assert!(o.escalation.is_empty(), "{label}");
    }
    assert_eq!(pm.totals.hit_reports, 4, "{:?}", pm.totals);
    assert_eq!(pm.totals.hits_in_time, pm.totals.hit_reports);
}

/// DE-BFV is down when the warning comes: the alert waits in IQ-INIS's
/// outbox, goes UNDELIVERED and escalates, and is delivered when DE-BFV
/// comes back, which answers late.
fn outage(pm: &PostMortem) {
    let w = pm.alert("phone-warning").unwrap();
    let fr = w.recipient("FR-DGSI").unwrap();
    assert!(fr.answered_in_time(), "{fr:?}");
    let de = w.recipient("DE-BFV").unwrap();
    assert_eq!(de.received_at, Some(t("2015-03-05T08:00:00Z")));
    assert!(de.delivery_attempts >= 1, "{de:?}");
    // UNDELIVERED at the deadline (the ladder says it never arrived), then
    // OVERDUE once delivered, still unanswered.
    assert_eq!(de.flag, Some(DeadlineFlag::Overdue));
    assert_eq!(
        de.steps(),
        [
            LadderStep::Reminded,
            LadderStep::Escalated,
            LadderStep::Lapsed
        ]
    );
    assert!(
        de.escalation[0].detail.contains("never received"),
        "{:?}",
        de.escalation[0]
    );
    let answer = de.answer().unwrap();
    assert_eq!(answer.disposition, Disposition::Actioned);
    assert!(answer.is_late());
    assert!(pm.repeated_unanswered.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shipped_scenario_replays_on_a_manual_clock_and_tells_its_story() -> anyhow::Result<()>
{
    let federation_file = demo().join("federation.toml");
    let federation = Federation::load(&federation_file)?;
    let mut told = Vec::new();
    for path in shipped() {
        let test = ScenarioTest::load(&path, &federation_file)?;
        let scenario = test.scenario().clone();
        let mut run = test.start().await?;
        let began = Instant::now();
        let pm = run.replay().await?;
        let took = began.elapsed();
        println!(
            "{}: {} days of scenario time, {} steps, replayed in {took:?}",
            scenario.name,
            (scenario.end - scenario.start).num_days(),
            scenario.steps.len()
        );
        assert_eq!(run.narrative().len(), scenario.steps.len());
        agrees_with_the_file(&scenario, &federation, &pm);
        match scenario.name.as_str() {
            "paris-2015" => paris_2015(&pm),
            "paris-2015-answered" => paris_2015_answered(&pm),
            "outage" => outage(&pm),
            // A new scenario: what its file implies, checked above.
            _ => {}
        }
        told.push(scenario.name);
    }
    for name in ["outage", "paris-2015", "paris-2015-answered"] {
        assert!(
            told.iter().any(|n| n == name),
            "{name} not shipped: {told:?}"
        );
    }
    Ok(())
}

/// What no shipped scenario does yet: a federation with deadlines and a
/// ladder of its own, a cancel, and a node the scenario leaves down (it
/// comes back at the end, and what waited for it arrives then).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_and_a_node_left_down_are_told_as_the_file_says() -> anyhow::Result<()> {
    let federation = Federation::parse(
        r#"
[federation]
id = "cancel.tocsin"
[deadlines]
flash = "5m"
immediate = "1h"
priority = "12h"
routine = "7days"
[escalation]
remind = 0.0
escalate = 1.0
lapse = 2.0
[[agencies]]
id = "TR-MIT"
endpoint = "127.0.0.1:1"
[[agencies]]
id = "FR-DGSI"
endpoint = "127.0.0.1:2"
[[agencies]]
id = "BE-VSSE"
endpoint = "127.0.0.1:3"
[[agencies]]
id = "EU-EUROPOL"
endpoint = "127.0.0.1:4"
observer = true
"#,
        "inline",
    )?;
    let alert = |to: &str| {
        format!(
            r#"[steps.alert]
precedence = "FLASH"
category = "terrorism"
recipients = [{to}]
text = "Vehicle registered to the subject seen near the border."
[[steps.alert.subjects]]
identifier = {{ kind = "plate", value = "34 ABC 123" }}
"#
        )
    };
    let text = format!(
        r#"
name = "cancel-and-down"
start = "2015-01-01T00:00:00Z"
end = "2015-01-02T00:00:00Z"

[[steps]]
at = "2015-01-01T08:00:00Z"
action = "stop"
agency = "BE-VSSE"

[[steps]]
at = "2015-01-01T09:00:00Z"
action = "send"
from = "TR-MIT"
label = "plate"
{}
[[steps]]
at = "2015-01-01T09:04:00Z"
action = "ack"
by = "FR-DGSI"
label = "plate"
disposition = "NEEDS_INFO"

[[steps]]
at = "2015-01-01T09:13:00Z"
action = "cancel"
from = "TR-MIT"
label = "plate"
as = "plate-cancel"
note = "Wrong plate."

[[steps]]
at = "2015-01-01T09:15:00Z"
action = "ack"
by = "FR-DGSI"
label = "plate-cancel"
disposition = "NOTED"
"#,
        alert(r#""FR-DGSI", "BE-VSSE""#)
    );
    let scenario = Scenario::parse(&text, &federation)?;
    let pm = ScenarioTest::new(scenario.clone(), federation.clone())
        .replay()
        .await?;
    agrees_with_the_file(&scenario, &federation, &pm);

    let plate = pm.alert("plate").unwrap();
    assert_eq!(plate.status, tocsin_scenario::AlertStatus::Cancelled);
    // BE-VSSE, down all along: UNDELIVERED at 09:05 (five minutes for a
    // FLASH here), reminded (never received) at once, escalated at 09:10,
    // and the cancel at 09:13 stopped the ladder before it lapsed at 09:15.
    let be = plate.recipient("BE-VSSE").unwrap();
    assert_eq!(be.due_at, Some(t("2015-01-01T09:05:00Z")));
    assert_eq!(be.received_at, Some(scenario.end));
    assert_eq!(be.steps(), [LadderStep::Reminded, LadderStep::Escalated]);
    assert_eq!(be.escalation[1].at, Some(t("2015-01-01T09:10:00Z")));
    assert!(be.escalation[0].detail.contains("never received"), "{be:?}");
    let cancel = pm.alert("plate-cancel").unwrap();
    assert!(cancel.recipient("FR-DGSI").unwrap().answered_in_time());
    assert_eq!(
        cancel.recipient("BE-VSSE").unwrap().received_at,
        Some(scenario.end)
    );
    Ok(())
}

/// A `watchlist` or `screen` step that cannot be replayed is refused before
/// any node starts, naming the step; a screen that finds no hit stops the
/// replay, naming the screen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_watchlist_and_screen_steps_are_refused_naming_the_step() -> anyhow::Result<()> {
    let federation_file = demo().join("federation.toml");
    let dir = tempfile::tempdir()?;
    let file = |steps: &str| -> anyhow::Result<PathBuf> {
        let path = dir.path().join("s.toml");
        std::fs::write(
            &path,
            format!(
                "name = \"bad\"\nstart = \"2015-01-01T00:00:00Z\"\nend = \"2015-01-03T00:00:00Z\"\n{steps}"
            ),
        )?;
        Ok(path)
    };
    let listing = |to: &str| {
        format!(
            r#"
[[steps]]
at = "2015-01-01T09:00:00Z"
action = "watchlist"
from = "BE-VSSE"
[[steps.entries]]
ref = "VSSE-2015-0032"
subject = {{ person = {{ names = ["Salah Abdeslam"], date_of_birth = "1989-09-15" }} }}
reason = "Molenbeek."
action = "DISCREET_CHECK"
hit_precedence = "IMMEDIATE"
releasable_to = [{to}]
"#
        )
    };
    let screen = |by: &str, name: &str| {
        format!(
            r#"
[[steps]]
at = "2015-01-01T10:00:00Z"
action = "screen"
by = "{by}"
label = "check"
person = {{ names = ["{name}"] }}
place = "Cambrai"
"#
        )
    };
    let refused = |path: PathBuf| -> String {
        let err = ScenarioTest::load(&path, &federation_file).expect_err("refused");
        format!("{err:#}")
    };
    let why = refused(file(&listing(r#""FR-GN", "XX-NONE""#))?);
    assert!(
        why.ends_with("steps[0]: XX-NONE is not an agency of federation demo.tocsin"),
        "{why}"
    );
    let why = refused(file(&format!(
        "{}{}",
        listing(r#""FR-GN""#),
        screen("AT-BVT", "Salah Abdeslam")
    ))?);
    assert!(
        why.ends_with("steps[1]: screen \"check\" by AT-BVT cannot hit: no earlier watchlist step lists an entry releasable to AT-BVT"),
        "{why}"
    );

    // Valid, but the person screened is not the one listed: the replay
    // stops at the screen and says so.
    let path = file(&format!(
        "{}{}",
        listing(r#""FR-GN""#),
        screen("FR-GN", "Brahim Abdeslam")
    ))?;
    let mut run = ScenarioTest::load(&path, &federation_file)?.start().await?;
    let err = run.replay().await.expect_err("no hit");
    let why = format!("{err:#}");
    assert!(
        why.contains("screen \"check\": FR-GN found no hit on another agency's entry"),
        "{why}"
    );
    // The listing before it did happen, and reached the screening node.
    assert_eq!(run.narrative().len(), 1, "{:?}", run.narrative());
    assert!(
        run.narrative()[0]
            .contains("BE-VSSE lists 1 watchlist entry (VSSE-2015-0032), releasable to FR-GN"),
        "{:?}",
        run.narrative()
    );
    Ok(())
}
