//! Revocation and renewal while nodes run: `tocsin pki revoke` rewrites the
//! CRL, `tocsin pki renew` the node certificate, and the nodes follow
//! without a restart.

use std::path::PathBuf;

use tocsin_core::{AgencyId, Identity};
use tocsin_proto::pb;
use tocsin_proto::pb::operator_client::OperatorClient;
use tocsin_testkit::PATIENCE;
use tocsin_testkit::flow::{delivery, id_of};
use tocsin_testkit::{TestFederation, draft, sign_as, wait_until};
use tocsin_trust::pki;
use tocsin_trust::tls;
use tonic::transport::Channel;

fn revoke(fed: &TestFederation, certs: &[PathBuf]) -> anyhow::Result<()> {
    pki::revoke(fed.pki(), fed.federation().id(), certs)?;
    Ok(())
}

/// Whether a fresh call on a fresh connection gets through.
async fn lists(op: &OperatorClient<Channel>) -> bool {
    op.clone()
        .list_alerts(pb::ListAlertsRequest::default())
        .await
        .is_ok()
}

/// The certificate `agency`'s node presents in a new handshake.
async fn presented(fed: &TestFederation, agency: &str) -> anyhow::Result<Vec<u8>> {
    let material = fed.operator_material(agency, "probe")?;
    let config = tls::client_config(&material, Identity::Agency(AgencyId::new(agency)?))?;
    let tcp = tokio::net::TcpStream::connect(fed.addr(agency)?).await?;
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect("localhost".try_into()?, tcp)
        .await?;
    let cert = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| anyhow::anyhow!("no server certificate"))?;
    Ok(cert.as_ref().to_vec())
}

fn pem_der(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    Ok(tocsin_trust::files::read_certs(path)?
        .remove(0)
        .as_ref()
        .to_vec())
}

#[tokio::test]
async fn a_revoked_operator_loses_its_open_session_and_gets_no_new_one() -> anyhow::Result<()> {
    let fed = TestFederation::builder().start().await?;
    let walter = fed.operator_as("TR-MIT", "walter", "TR-MIT")?;
    let analyst = fed.desk("TR-MIT").await?;
    assert!(lists(&walter).await, "a valid operator gets in");
    let mut stream = walter
        .clone()
        .watch_events(pb::WatchEventsRequest { after_id: Some(0) })
        .await?
        .into_inner();

    revoke(
        &fed,
        &[fed.pki().operator_cert(&AgencyId::new("TR-MIT")?, "walter")],
    )?;

    // The session already open is closed (its stream ends in an error)...
    let ended = tokio::time::timeout(PATIENCE, async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return "ended",
                Err(_) => return "failed",
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the revoked operator's stream is still open");
    // ... and no new one opens, on the old channel or a new one.
    assert!(!lists(&walter).await, "revoked operator still served");
    let again = fed.operator_as("TR-MIT", "walter", "TR-MIT")?;
    let err = again
        .clone()
        .list_alerts(pb::ListAlertsRequest::default())
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("CertificateRevoked"), "{err:?}");
    // Another operator of the same agency is not affected.
    assert!(lists(&analyst.client()).await);
    Ok(())
}

#[tokio::test]
async fn a_revoked_agency_can_no_longer_deliver_but_what_it_sent_stays() -> anyhow::Result<()> {
    let fed = TestFederation::builder()
        .agencies(["TR-MIT", "FR-DGSI", "BE-VSSE"])
        .start()
        .await?;
    let tr = fed.desk("TR-MIT").await?;
    let fr = fed.desk("FR-DGSI").await?;
    let before = id_of(&tr.submit(draft(&["FR-DGSI"])).await?);
    tr.wait_delivered(&before, "FR-DGSI").await?;

    let tr_id = AgencyId::new("TR-MIT")?;
    revoke(
        &fed,
        &[fed.pki().node_cert(&tr_id), fed.pki().signing_cert(&tr_id)],
    )?;

    // TR-MIT's certificate no longer opens a session on FR-DGSI.
    let signer = fed.signer("TR-MIT")?;
    wait_until(PATIENCE, "TR-MIT is refused by FR-DGSI", || {
        let fed = &fed;
        let signer = &signer;
        async move {
            let (_, env) = sign_as(signer, draft(&["FR-DGSI"]));
            let refused = fed
                .peer_client("TR-MIT", "FR-DGSI")
                .ok()?
                .deliver(pb::DeliverRequest { alert: Some(env) })
                .await
                .is_err();
            refused.then_some(())
        }
    })
    .await?;
    // Nor does its node deliver what it sends now: the attempt fails.
    let after = id_of(&tr.submit(draft(&["FR-DGSI"])).await?);
    let failed = wait_until(PATIENCE, "TR-MIT's delivery attempt fails", || {
        let tr = tr.clone();
        let after = after.clone();
        async move {
            let record = tr.alert(&after).await.ok()?;
            let d = delivery(&record, "FR-DGSI")?.clone();
            (d.attempts > 0).then_some(d)
        }
    })
    .await?;
    assert_eq!(
        failed.state,
        pb::DeliveryState::Pending as i32,
        "{failed:?}"
    );
    assert!(!failed.last_error.is_empty());
    assert!(
        fr.alert(&after).await.is_err(),
        "an alert from a revoked agency was accepted"
    );

    // What FR-DGSI received before stays, with its history.
    let kept = fr.alert(&before).await?;
    assert_eq!(id_of(&kept), before);
    fr.wait_event(&before, pb::EventKind::Received).await?;

    // The other agencies are not affected.
    let be = fed.desk("BE-VSSE").await?;
    let other = id_of(&be.submit(draft(&["FR-DGSI"])).await?);
    be.wait_delivered(&other, "FR-DGSI").await?;
    Ok(())
}

#[tokio::test]
async fn a_renewed_certificate_is_used_without_a_restart() -> anyhow::Result<()> {
    let mut fed = TestFederation::builder().start().await?;
    let fr_id = AgencyId::new("FR-DGSI")?;
    let old_cert = fed.pki().node_cert(&fr_id);
    let old = pem_der(&old_cert)?;
    assert_eq!(presented(&fed, "FR-DGSI").await?, old);
    let kept_old = fed.scratch().join("fr-old.crt");
    std::fs::copy(&old_cert, &kept_old)?;

    pki::renew_node(fed.pki(), fed.federation(), &fr_id)?;
    let new = pem_der(&old_cert)?;
    assert_ne!(new, old);
    // New handshakes with FR-DGSI's node get the new certificate.
    wait_until(PATIENCE, "FR-DGSI presents its new certificate", || {
        let fed = &fed;
        let new = &new;
        async move { (presented(fed, "FR-DGSI").await.ok()? == *new).then_some(()) }
    })
    .await?;

    // Its outgoing connections present the new one once they reconnect:
    // with the old certificate revoked, TR-MIT would refuse anything else.
    revoke(&fed, &[kept_old])?;
    fed.restart_node("TR-MIT").await?;
    let fr = fed.desk("FR-DGSI").await?;
    let id = id_of(&fr.submit(draft(&["TR-MIT"])).await?);
    fr.wait_delivered(&id, "TR-MIT").await?;
    Ok(())
}
