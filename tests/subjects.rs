//! Repeated unanswered warnings about one subject are linked and flagged:
//! the pattern of December 2014 and June 2015, when Turkey twice warned
//! France about a future Bataclan bomber and heard nothing back.
//!
//! Where a test asserts that no flag was raised, a control pair of
//! unanswered warnings about someone else goes overdue in the same clock
//! step: once the control's flag is there, the check that would have
//! raised the other has run.

use std::sync::Arc;

use chrono::{Duration, Utc};
use tocsin_core::clock::{ManualClock, truncate_ms};
use tocsin_proto::pb;
use tocsin_testkit::flow::id_of;
use tocsin_testkit::{AlertBuilder, DeadlineFlag, Desk, Person, Precedence, TestFederation};
use tonic::Code;

/// A ROUTINE warning (7 days to answer) to FR-DGSI about a person.
fn about(name: &str, dob: &str, passport: Option<&str>) -> AlertBuilder {
    let mut person = Person::named(name).born(dob);
    if let Some(number) = passport {
        person = person.document("passport", number, "FR");
    }
    AlertBuilder::to(["FR-DGSI"])
        .precedence(Precedence::Routine)
        .person(person)
}

const CONTROL: &str = "Control Subject";

/// Sends the control pair from `desk`.
async fn send_control(desk: &Desk) -> anyhow::Result<()> {
    for _ in 0..2 {
        let id = desk.send(about(CONTROL, "1990-01-01", None)).await?;
        desk.wait_delivered(&id, "FR-DGSI").await?;
    }
    Ok(())
}

/// Waits until `desk` holds a flag whose label names `who`.
async fn flag_on(desk: &Desk, who: &str) -> anyhow::Result<pb::SubjectFlag> {
    desk.wait_subject_flag_where(&format!("a flag on {who}"), |f| f.label.contains(who))
        .await
}

/// Waits for the control's flag at `desk`; returns every flag's label
/// other than the control's.
async fn flags_besides_control(desk: &Desk) -> anyhow::Result<Vec<String>> {
    flag_on(desk, CONTROL).await?;
    Ok(desk
        .subject_flags()
        .await?
        .into_iter()
        .map(|f| f.label)
        .filter(|l| !l.contains(CONTROL))
        .collect())
}

#[tokio::test]
async fn two_unanswered_warnings_about_one_man_are_flagged_on_both_nodes() -> anyhow::Result<()> {
    let clock = ManualClock::new(truncate_ms(Utc::now()));
    let fed = TestFederation::builder()
        .clock(Arc::new(clock.clone()))
        .start()
        .await?;
    let (tr, fr) = (fed.desk("TR-MIT").await?, fed.desk("FR-DGSI").await?);

    // December 2014: the first notice. A week passes without an answer.
    let first = tr
        .send(about("Ismaël Omar Mostefaï", "1985-11-21", None))
        .await?;
    tr.wait_delivered(&first, "FR-DGSI").await?;
    send_control(&tr).await?;
    clock.advance(Duration::days(8));
    tr.wait_flag(&first, "FR-DGSI", DeadlineFlag::Overdue)
        .await?;
    assert_eq!(
        flags_besides_control(&tr).await?,
        Vec::<String>::new(),
        "one unanswered warning is not yet a pattern"
    );

    // June 2015: the second, spelt differently. Another week of silence.
    let second = tr
        .send(about("MOSTEFAI, Ismael Omar", "1985-11-21", None))
        .await?;
    tr.wait_delivered(&second, "FR-DGSI").await?;
    clock.advance(Duration::days(8));

    for desk in [&tr, &fr] {
        let agency = desk.agency();
        let got = flag_on(desk, "Mostefa").await?;
        assert_eq!(got.recipient, "FR-DGSI", "{agency}");
        assert_eq!(
            got.alert_ids,
            vec![first.clone(), second.clone()],
            "{agency}"
        );
    }

    // The subject record links both, whatever the spelling asked for.
    let subject = fr.subject("ismael omar MOSTEFAÏ").await?;
    let ids: Vec<String> = subject.alerts.iter().map(id_of).collect();
    assert_eq!(ids, vec![first.clone(), second.clone()]);
    assert_eq!(subject.flags.len(), 1);
    let err = fr.subject("Somebody Else").await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    Ok(())
}

#[tokio::test]
async fn warnings_from_several_originators_add_up_at_the_recipient() -> anyhow::Result<()> {
    let clock = ManualClock::new(truncate_ms(Utc::now()));
    let fed = TestFederation::builder()
        .agencies(["TR-MIT", "IQ-INIS", "FR-DGSI"])
        .clock(Arc::new(clock.clone()))
        .start()
        .await?;
    let tr = fed.desk("TR-MIT").await?;
    let iq = fed.desk("IQ-INIS").await?;
    let fr = fed.desk("FR-DGSI").await?;
    // Same passport, different names: the document links them.
    let a = tr
        .send(about("Abdelhamid Abaaoud", "1987-04-08", Some("EH12-3456")))
        .await?;
    let b = iq
        .send(about("Abu Umar al-Baljiki", "1987-04-08", Some("eh123456")))
        .await?;
    tr.wait_delivered(&a, "FR-DGSI").await?;
    iq.wait_delivered(&b, "FR-DGSI").await?;
    send_control(&tr).await?;
    send_control(&iq).await?;
    clock.advance(Duration::days(8));

    // Named after one alert or the other: whichever went overdue first.
    let abaaoud = fr
        .wait_subject_flag_where("a flag on Abaaoud", |f| !f.label.contains(CONTROL))
        .await?;
    let mut expected = vec![a.clone(), b.clone()];
    expected.sort();
    let mut ids = abaaoud.alert_ids.clone();
    ids.sort();
    assert_eq!(ids, expected);
    // Each originator sees only its own warning: no pattern from there.
    assert_eq!(flags_besides_control(&tr).await?, Vec::<String>::new());
    assert_eq!(flags_besides_control(&iq).await?, Vec::<String>::new());
    Ok(())
}

#[tokio::test]
async fn answered_warnings_raise_no_flag() -> anyhow::Result<()> {
    let clock = ManualClock::new(truncate_ms(Utc::now()));
    let fed = TestFederation::builder()
        .clock(Arc::new(clock.clone()))
        .start()
        .await?;
    let (tr, fr) = (fed.desk("TR-MIT").await?, fed.desk("FR-DGSI").await?);
    // The first goes overdue and is answered late: it keeps its OVERDUE
    // flag as history, but it was answered.
    let first = tr
        .send(about("Ismaël Omar Mostefaï", "1985-11-21", None))
        .await?;
    tr.wait_delivered(&first, "FR-DGSI").await?;
    clock.advance(Duration::days(8));
    tr.wait_flag(&first, "FR-DGSI", DeadlineFlag::Overdue)
        .await?;
    fr.ack(&first, pb::Disposition::Actioned, "Under surveillance.")
        .await?;
    tr.wait_acks(&first, "FR-DGSI", 1).await?;

    // The second goes overdue too, with the control pair: one unanswered
    // warning is no pattern.
    let second = tr
        .send(about("Ismaël Omar Mostefaï", "1985-11-21", None))
        .await?;
    tr.wait_delivered(&second, "FR-DGSI").await?;
    send_control(&tr).await?;
    clock.advance(Duration::days(8));
    tr.wait_flag(&second, "FR-DGSI", DeadlineFlag::Overdue)
        .await?;
    assert_eq!(flags_besides_control(&tr).await?, Vec::<String>::new());
    assert_eq!(flags_besides_control(&fr).await?, Vec::<String>::new());
    Ok(())
}
