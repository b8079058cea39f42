//! Partitions and slow links: with a fault-injecting proxy between two
//! nodes, alerts sent while the link is down arrive once it heals, exactly
//! once; a link cut between request and answer leaves no duplicate;
//! deadlines keep running while the link is down; a slow link still
//! delivers; what a node committed for a caller that gave up is still
//! acted on. Mutual TLS runs end to end through the proxy, which carries
//! bytes only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;
use tocsin_core::AgencyId;
use tocsin_core::clock::{ManualClock, truncate_ms};
use tocsin_core::federation::Escalation;
use tocsin_node::config::Limits;
use tocsin_proto::pb;
use tocsin_proto::pb::operator_client::OperatorClient;
use tocsin_proto::{ALERT_PAYLOAD_TYPE, RECEIPT_PAYLOAD_TYPE};
use tocsin_testkit::PATIENCE;
use tocsin_testkit::flow::{delivery, id_of, kinds};
use tocsin_testkit::{Desk, Fault, FaultProxy, Flow, TestFederation, channel, draft, wait_until};
use tocsin_trust::Verifier;
use tocsin_trust::signing::digest;

/// A request that hangs in a black hole fails after this long, rather
/// than the default 30 s.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);

/// TR-MIT and FR-DGSI, TR-MIT's traffic to FR-DGSI through a proxy.
fn builder() -> tocsin_testkit::Builder {
    TestFederation::builder()
        .through_proxy("TR-MIT", "FR-DGSI")
        .limits(Limits {
            request_timeout: REQUEST_TIMEOUT,
            ..Limits::default()
        })
}

/// Waits until every delivery of `ids` to FR-DGSI has failed at least once
/// and checks that each is still pending, with the reason recorded.
async fn wait_failed(tr: &Desk, ids: &[String]) -> anyhow::Result<()> {
    for id in ids {
        let record = tr
            .wait_delivery(id, "FR-DGSI", "fail at least once", |d| d.attempts >= 1)
            .await?;
        let d = delivery(&record, "FR-DGSI").unwrap();
        assert_eq!(d.state, pb::DeliveryState::Pending as i32, "{id}");
        assert!(!d.last_error.is_empty(), "{id}");
    }
    Ok(())
}

/// The ids FR-DGSI holds as received, sorted.
async fn inbox(fr: &Desk) -> anyhow::Result<Vec<String>> {
    let mut ids: Vec<String> = fr.inbox().await?.iter().map(id_of).collect();
    ids.sort();
    Ok(ids)
}

/// Checks that `id` is delivered to FR-DGSI with a receipt that FR-DGSI
/// signed for exactly the envelope sent, and that it is the receipt
/// FR-DGSI holds; and that FR-DGSI received it once.
async fn delivered_once(
    fed: &TestFederation,
    tr: &Desk,
    fr: &Desk,
    id: &str,
) -> anyhow::Result<pb::Delivery> {
    let record = tr.wait_delivered(id, "FR-DGSI").await?;
    let d = delivery(&record, "FR-DGSI").unwrap().clone();
    let receipt_env = d.receipt.clone().expect("a delivered alert has a receipt");
    let verifier = Verifier::load(&fed.pki().ca_cert(), fed.federation().id())?;
    let alert_env = record.envelope.clone().unwrap();
    verifier.verify(&alert_env, ALERT_PAYLOAD_TYPE)?;
    assert_eq!(
        verifier
            .verify(&receipt_env, RECEIPT_PAYLOAD_TYPE)?
            .signer
            .as_str(),
        "FR-DGSI"
    );
    let receipt = pb::Receipt::decode(receipt_env.payload.as_slice())?;
    assert_eq!(receipt.alert_id, id);
    assert_eq!(receipt.alert_digest, digest(&alert_env).to_vec());
    let held = fr.alert(id).await?;
    assert_eq!(held.envelope, record.envelope);
    assert_eq!(
        held.receipt, d.receipt,
        "the receipt FR-DGSI issued and keeps"
    );
    // A control: FR-DGSI records a new event after this point (its
    // operator's own alert), so every reception of `id` is before it.
    let control = fr.send(draft(&["TR-MIT"])).await?;
    let events = fr
        .events_through("the control's submission", |e| e.alert_id == control)
        .await?;
    let received = kinds(&events, id)
        .into_iter()
        .filter(|k| *k == pb::EventKind::Received)
        .count();
    assert_eq!(received, 1, "FR-DGSI received {id} once");
    Ok(d)
}

/// The link fails with `fault` while three alerts are sent after a first
/// one got through; none arrives; once the link heals, all arrive, each
/// exactly once, with a receipt on the sender.
async fn partition_then_heal(fault: Fault) -> anyhow::Result<()> {
    let fed = builder().start().await?;
    let proxy = fed.proxy("TR-MIT", "FR-DGSI")?;
    let tr = fed.desk("TR-MIT").await?;
    let fr = fed.desk("FR-DGSI").await?;
    // The link works, and leaves an open connection through the proxy.
    let first = id_of(&tr.submit(draft(&["FR-DGSI"])).await?);
    tr.wait_delivered(&first, "FR-DGSI").await?;
    assert!(proxy.stats().to_target > 0, "delivered through the proxy");

    proxy.set(fault);
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(id_of(&tr.submit(draft(&["FR-DGSI"])).await?));
    }
    wait_failed(&tr, &ids).await?;
    assert_eq!(inbox(&fr).await?, vec![first.clone()]);

    proxy.heal();
    for id in &ids {
        delivered_once(&fed, &tr, &fr, id).await?;
    }
    ids.push(first);
    ids.sort();
    assert_eq!(inbox(&fr).await?, ids, "each alert exactly once");
    Ok(())
}

#[tokio::test]
async fn alerts_sent_into_a_black_hole_arrive_once_it_heals() -> anyhow::Result<()> {
    // The open connection stalls; every attempt hangs until the request
    // timeout. What was held back flows on when the link heals, so FR-DGSI
    // may see the same alert again: it must not store it twice.
    partition_then_heal(Fault::BlackHole).await
}

#[tokio::test]
async fn alerts_sent_while_the_link_is_down_arrive_once_it_is_back() -> anyhow::Result<()> {
    // The open connection is reset and new ones fail at once.
    partition_then_heal(Fault::Drop).await
}

#[tokio::test]
async fn a_link_cut_before_the_receipt_returns_leaves_no_duplicate() -> anyhow::Result<()> {
    let fed = builder().start().await?;
    let proxy = fed.proxy("TR-MIT", "FR-DGSI")?;
    let tr = fed.desk("TR-MIT").await?;
    let fr = fed.desk("FR-DGSI").await?;
    let first = id_of(&tr.submit(draft(&["FR-DGSI"])).await?);
    tr.wait_delivered(&first, "FR-DGSI").await?;

    // The connection is open and quiet: the next bytes FR-DGSI sends on it
    // are its answer to the next delivery, and they never get through.
    proxy.set(Fault::ResetAfter {
        flow: Flow::FromTarget,
        bytes: 0,
    });
    let id = id_of(&tr.submit(draft(&["FR-DGSI"])).await?);
    // FR-DGSI has committed the alert and issued a receipt; TR-MIT never
    // saw it and records a failure.
    wait_until(PATIENCE, "FR-DGSI holds the alert", || async {
        inbox(&fr).await.ok()?.contains(&id).then_some(())
    })
    .await?;
    wait_failed(&tr, std::slice::from_ref(&id)).await?;
    assert!(proxy.stats().resets >= 1);

    // TR-MIT retries over a new connection; FR-DGSI answers with the
    // receipt it issued the first time.
    proxy.heal();
    let d = delivered_once(&fed, &tr, &fr, &id).await?;
    assert!(d.attempts >= 2, "delivered on a retry: {d:?}");
    let mut both = vec![first, id];
    both.sort();
    assert_eq!(inbox(&fr).await?, both);
    Ok(())
}

#[tokio::test]
async fn deadlines_keep_running_during_a_partition() -> anyhow::Result<()> {
    let clock = ManualClock::new(truncate_ms(chrono::Utc::now()));
    let fed = builder()
        // The ladder starts long after the deadline: this is about flags.
        .escalation(Escalation {
            remind: 1000.0,
            escalate: 1000.0,
            lapse: 1000.0,
        })
        .clock(Arc::new(clock.clone()))
        .start()
        .await?;
    let proxy = fed.proxy("TR-MIT", "FR-DGSI")?;
    let tr = fed.desk("TR-MIT").await?;
    let fr = fed.desk("FR-DGSI").await?;
    // A PRIORITY alert gets through first: FR-DGSI's next deadline is
    // twelve hours away, and the connection through the proxy is open.
    let routine = id_of(&tr.submit(draft(&["FR-DGSI"])).await?);
    tr.wait_delivered(&routine, "FR-DGSI").await?;

    proxy.set(Fault::BlackHole);
    let mut flash = draft(&["FR-DGSI"]);
    flash.precedence = pb::Precedence::Flash as i32;
    let id = id_of(&tr.submit(flash).await?);
    // The first attempt is stuck in the hole, given up by TR-MIT.
    wait_failed(&tr, std::slice::from_ref(&id)).await?;

    // FLASH's ten minutes pass with the outbox stuck: the tracker does not
    // wait for it.
    clock.advance(chrono::Duration::minutes(11));
    tr.wait_flag(&id, "FR-DGSI", pb::DeadlineFlag::Undelivered)
        .await?;
    assert_eq!(inbox(&fr).await?, vec![routine.clone()]);

    // The link heals: the alert arrives, late (perhaps first as the
    // request TR-MIT gave up on, held in the hole until now); both ends
    // flag it overdue at once, as its deadline is gone.
    proxy.heal();
    delivered_once(&fed, &tr, &fr, &id).await?;
    tr.wait_flag(&id, "FR-DGSI", pb::DeadlineFlag::Overdue)
        .await?;
    fr.wait_inbound_flag(&id, pb::DeadlineFlag::Overdue).await?;
    use pb::EventKind::*;
    tr.wait_events(&id, &[Submitted, Undelivered, Delivered])
        .await?;
    fr.wait_events(&id, &[Received, Overdue]).await?;
    // The PRIORITY alert is still within its time on both ends.
    assert_eq!(
        delivery(&tr.alert(&routine).await?, "FR-DGSI")
            .unwrap()
            .flag,
        pb::DeadlineFlag::None as i32
    );
    Ok(())
}

#[tokio::test]
async fn a_slow_link_still_delivers_both_ways() -> anyhow::Result<()> {
    // Both directions slow: the alert goes through one proxy, the
    // acknowledgement comes back through the other. The request timeout
    // stays at its default, as a slow link is not a dead one.
    let fed = TestFederation::builder()
        .through_proxy("TR-MIT", "FR-DGSI")
        .through_proxy("FR-DGSI", "TR-MIT")
        .start()
        .await?;
    let lag = Duration::from_millis(100);
    for (from, to) in [("TR-MIT", "FR-DGSI"), ("FR-DGSI", "TR-MIT")] {
        fed.proxy(from, to)?.set(Fault::Delay(lag));
    }
    let tr = fed.desk("TR-MIT").await?;
    let fr = fed.desk("FR-DGSI").await?;

    let id = id_of(&tr.submit(draft(&["FR-DGSI"])).await?);
    let sent = Instant::now();
    delivered_once(&fed, &tr, &fr, &id).await?;
    // The request and the receipt each waited at least once.
    assert!(sent.elapsed() >= 2 * lag, "{:?}", sent.elapsed());

    fr.ack(&id, pb::Disposition::Noted, "Seen.").await?;
    tr.wait_acks(&id, "FR-DGSI", 1).await?;
    for (from, to) in [("TR-MIT", "FR-DGSI"), ("FR-DGSI", "TR-MIT")] {
        let stats = fed.proxy(from, to)?.stats();
        assert!(stats.to_target > 0 && stats.from_target > 0, "{from}->{to}");
        assert_eq!(stats.resets, 0, "{from}->{to}");
    }
    Ok(())
}

#[tokio::test]
async fn an_alert_is_sent_even_if_its_submitter_gave_up_after_the_commit() -> anyhow::Result<()> {
    let fed = TestFederation::builder().start().await?;
    // The analyst reaches TR-MIT's node over a link of its own.
    let link = FaultProxy::start(fed.addr("TR-MIT")?).await?;
    let material = fed.operator_material("TR-MIT", "analyst")?;
    let remote = Desk::new(
        "TR-MIT",
        OperatorClient::new(channel(link.addr(), &material, &AgencyId::new("TR-MIT")?)?),
    );
    assert!(remote.list(pb::Direction::Outbound).await?.is_empty());

    // The submission hangs in the link; the analyst gives up. When the
    // link heals, the request and its cancellation reach the node together.
    link.set(Fault::BlackHole);
    let gave_up = tokio::time::timeout(
        Duration::from_millis(300),
        remote.submit(draft(&["FR-DGSI"])),
    )
    .await;
    assert!(gave_up.is_err(), "{gave_up:?}");
    link.heal();

    // Whatever the node committed, it sends: the alert does not wait in
    // the outbox for some later wake-up.
    let tr = fed.desk("TR-MIT").await?;
    let id = wait_until(PATIENCE, "the alert is committed", || {
        let tr = tr.clone();
        async move {
            let sent = tr.list(pb::Direction::Outbound).await.ok()?;
            sent.first().map(id_of)
        }
    })
    .await?;
    tr.wait_delivered(&id, "FR-DGSI").await?;
    Ok(())
}
