//! No warning goes unanswered unseen: deadlines pass into OVERDUE or
//! UNDELIVERED flags on both ends, survive restarts, and every step is an
//! event a watcher can resume from.

use std::sync::Arc;

use chrono::{Duration, Utc};
use tocsin_core::clock::{ManualClock, truncate_ms};
use tocsin_core::federation::Escalation;
use tocsin_proto::pb;
use tocsin_proto::pb::operator_client::OperatorClient;
use tocsin_testkit::{TestFederation, draft};
use tocsin_tests::*;
use tonic::transport::Channel;

fn flash(to: &[&str]) -> pb::Alert {
    let mut a = draft(to);
    a.precedence = pb::Precedence::Flash as i32;
    a
}

/// A federation whose escalation ladder starts long after any deadline
/// here: these tests are about the flags; `escalation.rs` covers the ladder.
async fn federation(clock: &ManualClock, down: &[&str]) -> anyhow::Result<TestFederation> {
    TestFederation::builder()
        .escalation(Escalation {
            remind: 1000.0,
            escalate: 1000.0,
            lapse: 1000.0,
        })
        .clock(Arc::new(clock.clone()))
        .down(down.iter().copied())
        .start()
        .await
}

#[tokio::test]
async fn a_passed_deadline_flags_both_ends_and_a_late_answer_still_closes_it() -> anyhow::Result<()>
{
    let clock = ManualClock::new(truncate_ms(Utc::now()));
    let fed = federation(&clock, &[]).await?;
    let mut tr = fed.operator("TR-MIT").await?;
    let mut fr = fed.operator("FR-DGSI").await?;
    let id = id_of(&submit(&mut tr, flash(&["FR-DGSI"])).await?);
    wait_delivered(&tr, &id, "FR-DGSI").await?;

    // Nine minutes: still in time. Eleven: FLASH's ten minutes are gone.
    clock.advance(Duration::minutes(9));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(
        delivery(&get(&mut tr, &id).await?, "FR-DGSI").unwrap().flag,
        pb::DeadlineFlag::None as i32
    );
    clock.advance(Duration::minutes(2));
    wait_flag(&tr, &id, "FR-DGSI", pb::DeadlineFlag::Overdue).await?;
    wait_owed_overdue(&fr, &id).await?;
    assert_eq!(open_list_overdue(&mut tr).await?, vec![id.clone()]);
    assert_eq!(open_list_overdue(&mut fr).await?, vec![id.clone()]);

    // A late NOTED closes it, recorded as late; the flag stays as history.
    clock.advance(Duration::minutes(49));
    let late = ack(&mut fr, &id, pb::Disposition::Noted, "Routine.").await?;
    assert_eq!(late.late_by_seconds, 50 * 60);
    let record = wait_acks(&tr, &id, "FR-DGSI", 1).await?;
    let d = delivery(&record, "FR-DGSI").unwrap();
    assert_eq!(d.acknowledgements[0].late_by_seconds, 50 * 60);
    assert_eq!(d.flag, pb::DeadlineFlag::Overdue as i32);
    assert!(open_list_overdue(&mut tr).await?.is_empty());
    assert!(open_list_overdue(&mut fr).await?.is_empty());

    use pb::EventKind::*;
    assert_eq!(
        kinds(&events(&tr).await?, &id),
        vec![Submitted, Delivered, Overdue, Acknowledged]
    );
    assert_eq!(
        kinds(&events(&fr).await?, &id),
        vec![Received, Overdue, Acknowledged]
    );
    let tr_events = events(&tr).await?;
    let acked = tr_events
        .iter()
        .find(|e| e.kind == Acknowledged as i32)
        .unwrap();
    assert!(
        acked.detail.contains("NOTED (late by 50m)"),
        "{}",
        acked.detail
    );
    Ok(())
}

async fn open_list_overdue(op: &mut OperatorClient<Channel>) -> anyhow::Result<Vec<String>> {
    Ok(op
        .list_alerts(pb::ListAlertsRequest {
            filter: pb::list_alerts_request::Filter::Overdue as i32,
            limit: 100,
            ..Default::default()
        })
        .await?
        .into_inner()
        .alerts
        .iter()
        .map(id_of)
        .collect())
}

#[tokio::test]
async fn an_answer_in_time_stops_the_clock() -> anyhow::Result<()> {
    let clock = ManualClock::new(truncate_ms(Utc::now()));
    let fed = federation(&clock, &[]).await?;
    let mut tr = fed.operator("TR-MIT").await?;
    let mut fr = fed.operator("FR-DGSI").await?;
    let id = id_of(&submit(&mut tr, flash(&["FR-DGSI"])).await?);
    wait_delivered(&tr, &id, "FR-DGSI").await?;
    ack(&mut fr, &id, pb::Disposition::Actioned, "").await?;
    wait_acks(&tr, &id, "FR-DGSI", 1).await?;
    clock.advance(Duration::hours(2));
    // Give the tracker every chance to (wrongly) flag it.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        delivery(&get(&mut tr, &id).await?, "FR-DGSI").unwrap().flag,
        pb::DeadlineFlag::None as i32
    );
    assert_eq!(get(&mut fr, &id).await?.flag, pb::DeadlineFlag::None as i32);
    assert!(!kinds(&events(&tr).await?, &id).contains(&pb::EventKind::Overdue));
    Ok(())
}

#[tokio::test]
async fn an_alert_that_never_arrived_is_flagged_undelivered() -> anyhow::Result<()> {
    let clock = ManualClock::new(truncate_ms(Utc::now()));
    let mut fed = federation(&clock, &["FR-DGSI"]).await?;
    let mut tr = fed.operator("TR-MIT").await?;
    let id = id_of(&submit(&mut tr, flash(&["FR-DGSI"])).await?);
    clock.advance(Duration::minutes(11));
    wait_flag(&tr, &id, "FR-DGSI", pb::DeadlineFlag::Undelivered).await?;

    // It arrives at last: no longer undelivered, still overdue, and the
    // recipient flags it at once, since its deadline is long gone.
    fed.start_node("FR-DGSI").await?;
    wait_delivered(&tr, &id, "FR-DGSI").await?;
    wait_flag(&tr, &id, "FR-DGSI", pb::DeadlineFlag::Overdue).await?;
    let fr = fed.operator("FR-DGSI").await?;
    wait_owed_overdue(&fr, &id).await?;
    use pb::EventKind::*;
    assert_eq!(
        kinds(&events(&tr).await?, &id),
        vec![Submitted, Undelivered, Delivered]
    );
    Ok(())
}

#[tokio::test]
async fn deadlines_that_fell_while_a_node_was_down_fire_at_start_in_order() -> anyhow::Result<()> {
    let clock = ManualClock::new(truncate_ms(Utc::now()));
    let mut fed = federation(&clock, &[]).await?;
    let mut tr = fed.operator("TR-MIT").await?;
    // IMMEDIATE (1 h) first, then FLASH (10 min): the FLASH deadline falls first.
    let mut immediate = draft(&["FR-DGSI"]);
    immediate.precedence = pb::Precedence::Immediate as i32;
    let immediate = id_of(&submit(&mut tr, immediate).await?);
    let flash_id = id_of(&submit(&mut tr, flash(&["FR-DGSI"])).await?);
    wait_delivered(&tr, &immediate, "FR-DGSI").await?;
    wait_delivered(&tr, &flash_id, "FR-DGSI").await?;

    fed.stop_node("TR-MIT").await?;
    fed.stop_node("FR-DGSI").await?;
    clock.advance(Duration::hours(2));
    fed.start_node("TR-MIT").await?;
    let tr = fed.operator("TR-MIT").await?;
    wait_flag(&tr, &immediate, "FR-DGSI", pb::DeadlineFlag::Overdue).await?;
    wait_flag(&tr, &flash_id, "FR-DGSI", pb::DeadlineFlag::Overdue).await?;
    let overdue: Vec<String> = events(&tr)
        .await?
        .into_iter()
        .filter(|e| e.kind == pb::EventKind::Overdue as i32)
        .map(|e| e.alert_id)
        .collect();
    assert_eq!(
        overdue,
        vec![flash_id, immediate],
        "in the order the deadlines fell"
    );
    Ok(())
}

#[tokio::test]
async fn a_watcher_that_reconnects_misses_nothing() -> anyhow::Result<()> {
    let fed = TestFederation::builder().start().await?;
    let mut tr = fed.operator("TR-MIT").await?;
    let mut fr = fed.operator("FR-DGSI").await?;

    // Live: a watcher started now sees the next event.
    let mut live = tr
        .watch_events(pb::WatchEventsRequest { after_id: None })
        .await?
        .into_inner();
    let first = id_of(&submit(&mut tr, draft(&["FR-DGSI"])).await?);
    let e = live.message().await?.unwrap();
    assert_eq!(
        (e.kind, e.alert_id.as_str()),
        (pb::EventKind::Submitted as i32, first.as_str())
    );
    let seen = e.id;
    drop(live);

    // While it is away: a delivery, a second alert, an acknowledgement.
    wait_delivered(&tr, &first, "FR-DGSI").await?;
    let second = id_of(&submit(&mut tr, draft(&["FR-DGSI"])).await?);
    wait_delivered(&tr, &second, "FR-DGSI").await?;
    ack(&mut fr, &first, pb::Disposition::Noted, "").await?;
    wait_acks(&tr, &first, "FR-DGSI", 1).await?;

    let mut resumed = tr
        .watch_events(pb::WatchEventsRequest {
            after_id: Some(seen),
        })
        .await?
        .into_inner();
    let mut got = Vec::new();
    while got.len() < 4 {
        let e = tokio::time::timeout(std::time::Duration::from_secs(10), resumed.message())
            .await??
            .unwrap();
        assert!(e.id > seen);
        got.push((pb::EventKind::try_from(e.kind)?, e.alert_id));
    }
    use pb::EventKind::*;
    // Delivery of the first and the second alert may interleave with the
    // second's submission; all four are there, each once.
    assert!(got.contains(&(Delivered, first.clone())));
    assert!(got.contains(&(Submitted, second.clone())));
    assert!(got.contains(&(Delivered, second.clone())));
    assert_eq!(got.last().unwrap(), &(Acknowledged, first.clone()));
    Ok(())
}
