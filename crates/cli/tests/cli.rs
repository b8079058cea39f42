//! The `tocsin` binary as users run it: real processes, real files.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{BIN, eventually, fails, free_port, json, ok, tocsin};

#[tokio::test]
async fn two_nodes_exchange_an_alert_through_the_cli() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::two_agencies(dir, &[("TR-MIT", "alice"), ("FR-DGSI", "bob")]);
    let alice = "pki/operators/TR-MIT/alice.toml";
    let bob = "pki/operators/FR-DGSI/bob.toml";

    // FR-DGSI is down when TR-MIT sends: the alert waits in the outbox.
    let mut tr = common::node(dir, "TR-MIT").start().await?;
    let sent = json(&ok(
        dir,
        &[
            "alert",
            "send",
            "--operator",
            alice,
            "--json",
            "--to",
            "FR-DGSI",
            "--precedence",
            "PRIORITY",
            "--category",
            "terrorism",
            "--person",
            "Ismaël Omar Mostefaï",
            "--dob",
            "1985-11-21",
            "--document",
            "passport:12AB34567:FR",
            "--text",
            "Linked to a terrorist network.",
            "--reliability",
            "B",
            "--credibility",
            "2",
        ],
    ));
    let id = sent["id"].as_str().unwrap().to_owned();
    assert_eq!(sent["deliveries"][0]["state"], "PENDING");

    let mut fr = common::node(dir, "FR-DGSI").start().await?;
    let shown = eventually(
        dir,
        &["alert", "show", &id, "--operator", alice, "--json"],
        "delivered",
        |v| v["deliveries"][0]["state"] == "DELIVERED",
    );
    assert_eq!(shown["deliveries"][0]["receipt"]["signed_by"], "FR-DGSI");

    let inbox = json(&ok(
        dir,
        &["alerts", "list", "--inbox", "--operator", bob, "--json"],
    ));
    assert_eq!(inbox.as_array().unwrap().len(), 1);
    assert_eq!(inbox[0]["id"], id.as_str());
    assert_eq!(inbox[0]["originator"], "TR-MIT");
    assert_eq!(
        inbox[0]["subjects"][0]["person"]["documents"][0]["number"],
        "12AB34567"
    );

    // The human-readable table names the alert and its state.
    let table = ok(dir, &["alerts", "list", "--outbox", "--operator", alice]);
    assert!(
        table.contains(&id) && table.contains("1/1 delivered"),
        "{table}"
    );

    // A file works as well as flags.
    std::fs::write(
        dir.join("alert.toml"),
        r#"
precedence = "IMMEDIATE"
category = "terrorism"
recipients = ["FR-DGSI"]
text = "Attacks on coalition countries imminent."
[[subjects]]
identifier = { kind = "organisation", value = "Islamic State" }
"#,
    )
    .unwrap();
    let from_file = json(&ok(
        dir,
        &[
            "alert",
            "send",
            "--file",
            "alert.toml",
            "--operator",
            alice,
            "--json",
        ],
    ));
    assert_eq!(from_file["precedence"], "IMMEDIATE");
    let second = from_file["id"].as_str().unwrap().to_owned();

    // FR-DGSI owes two answers, the IMMEDIATE one first.
    let owed = eventually(
        dir,
        &["alerts", "list", "--owed", "--operator", bob, "--json"],
        "both owed",
        |v| v.as_array().is_some_and(|a| a.len() == 2),
    );
    assert_eq!(owed[0]["id"], second.as_str());
    assert_eq!(owed[1]["id"], id.as_str());

    let err = fails(
        dir,
        &[
            "alert",
            "ack",
            &id,
            "--disposition",
            "MAYBE",
            "--operator",
            bob,
        ],
    );
    assert!(err.contains("`disposition`"), "{err}");
    let answer = ok(
        dir,
        &[
            "alert",
            "ack",
            &id,
            "--disposition",
            "noted",
            "--note",
            "Seen; no trace here.",
            "--operator",
            bob,
        ],
    );
    assert!(answer.contains("acknowledged as NOTED"), "{answer}");

    let acked = eventually(
        dir,
        &["alert", "show", &id, "--operator", alice, "--json"],
        "the ack reaches TR-MIT",
        |v| {
            v["deliveries"][0]["acknowledgements"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        },
    );
    let got = &acked["deliveries"][0]["acknowledgements"][0];
    assert_eq!(got["disposition"], "NOTED");
    assert_eq!(got["note"], "Seen; no trace here.");
    assert_eq!(got["operator"], "bob");
    let awaiting = json(&ok(
        dir,
        &[
            "alerts",
            "list",
            "--awaiting",
            "--operator",
            alice,
            "--json",
        ],
    ));
    let ids: Vec<&str> = awaiting
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![second.as_str()],
        "only the unanswered one is still awaited"
    );
    let table = ok(dir, &["alert", "show", &id, "--operator", alice]);
    assert!(
        table.contains("FR-DGSI acknowledged NOTED by bob"),
        "{table}"
    );

    // The event stream, replayed from the start, tells the same story.
    let mut watch = Command::new(BIN)
        .args(["watch", "--from", "0", "--json", "--operator", alice])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(watch.stdout.take().unwrap());
    let mut kinds = Vec::new();
    for line in std::io::BufRead::lines(stdout) {
        let event = json(&line.unwrap());
        if event["alert_id"] == id.as_str() {
            kinds.push(event["kind"].as_str().unwrap().to_owned());
        }
        if kinds.len() == 3 {
            break;
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
    assert_eq!(kinds, ["SUBMITTED", "DELIVERED", "ACKNOWLEDGED"]);

    // The subject, asked for in another spelling, or by passport number.
    for query in ["MOSTEFAI ismael omar", "12AB34567"] {
        let subject = json(&ok(
            dir,
            &["subject", "show", query, "--operator", bob, "--json"],
        ));
        assert_eq!(subject["alerts"][0]["id"], id.as_str(), "{query}");
    }
    let err = fails(dir, &["subject", "show", "Nobody Known", "--operator", bob]);
    assert!(err.contains("NotFound"), "{err}");

    // The timeline verifies every signed record and shows what is missing.
    let timeline = ok(dir, &["timeline", "--alert", &id, "--operator", alice]);
    for line in [
        "ok",
        "ALERT",
        "RECEIPT",
        "ACK",
        "0 record(s) failing verification",
    ] {
        assert!(timeline.contains(line), "{line}: {timeline}");
    }
    let timeline = ok(dir, &["timeline", "--alert", &second, "--operator", alice]);
    assert!(
        timeline.contains("no acknowledgement from FR-DGSI"),
        "{timeline}"
    );

    // TR-MIT cancels its unanswered second alert; FR-DGSI now owes an
    // answer to the cancel instead.
    let cancel = json(&ok(
        dir,
        &[
            "alert",
            "cancel",
            &second,
            "--note",
            "Stand down.",
            "--operator",
            alice,
            "--json",
        ],
    ));
    assert_eq!(cancel["references"][0]["kind"], "CANCEL");
    let cancel_id = cancel["id"].as_str().unwrap().to_owned();
    eventually(
        dir,
        &["alert", "show", &second, "--operator", bob, "--json"],
        "cancelled at FR-DGSI",
        |v| v["status"] == "CANCELLED",
    );
    let owed = json(&ok(
        dir,
        &["alerts", "list", "--owed", "--operator", bob, "--json"],
    ));
    let owed: Vec<&str> = owed
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(owed, vec![cancel_id.as_str()]);
    let err = fails(dir, &["alert", "cancel", &id, "--operator", bob]);
    assert!(err.contains("only its originator can cancel"), "{err}");

    tr.terminate().await?;
    fr.terminate().await?;
    Ok(())
}

#[test]
fn pki_init_writes_private_keys_0600_and_refuses_to_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let fed = common::two_agencies_file(dir);
    ok(
        dir,
        &[
            "pki",
            "init",
            "--federation",
            fed.to_str().unwrap(),
            "--out",
            "pki",
        ],
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for key in [
            "ca.key",
            "agencies/TR-MIT/node.key",
            "agencies/TR-MIT/signing.key",
            "agencies/FR-DGSI/node.key",
        ] {
            let mode = std::fs::metadata(dir.join("pki").join(key))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{key}");
        }
    }
    let err = fails(
        dir,
        &[
            "pki",
            "init",
            "--federation",
            fed.to_str().unwrap(),
            "--out",
            "pki",
        ],
    );
    assert!(err.contains("already holds a CA"), "{err}");
}

#[test]
fn pki_revoke_and_renew_rewrite_the_crl_and_the_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let fed = common::two_agencies_file(dir);
    let init = [
        "pki",
        "init",
        "--federation",
        fed.to_str().unwrap(),
        "--out",
        "pki",
    ];
    ok(dir, &init);
    let config = std::fs::read_to_string(dir.join("pki/agencies/TR-MIT/node.toml")).unwrap();
    assert!(config.contains("crl.pem"), "{config}");
    let crl = || std::fs::read_to_string(dir.join("pki/crl.pem")).unwrap();
    let empty = crl();
    assert!(empty.contains("BEGIN X509 CRL"), "{empty}");

    let out = ok(
        dir,
        &["pki", "revoke", "--dir", "pki", "--agency", "TR-MIT"],
    );
    assert!(out.contains("revoked") && out.contains("node.crt"), "{out}");
    assert!(out.contains("lists 2 certificate(s)"), "{out}");
    assert_ne!(crl(), empty);
    let again = ok(
        dir,
        &["pki", "revoke", "--dir", "pki", "--agency", "TR-MIT"],
    );
    assert!(again.contains("already revoked"), "{again}");
    assert!(again.contains("lists 2 certificate(s)"), "{again}");
    let err = fails(
        dir,
        &["pki", "revoke", "--dir", "pki", "--agency", "XX-NONE"],
    );
    assert!(err.contains("not an agency"), "{err}");
    let err = fails(
        dir,
        &["pki", "revoke", "--dir", "pki", "--cert", "pki/crl.pem"],
    );
    assert!(err.contains("crl.pem"), "{err}");

    let cert = || std::fs::read(dir.join("pki/agencies/FR-DGSI/node.crt")).unwrap();
    let before = cert();
    let out = ok(
        dir,
        &["pki", "renew", "--dir", "pki", "--agency", "FR-DGSI"],
    );
    assert!(out.contains("renewed FR-DGSI"), "{out}");
    assert_ne!(cert(), before);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("pki/agencies/FR-DGSI/node.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn bad_configuration_and_input_give_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let fed = common::two_agencies_file(dir);

    let err = fails(dir, &["node", "--config", "missing.toml"]);
    assert!(
        err.contains("cannot read node configuration missing.toml"),
        "{err}"
    );

    std::fs::write(dir.join("broken.toml"), "[federation]\nid = \"x\"\n").unwrap();
    let err = fails(
        dir,
        &["pki", "init", "--federation", "broken.toml", "--out", "p2"],
    );
    assert!(err.contains("invalid federation file"), "{err}");

    ok(
        dir,
        &[
            "pki",
            "init",
            "--federation",
            fed.to_str().unwrap(),
            "--out",
            "pki",
        ],
    );
    let err = fails(
        dir,
        &[
            "pki",
            "issue-operator",
            "--dir",
            "pki",
            "--agency",
            "XX-NONE",
            "--name",
            "eve",
        ],
    );
    assert!(err.contains("XX-NONE is not an agency"), "{err}");
    let err = fails(
        dir,
        &[
            "pki",
            "issue-operator",
            "--dir",
            "pki",
            "--agency",
            "TR-MIT",
            "--name",
            "bad name",
        ],
    );
    assert!(err.contains("invalid operator name"), "{err}");

    // A node whose key is readable by others refuses to start.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = dir.join("pki/agencies/TR-MIT/node.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = fails(dir, &["node", "--config", "pki/agencies/TR-MIT/node.toml"]);
        assert!(err.contains("readable by group or others"), "{err}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    // A garbage certificate is named.
    std::fs::write(
        dir.join("pki/agencies/TR-MIT/node.crt"),
        "not a certificate",
    )
    .unwrap();
    let err = fails(dir, &["node", "--config", "pki/agencies/TR-MIT/node.toml"]);
    assert!(err.contains("node.crt"), "{err}");

    // Operator commands without a profile, or with malformed alerts.
    let err = fails(dir, &["alerts", "list"]);
    assert!(err.contains("no operator profile"), "{err}");
    ok(
        dir,
        &[
            "pki",
            "issue-operator",
            "--dir",
            "pki",
            "--agency",
            "FR-DGSI",
            "--name",
            "bob",
        ],
    );
    let bob = "pki/operators/FR-DGSI/bob.toml";
    let err = fails(
        dir,
        &[
            "alert",
            "send",
            "--operator",
            bob,
            "--to",
            "TR-MIT",
            "--text",
            "x",
        ],
    );
    assert!(err.contains("needs a subject"), "{err}");
    let err = fails(
        dir,
        &[
            "alert",
            "send",
            "--operator",
            bob,
            "--to",
            "TR-MIT",
            "--person",
            "A",
            "--text",
            "x",
            "--precedence",
            "URGENT",
        ],
    );
    assert!(err.contains("`precedence`"), "{err}");
    std::fs::write(dir.join("bad.json"), "{\"precedence\": \"FLASH\"}").unwrap();
    let err = fails(
        dir,
        &["alert", "send", "--operator", bob, "--file", "bad.json"],
    );
    assert!(err.contains("invalid alert file bad.json"), "{err}");
    // The node is not running: say so.
    let err = fails(dir, &["alerts", "list", "--operator", bob]);
    assert!(err.contains("cannot connect to FR-DGSI's node"), "{err}");
}

/// A three-agency demo directory under `dir` with one scenario, `smoke`:
/// two notices from TR-MIT about one person, never answered.
fn smoke_demo(dir: &Path) -> std::path::PathBuf {
    let demo = dir.join("demo");
    std::fs::create_dir_all(demo.join("scenarios")).unwrap();
    std::fs::write(
        demo.join("federation.toml"),
        r#"
[federation]
id = "smoke.tocsin"
[[agencies]]
id = "TR-MIT"
endpoint = "127.0.0.1:1"
[[agencies]]
id = "FR-DGSI"
endpoint = "127.0.0.1:2"
[[agencies]]
id = "EU-EUROPOL"
endpoint = "127.0.0.1:3"
observer = true
"#,
    )
    .unwrap();
    let notice = |label: &str, at: &str, name: &str| {
        format!(
            r#"
[[steps]]
at = "{at}"
action = "send"
from = "TR-MIT"
label = "{label}"
[steps.alert]
precedence = "PRIORITY"
category = "terrorism"
recipients = ["FR-DGSI"]
text = "Notice."
[[steps.alert.subjects]]
person = {{ names = ["{name}"], date_of_birth = "1985-11-21" }}
"#
        )
    };
    std::fs::write(
        demo.join("scenarios/smoke.toml"),
        format!(
            r#"
name = "smoke"
start = "2015-01-01T00:00:00Z"
end = "2015-01-06T00:00:00Z"
speed = 200000
[[pace]]
from = "2015-01-01T08:30:00Z"
until = "2015-01-01T10:30:00Z"
speed = 4000
{}{}"#,
            notice("first", "2015-01-01T09:00:00Z", "Ismaël Omar Mostefaï"),
            notice("second", "2015-01-01T10:00:00Z", "MOSTEFAI Ismael Omar")
        ),
    )
    .unwrap();
    demo
}

#[test]
fn the_demo_runs_real_nodes_tells_the_story_and_leaves_nothing_running() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = smoke_demo(tmp.path());
    let run_dir = tmp.path().join("run");
    let out = Command::new(BIN)
        .args(["demo", "smoke", "--json", "--demo-dir"])
        .arg(&demo)
        .arg("--dir")
        .arg(&run_dir)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pm = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(pm["scenario"], "smoke");
    let flags = pm["repeated_unanswered"].as_array().unwrap();
    assert_eq!(flags.len(), 1, "{pm}");
    assert_eq!(flags[0]["recipient"], "FR-DGSI");
    assert_eq!(flags[0]["alerts"], serde_json::json!(["first", "second"]));
    let first = &pm["alerts"][0]["recipients"][0];
    assert_eq!(first["agency"], "FR-DGSI");
    assert!(first["received_at"].is_string());
    let steps: Vec<&str> = first["escalation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["REMINDED", "ESCALATED", "LAPSED"]);

    // No node of this run is left behind.
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout);
    let leftover: Vec<&str> = ps
        .lines()
        .filter(|l| l.contains(run_dir.to_str().unwrap()))
        .collect();
    assert!(leftover.is_empty(), "still running: {leftover:?}");
}

/// `GET path` over plain HTTP/1.1 on loopback: the status and the body.
fn http_get(addr: &str, path: &str, bearer: Option<&str>) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_owned())
}

#[test]
fn the_demo_with_web_serves_the_federation_view_until_sigterm() {
    use std::io::{BufRead, BufReader};
    let tmp = tempfile::tempdir().unwrap();
    let demo = smoke_demo(tmp.path());
    let run_dir = tmp.path().join("run");
    let mut child = Command::new(BIN)
        .args(["demo", "smoke", "--json", "--web", "--demo-dir"])
        .arg(&demo)
        .arg("--dir")
        .arg(&run_dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut said = Vec::new();
    let mut next_line = |until: &str| -> String {
        loop {
            let line = stderr
                .next()
                .unwrap_or_else(|| panic!("stderr ended before {until:?}: {said:?}"))
                .unwrap();
            said.push(line.clone());
            if line.contains(until) {
                return line;
            }
        }
    };
    // The address with this start's token, once, before anything plays.
    let line = next_line("== federation view: http://");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap();
    let (addr, token) = url
        .strip_prefix("http://")
        .and_then(|u| u.split_once("/?token="))
        .unwrap();
    let (addr, token) = (addr.to_owned(), token.to_owned());
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    assert_eq!(http_get(&addr, "/", None).0, 401);

    // After the scenario: the post-mortem's timeline and the flag.
    next_line("serving until Ctrl-C");
    let (status, page) = http_get(&addr, "/", Some(&token));
    assert_eq!(status, 200);
    assert!(
        page.contains("Post-mortem of federation smoke.tocsin"),
        "{page}"
    );
    assert!(page.contains("REPEATED_UNANSWERED"), "{page}");
    assert!(page.contains("data-state=\"LAPSED\""), "{page}");
    assert!(page.contains("id=\"scrub\""), "{page}");

    // SIGTERM stops it, cleanly, and it says so; stdout is the JSON alone.
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    next_line("federation view stopped");
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let pm = json(&stdout);
    assert_eq!(pm["scenario"], "smoke");
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "{addr} still listens"
    );
}

#[tokio::test]
async fn a_scenario_replays_against_nodes_started_by_hand() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::two_agencies(dir, &[("TR-MIT", "ops"), ("FR-DGSI", "ops")]);
    std::fs::write(
        dir.join("scenario.toml"),
        r#"
name = "by-hand"
start = "2015-01-01T00:00:00Z"
end = "2015-01-01T02:00:00Z"
speed = 1800

[[steps]]
at = "2015-01-01T00:10:00Z"
action = "send"
from = "TR-MIT"
label = "warning"
[steps.alert]
precedence = "FLASH"
category = "terrorism"
recipients = ["FR-DGSI"]
text = "Attack imminent."
[[steps.alert.subjects]]
identifier = { kind = "phone", value = "+90 555 000 00 00" }

[[steps]]
at = "2015-01-01T00:30:00Z"
action = "ack"
by = "FR-DGSI"
label = "warning"
disposition = "ACTIONED"
"#,
    )
    .unwrap();
    // The nodes run on the scenario's clock, from a shared origin: six
    // seconds ahead, for them to serve before scenario time begins.
    let origin = (chrono::Utc::now() + chrono::Duration::seconds(6)).to_rfc3339();
    let clock = [
        "--clock-start",
        "2015-01-01T00:00:00Z",
        "--clock-speed",
        "1800",
        "--clock-origin",
        &origin,
    ];
    let mut tr = common::node(dir, "TR-MIT").args(clock).start().await?;
    let mut fr = common::node(dir, "FR-DGSI").args(clock).start().await?;
    let out = Command::new(BIN)
        .args([
            "scenario",
            "run",
            "scenario.toml",
            "--federation",
            "pki/federation.toml",
            "--operators",
            "pki/operators",
        ])
        .args(["--clock-origin", &origin, "--json"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pm = json(&String::from_utf8_lossy(&out.stdout));
    let fr_delivery = &pm["alerts"][0]["recipients"][0];
    assert_eq!(fr_delivery["agency"], "FR-DGSI");
    // FLASH: ten minutes to answer; FR-DGSI answered after twenty.
    let ack = &fr_delivery["acknowledgements"][0];
    assert_eq!(ack["disposition"], "ACTIONED");
    let late = ack["late_by_seconds"].as_u64().unwrap();
    assert!((540..=660).contains(&late), "late by {late} s");
    assert_eq!(fr_delivery["flag"], "OVERDUE");
    tr.terminate().await?;
    fr.terminate().await?;
    Ok(())
}

#[tokio::test]
async fn the_audit_record_verifies_exports_and_catches_edits() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::two_agencies(dir, &[("TR-MIT", "alice"), ("FR-DGSI", "bob")]);
    let (alice, bob) = (
        "pki/operators/TR-MIT/alice.toml",
        "pki/operators/FR-DGSI/bob.toml",
    );
    let config = "pki/agencies/TR-MIT/node.toml";
    let mut tr = common::node(dir, "TR-MIT").start().await?;
    let mut fr = common::node(dir, "FR-DGSI").start().await?;
    common::watch_answered(dir, alice, bob);
    // A running node's record can be checked.
    let live = ok(dir, &["audit", "verify", "--config", config]);
    assert!(live.contains("OK: the chain is intact"), "{live}");
    tr.terminate().await?;
    fr.terminate().await?;

    let report = json(&ok(dir, &["audit", "verify", "--config", config, "--json"]));
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["agency"], "TR-MIT");
    // Submitted, delivered, acknowledged.
    assert_eq!(report["entries"], 3, "{report}");
    assert_eq!(report["events"], 3, "{report}");
    assert_eq!(report["signatures"], 3, "{report}");

    let exported = ok(
        dir,
        &["audit", "export", "--config", config, "--out", "tr.jsonl"],
    );
    assert!(exported.contains("OK: exported to tr.jsonl"), "{exported}");
    assert!(
        exported.contains("signed head: entry 3 of TR-MIT"),
        "{exported}"
    );
    // Offline, with the CA certificate alone.
    let offline = ok(
        dir,
        &[
            "audit",
            "verify",
            "--bundle",
            "tr.jsonl",
            "--ca",
            "pki/ca.crt",
        ],
    );
    assert!(
        offline.contains("3 entries, 4 signatures checked"),
        "{offline}"
    );
    assert!(offline.contains("OK"), "{offline}");

    // The bundle, edited: the acknowledgement's entry is named.
    let bundle = std::fs::read_to_string(dir.join("tr.jsonl")).unwrap();
    let edited = bundle.replace("acknowledged NOTED", "acknowledged ACTIONED");
    assert_ne!(edited, bundle);
    std::fs::write(dir.join("edited.jsonl"), edited).unwrap();
    let out = tocsin(
        dir,
        &[
            "audit",
            "verify",
            "--bundle",
            "edited.jsonl",
            "--ca",
            "pki/ca.crt",
            "--json",
        ],
    );
    assert!(!out.status.success());
    let report = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(report["ok"], false);
    assert_eq!(report["first"]["entry"], 3, "{report}");
    assert_eq!(report["first"]["problem"], "changed", "{report}");

    // The store, edited behind the node's back.
    let db = dir.join("pki/agencies/TR-MIT/data/tocsin.sqlite3");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "DROP TRIGGER events_no_update;
         UPDATE events SET detail = 'FR-DGSI acknowledged ACTIONED' WHERE kind = 5;",
    )
    .unwrap();
    drop(conn);
    let out = tocsin(dir, &["audit", "verify", "--config", config]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("FAILED: at entry 3 changed: event 3 differs from what entry 3 recorded"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("audit verification failed"), "{stderr}");
    // ... and no bundle is signed over it.
    let err = fails(
        dir,
        &["audit", "export", "--config", config, "--out", "bad.jsonl"],
    );
    assert!(err.contains("not exported"), "{err}");
    assert!(!dir.join("bad.jsonl").exists());

    let err = fails(dir, &["audit", "verify"]);
    assert!(err.contains("--config"), "{err}");
    Ok(())
}

#[tokio::test]
async fn the_postmortem_merges_bundles_and_refuses_what_is_not_one() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::two_agencies(dir, &[("TR-MIT", "alice")]);
    let mut tr = common::node(dir, "TR-MIT").start().await?;
    let mut fr = common::node(dir, "FR-DGSI").start().await?;
    let sent = common::send_watch(dir, "pki/operators/TR-MIT/alice.toml", &[]);
    let id = sent["id"].as_str().unwrap().to_owned();
    eventually(
        dir,
        &[
            "alert",
            "show",
            &id,
            "--operator",
            "pki/operators/TR-MIT/alice.toml",
            "--json",
        ],
        "FR-DGSI receipts it",
        |v| v["deliveries"][0]["state"] == "DELIVERED",
    );
    tr.terminate().await?;
    fr.terminate().await?;
    for (agency, out) in [("TR-MIT", "tr.jsonl"), ("FR-DGSI", "fr.jsonl")] {
        let config = format!("pki/agencies/{agency}/node.toml");
        ok(dir, &["audit", "export", "--config", &config, "--out", out]);
    }
    let postmortem = |bundles: &[&str], extra: &[&str]| {
        let mut args = vec!["postmortem", "--ca", "pki/ca.crt"];
        for b in bundles {
            args.extend(["--bundle", b]);
        }
        args.extend_from_slice(extra);
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        tocsin(dir, &args)
    };

    // Text, by area: FR-DGSI never answered.
    let out = run(postmortem(
        &["tr.jsonl", "fr.jsonl"],
        &["--federation", "federation.toml"],
    ));
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("2 bundle(s), 2 verified"), "{text}");
    assert!(text.contains("Information sharing"), "{text}");
    assert!(text.contains("and never acknowledged"), "{text}");
    assert!(!text.contains("protocol's defaults"), "{text}");
    // JSON for tools.
    let v = json(&ok(
        dir,
        &[
            "postmortem",
            "--bundle",
            "tr.jsonl",
            "--bundle",
            "fr.jsonl",
            "--ca",
            "pki/ca.crt",
            "--json",
        ],
    ));
    assert_eq!(v["federation"], "cli-test.tocsin", "{v}");
    assert_eq!(v["bundles"][1]["verified"], true, "{v}");
    assert_eq!(v["findings"][0]["kind"], "never-acknowledged", "{v}");
    assert_eq!(v["findings"][0]["area"], "information-sharing", "{v}");
    assert_eq!(v["timeline"][0]["kind"], "alert", "{v}");

    // An edited bundle is a finding, not a failure.
    let bundle = std::fs::read_to_string(dir.join("fr.jsonl")).unwrap();
    let edited = bundle.replacen("\"detail\":\"", "\"detail\":\"not ", 1);
    assert_ne!(edited, bundle);
    std::fs::write(dir.join("edited.jsonl"), edited).unwrap();
    let out = run(postmortem(&["tr.jsonl", "edited.jsonl"], &[]));
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("FAILED    edited.jsonl  FR-DGSI"), "{text}");

    // Unusable input is refused, with what is wrong.
    std::fs::write(dir.join("notes.txt"), "not a bundle\n").unwrap();
    let err = fails(
        dir,
        &postmortem(&["tr.jsonl", "notes.txt"], &[])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(
        err.contains("notes.txt: not a Tocsin audit bundle"),
        "{err}"
    );
    let err = fails(
        dir,
        &postmortem(&["edited.jsonl"], &[])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(err.contains("no bundle verifies"), "{err}");
    let err = fails(
        dir,
        &postmortem(&["missing.jsonl"], &[])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(err.contains("missing.jsonl"), "{err}");
    Ok(())
}

/// `GET /metrics` from `port` over plain HTTP, or `None` while nothing
/// answers.
fn scrape(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    Some(body.to_owned())
}

#[tokio::test]
async fn a_node_serves_metrics_where_its_configuration_says() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::two_agencies(dir, &[]);
    let port = free_port();
    let config = dir.join("pki/agencies/TR-MIT/node.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!("metrics_listen = \"127.0.0.1:{port}\"\n{text}"),
    )
    .unwrap();
    let mut tr = common::node(dir, "TR-MIT").start().await?;
    let mut fr = common::node(dir, "FR-DGSI").start().await?;
    // TR-MIT measures FR-DGSI's clock as soon as both are up (it probes
    // peers it has not measured); one host, one clock: within tolerance.
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        if let Some(body) = scrape(port)
            && body.contains("tocsin_peer_clock_skew_exceeded{peer=\"FR-DGSI\"}")
        {
            break body;
        }
        assert!(Instant::now() < deadline, "no skew measured for FR-DGSI");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        body.lines()
            .any(|l| l == "tocsin_peer_clock_skew_exceeded{peer=\"FR-DGSI\"} 0"),
        "{body}"
    );
    assert!(
        body.lines()
            .any(|l| l == "tocsin_clock_skew_tolerance_seconds 120"),
        "{body}"
    );
    fr.terminate().await?;
    tr.terminate().await?;
    Ok(())
}

/// `web_listen` in a node's configuration: the desk answers on loopback
/// with the token the node logged once and wrote to its data directory,
/// and refuses requests without it; off loopback, the node does not start.
#[tokio::test]
async fn a_node_serves_its_web_desk_on_loopback_behind_a_token() -> anyhow::Result<()> {
    use anyhow::Context as _;
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    common::two_agencies(dir, &[]);
    let port = free_port();
    let config = dir.join("pki/agencies/TR-MIT/node.toml");
    let text = std::fs::read_to_string(&config)?;
    std::fs::write(
        &config,
        format!("web_listen = \"127.0.0.1:{port}\"\n{text}"),
    )?;
    // The token is logged at INFO, which the test kit's nodes leave out.
    let mut tr = common::node(dir, "TR-MIT")
        .env("RUST_LOG", "info")
        .start()
        .await?;
    let desk = tocsin_testkit::WebDesk::wait_for(
        ([127, 0, 0, 1], port).into(),
        &dir.join("pki/agencies/TR-MIT/data"),
    )
    .await?;
    assert_eq!(desk.get("/", None).await?.status, 401);
    let page = desk.get("/", Some(&desk.token)).await?;
    assert_eq!(page.status, 200, "{}", page.head);
    assert!(page.body.contains("What TR-MIT owes"), "{}", page.body);
    let log = tr.log();
    assert_eq!(log.matches(desk.token.as_str()).count(), 1, "{log}");
    tr.terminate().await?;

    std::fs::write(&config, format!("web_listen = \"0.0.0.0:{port}\"\n{text}"))?;
    let refused = common::node(dir, "TR-MIT").start().await;
    let err = format!(
        "{:#}",
        refused.err().context("a desk off loopback started")?
    );
    assert!(err.contains("is not a loopback address"), "{err}");
    Ok(())
}

/// The test kit's node processes, as the crash and memory tests use them: a
/// node killed with SIGKILL comes back on the same port and store; SIGTERM
/// stops it cleanly; a node that cannot start is reported with its log;
/// none outlives its handle.
#[tokio::test]
async fn node_processes_restart_on_their_store_and_die_with_their_handle() -> anyhow::Result<()> {
    use tocsin_testkit::{NodeCommand, ProcessError, tocsin_binary};
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    common::two_agencies(dir, &[("TR-MIT", "alice")]);
    let alice = "pki/operators/TR-MIT/alice.toml";
    let list = ["alerts", "list", "--operator", alice, "--json"];

    let mut tr = common::node(dir, "TR-MIT").start().await?;
    let sent = common::send_watch(dir, alice, &[]);
    let id = sent["id"].as_str().unwrap().to_owned();
    let first = tr.pid().unwrap();
    tr.kill()?;
    assert!(!tr.is_running() && tr.pid().is_none());
    assert!(
        !tocsin(dir, &list).status.success(),
        "a killed node answered"
    );

    // Started again: a new process, serving on the same port from the same
    // store.
    tr.restart().await?;
    assert_ne!(tr.pid(), Some(first));
    let shown = json(&ok(
        dir,
        &["alert", "show", &id, "--operator", alice, "--json"],
    ));
    assert_eq!(shown["id"], id.as_str());
    // A running node restarts through SIGTERM, and stops cleanly.
    tr.restart().await?;
    assert!(tocsin(dir, &list).status.success());
    tr.terminate().await?;
    assert!(matches!(
        tr.terminate().await,
        Err(ProcessError::NotRunning { .. })
    ));

    // Dropped while it runs: killed and reaped.
    let node = common::node(dir, "TR-MIT").start().await?;
    let pid = node.pid().unwrap();
    drop(node);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "{pid} outlived its handle"
    );

    // A node on a port another one holds: the other's answers are not
    // taken for its own; it is retried until its timeout, then reported.
    let mut tr = common::node(dir, "TR-MIT").start().await?;
    let err = common::node(dir, "TR-MIT")
        .log_file(dir.join("second.log"))
        .ready_timeout(Duration::from_millis(500))
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, ProcessError::PortTaken { .. }), "{err}");
    assert!(tr.is_running());
    tr.terminate().await?;
    // A node whose data directory is a file exits at once, and says why.
    let agency = dir.join("pki/agencies/FR-DGSI");
    let text = std::fs::read_to_string(agency.join("node.toml"))?;
    let bad = text.replace("data_dir = \"data\"", "data_dir = \"node.toml\"");
    assert_ne!(bad, text);
    std::fs::write(agency.join("bad.toml"), bad)?;
    let err = NodeCommand::new(BIN, "pki/agencies/FR-DGSI/bad.toml")
        .current_dir(dir)
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, ProcessError::Exited { .. }), "{err}");
    assert!(err.to_string().contains("node.toml"), "{err}");

    // The binary: where it is said to be, or an error that names where it
    // was looked for.
    assert_eq!(tocsin_binary(Some(Path::new(BIN)))?, Path::new(BIN));
    let missing = dir.join("no-such-tocsin");
    let err = tocsin_binary(Some(&missing)).unwrap_err();
    assert!(err.to_string().contains("no-such-tocsin"), "{err}");
    Ok(())
}
