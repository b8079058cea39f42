use std::path::Path;

use chrono::{Duration, Utc};
use rusqlite::Connection;

use super::check::*;
use super::encoding::*;
use super::reader::*;
use crate::{AttemptOutcome, NewAck, NewAlert, NewMessage, StepTaken, Store, StoreOptions};

fn alert(id: &str, originator: &str) -> NewAlert {
    let now = Utc::now();
    NewAlert {
        id: id.into(),
        originator: originator.into(),
        created_at: now,
        stored_at: now,
        precedence: 3,
        category: "terrorism".into(),
        summary: "X".into(),
        digest: vec![7; 32],
        envelope: format!("envelope of {id}").into_bytes(),
        due_at: now + Duration::hours(12),
        first_step_at: Some(now),
        keys: vec![],
        closes: vec![],
        detail: format!("stored {id}"),
    }
}

fn ack(id: &str, alert_id: &str, agency: &str) -> NewAck {
    NewAck {
        id: id.into(),
        alert_id: alert_id.into(),
        agency: agency.into(),
        operator: "analyst".into(),
        disposition: 1,
        note: String::new(),
        acknowledged_at: Utc::now(),
        stored_at: Utc::now(),
        envelope: format!("envelope of {id}").into_bytes(),
    }
}

/// A store that went through every kind of write that stores an
/// envelope, closed. Events: 1 submitted A1, 2 delivered A1 to FR,
/// 3 FR acknowledged A1, 4 received B1, 5 we acknowledged B1,
/// 6 reminded BE about A1 (outbox message R1), 7 reminder R2 received
/// for B1, 8 notice N1 received.
async fn populated(dir: &Path) {
    let store = Store::open(dir, StoreOptions::default()).unwrap();
    let now = Utc::now();
    store
        .insert_outbound(
            alert("A1", "TR-MIT"),
            vec!["FR-DGSI".into(), "BE-VSSE".into()],
        )
        .await
        .unwrap();
    store
        .record_attempts(
            vec![(
                "A1".into(),
                "FR-DGSI".into(),
                AttemptOutcome::Delivered {
                    delivered_at: now,
                    receipt: b"receipt of A1 by FR".to_vec(),
                },
            )],
            now,
            crate::sqlite::records::tests::WORDS,
        )
        .await
        .unwrap();
    store
        .record_received_ack(ack("K1", "A1", "FR-DGSI"), "FR-DGSI acknowledged".into())
        .await
        .unwrap();
    store
        .insert_inbound(alert("B1", "FR-DGSI"), b"our receipt of B1".to_vec())
        .await
        .unwrap();
    store
        .insert_own_ack(
            ack("K2", "B1", "TR-MIT"),
            "FR-DGSI".into(),
            "we acknowledged".into(),
        )
        .await
        .unwrap();
    let taken = store
        .take_steps(vec![StepTaken {
            alert_id: "A1".into(),
            recipient: "BE-VSSE".into(),
            ladder: crate::LadderStep::Reminded,
            next_step_at: None,
            messages: vec![NewMessage {
                id: "R1".into(),
                peer: "BE-VSSE".into(),
                kind: crate::MessageKind::Reminder,
                envelope: b"reminder R1".to_vec(),
            }],
            event_kind: crate::EventKind::Reminded,
            detail: "reminded BE-VSSE".into(),
            at: now,
        }])
        .await
        .unwrap();
    assert_eq!(taken, 1);
    store
        .record_reminder(crate::ReceivedReminder {
            id: "R2".into(),
            alert_id: "B1".into(),
            originator: "FR-DGSI".into(),
            envelope: b"reminder R2".to_vec(),
            at: now,
            escalated: false,
            detail: "reminder from FR-DGSI".into(),
        })
        .await
        .unwrap();
    store
        .record_notice(crate::ReceivedNotice {
            id: "N1".into(),
            alert_id: "C9".into(),
            laggard: "BE-VSSE".into(),
            envelope: b"notice N1".to_vec(),
            at: now,
            detail: "escalation".into(),
        })
        .await
        .unwrap();
    store.close().await;
}

fn check(dir: &Path) -> (StoreCheck, Vec<AuditEntry>) {
    let mut entries = Vec::new();
    let report = AuditReader::open(dir)
        .unwrap()
        .check(|e, _| entries.push(e.clone()), |_, _| {})
        .unwrap();
    (report, entries)
}

/// Opens the file as someone with write access would, without the
/// append-only triggers.
fn tamper(dir: &Path, sql: &str) {
    let conn = Connection::open(crate::Store::database_path(dir)).unwrap();
    conn.execute_batch(
        "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;
         DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete;",
    )
    .unwrap();
    conn.execute_batch(sql).unwrap();
}

/// The first finding after `sql` is applied to a fresh populated store.
async fn first_after(sql: &str) -> Finding {
    let dir = tempfile::tempdir().unwrap();
    populated(dir.path()).await;
    tamper(dir.path(), sql);
    let (report, _) = check(dir.path());
    report
        .findings
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("`{sql}` went unnoticed"))
}

fn key(l: &Location) -> (EvidenceKind, &str, &str) {
    (l.kind, l.key.as_str(), l.key2.as_str())
}

#[tokio::test]
async fn every_event_gets_a_chained_entry_with_its_envelopes() {
    let dir = tempfile::tempdir().unwrap();
    populated(dir.path()).await;
    let (report, entries) = check(dir.path());
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert_eq!(
        (report.entries, report.events, report.envelopes),
        (8, 8, 10)
    );
    assert_eq!(report.head.map(|h| h.0), Some(8));

    let mut prev = GENESIS;
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1);
        assert_eq!(e.event.id, i as i64 + 1);
        assert_eq!(e.prev_hash, prev);
        assert_eq!(e.computed_hash(), e.hash);
        prev = e.hash;
    }
    let evidence: Vec<Vec<(EvidenceKind, &str, &str)>> = entries
        .iter()
        .map(|e| e.evidence.iter().map(|r| key(&r.location)).collect())
        .collect();
    use EvidenceKind::*;
    assert_eq!(
        evidence,
        vec![
            vec![(Alert, "A1", "")],
            vec![(ReceiptReceived, "A1", "FR-DGSI")],
            vec![(Acknowledgement, "K1", "")],
            vec![(Alert, "B1", ""), (ReceiptIssued, "B1", "")],
            vec![(Acknowledgement, "K2", ""), (Message, "K2", "")],
            vec![(Message, "R1", "")],
            vec![(ReceivedMessage, "R2", "")],
            vec![(ReceivedMessage, "N1", "")],
        ]
    );
    assert_eq!(entries[0].evidence[0].digest, sha256(b"envelope of A1"));

    // The store refuses to rewrite its own record.
    let conn = Connection::open(crate::Store::database_path(dir.path())).unwrap();
    for sql in [
        "UPDATE audit_log SET detail = 'x' WHERE seq = 1",
        "DELETE FROM audit_log WHERE seq = 8",
        "UPDATE events SET detail = 'x' WHERE id = 1",
        "DELETE FROM events WHERE id = 8",
    ] {
        let err = conn.execute_batch(sql).unwrap_err().to_string();
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
}

#[tokio::test]
async fn edits_to_events_are_found_at_their_entry() {
    let f = first_after("UPDATE events SET detail = 'nothing happened' WHERE id = 3").await;
    assert_eq!((f.seq, f.problem), (3, Problem::Changed), "{f:?}");
    assert!(
        f.detail
            .contains(r#"detail: was "FR-DGSI acknowledged", now "nothing happened""#),
        "{f:?}"
    );

    let f = first_after("DELETE FROM events WHERE id = 5").await;
    assert_eq!((f.seq, f.problem), (5, Problem::Removed), "{f:?}");

    // Swap events 2 and 4 (their contents; the ids stay in order).
    let f = first_after(
        "UPDATE events SET id = -2 WHERE id = 2; UPDATE events SET id = 2 WHERE id = 4;
         UPDATE events SET id = 4 WHERE id = -2;",
    )
    .await;
    assert_eq!((f.seq, f.problem), (2, Problem::Reordered), "{f:?}");
    assert!(f.detail.contains("entry 4 recorded"), "{f:?}");

    let f = first_after(
        "INSERT INTO events (at, kind, alert_id, agency, direction, detail)
         VALUES (0, 5, 'A1', 'BE-VSSE', 1, 'BE-VSSE acknowledged')",
    )
    .await;
    assert_eq!((f.seq, f.problem), (9, Problem::Inserted), "{f:?}");
    assert!(f.detail.contains("event 9"), "{f:?}");
}

#[tokio::test]
async fn edits_to_the_log_itself_are_found_at_their_entry() {
    let f = first_after("UPDATE audit_log SET at = at + 1 WHERE seq = 4").await;
    assert_eq!((f.seq, f.problem), (4, Problem::Changed), "{f:?}");

    let f = first_after("DELETE FROM audit_log WHERE seq = 6").await;
    assert_eq!((f.seq, f.problem), (6, Problem::Removed), "{f:?}");

    // Entries 2 and 3 trade places.
    let f = first_after(
        "UPDATE audit_log SET seq = -2 WHERE seq = 2; UPDATE audit_log SET seq = 2 WHERE seq = 3;
         UPDATE audit_log SET seq = 3 WHERE seq = -2;",
    )
    .await;
    assert_eq!((f.seq, f.problem), (2, Problem::Reordered), "{f:?}");

    // Entry 7 removed and the later entries renumbered to close the gap.
    let f = first_after(
        "DELETE FROM audit_log WHERE seq = 7; UPDATE audit_log SET seq = 7 WHERE seq = 8;",
    )
    .await;
    assert_eq!((f.seq, f.problem), (7, Problem::Removed), "{f:?}");

    // A forged entry at the end that does not hash.
    let f = first_after(
        "INSERT INTO audit_log SELECT 9, event_id, at, kind, alert_id, agency, direction, detail,
         evidence, hash, prev_hash FROM audit_log WHERE seq = 8",
    )
    .await;
    assert_eq!(f.seq, 9, "{f:?}");
}

#[tokio::test]
async fn a_forged_entry_inserted_with_its_event_and_a_renumbered_tail_is_found() {
    let dir = tempfile::tempdir().unwrap();
    populated(dir.path()).await;
    let (_, entries) = check(dir.path());
    // A careful forger: a new event, an entry that hashes and links after
    // entry 3, and entries 4..8 moved up by one (their hashes kept).
    let forged_event = AuditEvent {
        id: 100,
        at: entries[2].event.at,
        kind: crate::EventKind::Acknowledged.code(),
        alert_id: "A1".into(),
        agency: "BE-VSSE".into(),
        direction: 1,
        detail: "BE-VSSE acknowledged".into(),
    };
    let hash = entry_hash(4, &entries[2].hash, &forged_event, &encode_evidence(&[]));
    tamper(
        dir.path(),
        &format!(
            "UPDATE audit_log SET seq = -seq WHERE seq >= 4;
             UPDATE audit_log SET seq = 1 - seq WHERE seq < 0;
             INSERT INTO events (id, at, kind, alert_id, agency, direction, detail)
             VALUES (100, {at}, 5, 'A1', 'BE-VSSE', 1, 'BE-VSSE acknowledged');
             INSERT INTO audit_log VALUES (4, 100, {at}, 5, 'A1', 'BE-VSSE', 1, 'BE-VSSE acknowledged',
                X'{evidence}', X'{prev}', X'{hash}');",
            at = forged_event.at,
            evidence = hex(&encode_evidence(&[])),
            prev = hex(&entries[2].hash),
            hash = hex(&hash),
        ),
    );
    let (report, _) = check(dir.path());
    let f = &report.findings[0];
    assert_eq!((f.seq, f.problem), (4, Problem::Inserted), "{report:?}");
    // The renumbered tail is one finding, not five.
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
}

#[tokio::test]
async fn envelopes_are_held_to_what_their_entry_recorded() {
    let f = first_after("UPDATE acknowledgements SET envelope = X'00' WHERE id = 'K1'").await;
    assert_eq!((f.seq, f.problem), (3, Problem::Changed), "{f:?}");
    assert!(f.detail.contains("acknowledgement K1"), "{f:?}");

    let f = first_after("UPDATE deliveries SET receipt = NULL WHERE alert_id = 'A1'").await;
    assert_eq!((f.seq, f.problem), (2, Problem::Removed), "{f:?}");
    assert!(
        f.detail.contains("receipt-received A1 from FR-DGSI"),
        "{f:?}"
    );

    // Two alerts trade envelopes: both still digest to something
    // recorded, but not at their own place.
    let f = first_after(
        "UPDATE alerts SET envelope = CASE id WHEN 'A1' THEN (SELECT envelope FROM alerts WHERE id = 'B1')
                                              ELSE (SELECT envelope FROM alerts WHERE id = 'A1') END",
    )
    .await;
    assert_eq!((f.seq, f.problem), (1, Problem::Changed), "{f:?}");

    let f = first_after(
        "INSERT INTO received_messages (id, kind, alert_id, agency, received_at, envelope)
         VALUES ('R3', 2, 'B1', 'FR-DGSI', 0, X'01')",
    )
    .await;
    assert_eq!((f.seq, f.problem), (u64::MAX, Problem::Inserted), "{f:?}");
    assert!(f.detail.contains("received-message R3"), "{f:?}");
}

#[tokio::test]
async fn a_store_from_before_the_audit_log_gets_the_same_chain_on_migration() {
    let dir = tempfile::tempdir().unwrap();
    populated(dir.path()).await;
    let (_, live) = check(dir.path());
    // Back to schema 7: no audit log, no triggers.
    tamper(dir.path(), "DROP TABLE audit_log; PRAGMA user_version = 7;");
    assert!(AuditReader::open(dir.path()).is_err());

    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store.close().await;
    let (report, backfilled) = check(dir.path());
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert_eq!(backfilled.len(), live.len());
    // Every event is recorded as it was when written, with its
    // envelopes, except the outbox reminder, whose alert the store
    // cannot tell: the last entry commits to it.
    for (b, l) in backfilled.iter().zip(&live) {
        assert_eq!(b.event, l.event);
        match b.seq {
            6 => assert!(b.evidence.is_empty(), "{b:?}"),
            8 => {
                assert_eq!(b.evidence[0], l.evidence[0]);
                assert_eq!(
                    key(&b.evidence[1].location),
                    (EvidenceKind::Message, "R1", "")
                );
            }
            _ => assert_eq!(b.evidence, l.evidence, "entry {}", b.seq),
        }
    }
    assert_eq!(backfilled[..5], live[..5]);

    // New events chain on after the backfilled ones.
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store
        .insert_outbound(alert("A2", "TR-MIT"), vec!["FR-DGSI".into()])
        .await
        .unwrap();
    store.close().await;
    let (report, after) = check(dir.path());
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert_eq!(after[8].prev_hash, backfilled[7].hash);
}

#[test]
fn the_encoding_is_length_prefixed_and_round_trips() {
    let refs = vec![EvidenceRef {
        location: Location {
            kind: EvidenceKind::ReceiptReceived,
            key: "A1".into(),
            key2: "FR".into(),
        },
        digest: [9; 32],
    }];
    let bytes = encode_evidence(&refs);
    assert_eq!(decode_evidence(&bytes).unwrap(), refs);
    assert!(decode_evidence(&bytes[..bytes.len() - 1]).is_err());
    assert!(decode_evidence(&[bytes.as_slice(), &[0]].concat()).is_err());
    // Moving a byte between fields changes the hash.
    let e = |alert_id: &str, agency: &str| AuditEvent {
        id: 1,
        at: 0,
        kind: 1,
        alert_id: alert_id.into(),
        agency: agency.into(),
        direction: 1,
        detail: String::new(),
    };
    assert_ne!(
        entry_hash(1, &GENESIS, &e("ab", "c"), &[]),
        entry_hash(1, &GENESIS, &e("a", "bc"), &[])
    );
    let head = AuditHead {
        federation: "f".into(),
        agency: "TR-MIT".into(),
        seq: 3,
        hash: [1; 32],
        at: 5,
    };
    assert_eq!(AuditHead::decode(&head.encode()).unwrap(), head);
}
