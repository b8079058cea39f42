//! Fuzz target: scenario files (`tocsin demo`, `tocsin scenario run`).
//!
//! Mutated and arbitrary text gets a clean error from `Scenario::load`, or
//! a scenario a replay can run: its steps in order and inside its span,
//! every label sent before it is used, a scenario clock that maps each
//! step to a real time in order, node clock options that nodes accept, and
//! alert drafts that convert to the wire form without a panic.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use tocsin_core::federation::Federation;
use tocsin_core::{AgencyId, Alert, AlertId, Clock};

use tocsin_scenario::{Action, Scenario};

const REGRESSIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/proptest-regressions/fuzz_scenario.txt"
);

static FEDERATION: LazyLock<Federation> = LazyLock::new(|| {
    Federation::parse(
        &tocsin_fuzz::workspace_file("deploy/demo/federation.toml"),
        "demo",
    )
    .unwrap()
});

fn seeds() -> Vec<String> {
    let mut seeds = vec![tocsin_fuzz::seed("scenario.toml")];
    for name in ["outage", "paris-2015", "paris-2015-answered"] {
        seeds.push(tocsin_fuzz::workspace_file(&format!(
            "deploy/demo/scenarios/{name}.toml"
        )));
    }
    seeds
}

/// Loads `text` as a scenario file; if it loads, checks what a replay
/// relies on.
fn check_scenario(text: &str) -> Result<(), TestCaseError> {
    static CASE: AtomicUsize = AtomicUsize::new(0);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!(
        "scenario-{}.toml",
        CASE.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::write(&file, text).unwrap();
    let Ok(s) = Scenario::load(&file, &FEDERATION) else {
        return Ok(());
    };
    prop_assert!(s.start < s.end);
    prop_assert!(s.steps.windows(2).all(|w| w[0].at <= w[1].at));
    prop_assert!(s.steps.iter().all(|st| s.start <= st.at && st.at <= s.end));

    // A replay at the scenario's speed, or at another one asked for.
    let origin = Utc::now();
    for speed in [s.speed, 1.0, 1e9] {
        let options = s.node_clock(speed, origin);
        prop_assert!(options.is_ok(), "{options:?}");
        let clock = s.clock(speed, origin);
        let _ = clock.now();
        let _ = clock.at(origin);
        let mut previous = DateTime::<Utc>::MIN_UTC;
        for at in s.steps.iter().map(|st| st.at).chain([s.end]) {
            let real = clock.real_time_of(at);
            prop_assert!(
                real >= previous,
                "step at {at} plays at {real}, before the one before it ({previous})"
            );
            previous = real;
        }
    }

    let mut sent = std::collections::BTreeSet::new();
    for step in &s.steps {
        match &step.action {
            Action::Send { from, label, alert } => {
                sent.insert(label.clone());
                // What the originating node does with the draft.
                let mut wire = alert.to_proto();
                wire.id = AlertId::generate().to_string();
                wire.originator = from.to_string();
                wire.created_at = Some(tocsin_core::to_timestamp(step.at));
                if let Ok(a) = Alert::try_from(wire) {
                    let _ = a.check_timely(step.at);
                    let _ = FEDERATION.deadlines.due_at(&a);
                }
            }
            Action::Ack { label, by, .. } => {
                prop_assert!(sent.contains(label), "ack of {label:?} before it is sent");
                prop_assert!(FEDERATION.is_member(by));
            }
            Action::Cancel {
                label, as_label, ..
            } => {
                prop_assert!(
                    sent.contains(label),
                    "cancel of {label:?} before it is sent"
                );
                sent.insert(as_label.clone());
            }
            Action::Stop { agency } | Action::Start { agency } => {
                prop_assert!(FEDERATION.is_member(agency));
            }
            Action::Note { .. } => {}
        }
    }
    let _ = s
        .actors()
        .iter()
        .all(|a: &AgencyId| FEDERATION.is_member(a));
    Ok(())
}

proptest! {
    #![proptest_config(tocsin_fuzz::config(256, REGRESSIONS))]

    #[test]
    fn scenario_files_load_or_are_refused(
        text in prop_oneof![
            6 => tocsin_fuzz::mutated_values(seeds()),
            3 => tocsin_fuzz::mutated_text(seeds()),
            1 => tocsin_fuzz::any_text(),
        ],
    ) {
        check_scenario(&text)?;
    }
}

#[test]
fn the_seeds_load() {
    for text in seeds() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("scenario.toml");
        std::fs::write(&file, &text).unwrap();
        Scenario::load(&file, &FEDERATION).unwrap();
        check_scenario(&text).unwrap();
    }
}
