//! Clocks that disagree. Both ends still compute the same deadline (from the
//! originator's signed alert time, never from when the alert arrived), each
//! flags it on its own clock, and a peer whose clock is beyond tolerance is
//! reported on the metrics endpoint of every node that talks to it.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tocsin_core::clock::{ManualClock, truncate_ms};
use tocsin_core::federation::Escalation;
use tocsin_core::from_timestamp;
use tocsin_proto::pb;
use tocsin_testkit::flow::delivery;
use tocsin_testkit::{
    AlertBuilder, DeadlineFlag, PATIENCE, Person, Precedence, TestFederation, wait_until,
};

fn flash(to: &[&str]) -> AlertBuilder {
    AlertBuilder::to(to.iter().copied())
        .precedence(Precedence::Flash)
        .person(Person::named("Ismaël Omar Mostefaï").born("1985-11-21"))
}

fn priority(to: &[&str]) -> AlertBuilder {
    flash(to).precedence(Precedence::Priority)
}

fn time(ts: &Option<prost_types::Timestamp>) -> DateTime<Utc> {
    ts.as_ref().and_then(from_timestamp).expect("a time")
}

/// Nodes on manual clocks `offsets` (seconds) away from a common `base`;
/// the escalation ladder starts long after any deadline here.
async fn federation(
    base: DateTime<Utc>,
    offsets: &[(&str, i64)],
    limits: tocsin_node::config::Limits,
) -> anyhow::Result<(TestFederation, BTreeMap<String, ManualClock>)> {
    let mut builder = TestFederation::builder()
        .agencies(offsets.iter().map(|(a, _)| *a))
        .limits(limits)
        .escalation(Escalation {
            remind: 1000.0,
            escalate: 1000.0,
            lapse: 1000.0,
        });
    let mut clocks = BTreeMap::new();
    for (agency, offset) in offsets {
        let clock = ManualClock::new(base + Duration::seconds(*offset));
        builder = builder.clock_for(*agency, Arc::new(clock.clone()));
        clocks.insert((*agency).to_owned(), clock);
    }
    Ok((builder.start().await?, clocks))
}

fn skew_series(peer: &str) -> String {
    format!("tocsin_peer_clock_skew_seconds{{peer=\"{peer}\"}}")
}

fn exceeded_series(peer: &str) -> String {
    format!("tocsin_peer_clock_skew_exceeded{{peer=\"{peer}\"}}")
}

/// Waits until `node` has measured `peer`'s clock `skew` seconds from its
/// own; returns whether it flags it beyond tolerance.
async fn wait_skew(
    fed: &TestFederation,
    node: &str,
    peer: &str,
    skew: f64,
) -> anyhow::Result<bool> {
    let exceeded = wait_until(
        PATIENCE,
        &format!("{node} measures {peer}'s clock {skew} s from its own"),
        || async move {
            let m = fed.metrics(node).await.ok()?;
            (m.get(&skew_series(peer)) == Some(&skew))
                .then(|| m.get(&exceeded_series(peer)).copied())
                .flatten()
        },
    )
    .await?;
    Ok(exceeded == 1.0)
}

#[tokio::test]
async fn both_ends_compute_the_same_deadline_and_flag_it_on_their_own_clocks() -> anyhow::Result<()>
{
    let base = truncate_ms(Utc::now());
    // FR-DGSI's clock is ten minutes behind TR-MIT's.
    let (fed, clocks) = federation(
        base,
        &[("TR-MIT", 0), ("FR-DGSI", -600)],
        Default::default(),
    )
    .await?;
    let tr = fed.desk("TR-MIT").await?;
    let fr = fed.desk("FR-DGSI").await?;
    let id = tr.send(flash(&["FR-DGSI"])).await?;
    let sent = tr.wait_delivered(&id, "FR-DGSI").await?;
    // The control: FR-DGSI's own FLASH to TR-MIT, created on its clock, is
    // due when FR-DGSI's clock reads `base`, in the first step below.
    let control = fr.send(flash(&["TR-MIT"])).await?;
    fr.wait_delivered(&control, "TR-MIT").await?;
    let received = fr.alert(&id).await?;

    // The signed creation time is TR-MIT's; FLASH allows ten minutes.
    let created = time(&sent.alert.as_ref().unwrap().created_at);
    assert_eq!(created, base);
    let d = delivery(&sent, "FR-DGSI").unwrap();
    assert_eq!(time(&d.due_at), base + Duration::minutes(10));
    // FR-DGSI stored it, and signed its receipt, ten minutes "before" it
    // was created; the deadline does not move for that.
    assert_eq!(time(&received.stored_at), base - Duration::minutes(10));
    assert_eq!(time(&d.delivered_at), base - Duration::minutes(10));
    assert_eq!(time(&received.due_at), time(&d.due_at));

    // Ten minutes pass for both. TR-MIT's clock reaches the deadline;
    // FR-DGSI's reads only the creation time.
    for clock in clocks.values() {
        clock.advance(Duration::minutes(10));
    }
    tr.wait_flag(&id, "FR-DGSI", DeadlineFlag::Overdue).await?;
    let flagged = tr.alert(&id).await?;
    assert_eq!(
        time(&delivery(&flagged, "FR-DGSI").unwrap().flagged_at),
        base + Duration::minutes(10)
    );
    // FR-DGSI's tracker has looked at its clock since it moved: it flagged
    // the control. It did not flag TR-MIT's alert.
    fr.wait_flag(&control, "TR-MIT", DeadlineFlag::Overdue)
        .await?;
    assert_eq!(fr.alert(&id).await?.flag, DeadlineFlag::None as i32);

    // Ten more: FR-DGSI's clock reaches the same deadline.
    for clock in clocks.values() {
        clock.advance(Duration::minutes(10));
    }
    fr.wait_inbound_flag(&id, DeadlineFlag::Overdue).await?;
    assert_eq!(
        time(&fr.alert(&id).await?.flagged_at),
        base + Duration::minutes(10)
    );
    Ok(())
}

#[tokio::test]
async fn a_peer_clock_beyond_tolerance_is_reported_on_both_ends() -> anyhow::Result<()> {
    let base = truncate_ms(Utc::now());
    let (fed, clocks) = federation(
        base,
        &[("TR-MIT", 0), ("FR-DGSI", -600)],
        Default::default(),
    )
    .await?;
    let tr = fed.desk("TR-MIT").await?;
    let fr = fed.desk("FR-DGSI").await?;

    // Each measured the other when it started (no round trip on a manual
    // clock, so the measurement is exact).
    assert!(wait_skew(&fed, "TR-MIT", "FR-DGSI", -600.0).await?);
    assert!(wait_skew(&fed, "FR-DGSI", "TR-MIT", 600.0).await?);
    let m = fed.metrics("TR-MIT").await?;
    assert_eq!(m.get("tocsin_clock_skew_tolerance_seconds"), Some(&120.0));
    assert_eq!(
        m.get("tocsin_peer_clock_skew_uncertainty_seconds{peer=\"FR-DGSI\"}"),
        Some(&0.0)
    );

    // FR-DGSI's clock jumps to five minutes ahead. A delivery measures it
    // again on TR-MIT, and the acknowledgement going back on FR-DGSI.
    clocks["FR-DGSI"].set(base + Duration::minutes(5));
    let id = tr.send(priority(&["FR-DGSI"])).await?;
    tr.wait_delivered(&id, "FR-DGSI").await?;
    assert!(wait_skew(&fed, "TR-MIT", "FR-DGSI", 300.0).await?);
    fr.ack(&id, pb::Disposition::Noted, "").await?;
    tr.wait_acks(&id, "FR-DGSI", 1).await?;
    assert!(wait_skew(&fed, "FR-DGSI", "TR-MIT", -300.0).await?);

    // Set right (within tolerance): the next delivery clears the flag.
    clocks["FR-DGSI"].set(base + Duration::seconds(30));
    let id = tr.send(priority(&["FR-DGSI"])).await?;
    tr.wait_delivered(&id, "FR-DGSI").await?;
    assert!(!wait_skew(&fed, "TR-MIT", "FR-DGSI", 30.0).await?);
    Ok(())
}

#[tokio::test]
async fn a_peer_that_was_down_is_measured_when_it_comes_up() -> anyhow::Result<()> {
    let base = truncate_ms(Utc::now());
    let mut fed = TestFederation::builder()
        .agencies(["TR-MIT", "FR-DGSI", "BE-VSSE"])
        .down(["FR-DGSI"])
        .clock_for("TR-MIT", Arc::new(ManualClock::new(base)))
        .clock_for(
            "FR-DGSI",
            Arc::new(ManualClock::new(base - Duration::minutes(10))),
        )
        .clock_for(
            "BE-VSSE",
            Arc::new(ManualClock::new(base + Duration::minutes(10))),
        )
        .start()
        .await?;
    // TR-MIT's greeting at start finds FR-DGSI down, nothing to measure; it
    // measures BE-VSSE, the control, in the same round.
    assert!(wait_skew(&fed, "TR-MIT", "BE-VSSE", 600.0).await?);
    assert!(
        !fed.metrics("TR-MIT")
            .await?
            .contains_key(&skew_series("FR-DGSI"))
    );
    // FR-DGSI comes up and greets TR-MIT, which then measures it at once
    // rather than at its next round of probes, a minute later.
    fed.start_node("FR-DGSI").await?;
    assert!(wait_skew(&fed, "TR-MIT", "FR-DGSI", -600.0).await?);
    Ok(())
}

#[tokio::test]
async fn peers_within_tolerance_are_not_flagged() -> anyhow::Result<()> {
    let base = truncate_ms(Utc::now());
    // 90 s behind and 100 s ahead of TR-MIT: each within the default two
    // minutes of it, but 190 s apart from each other.
    let (fed, _clocks) = federation(
        base,
        &[("TR-MIT", 0), ("FR-DGSI", -90), ("BE-VSSE", 100)],
        Default::default(),
    )
    .await?;
    assert!(!wait_skew(&fed, "TR-MIT", "FR-DGSI", -90.0).await?);
    assert!(!wait_skew(&fed, "TR-MIT", "BE-VSSE", 100.0).await?);
    assert!(!wait_skew(&fed, "FR-DGSI", "TR-MIT", 90.0).await?);
    assert!(!wait_skew(&fed, "BE-VSSE", "TR-MIT", -100.0).await?);
    assert!(wait_skew(&fed, "FR-DGSI", "BE-VSSE", 190.0).await?);
    assert!(wait_skew(&fed, "BE-VSSE", "FR-DGSI", -190.0).await?);
    Ok(())
}

#[tokio::test]
async fn the_tolerance_is_configurable() -> anyhow::Result<()> {
    let base = truncate_ms(Utc::now());
    let (fed, _clocks) = federation(
        base,
        &[("TR-MIT", 0), ("FR-DGSI", -90)],
        tocsin_node::config::Limits {
            clock_skew_tolerance: std::time::Duration::from_secs(60),
            ..Default::default()
        },
    )
    .await?;
    assert!(wait_skew(&fed, "TR-MIT", "FR-DGSI", -90.0).await?);
    assert!(wait_skew(&fed, "FR-DGSI", "TR-MIT", 90.0).await?);
    let m = fed.metrics("TR-MIT").await?;
    assert_eq!(m.get("tocsin_clock_skew_tolerance_seconds"), Some(&60.0));
    Ok(())
}

#[tokio::test]
async fn nodes_on_the_real_clock_agree() -> anyhow::Result<()> {
    let fed = TestFederation::builder().start().await?;
    for (node, peer) in [("TR-MIT", "FR-DGSI"), ("FR-DGSI", "TR-MIT")] {
        let m = wait_until(PATIENCE, &format!("{node} measures {peer}"), || async {
            let m = fed.metrics(node).await.ok()?;
            m.contains_key(&skew_series(peer)).then_some(m)
        })
        .await?;
        let skew = m[&skew_series(peer)];
        let uncertainty =
            m[&format!("tocsin_peer_clock_skew_uncertainty_seconds{{peer=\"{peer}\"}}")];
        // One host, one clock: the skew is within the round trip.
        assert!(skew.abs() <= uncertainty + 0.001, "{skew} ± {uncertainty}");
        assert_eq!(m[&exceeded_series(peer)], 0.0);
    }
    Ok(())
}
