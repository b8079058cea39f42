//! `tocsin-bench triage`: ranking many owed items, beside a plain sort of
//! the same items by deadline (the order `alerts list --owed` gives), in
//! the same run. The ranking is a pure function, so this times it alone:
//! what the node adds (reading the items and their subjects) is a store
//! read measured elsewhere.

use std::time::Instant;

use chrono::{Duration, Utc};
use clap::Args;
use tocsin_core::alert::{InformationCredibility, Precedence, SourceReliability};
use tocsin_triage::{Item, Kind, rank};

use crate::drive::Figures;

/// What to rank.
#[derive(Debug, Args)]
pub(crate) struct TriageLoad {
    /// How many owed items.
    #[arg(long, short, default_value_t = 100_000)]
    n: usize,
    /// How many timed rounds (the median is reported).
    #[arg(long, default_value_t = 7)]
    rounds: usize,
}

/// The target for 100,000 items.
const TARGET_MS: f64 = 200.0;

/// `n` items with a realistic spread: mostly ROUTINE and PRIORITY, a few
/// FLASH; deadlines from long overdue to a week out; every grading; some
/// subjects corroborated, hit or flagged. Deterministic (a linear
/// congruential sequence), so runs compare.
fn items(n: usize) -> Vec<Item> {
    let now = Utc::now();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        x >> 33
    };
    (0..n)
        .map(|i| {
            let precedence = match next() % 100 {
                0..=2 => Precedence::Flash,
                3..=14 => Precedence::Immediate,
                15..=49 => Precedence::Priority,
                _ => Precedence::Routine,
            };
            let agencies = 1 + (next() % 10 == 0) as usize + (next() % 40 == 0) as usize;
            Item {
                id: format!("01J{i:023}"),
                kind: if next() % 20 == 0 {
                    Kind::HitReport
                } else {
                    Kind::Alert
                },
                originator: format!("AG-{}", next() % 30),
                subject: format!("Subject {}", next() % 50_000),
                precedence,
                due_at: now + Duration::minutes(next() as i64 % 20_000 - 4_000),
                reliability: SourceReliability::ALL[(next() % 6) as usize],
                credibility: InformationCredibility::ALL[(next() % 6) as usize],
                originators: (0..agencies).map(|a| format!("AG-{a}")).collect(),
                hits: (next() % 25 == 0) as usize,
                repeated_unanswered: next() % 50 == 0,
            }
        })
        .collect()
}

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Runs the benchmark.
pub(crate) fn triage(load: &TriageLoad) -> anyhow::Result<Vec<Figures>> {
    let n = load.n;
    let rounds = load.rounds.max(1);
    let made = items(n);
    let now = Utc::now();
    let mut base = Vec::with_capacity(rounds);
    let mut ranked = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let mut copy = made.clone();
        let started = Instant::now();
        copy.sort_unstable_by(|a, b| a.due_at.cmp(&b.due_at).then_with(|| a.id.cmp(&b.id)));
        base.push(started.elapsed().as_secs_f64() * 1000.0);
        std::hint::black_box(&copy);

        let copy = made.clone();
        let started = Instant::now();
        let out = rank(copy, now);
        ranked.push(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(out.len() == n, "ranked {} of {n}", out.len());
        std::hint::black_box(&out);
    }
    let (base_ms, rank_ms) = (median(base), median(ranked));
    let target = TARGET_MS * n as f64 / 100_000.0;
    Ok(vec![
        Figures {
            name: "triage: baseline".into(),
            n,
            seconds: base_ms / 1000.0,
            throughput_per_s: n as f64 * 1000.0 / base_ms.max(1e-9),
            p50_ms: base_ms,
            note: format!(
                "the same items sorted by deadline alone (the --owed order), median of {rounds}"
            ),
            ..Default::default()
        },
        Figures {
            name: "triage: rank".into(),
            n,
            seconds: rank_ms / 1000.0,
            throughput_per_s: n as f64 * 1000.0 / rank_ms.max(1e-9),
            p50_ms: rank_ms,
            baseline_ratio: Some(base_ms / rank_ms.max(1e-9)),
            note: format!(
                "tocsin_triage::rank: key, reasons and sort for every item, median of {rounds}; \
                 target <= {target:.0} ms: {}",
                if rank_ms <= target { "met" } else { "NOT met" }
            ),
            ..Default::default()
        },
    ])
}
