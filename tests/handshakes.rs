//! The handshake timeout and the cap on concurrent handshakes, with small
//! limits and more silent connections than handshake slots.
//!
//! What the acceptor does (crates/trust/src/tls.rs): it takes a slot
//! before it accepts a connection, so while every slot is taken, new
//! connections wait in the TCP backlog, unaccepted, and their handshake
//! timeout has not started; an accepted connection that completes no
//! handshake within the timeout is closed, which frees its slot for the
//! next connection in the backlog, in order.

use std::net::SocketAddr;
use std::time::Duration;

use tocsin_node::config::Limits;
use tocsin_proto::pb;
use tocsin_testkit::{TestFederation, wait_until};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Long enough for a good client's handshake on a busy machine, short
/// enough for a quick test.
const TIMEOUT: Duration = Duration::from_millis(500);
/// Handshake slots.
const SLOTS: usize = 2;
/// The default timeout is 10 s: anything closed well before this was
/// closed by the small timeout.
const PATIENCE: Duration = Duration::from_secs(5);

/// TR-MIT's node alone (FR-DGSI is down, so no peer takes a slot), with
/// the small limits.
async fn federation() -> anyhow::Result<TestFederation> {
    TestFederation::builder()
        .down(["FR-DGSI"])
        .limits_for(
            "TR-MIT",
            Limits {
                handshake_timeout: TIMEOUT,
                max_concurrent_handshakes: SLOTS,
                ..Limits::default()
            },
        )
        .start()
        .await
}

/// An operator call on TR-MIT's node, on a new connection.
async fn served(fed: &TestFederation) -> anyhow::Result<()> {
    let mut op = fed.operator("TR-MIT").await?;
    op.list_alerts(pb::ListAlertsRequest::default()).await?;
    Ok(())
}

/// Opens a TCP connection that never sends a byte; the handle resolves
/// when the server closes it, with the time it did.
async fn silent(addr: SocketAddr) -> anyhow::Result<tokio::task::JoinHandle<Option<Instant>>> {
    let mut stream = TcpStream::connect(addr).await?;
    Ok(tokio::spawn(async move {
        let mut byte = [0u8; 1];
        // End of stream or a reset: closed by the server either way.
        match tokio::time::timeout(PATIENCE, stream.read(&mut byte)).await {
            Ok(Ok(0) | Err(_)) => Some(Instant::now()),
            Ok(Ok(_)) => panic!("the server sent data on a connection that never said hello"),
            Err(_) => None,
        }
    }))
}

async fn timeouts(fed: &TestFederation) -> f64 {
    let series = "tocsin_tls_handshake_refusals_total{reason=\"handshake_timeout\"}";
    fed.metrics("TR-MIT")
        .await
        .ok()
        .and_then(|m| m.get(series).copied())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_handshake_timeout() -> anyhow::Result<()> {
    let fed = federation().await?;
    served(&fed).await?;
    let start = Instant::now();
    let closed = silent(fed.addr("TR-MIT")?)
        .await?
        .await?
        .expect("the silent connection was not closed within 5 s");
    let after = closed - start;
    assert!(
        after >= TIMEOUT,
        "closed after {after:?}, before the timeout"
    );
    wait_until(PATIENCE, "the timeout is counted", || async {
        (timeouts(&fed).await == 1.0).then_some(())
    })
    .await?;
    // The node still serves.
    served(&fed).await?;
    Ok(())
}

#[tokio::test]
async fn with_every_slot_held_a_good_client_waits_for_the_silent_ones_to_time_out()
-> anyhow::Result<()> {
    let fed = federation().await?;
    served(&fed).await?;
    let addr = fed.addr("TR-MIT")?;
    let start = Instant::now();
    // Two waves: SLOTS connections take every slot, SLOTS more wait in
    // the backlog behind them.
    let mut waves = Vec::new();
    for _ in 0..2 * SLOTS {
        waves.push(silent(addr).await?);
    }
    // The good client comes last, behind both waves.
    served(&fed).await?;
    let served_after = start.elapsed();

    let mut closed = Vec::new();
    for wave in waves {
        let at = wave.await?.expect("a silent connection was not closed");
        closed.push(at - start);
    }
    // The first wave is closed after one timeout, the second (accepted
    // only then) after two, and the good client was served only after the
    // second wave had let go of the slots.
    for (i, after) in closed.iter().enumerate() {
        let waits = if i < SLOTS { 1 } else { 2 };
        assert!(
            *after >= TIMEOUT * waits,
            "silent connection {i} closed after {after:?}, before {waits} timeout(s): {closed:?}"
        );
    }
    assert!(
        served_after >= TIMEOUT * 2,
        "the good client was served after {served_after:?}, while every slot was held: {closed:?}"
    );
    assert!(served_after < PATIENCE, "{served_after:?}");
    wait_until(PATIENCE, "every silent connection is counted", || async {
        (timeouts(&fed).await == (2 * SLOTS) as f64).then_some(())
    })
    .await?;
    Ok(())
}
