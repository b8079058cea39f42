//! A client accepts only the server it expected: the identity in the
//! server's certificate, whatever address it dialled.
//!
//! The client here holds a certificate that the wrong server accepts (an
//! agency node's, a peer to every node), so nothing but the client's own
//! check of the server stands between it and a session with the wrong
//! agency.

use std::time::Duration;

use tocsin_core::{AgencyId, Identity};
use tocsin_testkit::{TestFederation, wait_until};
use tocsin_trust::tls::{self, Presented};
use tonic::transport::{Channel, Endpoint};

/// Connects now to `addr` with BE-VSSE's node certificate, expecting
/// `expected`'s node there: the connector every node and the CLI use.
async fn connect(
    fed: &TestFederation,
    addr: std::net::SocketAddr,
    expected: &str,
) -> anyhow::Result<Result<Channel, tonic::transport::Error>> {
    let material = fed.node_material("BE-VSSE")?;
    let config = tls::client_config(&material, Identity::Agency(AgencyId::new(expected)?))?;
    Ok(Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_secs(5))
        .connect_with_connector(tls::connector(config))
        .await)
}

async fn health(channel: Channel) -> Result<i32, tonic::Status> {
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    client
        .check(tonic_health::pb::HealthCheckRequest {
            service: "tocsin.v1.Federation".into(),
        })
        .await
        .map(|r| r.into_inner().status)
}

#[tokio::test]
async fn a_client_refuses_a_node_that_is_not_the_agency_it_expects() -> anyhow::Result<()> {
    // TR-MIT's node is not running: only its identity is expected.
    let fed = TestFederation::builder()
        .agencies(["TR-MIT", "FR-DGSI", "BE-VSSE"])
        .down(["TR-MIT"])
        .start()
        .await?;
    let fr = fed.addr("FR-DGSI")?;

    // The control: FR-DGSI's node gives BE-VSSE's certificate a session
    // when FR-DGSI is who the client expects.
    let channel = connect(&fed, fr, "FR-DGSI")
        .await?
        .map_err(anyhow::Error::from)?;
    assert_eq!(
        health(channel).await?,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    // Expecting TR-MIT at FR-DGSI's address: the client hangs up, and says
    // whose node answered.
    let before = fed.metrics("FR-DGSI").await?;
    let err = match connect(&fed, fr, "TR-MIT").await? {
        Ok(channel) => panic!(
            "a session with FR-DGSI's node while expecting TR-MIT's (health: {:?})",
            health(channel).await
        ),
        Err(err) => err,
    };
    let wrong = tls::unexpected_server(&err)
        .unwrap_or_else(|| panic!("no UnexpectedServer in {err:?}"))
        .clone();
    assert_eq!(wrong.expected, Identity::Agency(AgencyId::new("TR-MIT")?));
    assert_eq!(
        wrong.presented,
        Presented::Identity(Identity::Agency(AgencyId::new("FR-DGSI")?))
    );
    assert_eq!(wrong.address, fr.to_string());
    assert_eq!(
        wrong.to_string(),
        format!("the node at {fr} is FR-DGSI's, not TR-MIT's")
    );

    // The server saw the client end the handshake.
    let aborted = "tocsin_tls_handshake_refusals_total{reason=\"client_aborted\"}";
    let was = before.get(aborted).copied().unwrap_or_default();
    wait_until(
        Duration::from_secs(10),
        "FR-DGSI counts the handshake the client ended",
        || async {
            let now = fed.metrics("FR-DGSI").await.ok()?;
            (now.get(aborted).copied().unwrap_or_default() == was + 1.0).then_some(())
        },
    )
    .await?;
    Ok(())
}
