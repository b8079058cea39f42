//! A flood of large messages from one peer takes bounded memory on a real
//! `tocsin node` process: requests in flight per identity are counted
//! before their bodies are read, whatever streams and connections the
//! flood spreads over.

mod common;

use tocsin_core::{AgencyId, FederationId};
use tocsin_proto::pb;
use tocsin_proto::pb::federation_client::FederationClient;
use tocsin_testkit::{channel, draft, sign_as};
use tocsin_trust::Signer;
use tocsin_trust::tls::TlsMaterial;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_large_messages_takes_bounded_memory() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    // TR-MIT's node is never started: the test floods with its
    // certificate.
    let [tr_port, port] = common::free_ports(2)[..] else {
        unreachable!()
    };
    let federation = common::federation_file(
        dir,
        "memory.tocsin",
        &[("TR-MIT", tr_port), ("FR-DGSI", port)],
    );
    common::pki_init(dir, &federation, &[]);
    // Eight requests in flight per peer: four worked on, four waiting.
    let config = dir.join("pki/agencies/FR-DGSI/node.toml");
    let mut settings: toml::Table = std::fs::read_to_string(&config)?.parse()?;
    let limits = settings
        .get_mut("limits")
        .and_then(toml::Value::as_table_mut)
        .expect("node.toml has a [limits] table");
    for key in ["peer_concurrency", "peer_queue"] {
        // Replaced, not added: a key missing here would mean the flood
        // runs against limits the node no longer reads.
        let old = limits.insert(key.into(), toml::Value::Integer(4));
        assert!(old.is_some(), "node.toml has no [limits] {key}");
    }
    std::fs::write(&config, toml::to_string(&settings)?)?;
    let node = common::node(dir, "FR-DGSI").start().await?;

    let fed = FederationId::new("memory.tocsin")?;
    let pki = dir.join("pki/agencies/TR-MIT");
    let material = TlsMaterial::load(
        &dir.join("pki/ca.crt"),
        &pki.join("node.crt"),
        &pki.join("node.key"),
        &fed,
    )?;
    let signer = Signer::load(&pki.join("signing.crt"), &pki.join("signing.key"), &fed)?;
    let fr = AgencyId::new("FR-DGSI")?;
    let addr = format!("127.0.0.1:{port}").parse()?;
    let client = |material: &TlsMaterial| -> anyhow::Result<_> {
        Ok(FederationClient::new(channel(addr, material, &fr)?).max_encoding_message_size(4 << 20))
    };
    // One small delivery first, so that what the flood adds is measured
    // from a node that has served one.
    let small = sign_as(&signer, draft(&["FR-DGSI"])).1;
    client(&material)?
        .deliver(pb::DeliverRequest { alert: Some(small) })
        .await?;
    let pid = node.pid().expect("the node runs");
    let before = tocsin_testkit::resident_mib(pid)?.1;

    // 160 deliveries of about 1 MB each at once, over four connections.
    let mut big = draft(&["FR-DGSI"]);
    big.text = "A".repeat(1000 * 1000);
    let big = sign_as(&signer, big).1;
    let mut flood = Vec::new();
    for _ in 0..4 {
        let c = client(&material)?;
        for _ in 0..40 {
            let (mut c, big) = (c.clone(), big.clone());
            flood.push(tokio::spawn(async move {
                c.deliver(pb::DeliverRequest { alert: Some(big) })
                    .await
                    .map_err(|s| s.code())
            }));
        }
    }
    // Each is either refused unread (RESOURCE_EXHAUSTED) or read and
    // judged (the text is over the alert's limit: INVALID_ARGUMENT).
    let mut refused = 0;
    for f in flood {
        match f.await? {
            Err(tonic::Code::ResourceExhausted) => refused += 1,
            Err(tonic::Code::InvalidArgument) | Ok(_) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    let after = tocsin_testkit::resident_mib(pid)?.1;
    // Eight messages of 1 MB in flight at most, with their decoding and
    // checking; without the bound the node held all 160 (about 160 MB).
    assert!(
        after - before < 64.0,
        "the node grew from {before:.1} to {after:.1} MiB under the flood"
    );
    assert!(refused > 0, "nothing refused");
    Ok(())
}
