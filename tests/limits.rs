//! Bad input gets a gRPC error naming the problem, and the node keeps
//! serving everyone else.

use prost::Message;
use tocsin_core::to_timestamp;
use tocsin_proto::{ALERT_PAYLOAD_TYPE, pb};
use tocsin_testkit::PATIENCE;
use tocsin_testkit::flow::id_of;
use tocsin_testkit::{TestFederation, draft, sign_as, wait_until};
use tokio::io::AsyncWriteExt;
use tonic::Code;

#[tokio::test]
async fn an_oversized_message_is_refused_and_the_node_still_serves() -> anyhow::Result<()> {
    let fed = TestFederation::builder().start().await?;
    let tr = fed.desk("TR-MIT").await?;
    let mut huge = draft(&["FR-DGSI"]);
    huge.text = "A".repeat(2 * 1024 * 1024);
    let err = tr.submit(huge).await.unwrap_err();
    // tonic reports a message over the decoding limit as OUT_OF_RANGE.
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");
    assert!(err.message().contains("too large"), "{err:?}");

    // The same connection and a peer's both still work.
    let sent = tr.submit(draft(&["FR-DGSI"])).await?;
    tr.wait_delivered(&id_of(&sent), "FR-DGSI").await?;

    // And from a peer: an oversized delivery is refused too.
    let mut peer = fed.peer_client("FR-DGSI", "TR-MIT")?;
    let env = pb::Envelope {
        payload_type: ALERT_PAYLOAD_TYPE.into(),
        payload: vec![0u8; 2 * 1024 * 1024],
        signature: None,
    };
    let err = peer
        .deliver(pb::DeliverRequest { alert: Some(env) })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");
    Ok(())
}

#[tokio::test]
async fn malformed_envelopes_are_refused_with_invalid_argument() -> anyhow::Result<()> {
    let fed = TestFederation::builder().start().await?;
    let mut peer = fed.peer_client("TR-MIT", "FR-DGSI")?;
    let signer = fed.signer("TR-MIT")?;

    let mut valid = draft(&["FR-DGSI"]);
    valid.id = tocsin_core::AlertId::generate().to_string();
    valid.originator = "TR-MIT".into();
    valid.created_at = Some(to_timestamp(chrono::Utc::now()));

    let mut bad_sig = signer.sign(ALERT_PAYLOAD_TYPE, valid.encode_to_vec());
    bad_sig.signature.as_mut().unwrap().sig[0] ^= 0xff;

    let mut no_subjects = valid.clone();
    no_subjects.subjects.clear();

    let cases = [
        ("missing envelope", None, "missing envelope"),
        (
            "unsigned",
            Some(pb::Envelope {
                payload_type: ALERT_PAYLOAD_TYPE.into(),
                payload: valid.encode_to_vec(),
                signature: None,
            }),
            "no signature",
        ),
        ("bad signature", Some(bad_sig), "signature does not match"),
        (
            "garbage payload",
            Some(signer.sign(ALERT_PAYLOAD_TYPE, vec![0xff, 0xff, 0xff, 0x0f])),
            "not an alert",
        ),
        (
            "wrong payload type",
            Some(signer.sign("text/plain", valid.encode_to_vec())),
            "payload type",
        ),
        (
            "no subjects",
            Some(signer.sign(ALERT_PAYLOAD_TYPE, no_subjects.encode_to_vec())),
            "`subjects`",
        ),
    ];
    for (what, env, needle) in cases {
        let err = peer
            .deliver(pb::DeliverRequest { alert: env })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{what}: {err:?}");
        assert!(err.message().contains(needle), "{what}: {}", err.message());
    }

    // The valid one still goes through.
    let ok = signer.sign(ALERT_PAYLOAD_TYPE, valid.encode_to_vec());
    assert!(
        peer.deliver(pb::DeliverRequest { alert: Some(ok) })
            .await
            .is_ok()
    );
    Ok(())
}

#[tokio::test]
async fn silent_connections_do_not_hold_up_other_clients() -> anyhow::Result<()> {
    let fed = TestFederation::builder().start().await?;
    let addr = fed.addr("TR-MIT")?;
    // Half-open and garbage connections that never complete a handshake.
    let mut idle = Vec::new();
    for i in 0..50 {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        if i % 2 == 0 {
            s.write_all(b"GET / HTTP/1.1\r\n\r\n").await?;
        }
        idle.push(s);
    }
    let tr = fed.desk("TR-MIT").await?;
    let sent = tr.submit(draft(&["FR-DGSI"])).await?;
    tr.wait_delivered(&id_of(&sent), "FR-DGSI").await?;
    drop(idle);
    Ok(())
}

#[tokio::test]
async fn a_flooding_peer_is_refused_while_another_still_delivers() -> anyhow::Result<()> {
    let fed = TestFederation::builder()
        .agencies(["TR-MIT", "BE-VSSE", "FR-DGSI"])
        .limits(tocsin_node::config::Limits {
            peer_concurrency: 2,
            peer_queue: 2,
            ..Default::default()
        })
        .start()
        .await?;
    // TR-MIT floods FR-DGSI straight from a peer client, 40 at once.
    let flooder = fed.peer_client("TR-MIT", "FR-DGSI")?;
    let signer = fed.signer("TR-MIT")?;
    let mut flood = Vec::new();
    for _ in 0..40 {
        let (_, env) = sign_as(&signer, draft(&["FR-DGSI"]));
        let mut client = flooder.clone();
        flood.push(tokio::spawn(async move {
            client
                .deliver(pb::DeliverRequest { alert: Some(env) })
                .await
        }));
    }
    // Meanwhile BE-VSSE's alert goes through its outbox as usual.
    let be = fed.desk("BE-VSSE").await?;
    let sent = be.submit(draft(&["FR-DGSI"])).await?;
    let (mut accepted, mut refused) = (0, 0);
    for f in flood {
        match f.await? {
            Ok(_) => accepted += 1,
            Err(s) if s.code() == Code::ResourceExhausted => {
                assert!(s.message().contains("TR-MIT"), "{s:?}");
                refused += 1;
            }
            Err(s) => panic!("unexpected {s:?}"),
        }
    }
    // Two at once and two waiting: of 40 sent together, most are refused,
    // none hang, and some get through.
    assert!(accepted >= 2, "accepted {accepted}");
    assert!(refused > 0, "nothing refused");
    assert_eq!(accepted + refused, 40);
    be.wait_delivered(&id_of(&sent), "FR-DGSI").await?;
    Ok(())
}

#[tokio::test]
async fn a_peer_holding_too_many_sessions_gets_no_more_while_others_deliver() -> anyhow::Result<()>
{
    let fed = TestFederation::builder()
        .agencies(["TR-MIT", "BE-VSSE", "FR-DGSI"])
        .limits(tocsin_node::config::Limits {
            max_connections_per_peer: 3,
            ..Default::default()
        })
        .start()
        .await?;
    let signer = fed.signer("TR-MIT")?;
    let deliver = |client: &mut tocsin_proto::pb::federation_client::FederationClient<_>| {
        let (_, env) = sign_as(&signer, draft(&["FR-DGSI"]));
        let mut client = client.clone();
        async move {
            client
                .deliver(pb::DeliverRequest { alert: Some(env) })
                .await
        }
    };
    // TR-MIT's own node holds one session with FR-DGSI once it has
    // delivered; make sure it has, so the count below is exact.
    let tr = fed.desk("TR-MIT").await?;
    let first = tr.submit(draft(&["FR-DGSI"])).await?;
    tr.wait_delivered(&id_of(&first), "FR-DGSI").await?;

    // Two more connections of TR-MIT's reach the cap of three...
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut client = fed.peer_client("TR-MIT", "FR-DGSI")?;
        deliver(&mut client).await?;
        held.push(client);
    }
    // ... so a fourth is closed as soon as it is made.
    let mut extra = fed.peer_client("TR-MIT", "FR-DGSI")?;
    let err = deliver(&mut extra).await.unwrap_err();
    assert!(err.message().contains("transport error"), "{err:?}");
    // Half-open TCP connections on top of that hold nothing up either.
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(tokio::net::TcpStream::connect(fed.addr("FR-DGSI")?).await?);
    }
    // Another agency is not affected.
    let be = fed.desk("BE-VSSE").await?;
    let sent = be.submit(draft(&["FR-DGSI"])).await?;
    be.wait_delivered(&id_of(&sent), "FR-DGSI").await?;
    // And a held connection given back frees its slot.
    drop(held.pop());
    wait_until(PATIENCE, "a freed slot is taken", || {
        let mut extra = extra.clone();
        let deliver = &deliver;
        async move { deliver(&mut extra).await.ok() }
    })
    .await?;
    Ok(())
}

/// Everything at once from one peer (a flood of concurrent deliveries over
/// many streams, oversized and malformed messages, half-open and garbage
/// connections, sessions beyond its cap) while another peer keeps
/// delivering through its outbox: every one of the other peer's alerts
/// arrives, and each kind of abuse gets its own refusal. (Memory under a
/// flood is measured by the `flood` benchmark, not asserted in a test.)
#[tokio::test]
async fn one_peer_abusing_every_limit_does_not_stop_another_delivering() -> anyhow::Result<()> {
    let fed = TestFederation::builder()
        .agencies(["TR-MIT", "BE-VSSE", "FR-DGSI"])
        .limits(tocsin_node::config::Limits {
            peer_concurrency: 4,
            peer_queue: 4,
            max_connections_per_peer: 4,
            ..Default::default()
        })
        .start()
        .await?;
    let addr = fed.addr("FR-DGSI")?;
    let signer = fed.signer("TR-MIT")?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));

    // Half-open and garbage TCP connections, held throughout.
    let mut idle = Vec::new();
    for i in 0..40 {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        if i % 2 == 0 {
            s.write_all(&[0x16, 0x03, 0x01, 0xff, 0xff]).await?;
        }
        idle.push(s);
    }

    // TR-MIT's node holds one session with FR-DGSI once it has delivered.
    let tr = fed.desk("TR-MIT").await?;
    let first = tr.submit(draft(&["FR-DGSI"])).await?;
    tr.wait_delivered(&id_of(&first), "FR-DGSI").await?;

    // Floods: three more connections (the cap is four), each with 32
    // deliveries in flight, mixing valid, oversized and malformed ones.
    let mut floods = Vec::new();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::<
        String,
        u32,
    >::new()));
    // All three connected before any flood starts, and before the probe
    // below races them for slots.
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut client = fed.peer_client("TR-MIT", "FR-DGSI")?;
        let (_, env) = sign_as(&signer, draft(&["FR-DGSI"]));
        client
            .deliver(pb::DeliverRequest { alert: Some(env) })
            .await?;
        clients.push(client);
    }
    for client in clients {
        for lane in 0..32 {
            let (mut client, signer, stop, seen) = (
                client.clone(),
                fed.signer("TR-MIT")?,
                stop.clone(),
                seen.clone(),
            );
            floods.push(tokio::spawn(async move {
                let mut i = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    i += 1;
                    let env = match (lane + i) % 3 {
                        0 => {
                            let mut huge = draft(&["FR-DGSI"]);
                            huge.text = "A".repeat(2 * 1024 * 1024);
                            sign_as(&signer, huge).1
                        }
                        1 => signer.sign(ALERT_PAYLOAD_TYPE, vec![0xff, 0xff, 0xff, 0x0f]),
                        _ => sign_as(&signer, draft(&["FR-DGSI"])).1,
                    };
                    let code = match client
                        .deliver(pb::DeliverRequest { alert: Some(env) })
                        .await
                    {
                        Ok(_) => "OK".to_owned(),
                        Err(s) => format!("{:?}", s.code()),
                    };
                    *seen.lock().unwrap().entry(code).or_default() += 1;
                }
            }));
        }
    }
    // A fifth session of TR-MIT's is refused while the floods hold theirs.
    let extra_refused = wait_until(PATIENCE, "a session beyond the cap is refused", || {
        let fed = &fed;
        let signer = &signer;
        async move {
            let (_, env) = sign_as(signer, draft(&["FR-DGSI"]));
            let mut extra = fed.peer_client("TR-MIT", "FR-DGSI").ok()?;
            let err = extra
                .deliver(pb::DeliverRequest { alert: Some(env) })
                .await
                .err()?;
            err.message().contains("transport error").then_some(())
        }
    })
    .await;

    // Meanwhile BE-VSSE sends ten alerts through its outbox, as usual.
    let be = fed.desk("BE-VSSE").await?;
    let mut sent = Vec::new();
    for _ in 0..10 {
        sent.push(id_of(&be.submit(draft(&["FR-DGSI"])).await?));
    }
    for id in &sent {
        be.wait_delivered(id, "FR-DGSI").await?;
    }
    // The flood goes on until each kind of abuse has been answered.
    wait_until(PATIENCE, "every kind of abuse answered", || {
        let seen = seen.clone();
        async move {
            let seen = seen.lock().unwrap();
            ["OK", "OutOfRange", "InvalidArgument"]
                .iter()
                .all(|c| seen.contains_key(*c))
                .then_some(())
        }
    })
    .await?;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for f in floods {
        f.await?;
    }
    let codes = seen.lock().unwrap().clone();
    drop(idle);
    extra_refused?;
    // Each kind of abuse met its own answer, and nothing else came back.
    for code in ["OK", "OutOfRange", "InvalidArgument"] {
        assert!(
            codes.get(code).is_some_and(|n| *n > 0),
            "no {code}: {codes:?}"
        );
    }
    let known = ["OK", "OutOfRange", "InvalidArgument", "ResourceExhausted"];
    assert!(
        codes.keys().all(|c| known.contains(&c.as_str())),
        "unexpected answers: {codes:?}"
    );
    // The node still serves the flooder's own operator.
    let fr = fed.desk("FR-DGSI").await?;
    assert!(fr.alert(&sent[0]).await.is_ok());
    Ok(())
}
