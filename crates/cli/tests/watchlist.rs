//! `tocsin watchlist` as users run it: real node processes, real files.

mod common;
use common::{eventually, fails, json, ok};

const ALICE: &str = "pki/operators/TR-MIT/alice.toml";
const BOB: &str = "pki/operators/FR-DGSI/bob.toml";

fn line(reference: &str, name: &str) -> String {
    format!(
        r#"{{"ref": "{reference}", "subject": {{"person": {{"names": ["{name}"]}}}}, "reason": "wanted", "action": "DISCREET_CHECK", "releasable_to": ["FR-DGSI"]}}"#
    )
}

fn count(v: &serde_json::Value) -> usize {
    v.as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn entries_added_and_imported_reach_the_other_agency() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::two_agencies(dir, &[("TR-MIT", "alice"), ("FR-DGSI", "bob")]);
    let _tr = common::node(dir, "TR-MIT").start().await?;
    let _fr = common::node(dir, "FR-DGSI").start().await?;

    let added = json(&ok(
        dir,
        &[
            "watchlist",
            "add",
            "--operator",
            ALICE,
            "--json",
            "--ref",
            "W-1",
            "--name",
            "Ana Ruiz",
            "--dob",
            "1990-02-03",
            "--document",
            "passport:X1234567:ES",
            "--reason",
            "wanted for questioning",
            "--action",
            "INQUIRY_CHECK",
            "--hit-precedence",
            "IMMEDIATE",
            "--to",
            "FR-DGSI",
        ],
    ));
    assert_eq!(added["ref"], "W-1");
    assert_eq!(added["owner"], "TR-MIT");
    assert_eq!(added["seq"], 1);
    assert_eq!(added["action"], "INQUIRY_CHECK");

    // Nothing a check could match: refused, naming the field.
    let err = fails(
        dir,
        &[
            "watchlist",
            "add",
            "--operator",
            ALICE,
            "--ref",
            "W-0",
            "--reason",
            "x",
            "--action",
            "ARREST",
            "--to",
            "FR-DGSI",
        ],
    );
    assert!(err.contains("subject.person.names"), "{err}");

    // A malformed line is reported by its number; nothing of the file is
    // imported.
    let bad = format!(
        "{}\n\n{}\n{{\"ref\": \"W-4\",\n",
        line("W-2", "Marc Dubois"),
        line("W-3", "Lea Martin")
    );
    std::fs::write(dir.join("bad.jsonl"), bad)?;
    let err = fails(
        dir,
        &["watchlist", "import", "--operator", ALICE, "bad.jsonl"],
    );
    assert!(err.contains("bad.jsonl line 4"), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");
    // A line the node refuses (a ref already used) is named too.
    let taken = format!(
        "{}\n{}\n",
        line("W-2", "Marc Dubois"),
        line("W-1", "Ana Ruiz")
    );
    std::fs::write(dir.join("taken.jsonl"), taken)?;
    let err = fails(
        dir,
        &["watchlist", "import", "--operator", ALICE, "taken.jsonl"],
    );
    assert!(err.contains("taken.jsonl line 2"), "{err}");
    assert!(err.contains("AlreadyExists"), "{err}");
    // A file too large for one request (about 2 MiB against the node's
    // 1 MiB limit) is refused as a whole, naming the file.
    let huge: String = (0..12_000)
        .map(|i| line(&format!("H-{i}"), "Marc Dubois") + "\n")
        .collect();
    std::fs::write(dir.join("huge.jsonl"), huge)?;
    let err = fails(
        dir,
        &["watchlist", "import", "--operator", ALICE, "huge.jsonl"],
    );
    assert!(err.contains("huge.jsonl: node refused"), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");
    // One line longer than any request could be is refused by its number
    // without being read whole.
    let long = format!(
        "{}\n{{\"ref\": \"L-1\", \"reason\": \"{}\"}}\n",
        line("W-2", "Marc Dubois"),
        "x".repeat(2 << 20)
    );
    std::fs::write(dir.join("long.jsonl"), long)?;
    let err = fails(
        dir,
        &["watchlist", "import", "--operator", ALICE, "long.jsonl"],
    );
    assert!(
        err.contains("long.jsonl line 2: longer than 1048576 bytes"),
        "{err}"
    );
    assert!(err.contains("nothing was imported"), "{err}");
    let own = json(&ok(
        dir,
        &["watchlist", "list", "--operator", ALICE, "--json"],
    ));
    assert_eq!(count(&own), 1, "{own}");

    let good = format!(
        "{}\n{}\n",
        line("W-2", "Marc Dubois"),
        line("W-3", "Lea Martin")
    );
    std::fs::write(dir.join("good.jsonl"), good)?;
    let out = ok(
        dir,
        &["watchlist", "import", "--operator", ALICE, "good.jsonl"],
    );
    assert!(
        out.contains("imported 2 entries from good.jsonl (seq 2..3)"),
        "{out}"
    );

    let held = eventually(
        dir,
        &["watchlist", "list", "--operator", BOB, "--json"],
        "FR-DGSI holds TR-MIT's three entries",
        |v| count(v) == 3,
    );
    assert_eq!(held[0]["ref"], "W-1");
    assert_eq!(held[0]["hit_precedence"], "IMMEDIATE");
    let status = eventually(
        dir,
        &["watchlist", "sync-status", "--operator", BOB, "--json"],
        "FR-DGSI caught up with TR-MIT",
        |v| v[0]["cursor"] == 3,
    );
    assert_eq!(status[0]["owner"], "TR-MIT");
    assert_eq!(status[0]["behind_changes"], 0);
    assert_eq!(status[0]["held"], 3);
    let table = ok(dir, &["watchlist", "list", "--operator", BOB]);
    assert!(
        table.contains("W-1") && table.contains("INQUIRY_CHECK"),
        "{table}"
    );
    let table = ok(dir, &["watchlist", "sync-status", "--operator", BOB]);
    assert!(table.contains("TR-MIT"), "{table}");

    ok(dir, &["watchlist", "remove", "--operator", ALICE, "W-1"]);
    eventually(
        dir,
        &["watchlist", "list", "--operator", BOB, "--json"],
        "FR-DGSI drops W-1",
        |v| count(v) == 2,
    );
    let err = fails(dir, &["watchlist", "remove", "--operator", ALICE, "W-1"]);
    assert!(err.contains("NotFound"), "{err}");
    Ok(())
}
