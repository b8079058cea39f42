//! Precision and recall of screening at the default threshold over the
//! labelled name pairs in `data/name_pairs.tsv`.
//!
//! Each pair's right-hand name is a candidate in an index that also holds
//! 20,000 synthetic candidates, so part weights come from a realistic spread
//! of names and candidate generation is exercised as in production; the
//! left-hand name is screened, and the pair is predicted "same" when the
//! screen reports its candidate as a hit.

use tocsin_screening::{Candidate, Index, Options, Query, Reasons, synthetic};

const PAIRS: &str = include_str!("../data/name_pairs.tsv");
const BASE: u64 = 1 << 40;

struct Pair<'a> {
    left: &'a str,
    right: &'a str,
    same: bool,
    note: &'a str,
}

fn pairs() -> Vec<Pair<'static>> {
    PAIRS
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(cols.len(), 4, "four columns: {l}");
            let same = match cols[2] {
                "same" => true,
                "different" => false,
                other => panic!("label {other} in {l}"),
            };
            Pair {
                left: cols[0],
                right: cols[1],
                same,
                note: cols[3],
            }
        })
        .collect()
}

#[test]
fn precision_and_recall_at_the_default_threshold() {
    let pairs = pairs();
    assert!(
        pairs.len() >= 300,
        "at least 300 pairs, got {}",
        pairs.len()
    );
    assert!(
        pairs.iter().filter(|p| !p.same).count() >= 100,
        "hard negatives"
    );
    let mut candidates = synthetic::candidates(20_000, 15);
    candidates.extend(pairs.iter().enumerate().map(|(i, p)| Candidate {
        key: BASE + i as u64,
        names: vec![p.right.to_string()],
        ..Candidate::default()
    }));
    let index = Index::build(candidates);
    let options = Options {
        min_score: 0.0,
        max_results: usize::MAX,
        ..Options::default()
    };
    let (mut tp, mut fp, mut fneg) = (0u32, 0u32, 0u32);
    let mut wrong = Vec::new();
    let mut scores = Vec::new();
    for (i, p) in pairs.iter().enumerate() {
        let query = Query {
            names: vec![p.left.to_string()],
            ..Query::default()
        };
        let found = index
            .screen(&query, &options)
            .into_iter()
            .find(|m| m.key == BASE + i as u64);
        let hit = found.as_ref().is_some_and(|m| m.hit);
        match (p.same, hit) {
            (true, true) => tp += 1,
            (false, true) => fp += 1,
            (true, false) => fneg += 1,
            (false, false) => {}
        }
        scores.push((p.same, found.as_ref().map_or(0.0, |m| m.score)));
        if p.same != hit {
            let detail = found.map_or("not found".to_string(), |m| {
                format!("{:.2}: {}", m.score, Reasons(&m.reasons))
            });
            wrong.push(format!(
                "{} | {} | {} ({}) -> {detail}",
                p.left,
                p.right,
                if p.same { "same" } else { "different" },
                p.note
            ));
        }
    }
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / (tp + fneg).max(1) as f64;
    println!(
        "pairs {}: precision {precision:.3}, recall {recall:.3} (tp {tp}, fp {fp}, fn {fneg})",
        pairs.len()
    );
    if std::env::var_os("SCORES").is_some() {
        for t in [0.6f32, 0.65, 0.7, 0.72, 0.75, 0.78, 0.8, 0.82, 0.85] {
            let tp = scores.iter().filter(|(s, x)| *s && *x >= t).count();
            let fp = scores.iter().filter(|(s, x)| !*s && *x >= t).count();
            println!("threshold {t}: tp {tp} fp {fp}");
        }
    }
    for w in &wrong {
        println!("misclassified: {w}");
    }
    assert!(precision >= 0.95, "precision {precision:.3}");
    assert!(recall >= 0.95, "recall {recall:.3}");
}
