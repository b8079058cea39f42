//! Store-and-forward: nothing accepted is lost when a peer is down or a node
//! restarts, and retries back off instead of spinning.

use std::time::Duration;

use tocsin_proto::pb;
use tocsin_testkit::PATIENCE;
use tocsin_testkit::flow::{delivery, id_of};
use tocsin_testkit::{Desk, TestFederation, draft, wait_until};

#[tokio::test]
async fn an_alert_for_a_peer_that_is_down_is_delivered_when_it_starts() -> anyhow::Result<()> {
    let mut fed = TestFederation::builder().down(["FR-DGSI"]).start().await?;
    let tr = fed.desk("TR-MIT").await?;
    let id = id_of(&tr.submit(draft(&["FR-DGSI"])).await?);

    // The operator sees the failed attempts and why.
    let record = tr
        .wait_delivery(&id, "FR-DGSI", "fail at least once", |d| d.attempts >= 1)
        .await?;
    let pending = delivery(&record, "FR-DGSI").unwrap();
    assert_eq!(pending.state, pb::DeliveryState::Pending as i32);
    assert!(!pending.last_error.is_empty());
    assert!(pending.next_attempt_at.is_some());

    fed.start_node("FR-DGSI").await?;
    let record = tr.wait_delivered(&id, "FR-DGSI").await?;
    assert!(delivery(&record, "FR-DGSI").unwrap().attempts >= 2);
    let fr = fed.desk("FR-DGSI").await?;
    assert_eq!(fr.list(pb::Direction::Inbound).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_pending_outbox_survives_a_restart_of_the_sender() -> anyhow::Result<()> {
    let mut fed = TestFederation::builder().down(["FR-DGSI"]).start().await?;
    let tr = fed.desk("TR-MIT").await?;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(id_of(&tr.submit(draft(&["FR-DGSI"])).await?));
    }
    fed.stop_node("TR-MIT").await?;
    fed.start_node("FR-DGSI").await?;
    fed.start_node("TR-MIT").await?;

    let tr = fed.desk("TR-MIT").await?;
    for id in &ids {
        tr.wait_delivered(id, "FR-DGSI").await?;
    }
    let fr = fed.desk("FR-DGSI").await?;
    let inbox = fr.list(pb::Direction::Inbound).await?;
    assert_eq!(inbox.len(), ids.len(), "each alert exactly once");
    Ok(())
}

#[tokio::test]
async fn the_receiver_keeps_what_it_receipted_across_a_restart() -> anyhow::Result<()> {
    let mut fed = TestFederation::builder().start().await?;
    let tr = fed.desk("TR-MIT").await?;
    let sent = tr.submit(draft(&["FR-DGSI"])).await?;
    let id = id_of(&sent);
    let record = tr.wait_delivered(&id, "FR-DGSI").await?;
    let receipt = delivery(&record, "FR-DGSI").unwrap().receipt.clone();

    fed.restart_node("FR-DGSI").await?;
    let fr = fed.desk("FR-DGSI").await?;
    let stored = fr.alert(&id).await?;
    assert_eq!(stored.envelope, record.envelope);
    assert_eq!(stored.receipt, receipt);

    // Delivering it again after the restart still yields the same receipt.
    let mut peer = fed.peer_client("TR-MIT", "FR-DGSI")?;
    let again = peer
        .deliver(pb::DeliverRequest {
            alert: record.envelope.clone(),
        })
        .await?
        .into_inner()
        .receipt;
    assert_eq!(again, receipt);
    Ok(())
}

#[tokio::test]
async fn retries_back_off_instead_of_spinning() -> anyhow::Result<()> {
    // Backoff starts at 50 ms and doubles, with "equal jitter" (at least
    // half of each delay is kept). The 5th attempt therefore cannot come
    // before 0.5 * (50 + 100 + 200 + 400) = 375 ms after the first; a busy
    // loop would get there in a millisecond. Polling may notice the first
    // attempt up to a few tens of milliseconds late, hence 300 ms.
    let mut fed = TestFederation::builder().down(["FR-DGSI"]).start().await?;
    let tr = fed.desk("TR-MIT").await?;
    let id = id_of(&tr.submit(draft(&["FR-DGSI"])).await?);
    let first = wait_until(PATIENCE, "the first attempt", || {
        attempts_at_least(&tr, &id, 1)
    })
    .await?;
    let started = std::time::Instant::now();
    let fifth = wait_until(PATIENCE, "the fifth attempt", || {
        attempts_at_least(&tr, &id, 5)
    })
    .await?;
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "attempts {first} to {fifth} took only {:?}",
        started.elapsed()
    );

    fed.start_node("FR-DGSI").await?;
    tr.wait_delivered(&id, "FR-DGSI").await?;
    Ok(())
}

async fn attempts_at_least(tr: &Desk, id: &str, n: u32) -> Option<u32> {
    let record = tr.alert(id).await.ok()?;
    let attempts = delivery(&record, "FR-DGSI")?.attempts;
    (attempts >= n).then_some(attempts)
}

#[tokio::test]
async fn many_alerts_queued_for_a_down_peer_all_arrive_once() -> anyhow::Result<()> {
    let mut fed = TestFederation::builder()
        .agencies(["IQ-INIS", "FR-DGSI", "BE-VSSE"])
        .down(["FR-DGSI"])
        .start()
        .await?;
    let iq = fed.desk("IQ-INIS").await?;
    let mut ids = Vec::new();
    for _ in 0..150 {
        ids.push(id_of(&iq.submit(draft(&["FR-DGSI", "BE-VSSE"])).await?));
    }
    fed.start_node("FR-DGSI").await?;
    for id in &ids {
        iq.wait_delivered(id, "FR-DGSI").await?;
        iq.wait_delivered(id, "BE-VSSE").await?;
    }
    for agency in ["FR-DGSI", "BE-VSSE"] {
        let op = fed.desk(agency).await?;
        assert_eq!(
            op.list(pb::Direction::Inbound).await?.len(),
            ids.len(),
            "{agency}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_returning_peer_is_reached_at_once_not_after_the_backoff() -> anyhow::Result<()> {
    // With a one-minute backoff, the retry after FR-DGSI starts would come
    // at least 30 s later. FR-DGSI greets its peers when it starts; that
    // session tells TR-MIT it is back, and the alert goes at once.
    let mut fed = TestFederation::builder()
        .down(["FR-DGSI"])
        .outbox(tocsin_node::config::OutboxOptions {
            initial_backoff: Duration::from_secs(60),
            max_backoff: Duration::from_secs(120),
            ..Default::default()
        })
        .start()
        .await?;
    let tr = fed.desk("TR-MIT").await?;
    let id = id_of(&tr.submit(draft(&["FR-DGSI"])).await?);
    wait_until(PATIENCE, "the first failed attempt", || {
        attempts_at_least(&tr, &id, 1)
    })
    .await?;

    fed.start_node("FR-DGSI").await?;
    tr.clone()
        .with_patience(Duration::from_secs(10))
        .wait_delivered(&id, "FR-DGSI")
        .await?;
    Ok(())
}
