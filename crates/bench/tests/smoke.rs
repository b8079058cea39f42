//! Benchmarks are never timed in `cargo test`; this runs each at a tiny size
//! so they keep working.

use std::process::Command;

fn run(args: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("figures.json");
    let status = Command::new(env!("CARGO_BIN_EXE_tocsin-bench"))
        .args(args)
        .arg("--json")
        .arg(&out)
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap()
}

#[test]
fn baseline_and_deliver_closed_loop_report_figures() {
    let rows = run(&["deliver", "--n", "30", "--c", "4"]);
    assert_eq!(rows[0]["name"], "baseline");
    assert_eq!(rows[1]["name"], "deliver");
    for row in rows.as_array().unwrap() {
        assert_eq!(row["n"], 30);
        assert!(row["throughput_per_s"].as_f64().unwrap() > 0.0);
        assert!(row["p50_ms"].as_f64().unwrap() <= row["p99_ms"].as_f64().unwrap());
    }
    assert!(rows[1]["baseline_ratio"].as_f64().unwrap() > 0.0);
}

#[test]
fn deliver_open_loop_reports_figures() {
    let rows = run(&["deliver", "--n", "20", "--rate", "200"]);
    assert_eq!(rows[1]["offered_rate"], 200.0);
    assert!(rows[1].get("baseline_ratio").is_none());
}
