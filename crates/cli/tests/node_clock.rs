//! The CLI counts deadlines from the node's clock, which every answer
//! carries (`tocsin-time`), not from the workstation's: real `tocsin node`
//! processes on scenario time nine years ahead, running 600 times faster
//! than real time, and the `tocsin` commands an operator runs against them.

use std::path::Path;
use std::time::{Duration, Instant};

mod common;
use common::{eventually, ok};
use tocsin_testkit::NodeProcess;

/// Starts `agency`'s node with `extra_args`; it is killed when dropped.
fn start(dir: &Path, agency: &str, extra_args: &[&str]) -> NodeProcess {
    common::node(dir, agency)
        .args(extra_args.iter().copied())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {agency}'s node: {e}"))
}

#[test]
fn deadlines_are_counted_on_the_nodes_clock_not_the_workstations() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::two_agencies(dir, &[("TR-MIT", "alice"), ("FR-DGSI", "bob")]);
    let (alice, bob) = (
        "pki/operators/TR-MIT/alice.toml",
        "pki/operators/FR-DGSI/bob.toml",
    );
    // Both nodes on one scenario clock: 2035, ten minutes a second. A FLASH
    // alert's ten minutes pass on the nodes in a second of real time, while
    // on the workstation's clock its deadline is years away.
    let origin = chrono::Utc::now().to_rfc3339();
    let clock = [
        "--clock-start",
        "2035-01-01T00:00:00Z",
        "--clock-speed",
        "600",
        "--clock-origin",
        &origin,
    ];
    let _tr = start(dir, "TR-MIT", &clock);
    let _fr = start(dir, "FR-DGSI", &clock);
    for op in [alice, bob] {
        eventually(
            dir,
            &["alerts", "list", "--operator", op, "--json"],
            "the node serves",
            |_| true,
        );
    }

    let sent = common::send_watch(dir, alice, &["--precedence", "FLASH"]);
    let id = sent["id"].as_str().unwrap().to_owned();
    // A fresh delivery is due when the alert was submitted, not in 1970.
    let fresh = &sent["deliveries"][0];
    assert_eq!(fresh["state"], "PENDING", "{sent}");
    assert_eq!(fresh["next_attempt_at"], sent["stored_at"], "{sent}");
    assert!(
        sent["stored_at"].as_str().unwrap().starts_with("2035-"),
        "{sent}"
    );

    // The nodes flag it OVERDUE, on both sides...
    let shown = eventually(
        dir,
        &["alert", "show", &id, "--operator", alice, "--json"],
        "TR-MIT flags FR-DGSI's delivery OVERDUE",
        |v| v["deliveries"][0]["flag"] == "OVERDUE",
    );
    let d = &shown["deliveries"][0];
    assert_eq!(d["state"], "DELIVERED", "{shown}");
    assert!(
        d["flagged_at"].is_string(),
        "flagged_at is left out: {shown}"
    );
    assert!(d.get("next_attempt_at").is_none(), "{shown}");
    let received = eventually(
        dir,
        &["alert", "show", &id, "--operator", bob, "--json"],
        "FR-DGSI flags its own deadline OVERDUE",
        |v| v["flag"] == "OVERDUE",
    );
    assert!(received["flagged_at"].is_string(), "{received}");

    // ... and so does every view for people, counted on the nodes' clock.
    let views: [&[&str]; 6] = [
        &["alert", "show", &id, "--operator", alice],
        &["alerts", "list", "--overdue", "--operator", alice],
        &["alerts", "list", "--awaiting", "--operator", alice],
        &["alert", "show", &id, "--operator", bob],
        &["alerts", "list", "--owed", "--operator", bob],
        &["alerts", "list", "--overdue", "--operator", bob],
    ];
    for args in views {
        let text = ok(dir, args);
        assert!(
            text.contains("awaiting acknowledgement, OVERDUE by"),
            "tocsin {args:?}:\n{text}"
        );
        assert!(!text.contains("due in"), "tocsin {args:?}:\n{text}");
    }
}

/// Polls `alert show ID --json` as `op` until `check` accepts it.
fn show_until(
    dir: &Path,
    id: &str,
    op: &str,
    what: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    eventually(
        dir,
        &["alert", "show", id, "--operator", op, "--json"],
        what,
        check,
    )
}

/// Sends an alert from `op` to FR-DGSI; returns `alert send --json`'s answer.
#[test]
fn refused_acknowledgements_and_blocked_deliveries_are_shown() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::two_agencies(dir, &[("TR-MIT", "alice"), ("FR-DGSI", "bob")]);
    let (alice, bob) = (
        "pki/operators/TR-MIT/alice.toml",
        "pki/operators/FR-DGSI/bob.toml",
    );
    let tr_node = start(dir, "TR-MIT", &[]);
    let _fr = start(dir, "FR-DGSI", &[]);
    for op in [alice, bob] {
        eventually(
            dir,
            &["alerts", "list", "--operator", op, "--json"],
            "the node serves",
            |_| true,
        );
    }

    // FR-DGSI receives an alert; then TR-MIT loses its data directory, so
    // it no longer holds the alert and refuses FR-DGSI's acknowledgement
    // for good (NOT_FOUND).
    let id = common::send_watch(dir, alice, &[])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    show_until(dir, &id, bob, "FR-DGSI has the alert", |_| true);
    drop(tr_node);
    std::fs::remove_dir_all(dir.join("pki/agencies/TR-MIT/data")).unwrap();
    let _tr = start(dir, "TR-MIT", &[]);
    common::ack_noted(dir, &id, bob);
    let shown = show_until(dir, &id, bob, "FR-DGSI records the refusal", |v| {
        v["acknowledgements"][0]["refusal"].is_string()
    });
    let refusal = shown["acknowledgements"][0]["refusal"].as_str().unwrap();
    assert!(refusal.starts_with("NotFound"), "{shown}");
    assert_eq!(shown["acknowledgements"][0]["delivered"], false, "{shown}");
    let text = ok(dir, &["alert", "show", &id, "--operator", bob]);
    assert!(text.contains("REFUSED by TR-MIT: NotFound"), "{text}");
    assert!(!text.contains("not yet at the originator"), "{text}");

    // FR-DGSI's node certificate is revoked: once TR-MIT's node has read
    // the CRL, what it sends FR-DGSI is BLOCKED, and says why.
    ok(
        dir,
        &[
            "pki",
            "revoke",
            "--dir",
            "pki",
            "--cert",
            "pki/agencies/FR-DGSI/node.crt",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let blocked = loop {
        let sent = common::send_watch(dir, alice, &[]);
        let id = sent["id"].as_str().unwrap().to_owned();
        let settled = show_until(dir, &id, alice, "the first attempt", |v| {
            v["deliveries"][0]["attempts"].as_u64() > Some(0)
        });
        if settled["deliveries"][0]["state"] == "BLOCKED" {
            break settled;
        }
        assert!(Instant::now() < deadline, "never BLOCKED: {settled}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let reason = blocked["deliveries"][0]["blocked_reason"].as_str().unwrap();
    assert!(
        reason.starts_with("FR-DGSI's certificate is revoked (CRL)"),
        "{blocked}"
    );
    // The next alert is accepted with a warning, for people and machines.
    let text = ok(
        dir,
        &[
            "alert",
            "send",
            "--operator",
            alice,
            "--to",
            "FR-DGSI",
            "--identifier",
            "phone:+33612345678",
            "--text",
            "Watch.",
        ],
    );
    assert!(text.contains("warning: FR-DGSI is BLOCKED"), "{text}");
    assert!(
        text.contains("FR-DGSI BLOCKED: FR-DGSI's certificate is revoked"),
        "{text}"
    );
    let sent = common::send_watch(dir, alice, &[]);
    assert_eq!(sent["deliveries"][0]["state"], "BLOCKED", "{sent}");
    assert!(
        sent["warnings"][0]
            .as_str()
            .is_some_and(|w| w.starts_with("FR-DGSI is BLOCKED")),
        "{sent}"
    );

    // A renewed certificate unblocks it: what waited is delivered.
    ok(
        dir,
        &["pki", "renew", "--dir", "pki", "--agency", "FR-DGSI"],
    );
    let last = sent["id"].as_str().unwrap();
    let delivered = show_until(dir, last, alice, "the blocked alert is delivered", |v| {
        v["deliveries"][0]["state"] == "DELIVERED"
    });
    assert!(delivered["deliveries"][0].get("blocked_reason").is_none());
}
