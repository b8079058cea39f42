//! What an operator is shown about deliveries and acknowledgements that
//! cannot go as they should (issue 13, part 4): a fresh delivery's next
//! attempt, an acknowledgement its originator refuses for good, and an
//! alert to an agency whose certificate is revoked. Real nodes, real mTLS
//! on loopback, through the operator API.

use std::time::Duration;

use tocsin_core::AgencyId;
use tocsin_proto::pb;
use tocsin_testkit::{Desk, Probe, TestFederation, delivery, draft, id_of, sign_as, wait_for};
use tocsin_trust::pki;

/// How long a test waits for something that takes milliseconds.
const PATIENCE: Duration = tocsin_testkit::PATIENCE;

fn record(answer: &pb::SubmitAlertResponse) -> anyhow::Result<&pb::AlertRecord> {
    answer
        .record
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no record in the answer"))
}

/// Waits until `id`'s delivery to `to` is in `state`; returns it.
async fn wait_state(
    desk: &Desk,
    id: &str,
    to: &str,
    state: pb::DeliveryState,
) -> anyhow::Result<pb::Delivery> {
    let record = desk.wait_state(id, to, state).await?;
    Ok(delivery(&record, to).cloned().unwrap_or_default())
}

#[tokio::test]
async fn a_fresh_delivery_is_due_when_the_alert_was_submitted_not_in_1970() -> anyhow::Result<()> {
    let fed = TestFederation::builder()
        .agencies(["TR-MIT", "FR-DGSI"])
        .down(["FR-DGSI"])
        .start()
        .await?;
    let tr = fed.desk("TR-MIT").await?;
    let answer = tr.submit_answer(draft(&["FR-DGSI"])).await?;
    let sent = record(&answer)?;
    let d = delivery(sent, "FR-DGSI").unwrap();
    assert_eq!(d.state, pb::DeliveryState::Pending as i32);
    // Not yet tried: due at once, that is when it was submitted.
    assert_eq!(d.attempts, 0);
    assert_eq!(d.next_attempt_at, sent.stored_at, "{d:?}");
    assert!(answer.warnings.is_empty(), "{:?}", answer.warnings);

    // Once tried (FR-DGSI is down), the next attempt is a real time later.
    let id = id_of(sent);
    let record = tr
        .wait_delivery(&id, "FR-DGSI", "fail at least once", |d| d.attempts > 0)
        .await?;
    let tried = delivery(&record, "FR-DGSI").unwrap().clone();
    let next = tocsin_core::from_timestamp(tried.next_attempt_at.as_ref().unwrap()).unwrap();
    let stored = tocsin_core::from_timestamp(sent.stored_at.as_ref().unwrap()).unwrap();
    assert!(next > stored, "{tried:?}");
    assert!(!tried.last_error.is_empty());
    Ok(())
}

#[tokio::test]
async fn an_acknowledgement_the_originator_refuses_shows_the_refusal_at_the_recipient()
-> anyhow::Result<()> {
    let mut fed = TestFederation::builder()
        .agencies(["TR-MIT", "FR-DGSI"])
        .start()
        .await?;
    // An alert signed by TR-MIT's key that TR-MIT's node never stored (as
    // after a lost data directory): TR-MIT will refuse any acknowledgement
    // of it for good, NOT_FOUND.
    let (alert, envelope) = sign_as(&fed.signer("TR-MIT")?, draft(&["FR-DGSI"]));
    fed.peer_client("TR-MIT", "FR-DGSI")?
        .deliver(pb::DeliverRequest {
            alert: Some(envelope),
        })
        .await?;
    let fr = fed.desk("FR-DGSI").await?;
    fr.ack(&alert.id, pb::Disposition::Noted, "").await?;

    let refused = |r: &pb::AlertRecord| {
        r.acknowledgements
            .first()
            .filter(|a| !a.refusal.is_empty())
            .cloned()
    };
    let ack = wait_for(PATIENCE, "FR-DGSI to record TR-MIT's refusal", || async {
        match fr.alert(&alert.id).await {
            Ok(r) => match refused(&r) {
                Some(a) => Probe::Done(a),
                None => Probe::NotYet(format!("its acknowledgements: {:?}", r.acknowledgements)),
            },
            Err(e) => Probe::NotYet(format!("it cannot be read: {e}")),
        }
    })
    .await?;
    assert!(!ack.delivered, "{ack:?}");
    assert!(ack.refusal.contains("NotFound"), "{}", ack.refusal);
    assert!(ack.refusal.contains(&alert.id), "{}", ack.refusal);

    // The watch stream says so too, as an event of the alert.
    let rejected = fr.wait_event(&alert.id, pb::EventKind::Rejected).await?;
    assert_eq!(rejected.direction, pb::Direction::Inbound as i32);
    assert_eq!(rejected.agency, "TR-MIT");
    assert!(
        rejected.detail.contains("refused our acknowledgement"),
        "{rejected:?}"
    );

    // It is durable: the node restarted still shows it.
    tokio::time::timeout(PATIENCE, fed.restart_node("FR-DGSI")).await??;
    let fr = fed.desk("FR-DGSI").await?;
    let after = fr.alert(&alert.id).await?;
    assert_eq!(refused(&after).map(|a| a.refusal), Some(ack.refusal));
    Ok(())
}

#[tokio::test]
async fn an_alert_to_a_revoked_agency_is_blocked_and_goes_once_it_has_a_new_certificate()
-> anyhow::Result<()> {
    let fed = TestFederation::builder()
        .agencies(["TR-MIT", "FR-DGSI", "BE-VSSE"])
        .start()
        .await?;
    let tr = fed.desk("TR-MIT").await?;
    let fr_id = AgencyId::new("FR-DGSI")?;
    pki::revoke(
        fed.pki(),
        fed.federation().id(),
        &[fed.pki().node_cert(&fr_id)],
    )?;

    // TR-MIT's node does not know yet: the first alert is accepted without
    // a warning, and turns BLOCKED at its first attempt, which TR-MIT's
    // node makes once it has read the new CRL.
    let quick = tr.clone().with_patience(Duration::from_secs(2));
    let first = wait_for(
        PATIENCE,
        "TR-MIT's delivery to FR-DGSI to be BLOCKED",
        || async {
            let id = match quick.send(draft(&["FR-DGSI", "BE-VSSE"])).await {
                Ok(id) => id,
                Err(e) => return Probe::NotYet(e.to_string()),
            };
            match wait_state(&quick, &id, "FR-DGSI", pb::DeliveryState::Blocked).await {
                Ok(d) => Probe::Done((id, d)),
                Err(e) => Probe::NotYet(e.to_string()),
            }
        },
    )
    .await?;
    let (first_id, blocked) = first;
    assert!(
        blocked
            .blocked_reason
            .contains("FR-DGSI's certificate is revoked (CRL)"),
        "{blocked:?}"
    );
    // The other recipient is not affected.
    wait_state(&tr, &first_id, "BE-VSSE", pb::DeliveryState::Delivered).await?;

    // Now TR-MIT's node knows: the next submission says so, in its answer
    // and on the delivery.
    let answer = tr.submit_answer(draft(&["FR-DGSI"])).await?;
    let second = record(&answer)?;
    let second_id = id_of(second);
    assert_eq!(
        delivery(second, "FR-DGSI").unwrap().state,
        pb::DeliveryState::Blocked as i32
    );
    assert_eq!(answer.warnings.len(), 1, "{:?}", answer.warnings);
    assert!(
        answer.warnings[0].starts_with("FR-DGSI is BLOCKED")
            && answer.warnings[0].contains("revoked"),
        "{:?}",
        answer.warnings
    );

    // FR-DGSI gets a new certificate: what waited is delivered, at least
    // once, and nothing is BLOCKED any more.
    pki::renew_node(fed.pki(), fed.federation(), &fr_id)?;
    for id in [&first_id, &second_id] {
        let d = wait_state(&tr, id, "FR-DGSI", pb::DeliveryState::Delivered).await?;
        assert!(d.blocked_reason.is_empty(), "{d:?}");
    }
    let fr = fed.desk("FR-DGSI").await?;
    for id in [&first_id, &second_id] {
        assert_eq!(id_of(&fr.alert(id).await?), *id);
    }
    let answer = tr.submit_answer(draft(&["FR-DGSI"])).await?;
    assert!(answer.warnings.is_empty(), "{:?}", answer.warnings);
    Ok(())
}
