//! Repeated unanswered warnings about one subject are linked and flagged:
//! the pattern of December 2014 and June 2015, when Turkey twice warned
//! France about a future Bataclan bomber and heard nothing back.

use std::sync::Arc;

use chrono::{Duration, Utc};
use tocsin_core::clock::{ManualClock, truncate_ms};
use tocsin_proto::pb;
use tocsin_proto::pb::operator_client::OperatorClient;
use tocsin_testkit::{TestFederation, draft, wait_until};
use tocsin_tests::*;
use tonic::Code;
use tonic::transport::Channel;

fn about(name: &str, dob: &str, passport: Option<&str>, to: &[&str]) -> pb::Alert {
    let mut a = draft(to);
    a.precedence = pb::Precedence::Routine as i32;
    a.subjects = vec![pb::Subject {
        kind: Some(pb::subject::Kind::Person(pb::Person {
            names: vec![name.into()],
            date_of_birth: dob.into(),
            documents: passport
                .map(|n| {
                    vec![pb::Document {
                        kind: "passport".into(),
                        number: n.into(),
                        issuing_country: "FR".into(),
                    }]
                })
                .unwrap_or_default(),
            ..Default::default()
        })),
    }];
    a
}

async fn flags(op: &mut OperatorClient<Channel>) -> anyhow::Result<Vec<pb::SubjectFlag>> {
    Ok(op
        .list_subject_flags(pb::ListSubjectFlagsRequest {})
        .await?
        .into_inner()
        .flags)
}

async fn wait_flags(
    op: &OperatorClient<Channel>,
    n: usize,
) -> anyhow::Result<Vec<pb::SubjectFlag>> {
    wait_until(PATIENCE, &format!("{n} subject flag(s)"), || {
        let mut op = op.clone();
        async move { flags(&mut op).await.ok().filter(|f| f.len() >= n) }
    })
    .await
}

#[tokio::test]
async fn two_unanswered_warnings_about_one_man_are_flagged_on_both_nodes() -> anyhow::Result<()> {
    let clock = ManualClock::new(truncate_ms(Utc::now()));
    let fed = TestFederation::builder()
        .clock(Arc::new(clock.clone()))
        .start()
        .await?;
    let mut tr = fed.operator("TR-MIT").await?;
    let mut fr = fed.operator("FR-DGSI").await?;

    // December 2014: the first notice. A week passes without an answer.
    let first = id_of(
        &submit(
            &mut tr,
            about("Ismaël Omar Mostefaï", "1985-11-21", None, &["FR-DGSI"]),
        )
        .await?,
    );
    wait_delivered(&tr, &first, "FR-DGSI").await?;
    clock.advance(Duration::days(8));
    wait_flag(&tr, &first, "FR-DGSI", pb::DeadlineFlag::Overdue).await?;
    assert!(
        flags(&mut tr).await?.is_empty(),
        "one unanswered warning is not yet a pattern"
    );

    // June 2015: the second, spelt differently. Another week of silence.
    let second = id_of(
        &submit(
            &mut tr,
            about("MOSTEFAI, Ismael Omar", "1985-11-21", None, &["FR-DGSI"]),
        )
        .await?,
    );
    wait_delivered(&tr, &second, "FR-DGSI").await?;
    clock.advance(Duration::days(8));

    for (agency, op) in [("TR-MIT", &tr), ("FR-DGSI", &fr)] {
        let got = wait_flags(op, 1).await?;
        assert_eq!(got.len(), 1, "{agency}");
        assert_eq!(got[0].recipient, "FR-DGSI", "{agency}");
        assert_eq!(
            got[0].alert_ids,
            vec![first.clone(), second.clone()],
            "{agency}"
        );
        assert!(
            got[0].label.contains("Mostefa"),
            "{agency}: {}",
            got[0].label
        );
    }

    // The subject record links both, whatever the spelling asked for.
    let subject = fr
        .get_subject(pb::GetSubjectRequest {
            query: "ismael omar MOSTEFAÏ".into(),
        })
        .await?
        .into_inner();
    let ids: Vec<String> = subject.alerts.iter().map(id_of).collect();
    assert_eq!(ids, vec![first.clone(), second.clone()]);
    assert_eq!(subject.flags.len(), 1);
    let err = fr
        .get_subject(pb::GetSubjectRequest {
            query: "Somebody Else".into(),
        })
        .await
        .unwrap_err();
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
    let mut tr = fed.operator("TR-MIT").await?;
    let mut iq = fed.operator("IQ-INIS").await?;
    let fr = fed.operator("FR-DGSI").await?;
    // Same passport, different names: the document links them.
    let a = id_of(
        &submit(
            &mut tr,
            about(
                "Abdelhamid Abaaoud",
                "1987-04-08",
                Some("EH12-3456"),
                &["FR-DGSI"],
            ),
        )
        .await?,
    );
    let b = id_of(
        &submit(
            &mut iq,
            about(
                "Abu Umar al-Baljiki",
                "1987-04-08",
                Some("eh123456"),
                &["FR-DGSI"],
            ),
        )
        .await?,
    );
    wait_delivered(&tr, &a, "FR-DGSI").await?;
    wait_delivered(&iq, &b, "FR-DGSI").await?;
    clock.advance(Duration::days(8));

    let got = wait_flags(&fr, 1).await?;
    let mut expected = vec![a.clone(), b.clone()];
    expected.sort();
    let mut ids = got[0].alert_ids.clone();
    ids.sort();
    assert_eq!(ids, expected);
    // Each originator sees only its own warning: no pattern from there.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(flags(&mut tr).await?.is_empty());
    assert!(flags(&mut iq).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn answered_warnings_raise_no_flag() -> anyhow::Result<()> {
    let clock = ManualClock::new(truncate_ms(Utc::now()));
    let fed = TestFederation::builder()
        .clock(Arc::new(clock.clone()))
        .start()
        .await?;
    let mut tr = fed.operator("TR-MIT").await?;
    let mut fr = fed.operator("FR-DGSI").await?;
    let first = id_of(
        &submit(
            &mut tr,
            about("Ismaël Omar Mostefaï", "1985-11-21", None, &["FR-DGSI"]),
        )
        .await?,
    );
    let second = id_of(
        &submit(
            &mut tr,
            about("Ismaël Omar Mostefaï", "1985-11-21", None, &["FR-DGSI"]),
        )
        .await?,
    );
    wait_delivered(&tr, &first, "FR-DGSI").await?;
    wait_delivered(&tr, &second, "FR-DGSI").await?;
    ack(
        &mut fr,
        &first,
        pb::Disposition::Actioned,
        "Under surveillance.",
    )
    .await?;
    wait_acks(&tr, &first, "FR-DGSI", 1).await?;
    clock.advance(Duration::days(8));
    // The second goes overdue, but one unanswered warning is no pattern.
    wait_flag(&tr, &second, "FR-DGSI", pb::DeadlineFlag::Overdue).await?;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(flags(&mut tr).await?.is_empty());
    assert!(flags(&mut fr).await?.is_empty());
    Ok(())
}
