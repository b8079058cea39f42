//! Watchlist sync between two real `tocsin node` processes: a new peer's
//! full sync of the owner's list, then batches of changes reaching a peer
//! that is caught up. Beside each, the bare stack (tonic over the same
//! mutual TLS) moving the same bytes in the same pages, one request at a
//! time as a puller does.
//!
//! The owner's entries are synthetic people with a realistic spread of
//! names (`tocsin_screening::synthetic`), published through the operator
//! API (`AddEntries`, 4,000 to a request) before the peer starts: the
//! owner's log, seqs and signatures are those the node itself writes.
//! Publishing is not part of any measured figure.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use prost::Message;
use tocsin_core::{AgencyId, Identity};
use tocsin_proto::pb;
use tocsin_proto::pb::watchlist_desk_client::WatchlistDeskClient;
use tocsin_proto::pb::watchlist_sync_client::WatchlistSyncClient;
use tocsin_screening::synthetic;
use tocsin_screening::{Candidate, Dob};
use tocsin_testkit::{NodeCommand, NodeProcess, channel};
use tocsin_trust::pki;
use tocsin_trust::tls::{self, AcceptorLimits, TlsMaterial};
use tonic::transport::Channel;

use crate::drive::{Figures, Progress};
use crate::echo;
use crate::net::EchoService;
use crate::process::{NODE, OPERATOR, PEER, Site};

/// Entries in one `AddEntries` request: well under the node's default
/// message limit of 1 MiB (a synthetic entry encodes in about 110 bytes),
/// and under its limit of 10,000 entries a request.
const ADD_BATCH: usize = 4_000;
/// The issue's targets.
const FULL_TARGET_S: f64 = 60.0;
const CHANGES_TARGET_MS: f64 = 1000.0;

/// What to measure.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SyncLoad {
    /// Entries the owner holds before the peer starts.
    #[arg(long, short, default_value_t = 1_000_000)]
    pub(crate) n: usize,
    /// Changes published in one go for each incremental round.
    #[arg(long, default_value_t = 1000)]
    pub(crate) changes: usize,
    /// Incremental rounds.
    #[arg(long, default_value_t = 5)]
    pub(crate) rounds: usize,
    /// How often to ask the peer how far it has got, in ms. Each answer
    /// counts the entries the peer holds, work the peer does beside the
    /// sync, so a million-entry run should not ask every millisecond.
    #[arg(long, default_value_t = 20)]
    pub(crate) poll_ms: u64,
    /// Seed of the synthetic people.
    #[arg(long, default_value_t = 15)]
    pub(crate) seed: u64,
    /// The `tocsin` binary (default: next to this one).
    #[arg(long)]
    pub(crate) tocsin: Option<PathBuf>,
}

/// A synthetic person as an entry of the owner's list, releasable to the
/// peer. Its identifiers stay out: a person subject has none.
pub(crate) fn entry(c: &Candidate) -> pb::WatchlistEntry {
    let (names, aliases) = c.names.split_at(1.min(c.names.len()));
    pb::WatchlistEntry {
        owner: String::new(),
        r#ref: format!("W-{:08}", c.key),
        subject: Some(pb::Subject {
            kind: Some(pb::subject::Kind::Person(pb::Person {
                names: names.to_vec(),
                aliases: aliases.to_vec(),
                // The wire holds full dates only: a year alone is left out.
                date_of_birth: match c.dob {
                    Some(d @ Dob::Date { .. }) => d.to_string(),
                    _ => String::new(),
                },
                nationalities: c.nationalities.clone(),
                documents: c
                    .documents
                    .iter()
                    .map(|d| pb::Document {
                        kind: d.kind.clone(),
                        number: d.number.clone(),
                        issuing_country: d.country.clone().unwrap_or_default(),
                    })
                    .collect(),
            })),
        }),
        reason: "wanted for questioning".into(),
        action: pb::WatchlistAction::DiscreetCheck as i32,
        hit_precedence: pb::Precedence::Routine as i32,
        tlp: pb::Tlp::Amber as i32,
        releasable_to: vec![PEER.into()],
        review_at: None,
        expires_at: None,
        hit_threshold: 0.0,
    }
}

/// Largest message a bench client or server sends or takes: a batch of
/// screens' results, or a page of a million-entry sync, is larger than
/// tonic's 4 MiB default.
pub(crate) const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// The operator client of `agency`'s node on `site`.
pub(crate) fn desk(site: &Site, agency: &str) -> anyhow::Result<WatchlistDeskClient<Channel>> {
    Ok(WatchlistDeskClient::new(desk_channel(site, agency)?)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES))
}

/// A mutual-TLS channel to `agency`'s node as its operator.
pub(crate) fn desk_channel(site: &Site, agency: &str) -> anyhow::Result<Channel> {
    let id = AgencyId::new(agency)?;
    let material = TlsMaterial::load(
        &site.layout.ca_cert(),
        &site.layout.operator_cert(&id, OPERATOR),
        &site.layout.operator_key(&id, OPERATOR),
        site.node.federation.id(),
    )?;
    channel(addr(site, &id)?, &material, &id)
}

fn addr(site: &Site, id: &AgencyId) -> anyhow::Result<std::net::SocketAddr> {
    Ok(site
        .node
        .federation
        .agency(id)
        .context("agency not in the federation")?
        .endpoint
        .parse()?)
}

/// How to run `agency`'s node on `site`.
fn command(site: &Site, agency: &str) -> anyhow::Result<NodeCommand> {
    let id = AgencyId::new(agency)?;
    Ok(
        NodeCommand::new(&site.tocsin, site.layout.agency_dir(&id).join("node.toml"))
            .env("RUST_LOG", "warn")
            .log_file(site.dir.path().join(format!("{agency}.log")))
            .ready_timeout(Duration::from_secs(120)),
    )
}

/// The owner's row of the peer's sync status.
async fn status(desk: &mut WatchlistDeskClient<Channel>) -> anyhow::Result<pb::OwnerSyncStatus> {
    let owners = desk
        .sync_status(pb::SyncStatusRequest {})
        .await?
        .into_inner()
        .owners;
    owners
        .into_iter()
        .find(|o| o.owner == NODE)
        .context("the peer's sync status does not name the owner")
}

/// Polls the peer until it has applied the owner's log up to `seq` and
/// holds `held` entries; returns the status then.
async fn until_applied(
    desk: &mut WatchlistDeskClient<Channel>,
    seq: u64,
    held: u64,
    poll: Duration,
    patience: Duration,
) -> anyhow::Result<pb::OwnerSyncStatus> {
    let started = Instant::now();
    loop {
        if let Ok(s) = status(desk).await {
            if s.cursor >= seq {
                if s.held != held {
                    bail!(
                        "the peer applied up to {} but holds {} entries, not {held}",
                        s.cursor,
                        s.held
                    );
                }
                return Ok(s);
            }
            if !s.last_refusal.is_empty() {
                bail!("the peer refused the owner's log: {}", s.last_refusal);
            }
        }
        if started.elapsed() > patience {
            bail!("the peer did not apply up to seq {seq} within {patience:?}");
        }
        tokio::time::sleep(poll).await;
    }
}

/// Publishes `entries` at the owner in requests of [`ADD_BATCH`]; returns
/// the seq of the last.
async fn publish(
    desk: &mut WatchlistDeskClient<Channel>,
    entries: Vec<pb::WatchlistEntry>,
    progress: Option<&Progress>,
) -> anyhow::Result<u64> {
    let mut last = 0;
    let mut entries = entries.into_iter().peekable();
    while entries.peek().is_some() {
        let batch: Vec<_> = entries.by_ref().take(ADD_BATCH).collect();
        let len = batch.len();
        let records = desk
            .add_entries(pb::AddEntriesRequest { entries: batch })
            .await?
            .into_inner()
            .entries;
        last = records.last().map(|r| r.seq).unwrap_or(last);
        if let Some(p) = progress {
            p.add(len);
        }
    }
    Ok(last)
}

/// One page of the owner's log as the peer pulls it: its encoded size and
/// how many changes it holds.
async fn page_shape(site: &Site) -> anyhow::Result<(usize, usize)> {
    let owner = AgencyId::new(NODE)?;
    let peer = AgencyId::new(PEER)?;
    let material = TlsMaterial::load(
        &site.layout.ca_cert(),
        &site.layout.node_cert(&peer),
        &site.layout.node_key(&peer),
        site.node.federation.id(),
    )?;
    let mut client = WatchlistSyncClient::new(channel(addr(site, &owner)?, &material, &owner)?)
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
    let page = client
        .pull_changes(pb::PullChangesRequest {
            after_seq: 0,
            limit: 0,
        })
        .await?
        .into_inner();
    anyhow::ensure!(!page.changes.is_empty(), "the owner served an empty page");
    Ok((page.encoded_len(), page.changes.len()))
}

/// The bare stack: `pages` sequential pulls of `bytes` each over the same
/// mutual TLS as the nodes (the peer's certificates, one long-lived HTTP/2
/// connection). Returns how long they took.
async fn bare_pulls(site: &Site, pages: &[usize]) -> anyhow::Result<Duration> {
    let owner = AgencyId::new(NODE)?;
    let peer = AgencyId::new(PEER)?;
    let load = |id: &AgencyId| {
        TlsMaterial::load(
            &site.layout.ca_cert(),
            &site.layout.node_cert(id),
            &site.layout.node_key(id),
            site.node.federation.id(),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let local = listener.local_addr()?;
    let config = tls::server_config(&load(&owner)?, Arc::new(|_: &Identity| true))?;
    let incoming = tls::Acceptor::new(listener, config, AcceptorLimits::default()).into_stream();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(
                echo::echo_server::EchoServer::new(EchoService)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES),
            )
            .serve_with_incoming_shutdown(incoming, async move {
                let _ = stopped.await;
            }),
    );
    let mut client = echo::echo_client::EchoClient::new(channel(local, &load(&peer)?, &owner)?)
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
    // Warm the connection, as the peer's long-lived channel is.
    client.fetch(echo::FetchRequest { size: 1 }).await?;
    let started = Instant::now();
    for &size in pages {
        client
            .fetch(echo::FetchRequest {
                size: u32::try_from(size)?,
            })
            .await?;
    }
    let took = started.elapsed();
    let _ = stop.send(());
    let _ = server.await;
    Ok(took)
}

/// The pages a pull of `n` changes takes, each of its size in bytes, for
/// pages of `count` changes in `bytes`.
fn pages_for(n: usize, (bytes, count): (usize, usize)) -> Vec<usize> {
    let per = bytes as f64 / count as f64;
    (0..n)
        .step_by(count)
        .map(|start| (per * (n - start).min(count) as f64).ceil() as usize)
        .collect()
}

async fn stop(mut node: NodeProcess) -> anyhow::Result<()> {
    node.terminate().await?;
    Ok(())
}

/// The whole benchmark: full sync of `load.n` entries, then
/// `load.rounds` rounds of `load.changes` changes, each beside the bare
/// stack moving the same bytes.
pub(crate) async fn sync(load: &SyncLoad) -> anyhow::Result<Vec<Figures>> {
    let tocsin = tocsin_testkit::tocsin_binary(load.tocsin.as_deref())?;
    let site = Site::new(tocsin)?;
    pki::issue_operator(
        &site.layout,
        &site.peer.federation,
        &site.peer.agency,
        OPERATOR,
    )?;
    let n = load.n;
    let poll = Duration::from_millis(load.poll_ms.max(1));
    let mut owner = command(&site, NODE)?.spawn()?;
    owner.wait_serving().await?;
    let mut owner_desk = desk(&site, NODE)?;

    eprintln!("  publishing {n} entries at the owner (not timed)");
    let people = synthetic::stream(n + load.changes * load.rounds, load.seed);
    let mut people = people.map(|c| entry(&c));
    let progress = Progress::new("published", n);
    let published = Instant::now();
    let head = publish(
        &mut owner_desk,
        people.by_ref().take(n).collect(),
        Some(&progress),
    )
    .await?;
    let publish_s = published.elapsed().as_secs_f64();
    anyhow::ensure!(head == n as u64, "the owner's log ends at {head}, not {n}");

    // The full sync: a peer with an empty store, from its spawn until its
    // sync status says it holds all n.
    let mut peer_desk = desk(&site, PEER)?;
    let spawned = Instant::now();
    let mut peer = command(&site, PEER)?.spawn()?;
    let serving = peer.wait_serving().await?;
    let full = until_applied(
        &mut peer_desk,
        head,
        n as u64,
        poll,
        Duration::from_secs(1800),
    )
    .await?;
    let full_s = spawned.elapsed().as_secs_f64();

    // The same bytes in the same pages over the bare stack.
    let shape = page_shape(&site).await?;
    let base_full = bare_pulls(&site, &pages_for(n, shape)).await?.as_secs_f64();

    // Changes reaching a peer that is caught up.
    let mut took = Vec::with_capacity(load.rounds);
    let mut held = n as u64;
    let mut last = full.clone();
    for _ in 0..load.rounds {
        let batch: Vec<_> = people.by_ref().take(load.changes).collect();
        let count = batch.len() as u64;
        let t = Instant::now();
        let seq = publish(&mut owner_desk, batch, None).await?;
        held += count;
        last = until_applied(&mut peer_desk, seq, held, poll, Duration::from_secs(120)).await?;
        took.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let base_incr = bare_pulls(&site, &pages_for(load.changes, shape))
        .await?
        .as_secs_f64()
        * 1000.0;
    stop(peer).await?;
    stop(owner).await?;

    let per_change = shape.0 as f64 / shape.1 as f64;
    let mut rows = vec![
        Figures {
            name: "sync: baseline".into(),
            n,
            seconds: base_full,
            throughput_per_s: n as f64 / base_full.max(1e-9),
            note: format!(
                "the bare stack pulling the same bytes ({:.0} MiB, {} pages of up to {} changes, \
                 {:.0} bytes a change) one request at a time over the same mutual TLS",
                per_change * n as f64 / (1 << 20) as f64,
                pages_for(n, shape).len(),
                shape.1,
                per_change,
            ),
            ..Default::default()
        },
        Figures {
            name: "sync: full".into(),
            n,
            seconds: full_s,
            throughput_per_s: n as f64 / full_s.max(1e-9),
            baseline_ratio: Some(base_full / full_s.max(1e-9)),
            held: Some(full.held),
            note: format!(
                "a new peer (empty store) from its spawn until its sync status holds all {n} \
                 (serving after {:.2} s); target <= {FULL_TARGET_S} s: {}; publishing them at the \
                 owner beforehand took {publish_s:.1} s (not timed)",
                serving.as_secs_f64(),
                if full_s <= FULL_TARGET_S {
                    "met"
                } else {
                    "NOT met"
                },
            ),
            ..Default::default()
        },
    ];
    let mut sorted = took.clone();
    sorted.sort_by(f64::total_cmp);
    if let (Some(&p50), Some(&max)) = (sorted.get(sorted.len() / 2), sorted.last()) {
        rows.push(Figures {
            name: "sync: changes".into(),
            n: load.changes,
            seconds: max / 1000.0,
            throughput_per_s: load.changes as f64 * 1000.0 / p50.max(1e-9),
            p50_ms: p50,
            p99_ms: max,
            p999_ms: max,
            baseline_ratio: Some(base_incr / p50.max(1e-9)),
            held: Some(last.held),
            note: format!(
                "{} rounds of {} new entries in one AddEntries at the owner, timed from the \
                 request until the peer's sync status shows them applied (p99 and p99.9 are the \
                 max); the bare stack moves the same bytes in {base_incr:.2} ms; target <= \
                 {CHANGES_TARGET_MS} ms: {}; rounds: {}",
                load.rounds,
                load.changes,
                if max <= CHANGES_TARGET_MS {
                    "met"
                } else {
                    "NOT met"
                },
                took.iter()
                    .map(|t| format!("{t:.0}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            ..Default::default()
        });
    }
    Ok(rows)
}
