//! Proof of attention: recipients acknowledge with a disposition, the
//! originator records it against each delivery, and both ends know the
//! deadline.

use std::sync::Arc;

use chrono::{Duration, Utc};
use prost::Message;
use tocsin_core::clock::ManualClock;
use tocsin_core::{from_timestamp, to_timestamp};
use tocsin_proto::{ACK_PAYLOAD_TYPE, pb};
use tocsin_testkit::PATIENCE;
use tocsin_testkit::flow::{delivery, id_of};
use tocsin_testkit::{TestFederation, draft};
use tocsin_trust::Verifier;
use tonic::Code;

#[tokio::test]
async fn an_acknowledgement_reaches_the_originator_signed_by_the_recipient() -> anyhow::Result<()> {
    let fed = TestFederation::builder().start().await?;
    let tr = fed.desk("TR-MIT").await?;
    let fr = fed.desk("FR-DGSI").await?;
    let id = id_of(&tr.submit(draft(&["FR-DGSI"])).await?);
    tr.wait_delivered(&id, "FR-DGSI").await?;

    let mine = fr
        .ack(&id, pb::Disposition::Actioned, "Surveillance opened.")
        .await?;
    assert_eq!(mine.late_by_seconds, 0);
    let record = tr.wait_acks(&id, "FR-DGSI", 1).await?;
    let d = delivery(&record, "FR-DGSI").unwrap();
    let got = &d.acknowledgements[0];
    let a = got.acknowledgement.as_ref().unwrap();
    assert_eq!(a.disposition, pb::Disposition::Actioned as i32);
    assert_eq!(a.note, "Surveillance opened.");
    assert_eq!(a.operator, "analyst");
    assert_eq!(
        got.envelope, mine.envelope,
        "the originator holds exactly what FR-DGSI signed"
    );

    // Anyone with the CA certificate can check who acknowledged what.
    let verifier = Verifier::load(&fed.pki().ca_cert(), fed.federation().id())?;
    let v = verifier.verify(got.envelope.as_ref().unwrap(), ACK_PAYLOAD_TYPE)?;
    assert_eq!(v.signer.as_str(), "FR-DGSI");
    assert_eq!(
        a.alert_digest,
        tocsin_trust::signing::digest(record.envelope.as_ref().unwrap()).to_vec()
    );

    // The recipient sees its acknowledgement, and that it reached TR-MIT.
    tocsin_testkit::wait_until(
        PATIENCE,
        "FR-DGSI sees its acknowledgement delivered",
        || {
            let fr = fr.clone();
            let id = id.clone();
            async move {
                let r = fr.alert(&id).await.ok()?;
                r.acknowledgements
                    .first()
                    .filter(|a| a.delivered)
                    .map(|_| ())
            }
        },
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_second_acknowledgement_updates_the_disposition_and_both_are_kept() -> anyhow::Result<()>
{
    let fed = TestFederation::builder().start().await?;
    let tr = fed.desk("TR-MIT").await?;
    let fr = fed.desk("FR-DGSI").await?;
    let id = id_of(&tr.submit(draft(&["FR-DGSI"])).await?);
    tr.wait_delivered(&id, "FR-DGSI").await?;

    fr.ack(&id, pb::Disposition::NeedsInfo, "Which flight?")
        .await?;
    fr.ack(&id, pb::Disposition::Actioned, "Found him.").await?;
    let record = tr.wait_acks(&id, "FR-DGSI", 2).await?;
    let history: Vec<i32> = delivery(&record, "FR-DGSI")
        .unwrap()
        .acknowledgements
        .iter()
        .map(|a| a.acknowledgement.as_ref().unwrap().disposition)
        .collect();
    assert_eq!(
        history,
        vec![
            pb::Disposition::NeedsInfo as i32,
            pb::Disposition::Actioned as i32
        ]
    );
    assert_eq!(fr.alert(&id).await?.acknowledgements.len(), 2);
    Ok(())
}

#[tokio::test]
async fn only_a_recipient_acknowledges_and_only_for_itself() -> anyhow::Result<()> {
    let fed = TestFederation::builder()
        .agencies(["TR-MIT", "FR-DGSI", "DE-BFV"])
        .start()
        .await?;
    let tr = fed.desk("TR-MIT").await?;
    let record = tr.submit(draft(&["FR-DGSI"])).await?;
    let id = id_of(&record);
    tr.wait_delivered(&id, "FR-DGSI").await?;

    // The originator cannot acknowledge its own alert ...
    let err = tr.ack(&id, pb::Disposition::Noted, "").await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    // ... an agency that never received it has nothing to acknowledge ...
    let de = fed.desk("DE-BFV").await?;
    let err = de.ack(&id, pb::Disposition::Noted, "").await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    // ... nor can a disposition be left out.
    let fr = fed.desk("FR-DGSI").await?;
    let err = fr
        .ack(&id, pb::Disposition::Unspecified, "")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("`disposition`"), "{err:?}");

    // A non-recipient cannot slip an acknowledgement to the originator.
    let digest = tocsin_trust::signing::digest(record.envelope.as_ref().unwrap());
    let forged = pb::Acknowledgement {
        id: tocsin_core::AlertId::generate().to_string(),
        alert_id: id.clone(),
        alert_digest: digest.to_vec(),
        recipient: "DE-BFV".into(),
        operator: "mallory".into(),
        disposition: pb::Disposition::Actioned as i32,
        note: String::new(),
        acknowledged_at: Some(to_timestamp(Utc::now())),
    };
    let env = fed
        .signer("DE-BFV")?
        .sign(ACK_PAYLOAD_TYPE, forged.encode_to_vec());
    let err = fed
        .peer_client("DE-BFV", "TR-MIT")?
        .acknowledge(pb::AcknowledgeRequest {
            acknowledgement: Some(env),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");

    // Nor relay one in a recipient's name.
    let mut claimed = forged.clone();
    claimed.recipient = "FR-DGSI".into();
    let env = fed
        .signer("FR-DGSI")?
        .sign(ACK_PAYLOAD_TYPE, claimed.encode_to_vec());
    let err = fed
        .peer_client("DE-BFV", "TR-MIT")?
        .acknowledge(pb::AcknowledgeRequest {
            acknowledgement: Some(env),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");

    let record = tr.alert(&id).await?;
    assert!(
        delivery(&record, "FR-DGSI")
            .unwrap()
            .acknowledgements
            .is_empty()
    );
    Ok(())
}

#[tokio::test]
async fn an_acknowledgement_waits_for_an_originator_that_is_down() -> anyhow::Result<()> {
    let mut fed = TestFederation::builder().start().await?;
    let tr = fed.desk("TR-MIT").await?;
    let id = id_of(&tr.submit(draft(&["FR-DGSI"])).await?);
    tr.wait_delivered(&id, "FR-DGSI").await?;

    fed.stop_node("TR-MIT").await?;
    let fr = fed.desk("FR-DGSI").await?;
    let queued = fr.ack(&id, pb::Disposition::Noted, "Seen.").await?;
    assert!(!queued.delivered);
    // The recipient restarts too: the acknowledgement is in its store.
    fed.restart_node("FR-DGSI").await?;
    fed.start_node("TR-MIT").await?;

    let tr = fed.desk("TR-MIT").await?;
    let record = tr.wait_acks(&id, "FR-DGSI", 1).await?;
    assert_eq!(
        delivery(&record, "FR-DGSI").unwrap().acknowledgements[0].envelope,
        queued.envelope
    );
    Ok(())
}

#[tokio::test]
async fn a_corrupt_queued_message_is_refused_for_good_and_holds_up_nothing() -> anyhow::Result<()> {
    let mut fed = TestFederation::builder().start().await?;
    let tr = fed.desk("TR-MIT").await?;
    let broken = id_of(&tr.submit(draft(&["FR-DGSI"])).await?);
    let control = id_of(&tr.submit(draft(&["FR-DGSI"])).await?);
    tr.wait_delivered(&broken, "FR-DGSI").await?;
    tr.wait_delivered(&control, "FR-DGSI").await?;

    // Both acknowledgements wait in FR-DGSI's outbox while TR-MIT is down;
    // then the stored kind of one of them is damaged.
    fed.stop_node("TR-MIT").await?;
    let fr = fed.desk("FR-DGSI").await?;
    let damaged = fr.ack(&broken, pb::Disposition::Noted, "Seen.").await?;
    fr.ack(&control, pb::Disposition::Noted, "Seen.").await?;
    fed.stop_node("FR-DGSI").await?;
    let db = fed.data_dir("FR-DGSI")?.join("tocsin.sqlite3");
    let ack_id = tocsin_core::ack::Acknowledgement::try_from(pb::Acknowledgement::decode(
        damaged.envelope.as_ref().unwrap().payload.as_slice(),
    )?)?
    .id
    .to_string();
    let changed = rusqlite::Connection::open(db)?
        .execute("UPDATE messages SET kind = 99 WHERE id = ?1", [&ack_id])?;
    assert_eq!(changed, 1);
    fed.start_node("FR-DGSI").await?;
    fed.start_node("TR-MIT").await?;

    // The control goes out; the damaged one is refused for good, saying
    // why, instead of stopping the queue or going out as a guess.
    let tr = fed.desk("TR-MIT").await?;
    tr.wait_acks(&control, "FR-DGSI", 1).await?;
    let fr = fed.desk("FR-DGSI").await?;
    let refusal = tocsin_testkit::wait_until(
        PATIENCE,
        "FR-DGSI refuses its damaged acknowledgement for good",
        || {
            let fr = fr.clone();
            let broken = broken.clone();
            async move {
                let r = fr.alert(&broken).await.ok()?;
                r.acknowledgements
                    .first()
                    .map(|a| a.refusal.clone())
                    .filter(|r| !r.is_empty())
            }
        },
    )
    .await?;
    assert!(
        refusal.contains("corrupt") && refusal.contains("99"),
        "{refusal}"
    );
    assert!(
        delivery(&tr.alert(&broken).await?, "FR-DGSI")
            .unwrap()
            .acknowledgements
            .is_empty()
    );
    Ok(())
}

#[tokio::test]
async fn both_ends_agree_on_the_deadline_and_a_late_acknowledgement_says_how_late()
-> anyhow::Result<()> {
    let clock = ManualClock::new(tocsin_core::clock::truncate_ms(Utc::now()));
    let fed = TestFederation::builder()
        .clock(Arc::new(clock.clone()))
        .start()
        .await?;
    let tr = fed.desk("TR-MIT").await?;
    let fr = fed.desk("FR-DGSI").await?;

    // FLASH: 10 minutes by default.
    let mut flash = draft(&["FR-DGSI"]);
    flash.precedence = pb::Precedence::Flash as i32;
    let sent = tr.submit(flash).await?;
    let id = id_of(&sent);
    let created =
        from_timestamp(sent.alert.as_ref().unwrap().created_at.as_ref().unwrap()).unwrap();
    let due = to_timestamp(created + Duration::minutes(10));
    assert_eq!(delivery(&sent, "FR-DGSI").unwrap().due_at, Some(due));
    tr.wait_delivered(&id, "FR-DGSI").await?;
    assert_eq!(
        fr.alert(&id).await?.due_at,
        Some(due),
        "the recipient computes the same deadline"
    );

    // An earlier deadline asked by the alert wins.
    let mut hurried = draft(&["FR-DGSI"]);
    hurried.respond_by = Some(to_timestamp(created + Duration::hours(1)));
    let sent = tr.submit(hurried).await?;
    assert_eq!(
        delivery(&sent, "FR-DGSI").unwrap().due_at,
        Some(to_timestamp(created + Duration::hours(1)))
    );

    // Acknowledged 25 minutes after creation: 15 minutes late.
    clock.advance(Duration::minutes(25));
    let late = fr.ack(&id, pb::Disposition::Noted, "Routine.").await?;
    assert_eq!(late.late_by_seconds, 15 * 60);
    let record = tr.wait_acks(&id, "FR-DGSI", 1).await?;
    assert_eq!(
        delivery(&record, "FR-DGSI").unwrap().acknowledgements[0].late_by_seconds,
        15 * 60
    );
    Ok(())
}

#[tokio::test]
async fn each_side_lists_what_is_owed_soonest_deadline_first() -> anyhow::Result<()> {
    let fed = TestFederation::builder().start().await?;
    let tr = fed.desk("TR-MIT").await?;
    let fr = fed.desk("FR-DGSI").await?;
    let mut routine = draft(&["FR-DGSI"]);
    routine.precedence = pb::Precedence::Routine as i32;
    let routine = id_of(&tr.submit(routine).await?);
    let mut flash = draft(&["FR-DGSI"]);
    flash.precedence = pb::Precedence::Flash as i32;
    let flash = id_of(&tr.submit(flash).await?);
    tr.wait_delivered(&routine, "FR-DGSI").await?;
    tr.wait_delivered(&flash, "FR-DGSI").await?;

    let owed: Vec<String> = fr.owed().await?.iter().map(id_of).collect();
    assert_eq!(
        owed,
        vec![flash.clone(), routine.clone()],
        "FLASH is due first"
    );
    let awaiting: Vec<String> = tr.awaiting().await?.iter().map(id_of).collect();
    assert_eq!(awaiting, vec![flash.clone(), routine.clone()]);

    fr.ack(&flash, pb::Disposition::Actioned, "").await?;
    let owed: Vec<String> = fr.owed().await?.iter().map(id_of).collect();
    assert_eq!(owed, vec![routine.clone()]);
    tr.wait_acks(&flash, "FR-DGSI", 1).await?;
    let awaiting: Vec<String> = tr.awaiting().await?.iter().map(id_of).collect();
    assert_eq!(awaiting, vec![routine]);
    Ok(())
}
