//! No way in without a valid certificate, and each certificate only where
//! it belongs. Every positive path has its negative twin.

use std::sync::Arc;

use rustls::RootCertStore;
use tocsin_core::AgencyId;
use tocsin_proto::pb;
use tocsin_proto::pb::operator_client::OperatorClient;
use tocsin_testkit::{TestFederation, channel, draft};
use tocsin_trust::pki::CertificateAuthority;
use tocsin_trust::tls::{self, TlsMaterial};
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

fn der_of(pem: &str) -> rustls::pki_types::CertificateDer<'static> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

fn key_of(pem: &str) -> rustls::pki_types::PrivateKeyDer<'static> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap()
}

/// An operator client on TR-MIT's node presenting `chain`/`key`.
fn client_with(
    fed: &TestFederation,
    chain: &str,
    key: &str,
) -> anyhow::Result<OperatorClient<Channel>> {
    let real = fed.operator_material("TR-MIT", "probe")?;
    let material = TlsMaterial::new(
        real.ca.clone(),
        vec![der_of(chain)],
        key_of(key),
        fed.federation().id(),
    )?;
    Ok(OperatorClient::new(channel(
        fed.addr("TR-MIT")?,
        &material,
        &AgencyId::new("TR-MIT")?,
    )?))
}

/// The answer of a refused session: the handshake failed, so no handler ran
/// and no gRPC status from the node came back.
fn assert_no_session(err: &tonic::Status) {
    assert!(
        matches!(
            err.code(),
            Code::Unavailable | Code::Unknown | Code::Cancelled
        ),
        "expected the session to be refused, got {err:?}"
    );
}

async fn list_inbox(op: &mut OperatorClient<Channel>) -> Result<usize, tonic::Status> {
    op.list_alerts(pb::ListAlertsRequest::default())
        .await
        .map(|r| r.into_inner().alerts.len())
}

#[tokio::test]
async fn an_operator_of_the_agency_gets_in() -> anyhow::Result<()> {
    let fed = TestFederation::builder().start().await?;
    let mut op = fed.operator("TR-MIT").await?;
    assert_eq!(list_inbox(&mut op).await?, 0);
    Ok(())
}

#[tokio::test]
async fn no_client_certificate_gets_no_session() -> anyhow::Result<()> {
    let fed = TestFederation::builder().start().await?;
    let mut roots = RootCertStore::empty();
    roots.add(fed.operator_material("TR-MIT", "probe")?.ca)?;
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let ch = Endpoint::from_shared(format!("http://{}", fed.addr("TR-MIT")?))?
        .connect_with_connector_lazy(tls::connector(Arc::new(config)));
    let err = list_inbox(&mut OperatorClient::new(ch)).await.unwrap_err();
    assert_no_session(&err);
    // The node still serves everyone else.
    assert_eq!(list_inbox(&mut fed.operator("TR-MIT").await?).await?, 0);
    Ok(())
}

#[tokio::test]
async fn a_certificate_from_another_ca_gets_no_session() -> anyhow::Result<()> {
    let fed = TestFederation::builder().start().await?;
    let rogue_ca = CertificateAuthority::generate(fed.federation().id())?;
    let rogue = rogue_ca.issue_operator(&AgencyId::new("TR-MIT")?, "analyst")?;
    let err = list_inbox(&mut client_with(&fed, &rogue.cert_pem, &rogue.key_pem)?)
        .await
        .unwrap_err();
    assert_no_session(&err);

    // Nor can a rogue CA's agency certificate deliver alerts.
    let rogue_node = rogue_ca.issue_node(&AgencyId::new("FR-DGSI")?, &[])?;
    let real = fed.node_material("FR-DGSI")?;
    let material = TlsMaterial::new(
        real.ca.clone(),
        vec![der_of(&rogue_node.cert_pem)],
        key_of(&rogue_node.key_pem),
        fed.federation().id(),
    )?;
    let mut peer = pb::federation_client::FederationClient::new(channel(
        fed.addr("TR-MIT")?,
        &material,
        &AgencyId::new("TR-MIT")?,
    )?);
    let err = peer
        .deliver(pb::DeliverRequest::default())
        .await
        .unwrap_err();
    assert_no_session(&err);
    Ok(())
}

#[tokio::test]
async fn an_agency_outside_the_federation_gets_no_session() -> anyhow::Result<()> {
    let fed = TestFederation::builder().start().await?;
    // Same CA, but an agency the federation file does not list.
    let ca = CertificateAuthority::load(
        &fed.pki().ca_cert(),
        &fed.pki().ca_key(),
        fed.federation().id(),
    )?;
    let outsider = ca.issue_node(&AgencyId::new("XX-ROGUE")?, &[])?;
    let real = fed.node_material("FR-DGSI")?;
    let material = TlsMaterial::new(
        real.ca.clone(),
        vec![der_of(&outsider.cert_pem)],
        key_of(&outsider.key_pem),
        fed.federation().id(),
    )?;
    let mut peer = pb::federation_client::FederationClient::new(channel(
        fed.addr("TR-MIT")?,
        &material,
        &AgencyId::new("TR-MIT")?,
    )?);
    let err = peer
        .deliver(pb::DeliverRequest::default())
        .await
        .unwrap_err();
    assert_no_session(&err);
    Ok(())
}

#[tokio::test]
async fn an_operator_certificate_works_only_on_its_own_agencys_node() -> anyhow::Result<()> {
    let fed = TestFederation::builder().start().await?;
    // FR-DGSI's operator, on TR-MIT's node.
    let mut foreign = fed.operator_as("FR-DGSI", "analyst", "TR-MIT")?;
    let err = list_inbox(&mut foreign).await.unwrap_err();
    assert_no_session(&err);
    let err = foreign
        .submit_alert(pb::SubmitAlertRequest {
            alert: Some(draft(&["FR-DGSI"])),
        })
        .await
        .unwrap_err();
    assert_no_session(&err);
    // ... while it works on its own node.
    assert_eq!(
        list_inbox(&mut fed.operator_as("FR-DGSI", "analyst", "FR-DGSI")?).await?,
        0
    );
    Ok(())
}

#[tokio::test]
async fn each_certificate_works_only_on_its_own_service() -> anyhow::Result<()> {
    let fed = TestFederation::builder().start().await?;
    // An operator cannot act as a peer node ...
    let material = fed.operator_material("TR-MIT", "analyst")?;
    let mut as_peer = pb::federation_client::FederationClient::new(channel(
        fed.addr("TR-MIT")?,
        &material,
        &AgencyId::new("TR-MIT")?,
    )?);
    let err = as_peer
        .deliver(pb::DeliverRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");

    // ... and a peer node cannot act as an operator.
    let peer = fed.node_material("FR-DGSI")?;
    let mut as_operator = OperatorClient::new(channel(
        fed.addr("TR-MIT")?,
        &peer,
        &AgencyId::new("TR-MIT")?,
    )?);
    let err = list_inbox(&mut as_operator).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    Ok(())
}

#[tokio::test]
async fn standard_grpc_tools_can_use_health_and_reflection() -> anyhow::Result<()> {
    let fed = TestFederation::builder().start().await?;
    let material = fed.operator_material("TR-MIT", "analyst")?;
    let ch = channel(fed.addr("TR-MIT")?, &material, &AgencyId::new("TR-MIT")?)?;

    let mut health = tonic_health::pb::health_client::HealthClient::new(ch.clone());
    for service in ["tocsin.v1.Federation", "tocsin.v1.Operator"] {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await?
            .into_inner()
            .status;
        assert_eq!(
            status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
    }

    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut reflection = ServerReflectionClient::new(ch);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::once(request))
        .await?
        .into_inner();
    let answer = answers.message().await?.expect("one answer");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("unexpected reflection answer {answer:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "tocsin.v1.Federation",
        "tocsin.v1.Operator",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    Ok(())
}
