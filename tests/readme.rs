//! The README's test-kit example, compiled and run by `cargo test`; the
//! test at the bottom keeps the README's copy identical to this one.

// README example: begin
use std::sync::Arc;

use chrono::{Duration, Utc};
use tocsin_testkit::{
    AlertBuilder, DeadlineFlag, Disposition, EventKind, LadderStep, ManualClock, Person,
    Precedence, TestFederation,
};

#[tokio::test]
async fn a_warning_is_delivered_late_acknowledged_and_the_silence_recorded() -> anyhow::Result<()> {
    // Real nodes: port-0 loopback listeners, a fresh CA, SQLite in a temp
    // dir, mutual TLS; time moves only when the test says so.
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let mut fed = TestFederation::builder()
        .agencies(["TR-MIT", "FR-DGSI", "EU-EUROPOL"])
        .observers(["EU-EUROPOL"])
        .down(["FR-DGSI"]) // started later
        .clock(clock.clone())
        .start()
        .await?;
    let tr = fed.desk("TR-MIT").await?;

    let id = tr
        .send(
            AlertBuilder::to(["FR-DGSI"])
                .precedence(Precedence::Priority) // 12 h to acknowledge
                .person(
                    Person::named("Ismaël Omar Mostefaï")
                        .born("1985-11-21")
                        .nationality("FR"),
                )
                .text("Linked to a terrorist network; travel to Syria suspected.")
                .grading('B', 2),
        )
        .await?;

    // FR-DGSI's node is down: the alert waits in TR-MIT's durable outbox.
    fed.start_node("FR-DGSI").await?; // also: stop_node, restart_node
    tr.wait_delivered(&id, "FR-DGSI").await?;

    // Twelve hours pass without an answer: OVERDUE, and a reminder.
    clock.advance(Duration::hours(12) + Duration::minutes(1));
    tr.wait_flag(&id, "FR-DGSI", DeadlineFlag::Overdue).await?;
    tr.wait_step(&id, "FR-DGSI", LadderStep::Reminded).await?;

    // FR-DGSI answers at last; TR-MIT records how late.
    let fr = fed.desk("FR-DGSI").await?;
    fr.ack(&id, Disposition::Noted, "Routine.").await?;
    let ack = tr.wait_acknowledged(&id, "FR-DGSI").await?;
    assert_eq!(ack.late_by_seconds, 60);

    use EventKind::*;
    tr.wait_events(
        &id,
        &[Submitted, Delivered, Overdue, Reminded, Acknowledged],
    )
    .await?;
    Ok(())
}
// README example: end

/// The README's scenario example, in a module of its own for its imports.
#[rustfmt::skip]
mod scenario_example {
// README scenario example: begin
use std::path::Path;

use tocsin_testkit::scenario::{DeadlineFlag, LadderStep, ScenarioTest};

#[tokio::test]
async fn turkeys_notices_go_unanswered_and_are_flagged() -> anyhow::Result<()> {
    // Paths from the crate under test; here, a crate beside deploy/.
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/demo");
    let pm = ScenarioTest::load(
        demo.join("scenarios/paris-2015.toml"),
        demo.join("federation.toml"),         // agencies, observers, deadlines, ladder
    )?
    .replay()
    .await?;

    let fr = pm.alert("mit-notice-1").unwrap().recipient("FR-DGSI").unwrap();
    assert!(fr.acknowledgements.is_empty());
    assert_eq!(fr.flag, Some(DeadlineFlag::Overdue));
    assert_eq!(fr.steps(), [LadderStep::Reminded, LadderStep::Escalated, LadderStep::Lapsed]);
    let flag = pm.flags_on("FR-DGSI").next().expect("REPEATED_UNANSWERED");
    assert_eq!(flag.alerts, ["mit-notice-1", "mit-notice-2"]);
    let late = pm.alert("inis-warning").unwrap().recipient("FR-DGSI").unwrap();
    assert_eq!(late.answer().unwrap().late_by_seconds, (24 + 21) * 3600);
    println!("{pm}");                          // the text `tocsin demo` prints
    Ok(())
}
// README scenario example: end
}

#[test]
fn the_readme_shows_this_example() {
    let source = include_str!("readme.rs");
    let example = source
        .split("// README example: begin\n")
        .nth(1)
        .and_then(|rest| rest.split("// README example: end").next())
        .expect("the example's markers");
    let readme = include_str!("../README.md");
    assert!(
        readme.contains(example),
        "README.md's test-kit example differs from tests/readme.rs: copy it over"
    );
    let scenario = source
        .split("// README scenario example: begin\n")
        .nth(1)
        .and_then(|rest| rest.split("// README scenario example: end").next())
        .expect("the scenario example's markers");
    assert!(
        readme.contains(scenario),
        "README.md's scenario example differs from tests/readme.rs: copy it over"
    );
}
