//! `tocsin screen` as users run it: real node processes, real files.

mod common;
use common::{eventually, fails, json, ok};

const ALICE: &str = "pki/operators/TR-MIT/alice.toml";
const BOB: &str = "pki/operators/FR-DGSI/bob.toml";

fn entry(reference: &str, name: &str, action: &str) -> String {
    format!(
        r#"{{"ref": "{reference}", "subject": {{"person": {{"names": ["{name}"]}}}}, "reason": "wanted", "action": "{action}", "releasable_to": ["FR-DGSI"]}}"#
    )
}

#[tokio::test]
async fn screen_from_flags_and_from_a_file_in_order() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::two_agencies(dir, &[("TR-MIT", "alice"), ("FR-DGSI", "bob")]);
    let _tr = common::node(dir, "TR-MIT").start().await?;
    let _fr = common::node(dir, "FR-DGSI").start().await?;
    let entries = format!(
        "{}\n{}\n",
        entry("W-ABDESLAM", "Salah Abdeslam", "ARREST"),
        entry("W-ABAAOUD", "Abdelhamid Abaaoud", "INQUIRY_CHECK"),
    );
    std::fs::write(dir.join("entries.jsonl"), entries)?;
    ok(
        dir,
        &["watchlist", "import", "--operator", ALICE, "entries.jsonl"],
    );

    // From flags: the owner's entry, with owner, ref, score and reasons.
    let found = eventually(
        dir,
        &[
            "screen",
            "--operator",
            BOB,
            "--json",
            "--name",
            "ABDESLAM Salah",
            "--seen-place",
            "CDG",
            "--ref",
            "case-1",
        ],
        "FR-DGSI's screen finds W-ABDESLAM",
        |v| v["matches"][0]["ref"] == "W-ABDESLAM",
    );
    assert_eq!(found["ref"], "case-1");
    let m = &found["matches"][0];
    assert_eq!(m["owner"], "TR-MIT");
    assert_eq!(m["hit"], true);
    assert!(m["score"].as_f64().unwrap() > 0.8, "{m}");
    assert_eq!(m["entry"]["action"], "ARREST");
    assert_eq!(m["reasons"][0]["kind"], "name");
    // The hit sent TR-MIT a hit report, which its operator sees as an
    // alert it owes an answer to, beside what it holds about the subject.
    let report = m["hit_report_id"]
        .as_str()
        .expect("a hit report")
        .to_owned();
    let shown = eventually(
        dir,
        &["alert", "show", &report, "--operator", ALICE, "--json"],
        "TR-MIT holds the hit report",
        |v| v["direction"] == "inbound",
    );
    assert_eq!(shown["category"], "watchlist-hit");
    assert_eq!(shown["hit"]["entry_ref"], "W-ABDESLAM");
    assert_eq!(shown["hit"]["seen_place"], "CDG");
    assert_eq!(shown["hit"]["screen_ref"], "case-1");
    let table = ok(dir, &["alert", "show", &report, "--operator", ALICE]);
    assert!(
        table.contains("hit on") && table.contains("TR-MIT's entry W-ABDESLAM"),
        "{table}"
    );
    let subject = ok(
        dir,
        &["subject", "show", "Salah Abdeslam", "--operator", ALICE],
    );
    assert!(
        subject.contains("hits on watchlist entries") && subject.contains(&report),
        "{subject}"
    );
    // The same person again: the report already sent.
    let again = json(&ok(
        dir,
        &[
            "screen",
            "--operator",
            BOB,
            "--json",
            "--name",
            "Salah ABDESLAM",
            "--ref",
            "case-2",
        ],
    ));
    assert_eq!(again["matches"][0]["hit_report_id"], report.as_str());
    assert_eq!(again["matches"][0]["hit_report_repeated"], true);
    common::ack_noted(dir, &report, ALICE);

    let table = ok(
        dir,
        &["screen", "--operator", BOB, "--name", "Abaaoud Abdelhamid"],
    );
    assert!(
        table.contains("W-ABAAOUD")
            && table.contains("INQUIRY_CHECK")
            && table.contains("HIT")
            && table.contains("reported to TR-MIT"),
        "{table}"
    );
    let err = fails(dir, &["screen", "--operator", BOB, "--dob", "1989"]);
    assert!(err.contains("nothing to screen on"), "{err}");

    // From a file: one result per line, in order, each with its ref.
    std::fs::write(
        dir.join("people.jsonl"),
        concat!(
            r#"{"ref": "p-1", "names": ["Jean Dupont"]}"#,
            "\n\n",
            r#"{"ref": "p-2", "names": ["Abdel-Hamid Abaaoud"], "seen_place": "Gare du Nord"}"#,
            "\n",
            r#"{"names": ["Salah Abdeslam"]}"#,
            "\n",
        ),
    )?;
    let out = ok(
        dir,
        &[
            "screen",
            "--operator",
            BOB,
            "--json",
            "--file",
            "people.jsonl",
        ],
    );
    let results: Vec<serde_json::Value> = out.lines().map(json).collect();
    assert_eq!(results.len(), 3, "{out}");
    assert_eq!(results[0]["ref"], "p-1");
    assert!(
        results[0]["matches"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["hit"] == false),
        "{out}"
    );
    assert_eq!(results[1]["ref"], "p-2");
    assert_eq!(results[1]["matches"][0]["ref"], "W-ABAAOUD");
    assert_eq!(results[2]["ref"], "");
    assert_eq!(results[2]["line"], 4);
    assert_eq!(results[2]["matches"][0]["ref"], "W-ABDESLAM");
    let out = ok(
        dir,
        &["screen", "--operator", BOB, "--file", "people.jsonl"],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[1].starts_with("p-2: HIT TR-MIT/W-ABAAOUD"), "{out}");
    assert!(
        lines[2].starts_with("line 4: HIT TR-MIT/W-ABDESLAM"),
        "{out}"
    );

    // A malformed line is reported by its number, and nothing is screened.
    std::fs::write(
        dir.join("bad.jsonl"),
        concat!(
            r#"{"ref": "p-1", "names": ["Salah Abdeslam"]}"#,
            "\n",
            r#"{"ref": "p-2", "names": ["#,
            "\n",
        ),
    )?;
    let out = common::tocsin(dir, &["screen", "--operator", BOB, "--file", "bad.jsonl"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.jsonl line 2"), "{err}");
    assert!(err.contains("nothing was screened"), "{err}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    std::fs::write(
        dir.join("empty.jsonl"),
        concat!(
            r#"{"ref": "p-1", "names": ["Salah Abdeslam"]}"#,
            "\n",
            r#"{"ref": "p-2"}"#,
            "\n"
        ),
    )?;
    let err = fails(dir, &["screen", "--operator", BOB, "--file", "empty.jsonl"]);
    assert!(
        err.contains("empty.jsonl line 2: nothing to screen on"),
        "{err}"
    );
    Ok(())
}
