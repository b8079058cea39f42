//! Updates, supersedes and cancels (CAP 1.2 message types): a later alert
//! closes an earlier one on both nodes and stops its clock; a cancel must
//! itself be acknowledged.

use std::sync::Arc;

use chrono::{Duration, Utc};
use tocsin_core::clock::{ManualClock, truncate_ms};
use tocsin_proto::pb;
use tocsin_testkit::flow::{delivery, id_of};
use tocsin_testkit::{Desk, TestFederation, draft, sign_as};
use tonic::Code;

fn referencing(earlier: &str, kind: pb::reference::Kind, precedence: pb::Precedence) -> pb::Alert {
    let mut a = draft(&["FR-DGSI"]);
    a.precedence = precedence as i32;
    a.references = vec![pb::Reference {
        alert_id: earlier.to_owned(),
        kind: kind as i32,
    }];
    a
}

async fn wait_status(
    desk: &Desk,
    id: &str,
    status: pb::AlertStatus,
) -> anyhow::Result<pb::AlertRecord> {
    let expected = format!("alert {id} at {} to be {status:?}", desk.agency());
    tocsin_testkit::wait_for(tocsin_testkit::PATIENCE, &expected, || async {
        match desk.alert(id).await {
            Ok(r) if r.status == status as i32 => tocsin_testkit::Probe::Done(r),
            Ok(r) => tocsin_testkit::Probe::NotYet(format!("it is {:?}", r.status())),
            Err(e) => tocsin_testkit::Probe::NotYet(format!("it cannot be read: {e}")),
        }
    })
    .await
}

#[tokio::test]
async fn a_cancel_stops_the_clock_on_both_nodes_and_must_be_acknowledged() -> anyhow::Result<()> {
    let clock = ManualClock::new(truncate_ms(Utc::now()));
    let fed = TestFederation::builder()
        .clock(Arc::new(clock.clone()))
        .start()
        .await?;
    let tr = fed.desk("TR-MIT").await?;
    let fr = fed.desk("FR-DGSI").await?;
    let mut flash = draft(&["FR-DGSI"]);
    flash.precedence = pb::Precedence::Flash as i32;
    let original = id_of(&tr.submit(flash).await?);
    tr.wait_delivered(&original, "FR-DGSI").await?;

    let cancel = id_of(
        &tr.submit(referencing(
            &original,
            pb::reference::Kind::Cancel,
            pb::Precedence::Flash,
        ))
        .await?,
    );
    tr.wait_delivered(&cancel, "FR-DGSI").await?;
    let closed = wait_status(&tr, &original, pb::AlertStatus::Cancelled).await?;
    assert_eq!(closed.closed_by, cancel);
    // The original's ladder is stopped: no next step is shown for it.
    let stopped = delivery(&closed, "FR-DGSI").expect("a delivery to FR-DGSI");
    assert_eq!(stopped.next_step_at, None, "{stopped:?}");
    wait_status(&fr, &original, pb::AlertStatus::Cancelled).await?;

    // Past both deadlines: the original's clock was stopped; the cancel's runs.
    clock.advance(Duration::minutes(11));
    fr.wait_inbound_flag(&cancel, pb::DeadlineFlag::Overdue)
        .await?;
    assert_eq!(
        fr.alert(&original).await?.flag,
        pb::DeadlineFlag::None as i32
    );
    let owed: Vec<String> = fr.owed().await?.iter().map(id_of).collect();
    assert_eq!(
        owed,
        vec![cancel.clone()],
        "the cancel is owed, the cancelled alert is not"
    );

    // The recipient confirms it has stood down.
    fr.ack(&cancel, pb::Disposition::Actioned, "Stood down.")
        .await?;
    tr.wait_acks(&cancel, "FR-DGSI", 1).await?;
    let original_record = tr.alert(&original).await?;
    assert_eq!(
        delivery(&original_record, "FR-DGSI").unwrap().flag,
        pb::DeadlineFlag::None as i32
    );
    Ok(())
}

#[tokio::test]
async fn an_update_supersedes_the_earlier_alert_and_carries_its_own_deadline() -> anyhow::Result<()>
{
    let clock = ManualClock::new(truncate_ms(Utc::now()));
    let fed = TestFederation::builder()
        .clock(Arc::new(clock.clone()))
        .start()
        .await?;
    let tr = fed.desk("TR-MIT").await?;
    let fr = fed.desk("FR-DGSI").await?;
    let original = id_of(&tr.submit(draft(&["FR-DGSI"])).await?);
    tr.wait_delivered(&original, "FR-DGSI").await?;
    let update = tr
        .submit(referencing(
            &original,
            pb::reference::Kind::Update,
            pb::Precedence::Immediate,
        ))
        .await?;
    let created = update.alert.as_ref().unwrap().created_at.unwrap();
    assert_eq!(
        delivery(&update, "FR-DGSI")
            .unwrap()
            .due_at
            .map(|t| t.seconds),
        Some(created.seconds + 3600),
        "IMMEDIATE: one hour"
    );
    let update = id_of(&update);
    tr.wait_delivered(&update, "FR-DGSI").await?;
    wait_status(&tr, &original, pb::AlertStatus::Superseded).await?;
    let at_fr = wait_status(&fr, &original, pb::AlertStatus::Superseded).await?;
    assert_eq!(at_fr.closed_by, update);

    let awaiting: Vec<String> = tr.awaiting().await?.iter().map(id_of).collect();
    assert_eq!(awaiting, vec![update]);
    Ok(())
}

#[tokio::test]
async fn only_an_originator_closes_its_own_alerts() -> anyhow::Result<()> {
    let fed = TestFederation::builder()
        .agencies(["TR-MIT", "FR-DGSI", "BE-VSSE"])
        .start()
        .await?;
    let tr = fed.desk("TR-MIT").await?;
    let fr = fed.desk("FR-DGSI").await?;
    let original = id_of(&tr.submit(draft(&["FR-DGSI"])).await?);
    tr.wait_delivered(&original, "FR-DGSI").await?;

    // An operator cannot cancel another agency's alert ...
    let be = fed.desk("BE-VSSE").await?;
    let err = be
        .submit(referencing(
            &original,
            pb::reference::Kind::Cancel,
            pb::Precedence::Flash,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(
        err.message().contains("`references[0].alert_id`"),
        "{err:?}"
    );

    // ... nor can another agency's node, by delivering a cancel of its own.
    let (_, env) = sign_as(
        &fed.signer("BE-VSSE")?,
        referencing(
            &original,
            pb::reference::Kind::Cancel,
            pb::Precedence::Flash,
        ),
    );
    fed.peer_client("BE-VSSE", "FR-DGSI")?
        .deliver(pb::DeliverRequest { alert: Some(env) })
        .await?;
    assert_eq!(
        fr.alert(&original).await?.status,
        pb::AlertStatus::Active as i32
    );
    Ok(())
}
