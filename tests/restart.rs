//! Store-and-forward: nothing accepted is lost when a peer is down or a node
//! restarts, and retries back off instead of spinning.

use std::time::Duration;

use tocsin_proto::pb;
use tocsin_testkit::{TestFederation, draft, wait_until};
use tocsin_tests::*;

#[tokio::test]
async fn an_alert_for_a_peer_that_is_down_is_delivered_when_it_starts() -> anyhow::Result<()> {
    let mut fed = TestFederation::builder().down(["FR-DGSI"]).start().await?;
    let mut tr = fed.operator("TR-MIT").await?;
    let id = id_of(&submit(&mut tr, draft(&["FR-DGSI"])).await?);

    // The operator sees the failed attempts and why.
    let pending = wait_until(PATIENCE, "a failed attempt is recorded", || {
        let mut tr = tr.clone();
        let id = id.clone();
        async move {
            let r = get(&mut tr, &id).await.ok()?;
            let d = delivery(&r, "FR-DGSI")?.clone();
            (d.attempts >= 1).then_some(d)
        }
    })
    .await?;
    assert_eq!(pending.state, pb::DeliveryState::Pending as i32);
    assert!(!pending.last_error.is_empty());
    assert!(pending.next_attempt_at.is_some());

    fed.start_node("FR-DGSI").await?;
    let record = wait_delivered(&tr, &id, "FR-DGSI").await?;
    assert!(delivery(&record, "FR-DGSI").unwrap().attempts >= 2);
    let mut fr = fed.operator("FR-DGSI").await?;
    assert_eq!(list(&mut fr, pb::Direction::Inbound).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_pending_outbox_survives_a_restart_of_the_sender() -> anyhow::Result<()> {
    let mut fed = TestFederation::builder().down(["FR-DGSI"]).start().await?;
    let mut tr = fed.operator("TR-MIT").await?;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(id_of(&submit(&mut tr, draft(&["FR-DGSI"])).await?));
    }
    fed.stop_node("TR-MIT").await?;
    fed.start_node("FR-DGSI").await?;
    fed.start_node("TR-MIT").await?;

    let tr = fed.operator("TR-MIT").await?;
    for id in &ids {
        wait_delivered(&tr, id, "FR-DGSI").await?;
    }
    let mut fr = fed.operator("FR-DGSI").await?;
    let inbox = list(&mut fr, pb::Direction::Inbound).await?;
    assert_eq!(inbox.len(), ids.len(), "each alert exactly once");
    Ok(())
}

#[tokio::test]
async fn the_receiver_keeps_what_it_receipted_across_a_restart() -> anyhow::Result<()> {
    let mut fed = TestFederation::builder().start().await?;
    let mut tr = fed.operator("TR-MIT").await?;
    let sent = submit(&mut tr, draft(&["FR-DGSI"])).await?;
    let id = id_of(&sent);
    let record = wait_delivered(&tr, &id, "FR-DGSI").await?;
    let receipt = delivery(&record, "FR-DGSI").unwrap().receipt.clone();

    fed.restart_node("FR-DGSI").await?;
    let mut fr = fed.operator("FR-DGSI").await?;
    let stored = get(&mut fr, &id).await?;
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
    let mut tr = fed.operator("TR-MIT").await?;
    let id = id_of(&submit(&mut tr, draft(&["FR-DGSI"])).await?);
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
    wait_delivered(&tr, &id, "FR-DGSI").await?;
    Ok(())
}

async fn attempts_at_least(
    op: &tocsin_proto::pb::operator_client::OperatorClient<tonic::transport::Channel>,
    id: &str,
    n: u32,
) -> Option<u32> {
    let record = get(&mut op.clone(), id).await.ok()?;
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
    let mut iq = fed.operator("IQ-INIS").await?;
    let mut ids = Vec::new();
    for _ in 0..150 {
        ids.push(id_of(
            &submit(&mut iq, draft(&["FR-DGSI", "BE-VSSE"])).await?,
        ));
    }
    fed.start_node("FR-DGSI").await?;
    for id in &ids {
        wait_delivered(&iq, id, "FR-DGSI").await?;
        wait_delivered(&iq, id, "BE-VSSE").await?;
    }
    for agency in ["FR-DGSI", "BE-VSSE"] {
        let mut op = fed.operator(agency).await?;
        assert_eq!(
            list(&mut op, pb::Direction::Inbound).await?.len(),
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
    let mut tr = fed.operator("TR-MIT").await?;
    let id = id_of(&submit(&mut tr, draft(&["FR-DGSI"])).await?);
    wait_until(PATIENCE, "the first failed attempt", || {
        attempts_at_least(&tr, &id, 1)
    })
    .await?;

    fed.start_node("FR-DGSI").await?;
    wait_until(
        Duration::from_secs(10),
        "delivery soon after FR-DGSI is back",
        || {
            let mut tr = tr.clone();
            let id = id.clone();
            async move {
                let r = get(&mut tr, &id).await.ok()?;
                (delivery(&r, "FR-DGSI")?.state == pb::DeliveryState::Delivered as i32)
                    .then_some(())
            }
        },
    )
    .await?;
    Ok(())
}
