//! Screening through a real `tocsin node` process: how soon after its start
//! its index of N entries is ready, how many screens per second it answers
//! over real mutual-TLS gRPC, at what latency, and its resident memory.
//! Beside it, in the same run, the library alone screening the same
//! queries against the same entries in this process (the ceiling).
//!
//! The node's store is filled before the node starts, through the store
//! API the node itself uses for its own list (`append_own_watchlist`), with
//! the changes signed exactly as the node signs a publication
//! (`tocsin_node::own_watchlist_forms`, signed on two threads ahead of each
//! write since the seqs of a fresh log are known). The entries are the
//! node's own, so no screen sends a hit report (an agency does not report
//! its own list to itself): the figures are screening alone.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use prost::Message;
use rustix::time::{ClockId, clock_gettime};
use tocsin_core::AgencyId;
use tocsin_core::watchlist::Entry;
use tocsin_node::{NodeConfig, NodeOptions};
use tocsin_proto::desk::watchlist_desk_client::WatchlistDeskClient;
use tocsin_proto::pb;
use tocsin_proto::wire;
use tocsin_screening::{Candidate, Dob, Index, Query, synthetic};
use tocsin_store::{OwnChange, OwnEntry, OwnOp, SignForms, SignedForms, Store, StoreOptions};
use tocsin_testkit::{NodeCommand, NodeProcess};
use tonic::transport::Channel;

use crate::drive::{Figures, Load, Progress, drive};
use crate::process::{NODE, PEER, Site};
use crate::sync::{MAX_MESSAGE_BYTES, desk_channel, entry};

/// Entries written in one store transaction while preloading.
const PRELOAD_CHUNK: usize = 20_000;
/// The targets.
const RATE_TARGET: f64 = 10_000.0;
const P99_TARGET_MS: f64 = 5.0;
const RSS_TARGET_MIB: f64 = 1024.0;
const READY_TARGET_S: f64 = 30.0;
/// What the node logs, at INFO, once its index is built.
const BUILT_LINE: &str = "screening index built";

/// What to measure.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ScreenLoad {
    /// Entries in the node's store.
    #[arg(long, short, default_value_t = 1_000_000)]
    pub(crate) n: usize,
    /// Screens in each measured run.
    #[arg(long, default_value_t = 20_000)]
    pub(crate) queries: usize,
    /// Of the queries, the share (percent) that are variants of listed
    /// people; the rest are people not on the list.
    #[arg(long, default_value_t = 20)]
    pub(crate) listed_pct: usize,
    /// Unary `Screen` calls in flight.
    #[arg(long, short, default_value_t = 32)]
    pub(crate) c: usize,
    /// Requests in one `ScreenBatch`.
    #[arg(long, default_value_t = 50)]
    pub(crate) batch: usize,
    /// `ScreenBatch` calls in flight.
    #[arg(long, default_value_t = 4)]
    pub(crate) batch_c: usize,
    /// Matches a screen returns (`ScreenRequest.limit`; 0: the node's
    /// default). The library alone returns as many.
    #[arg(long, default_value_t = 0)]
    pub(crate) limit: u32,
    /// Seed of the synthetic people.
    #[arg(long, default_value_t = 15)]
    pub(crate) seed: u64,
    /// The `tocsin` binary (default: next to this one).
    #[arg(long)]
    pub(crate) tocsin: Option<PathBuf>,
}

/// CPU time of this process.
fn process_cpu() -> Duration {
    let t = clock_gettime(ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// CPU time (user + system) of process `pid`, from `/proc`.
fn cpu_of(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').context("malformed /proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11).context("no utime")?.parse::<u64>()?
        + fields.get(12).context("no stime")?.parse::<u64>()?;
    // USER_HZ is 100 on every Linux this runs on.
    Ok(Duration::from_millis(ticks * 10))
}

/// The candidate the node makes of `c`'s entry: the wire holds full dates
/// of birth only, and a person has no identifiers.
fn as_held(mut c: Candidate) -> Candidate {
    if matches!(c.dob, Some(Dob::Year(_))) {
        c.dob = None;
    }
    c.identifiers.clear();
    c
}

/// `q` as an operator's request.
fn request(q: &Query, reference: String, limit: u32) -> pb::ScreenRequest {
    pb::ScreenRequest {
        r#ref: reference,
        limit,
        person: Some(pb::Person {
            names: q.names.clone(),
            aliases: Vec::new(),
            date_of_birth: q.dob.map(|d| d.to_string()).unwrap_or_default(),
            nationalities: q.nationalities.clone(),
            documents: q
                .documents
                .iter()
                .map(|d| pb::Document {
                    kind: d.kind.clone(),
                    number: d.number.clone(),
                    issuing_country: d.country.clone().unwrap_or_default(),
                })
                .collect(),
        }),
        identifiers: Vec::new(),
        ..Default::default()
    }
}

/// The queries of a run: mostly people not on the list, every
/// `100 / listed_pct`-th a variant of a listed person, with the ref of the
/// entry it should find.
struct Queries {
    list: Vec<(Query, Option<String>)>,
}

impl Queries {
    fn requests(&self, limit: u32) -> Vec<pb::ScreenRequest> {
        self.list
            .iter()
            .enumerate()
            .map(|(i, (q, _))| request(q, format!("Q-{i}"), limit))
            .collect()
    }

    fn listed(&self) -> usize {
        self.list.iter().filter(|q| q.1.is_some()).count()
    }
}

/// Fills the node's store with the `n` synthetic people of `seed` as its
/// own entries; returns the people whose variants are screened for.
async fn preload(site: &Site, load: &ScreenLoad, listed: usize) -> anyhow::Result<Vec<Candidate>> {
    let agency = AgencyId::new(NODE)?;
    let config = site.layout.agency_dir(&agency).join("node.toml");
    let signer = Arc::new(NodeOptions::from_config(&NodeConfig::load(&config)?)?.signer);
    let store = Store::open(&site.node.data_dir, StoreOptions::default())?;
    let step = (load.n / listed.max(1)).max(1);
    let mut picked = Vec::with_capacity(listed);
    let progress = Progress::new("stored", load.n);
    let mut people = synthetic::stream(load.n, load.seed);
    let mut base = 0u64;
    loop {
        let chunk: Vec<Candidate> = people.by_ref().take(PRELOAD_CHUNK).collect();
        if chunk.is_empty() {
            break;
        }
        let at = tocsin_core::clock::truncate_ms(Utc::now());
        let mut changes = Vec::with_capacity(chunk.len());
        for c in &chunk {
            let mut wire = entry(c);
            wire.owner = NODE.into();
            let e = Entry::try_from(wire)?;
            changes.push(OwnChange {
                reference: e.reference.clone(),
                op: OwnOp::Add(OwnEntry {
                    entry: pb::WatchlistEntry::from(&e).encode_to_vec(),
                    releasable_to: vec![PEER.into()],
                    expires_at: None,
                }),
            });
            if (c.key as usize).is_multiple_of(step) && picked.len() < listed {
                picked.push(c.clone());
            }
        }
        let sign = tocsin_node::own_watchlist_forms(signer.clone(), agency.clone(), at);
        // The log is fresh, so change i of this chunk takes seq base + i + 1:
        // sign ahead on two threads, while the write thread is idle.
        let half = changes.len().div_ceil(2);
        let signed: Vec<SignedForms> = std::thread::scope(|s| {
            let parts: Vec<_> = changes
                .chunks(half)
                .enumerate()
                .map(|(p, part)| {
                    let sign = sign.clone();
                    s.spawn(move || {
                        part.iter()
                            .enumerate()
                            .map(|(i, c)| sign(base + (p * half + i) as u64 + 1, c, &[]))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            parts
                .into_iter()
                .flat_map(|h| h.join().expect("signing thread"))
                .collect()
        });
        let signed = Arc::new(signed);
        let ahead: SignForms = Arc::new(move |seq, change, before| {
            let i = seq.wrapping_sub(base + 1) as usize;
            match signed.get(i) {
                Some(forms) if before.is_empty() => forms.clone(),
                _ => sign(seq, change, before),
            }
        });
        let len = changes.len();
        let seqs = store.append_own_watchlist(changes, at, ahead).await?;
        anyhow::ensure!(
            seqs.first() == Some(&(base + 1)),
            "the log did not start where expected"
        );
        base += len as u64;
        progress.add(len);
    }
    store.close().await;
    Ok(picked)
}

/// The queries: `listed` variants of `picked` people, the rest people who
/// are not on the list (drawn from the same spread of names, so common
/// names have namesakes on it).
fn queries(load: &ScreenLoad, picked: &[Candidate]) -> Queries {
    let total = load.queries.max(1);
    let listed = picked.len();
    let mut strangers = synthetic::stream(total, load.seed ^ 0x5eed);
    let every = total.checked_div(listed).map_or(usize::MAX, |e| e.max(1));
    let mut next_listed = picked.iter();
    let mut list = Vec::with_capacity(total);
    for i in 0..total {
        let listed_one = if i % every == 0 {
            next_listed.next()
        } else {
            None
        };
        match listed_one {
            Some(c) => list.push((
                synthetic::query_for(c, c.key ^ load.seed),
                Some(format!("W-{:08}", c.key)),
            )),
            None => {
                let c = strangers.next().expect("enough strangers");
                list.push((synthetic::query_for(&c, c.key ^ 7), None));
            }
        }
    }
    Queries { list }
}

/// The library alone: the same entries in an index in this process, the
/// same queries screened on two threads. Returns (screens per CPU-second,
/// screens per second wall, listed people found as hits).
fn library(load: &ScreenLoad, queries: &Queries) -> (f64, f64, usize) {
    let index = Index::build(synthetic::stream(load.n, load.seed).map(as_held));
    let options = tocsin_node::screen_options(load.limit);
    let half = queries.list.len().div_ceil(2);
    let (cpu0, t0) = (process_cpu(), Instant::now());
    let found: usize = std::thread::scope(|s| {
        let parts: Vec<_> = queries
            .list
            .chunks(half)
            .map(|part| {
                let (index, options) = (&index, &options);
                s.spawn(move || {
                    part.iter()
                        .filter(|(q, expected)| {
                            let matches = index.screen(q, options);
                            expected.as_ref().is_some_and(|r| {
                                let key: u64 = r[2..].parse().unwrap_or(u64::MAX);
                                matches.iter().any(|m| m.hit && m.key == key)
                            })
                        })
                        .count()
                })
            })
            .collect();
        parts
            .into_iter()
            .map(|h| h.join().expect("screen thread"))
            .sum()
    });
    let (cpu, wall) = (process_cpu() - cpu0, t0.elapsed());
    let n = queries.list.len() as f64;
    (
        n / cpu.as_secs_f64().max(1e-9),
        n / wall.as_secs_f64().max(1e-9),
        found,
    )
}

/// How to run the node: logging at WARN, and its screening index's INFO
/// line.
fn command(site: &Site) -> anyhow::Result<NodeCommand> {
    let id = AgencyId::new(NODE)?;
    Ok(
        NodeCommand::new(&site.tocsin, site.layout.agency_dir(&id).join("node.toml"))
            .env("RUST_LOG", "warn,tocsin_node::screening=info")
            .log_file(site.dir.path().join(format!("{NODE}.log")))
            .ready_timeout(Duration::from_secs(300)),
    )
}

/// Screens `probe` from the node's spawn until it finds `want`; returns
/// how long that took from `spawned`.
async fn until_found(
    site: &Site,
    probe: &pb::ScreenRequest,
    want: &str,
    spawned: Instant,
) -> anyhow::Result<Duration> {
    let patience = Duration::from_secs(600);
    let mut client = desk(site)?;
    loop {
        let asked = client.screen(probe.clone());
        if let Ok(Ok(r)) = tokio::time::timeout(Duration::from_secs(5), asked).await
            && r.into_inner().matches.iter().any(|m| m.r#ref == want)
        {
            return Ok(spawned.elapsed());
        }
        if spawned.elapsed() > patience {
            bail!("the node did not find {want} within {patience:?} of its start");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The build time the node logged.
fn logged_build_ms(node: &NodeProcess) -> Option<u64> {
    let log = node.log();
    let line = log.lines().find(|l| l.contains(BUILT_LINE))?;
    let at = line.find("total_ms=")? + "total_ms=".len();
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// The node's desk, reading a screen's responses in their [`wire`] form:
/// every field of every match is decoded except its entry, which stays
/// encoded. The figures are the node's; an entry the load generator
/// decodes only to drop it costs the node, on the same two cores, the CPU
/// it spends (most of the client's, by a profile, see docs/benchmarks.md).
fn desk(site: &Site) -> anyhow::Result<WatchlistDeskClient<Channel>> {
    Ok(WatchlistDeskClient::new(desk_channel(site, NODE)?)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES))
}

/// What a run of screens saw.
#[derive(Default)]
struct Seen {
    found: AtomicU64,
    matches: AtomicU64,
    reported: AtomicU64,
    /// Matches that came without their entry.
    bare: AtomicU64,
}

impl Seen {
    fn note(&self, response: &wire::ScreenResponse, expected: Option<&String>) {
        self.matches
            .fetch_add(response.matches.len() as u64, Ordering::Relaxed);
        let reported = response
            .matches
            .iter()
            .filter(|m| !m.hit_report_id.is_empty())
            .count();
        self.reported.fetch_add(reported as u64, Ordering::Relaxed);
        let bare = response
            .matches
            .iter()
            .filter(|m| m.entry.is_empty())
            .count();
        self.bare.fetch_add(bare as u64, Ordering::Relaxed);
        if let Some(r) = expected
            && response.matches.iter().any(|m| m.hit && &m.r#ref == r)
        {
            self.found.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Unary screens of `requests` under `load`; returns how long they took
/// and their latencies.
async fn unary_run(
    client: &WatchlistDeskClient<Channel>,
    requests: &Arc<Vec<pb::ScreenRequest>>,
    expected: &Arc<Vec<Option<String>>>,
    seen: &Arc<Seen>,
    load: &Load,
) -> anyhow::Result<(Duration, hdrhistogram::Histogram<u64>)> {
    let (client, requests, expected, seen) = (
        client.clone(),
        requests.clone(),
        expected.clone(),
        seen.clone(),
    );
    let (started, ended, h) = drive(load, move |i| {
        let (mut client, requests, expected, seen) = (
            client.clone(),
            requests.clone(),
            expected.clone(),
            seen.clone(),
        );
        async move {
            let r = client.screen(requests[i].clone()).await?.into_inner();
            seen.note(&r, expected[i].as_ref());
            Ok(())
        }
    })
    .await?;
    Ok((ended - started, h))
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

/// The whole benchmark.
pub(crate) async fn screen(load: &ScreenLoad) -> anyhow::Result<Vec<Figures>> {
    let tocsin = tocsin_testkit::tocsin_binary(load.tocsin.as_deref())?;
    let site = Site::new(tocsin)?;
    let listed = load.queries * load.listed_pct.min(100) / 100;

    eprintln!(
        "  storing {} entries as the node's own list (not timed)",
        load.n
    );
    let t = Instant::now();
    let picked = preload(&site, load, listed).await?;
    let preload_s = t.elapsed().as_secs_f64();
    let queries = queries(load, &picked);
    let expected: Arc<Vec<Option<String>>> =
        Arc::new(queries.list.iter().map(|q| q.1.clone()).collect());
    let requests = Arc::new(queries.requests(load.limit));

    eprintln!("  the library alone on the same entries and queries");
    let (lib_per_cpu_s, lib_wall, lib_found) = library(load, &queries);

    // The node: from its spawn until a screen finds a listed person.
    let probe_person = picked.first().cloned().unwrap_or_else(|| {
        synthetic::stream(1, load.seed)
            .next()
            .expect("one synthetic person")
    });
    let probe = request(
        &Query {
            names: vec![probe_person.names[0].clone()],
            ..Default::default()
        },
        "probe".into(),
        load.limit,
    );
    let want = format!("W-{:08}", probe_person.key);
    eprintln!("  starting the node");
    let spawned = Instant::now();
    let mut node = command(&site)?.spawn()?;
    let (serving, ready) = tokio::join!(
        node.wait_serving(),
        until_found(&site, &probe, &want, spawned)
    );
    let (serving, ready) = (serving?, ready?);
    let pid = node.pid().context("the node exited")?;
    let (rss_ready, hwm_ready) = tocsin_testkit::resident_mib(pid)?;
    let build_ms = logged_build_ms(&node);

    let client = desk(&site)?;
    // Warm the connection and the node's caches as a running node has them.
    for r in requests.iter().take(200) {
        client.clone().screen(r.clone()).await?;
    }

    // Unary screens, `c` in flight, then two in flight for the latency of
    // a screen with little queueing ahead of it.
    let seen = Arc::new(Seen::default());
    let unary = Load {
        n: requests.len(),
        c: load.c,
        rate: None,
        baseline_n: None,
    };
    eprintln!("  unary screens, {} in flight", unary.c);
    let cpu0 = cpu_of(pid)?;
    let (elapsed, h) = unary_run(&client, &requests, &expected, &seen, &unary).await?;
    let unary_cpu = (cpu_of(pid)? - cpu0).as_secs_f64();
    let mut unary_fig = Figures::new("screen: unary", &unary, elapsed, &h);
    let quiet = Load {
        n: (requests.len() / 4).max(1),
        c: 2,
        rate: None,
        baseline_n: None,
    };
    let (elapsed, h) = unary_run(
        &client,
        &requests,
        &expected,
        &Seen::default().into(),
        &quiet,
    )
    .await?;
    let mut quiet_fig = Figures::new("screen: unary, 2 in flight", &quiet, elapsed, &h);
    quiet_fig.note = format!(
        "the first {} queries, Screen with two in flight: the latency of one screen with little \
         queueing ahead of it; target p99 <= {P99_TARGET_MS} ms: {}",
        quiet.n,
        met(quiet_fig.p99_ms <= P99_TARGET_MS),
    );

    // Batches, `batch_c` in flight.
    let batch = load.batch.max(1);
    let batches = requests.len().div_ceil(batch);
    let batch_seen = Arc::new(Seen::default());
    let batched = Load {
        n: batches,
        c: load.batch_c,
        rate: None,
        baseline_n: None,
    };
    eprintln!("  batches of {batch}, {} in flight", batched.c);
    let cpu0 = cpu_of(pid)?;
    let (b_started, b_ended, bh) = {
        let (client, requests, expected, seen) = (
            client.clone(),
            requests.clone(),
            expected.clone(),
            batch_seen.clone(),
        );
        drive(&batched, move |b| {
            let (mut client, requests, expected, seen) = (
                client.clone(),
                requests.clone(),
                expected.clone(),
                seen.clone(),
            );
            async move {
                let range = b * batch..((b + 1) * batch).min(requests.len());
                let results = client
                    .screen_batch(pb::ScreenBatchRequest {
                        requests: requests[range.clone()].to_vec(),
                    })
                    .await?
                    .into_inner()
                    .results;
                for (r, i) in results.iter().zip(range) {
                    seen.note(r, expected[i].as_ref());
                }
                Ok(())
            }
        })
        .await?
    };
    let batch_cpu = (cpu_of(pid)? - cpu0).as_secs_f64();
    let (rss_after, hwm_after) = tocsin_testkit::resident_mib(pid)?;
    node.terminate().await?;

    let screens = requests.len() as f64;
    let listed_n = queries.listed();
    let reported =
        seen.reported.load(Ordering::Relaxed) + batch_seen.reported.load(Ordering::Relaxed);
    if reported > 0 {
        bail!("{reported} matches carried a hit report: the figures would not be screening alone");
    }
    let bare = seen.bare.load(Ordering::Relaxed) + batch_seen.bare.load(Ordering::Relaxed);
    if bare > 0 {
        bail!("{bare} matches came without their entry");
    }
    let per_cpu = screens / unary_cpu.max(1e-9);
    unary_fig.baseline_ratio = Some(unary_fig.throughput_per_s / lib_wall.max(1e-9));
    unary_fig.found = Some(seen.found.load(Ordering::Relaxed));
    unary_fig.note = format!(
        "Screen over mutual-TLS gRPC, {} in flight, one client connection in this process: \
         {:.0} screens per node CPU-second ({:.0} % of the library's per CPU-second), {} matches \
         returned, {} of {listed_n} listed people found as hits, no hit report (own entries); \
         targets >= {RATE_TARGET} screens/s: {}, p99 <= {P99_TARGET_MS} ms: {}",
        load.c,
        per_cpu,
        100.0 * per_cpu / lib_per_cpu_s.max(1e-9),
        seen.matches.load(Ordering::Relaxed),
        seen.found.load(Ordering::Relaxed),
        met(unary_fig.throughput_per_s >= RATE_TARGET),
        met(unary_fig.p99_ms <= P99_TARGET_MS),
    );
    let b_secs = (b_ended - b_started).as_secs_f64().max(1e-9);
    let mut batch_fig = Figures::new("screen: batch", &batched, b_ended - b_started, &bh);
    batch_fig.n = requests.len();
    batch_fig.throughput_per_s = screens / b_secs;
    batch_fig.baseline_ratio = Some(batch_fig.throughput_per_s / lib_wall.max(1e-9));
    batch_fig.found = Some(batch_seen.found.load(Ordering::Relaxed));
    let batch_per_cpu = screens / batch_cpu.max(1e-9);
    batch_fig.note = format!(
        "ScreenBatch of {batch} requests, {} in flight (latencies are per batch): {:.0} screens \
         per node CPU-second ({:.0} % of the library's), {} of {listed_n} listed people found \
         as hits; target >= {RATE_TARGET} screens/s: {}",
        load.batch_c,
        batch_per_cpu,
        100.0 * batch_per_cpu / lib_per_cpu_s.max(1e-9),
        batch_seen.found.load(Ordering::Relaxed),
        met(batch_fig.throughput_per_s >= RATE_TARGET),
    );
    Ok(vec![
        Figures {
            name: "screen: library".into(),
            n: requests.len(),
            concurrency: Some(2),
            seconds: screens / lib_wall.max(1e-9),
            throughput_per_s: lib_wall,
            found: Some(lib_found as u64),
            note: format!(
                "the same queries against the same {} entries, index::screen on two threads in \
                 this process with the node not running: {lib_per_cpu_s:.0} screens per \
                 CPU-second, {lib_found} of {listed_n} listed people found as hits",
                load.n
            ),
            ..Default::default()
        },
        Figures {
            name: "screen: index ready".into(),
            n: load.n,
            seconds: ready.as_secs_f64(),
            rss_mib: Some(rss_ready),
            rss_peak_mib: Some(hwm_ready),
            serving_s: Some(serving.as_secs_f64()),
            note: format!(
                "from the node's spawn until a screen found a listed person (polled every 20 ms); \
                 the node logged the build at {} ms, answered a health check at {:.2} s; VmRSS \
                 {rss_ready:.0} MiB, VmHWM {hwm_ready:.0} MiB then; targets <= {READY_TARGET_S} \
                 s: {}, RSS <= {RSS_TARGET_MIB} MiB: {}; storing the entries beforehand took \
                 {preload_s:.1} s (not timed)",
                build_ms.map_or("?".into(), |m| m.to_string()),
                serving.as_secs_f64(),
                met(ready.as_secs_f64() <= READY_TARGET_S),
                met(hwm_ready <= RSS_TARGET_MIB),
            ),
            ..Default::default()
        },
        unary_fig,
        quiet_fig,
        batch_fig,
        Figures {
            name: "screen: memory after load".into(),
            n: load.n,
            rss_mib: Some(rss_after),
            rss_peak_mib: Some(hwm_after),
            note: format!(
                "the node's VmRSS {rss_after:.0} MiB, VmHWM {hwm_after:.0} MiB after both runs; \
                 target <= {RSS_TARGET_MIB} MiB: {}",
                met(hwm_after <= RSS_TARGET_MIB)
            ),
            ..Default::default()
        },
    ])
}
