//! Alerts travel signed, arrive once, and come back with a receipt that
//! proves exactly what was received.

use prost::Message;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};
use tocsin_core::to_timestamp;
use tocsin_proto::{ALERT_PAYLOAD_TYPE, RECEIPT_PAYLOAD_TYPE, pb};
use tocsin_testkit::flow::{delivery, id_of};
use tocsin_testkit::{AlertBuilder, TestFederation, draft, sign_as};
use tocsin_trust::Verifier;
use tocsin_trust::signing::digest;

use tocsin_testkit::Fault;
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
    let tr = fed.desk("TR-MIT").await?;
    let fr = fed.desk("FR-DGSI").await?;

    let sent = tr.submit(draft(&["FR-DGSI"])).await?;
    let id = id_of(&sent);
    assert_eq!(sent.direction, pb::Direction::Outbound as i32);
    assert_eq!(
        delivery(&sent, "FR-DGSI").unwrap().state,
        pb::DeliveryState::Pending as i32
    );

    let record = tr.wait_delivered(&id, "FR-DGSI").await?;
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
    let inbox = fr.list(pb::Direction::Inbound).await?;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].envelope, record.envelope);
    assert_eq!(inbox[0].receipt.as_ref(), Some(&receipt_env));
    assert!(fr.list(pb::Direction::Outbound).await?.is_empty());
    assert!(tr.list(pb::Direction::Inbound).await?.is_empty());
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
    let fr = fed.desk("FR-DGSI").await?;
    assert_eq!(fr.list(pb::Direction::Inbound).await?.len(), 1);
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
    let fr = fed.desk("FR-DGSI").await?;
    let stored = fr.alert(&alert.id).await?;
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
    let tr = fed.desk("TR-MIT").await?;
    let mut alert = draft(&["FR-DGSI"]);
    alert.originator = "BE-VSSE".into();
    let err = tr.submit(alert).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");

    let fr = fed.desk("FR-DGSI").await?;
    assert!(fr.list(pb::Direction::Inbound).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn alerts_go_only_to_the_agencies_they_name() -> anyhow::Result<()> {
    let fed = TestFederation::builder()
        .agencies(["IQ-INIS", "FR-DGSI", "BE-VSSE", "DE-BFV"])
        .start()
        .await?;
    let iq = fed.desk("IQ-INIS").await?;
    let sent = iq.submit(draft(&["FR-DGSI", "BE-VSSE"])).await?;
    let id = id_of(&sent);
    assert_eq!(sent.deliveries.len(), 2);
    iq.wait_delivered(&id, "FR-DGSI").await?;
    iq.wait_delivered(&id, "BE-VSSE").await?;
    let de = fed.desk("DE-BFV").await?;
    assert!(de.list(pb::Direction::Inbound).await?.is_empty());
    let err = de.alert(&id).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");

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
    let tr = fed.desk("TR-MIT").await?;
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
        let err = tr.submit(alert).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        assert!(err.message().contains(field), "{field}: {}", err.message());
    }
    assert!(tr.list(pb::Direction::Outbound).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn resubmitting_with_the_same_id_is_idempotent() -> anyhow::Result<()> {
    let fed = TestFederation::builder().start().await?;
    let tr = fed.desk("TR-MIT").await?;
    let mut alert = draft(&["FR-DGSI"]);
    alert.id = tocsin_core::AlertId::generate().to_string();
    let first = tr.submit(alert.clone()).await?;
    let again = tr.submit(alert.clone()).await?;
    assert_eq!(first.envelope, again.envelope);

    alert.text = "something else".into();
    let err = tr.submit(alert).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    assert_eq!(tr.list(pb::Direction::Outbound).await?.len(), 1);
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
    let tr = fed.desk("TR-MIT").await?;
    let mut clash = draft(&["FR-DGSI"]);
    clash.id = alert.id.clone();
    clash.text = "second version".into();
    tr.submit(clash).await?;

    let record = tr
        .wait_state(&alert.id, "FR-DGSI", pb::DeliveryState::Rejected)
        .await?;
    let rejected = delivery(&record, "FR-DGSI").unwrap();
    assert_eq!(rejected.attempts, 1);
    assert!(
        rejected.last_error.contains("AlreadyExists"),
        "{}",
        rejected.last_error
    );
    assert!(rejected.next_attempt_at.is_none());
    Ok(())
}

/// The outcome of one item of a DeliverBatch answer.
fn outcome(result: &pb::DeliverResult) -> Result<&pb::Envelope, (Code, &str)> {
    match result.outcome.as_ref() {
        Some(pb::deliver_result::Outcome::Receipt(r)) => Ok(r),
        Some(pb::deliver_result::Outcome::Refused(r)) => Err((Code::from(r.code), &r.message)),
        None => panic!("a result with no outcome"),
    }
}

#[tokio::test]
async fn a_batch_is_answered_alert_by_alert_as_deliver_would() -> anyhow::Result<()> {
    let fed = TestFederation::builder()
        .agencies(["TR-MIT", "FR-DGSI", "BE-VSSE"])
        .start()
        .await?;
    let mut peer = fed.peer_client("TR-MIT", "FR-DGSI")?;
    let (first, first_env) = signed_alert(&fed, "TR-MIT", &["FR-DGSI"], "first");
    let (_, mut tampered) = signed_alert(&fed, "TR-MIT", &["FR-DGSI"], "tampered");
    tampered.payload[3] ^= 1;
    let (_, relayed) = signed_alert(&fed, "BE-VSSE", &["FR-DGSI"], "relayed");
    let (second, second_env) = signed_alert(&fed, "TR-MIT", &["FR-DGSI"], "second");

    let results = peer
        .deliver_batch(pb::DeliverBatchRequest {
            alerts: vec![
                first_env.clone(),
                tampered,
                relayed,
                second_env.clone(),
                first_env.clone(),
            ],
        })
        .await?
        .into_inner()
        .results;
    assert_eq!(results.len(), 5);

    // Each good alert has a receipt for exactly what was sent, signed by
    // FR-DGSI; the same alert twice in a batch gets the same receipt.
    let verifier = Verifier::load(&fed.pki().ca_cert(), fed.federation().id())?;
    for (i, (alert, env)) in [(0, (&first, &first_env)), (3, (&second, &second_env))] {
        let receipt_env = outcome(&results[i]).unwrap();
        let signed = verifier.verify(receipt_env, RECEIPT_PAYLOAD_TYPE)?;
        assert_eq!(signed.signer.as_str(), "FR-DGSI");
        let receipt = pb::Receipt::decode(receipt_env.payload.as_slice())?;
        assert_eq!(receipt.alert_id, alert.id);
        assert_eq!(receipt.alert_digest, digest(env).to_vec());
    }
    assert_eq!(outcome(&results[4]), outcome(&results[0]));
    // The bad ones are refused with the codes Deliver gives them alone.
    let (code, message) = outcome(&results[1]).unwrap_err();
    assert_eq!(code, Code::InvalidArgument, "{message}");
    assert!(message.contains("signature"), "{message}");
    let (code, message) = outcome(&results[2]).unwrap_err();
    assert_eq!(code, Code::PermissionDenied, "{message}");

    let fr = fed.desk("FR-DGSI").await?;
    let mut stored: Vec<String> = fr
        .list(pb::Direction::Inbound)
        .await?
        .iter()
        .map(id_of)
        .collect();
    stored.sort();
    let mut expected = vec![first.id.clone(), second.id.clone()];
    expected.sort();
    assert_eq!(stored, expected);

    // Other content under a stored id, in a later batch: refused, and the
    // stored alert stays as it was.
    let mut altered = first.clone();
    altered.text = "altered".into();
    let altered = fed
        .signer("TR-MIT")?
        .sign(ALERT_PAYLOAD_TYPE, altered.encode_to_vec());
    let results = peer
        .deliver_batch(pb::DeliverBatchRequest {
            alerts: vec![altered],
        })
        .await?
        .into_inner()
        .results;
    assert_eq!(outcome(&results[0]).unwrap_err().0, Code::AlreadyExists);
    assert_eq!(fr.alert(&first.id).await?.alert.unwrap().text, "first");
    Ok(())
}

#[tokio::test]
async fn an_empty_or_oversized_batch_is_refused_as_a_whole() -> anyhow::Result<()> {
    let fed = TestFederation::builder().start().await?;
    let mut peer = fed.peer_client("TR-MIT", "FR-DGSI")?;
    let err = peer
        .deliver_batch(pb::DeliverBatchRequest { alerts: vec![] })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");

    let too_many: Vec<pb::Envelope> = (0..=tocsin_proto::MAX_DELIVER_BATCH)
        .map(|i| signed_alert(&fed, "TR-MIT", &["FR-DGSI"], &format!("alert {i}")).1)
        .collect();
    let err = peer
        .deliver_batch(pb::DeliverBatchRequest { alerts: too_many })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("1 to 64"), "{err:?}");
    let fr = fed.desk("FR-DGSI").await?;
    assert!(fr.list(pb::Direction::Inbound).await?.is_empty());
    Ok(())
}

/// Submits `n` alerts from TR-MIT to FR-DGSI, each with `text`; returns
/// their ids.
async fn submit_many(fed: &TestFederation, n: usize, text: &str) -> anyhow::Result<Vec<String>> {
    let tr = fed.desk("TR-MIT").await?;
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(
            tr.send(
                AlertBuilder::to(["FR-DGSI"])
                    .person(tocsin_testkit::Person::named("Salah Abdeslam"))
                    .text(text),
            )
            .await?,
        );
    }
    Ok(ids)
}

/// Waits until every alert of `ids` is delivered to FR-DGSI; checks each
/// receipt against the alert sent, and that FR-DGSI holds each.
async fn all_delivered_with_receipts(fed: &TestFederation, ids: &[String]) -> anyhow::Result<()> {
    let tr = fed.desk("TR-MIT").await?;
    let verifier = Verifier::load(&fed.pki().ca_cert(), fed.federation().id())?;
    for id in ids {
        let record = tr.wait_delivered(id, "FR-DGSI").await?;
        let d = delivery(&record, "FR-DGSI").unwrap();
        let receipt_env = d.receipt.clone().unwrap();
        verifier.verify(&receipt_env, RECEIPT_PAYLOAD_TYPE)?;
        let receipt = pb::Receipt::decode(receipt_env.payload.as_slice())?;
        assert_eq!(&receipt.alert_id, id);
        assert_eq!(
            receipt.alert_digest,
            digest(record.envelope.as_ref().unwrap()).to_vec()
        );
    }
    let fr = fed.desk("FR-DGSI").await?;
    for id in ids {
        let held = fr.alert(id).await?;
        assert_eq!(held.direction, pb::Direction::Inbound as i32, "{id}");
    }
    Ok(())
}

/// A stand-in at FR-DGSI's address, with FR-DGSI's certificate, that
/// passes every Deliver and DeliverBatch on to FR-DGSI's real node and
/// counts them; or, standing for a node from before DeliverBatch, answers
/// DeliverBatch with UNIMPLEMENTED, as tonic answers a method a service
/// does not have.
#[derive(Clone)]
struct Interposer {
    fr: pb::federation_client::FederationClient<tonic::transport::Channel>,
    knows_batches: bool,
    delivers: Arc<AtomicUsize>,
    /// The number of alerts in each DeliverBatch request, in order.
    batches: Arc<Mutex<Vec<usize>>>,
}

type Answer<T> = Result<tonic::Response<T>, tonic::Status>;

#[tonic::async_trait]
impl pb::federation_server::Federation for Interposer {
    async fn deliver(
        &self,
        request: tonic::Request<pb::DeliverRequest>,
    ) -> Answer<pb::DeliverResponse> {
        self.delivers.fetch_add(1, SeqCst);
        self.fr.clone().deliver(request.into_inner()).await
    }

    async fn deliver_batch(
        &self,
        request: tonic::Request<pb::DeliverBatchRequest>,
    ) -> Answer<pb::DeliverBatchResponse> {
        let request = request.into_inner();
        self.batches.lock().unwrap().push(request.alerts.len());
        if !self.knows_batches {
            return Err(tonic::Status::unimplemented("no DeliverBatch here"));
        }
        self.fr.clone().deliver_batch(request).await
    }

    async fn acknowledge(
        &self,
        _: tonic::Request<pb::AcknowledgeRequest>,
    ) -> Answer<pb::AcknowledgeResponse> {
        Err(tonic::Status::unimplemented("not in this test"))
    }

    async fn remind(&self, _: tonic::Request<pb::RemindRequest>) -> Answer<pb::RemindResponse> {
        Err(tonic::Status::unimplemented("not in this test"))
    }

    async fn notify_escalation(
        &self,
        _: tonic::Request<pb::NotifyEscalationRequest>,
    ) -> Answer<pb::NotifyEscalationResponse> {
        Err(tonic::Status::unimplemented("not in this test"))
    }
}

impl Interposer {
    /// Starts one in front of FR-DGSI, on the proxy from TR-MIT, which is
    /// left dropping every connection: the test heals it when TR-MIT's
    /// alerts are queued.
    async fn start(fed: &TestFederation, knows_batches: bool) -> anyhow::Result<Self> {
        use tocsin_trust::tls;
        let interposer = Interposer {
            fr: fed.peer_client("TR-MIT", "FR-DGSI")?,
            knows_batches,
            delivers: Default::default(),
            batches: Default::default(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let config = tls::server_config(
            &fed.node_material("FR-DGSI")?,
            Arc::new(|_: &tocsin_core::Identity| true),
        )?;
        let incoming =
            tls::Acceptor::new(listener, config, tls::AcceptorLimits::default()).into_stream();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(pb::federation_server::FederationServer::new(
                    interposer.clone(),
                ))
                .serve_with_incoming(incoming),
        );
        let proxy = fed.proxy("TR-MIT", "FR-DGSI")?;
        proxy.set(Fault::Drop);
        proxy.retarget(addr);
        proxy.reset_all();
        Ok(interposer)
    }

    fn batches(&self) -> Vec<usize> {
        self.batches.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn alerts_waiting_together_are_delivered_together() -> anyhow::Result<()> {
    // 100 alerts queue while the link to FR-DGSI is down, then leave in
    // requests of up to 32 (the outbox's per_request) once it is up.
    let fed = TestFederation::builder()
        .through_proxy("TR-MIT", "FR-DGSI")
        .start()
        .await?;
    let counted = Interposer::start(&fed, true).await?;
    let ids = submit_many(&fed, 100, "queued").await?;
    fed.proxy("TR-MIT", "FR-DGSI")?.heal();
    all_delivered_with_receipts(&fed, &ids).await?;
    // Were they sent one per request, there would be 100 requests.
    let batches = counted.batches();
    let requests = batches.len() + counted.delivers.load(SeqCst);
    assert!(
        batches.contains(&32),
        "no request of 32 alerts: {batches:?}"
    );
    assert!(batches.iter().all(|&n| n <= 32), "{batches:?}");
    assert!(
        requests <= 10,
        "{requests} requests for 100 alerts: {batches:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_batch_too_large_for_the_peer_goes_alert_by_alert() -> anyhow::Result<()> {
    // FR-DGSI takes messages of at most 24 KiB; TR-MIT would pack up to
    // 1 MiB. Six alerts of about 9 KiB each queue while the link is down,
    // so TR-MIT sends them in one request, which FR-DGSI refuses as a
    // whole; each then goes alone, and fits.
    let small = tocsin_node::config::Limits {
        max_message_bytes: 24 * 1024,
        ..Default::default()
    };
    let fed = TestFederation::builder()
        .through_proxy("TR-MIT", "FR-DGSI")
        .limits_for("FR-DGSI", small)
        .start()
        .await?;
    let counted = Interposer::start(&fed, true).await?;
    let ids = submit_many(&fed, 6, &"x".repeat(9 * 1024)).await?;
    fed.proxy("TR-MIT", "FR-DGSI")?.heal();
    // Were the refusal of the batch taken as each alert's, all six would
    // be rejected for good.
    all_delivered_with_receipts(&fed, &ids).await?;
    let batches = counted.batches();
    assert!(
        batches.iter().any(|&n| n > 1),
        "the alerts were never sent together: {batches:?}"
    );
    assert!(counted.delivers.load(SeqCst) >= 6, "{batches:?}");
    Ok(())
}

#[tokio::test]
async fn a_peer_without_deliver_batch_gets_every_alert_by_deliver() -> anyhow::Result<()> {
    let mut fed = TestFederation::builder()
        .through_proxy("TR-MIT", "FR-DGSI")
        .start()
        .await?;
    let older = Interposer::start(&fed, false).await?;
    fed.proxy("TR-MIT", "FR-DGSI")?.heal();

    // An alert alone goes by Deliver, which every node knows.
    let alone = submit_many(&fed, 1, "alone").await?;
    all_delivered_with_receipts(&fed, &alone).await?;
    assert!(older.batches().is_empty());

    // Six alerts wait while the link is down; TR-MIT restarts and finds
    // them due together. Their batch is refused as unknown, and each goes
    // by Deliver.
    fed.proxy("TR-MIT", "FR-DGSI")?.set(Fault::Drop);
    fed.proxy("TR-MIT", "FR-DGSI")?.reset_all();
    let together = submit_many(&fed, 6, "together").await?;
    fed.stop_node("TR-MIT").await?;
    fed.proxy("TR-MIT", "FR-DGSI")?.heal();
    fed.start_node("TR-MIT").await?;
    all_delivered_with_receipts(&fed, &together).await?;
    assert_eq!(
        older.batches(),
        [6],
        "DeliverBatch tried once, with all six"
    );
    assert!(older.delivers.load(SeqCst) >= 7);
    Ok(())
}
