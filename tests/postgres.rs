//! Agencies whose nodes keep their stores in PostgreSQL (`[store] url`),
//! each in a database of its own on a private server the test starts
//! (`tocsin_testkit::postgres`): the same flows as on SQLite, through the
//! same gRPC over mutual TLS. Delivery, receipt and acknowledgement;
//! nothing lost across a restart; deadlines flagged and escalated on a
//! manual clock; a watchlist synced and a hit reported to its owner.
//!
//! Without PostgreSQL binaries the tests print SKIPPED and pass, unless
//! `TOCSIN_REQUIRE_POSTGRES=1` (CI), when they fail.

use std::sync::Arc;

use chrono::{Duration, Utc};
use tocsin_core::clock::{ManualClock, truncate_ms};
use tocsin_core::federation::Escalation;
use tocsin_proto::pb;
use tocsin_testkit::PATIENCE;
use tocsin_testkit::flow::{delivery, kinds};
use tocsin_testkit::{
    AlertBuilder, DeadlineFlag, Person, Precedence, Screen, TestFederation, WatchEntry,
};

fn flash(to: &[&str]) -> AlertBuilder {
    AlertBuilder::to(to.iter().copied())
        .precedence(Precedence::Flash)
        .person(Person::named("Ismaël Omar Mostefaï").born("1985-11-21"))
}

#[tokio::test]
async fn an_agency_on_postgres_delivers_answers_and_keeps_it_across_a_restart() -> anyhow::Result<()>
{
    let Some(server) = tocsin_testkit::postgres()? else {
        return Ok(());
    };
    let mut fed = TestFederation::builder().postgres(server).start().await?;
    let tr = fed.desk("TR-MIT").await?;
    let id = tr.send(flash(&["FR-DGSI"])).await?;
    let record = tr.wait_delivered(&id, "FR-DGSI").await?;
    let receipt = delivery(&record, "FR-DGSI").unwrap().receipt.clone();
    assert!(receipt.is_some());

    // The receiver's database keeps what it receipted across a restart.
    fed.restart_node("FR-DGSI").await?;
    let fr = fed.desk("FR-DGSI").await?;
    let stored = fr.alert(&id).await?;
    assert_eq!(stored.envelope, record.envelope);
    assert_eq!(stored.receipt, receipt);
    assert_eq!(fr.owed().await?.len(), 1);
    // It is in FR-DGSI's database, not in a SQLite file: a second handle
    // on that database (as another front node would hold) reads it.
    let data = fed.data_dir("FR-DGSI")?;
    assert!(!tocsin_store::Store::database_path(&data).exists());
    let url = fed
        .store_url("FR-DGSI")?
        .expect("FR-DGSI's store is in PostgreSQL");
    let other = tocsin_store::Store::connect(&url, Default::default()).await?;
    let row = other.alert(&id).await?.expect("the alert, in PostgreSQL");
    assert_eq!(row.originator, "TR-MIT");
    other.close().await;

    // Its answer reaches the originator, and both logs tell the story.
    fr.ack(&id, pb::Disposition::Actioned, "watch placed")
        .await?;
    let ack = tr.wait_acknowledged(&id, "FR-DGSI").await?;
    assert_eq!(
        ack.acknowledgement.map(|a| a.disposition),
        Some(pb::Disposition::Actioned as i32)
    );
    assert!(fr.owed().await?.is_empty());
    let events = tr
        .events_through("the acknowledgement", |e| {
            e.kind == pb::EventKind::Acknowledged as i32
        })
        .await?;
    let seen = kinds(&events, &id);
    assert!(
        seen.contains(&pb::EventKind::Delivered) && seen.contains(&pb::EventKind::Acknowledged),
        "{seen:?}"
    );
    Ok(())
}

#[tokio::test]
async fn deadlines_on_postgres_flag_both_ends_and_climb_the_ladder() -> anyhow::Result<()> {
    let Some(server) = tocsin_testkit::postgres()? else {
        return Ok(());
    };
    let clock = ManualClock::new(truncate_ms(Utc::now()));
    let fed = TestFederation::builder()
        .postgres(server)
        .clock(Arc::new(clock.clone()))
        .escalation(Escalation {
            remind: 0.5,
            escalate: 1000.0,
            lapse: 1000.0,
        })
        .start()
        .await?;
    let (tr, fr) = (fed.desk("TR-MIT").await?, fed.desk("FR-DGSI").await?);
    let id = tr.send(flash(&["FR-DGSI"])).await?;
    tr.wait_delivered(&id, "FR-DGSI").await?;

    // FLASH: ten minutes. Eleven later, both ends hold the flag.
    clock.advance(Duration::minutes(11));
    tr.wait_flag(&id, "FR-DGSI", DeadlineFlag::Overdue).await?;
    fr.wait_inbound_flag(&id, DeadlineFlag::Overdue).await?;

    // Half the deadline past it, the reminder is sent and received.
    clock.advance(Duration::minutes(5));
    tr.wait_step(&id, "FR-DGSI", pb::LadderStep::Reminded)
        .await?;
    tocsin_testkit::wait_until(PATIENCE, "FR-DGSI to hold the reminder", || async {
        fr.alert(&id).await.ok().filter(|r| r.reminders >= 1)
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_watchlist_on_postgres_is_synced_and_a_hit_reported_to_its_owner() -> anyhow::Result<()> {
    let Some(server) = tocsin_testkit::postgres()? else {
        return Ok(());
    };
    let fed = TestFederation::builder()
        .agencies(["BE-VSSE", "FR-DGSI"])
        .postgres(server)
        .start()
        .await?;
    let (be, fr) = (fed.desk("BE-VSSE").await?, fed.desk("FR-DGSI").await?);
    be.publish(
        WatchEntry::of(
            "BE-2015-017",
            Person::named("Salah Abdeslam").born("1989-09-15"),
        )
        .to(["FR-DGSI"])
        .reason("brother of a suspected Islamic State member")
        .hit_precedence(Precedence::Immediate),
    )
    .await?;
    fr.wait_synced("BE-VSSE", 1).await?;

    let seen = truncate_ms(Utc::now());
    let screen = Screen::of(Person::named("ABDESLAM Salah").born("1989-09-15"))
        .seen("A2 near Cambrai", seen)
        .reference("GN-59-0914");
    let m = fr.wait_hit_report(screen, "BE-VSSE", "BE-2015-017").await?;
    fr.wait_delivered(&m.hit_report_id, "BE-VSSE").await?;
    let report = be.alert(&m.hit_report_id).await?;
    let hit = report
        .alert
        .as_ref()
        .and_then(|a| a.hit.as_ref())
        .expect("a hit report");
    assert_eq!(hit.entry_ref, "BE-2015-017");
    assert_eq!(hit.seen_place, "A2 near Cambrai");

    be.ack(&m.hit_report_id, pb::Disposition::Actioned, "team sent")
        .await?;
    fr.wait_acknowledged(&m.hit_report_id, "BE-VSSE").await?;
    Ok(())
}
