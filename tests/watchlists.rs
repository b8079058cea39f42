//! Watchlists: every node holds the entries releasable to its agency, from
//! every owner, and keeps them current through updates, removals, expiry,
//! narrowed releasability and restarts; a forged or gapped log is refused.

use std::sync::Arc;

use prost::Message;
use tocsin_proto::pb;
use tocsin_testkit::{Fault, ManualClock, TestFederation, WatchEntry};

fn refs(records: &[pb::WatchlistRecord]) -> Vec<String> {
    records
        .iter()
        .filter_map(|r| r.entry.as_ref())
        .map(|e| format!("{}/{}", e.owner, e.r#ref))
        .collect()
}

fn reason(record: &pb::WatchlistRecord) -> &str {
    record.entry.as_ref().map_or("", |e| e.reason.as_str())
}

#[tokio::test]
async fn an_agency_holds_what_is_releasable_to_it_and_nothing_else() -> anyhow::Result<()> {
    let fed = TestFederation::builder()
        .agencies(["TR-MIT", "FR-DGSI", "DE-BKA"])
        .start()
        .await?;
    let (tr, fr, de) = (
        fed.desk("TR-MIT").await?,
        fed.desk("FR-DGSI").await?,
        fed.desk("DE-BKA").await?,
    );
    tr.publish(WatchEntry::person("W-1", "Ana Ruiz").to(["FR-DGSI"]))
        .await?;
    tr.publish(WatchEntry::identifier("W-2", "phone", "+33 6 12 34 56 78").to(["DE-BKA"]))
        .await?;
    fr.publish(WatchEntry::person("F-1", "Marc Dubois").to(["TR-MIT", "DE-BKA"]))
        .await?;

    // Each has read all of TR-MIT's log (seqs 1 and 2), the change it may
    // not read as a stub.
    fr.wait_synced("TR-MIT", 2).await?;
    de.wait_synced("TR-MIT", 2).await?;
    de.wait_held("FR-DGSI", "F-1").await?;
    tr.wait_held("FR-DGSI", "F-1").await?;
    assert_eq!(refs(&fr.held("TR-MIT").await?), ["TR-MIT/W-1"]);
    assert_eq!(refs(&de.held("TR-MIT").await?), ["TR-MIT/W-2"]);
    // The owner's list shows its own and what it holds of others.
    assert_eq!(
        refs(&tr.entries().await?),
        ["FR-DGSI/F-1", "TR-MIT/W-1", "TR-MIT/W-2"]
    );

    let status = de.sync_of("TR-MIT").await?;
    assert_eq!(
        (status.cursor, status.head, status.behind_changes),
        (2, 2, 0)
    );
    assert_eq!(status.held, 1);
    let metrics = fed.metrics("DE-BKA").await?;
    assert_eq!(
        metrics.get("tocsin_watchlist_sync_lag_entries{owner=\"TR-MIT\"}"),
        Some(&0.0)
    );
    assert_eq!(
        metrics.get("tocsin_watchlist_sync_lag_seconds{owner=\"FR-DGSI\"}"),
        Some(&0.0)
    );
    Ok(())
}

#[tokio::test]
async fn updates_narrowing_and_removals_reach_every_holder() -> anyhow::Result<()> {
    let fed = TestFederation::builder()
        .agencies(["TR-MIT", "FR-DGSI", "DE-BKA"])
        .start()
        .await?;
    let (tr, fr, de) = (
        fed.desk("TR-MIT").await?,
        fed.desk("FR-DGSI").await?,
        fed.desk("DE-BKA").await?,
    );
    let entry = WatchEntry::person("W-1", "Ana Ruiz").to(["FR-DGSI", "DE-BKA"]);
    tr.publish(entry.clone()).await?;
    fr.wait_held("TR-MIT", "W-1").await?;
    de.wait_held("TR-MIT", "W-1").await?;

    let updated = entry.clone().reason("seen in Lyon, armed");
    tr.update_entry(updated.clone()).await?;
    for desk in [&fr, &de] {
        desk.wait_held_where("TR-MIT", "W-1", "with the new reason", |r| {
            reason(r) == "seen in Lyon, armed"
        })
        .await?;
    }

    // Narrowed to FR-DGSI: DE-BKA's node drops it, FR-DGSI's keeps it.
    let narrowed = tr.update_entry(updated.to(["FR-DGSI"])).await?;
    de.wait_not_held("TR-MIT", "W-1").await?;
    de.wait_synced("TR-MIT", narrowed.seq).await?;
    let kept = fr
        .wait_held_where("TR-MIT", "W-1", "narrowed to FR-DGSI", |r| {
            r.entry
                .as_ref()
                .is_some_and(|e| e.releasable_to == ["FR-DGSI"])
        })
        .await?;
    assert_eq!(kept.seq, narrowed.seq);

    let removed = tr.remove_entry("W-1").await?;
    fr.wait_not_held("TR-MIT", "W-1").await?;
    de.wait_synced("TR-MIT", removed).await?;
    assert!(tr.held("TR-MIT").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn an_entry_expires_by_the_holders_clock_and_the_owner_logs_its_removal() -> anyhow::Result<()>
{
    let start = chrono::Utc::now();
    let tr_clock = Arc::new(ManualClock::new(start));
    let fr_clock = Arc::new(ManualClock::new(start));
    let fed = TestFederation::builder()
        .clock_for("TR-MIT", tr_clock.clone())
        .clock_for("FR-DGSI", fr_clock.clone())
        .start()
        .await?;
    let (tr, fr) = (fed.desk("TR-MIT").await?, fed.desk("FR-DGSI").await?);
    let expires = start + chrono::Duration::hours(1);
    tr.publish(
        WatchEntry::person("W-1", "Ana Ruiz")
            .to(["FR-DGSI"])
            .expires(expires),
    )
    .await?;
    tr.publish(WatchEntry::person("W-2", "Marc Dubois").to(["FR-DGSI"]))
        .await?;
    fr.wait_held("TR-MIT", "W-1").await?;
    fr.wait_synced("TR-MIT", 2).await?;

    // The holder's clock passes the expiry first: it drops the entry by
    // itself, before the owner says anything.
    fr_clock.advance(chrono::Duration::hours(2));
    fr.wait_not_held("TR-MIT", "W-1").await?;
    let status = fr.sync_of("TR-MIT").await?;
    assert_eq!((status.cursor, status.held), (2, 1));
    assert_eq!(refs(&fr.held("TR-MIT").await?), ["TR-MIT/W-2"]);

    // The owner's clock passes it: the owner logs the removal, which the
    // holder applies.
    tr_clock.advance(chrono::Duration::hours(2));
    fr.wait_synced("TR-MIT", 3).await?;
    assert_eq!(refs(&tr.held("TR-MIT").await?), ["TR-MIT/W-2"]);
    Ok(())
}

#[tokio::test]
async fn sync_survives_restarts_and_partitions_of_either_side() -> anyhow::Result<()> {
    let mut fed = TestFederation::builder()
        .through_proxy("FR-DGSI", "TR-MIT")
        .start()
        .await?;
    let tr = fed.desk("TR-MIT").await?;
    tr.publish(WatchEntry::person("W-1", "Ana Ruiz").to(["FR-DGSI"]))
        .await?;
    fed.desk("FR-DGSI")
        .await?
        .wait_held("TR-MIT", "W-1")
        .await?;

    // The holder is down while the owner changes its list.
    fed.stop_node("FR-DGSI").await?;
    tr.publish(WatchEntry::person("W-2", "Marc Dubois").to(["FR-DGSI"]))
        .await?;
    tr.remove_entry("W-1").await?;
    fed.start_node("FR-DGSI").await?;
    let fr = fed.desk("FR-DGSI").await?;
    fr.wait_held("TR-MIT", "W-2").await?;
    fr.wait_synced("TR-MIT", 3).await?;
    assert_eq!(refs(&fr.held("TR-MIT").await?), ["TR-MIT/W-2"]);

    // The owner restarts: the holder goes on from its cursor.
    fed.restart_node("TR-MIT").await?;
    let tr = fed.desk("TR-MIT").await?;
    tr.publish(WatchEntry::person("W-3", "Lea Martin").to(["FR-DGSI"]))
        .await?;
    fr.wait_held("TR-MIT", "W-3").await?;
    assert_eq!(fr.sync_of("TR-MIT").await?.cursor, 4);

    // Partitioned: the holder falls behind, and catches up when the link
    // heals.
    let link = fed.proxy("FR-DGSI", "TR-MIT")?;
    link.set(Fault::Drop);
    link.reset_all();
    tr.update_entry(
        WatchEntry::person("W-3", "Lea Martin")
            .to(["FR-DGSI"])
            .reason("left the country"),
    )
    .await?;
    link.heal();
    fr.wait_held_where("TR-MIT", "W-3", "with the new reason", |r| {
        reason(r) == "left the country"
    })
    .await?;
    assert_eq!(fr.sync_of("TR-MIT").await?.behind_changes, 0);
    Ok(())
}

#[tokio::test]
async fn bad_entries_are_refused_naming_the_field_and_nothing_is_half_added() -> anyhow::Result<()>
{
    let fed = TestFederation::builder().start().await?;
    let (tr, fr) = (fed.desk("TR-MIT").await?, fed.desk("FR-DGSI").await?);

    let mut nothing = WatchEntry::person("W-0", "x").to(["FR-DGSI"]);
    if let Some(pb::subject::Kind::Person(p)) = nothing
        .wire()
        .subject
        .as_mut()
        .and_then(|s| s.kind.as_mut())
    {
        p.names.clear();
    }
    let refused = tr.publish(nothing).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused
            .message()
            .contains("entries[0].subject.person.names"),
        "{}",
        refused.message()
    );

    let stranger = tr
        .publish(WatchEntry::person("W-0", "Ana Ruiz").to(["XX-NONE"]))
        .await
        .unwrap_err();
    assert!(
        stranger.message().contains("releasable_to[0]"),
        "{}",
        stranger.message()
    );

    let missing = tr
        .update_entry(WatchEntry::person("W-9", "Ana Ruiz").to(["FR-DGSI"]))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    assert!(missing.message().contains("W-9"), "{}", missing.message());
    assert_eq!(
        tr.remove_entry("W-9").await.unwrap_err().code(),
        tonic::Code::NotFound
    );

    // A batch whose second entry reuses a ref adds nothing at all.
    tr.publish(WatchEntry::person("W-1", "Ana Ruiz").to(["FR-DGSI"]))
        .await?;
    let taken = tr
        .publish_all(vec![
            WatchEntry::person("W-2", "Marc Dubois")
                .to(["FR-DGSI"])
                .into(),
            WatchEntry::person("W-1", "Ana Ruiz").to(["FR-DGSI"]).into(),
        ])
        .await
        .unwrap_err();
    assert_eq!(taken.code(), tonic::Code::AlreadyExists);
    assert!(
        taken.message().contains("entries[1]"),
        "{}",
        taken.message()
    );
    assert_eq!(refs(&tr.held("TR-MIT").await?), ["TR-MIT/W-1"]);
    // The log has no trace of it either: the next change is seq 2.
    let next = tr
        .publish(WatchEntry::person("W-3", "Lea Martin").to(["FR-DGSI"]))
        .await?;
    assert_eq!(next.seq, 2);
    fr.wait_synced("TR-MIT", 2).await?;
    assert_eq!(
        refs(&fr.held("TR-MIT").await?),
        ["TR-MIT/W-1", "TR-MIT/W-3"]
    );
    Ok(())
}

/// What a stand-in for TR-MIT serves.
#[derive(Clone)]
struct BadLog {
    changes: Vec<pb::Envelope>,
    head: u64,
}

type Answer<T> = Result<tonic::Response<T>, tonic::Status>;

#[tonic::async_trait]
impl pb::watchlist_sync_server::WatchlistSync for BadLog {
    async fn pull_changes(
        &self,
        request: tonic::Request<pb::PullChangesRequest>,
    ) -> Answer<pb::PullChangesResponse> {
        let after = request.into_inner().after_seq;
        Ok(tonic::Response::new(pb::PullChangesResponse {
            changes: if after == 0 {
                self.changes.clone()
            } else {
                vec![]
            },
            head: Some(pb::WatchlistHead {
                seq: self.head,
                at: None,
            }),
        }))
    }

    type FollowHeadStream =
        tokio_stream::wrappers::ReceiverStream<Result<pb::WatchlistHead, tonic::Status>>;

    async fn follow_head(
        &self,
        _: tonic::Request<pb::FollowHeadRequest>,
    ) -> Answer<Self::FollowHeadStream> {
        Err(tonic::Status::unavailable("not in this test"))
    }
}

/// A change of TR-MIT's list at `seq` putting `reference` for FR-DGSI,
/// signed by `signer`.
fn change(signer: &tocsin_trust::Signer, seq: u64, reference: &str) -> pb::Envelope {
    let mut entry: pb::WatchlistEntry = WatchEntry::person(reference, "Ana Ruiz")
        .to(["FR-DGSI"])
        .into();
    entry.owner = "TR-MIT".into();
    let change = pb::WatchlistChange {
        owner: "TR-MIT".into(),
        seq,
        authored_at: Some(tocsin_core::to_timestamp(chrono::Utc::now())),
        change: Some(pb::watchlist_change::Change::Put(entry)),
    };
    signer.sign(
        tocsin_proto::WATCHLIST_CHANGE_PAYLOAD_TYPE,
        change.encode_to_vec(),
    )
}

/// Puts a stand-in with TR-MIT's node certificate serving `log` on the
/// link from FR-DGSI to TR-MIT.
async fn serve_bad_log(fed: &TestFederation, log: BadLog) -> anyhow::Result<()> {
    use tocsin_trust::tls;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let config = tls::server_config(
        &fed.node_material("TR-MIT")?,
        Arc::new(|_: &tocsin_core::Identity| true),
    )?;
    let incoming =
        tls::Acceptor::new(listener, config, tls::AcceptorLimits::default()).into_stream();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(pb::watchlist_sync_server::WatchlistSyncServer::new(log))
            .serve_with_incoming(incoming),
    );
    let proxy = fed.proxy("FR-DGSI", "TR-MIT")?;
    proxy.retarget(addr);
    proxy.reset_all();
    Ok(())
}

#[tokio::test]
async fn a_log_signed_by_another_agency_is_refused() -> anyhow::Result<()> {
    let fed = TestFederation::builder()
        .agencies(["TR-MIT", "FR-DGSI", "DE-BKA"])
        .through_proxy("FR-DGSI", "TR-MIT")
        .start()
        .await?;
    let forger = fed.signer("DE-BKA")?;
    serve_bad_log(
        &fed,
        BadLog {
            changes: vec![change(&forger, 1, "W-1")],
            head: 1,
        },
    )
    .await?;
    let fr = fed.desk("FR-DGSI").await?;
    let status = fr.wait_refused("TR-MIT").await?;
    assert!(
        status
            .last_refusal
            .contains("signed by DE-BKA, not by its owner TR-MIT"),
        "{}",
        status.last_refusal
    );
    assert_eq!(status.cursor, 0);
    assert!(fr.held("TR-MIT").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_log_with_a_gap_is_refused_whole() -> anyhow::Result<()> {
    let fed = TestFederation::builder()
        .through_proxy("FR-DGSI", "TR-MIT")
        .start()
        .await?;
    let owner = fed.signer("TR-MIT")?;
    serve_bad_log(
        &fed,
        BadLog {
            changes: vec![change(&owner, 1, "W-1"), change(&owner, 3, "W-3")],
            head: 3,
        },
    )
    .await?;
    let fr = fed.desk("FR-DGSI").await?;
    let status = fr.wait_refused("TR-MIT").await?;
    assert!(
        status
            .last_refusal
            .contains("gap in the log: expected change 2, got 3"),
        "{}",
        status.last_refusal
    );
    // Not even the change before the gap is applied.
    assert_eq!(status.cursor, 0);
    assert!(fr.held("TR-MIT").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_log_putting_an_entry_not_releasable_to_the_reader_is_refused() -> anyhow::Result<()> {
    let fed = TestFederation::builder()
        .agencies(["TR-MIT", "FR-DGSI", "DE-BKA"])
        .through_proxy("FR-DGSI", "TR-MIT")
        .start()
        .await?;
    let owner = fed.signer("TR-MIT")?;
    let mut envelope = change(&owner, 1, "W-1");
    // The same change, for DE-BKA's eyes only, served to FR-DGSI.
    let mut wire = pb::WatchlistChange::decode(envelope.payload.as_slice())?;
    if let Some(pb::watchlist_change::Change::Put(entry)) = wire.change.as_mut() {
        entry.releasable_to = vec!["DE-BKA".into()];
    }
    envelope = owner.sign(
        tocsin_proto::WATCHLIST_CHANGE_PAYLOAD_TYPE,
        wire.encode_to_vec(),
    );
    serve_bad_log(
        &fed,
        BadLog {
            changes: vec![envelope],
            head: 1,
        },
    )
    .await?;
    let fr = fed.desk("FR-DGSI").await?;
    let status = fr.wait_refused("TR-MIT").await?;
    assert!(
        status.last_refusal.contains("not releasable to FR-DGSI"),
        "{}",
        status.last_refusal
    );
    assert!(fr.held("TR-MIT").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn only_peers_pull_and_only_the_agencys_operators_publish() -> anyhow::Result<()> {
    use tocsin_proto::pb::watchlist_desk_client::WatchlistDeskClient;
    use tocsin_proto::pb::watchlist_sync_client::WatchlistSyncClient;
    let fed = TestFederation::builder().start().await?;
    let tr = tocsin_core::AgencyId::new("TR-MIT")?;
    let addr = fed.addr("TR-MIT")?;

    // A peer node reads the log, as its agency may see it.
    let peer = tocsin_testkit::channel(addr, &fed.node_material("FR-DGSI")?, &tr)?;
    let page = WatchlistSyncClient::new(peer.clone())
        .pull_changes(pb::PullChangesRequest::default())
        .await?
        .into_inner();
    assert!(page.changes.is_empty());
    // ... but cannot publish on it.
    let refused = WatchlistDeskClient::new(peer)
        .list_entries(pb::ListEntriesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);

    // An operator publishes, but does not pull as a peer.
    let operator =
        tocsin_testkit::channel(addr, &fed.operator_material("TR-MIT", "analyst")?, &tr)?;
    let refused = WatchlistSyncClient::new(operator)
        .pull_changes(pb::PullChangesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    Ok(())
}

#[tokio::test]
async fn thousands_of_changes_arrive_in_pages() -> anyhow::Result<()> {
    let fed = TestFederation::builder().start().await?;
    let (tr, fr) = (fed.desk("TR-MIT").await?, fed.desk("FR-DGSI").await?);
    let entries = (0..2500)
        .map(|i| {
            WatchEntry::person(&format!("W-{i:04}"), "Ana Ruiz")
                .to(["FR-DGSI"])
                .into()
        })
        .collect();
    let started = std::time::Instant::now();
    tr.publish_all(entries).await?;
    let status = fr.wait_synced("TR-MIT", 2500).await?;
    eprintln!("2500 changes applied in {:?}", started.elapsed());
    assert_eq!(status.held, 2500);
    assert_eq!(fr.held("TR-MIT").await?.len(), 2500);

    // A page holds at most 1,000 changes, and about 512 KiB of them.
    let tr_id = tocsin_core::AgencyId::new("TR-MIT")?;
    let peer =
        tocsin_testkit::channel(fed.addr("TR-MIT")?, &fed.node_material("FR-DGSI")?, &tr_id)?;
    let mut sync = pb::watchlist_sync_client::WatchlistSyncClient::new(peer)
        .max_decoding_message_size(4 * 1024 * 1024);
    let page = sync
        .pull_changes(pb::PullChangesRequest::default())
        .await?
        .into_inner();
    let bytes: usize = page.changes.iter().map(Message::encoded_len).sum();
    assert!(
        (1..=1000).contains(&page.changes.len()) && bytes <= 512 * 1024,
        "{} changes, {bytes} bytes",
        page.changes.len()
    );
    let long = "x".repeat(4000);
    let large = (0..150)
        .map(|i| {
            WatchEntry::person(&format!("L-{i:03}"), "Ana Ruiz")
                .to(["FR-DGSI"])
                .reason(&long)
                .into()
        })
        .collect();
    tr.publish_all(large).await?;
    let page = sync
        .pull_changes(pb::PullChangesRequest {
            after_seq: 2500,
            limit: 0,
        })
        .await?
        .into_inner();
    let bytes: usize = page.changes.iter().map(Message::encoded_len).sum();
    assert!(page.changes.len() < 150, "{} changes", page.changes.len());
    assert!(bytes <= 512 * 1024, "{bytes} bytes");
    fr.wait_synced("TR-MIT", 2650).await?;
    Ok(())
}
