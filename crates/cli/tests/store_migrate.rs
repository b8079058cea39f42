//! `tocsin store migrate` and `tocsin audit` on a PostgreSQL store, with
//! the real binary: a node's SQLite store, filled by real nodes exchanging
//! a real alert and its acknowledgement, moved into PostgreSQL; its record
//! then verifies there with the same head, exports a bundle that verifies
//! offline, a second move into the same database is refused, and the
//! node runs on and writes the moved store.
//!
//! The test starts a private PostgreSQL server (tocsin-pgtest); without
//! the binaries it prints SKIPPED and passes, unless
//! TOCSIN_REQUIRE_POSTGRES=1.

use tocsin_pgtest::TestPostgres;

mod common;
use common::{eventually, fails, json, ok, tocsin};

#[tokio::test]
async fn a_store_moved_to_postgresql_keeps_its_verified_record() -> anyhow::Result<()> {
    let Some(pg) = TestPostgres::start()? else {
        eprintln!("SKIPPED: no PostgreSQL binaries (TOCSIN_REQUIRE_POSTGRES=1 requires them)");
        return Ok(());
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::two_agencies(dir, &[("TR-MIT", "alice"), ("FR-DGSI", "bob")]);
    let (alice, bob) = (
        "pki/operators/TR-MIT/alice.toml",
        "pki/operators/FR-DGSI/bob.toml",
    );
    let config = "pki/agencies/TR-MIT/node.toml";

    // A record worth moving: an alert sent, delivered and acknowledged.
    let mut tr = common::node(dir, "TR-MIT").start().await?;
    let mut fr = common::node(dir, "FR-DGSI").start().await?;
    common::watch_answered(dir, alice, bob);
    tr.terminate().await?;
    fr.terminate().await?;

    let sqlite = json(&ok(dir, &["audit", "verify", "--config", config, "--json"]));
    assert_eq!(sqlite["ok"], true, "{sqlite}");
    assert_eq!(sqlite["entries"], 3, "{sqlite}");
    let head = sqlite["head"].clone();
    let hash = head["hash"].as_str().unwrap().to_owned();

    // A password in the URL (the test server does not ask for one): it
    // must never be printed.
    let url = format!("{} password=sekrit-pw", pg.create_database("tr_mit").await?);
    let data = "pki/agencies/TR-MIT/data";
    let out = tocsin(dir, &["store", "migrate", "--from", data, "--to", &url]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("migrated "), "{stdout}");
    assert!(
        stdout.contains(&format!("source audit head: entry 3, sha256 {hash}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("target audit head: entry 3, sha256 {hash}")),
        "{stdout}"
    );
    assert!(stdout.contains("audit_log"), "{stdout}");
    assert!(stdout.contains("OK: every row copied"), "{stdout}");
    // Progress, table by table.
    assert!(stderr.contains("alerts: copied 1 of 1 rows"), "{stderr}");
    assert!(stderr.contains("audit_log: copied 3 of 3 rows"), "{stderr}");
    assert!(!format!("{stdout}{stderr}").contains("sekrit"));

    // The node's configuration, pointed at PostgreSQL.
    let node_toml = std::fs::read_to_string(dir.join(config))?;
    assert!(!node_toml.contains("[store]"), "{node_toml}");
    let pg_config = "pki/agencies/TR-MIT/node-pg.toml";
    std::fs::write(
        dir.join(pg_config),
        format!("{node_toml}\n[store]\nurl = {url:?}\n"),
    )?;
    let moved = json(&ok(
        dir,
        &["audit", "verify", "--config", pg_config, "--json"],
    ));
    assert_eq!(moved["ok"], true, "{moved}");
    assert_eq!(moved["head"], head, "{moved}");
    assert_eq!(
        (&moved["entries"], &moved["events"], &moved["signatures"]),
        (&sqlite["entries"], &sqlite["events"], &sqlite["signatures"])
    );
    let source = moved["source"].as_str().unwrap();
    assert!(source.starts_with("postgresql://"), "{source}");
    assert!(source.ends_with("/tr_mit"), "{source}");
    // The same, with the URL given on the command line.
    let text = ok(
        dir,
        &["audit", "verify", "--config", config, "--store-url", &url],
    );
    assert!(text.contains("OK: the chain is intact"), "{text}");
    assert!(!text.contains("sekrit"), "{text}");

    // An export from PostgreSQL verifies offline.
    let exported = ok(
        dir,
        &[
            "audit", "export", "--config", pg_config, "--out", "pg.jsonl",
        ],
    );
    assert!(exported.contains("OK: exported to pg.jsonl"), "{exported}");
    assert!(!exported.contains("sekrit"), "{exported}");
    let offline = json(&ok(
        dir,
        &[
            "audit",
            "verify",
            "--bundle",
            "pg.jsonl",
            "--ca",
            "pki/ca.crt",
            "--json",
        ],
    ));
    assert_eq!(offline["ok"], true, "{offline}");
    assert_eq!(offline["head"], head, "{offline}");
    assert_eq!(offline["signed_head"]["agency"], "TR-MIT", "{offline}");

    // A second move into the same database is refused, and says why.
    let err = fails(dir, &["store", "migrate", "--from", data, "--to", &url]);
    assert!(err.contains("target database is not empty"), "{err}");
    assert!(!err.contains("sekrit"), "{err}");
    let again = json(&ok(
        dir,
        &["audit", "verify", "--config", pg_config, "--json"],
    ));
    assert_eq!(again["head"], head, "{again}");

    // The node goes on from PostgreSQL: a new alert's events follow the
    // copied ones, and the record still verifies.
    let mut tr = tocsin_testkit::NodeCommand::new(common::BIN, pg_config)
        .current_dir(dir)
        .start()
        .await?;
    let mut fr = common::node(dir, "FR-DGSI").start().await?;
    let second = common::send_watch(dir, alice, &[]);
    let second = second["id"].as_str().unwrap().to_owned();
    eventually(
        dir,
        &["alert", "show", &second, "--operator", alice, "--json"],
        "the second alert is delivered",
        |v| v["deliveries"][0]["state"] == "DELIVERED",
    );
    tr.terminate().await?;
    fr.terminate().await?;
    let after = json(&ok(
        dir,
        &["audit", "verify", "--config", pg_config, "--json"],
    ));
    assert_eq!(after["ok"], true, "{after}");
    // Submitted and delivered, after the three copied.
    assert_eq!(after["entries"], 5, "{after}");
    assert_eq!(after["head"]["seq"], 5, "{after}");

    // A database that holds no store is not one to verify.
    let empty = pg.create_database("empty").await?;
    let err = fails(
        dir,
        &["audit", "verify", "--config", config, "--store-url", &empty],
    );
    assert!(err.contains("holds no Tocsin store"), "{err}");
    Ok(())
}
