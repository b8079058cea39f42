//! Hit reports: a partner's screen that hits an owner's watchlist entry
//! sends the owner a signed report, which enters the acknowledgement cycle
//! like any alert (receipt, deadline, OVERDUE, the ladder, observers), is
//! linked to the subject at the owner, counts towards REPEATED_UNANSWERED,
//! and whose acknowledgement comes back to the reporter. The same person
//! screened again within the window is one report, not two.
//!
//! The seeds' case: Salah Abdeslam, listed, was checked in Austria in
//! September 2015 and stopped near Cambrai on the morning of 14 November
//! 2015, and no one told the service that had listed him.

use std::sync::Arc;

use chrono::{Duration, Utc};
use tocsin_core::Clock;
use tocsin_core::clock::{ManualClock, truncate_ms};
use tocsin_proto::pb;
use tocsin_testkit::flow::id_of;
use tocsin_testkit::{
    AlertBuilder, DeadlineFlag, Desk, Person, Precedence, Screen, TestFederation, WatchEntry,
    match_of,
};
use tonic::Code;

/// BE-VSSE lists Salah Abdeslam for FR-DGSI, asking for a report of
/// `precedence` on a hit.
async fn list_abdeslam(be: &Desk, fr: &Desk, precedence: Precedence) -> anyhow::Result<()> {
    be.publish(
        WatchEntry::of(
            "BE-2015-017",
            Person::named("Salah Abdeslam")
                .born("1989-09-15")
                .nationality("FR"),
        )
        .to(["FR-DGSI"])
        .reason("brother of a suspected Islamic State member; radicalised")
        .hit_precedence(precedence),
    )
    .await?;
    fr.wait_synced("BE-VSSE", 1).await?;
    Ok(())
}

fn cambrai(at: chrono::DateTime<Utc>) -> Screen {
    Screen::of(Person::named("ABDESLAM Salah").born("1989-09-15"))
        .seen("A2 near Cambrai", at)
        .reference("GN-59-0914")
}

#[tokio::test]
async fn a_hit_report_reaches_the_owner_and_its_answer_comes_back() -> anyhow::Result<()> {
    let fed = TestFederation::builder()
        .agencies(["BE-VSSE", "FR-DGSI"])
        .start()
        .await?;
    let (be, fr) = (fed.desk("BE-VSSE").await?, fed.desk("FR-DGSI").await?);
    list_abdeslam(&be, &fr, Precedence::Immediate).await?;

    let seen = truncate_ms(Utc::now());
    let m = fr
        .wait_hit_report(cambrai(seen), "BE-VSSE", "BE-2015-017")
        .await?;
    assert!(!m.hit_report_repeated);
    let id = m.hit_report_id.clone();
    fr.wait_delivered(&id, "BE-VSSE").await?;

    // The owner holds a signed report of what was seen, by whom, and how
    // well it matched which of its entries.
    let record = be.alert(&id).await?;
    let alert = record.alert.as_ref().expect("the report");
    assert_eq!(alert.originator, "FR-DGSI");
    assert_eq!(alert.recipients, ["BE-VSSE"]);
    assert_eq!(alert.category, "watchlist-hit");
    assert_eq!(alert.precedence, pb::Precedence::Immediate as i32);
    let hit = alert.hit.as_ref().expect("a hit");
    assert_eq!(hit.entry_owner, "BE-VSSE");
    assert_eq!(hit.entry_ref, "BE-2015-017");
    assert_eq!(hit.entry_seq, 1);
    assert_eq!(hit.seen_place, "A2 near Cambrai");
    assert_eq!(hit.screen_ref, "GN-59-0914");
    assert_eq!(hit.seen_at, Some(tocsin_core::to_timestamp(seen)));
    assert_eq!(hit.score, m.score);
    assert_eq!(hit.requested_action, "DISCREET_CHECK");
    assert_eq!(
        hit.screened.as_ref().map(|p| p.names.clone()),
        Some(vec!["ABDESLAM Salah".to_owned()])
    );
    assert!(!hit.reasons.is_empty());
    assert!(alert.text.contains("A2 near Cambrai"), "{}", alert.text);

    // Linked to the subject at the owner, beside its alerts about him.
    let warning = fr
        .send(
            AlertBuilder::to(["BE-VSSE"])
                .precedence(Precedence::Routine)
                .person(Person::named("Salah Abdeslam").born("1989-09-15")),
        )
        .await?;
    fr.wait_delivered(&warning, "BE-VSSE").await?;
    let subject = be.subject("salah ABDESLAM").await?;
    let ids: Vec<String> = subject.alerts.iter().map(id_of).collect();
    assert_eq!(ids, [id.clone(), warning.clone()]);
    assert!(subject.alerts[0].alert.as_ref().unwrap().hit.is_some());
    assert!(subject.alerts[1].alert.as_ref().unwrap().hit.is_none());

    // Screened again at the next desk: the same report, not a second one.
    let again = fr.screen(cambrai(seen)).await?;
    let m2 = match_of(&again, "BE-VSSE", "BE-2015-017").expect("a match");
    assert_eq!(m2.hit_report_id, id);
    assert!(m2.hit_report_repeated);
    let reports: Vec<String> = fr
        .outbox()
        .await?
        .iter()
        .filter(|r| r.alert.as_ref().is_some_and(|a| a.hit.is_some()))
        .map(id_of)
        .collect();
    assert_eq!(reports, std::slice::from_ref(&id));

    // The owner's answer goes back to the reporting agency.
    be.ack(
        &id,
        pb::Disposition::Actioned,
        "Discreet check noted; thank you.",
    )
    .await?;
    let acked = fr.wait_acks(&id, "BE-VSSE", 1).await?;
    let acks = &tocsin_testkit::delivery(&acked, "BE-VSSE")
        .expect("the delivery")
        .acknowledgements;
    let ack = acks[0]
        .acknowledgement
        .as_ref()
        .expect("the acknowledgement");
    assert_eq!(ack.disposition, pb::Disposition::Actioned as i32);
    assert_eq!(ack.recipient, "BE-VSSE");
    Ok(())
}

#[tokio::test]
async fn an_unanswered_hit_report_goes_up_the_ladder_and_repeats_are_flagged() -> anyhow::Result<()>
{
    let clock = ManualClock::new(truncate_ms(Utc::now()));
    let fed = TestFederation::builder()
        .agencies(["BE-VSSE", "FR-DGSI", "AT-BVT", "EU-EUROPOL"])
        .observers(["EU-EUROPOL"])
        .clock(Arc::new(clock.clone()))
        .start()
        .await?;
    let be = fed.desk("BE-VSSE").await?;
    let fr = fed.desk("FR-DGSI").await?;
    let at = fed.desk("AT-BVT").await?;
    let eu = fed.desk("EU-EUROPOL").await?;
    // PRIORITY: 12 h to answer; reminded at 12 h, escalated at 18 h. The
    // entry gives no date of birth: the reports are linked by the entry.
    be.publish(
        WatchEntry::person("BE-2015-017", "Salah Abdeslam")
            .to(["FR-DGSI", "AT-BVT"])
            .hit_precedence(Precedence::Priority),
    )
    .await?;
    at.wait_synced("BE-VSSE", 1).await?;
    fr.wait_synced("BE-VSSE", 1).await?;

    // September: a road check in Austria.
    let austria = at
        .wait_hit_report(
            Screen::of(Person::named("Salah Abdeslam")).seen("Vienna border road", clock.now()),
            "BE-VSSE",
            "BE-2015-017",
        )
        .await?
        .hit_report_id;
    at.wait_delivered(&austria, "BE-VSSE").await?;
    clock.advance(Duration::hours(12) + Duration::minutes(1));
    at.wait_flag(&austria, "BE-VSSE", DeadlineFlag::Overdue)
        .await?;
    be.wait_event(&austria, pb::EventKind::Reminded).await?;
    clock.advance(Duration::hours(6));
    let notice = eu.wait_event(&austria, pb::EventKind::Escalated).await?;
    assert_eq!(
        notice.agency, "BE-VSSE",
        "the observer learns who is silent"
    );

    // November: stopped near Cambrai; unanswered too.
    let cambrai = fr
        .wait_hit_report(cambrai(clock.now()), "BE-VSSE", "BE-2015-017")
        .await?
        .hit_report_id;
    fr.wait_delivered(&cambrai, "BE-VSSE").await?;
    clock.advance(Duration::hours(12) + Duration::minutes(1));
    fr.wait_flag(&cambrai, "BE-VSSE", DeadlineFlag::Overdue)
        .await?;

    // At the owner, two unanswered hit reports about one man are a pattern.
    let flag = be
        .wait_subject_flag_where("a flag on Abdeslam", |f| f.label.contains("Abdeslam"))
        .await?;
    assert_eq!(flag.recipient, "BE-VSSE");
    let mut ids = flag.alert_ids.clone();
    ids.sort();
    let mut expected = vec![austria.clone(), cambrai.clone()];
    expected.sort();
    assert_eq!(ids, expected);
    Ok(())
}

#[tokio::test]
async fn a_stricter_threshold_holds_back_a_weak_hit_and_a_looser_one_is_refused()
-> anyhow::Result<()> {
    let fed = TestFederation::builder()
        .agencies(["BE-VSSE", "FR-DGSI"])
        .start()
        .await?;
    let (be, fr) = (fed.desk("BE-VSSE").await?, fed.desk("FR-DGSI").await?);
    let err = be
        .publish(
            WatchEntry::person("BE-LOOSE", "Mohamed Abrini")
                .to(["FR-DGSI"])
                .hit_threshold(0.5),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("hit_threshold"), "{}", err.message());

    be.publish(
        WatchEntry::person("BE-STRICT", "Mohamed Abrini")
            .to(["FR-DGSI"])
            .hit_threshold(1.0),
    )
    .await?;
    fr.wait_synced("BE-VSSE", 1).await?;
    // A misspelling matches, but below the owner's threshold: no hit, no
    // report.
    let m = fr
        .wait_match_where(
            Person::named("Mohammed Abrini"),
            "BE-VSSE",
            "BE-STRICT",
            "below 1.0",
            |m| m.score < 1.0,
        )
        .await?;
    assert!(!m.hit, "{m:?}");
    assert!(m.hit_report_id.is_empty());
    assert!(fr.outbox().await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_screen_an_alert_could_not_hold_still_reports_within_bounds() -> anyhow::Result<()> {
    let fed = TestFederation::builder()
        .agencies(["BE-VSSE", "FR-DGSI"])
        .start()
        .await?;
    let (be, fr) = (fed.desk("BE-VSSE").await?, fed.desk("FR-DGSI").await?);
    list_abdeslam(&be, &fr, Precedence::Routine).await?;
    // A place longer than an alert allows, and a blank alias: a screen
    // takes them, and the report keeps what fits.
    let place = "Autoroute A2, ".repeat(30);
    let mut person: tocsin_proto::pb::Person = Person::named("Salah ABDESLAM").into();
    person.aliases = vec!["  ".into()];
    let request = tocsin_proto::pb::ScreenRequest {
        person: Some(person),
        seen_place: place.clone(),
        ..Default::default()
    };
    let m = fr
        .wait_hit_report(request, "BE-VSSE", "BE-2015-017")
        .await?;
    assert!(m.hit_report_error.is_empty(), "{}", m.hit_report_error);
    fr.wait_delivered(&m.hit_report_id, "BE-VSSE").await?;
    let record = be.alert(&m.hit_report_id).await?;
    let hit = record.alert.unwrap().hit.unwrap();
    assert_eq!(hit.seen_place.len(), 256);
    assert!(place.starts_with(&hit.seen_place));
    assert_eq!(hit.screened.unwrap().aliases, Vec::<String>::new());
    Ok(())
}

#[tokio::test]
async fn an_operator_cannot_write_a_hit_report() -> anyhow::Result<()> {
    let fed = TestFederation::builder()
        .agencies(["BE-VSSE", "FR-DGSI"])
        .start()
        .await?;
    let fr = fed.desk("FR-DGSI").await?;
    let mut forged = AlertBuilder::to(["BE-VSSE"])
        .category("watchlist-hit")
        .person(Person::named("Salah Abdeslam"))
        .build();
    forged.hit = Some(pb::WatchlistHit {
        entry_owner: "BE-VSSE".into(),
        entry_ref: "BE-2015-017".into(),
        screened: Some(Person::named("Salah Abdeslam").into()),
        score: 1.0,
        ..Default::default()
    });
    let err = fr.submit(forged).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("`hit`"), "{}", err.message());
    Ok(())
}
