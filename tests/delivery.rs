//! Alerts travel signed, arrive once, and come back with a receipt that
//! proves exactly what was received.

use prost::Message;
use tocsin_core::to_timestamp;
use tocsin_proto::{ALERT_PAYLOAD_TYPE, RECEIPT_PAYLOAD_TYPE, pb};
use tocsin_testkit::{TestFederation, draft, sign_as};
use tocsin_tests::*;
use tocsin_trust::Verifier;
use tocsin_trust::signing::digest;
use tonic::Code;

/// An alert as `from`'s node would sign it, for delivering by hand.
fn signed_alert(
    fed: &TestFederation,
    from: &str,
    to: &[&str],
    text: &str,
) -> (pb::Alert, pb::Envelope) {
    let mut alert = draft(to);
    alert.text = text.into();
    sign_as(&fed.signer(from).unwrap(), alert)
}

#[tokio::test]
async fn an_alert_is_delivered_with_a_receipt_anyone_can_verify() -> anyhow::Result<()> {
    let fed = TestFederation::builder().start().await?;
    let mut tr = fed.operator("TR-MIT").await?;
    let mut fr = fed.operator("FR-DGSI").await?;

    let sent = submit(&mut tr, draft(&["FR-DGSI"])).await?;
    let id = id_of(&sent);
    assert_eq!(sent.direction, pb::Direction::Outbound as i32);
    assert_eq!(
        delivery(&sent, "FR-DGSI").unwrap().state,
        pb::DeliveryState::Pending as i32
    );

    let record = wait_delivered(&tr, &id, "FR-DGSI").await?;
    let d = delivery(&record, "FR-DGSI").unwrap();
    assert!(d.delivered_at.is_some());
    assert_eq!(d.attempts, 1);

    // The receipt proves, to anyone holding only the CA certificate, that
    // FR-DGSI received exactly the envelope TR-MIT signed.
    let verifier = Verifier::load(&fed.pki().ca_cert(), fed.federation().id())?;
    let alert_env = record.envelope.clone().unwrap();
    let receipt_env = d.receipt.clone().unwrap();
    assert_eq!(
        verifier
            .verify(&alert_env, ALERT_PAYLOAD_TYPE)?
            .signer
            .as_str(),
        "TR-MIT"
    );
    assert_eq!(
        verifier
            .verify(&receipt_env, RECEIPT_PAYLOAD_TYPE)?
            .signer
            .as_str(),
        "FR-DGSI"
    );
    let receipt = pb::Receipt::decode(receipt_env.payload.as_slice())?;
    assert_eq!(receipt.alert_id, id);
    assert_eq!(receipt.recipient, "FR-DGSI");
    assert_eq!(receipt.alert_digest, digest(&alert_env).to_vec());
    assert_eq!(Some(receipt.received_at.unwrap()), d.delivered_at);

    // The recipient holds the same envelope and the receipt it issued.
    let inbox = list(&mut fr, pb::Direction::Inbound).await?;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].envelope, record.envelope);
    assert_eq!(inbox[0].receipt.as_ref(), Some(&receipt_env));
    assert!(list(&mut fr, pb::Direction::Outbound).await?.is_empty());
    assert!(list(&mut tr, pb::Direction::Inbound).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn delivering_twice_returns_the_same_receipt() -> anyhow::Result<()> {
    let fed = TestFederation::builder().start().await?;
    let mut peer = fed.peer_client("TR-MIT", "FR-DGSI")?;
    let (_, env) = signed_alert(&fed, "TR-MIT", &["FR-DGSI"], "first");
    let deliver = pb::DeliverRequest { alert: Some(env) };
    let first = peer
        .deliver(deliver.clone())
        .await?
        .into_inner()
        .receipt
        .unwrap();
    let second = peer.deliver(deliver).await?.into_inner().receipt.unwrap();
    assert_eq!(first, second);
    let mut fr = fed.operator("FR-DGSI").await?;
    assert_eq!(list(&mut fr, pb::Direction::Inbound).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn the_same_id_with_other_content_is_refused() -> anyhow::Result<()> {
    let fed = TestFederation::builder().start().await?;
    let mut peer = fed.peer_client("TR-MIT", "FR-DGSI")?;
    let (mut alert, env) = signed_alert(&fed, "TR-MIT", &["FR-DGSI"], "original");
    peer.deliver(pb::DeliverRequest { alert: Some(env) })
        .await?;

    alert.text = "altered".into();
    let altered = fed
        .signer("TR-MIT")?
        .sign(ALERT_PAYLOAD_TYPE, alert.encode_to_vec());
    let err = peer
        .deliver(pb::DeliverRequest {
            alert: Some(altered),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");

    // The stored alert is still the original.
    let mut fr = fed.operator("FR-DGSI").await?;
    let stored = get(&mut fr, &alert.id).await?;
    assert_eq!(stored.alert.unwrap().text, "original");
    Ok(())
}

#[tokio::test]
async fn a_spoofed_originator_is_refused() -> anyhow::Result<()> {
    let fed = TestFederation::builder()
        .agencies(["TR-MIT", "FR-DGSI", "BE-VSSE"])
        .start()
        .await?;
    let mut from_be = fed.peer_client("BE-VSSE", "FR-DGSI")?;

    // BE-VSSE relays an envelope genuinely signed by TR-MIT.
    let (_, relayed) = signed_alert(&fed, "TR-MIT", &["FR-DGSI"], "relayed");
    let err = from_be
        .deliver(pb::DeliverRequest {
            alert: Some(relayed),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");

    // BE-VSSE signs an alert that claims TR-MIT as its originator.
    let mut alert = draft(&["FR-DGSI"]);
    alert.id = tocsin_core::AlertId::generate().to_string();
    alert.originator = "TR-MIT".into();
    alert.created_at = Some(to_timestamp(chrono::Utc::now()));
    let forged = fed
        .signer("BE-VSSE")?
        .sign(ALERT_PAYLOAD_TYPE, alert.encode_to_vec());
    let err = from_be
        .deliver(pb::DeliverRequest {
            alert: Some(forged),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("originator TR-MIT"), "{err:?}");

    // An operator cannot send in another agency's name either.
    let mut tr = fed.operator("TR-MIT").await?;
    let mut alert = draft(&["FR-DGSI"]);
    alert.originator = "BE-VSSE".into();
    let err = tr
        .submit_alert(pb::SubmitAlertRequest { alert: Some(alert) })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");

    let mut fr = fed.operator("FR-DGSI").await?;
    assert!(list(&mut fr, pb::Direction::Inbound).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn alerts_go_only_to_the_agencies_they_name() -> anyhow::Result<()> {
    let fed = TestFederation::builder()
        .agencies(["IQ-INIS", "FR-DGSI", "BE-VSSE", "DE-BFV"])
        .start()
        .await?;
    let mut iq = fed.operator("IQ-INIS").await?;
    let sent = submit(&mut iq, draft(&["FR-DGSI", "BE-VSSE"])).await?;
    let id = id_of(&sent);
    assert_eq!(sent.deliveries.len(), 2);
    wait_delivered(&iq, &id, "FR-DGSI").await?;
    wait_delivered(&iq, &id, "BE-VSSE").await?;
    let mut de = fed.operator("DE-BFV").await?;
    assert!(list(&mut de, pb::Direction::Inbound).await?.is_empty());
    let err = get(&mut de, &id).await.unwrap_err();
    assert_eq!(
        err.downcast_ref::<tonic::Status>().map(|s| s.code()),
        Some(Code::NotFound)
    );

    // A node refuses an alert that does not name it.
    let (_, env) = signed_alert(&fed, "IQ-INIS", &["FR-DGSI"], "not for DE-BFV");
    let err = fed
        .peer_client("IQ-INIS", "DE-BFV")?
        .deliver(pb::DeliverRequest { alert: Some(env) })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(
        err.message().contains("not releasable to DE-BFV"),
        "{err:?}"
    );
    Ok(())
}

#[tokio::test]
async fn bad_fields_are_refused_by_name() -> anyhow::Result<()> {
    let fed = TestFederation::builder().start().await?;
    let mut tr = fed.operator("TR-MIT").await?;
    type Spoil = Box<dyn Fn(&mut pb::Alert)>;
    let cases: Vec<(&str, Spoil)> = vec![
        ("`subjects`", Box::new(|a| a.subjects.clear())),
        ("`precedence`", Box::new(|a| a.precedence = 42)),
        ("`text`", Box::new(|a| a.text = "x".repeat(20_000))),
        (
            "`expires_at`",
            Box::new(|a| {
                a.expires_at = Some(to_timestamp(
                    chrono::Utc::now() - chrono::Duration::hours(1),
                ))
            }),
        ),
        (
            "`recipients[0]`",
            Box::new(|a| a.recipients = vec!["XX-NOBODY".into()]),
        ),
        ("`recipients`", Box::new(|a| a.recipients.clear())),
        ("`tlp`", Box::new(|a| a.tlp = 0)),
    ];
    for (field, spoil) in cases {
        let mut alert = draft(&["FR-DGSI"]);
        spoil(&mut alert);
        let err = tr
            .submit_alert(pb::SubmitAlertRequest { alert: Some(alert) })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        assert!(err.message().contains(field), "{field}: {}", err.message());
    }
    assert!(list(&mut tr, pb::Direction::Outbound).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn resubmitting_with_the_same_id_is_idempotent() -> anyhow::Result<()> {
    let fed = TestFederation::builder().start().await?;
    let mut tr = fed.operator("TR-MIT").await?;
    let mut alert = draft(&["FR-DGSI"]);
    alert.id = tocsin_core::AlertId::generate().to_string();
    let first = submit(&mut tr, alert.clone()).await?;
    let again = submit(&mut tr, alert.clone()).await?;
    assert_eq!(first.envelope, again.envelope);

    alert.text = "something else".into();
    let err = tr
        .submit_alert(pb::SubmitAlertRequest { alert: Some(alert) })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    assert_eq!(list(&mut tr, pb::Direction::Outbound).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_permanent_refusal_is_recorded_as_rejected_not_retried() -> anyhow::Result<()> {
    let fed = TestFederation::builder().start().await?;
    // FR-DGSI already holds an alert under this id, with other content.
    let (alert, env) = signed_alert(&fed, "TR-MIT", &["FR-DGSI"], "first version");
    fed.peer_client("TR-MIT", "FR-DGSI")?
        .deliver(pb::DeliverRequest { alert: Some(env) })
        .await?;

    // TR-MIT's operator then submits different content under that id.
    let mut tr = fed.operator("TR-MIT").await?;
    let mut clash = draft(&["FR-DGSI"]);
    clash.id = alert.id.clone();
    clash.text = "second version".into();
    submit(&mut tr, clash).await?;

    let rejected = tocsin_testkit::wait_until(PATIENCE, "the delivery is rejected", || {
        let mut tr = tr.clone();
        let id = alert.id.clone();
        async move {
            let r = get(&mut tr, &id).await.ok()?;
            let d = delivery(&r, "FR-DGSI")?.clone();
            (d.state == pb::DeliveryState::Rejected as i32).then_some(d)
        }
    })
    .await?;
    assert_eq!(rejected.attempts, 1);
    assert!(
        rejected.last_error.contains("AlreadyExists"),
        "{}",
        rejected.last_error
    );
    assert!(rejected.next_attempt_at.is_none());
    Ok(())
}
