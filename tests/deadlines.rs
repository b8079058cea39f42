//! No warning goes unanswered unseen: deadlines pass into OVERDUE or
//! UNDELIVERED flags on both ends, survive restarts, and every step is an
//! event a watcher can resume from.

use std::sync::Arc;

use chrono::{Duration, Utc};
use tocsin_core::clock::{Clock, ManualClock, truncate_ms};
use tocsin_core::federation::Escalation;
use tocsin_proto::pb;
use tocsin_testkit::flow::{delivery, id_of, kinds};
use tocsin_testkit::{AlertBuilder, DeadlineFlag, Desk, Person, Precedence, TestFederation};

fn flash(to: &[&str]) -> AlertBuilder {
    AlertBuilder::to(to.iter().copied())
        .precedence(Precedence::Flash)
        .person(Person::named("Ismaël Omar Mostefaï").born("1985-11-21"))
}

async fn overdue_ids(desk: &Desk) -> anyhow::Result<Vec<String>> {
    Ok(desk.overdue().await?.iter().map(id_of).collect())
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
    let (tr, fr) = (fed.desk("TR-MIT").await?, fed.desk("FR-DGSI").await?);
    let id = tr.send(flash(&["FR-DGSI"])).await?;
    // The control: due after eight minutes, so it is overdue in the same
    // clock step in which the first is still in time.
    let control = tr
        .send(flash(&["FR-DGSI"]).respond_by(clock.now() + Duration::minutes(8)))
        .await?;
    tr.wait_delivered(&id, "FR-DGSI").await?;
    tr.wait_delivered(&control, "FR-DGSI").await?;

    // Nine minutes: still in time. Eleven: FLASH's ten minutes are gone.
    clock.advance(Duration::minutes(9));
    tr.wait_flag(&control, "FR-DGSI", DeadlineFlag::Overdue)
        .await?;
    assert_eq!(
        delivery(&tr.alert(&id).await?, "FR-DGSI").unwrap().flag,
        DeadlineFlag::None as i32
    );
    clock.advance(Duration::minutes(2));
    tr.wait_flag(&id, "FR-DGSI", DeadlineFlag::Overdue).await?;
    fr.wait_inbound_flag(&id, DeadlineFlag::Overdue).await?;
    fr.wait_inbound_flag(&control, DeadlineFlag::Overdue)
        .await?;
    let both = {
        let mut v = vec![id.clone(), control.clone()];
        v.sort();
        v
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(sorted(overdue_ids(&tr).await?), both);
    assert_eq!(sorted(overdue_ids(&fr).await?), both);

    // A late NOTED closes it, recorded as late; the flag stays as history.
    clock.advance(Duration::minutes(49));
    let late = fr.ack(&id, pb::Disposition::Noted, "Routine.").await?;
    assert_eq!(late.late_by_seconds, 50 * 60);
    let record = tr.wait_acks(&id, "FR-DGSI", 1).await?;
    let d = delivery(&record, "FR-DGSI").unwrap();
    assert_eq!(d.acknowledgements[0].late_by_seconds, 50 * 60);
    assert_eq!(d.flag, DeadlineFlag::Overdue as i32);
    assert_eq!(overdue_ids(&tr).await?, std::slice::from_ref(&control));
    assert_eq!(overdue_ids(&fr).await?, std::slice::from_ref(&control));

    use pb::EventKind::*;
    let events = tr
        .wait_events(&id, &[Submitted, Delivered, Overdue, Acknowledged])
        .await?;
    assert!(
        events[3].detail.contains("NOTED (late by 50m)"),
        "{}",
        events[3].detail
    );
    fr.wait_events(&id, &[Received, Overdue, Acknowledged])
        .await?;
    Ok(())
}

#[tokio::test]
async fn an_answer_in_time_stops_the_clock() -> anyhow::Result<()> {
    let clock = ManualClock::new(truncate_ms(Utc::now()));
    let fed = federation(&clock, &[]).await?;
    let (tr, fr) = (fed.desk("TR-MIT").await?, fed.desk("FR-DGSI").await?);
    let id = tr.send(flash(&["FR-DGSI"])).await?;
    // The control, left unanswered, is flagged in the same clock step.
    let control = tr.send(flash(&["FR-DGSI"])).await?;
    tr.wait_delivered(&id, "FR-DGSI").await?;
    tr.wait_delivered(&control, "FR-DGSI").await?;
    fr.ack(&id, pb::Disposition::Actioned, "").await?;
    tr.wait_acks(&id, "FR-DGSI", 1).await?;
    clock.advance(Duration::hours(2));
    let events = tr
        .events_through("the control's OVERDUE", |e| {
            e.alert_id == control && e.kind == pb::EventKind::Overdue as i32
        })
        .await?;
    fr.wait_inbound_flag(&control, DeadlineFlag::Overdue)
        .await?;
    assert!(!kinds(&events, &id).contains(&pb::EventKind::Overdue));
    assert_eq!(
        delivery(&tr.alert(&id).await?, "FR-DGSI").unwrap().flag,
        DeadlineFlag::None as i32
    );
    assert_eq!(fr.alert(&id).await?.flag, DeadlineFlag::None as i32);
    Ok(())
}

#[tokio::test]
async fn an_alert_that_never_arrived_is_flagged_undelivered() -> anyhow::Result<()> {
    let clock = ManualClock::new(truncate_ms(Utc::now()));
    let mut fed = federation(&clock, &["FR-DGSI"]).await?;
    let tr = fed.desk("TR-MIT").await?;
    let id = tr.send(flash(&["FR-DGSI"])).await?;
    clock.advance(Duration::minutes(11));
    tr.wait_flag(&id, "FR-DGSI", DeadlineFlag::Undelivered)
        .await?;

    // It arrives at last: no longer undelivered, still overdue, and the
    // recipient flags it at once, since its deadline is long gone.
    fed.start_node("FR-DGSI").await?;
    tr.wait_delivered(&id, "FR-DGSI").await?;
    tr.wait_flag(&id, "FR-DGSI", DeadlineFlag::Overdue).await?;
    let fr = fed.desk("FR-DGSI").await?;
    fr.wait_inbound_flag(&id, DeadlineFlag::Overdue).await?;
    use pb::EventKind::*;
    tr.wait_events(&id, &[Submitted, Undelivered, Delivered])
        .await?;
    Ok(())
}

#[tokio::test]
async fn deadlines_that_fell_while_a_node_was_down_fire_at_start_in_order() -> anyhow::Result<()> {
    let clock = ManualClock::new(truncate_ms(Utc::now()));
    let mut fed = federation(&clock, &[]).await?;
    let tr = fed.desk("TR-MIT").await?;
    // IMMEDIATE (1 h) first, then FLASH (10 min): the FLASH deadline falls first.
    let immediate = tr
        .send(flash(&["FR-DGSI"]).precedence(Precedence::Immediate))
        .await?;
    let flash_id = tr.send(flash(&["FR-DGSI"])).await?;
    tr.wait_delivered(&immediate, "FR-DGSI").await?;
    tr.wait_delivered(&flash_id, "FR-DGSI").await?;

    fed.stop_node("TR-MIT").await?;
    fed.stop_node("FR-DGSI").await?;
    clock.advance(Duration::hours(2));
    fed.start_node("TR-MIT").await?;
    let tr = fed.desk("TR-MIT").await?;
    let overdue: Vec<String> = tr
        .events_through("both OVERDUE", {
            let mut left = 2;
            move |e| {
                left -= usize::from(e.kind == pb::EventKind::Overdue as i32);
                left == 0
            }
        })
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
    let (tr, fr) = (fed.desk("TR-MIT").await?, fed.desk("FR-DGSI").await?);

    // Live: a watcher started now sees the next event.
    let mut live = tr
        .client()
        .watch_events(pb::WatchEventsRequest { after_id: None })
        .await?
        .into_inner();
    let first = tr.send(flash(&["FR-DGSI"])).await?;
    let e = tokio::time::timeout(tocsin_testkit::PATIENCE, live.message())
        .await??
        .expect("the stream goes on");
    assert_eq!(
        (e.kind, e.alert_id.as_str()),
        (pb::EventKind::Submitted as i32, first.as_str())
    );
    let seen = e.id;
    drop(live);

    // While it is away: a delivery, a second alert, an acknowledgement.
    tr.wait_delivered(&first, "FR-DGSI").await?;
    let second = tr.send(flash(&["FR-DGSI"])).await?;
    tr.wait_delivered(&second, "FR-DGSI").await?;
    fr.ack(&first, pb::Disposition::Noted, "").await?;
    tr.wait_acks(&first, "FR-DGSI", 1).await?;

    let mut resumed = tr
        .client()
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
