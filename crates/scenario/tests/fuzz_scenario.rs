//! Fuzz target: scenario files (`tocsin demo`, `tocsin scenario run`, the
//! test kit's replays).
//!
//! Mutated and arbitrary text gets a clean error from `Scenario::parse`, or
//! a scenario a replay can run: its steps in order and inside its span,
//! every label sent before it is used, every agency that acts a member, a
//! scenario clock that maps each step to a real time in order, node clock
//! options that nodes accept, and alert drafts that convert to the wire
//! form without a panic.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use tocsin_core::federation::Federation;
use tocsin_core::{Alert, AlertId, Clock};
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

/// The fuzz seed and every shipped scenario.
fn seeds() -> Vec<String> {
    let mut seeds = vec![tocsin_fuzz::seed("scenario.toml")];
    let dir = tocsin_fuzz::workspace_root().join("deploy/demo/scenarios");
    let mut shipped: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    shipped.sort();
    assert!(shipped.len() >= 3, "{shipped:?}");
    seeds.extend(shipped.iter().map(|p| std::fs::read_to_string(p).unwrap()));
    seeds
}

/// One of `seeds` with the agency of one `from`, `by` or `agency` line
/// replaced by a member's or by a well-formed id of no member: what a
/// mistyped agency gives. Random values seldom make an agency id.
fn swapped_agencies(seeds: Vec<String>) -> impl Strategy<Value = String> {
    let mut ids: Vec<String> = FEDERATION
        .agencies
        .iter()
        .map(|a| a.id.to_string())
        .collect();
    ids.extend(["XX-NONE".to_owned(), "FR-DGSX".to_owned()]);
    (
        prop::sample::select(seeds),
        any::<prop::sample::Index>(),
        prop::sample::select(ids),
    )
        .prop_map(|(text, i, id)| {
            let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
            let agency_lines: Vec<usize> = (0..lines.len())
                .filter(|k| {
                    let l = lines[*k].trim_start();
                    ["from", "by", "agency"].iter().any(|key| {
                        l.strip_prefix(key)
                            .is_some_and(|rest| rest.trim_start().starts_with('='))
                    })
                })
                .collect();
            if let Some(k) = agency_lines.get(i.index(agency_lines.len().max(1))) {
                let key = lines[*k]
                    .split('=')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                lines[*k] = format!("{key} = \"{id}\"");
            }
            lines.join("\n")
        })
}

/// Parses `text` as a scenario file; if it is accepted, checks what a
/// replay relies on.
fn check_scenario(text: &str) -> Result<(), TestCaseError> {
    let Ok(s) = Scenario::parse(text, &FEDERATION) else {
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
            Action::Watchlist { from, entries } => {
                for e in entries {
                    prop_assert!(e.check(from).is_ok(), "{e:?} would be refused");
                }
            }
            Action::Screen { by, label, .. } => {
                prop_assert!(FEDERATION.is_member(by));
                sent.insert(label.clone());
            }
            Action::Triage { by, expect_first } => {
                prop_assert!(FEDERATION.is_member(by));
                if let Some(label) = expect_first {
                    prop_assert!(
                        sent.contains(label),
                        "triage expects {label:?} before it is sent"
                    );
                }
            }
            Action::Note { .. } => {}
        }
    }
    // A replay needs an operator client of every agency that acts.
    for a in s.actors() {
        prop_assert!(FEDERATION.is_member(&a), "{a} acts but is not a member");
    }
    Ok(())
}

proptest! {
    #![proptest_config(tocsin_fuzz::config(256, REGRESSIONS))]

    #[test]
    fn scenario_files_load_or_are_refused(
        text in prop_oneof![
            6 => tocsin_fuzz::mutated_values(seeds()),
            3 => tocsin_fuzz::mutated_text(seeds()),
            2 => swapped_agencies(seeds()),
            1 => tocsin_fuzz::any_text(),
        ],
    ) {
        check_scenario(&text)?;
    }
}

#[test]
fn the_seeds_load() {
    for text in seeds() {
        Scenario::parse(&text, &FEDERATION).unwrap();
        check_scenario(&text).unwrap();
    }
}
