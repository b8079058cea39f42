//! Overdue is not the end: the originator reminds, then escalates (a
//! higher-precedence reminder and a notice to the observers), then marks the
//! delivery LAPSED. An acknowledgement stops the ladder.

use std::sync::Arc;

use chrono::{Duration, Utc};
use prost::Message;
use tocsin_core::clock::{ManualClock, truncate_ms};
use tocsin_proto::{NOTICE_PAYLOAD_TYPE, pb};
use tocsin_testkit::flow::{delivery, kinds};
use tocsin_testkit::{AlertBuilder, LadderStep, Person, TestFederation};
use tonic::Code;

const AGENCIES: [&str; 3] = ["TR-MIT", "FR-DGSI", "EU-EUROPOL"];

async fn federation(clock: &ManualClock, down: &[&str]) -> anyhow::Result<TestFederation> {
    TestFederation::builder()
        .agencies(AGENCIES)
        .observers(["EU-EUROPOL"])
        .clock(Arc::new(clock.clone()))
        .down(down.iter().copied())
        .start()
        .await
}

/// A PRIORITY warning to FR-DGSI: 12 h to answer; reminded at 12 h,
/// escalated at 18 h, LAPSED at 24 h.
fn warning() -> AlertBuilder {
    AlertBuilder::to(["FR-DGSI"]).person(Person::named("Ismaël Omar Mostefaï").born("1985-11-21"))
}

#[tokio::test]
async fn the_ladder_reminds_escalates_to_observers_and_ends_lapsed() -> anyhow::Result<()> {
    let clock = ManualClock::new(truncate_ms(Utc::now()));
    let fed = federation(&clock, &[]).await?;
    let tr = fed.desk("TR-MIT").await?;
    let fr = fed.desk("FR-DGSI").await?;
    let eu = fed.desk("EU-EUROPOL").await?;
    // PRIORITY: 12 h to answer; remind at 12 h, escalate at 18 h, LAPSED at 24 h.
    let id = tr.send(warning()).await?;
    tr.wait_delivered(&id, "FR-DGSI").await?;

    clock.advance(Duration::hours(12) + Duration::minutes(1));
    tr.wait_event(&id, pb::EventKind::Reminded).await?;
    fr.wait_event(&id, pb::EventKind::Reminded).await?;
    let record = tr.alert(&id).await?;
    assert_eq!(
        delivery(&record, "FR-DGSI").unwrap().ladder,
        pb::LadderStep::Reminded as i32
    );
    assert!(delivery(&record, "FR-DGSI").unwrap().next_step_at.is_some());

    clock.advance(Duration::hours(6));
    let escalated = tr.wait_event(&id, pb::EventKind::Escalated).await?;
    assert!(
        escalated.detail.contains("IMMEDIATE"),
        "{}",
        escalated.detail
    );
    assert!(
        escalated.detail.contains("EU-EUROPOL"),
        "{}",
        escalated.detail
    );
    let at_fr = fr.wait_event(&id, pb::EventKind::Escalated).await?;
    assert!(at_fr.detail.contains("now IMMEDIATE"), "{}", at_fr.detail);
    let notice = eu.wait_event(&id, pb::EventKind::Escalated).await?;
    assert_eq!(
        notice.agency, "FR-DGSI",
        "the observer learns who did not answer"
    );
    assert!(notice.detail.contains("TR-MIT"), "{}", notice.detail);
    assert_eq!(fr.alert(&id).await?.reminders, 2);

    clock.advance(Duration::hours(6));
    tr.wait_event(&id, pb::EventKind::Lapsed).await?;
    let d = delivery(&tr.alert(&id).await?, "FR-DGSI").unwrap().clone();
    assert_eq!(d.ladder, pb::LadderStep::Lapsed as i32);
    assert!(d.next_step_at.is_none());

    use pb::EventKind::*;
    tr.wait_events(
        &id,
        &[Submitted, Delivered, Overdue, Reminded, Escalated, Lapsed],
    )
    .await?;
    // The observer holds no alert content: it never received the alert.
    assert_eq!(eu.alert(&id).await.unwrap_err().code(), Code::NotFound);
    Ok(())
}

#[tokio::test]
async fn an_acknowledgement_stops_the_ladder() -> anyhow::Result<()> {
    let clock = ManualClock::new(truncate_ms(Utc::now()));
    let fed = federation(&clock, &[]).await?;
    let tr = fed.desk("TR-MIT").await?;
    let fr = fed.desk("FR-DGSI").await?;
    let id = tr.send(warning()).await?;
    // The control, left unanswered, climbs the whole ladder in the same
    // clock steps.
    let control = tr.send(warning()).await?;
    tr.wait_delivered(&id, "FR-DGSI").await?;
    tr.wait_delivered(&control, "FR-DGSI").await?;
    clock.advance(Duration::hours(12) + Duration::minutes(1));
    fr.wait_event(&id, pb::EventKind::Reminded).await?;

    fr.ack(&id, pb::Disposition::Actioned, "On it.").await?;
    tr.wait_acks(&id, "FR-DGSI", 1).await?;
    clock.advance(Duration::hours(24));
    let events = tr
        .events_through("the control LAPSED", |e| {
            e.alert_id == control && e.kind == pb::EventKind::Lapsed as i32
        })
        .await?;
    let k = kinds(&events, &id);
    assert!(
        !k.contains(&pb::EventKind::Escalated) && !k.contains(&pb::EventKind::Lapsed),
        "{k:?}"
    );
    let d = delivery(&tr.alert(&id).await?, "FR-DGSI").unwrap().clone();
    assert_eq!(d.ladder, LadderStep::Reminded as i32);
    assert!(d.next_step_at.is_none());
    Ok(())
}

#[tokio::test]
async fn an_undelivered_alert_still_escalates_to_the_observers() -> anyhow::Result<()> {
    let clock = ManualClock::new(truncate_ms(Utc::now()));
    let fed = federation(&clock, &["FR-DGSI"]).await?;
    let tr = fed.desk("TR-MIT").await?;
    let eu = fed.desk("EU-EUROPOL").await?;
    let id = tr.send(warning()).await?;
    clock.advance(Duration::hours(12) + Duration::minutes(1));
    let reminded = tr.wait_event(&id, pb::EventKind::Reminded).await?;
    assert!(
        reminded.detail.contains("never received"),
        "{}",
        reminded.detail
    );
    clock.advance(Duration::hours(6));
    let notice = eu.wait_event(&id, pb::EventKind::Escalated).await?;
    assert!(notice.detail.contains("undelivered"), "{}", notice.detail);
    Ok(())
}

#[tokio::test]
async fn steps_that_fell_while_the_originator_was_down_are_taken_at_start_in_order()
-> anyhow::Result<()> {
    let clock = ManualClock::new(truncate_ms(Utc::now()));
    let mut fed = federation(&clock, &[]).await?;
    let tr = fed.desk("TR-MIT").await?;
    let id = tr.send(warning()).await?;
    tr.wait_delivered(&id, "FR-DGSI").await?;
    fed.stop_node("TR-MIT").await?;
    clock.advance(Duration::days(2));
    fed.start_node("TR-MIT").await?;
    let tr = fed.desk("TR-MIT").await?;
    tr.wait_event(&id, pb::EventKind::Lapsed).await?;
    use pb::EventKind::*;
    tr.wait_events(
        &id,
        &[Submitted, Delivered, Overdue, Reminded, Escalated, Lapsed],
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn only_observers_take_notices_and_only_from_the_originator() -> anyhow::Result<()> {
    let clock = ManualClock::new(truncate_ms(Utc::now()));
    let fed = federation(&clock, &[]).await?;
    let notice = pb::EscalationNotice {
        id: tocsin_core::AlertId::generate().to_string(),
        alert_id: tocsin_core::AlertId::generate().to_string(),
        originator: "TR-MIT".into(),
        recipient: "FR-DGSI".into(),
        precedence: pb::Precedence::Flash as i32,
        category: "terrorism".into(),
        ..Default::default()
    };
    let env = fed
        .signer("TR-MIT")?
        .sign(NOTICE_PAYLOAD_TYPE, notice.encode_to_vec());
    // FR-DGSI is no observer.
    let err = fed
        .peer_client("TR-MIT", "FR-DGSI")?
        .notify_escalation(pb::NotifyEscalationRequest {
            notice: Some(env.clone()),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    // FR-DGSI cannot relay TR-MIT's notice to the observer.
    let err = fed
        .peer_client("FR-DGSI", "EU-EUROPOL")?
        .notify_escalation(pb::NotifyEscalationRequest {
            notice: Some(env.clone()),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    // From the originator to the observer, it is recorded (and only once).
    let mut to_eu = fed.peer_client("TR-MIT", "EU-EUROPOL")?;
    to_eu
        .notify_escalation(pb::NotifyEscalationRequest {
            notice: Some(env.clone()),
        })
        .await?;
    to_eu
        .notify_escalation(pb::NotifyEscalationRequest { notice: Some(env) })
        .await?;
    // The control: a later notice, whose event must come after any second
    // recording of the first.
    let control = pb::EscalationNotice {
        id: tocsin_core::AlertId::generate().to_string(),
        alert_id: tocsin_core::AlertId::generate().to_string(),
        ..notice.clone()
    };
    to_eu
        .notify_escalation(pb::NotifyEscalationRequest {
            notice: Some(
                fed.signer("TR-MIT")?
                    .sign(NOTICE_PAYLOAD_TYPE, control.encode_to_vec()),
            ),
        })
        .await?;
    let eu = fed.desk("EU-EUROPOL").await?;
    let events = eu
        .events_through("the control notice", |e| e.alert_id == control.alert_id)
        .await?;
    let got: Vec<_> = events
        .iter()
        .filter(|e| e.alert_id == notice.alert_id)
        .collect();
    assert_eq!(got.len(), 1, "{got:?}");
    Ok(())
}

#[tokio::test]
async fn no_reminder_is_signed_over_a_corrupt_digest() -> anyhow::Result<()> {
    let clock = ManualClock::new(truncate_ms(Utc::now()));
    let mut fed = federation(&clock, &[]).await?;
    let tr = fed.desk("TR-MIT").await?;
    let broken = tr.send(warning()).await?;
    let control = tr.send(warning()).await?;
    tr.wait_delivered(&broken, "FR-DGSI").await?;
    tr.wait_delivered(&control, "FR-DGSI").await?;
    // The stored digest of one alert loses its bytes: a reminder naming
    // the alert by it would name nothing (it used to name 32 zero bytes).
    fed.stop_node("TR-MIT").await?;
    let db = fed.data_dir("TR-MIT")?.join("tocsin.sqlite3");
    let changed = rusqlite::Connection::open(db)?
        .execute("UPDATE alerts SET digest = x'00' WHERE id = ?1", [&broken])?;
    assert_eq!(changed, 1);
    fed.start_node("TR-MIT").await?;
    let tr = fed.desk("TR-MIT").await?;

    // Both reminders fall due in the same pass: the control's is taken,
    // the other is not.
    clock.advance(Duration::hours(12) + Duration::minutes(1));
    let events = tr
        .events_through("the control's reminder", |e| {
            e.alert_id == control && e.kind == pb::EventKind::Reminded as i32
        })
        .await?;
    assert!(
        !kinds(&events, &broken).contains(&pb::EventKind::Reminded),
        "{:?}",
        kinds(&events, &broken)
    );
    let record = tr.alert(&broken).await?;
    assert_eq!(
        delivery(&record, "FR-DGSI").unwrap().ladder,
        pb::LadderStep::None as i32
    );
    Ok(())
}
