//! The tamper-evident record: what real nodes record checks out, in their
//! stores and offline from an exported bundle; rows edited, deleted,
//! reordered or inserted in a stopped node's SQLite file are reported at
//! the entry they concern; a chain rewritten whole is caught by the
//! signatures it cannot forge and by an earlier export's signed head.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{Duration, Utc};
use prost::Message;
use rusqlite::{Connection, params};
use tocsin_audit::{self as audit, Finding, Problem, Report, Trust};
use tocsin_core::clock::{ManualClock, truncate_ms};
use tocsin_proto::pb;
use tocsin_store::audit::{
    AuditEntry, AuditReader, EvidenceKind, encode_evidence, entry_hash, sha256,
};
use tocsin_testkit::flow::id_of;
use tocsin_testkit::{TestFederation, draft};

const AGENCIES: [&str; 3] = ["TR-MIT", "FR-DGSI", "EU-EUROPOL"];

/// Waits until `agency`'s node has recorded an event of `kind` about `alert`.
async fn wait_event(
    fed: &TestFederation,
    agency: &str,
    alert: &str,
    kind: pb::EventKind,
) -> anyhow::Result<()> {
    fed.desk(agency).await?.wait_event(alert, kind).await?;
    Ok(())
}

/// A federation whose nodes sent, delivered, acknowledged, reminded and
/// escalated: every kind of signed envelope a store keeps. Returns it
/// running, with the id of the acknowledged alert.
async fn exchange() -> anyhow::Result<(TestFederation, String)> {
    let clock = ManualClock::new(truncate_ms(Utc::now()));
    let fed = TestFederation::builder()
        .agencies(AGENCIES)
        .observers(["EU-EUROPOL"])
        .clock(Arc::new(clock.clone()))
        .start()
        .await?;
    let tr = fed.desk("TR-MIT").await?;
    let fr = fed.desk("FR-DGSI").await?;
    let answered = id_of(&tr.submit(draft(&["FR-DGSI"])).await?);
    let ignored = id_of(&tr.submit(draft(&["FR-DGSI"])).await?);
    tr.wait_delivered(&answered, "FR-DGSI").await?;
    tr.wait_delivered(&ignored, "FR-DGSI").await?;
    fr.ack(&answered, pb::Disposition::Noted, "Seen; no trace here.")
        .await?;
    tr.wait_acks(&answered, "FR-DGSI", 1).await?;
    // PRIORITY: reminded at 12 h, escalated (with a notice to the
    // observer) at 18 h.
    clock.advance(Duration::hours(12) + Duration::minutes(1));
    wait_event(&fed, "FR-DGSI", &ignored, pb::EventKind::Reminded).await?;
    clock.advance(Duration::hours(6));
    wait_event(&fed, "EU-EUROPOL", &ignored, pb::EventKind::Escalated).await?;
    wait_event(&fed, "FR-DGSI", &ignored, pb::EventKind::Escalated).await?;
    Ok((fed, answered))
}

fn trust(fed: &TestFederation) -> anyhow::Result<Trust> {
    Ok(Trust::load(&fed.pki().ca_cert())?)
}

fn verify(dir: &Path, trust: Trust) -> anyhow::Result<Report> {
    Ok(audit::verify_store(dir, trust, |_, _| {})?)
}

fn first(report: &Report) -> &Finding {
    report
        .first()
        .unwrap_or_else(|| panic!("nothing found in {}", report.source))
}

/// The entries of a store, as recorded.
fn entries(dir: &Path) -> anyhow::Result<Vec<AuditEntry>> {
    let mut out = Vec::new();
    AuditReader::open(dir)?.check(|e, _| out.push(e.clone()), |_, _| {})?;
    Ok(out)
}

/// A copy of a stopped node's data directory.
fn copy_of(dir: &Path, into: &Path) -> anyhow::Result<PathBuf> {
    let to = tempfile::tempdir_in(into)?.keep();
    for f in std::fs::read_dir(dir)? {
        let f = f?;
        std::fs::copy(f.path(), to.join(f.file_name()))?;
    }
    Ok(to)
}

/// Opens the SQLite file as someone with write access would, and drops the
/// triggers that keep the log append-only.
fn open_for_tampering(dir: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open(tocsin_store::Store::database_path(dir))?;
    conn.execute_batch(
        "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;
         DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete;",
    )?;
    Ok(conn)
}

#[tokio::test]
async fn what_nodes_record_verifies_in_their_stores_and_offline() -> anyhow::Result<()> {
    let (mut fed, answered) = exchange().await?;
    // A running node's store can be checked: one read snapshot.
    let live = verify(&fed.data_dir("FR-DGSI")?, trust(&fed)?)?;
    assert!(live.ok(), "{:?}", live.findings);
    for agency in AGENCIES {
        fed.stop_node(agency).await?;
    }

    for agency in AGENCIES {
        let report = verify(&fed.data_dir(agency)?, trust(&fed)?)?;
        assert!(report.ok(), "{agency}: {:?}", report.findings);
        // Learnt from what the node signed; an observer signs nothing.
        let learnt = (agency != "EU-EUROPOL").then_some(agency);
        assert_eq!(report.agency.as_deref(), learnt);
        assert!(report.entries > 0);
        assert_eq!(Some(report.entries), report.events);
        assert!(report.signatures > 0);
    }
    // TR-MIT's log commits to each kind of envelope it keeps.
    let tr_dir = fed.data_dir("TR-MIT")?;
    let kinds: std::collections::BTreeSet<EvidenceKind> = entries(&tr_dir)?
        .iter()
        .flat_map(|e| e.evidence.iter().map(|r| r.location.kind))
        .collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        [
            EvidenceKind::Alert,
            EvidenceKind::ReceiptReceived,
            EvidenceKind::Acknowledgement,
            EvidenceKind::Message
        ]
    );

    // Exported, the log checks out with the CA certificate alone.
    let bundle = fed.scratch().join("tr-mit.jsonl");
    let exported = audit::export(
        &tr_dir,
        trust(&fed)?,
        fed.federation().id(),
        &fed.signer("TR-MIT")?,
        &bundle,
        Utc::now(),
        |_, _| {},
    )?;
    assert!(exported.ok(), "{:?}", exported.findings);
    let offline = audit::verify_bundle(&bundle, trust(&fed)?, |_, _| {})?;
    assert!(offline.ok(), "{:?}", offline.findings);
    assert_eq!(offline.entries, exported.entries);
    let head = offline.signed_head.as_ref().unwrap();
    assert_eq!(
        (head.agency.as_str(), head.seq),
        ("TR-MIT", exported.entries)
    );
    assert_eq!(offline.signatures, exported.signatures + 1);

    // A modified bundle fails, at the entry modified.
    let lines: Vec<String> = std::fs::read_to_string(&bundle)?
        .lines()
        .map(str::to_owned)
        .collect();
    let ack_line = lines
        .iter()
        .position(|l| l.contains("\"acknowledgement\"") && l.contains(&answered))
        .expect("the acknowledgement's entry");
    let ack_seq = ack_line as u64; // line 0 is the header
    let modified = fed.scratch().join("modified.jsonl");
    let check = |lines: &[String]| -> anyhow::Result<Report> {
        std::fs::write(&modified, lines.join("\n") + "\n")?;
        Ok(audit::verify_bundle(&modified, trust(&fed)?, |_, _| {})?)
    };
    let mut edited = lines.clone();
    edited[ack_line] = edited[ack_line].replace("acknowledged NOTED", "acknowledged ACTIONED");
    let r = check(&edited)?;
    assert_eq!(
        (first(&r).seq, first(&r).problem),
        (ack_seq, Problem::Changed),
        "{:?}",
        r.findings
    );

    let mut removed = lines.clone();
    removed.remove(2);
    let r = check(&removed)?;
    assert_eq!(
        (first(&r).seq, first(&r).problem),
        (2, Problem::Removed),
        "{:?}",
        r.findings
    );

    let mut swapped = lines.clone();
    swapped.swap(2, 3);
    let r = check(&swapped)?;
    assert_eq!(
        (first(&r).seq, first(&r).problem),
        (2, Problem::Reordered),
        "{:?}",
        r.findings
    );

    let mut headless = lines.clone();
    headless.pop();
    let r = check(&headless)?;
    assert!(
        r.findings
            .iter()
            .any(|f| f.detail.contains("no signed head")),
        "{:?}",
        r.findings
    );

    // The acknowledgement's envelope swapped for another signed one.
    let mut forged = lines.clone();
    let mut entry: serde_json::Value = serde_json::from_str(&forged[ack_line])?;
    let alert_line: serde_json::Value = serde_json::from_str(&lines[1])?;
    entry["evidence"][0]["envelope"] = alert_line["evidence"][0]["envelope"].clone();
    forged[ack_line] = entry.to_string();
    let r = check(&forged)?;
    assert_eq!(
        (first(&r).seq, first(&r).problem),
        (ack_seq, Problem::Changed),
        "{:?}",
        r.findings
    );
    assert!(
        r.findings.iter().any(|f| f.problem == Problem::Invalid),
        "{:?}",
        r.findings
    );

    // Checked against another federation's CA, nothing verifies.
    let other = TestFederation::builder()
        .agencies(["TR-MIT"])
        .start()
        .await?;
    let r = audit::verify_bundle(&bundle, Trust::load(&other.pki().ca_cert())?, |_, _| {})?;
    assert_eq!(first(&r).problem, Problem::Invalid, "{:?}", r.findings);
    assert!(
        first(&r).detail.contains("not issued by the federation CA"),
        "{:?}",
        r.findings
    );
    Ok(())
}

#[tokio::test]
async fn edits_to_a_stopped_nodes_file_are_found_at_their_entry() -> anyhow::Result<()> {
    let (mut fed, answered) = exchange().await?;
    for agency in AGENCIES {
        fed.stop_node(agency).await?;
    }
    let tr_dir = fed.data_dir("TR-MIT")?;
    let recorded = entries(&tr_dir)?;
    let seq_of = |kind: pb::EventKind, alert: &str| {
        recorded
            .iter()
            .find(|e| e.event.kind == kind as i64 && e.event.alert_id == alert)
            .map(|e| (e.seq, e.event.id))
            .expect("the entry")
    };
    let (ack_seq, ack_event) = seq_of(pb::EventKind::Acknowledged, &answered);
    let (delivered_seq, delivered_event) = seq_of(pb::EventKind::Delivered, &answered);
    let last = recorded.len() as u64;
    // What a configuration file gives: CA, federation and agency.
    let (ca, federation) = (fed.pki().ca_cert(), fed.federation().id().clone());
    let tr_trust = || -> anyhow::Result<Trust> {
        Ok(Trust::load(&ca)?
            .federation(federation.clone())
            .agency(tocsin_core::AgencyId::new("TR-MIT")?))
    };
    let case = |sql: String| -> anyhow::Result<Report> {
        let dir = copy_of(&tr_dir, fed.scratch())?;
        open_for_tampering(&dir)?.execute_batch(&sql)?;
        verify(&dir, tr_trust()?)
    };

    let r = case(format!(
        "UPDATE events SET detail = 'FR-DGSI acknowledged ACTIONED' WHERE id = {ack_event}"
    ))?;
    assert_eq!(
        (first(&r).seq, first(&r).problem),
        (ack_seq, Problem::Changed),
        "{:?}",
        r.findings
    );
    assert!(
        first(&r)
            .detail
            .contains("was \"FR-DGSI acknowledged NOTED\""),
        "{:?}",
        r.findings
    );

    let r = case(format!("DELETE FROM events WHERE id = {ack_event}"))?;
    assert_eq!(
        (first(&r).seq, first(&r).problem),
        (ack_seq, Problem::Removed),
        "{:?}",
        r.findings
    );

    let r = case(format!(
        "UPDATE events SET id = -1 WHERE id = {delivered_event};
         UPDATE events SET id = {delivered_event} WHERE id = {ack_event};
         UPDATE events SET id = {ack_event} WHERE id = -1;"
    ))?;
    assert_eq!(
        (first(&r).seq, first(&r).problem),
        (delivered_seq.min(ack_seq), Problem::Reordered),
        "{:?}",
        r.findings
    );

    let r = case(format!(
        "INSERT INTO events (at, kind, alert_id, agency, direction, detail)
         VALUES (0, 5, '{answered}', 'FR-DGSI', 1, 'FR-DGSI acknowledged ACTIONED')"
    ))?;
    assert_eq!(
        (first(&r).seq, first(&r).problem),
        (last + 1, Problem::Inserted),
        "{:?}",
        r.findings
    );

    let r = case(format!("DELETE FROM audit_log WHERE seq = {ack_seq}"))?;
    assert_eq!(
        (first(&r).seq, first(&r).problem),
        (ack_seq, Problem::Removed),
        "{:?}",
        r.findings
    );

    let r = case(format!(
        "DELETE FROM acknowledgements WHERE alert_id = '{answered}'"
    ))?;
    assert_eq!(
        (first(&r).seq, first(&r).problem),
        (ack_seq, Problem::Removed),
        "{:?}",
        r.findings
    );
    assert!(
        first(&r).detail.contains("acknowledgement"),
        "{:?}",
        r.findings
    );

    // An acknowledgement slipped in under a new id, its envelope copied.
    let r = case(format!(
        "INSERT INTO acknowledgements SELECT 'FORGED', alert_id, agency, operator, 1, note, acknowledged_at,
         stored_at, envelope FROM acknowledgements WHERE alert_id = '{answered}'"
    ))?;
    assert_eq!(first(&r).problem, Problem::Inserted, "{:?}", r.findings);
    assert!(
        first(&r).detail.contains("acknowledgement FORGED"),
        "{:?}",
        r.findings
    );

    // The insider who rewrites the acknowledgement and recomputes the
    // whole chain: the chain holds, FR-DGSI's signature does not, and an
    // export made before pins the old chain.
    let earlier = fed.scratch().join("earlier.jsonl");
    let exported = audit::export(
        &tr_dir,
        tr_trust()?,
        fed.federation().id(),
        &fed.signer("TR-MIT")?,
        &earlier,
        Utc::now(),
        |_, _| {},
    )?;
    assert!(exported.ok(), "{:?}", exported.findings);
    let dir = copy_of(&tr_dir, fed.scratch())?;
    let conn = open_for_tampering(&dir)?;
    let (ack_id, bytes): (String, Vec<u8>) = conn.query_row(
        "SELECT id, envelope FROM acknowledgements WHERE alert_id = ?1",
        [&answered],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut env = pb::Envelope::decode(bytes.as_slice())?;
    let mut a = pb::Acknowledgement::decode(env.payload.as_slice())?;
    a.disposition = pb::Disposition::Actioned as i32;
    env.payload = a.encode_to_vec();
    let forged = env.encode_to_vec();
    conn.execute(
        "UPDATE acknowledgements SET envelope = ?2, disposition = ?3 WHERE id = ?1",
        params![ack_id, forged, a.disposition],
    )?;
    let mut prev = tocsin_store::audit::GENESIS;
    for mut e in recorded.clone() {
        for r in &mut e.evidence {
            if r.location.kind == EvidenceKind::Acknowledgement && r.location.key == ack_id {
                r.digest = sha256(&forged);
            }
        }
        e.prev_hash = prev;
        e.hash = entry_hash(e.seq, &prev, &e.event, &encode_evidence(&e.evidence));
        conn.execute(
            "UPDATE audit_log SET evidence = ?2, prev_hash = ?3, hash = ?4 WHERE seq = ?1",
            params![
                e.seq as i64,
                encode_evidence(&e.evidence),
                e.prev_hash.to_vec(),
                e.hash.to_vec()
            ],
        )?;
        prev = e.hash;
    }
    drop(conn);
    let r = verify(&dir, tr_trust()?)?;
    assert_eq!(r.findings.len(), 1, "{:?}", r.findings);
    assert_eq!(
        (first(&r).seq, first(&r).problem),
        (ack_seq, Problem::Invalid),
        "{:?}",
        r.findings
    );
    assert!(
        first(&r).detail.contains("signature does not match"),
        "{:?}",
        r.findings
    );
    let r = audit::verify_store_against(&dir, tr_trust()?, &earlier, |_, _| {})?;
    assert!(
        r.findings.iter().any(|f| f.seq == ack_seq
            && f.problem == Problem::Changed
            && f.detail.contains("rewritten")),
        "{:?}",
        r.findings
    );
    // The untouched store is a faithful continuation of what it exported.
    let r = audit::verify_store_against(&tr_dir, tr_trust()?, &earlier, |_, _| {})?;
    assert!(r.ok(), "{:?}", r.findings);

    // A store from before the audit log existed gets a chain on migration
    // that checks out, signatures and all.
    let conn = open_for_tampering(&tr_dir)?;
    conn.execute_batch("DROP TABLE audit_log; PRAGMA user_version = 7;")?;
    drop(conn);
    assert!(verify(&tr_dir, tr_trust()?).is_err());
    fed.start_node("TR-MIT").await?;
    fed.stop_node("TR-MIT").await?;
    let r = verify(&tr_dir, tr_trust()?)?;
    assert!(r.ok(), "{:?}", r.findings);
    assert_eq!(r.entries, last);
    Ok(())
}
