//! Several front nodes of one agency on one database (issue 18 part 2),
//! tested with two `Postgres` handles on one server: each has a pool and
//! a holder id of its own, as two front node processes would.

use std::collections::BTreeSet;
use std::time::Duration;

use super::db::{CLAIM_LEASE, Postgres};
use super::records::tests::{WORDS, at, new_alert};
use super::testing::Both;
use crate::Error;
use crate::backend::Backend;
use crate::codes::{DeliveryState, MessageKind};
use crate::events::EventStore;
use crate::ladder::LadderStore;
use crate::leases::{HeldLease, LeaseStore, TRACKER_LEASE};
use crate::messages::MessageStore;
use crate::millis::ms;
use crate::records::{AttemptOutcome, RecordStore};
use crate::subjects::{RepeatedCheck, SubjectStore};

/// The ids of due deliveries to FR-DGSI that `node` claims at `now`.
async fn claim(node: &Postgres, now: chrono::DateTime<chrono::Utc>, limit: u32) -> Vec<String> {
    node.due_deliveries("FR-DGSI", now, limit)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.alert_id)
        .collect()
}

/// The ids of due messages to FR-DGSI that `node` claims at `now`.
async fn claim_messages(
    node: &Postgres,
    now: chrono::DateTime<chrono::Utc>,
    limit: u32,
) -> Vec<String> {
    node.due_messages("FR-DGSI", now, limit)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect()
}

fn retry(id: &str, next: chrono::DateTime<chrono::Utc>) -> (String, String, AttemptOutcome) {
    (
        id.to_owned(),
        "FR-DGSI".to_owned(),
        AttemptOutcome::Retry {
            error: "unreachable".into(),
            next_attempt_at: next,
        },
    )
}

/// Two front nodes asking for due deliveries at once never both get one;
/// a claim lapses after its lease and the other node takes the row; a
/// failed attempt, once recorded, releases the claim so that the retry is
/// due to any node; a delivered one is due to none.
#[tokio::test]
async fn front_nodes_never_claim_the_same_delivery() {
    let Some(both) = Both::start().await else {
        return;
    };
    let a = &both.postgres;
    let b = both.another_front_node().await;
    assert_ne!(a.holder(), b.holder());
    let ids: Vec<String> = (1..=5).map(|i| format!("A{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let digest = u8::try_from(i).unwrap();
        a.insert_outbound(new_alert(id, "TR-MIT", digest), vec!["FR-DGSI".into()])
            .await
            .unwrap();
    }

    // At once: disjoint, and together everything due.
    let (x, y) = tokio::join!(claim(a, at(1), 3), claim(&b, at(1), 3));
    let x_set: BTreeSet<_> = x.iter().cloned().collect();
    let y_set: BTreeSet<_> = y.iter().cloned().collect();
    assert!(x_set.is_disjoint(&y_set), "{x:?} and {y:?}");
    assert_eq!(x.len() + y.len(), 5, "{x:?} and {y:?}");
    // A node's own claims do not hide rows from it; the other's do.
    assert_eq!(claim(a, at(2), 10).await, x);
    assert_eq!(claim(&b, at(2), 10).await, y);

    // A's claims (renewed at 2 s) lapse (A died): B takes everything, A
    // then nothing.
    let lapsed = at(2) + CLAIM_LEASE;
    assert_eq!(claim(&b, lapsed, 10).await, ids);
    assert!(claim(a, lapsed, 10).await.is_empty());

    // B fails to send A1 (a retry at once) and delivers A2: A1 is due to
    // A now, though B's claim has not lapsed; A2 to no one.
    b.record_attempts(
        vec![
            retry("A1", lapsed),
            (
                "A2".into(),
                "FR-DGSI".into(),
                AttemptOutcome::Delivered {
                    delivered_at: lapsed,
                    receipt: b"r".to_vec(),
                },
            ),
        ],
        lapsed,
        WORDS,
    )
    .await
    .unwrap();
    assert_eq!(claim(a, lapsed, 10).await, ["A1"]);
    assert_eq!(claim(&b, lapsed, 10).await, ["A3", "A4", "A5"]);

    // A claim that lapsed and another node took stays the taker's when the
    // first node records late: B's late record of A1 leaves A's claim.
    b.record_attempts(vec![retry("A1", lapsed)], lapsed, WORDS)
        .await
        .unwrap();
    assert!(!claim(&b, lapsed, 10).await.contains(&"A1".to_owned()));
}

/// Messages (acknowledgements, reminders, notices) are claimed the same
/// way.
#[tokio::test]
async fn front_nodes_never_claim_the_same_message() {
    let Some(both) = Both::start().await else {
        return;
    };
    let a = &both.postgres;
    let b = both.another_front_node().await;
    let queued = ms(at(0));
    a.write(move |tx| {
        Box::pin(async move {
            for id in ["M1", "M2", "M3"] {
                tx.client()
                    .execute(
                        "INSERT INTO messages (id, peer, kind, envelope, state, next_attempt_at)
                         VALUES ($1, 'FR-DGSI', $2, '\\x00', $3, $4)",
                        &[
                            &id,
                            &MessageKind::Ack.code(),
                            &DeliveryState::Pending.code(),
                            &queued,
                        ],
                    )
                    .await?;
            }
            Ok(())
        })
    })
    .await
    .unwrap();

    let (x, y) = tokio::join!(claim_messages(a, at(1), 2), claim_messages(&b, at(1), 2));
    let x_set: BTreeSet<_> = x.iter().cloned().collect();
    assert!(y.iter().all(|id| !x_set.contains(id)), "{x:?} and {y:?}");
    assert_eq!(x.len() + y.len(), 3, "{x:?} and {y:?}");

    // A fails on all it holds: they are due to B at once.
    let failed: Vec<_> = x
        .iter()
        .map(|id| {
            (
                id.clone(),
                AttemptOutcome::Retry {
                    error: "unreachable".into(),
                    next_attempt_at: at(0),
                },
            )
        })
        .collect();
    a.record_message_attempts(failed, at(1), WORDS)
        .await
        .unwrap();
    assert_eq!(claim_messages(&b, at(1), 10).await, ["M1", "M2", "M3"]);
    // B's claims lapse: A takes them all.
    assert!(claim_messages(a, at(2), 10).await.is_empty());
    assert_eq!(
        claim_messages(a, at(1) + CLAIM_LEASE, 10).await,
        ["M1", "M2", "M3"]
    );
}

/// Waits for `woken`, failing (not hanging) if it never comes.
async fn expect_wake(woken: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>, why: &str) {
    tokio::time::timeout(Duration::from_secs(30), woken)
        .await
        .unwrap_or_else(|_| panic!("no wake-up: {why}"));
}

/// A watcher on one front node wakes for a commit made on another; when
/// the listening connection is cut, it is made again and the watcher is
/// woken once (a commit in between would have gone unheard), and it
/// hears later commits again.
#[tokio::test]
async fn a_commit_on_one_front_node_wakes_watchers_on_another() {
    let Some(both) = Both::start().await else {
        return;
    };
    let a = &both.postgres;
    let b = both.another_front_node().await;
    b.listening(1).await;
    let signal = b.event_signal();

    let woken = signal.notified();
    tokio::pin!(woken);
    woken.as_mut().enable();
    a.insert_outbound(new_alert("A1", "TR-MIT", 1), vec!["FR-DGSI".into()])
        .await
        .unwrap();
    expect_wake(woken, "a commit on the other front node").await;

    // The server drops B's listening connection.
    let woken = signal.notified();
    tokio::pin!(woken);
    woken.as_mut().enable();
    let name = format!("tocsin-listen-{}", b.holder());
    let cut = a
        .read(move |client| {
            Box::pin(async move {
                Ok(client
                    .query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                        &[&name],
                    )
                    .await?
                    .len())
            })
        })
        .await
        .unwrap();
    assert_eq!(cut, 1);
    expect_wake(woken, "listening again").await;
    b.listening(2).await;

    let woken = signal.notified();
    tokio::pin!(woken);
    woken.as_mut().enable();
    a.insert_outbound(new_alert("A2", "TR-MIT", 2), vec!["FR-DGSI".into()])
        .await
        .unwrap();
    expect_wake(woken, "a commit after listening again").await;
}

/// The tracker's lease: one front node holds it, renews it at the same
/// epoch, and the other takes it over, at the next epoch, only once it
/// lapses. A write fenced by the old epoch commits nothing (the holder
/// that lost the lease without knowing it); once told, that node is
/// refused without asking the database. SQLite always holds it.
#[tokio::test]
async fn one_front_node_holds_the_tracker_lease_and_a_stale_one_is_fenced() {
    let Some(both) = Both::start().await else {
        return;
    };
    let ttl = chrono::TimeDelta::seconds(10);
    assert_eq!(
        both.sqlite
            .hold_lease(TRACKER_LEASE, at(0), ttl)
            .await
            .unwrap(),
        Some(HeldLease {
            epoch: 1,
            expires_at: None
        })
    );
    let a = &both.postgres;
    let b = both.another_front_node().await;
    // A1's deadline is at 3600 s.
    a.insert_outbound(new_alert("A1", "TR-MIT", 1), vec!["FR-DGSI".into()])
        .await
        .unwrap();
    let t = |s: i64| at(3600 + s);
    let held = |epoch, until| {
        Some(HeldLease {
            epoch,
            expires_at: Some(until),
        })
    };

    assert_eq!(
        a.hold_lease(TRACKER_LEASE, t(0), ttl).await.unwrap(),
        held(1, t(10))
    );
    assert_eq!(b.hold_lease(TRACKER_LEASE, t(1), ttl).await.unwrap(), None);
    assert_eq!(
        a.hold_lease(TRACKER_LEASE, t(5), ttl).await.unwrap(),
        held(1, t(15))
    );
    assert_eq!(b.hold_lease(TRACKER_LEASE, t(14), ttl).await.unwrap(), None);
    // A stops renewing (stalled, or cut off): B takes over at expiry.
    assert_eq!(
        b.hold_lease(TRACKER_LEASE, t(15), ttl).await.unwrap(),
        held(2, t(25))
    );

    // A still believes it holds epoch 1: its writes are refused in their
    // transaction, and flag nothing.
    fn lost<T>(r: Result<T, Error>) -> bool {
        matches!(
            r,
            Err(Error::LeaseLost {
                name: TRACKER_LEASE
            })
        )
    }
    assert!(lost(a.flag_overdue(t(16), |_| "flagged".into()).await));
    assert!(lost(a.take_steps(Vec::new()).await));
    let check = || RepeatedCheck {
        checks: vec![("A1".into(), "FR-DGSI".into())],
        own_agency: "TR-MIT".into(),
        now: t(16),
        threshold: 2,
        detail: |_, _| "repeated".into(),
    };
    assert!(lost(a.check_repeated(check()).await));
    // B, the holder, flags A1's deadline, once.
    let flagged = b.flag_overdue(t(16), |_| "flagged".into()).await.unwrap();
    assert_eq!(flagged.len(), 1);
    assert_eq!(flagged[0].alert_id, "A1");
    assert_eq!(b.take_steps(Vec::new()).await.unwrap(), 0);
    b.check_repeated(check()).await.unwrap();

    // Told, A is refused without asking; it takes the lease back only
    // once B's lapses, at epoch 3.
    assert_eq!(a.hold_lease(TRACKER_LEASE, t(20), ttl).await.unwrap(), None);
    assert!(lost(a.flag_overdue(t(20), |_| "flagged".into()).await));
    assert_eq!(
        a.hold_lease(TRACKER_LEASE, t(25), ttl).await.unwrap(),
        held(3, t(35))
    );
    assert!(
        a.flag_overdue(t(25), |_| "flagged".into())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(lost(b.flag_overdue(t(26), |_| "flagged".into()).await));
}

/// A handle for front node `name` on `both`'s database (see
/// `PoolOptions::front_node`), with a pool of `size` connections.
async fn front_node_named(both: &Both, name: &str, size: usize) -> Postgres {
    let options = super::pool::PoolOptions {
        max_size: size,
        front_node: Some(name.to_owned()),
        ..Default::default()
    };
    Postgres::connect(&both.server_url(), options)
        .await
        .expect("connect to the test server")
}

/// A front node killed while sending leaves its claims; started again
/// under its name, it releases them at once, so that what it was sending
/// is due again (here or on another front node) without waiting a minute.
/// Another front node's start releases nothing of another's, and while a
/// claim is live the other node is not woken for the row before it lapses.
#[tokio::test]
async fn a_restarted_front_node_releases_the_claims_its_last_run_left() {
    let Some(both) = Both::start().await else {
        return;
    };
    let first_run = front_node_named(&both, "host-a/127.0.0.1:7443", 2).await;
    let other = front_node_named(&both, "host-b/127.0.0.1:7443", 2).await;
    first_run
        .insert_outbound(new_alert("A1", "TR-MIT", 1), vec!["FR-DGSI".into()])
        .await
        .unwrap();
    assert_eq!(claim(&first_run, at(1), 10).await, ["A1"]);
    // "Killed": it never records the attempt. The other node waits for
    // the claim to lapse, and is not woken for A1 before.
    drop(first_run);
    assert!(claim(&other, at(2), 10).await.is_empty());
    assert_eq!(
        other.next_due("FR-DGSI").await.unwrap(),
        Some(at(1) + CLAIM_LEASE)
    );
    // Another node of another name starting releases nothing.
    let _third = front_node_named(&both, "host-c/127.0.0.1:7443", 2).await;
    assert!(claim(&other, at(2), 10).await.is_empty());
    // The killed node starts again: its claim goes, and A1 is due to
    // whichever front node asks first.
    let second_run = front_node_named(&both, "host-a/127.0.0.1:7443", 2).await;
    assert_eq!(
        other.next_due("FR-DGSI").await.unwrap(),
        Some(chrono::DateTime::UNIX_EPOCH)
    );
    assert_eq!(claim(&other, at(2), 10).await, ["A1"]);
    assert!(claim(&second_run, at(2), 10).await.is_empty());
}

/// A snapshot read whose caller goes away midway (a peer hung up) must not
/// hand its connection back to the pool inside the read-only transaction:
/// with one connection in the pool, the next write and read still work.
#[tokio::test]
async fn a_cancelled_snapshot_read_leaves_no_transaction_behind() {
    let Some(both) = Both::start().await else {
        return;
    };
    let node = front_node_named(&both, "host-a/127.0.0.1:7443", 1).await;
    let (started, reading) = tokio::sync::oneshot::channel::<()>();
    let read = node.read_snapshot(move |client| {
        Box::pin(async move {
            client.query("SELECT 1", &[]).await?;
            let _ = started.send(());
            std::future::pending::<Result<(), Error>>().await
        })
    });
    tokio::select! {
        _ = read => panic!("the read never ends"),
        _ = reading => {}
    }
    // The read is dropped here, mid-transaction.
    node.insert_outbound(new_alert("A1", "TR-MIT", 1), vec!["FR-DGSI".into()])
        .await
        .expect("a write after a cancelled read");
    assert!(node.alert("A1").await.unwrap().is_some());
}
