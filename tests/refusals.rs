//! A node refuses each kind of unwanted session, counts it under its
//! reason on the metrics endpoint, and logs a bounded number of lines for
//! each source address however many refusals it causes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{
    CertificateParams, ExtendedKeyUsagePurpose, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tocsin_core::{AgencyId, FederationId};
use tocsin_testkit::{TestFederation, wait_until};
use tocsin_trust::pki::{self, CertificateAuthority};
use tocsin_trust::refusals::{LOG_BURST, LOG_REFILL, Refusal};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const PATIENCE: Duration = Duration::from_secs(10);

/// A client certificate chain and its key.
type Credentials = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn credentials(cert_pem: &str, key_pem: &str) -> Credentials {
    (
        vec![CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap()],
        PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap(),
    )
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A client certificate signed by the federation CA with `sans` and
/// `(not_before, not_after)` years, bypassing the PKI's checks: what an
/// attacker holding a mis-issued certificate would have.
fn mis_issued(fed: &TestFederation, sans: Vec<SanType>, years: Option<(i32, i32)>) -> Credentials {
    let ca_key = KeyPair::from_pem(&read(&fed.pki().ca_key())).unwrap();
    let issuer = Issuer::from_ca_cert_pem(&read(&fed.pki().ca_cert()), ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = sans;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    if let Some((from, to)) = years {
        params.not_before = rcgen::date_time_ymd(from, 1, 1);
        params.not_after = rcgen::date_time_ymd(to, 1, 1);
    }
    let cert = params.signed_by(&key, &issuer).unwrap();
    credentials(&cert.pem(), &key.serialize_pem())
}

fn spiffe(uri: &str) -> SanType {
    SanType::URI(uri.try_into().unwrap())
}

/// What a TLS client does: checks the node's certificate against `root`
/// by the name `localhost` (node certificates carry it) and presents
/// `client`. Returns whether the node gave it a session: an accepted
/// session begins with the node's HTTP/2 settings, a refused one ends.
async fn tls_probe(
    addr: SocketAddr,
    root: &CertificateDer<'static>,
    client: Option<Credentials>,
) -> bool {
    let mut store = rustls::RootCertStore::empty();
    store.add(root.clone()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(store);
    let mut config = match client {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = TcpStream::connect(addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from("localhost").unwrap();
    // In TLS 1.3 the client finishes its side before the node has checked
    // its certificate: the refusal comes as the connection ends.
    let Ok(mut stream) = connector.connect(name, tcp).await else {
        return false;
    };
    let mut buf = [0u8; 256];
    tokio::time::timeout(PATIENCE, stream.read(&mut buf))
        .await
        .expect("the node neither served nor refused")
        .is_ok_and(|n| n > 0)
}

/// Sends `bytes` from `from` (any loopback address) and reads until the
/// node closes the connection.
async fn raw_probe(addr: SocketAddr, from: [u8; 4], bytes: &[u8]) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    if bytes.is_empty() {
        stream.shutdown().await.unwrap();
    }
    let mut buf = [0u8; 256];
    let end = tokio::time::timeout(PATIENCE, async {
        while let Ok(n) = stream.read(&mut buf).await
            && n > 0
        {}
    });
    end.await.expect("the node kept a garbage connection open");
}

const REFUSALS: &str = "tocsin_tls_handshake_refusals_total";

/// Every reason's count on TR-MIT's metrics endpoint.
async fn counts(fed: &TestFederation) -> Counts {
    let prefix = format!("{REFUSALS}{{reason=\"");
    fed.metrics("TR-MIT")
        .await
        .expect("scrape TR-MIT")
        .into_iter()
        .filter_map(|(series, value)| {
            let reason = series.strip_prefix(&prefix)?.strip_suffix("\"}")?;
            Some((reason.to_owned(), value))
        })
        .collect()
}

type Counts = BTreeMap<String, f64>;

/// Waits until exactly one more refusal than `before` is counted, under
/// `reason`; then that is `before`.
async fn counted_once(fed: &TestFederation, before: &mut Counts, reason: &str) {
    assert!(
        before.contains_key(reason),
        "no series for {reason:?}: {before:?}"
    );
    let mut expected = before.clone();
    *expected.entry(reason.to_owned()).or_default() += 1.0;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let now = counts(fed).await;
        if now == expected {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            let changed: Vec<_> = now
                .iter()
                .filter(|(r, n)| before.get(*r) != Some(*n))
                .collect();
            panic!("expected one more refusal as {reason}; the counts that changed: {changed:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    *before = expected;
}

#[tokio::test]
async fn each_kind_of_refusal_is_counted_under_its_reason() -> anyhow::Result<()> {
    // TR-MIT starts once an operator certificate is revoked, so that its
    // CRL lists it from the start.
    let mut fed = TestFederation::builder()
        .down(["TR-MIT", "FR-DGSI"])
        .start()
        .await?;
    let fed_id = fed.federation().id().clone();
    fed.operator_material("TR-MIT", "revoked")?;
    let revoked_cert = fed
        .pki()
        .operator_cert(&AgencyId::new("TR-MIT")?, "revoked");
    pki::revoke(fed.pki(), &fed_id, std::slice::from_ref(&revoked_cert))?;
    fed.start_node("TR-MIT").await?;
    let addr = fed.addr("TR-MIT")?;
    let ca = CertificateDer::from_pem_slice(read(&fed.pki().ca_cert()).as_bytes())?;
    let tr_uri = format!("spiffe://{fed_id}/agency/TR-MIT");
    let fr_uri = format!("spiffe://{fed_id}/agency/FR-DGSI");

    // The control: the same client with a good certificate gets a
    // session, which counts no refusal.
    let good = fed.operator_material("TR-MIT", "analyst")?;
    let good = (good.chain.clone(), good.key.clone_key());
    assert!(tls_probe(addr, &ca, Some(good)).await);
    let mut before = counts(&fed).await;
    assert_eq!(before.len(), Refusal::ALL.len(), "{before:?}");
    assert!(before.values().all(|n| *n == 0.0), "{before:?}");

    raw_probe(
        addr,
        [127, 0, 0, 1],
        b"GET / HTTP/1.1\r\nHost: tocsin\r\n\r\n",
    )
    .await;
    counted_once(&fed, &mut before, "not_tls").await;

    raw_probe(addr, [127, 0, 0, 1], b"").await;
    counted_once(&fed, &mut before, "closed").await;

    assert!(!tls_probe(addr, &ca, None).await);
    counted_once(&fed, &mut before, "no_client_certificate").await;

    let rogue_ca = CertificateAuthority::generate(&fed_id)?;
    let rogue = rogue_ca.issue_operator(&AgencyId::new("TR-MIT")?, "analyst")?;
    assert!(
        !tls_probe(
            addr,
            &ca,
            Some(credentials(&rogue.cert_pem, &rogue.key_pem))
        )
        .await
    );
    counted_once(&fed, &mut before, "unknown_ca").await;

    // A client that does not trust the node ends the handshake itself.
    let rogue_root = CertificateDer::from_pem_slice(rogue_ca.cert_pem().as_bytes())?;
    assert!(!tls_probe(addr, &rogue_root, None).await);
    counted_once(&fed, &mut before, "client_aborted").await;

    let revoked = (
        vec![CertificateDer::from_pem_slice(
            read(&revoked_cert).as_bytes(),
        )?],
        PrivateKeyDer::from_pem_slice(
            read(&fed.pki().operator_key(&AgencyId::new("TR-MIT")?, "revoked")).as_bytes(),
        )?,
    );
    assert!(!tls_probe(addr, &ca, Some(revoked)).await);
    counted_once(&fed, &mut before, "revoked").await;

    let expired = mis_issued(&fed, vec![spiffe(&tr_uri)], Some((2001, 2002)));
    assert!(!tls_probe(addr, &ca, Some(expired)).await);
    counted_once(&fed, &mut before, "expired").await;

    // An agency's signing certificate is for envelopes, not TLS.
    let fr = AgencyId::new("FR-DGSI")?;
    let signing = credentials(
        &read(&fed.pki().signing_cert(&fr)),
        &read(&fed.pki().signing_key(&fr)),
    );
    assert!(!tls_probe(addr, &ca, Some(signing)).await);
    counted_once(&fed, &mut before, "wrong_purpose").await;

    let no_uri = mis_issued(
        &fed,
        vec![SanType::DnsName("intruder.example".try_into()?)],
        None,
    );
    assert!(!tls_probe(addr, &ca, Some(no_uri)).await);
    counted_once(&fed, &mut before, "no_identity").await;

    let two_uris = mis_issued(&fed, vec![spiffe(&tr_uri), spiffe(&fr_uri)], None);
    assert!(!tls_probe(addr, &ca, Some(two_uris)).await);
    counted_once(&fed, &mut before, "several_identities").await;

    // The federation CA's key, another federation's name.
    let other = CertificateAuthority::load(
        &fed.pki().ca_cert(),
        &fed.pki().ca_key(),
        &FederationId::new("other.tocsin")?,
    )?
    .issue_node(&fr, &[])?;
    assert!(
        !tls_probe(
            addr,
            &ca,
            Some(credentials(&other.cert_pem, &other.key_pem))
        )
        .await
    );
    counted_once(&fed, &mut before, "other_federation").await;

    let outsider = CertificateAuthority::load(&fed.pki().ca_cert(), &fed.pki().ca_key(), &fed_id)?
        .issue_node(&AgencyId::new("XX-ROGUE")?, &[])?;
    assert!(
        !tls_probe(
            addr,
            &ca,
            Some(credentials(&outsider.cert_pem, &outsider.key_pem))
        )
        .await
    );
    counted_once(&fed, &mut before, "unknown_agency").await;

    let foreign = fed.operator_material("FR-DGSI", "analyst")?;
    assert!(
        !tls_probe(
            addr,
            &ca,
            Some((foreign.chain.clone(), foreign.key.clone_key()))
        )
        .await
    );
    counted_once(&fed, &mut before, "foreign_operator").await;
    Ok(())
}

/// Log output, captured.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

impl Captured {
    /// The refusal lines logged for connections from `ip`.
    fn refusals_from(&self, ip: &str) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        text.lines()
            .filter(|l| l.contains("refused TLS session") && l.contains(&format!("remote={ip}:")))
            .map(str::to_owned)
            .collect()
    }
}

/// Garbage sent again and again from one address: every refusal is
/// counted, a bounded number is logged, the rest are counted as
/// suppressed, and another address still gets its lines.
#[tokio::test]
async fn garbage_from_one_address_is_logged_a_bounded_number_of_times() -> anyhow::Result<()> {
    // This test's runtime runs on this thread alone, and so does every
    // node task: a subscriber for this thread sees the node's log.
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let fed = TestFederation::builder().down(["FR-DGSI"]).start().await?;
    let addr = fed.addr("TR-MIT")?;
    let started = tokio::time::Instant::now();
    const SENT: usize = 100;
    for _ in 0..SENT {
        raw_probe(addr, [127, 0, 0, 1], &[0x42; 512]).await;
    }
    let not_tls = format!("{REFUSALS}{{reason=\"not_tls\"}}");
    let metrics = wait_until(PATIENCE, "every garbage connection is counted", || async {
        let m = fed.metrics("TR-MIT").await.ok()?;
        (m.get(&not_tls).copied() == Some(SENT as f64)).then_some(m)
    })
    .await?;
    let elapsed = started.elapsed();

    let logged = captured.refusals_from("127.0.0.1");
    let bound =
        LOG_BURST as usize + (elapsed.as_secs_f64() / LOG_REFILL.as_secs_f64()).ceil() as usize;
    assert!(!logged.is_empty(), "no refusal logged at all");
    assert!(
        logged.len() <= bound,
        "{} lines for {SENT} refusals from one address in {elapsed:?} (at most {bound}):\n{}",
        logged.len(),
        logged.join("\n")
    );
    assert!(
        logged.iter().all(|l| l.contains("reason=\"not_tls\"")),
        "{logged:?}"
    );
    assert_eq!(
        metrics
            .get("tocsin_tls_refusal_logs_suppressed_total")
            .copied(),
        Some((SENT - logged.len()) as f64),
        "every refusal not logged is counted as suppressed"
    );

    // Another address has a budget of its own.
    raw_probe(addr, [127, 0, 0, 2], &[0x42; 512]).await;
    wait_until(PATIENCE, "the refusal from 127.0.0.2 is logged", || async {
        (captured.refusals_from("127.0.0.2").len() == 1).then_some(())
    })
    .await?;
    Ok(())
}
