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
    let rows = run(&["deliver", "--n", "30", "--c", "4", "--baseline-n", "30"]);
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
fn baseline_alone_reports_figures() {
    let rows = run(&["baseline", "--n", "20", "--c", "2"]);
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["name"], "baseline");
    assert_eq!(rows[0]["n"], 20);
    assert!(rows[0]["throughput_per_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn deliver_open_loop_reports_figures() {
    let rows = run(&["deliver", "--n", "20", "--rate", "200"]);
    assert_eq!(rows[1]["offered_rate"], 200.0);
    assert!(rows[1].get("baseline_ratio").is_none());
}

#[test]
fn fanout_waits_for_every_receipt() {
    let rows = run(&["fanout", "--n", "3", "--c", "1", "--width", "3"]);
    assert_eq!(rows[0]["name"], "fanout-3");
    assert_eq!(rows[0]["n"], 3);
    assert!(rows[0]["p99_ms"].as_f64().unwrap() > 0.0);
}

#[test]
fn backlog_drains_after_the_peer_starts() {
    let rows = run(&["backlog", "--n", "40", "--c", "8"]);
    assert_eq!(rows[0]["name"], "backlog");
    assert_eq!(rows[0]["n"], 40);
    assert!(rows[0]["throughput_per_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn ack_cycle_reports_figures() {
    let rows = run(&["ack", "--n", "20", "--c", "4", "--baseline-n", "20"]);
    assert_eq!(rows[1]["name"], "ack");
    assert!(rows[1]["p50_ms"].as_f64().unwrap() > 0.0);
    assert!(rows[1]["baseline_ratio"].as_f64().unwrap() > 0.0);
}

#[test]
fn flood_measures_the_steady_sender_and_counts_refusals() {
    let rows = run(&["flood", "--n", "20", "--rate", "100", "--flood-c", "8"]);
    assert_eq!(rows[0]["name"], "flood: steady sender");
    assert_eq!(rows[0]["n"], 20);
    assert_eq!(rows[1]["name"], "flood: flooder");
    assert!(
        rows[1]["n"].as_u64().unwrap() > 0,
        "the flood got nothing through"
    );
    assert!(rows[1]["refused"].is_u64());
}

/// The `tocsin` binary beside this test's build (the workspace test command
/// builds it).
fn tocsin() -> String {
    let path = tocsin_testkit::tocsin_binary(None)
        .unwrap_or_else(|e| panic!("{e}; or run the workspace tests (cargo test --workspace)"));
    path.display().to_string()
}

#[test]
fn deadlines_times_the_flag_of_a_due_deadline_beside_a_baseline() {
    let rows = run(&["deadlines", "--n", "300", "--tocsin", &tocsin()]);
    assert_eq!(rows[0]["name"], "deadlines: baseline");
    assert_eq!(rows[0]["n"], 0);
    assert_eq!(rows[1]["name"], "deadlines");
    assert_eq!(rows[1]["n"], 300);
    for row in rows.as_array().unwrap() {
        let seen = row["seconds"].as_f64().unwrap();
        let began = row["first_pass_began_s"].as_f64().unwrap();
        // Seen by an operator, so after the tracker's pass began.
        assert!(seen >= began && began > 0.0, "{row}");
        assert!(row["serving_s"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["first_pass_ms"].as_f64().unwrap() >= 0.0, "{row}");
        assert!(row["rss_mib"].as_f64().unwrap() > 1.0, "{row}");
    }
    assert!(rows[1]["baseline_ratio"].as_f64().unwrap() > 0.0);
}

#[test]
fn memory_measures_idle_and_loaded_node_processes() {
    let rows = run(&["memory", "--n", "200", "--tocsin", &tocsin()]);
    assert_eq!(rows[0]["name"], "memory: idle");
    assert_eq!(rows[1]["name"], "memory: loaded");
    for row in rows.as_array().unwrap() {
        assert!(row["rss_mib"].as_f64().unwrap() > 1.0);
    }
}

#[test]
fn sync_delivers_every_entry_and_change() {
    let rows = run(&["sync", "--n", "2000", "--changes", "100", "--rounds", "2"]);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["name"], "sync: baseline");
    assert_eq!(rows[1]["name"], "sync: full");
    assert_eq!(rows[1]["n"], 2000);
    assert_eq!(rows[1]["held"], 2000);
    assert!(rows[1]["baseline_ratio"].as_f64().unwrap() > 0.0);
    assert_eq!(rows[2]["name"], "sync: changes");
    assert_eq!(rows[2]["n"], 100);
    assert_eq!(rows[2]["held"], 2000 + 2 * 100);
    assert!(rows[2]["p50_ms"].as_f64().unwrap() <= rows[2]["p99_ms"].as_f64().unwrap());
}

#[test]
fn screen_finds_listed_people_through_the_node_and_reports_figures() {
    let rows = run(&[
        "screen",
        "--n",
        "3000",
        "--queries",
        "300",
        "--c",
        "4",
        "--batch",
        "20",
        "--batch-c",
        "2",
        "--tocsin",
        &tocsin(),
    ]);
    let rows = rows.as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "screen: library",
            "screen: index ready",
            "screen: unary",
            "screen: unary, 2 in flight",
            "screen: batch",
            "screen: memory after load"
        ]
    );
    // 20 % of 300 queries are variants of listed people: the node finds as
    // many as the library does on the same entries, through either RPC.
    let lib = rows[0]["found"].as_u64().unwrap();
    assert!(lib > 30, "the library found {lib} of 60");
    assert_eq!(rows[2]["found"].as_u64().unwrap(), lib);
    assert_eq!(rows[4]["found"].as_u64().unwrap(), lib);
    assert!(rows[1]["seconds"].as_f64().unwrap() > 0.0);
    assert!(rows[1]["rss_mib"].as_f64().unwrap() > 1.0);
    assert_eq!(rows[2]["n"], 300);
    assert_eq!(rows[3]["n"], 75);
    for row in &rows[2..5] {
        assert!(row["throughput_per_s"].as_f64().unwrap() > 0.0);
        assert!(row["p50_ms"].as_f64().unwrap() <= row["p99_ms"].as_f64().unwrap());
    }
    assert_eq!(rows[4]["n"], 300);
    assert!(rows[5]["rss_peak_mib"].as_f64().unwrap() >= rows[5]["rss_mib"].as_f64().unwrap());
}
