//! Overdue is not the end: the originator reminds, then escalates (a
//! higher-precedence reminder and a notice to the observers), then marks the
//! delivery LAPSED. An acknowledgement stops the ladder.

use std::sync::Arc;

use chrono::{Duration, Utc};
use prost::Message;
use tocsin_core::clock::{ManualClock, truncate_ms};
use tocsin_proto::pb::operator_client::OperatorClient;
use tocsin_proto::{NOTICE_PAYLOAD_TYPE, pb};
use tocsin_testkit::{TestFederation, draft};
use tocsin_tests::*;
use tonic::Code;
use tonic::transport::Channel;

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

/// Waits until `op`'s node has an event of `kind` about `alert`; returns
/// the first such event in log order.
async fn wait_event(
    op: &OperatorClient<Channel>,
    alert: &str,
    kind: pb::EventKind,
) -> anyhow::Result<pb::Event> {
    // One stream: the stored events in order, then new ones as they come.
    let mut stream = op
        .clone()
        .watch_events(pb::WatchEventsRequest { after_id: Some(0) })
        .await?
        .into_inner();
    let found = tokio::time::timeout(PATIENCE, async {
        while let Some(e) = stream.message().await? {
            if e.alert_id == alert && e.kind == kind as i32 {
                return Ok(e);
            }
        }
        anyhow::bail!("the event stream ended before a {kind:?} event for {alert}")
    })
    .await;
    match found {
        Ok(result) => result,
        Err(_) => {
            anyhow::bail!("timed out after {PATIENCE:?} waiting for a {kind:?} event for {alert}")
        }
    }
}

#[tokio::test]
async fn the_ladder_reminds_escalates_to_observers_and_ends_lapsed() -> anyhow::Result<()> {
    let clock = ManualClock::new(truncate_ms(Utc::now()));
    let fed = federation(&clock, &[]).await?;
    let mut tr = fed.operator("TR-MIT").await?;
    let mut fr = fed.operator("FR-DGSI").await?;
    let eu = fed.operator("EU-EUROPOL").await?;
    // PRIORITY: 12 h to answer; remind at 12 h, escalate at 18 h, unanswered at 24 h.
    let id = id_of(&submit(&mut tr, draft(&["FR-DGSI"])).await?);
    wait_delivered(&tr, &id, "FR-DGSI").await?;

    clock.advance(Duration::hours(12) + Duration::minutes(1));
    wait_event(&tr, &id, pb::EventKind::Reminded).await?;
    wait_event(&fr, &id, pb::EventKind::Reminded).await?;
    let record = get(&mut tr, &id).await?;
    assert_eq!(
        delivery(&record, "FR-DGSI").unwrap().ladder,
        pb::LadderStep::Reminded as i32
    );
    assert!(delivery(&record, "FR-DGSI").unwrap().next_step_at.is_some());

    clock.advance(Duration::hours(6));
    let escalated = wait_event(&tr, &id, pb::EventKind::Escalated).await?;
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
    let at_fr = wait_event(&fr, &id, pb::EventKind::Escalated).await?;
    assert!(at_fr.detail.contains("now IMMEDIATE"), "{}", at_fr.detail);
    let notice = wait_event(&eu, &id, pb::EventKind::Escalated).await?;
    assert_eq!(
        notice.agency, "FR-DGSI",
        "the observer learns who did not answer"
    );
    assert!(notice.detail.contains("TR-MIT"), "{}", notice.detail);
    assert_eq!(get(&mut fr, &id).await?.reminders, 2);

    clock.advance(Duration::hours(6));
    wait_event(&tr, &id, pb::EventKind::Lapsed).await?;
    let d = delivery(&get(&mut tr, &id).await?, "FR-DGSI")
        .unwrap()
        .clone();
    assert_eq!(d.ladder, pb::LadderStep::Lapsed as i32);
    assert!(d.next_step_at.is_none());

    use pb::EventKind::*;
    assert_eq!(
        kinds(&events(&tr).await?, &id),
        vec![Submitted, Delivered, Overdue, Reminded, Escalated, Lapsed]
    );
    // The observer holds no alert content: it never received the alert.
    let mut eu = eu;
    assert_eq!(
        get(&mut eu, &id)
            .await
            .unwrap_err()
            .downcast_ref::<tonic::Status>()
            .map(|s| s.code()),
        Some(Code::NotFound)
    );
    Ok(())
}

#[tokio::test]
async fn an_acknowledgement_stops_the_ladder() -> anyhow::Result<()> {
    let clock = ManualClock::new(truncate_ms(Utc::now()));
    let fed = federation(&clock, &[]).await?;
    let mut tr = fed.operator("TR-MIT").await?;
    let mut fr = fed.operator("FR-DGSI").await?;
    let id = id_of(&submit(&mut tr, draft(&["FR-DGSI"])).await?);
    wait_delivered(&tr, &id, "FR-DGSI").await?;
    clock.advance(Duration::hours(12) + Duration::minutes(1));
    wait_event(&fr, &id, pb::EventKind::Reminded).await?;

    ack(&mut fr, &id, pb::Disposition::Actioned, "On it.").await?;
    wait_acks(&tr, &id, "FR-DGSI", 1).await?;
    clock.advance(Duration::hours(24));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let d = delivery(&get(&mut tr, &id).await?, "FR-DGSI")
        .unwrap()
        .clone();
    assert_eq!(d.ladder, pb::LadderStep::Reminded as i32);
    assert!(d.next_step_at.is_none());
    let k = kinds(&events(&tr).await?, &id);
    assert!(
        !k.contains(&pb::EventKind::Escalated) && !k.contains(&pb::EventKind::Lapsed),
        "{k:?}"
    );
    Ok(())
}

#[tokio::test]
async fn an_undelivered_alert_still_escalates_to_the_observers() -> anyhow::Result<()> {
    let clock = ManualClock::new(truncate_ms(Utc::now()));
    let fed = federation(&clock, &["FR-DGSI"]).await?;
    let mut tr = fed.operator("TR-MIT").await?;
    let eu = fed.operator("EU-EUROPOL").await?;
    let id = id_of(&submit(&mut tr, draft(&["FR-DGSI"])).await?);
    clock.advance(Duration::hours(12) + Duration::minutes(1));
    let reminded = wait_event(&tr, &id, pb::EventKind::Reminded).await?;
    assert!(
        reminded.detail.contains("never received"),
        "{}",
        reminded.detail
    );
    clock.advance(Duration::hours(6));
    let notice = wait_event(&eu, &id, pb::EventKind::Escalated).await?;
    assert!(notice.detail.contains("undelivered"), "{}", notice.detail);
    Ok(())
}

#[tokio::test]
async fn steps_that_fell_while_the_originator_was_down_are_taken_at_start_in_order()
-> anyhow::Result<()> {
    let clock = ManualClock::new(truncate_ms(Utc::now()));
    let mut fed = federation(&clock, &[]).await?;
    let mut tr = fed.operator("TR-MIT").await?;
    let id = id_of(&submit(&mut tr, draft(&["FR-DGSI"])).await?);
    wait_delivered(&tr, &id, "FR-DGSI").await?;
    fed.stop_node("TR-MIT").await?;
    clock.advance(Duration::days(2));
    fed.start_node("TR-MIT").await?;
    let tr = fed.operator("TR-MIT").await?;
    wait_event(&tr, &id, pb::EventKind::Lapsed).await?;
    use pb::EventKind::*;
    assert_eq!(
        kinds(&events(&tr).await?, &id),
        vec![Submitted, Delivered, Overdue, Reminded, Escalated, Lapsed]
    );
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
    let eu = fed.operator("EU-EUROPOL").await?;
    let got: Vec<_> = events(&eu)
        .await?
        .into_iter()
        .filter(|e| e.alert_id == notice.alert_id)
        .collect();
    assert_eq!(got.len(), 1);
    Ok(())
}
