//! Triage through the real stack: what FR-DGSI owes, ranked by risk with
//! the reasons, from alerts and a hit report of three agencies. The rule
//! itself is unit-tested in `tocsin-triage`; this checks the node feeds it
//! what it knows of each linked subject.

use std::sync::Arc;

use chrono::{Duration, Utc};
use tocsin_core::Clock;
use tocsin_core::clock::{ManualClock, truncate_ms};
use tocsin_testkit::{
    AlertBuilder, DeadlineFlag, Person, Precedence, Screen, TestFederation, WatchEntry,
};

fn about(name: &str, dob: &str, precedence: Precedence, grading: (char, u8)) -> AlertBuilder {
    AlertBuilder::to(["FR-DGSI"])
        .precedence(precedence)
        .grading(grading.0, grading.1)
        .person(Person::named(name).born(dob))
}

#[tokio::test]
async fn fr_dgsi_sees_the_riskiest_first_and_why() -> anyhow::Result<()> {
    let clock = ManualClock::new(truncate_ms(Utc::now()));
    let fed = TestFederation::builder()
        .agencies(["TR-MIT", "IQ-INIS", "BE-VSSE", "FR-DGSI"])
        .clock(Arc::new(clock.clone()))
        .start()
        .await?;
    let tr = fed.desk("TR-MIT").await?;
    let iq = fed.desk("IQ-INIS").await?;
    let be = fed.desk("BE-VSSE").await?;
    let fr = fed.desk("FR-DGSI").await?;

    // Two notices from one agency about one man: one source, twice.
    let mit = tr
        .send(about(
            "Ismaël Omar Mostefaï",
            "1985-11-21",
            Precedence::Priority,
            ('C', 3),
        ))
        .await?;
    let mit2 = tr
        .send(about(
            "MOSTEFAI Ismael Omar",
            "1985-11-21",
            Precedence::Priority,
            ('C', 3),
        ))
        .await?;
    // Two agencies about another: corroboration.
    let abaaoud_tr = tr
        .send(about(
            "Abdelhamid Abaaoud",
            "1987-04-08",
            Precedence::Priority,
            ('C', 3),
        ))
        .await?;
    let abaaoud_iq = iq
        .send(about(
            "Abaaoud Abdelhamid",
            "1987-04-08",
            Precedence::Priority,
            ('C', 3),
        ))
        .await?;
    // A ROUTINE alert about nobody else, and a routine hit report.
    let routine = iq
        .send(about(
            "Jean Dupont",
            "1970-01-01",
            Precedence::Routine,
            ('C', 3),
        ))
        .await?;
    fr.publish(WatchEntry::person("FR-S-1", "Salah Abdeslam").to(["BE-VSSE"]))
        .await?;
    be.wait_synced("FR-DGSI", 1).await?;
    let hit = be
        .wait_hit_report(
            Screen::of(Person::named("Salah Abdeslam")).seen("Brussels", clock.now()),
            "FR-DGSI",
            "FR-S-1",
        )
        .await?
        .hit_report_id;
    for (desk, id) in [
        (&tr, &mit),
        (&tr, &mit2),
        (&tr, &abaaoud_tr),
        (&iq, &abaaoud_iq),
        (&iq, &routine),
        (&be, &hit),
    ] {
        desk.wait_delivered(id, "FR-DGSI").await?;
    }

    let items = fr.triage().await?;
    let id = |i: &tocsin_proto::pb::TriageItem| {
        i.record
            .as_ref()
            .and_then(|r| r.alert.as_ref())
            .map(|a| a.id.clone())
            .unwrap_or_default()
    };
    let order: Vec<String> = items.iter().map(id).collect();
    // The corroborated PRIORITY alerts are raised to IMMEDIATE and lead,
    // soonest due first. Then the PRIORITY tier: the hit report, raised
    // from ROUTINE by the hit, ahead of TR-MIT's two notices (one agency:
    // no corroboration, nothing raises them), which follow by deadline.
    // The plain ROUTINE alert is last.
    assert_eq!(
        order,
        [
            abaaoud_tr.clone(),
            abaaoud_iq.clone(),
            hit.clone(),
            mit.clone(),
            mit2.clone(),
            routine.clone()
        ]
    );
    let first = &items[0];
    assert_eq!(first.tier, tocsin_proto::pb::Precedence::Immediate as i32);
    assert_eq!(first.corroborating_agencies, ["IQ-INIS", "TR-MIT"]);
    assert!(
        first
            .reasons_text
            .contains("2 agencies on this subject (IQ-INIS, TR-MIT)"),
        "{}",
        first.reasons_text
    );
    assert_eq!(items[3].corroborating_agencies, ["TR-MIT"]);
    assert!(
        !items[3].reasons_text.contains("agencies"),
        "{}",
        items[3].reasons_text
    );
    assert_eq!(items[2].tier, tocsin_proto::pb::Precedence::Priority as i32);
    assert!(
        items[2].reasons_text.contains("1 watchlist hit"),
        "{}",
        items[2].reasons_text
    );

    // Once both of TR-MIT's notices are overdue, REPEATED_UNANSWERED raises
    // them; overdue, they stay below what can still be answered in time.
    clock.advance(Duration::hours(13));
    tr.wait_flag(&mit2, "FR-DGSI", DeadlineFlag::Overdue)
        .await?;
    fr.wait_subject_flag_where("a flag on Mostefaï", |f| f.label.contains("Mostef"))
        .await?;
    let fresh = iq
        .send(about(
            "Someone New",
            "1990-01-01",
            Precedence::Immediate,
            ('B', 2),
        ))
        .await?;
    iq.wait_delivered(&fresh, "FR-DGSI").await?;
    let items = fr.triage().await?;
    assert_eq!(
        id(&items[0]),
        fresh,
        "{:?}",
        items.iter().map(|i| &i.reasons_text).collect::<Vec<_>>()
    );
    assert_eq!(items[0].tier, tocsin_proto::pb::Precedence::Flash as i32);
    let notice = items
        .iter()
        .find(|i| id(i) == mit)
        .expect("TR-MIT's notice");
    assert!(notice.repeated_unanswered);
    assert!(
        notice.reasons_text.contains("REPEATED_UNANSWERED"),
        "{}",
        notice.reasons_text
    );
    assert!(
        notice.reasons_text.contains("overdue by"),
        "{}",
        notice.reasons_text
    );

    // Answered, an item is no longer owed.
    fr.ack(&fresh, tocsin_proto::pb::Disposition::Actioned, "On it.")
        .await?;
    assert!(!fr.triage_ids().await?.contains(&fresh));
    Ok(())
}
