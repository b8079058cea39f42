//! What an operator is shown about deliveries and acknowledgements that
//! cannot go as they should (issue 13, part 4): a fresh delivery's next
//! attempt, an acknowledgement its originator refuses for good, and an
//! alert to an agency whose certificate is revoked. Real nodes, real mTLS
//! on loopback, through the operator API.

use std::time::Duration;

use tocsin_core::AgencyId;
use tocsin_proto::pb;
use tocsin_proto::pb::operator_client::OperatorClient;
use tocsin_testkit::{TestFederation, draft, sign_as, wait_until};
use tocsin_trust::pki;
use tonic::transport::Channel;

/// How long a test waits for something that takes milliseconds.
const PATIENCE: Duration = Duration::from_secs(20);

async fn submit(
    op: &mut OperatorClient<Channel>,
    alert: pb::Alert,
) -> anyhow::Result<pb::SubmitAlertResponse> {
    Ok(op
        .submit_alert(pb::SubmitAlertRequest { alert: Some(alert) })
        .await?
        .into_inner())
}

fn record(answer: &pb::SubmitAlertResponse) -> anyhow::Result<&pb::AlertRecord> {
    answer
        .record
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no record in the answer"))
}

fn id_of(record: &pb::AlertRecord) -> String {
    record
        .alert
        .as_ref()
        .map(|a| a.id.clone())
        .unwrap_or_default()
}

fn delivery<'a>(record: &'a pb::AlertRecord, to: &str) -> anyhow::Result<&'a pb::Delivery> {
    record
        .deliveries
        .iter()
        .find(|d| d.recipient == to)
        .ok_or_else(|| anyhow::anyhow!("no delivery to {to} in {record:?}"))
}

async fn get(op: &OperatorClient<Channel>, id: &str) -> anyhow::Result<pb::AlertRecord> {
    Ok(op
        .clone()
        .get_alert(pb::GetAlertRequest { id: id.to_owned() })
        .await?
        .into_inner())
}

/// Waits until `id`'s delivery to `to` is in `state`; returns it.
async fn wait_state(
    op: &OperatorClient<Channel>,
    id: &str,
    to: &str,
    state: pb::DeliveryState,
) -> anyhow::Result<pb::Delivery> {
    wait_until(
        PATIENCE,
        &format!("{id}'s delivery to {to} is {state:?}"),
        || async move {
            let r = get(op, id).await.ok()?;
            let d = delivery(&r, to).ok()?.clone();
            (d.state == state as i32).then_some(d)
        },
    )
    .await
}

#[tokio::test]
async fn a_fresh_delivery_is_due_when_the_alert_was_submitted_not_in_1970() -> anyhow::Result<()> {
    let fed = TestFederation::builder()
        .agencies(["TR-MIT", "FR-DGSI"])
        .down(["FR-DGSI"])
        .start()
        .await?;
    let mut tr = fed.operator("TR-MIT").await?;
    let answer = submit(&mut tr, draft(&["FR-DGSI"])).await?;
    let sent = record(&answer)?;
    let d = delivery(sent, "FR-DGSI")?;
    assert_eq!(d.state, pb::DeliveryState::Pending as i32);
    // Not yet tried: due at once, that is when it was submitted.
    assert_eq!(d.attempts, 0);
    assert_eq!(d.next_attempt_at, sent.stored_at, "{d:?}");
    assert!(answer.warnings.is_empty(), "{:?}", answer.warnings);

    // Once tried (FR-DGSI is down), the next attempt is a real time later.
    let id = id_of(sent);
    let tried = wait_until(PATIENCE, "the first attempt fails", || {
        let tr = &tr;
        let id = &id;
        async move {
            let r = get(tr, id).await.ok()?;
            let d = delivery(&r, "FR-DGSI").ok()?.clone();
            (d.attempts > 0).then_some(d)
        }
    })
    .await?;
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
    let fr = fed.operator("FR-DGSI").await?;
    fr.clone()
        .acknowledge_alert(pb::AcknowledgeAlertRequest {
            alert_id: alert.id.clone(),
            disposition: pb::Disposition::Noted as i32,
            note: String::new(),
        })
        .await?;

    let refused = |r: &pb::AlertRecord| {
        r.acknowledgements
            .first()
            .filter(|a| !a.refusal.is_empty())
            .cloned()
    };
    let ack = wait_until(PATIENCE, "FR-DGSI records TR-MIT's refusal", || {
        let fr = &fr;
        let id = &alert.id;
        async move { refused(&get(fr, id).await.ok()?) }
    })
    .await?;
    assert!(!ack.delivered, "{ack:?}");
    assert!(ack.refusal.contains("NotFound"), "{}", ack.refusal);
    assert!(ack.refusal.contains(&alert.id), "{}", ack.refusal);

    // The watch stream says so too, as an event of the alert.
    let mut events = fr
        .clone()
        .watch_events(pb::WatchEventsRequest { after_id: Some(0) })
        .await?
        .into_inner();
    let rejected = tokio::time::timeout(PATIENCE, async {
        while let Some(e) = events.message().await? {
            if e.kind == pb::EventKind::Rejected as i32 && e.alert_id == alert.id {
                return anyhow::Ok(e);
            }
        }
        anyhow::bail!("the stream ended")
    })
    .await??;
    assert_eq!(rejected.direction, pb::Direction::Inbound as i32);
    assert_eq!(rejected.agency, "TR-MIT");
    assert!(
        rejected.detail.contains("refused our acknowledgement"),
        "{rejected:?}"
    );

    // It is durable: the node restarted still shows it. (An open watch
    // stream would hold the node's graceful stop.)
    drop(events);
    tokio::time::timeout(PATIENCE, fed.restart_node("FR-DGSI")).await??;
    let fr = fed.operator("FR-DGSI").await?;
    let after = wait_until(PATIENCE, "FR-DGSI answers again", || {
        let fr = &fr;
        let id = &alert.id;
        async move { get(fr, id).await.ok() }
    })
    .await?;
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
    let mut tr = fed.operator("TR-MIT").await?;
    let fr_id = AgencyId::new("FR-DGSI")?;
    pki::revoke(
        fed.pki(),
        fed.federation().id(),
        &[fed.pki().node_cert(&fr_id)],
    )?;

    // TR-MIT's node does not know yet: the first alert is accepted without
    // a warning, and turns BLOCKED at its first attempt, which TR-MIT's
    // node makes once it has read the new CRL.
    let first = wait_until(PATIENCE, "TR-MIT's delivery to FR-DGSI is BLOCKED", || {
        let tr = tr.clone();
        async move {
            let mut tr = tr;
            let answer = submit(&mut tr, draft(&["FR-DGSI", "BE-VSSE"])).await.ok()?;
            let id = id_of(record(&answer).ok()?);
            tokio::time::timeout(
                Duration::from_secs(2),
                wait_state(&tr, &id, "FR-DGSI", pb::DeliveryState::Blocked),
            )
            .await
            .ok()?
            .ok()
            .map(|d| (id, d))
        }
    })
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
    let answer = submit(&mut tr, draft(&["FR-DGSI"])).await?;
    let second = record(&answer)?;
    let second_id = id_of(second);
    assert_eq!(
        delivery(second, "FR-DGSI")?.state,
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
    let fr = fed.operator("FR-DGSI").await?;
    for id in [&first_id, &second_id] {
        assert_eq!(id_of(&get(&fr, id).await?), *id);
    }
    let answer = submit(&mut tr, draft(&["FR-DGSI"])).await?;
    assert!(answer.warnings.is_empty(), "{:?}", answer.warnings);
    Ok(())
}
