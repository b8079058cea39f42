//! `tocsin-bench`: how fast and how lean Tocsin is, measured beside the
//! bare gRPC stack it runs on.
//!
//! Every subcommand starts real nodes (real mutual TLS on loopback, real
//! SQLite files with `synchronous = FULL`), prints a table and, with
//! `--json FILE`, writes the figures:
//!
//! - `baseline`: a bare tonic unary echo over the same mutual-TLS settings
//!   with a delivery's payload size: the ceiling of the stack.
//! - `deliver`: alerts from one node to another, closed loop at C or open
//!   loop at R, with the baseline in the same run; throughput as a ratio of
//!   it.
//! - `fanout`: one alert to 30 agencies, until all 30 receipts.
//! - `backlog`: alerts queued for a peer that is down, drained when it
//!   starts.
//! - `ack`: deliver, acknowledge, and the originator records it.
//! - `flood`: one agency floods while another sends at a steady rate.
//! - `deadlines`: a real `tocsin node` process started over many open
//!   deadlines and one already due: how soon its tracker's first pass
//!   flags the due one, beside the same over none in the same run.
//! - `memory`: a real `tocsin node` process, its resident memory.
//! - `sync`: watchlist sync between two real `tocsin node` processes: a
//!   new peer's full sync, then batches of changes reaching it, beside the
//!   bare stack moving the same bytes.
//! - `screen`: screening through a real `tocsin node` process holding
//!   1,000,000 entries: index ready after start, screens per second and
//!   latency over mutual-TLS gRPC, resident memory, beside the library
//!   alone on the same entries and queries.

#![forbid(unsafe_code)]

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tocsin_testkit::TestFederation;

/// The same allocator as the `tocsin` binary, so that the library's figures
/// compare with the node's: a screen chases pointers across an
/// index of hundreds of MB and allocates per match, and mimalloc did both
/// faster and in less memory (docs/benchmarks.md, "Screening through the
/// node").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod drive;
mod net;
mod process;
mod screen;
mod sync;
mod triage;
mod watch;

use drive::{Figures, Load};

/// The baseline's echo service.
#[allow(missing_docs, unreachable_pub, clippy::all)]
mod echo {
    tonic::include_proto!("tocsin.bench.v1");
}

/// Tocsin benchmarks.
#[derive(Debug, Parser)]
#[command(name = "tocsin-bench", about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Also write the figures to this JSON file.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    /// `deliver` and `ack`: keep the nodes' stores in PostgreSQL, on a
    /// private server this run starts (`initdb` from the Debian binaries),
    /// instead of SQLite files.
    #[arg(long, global = true)]
    postgres: bool,
    /// `deliver` and `ack` with `--postgres`: run each agency as this many
    /// front nodes on its database, the load spread over them.
    #[arg(long, global = true, default_value_t = 1)]
    front_nodes: usize,
}

/// The two-agency federation `deliver` and `ack` run on: SQLite files,
/// or each node's store in a PostgreSQL database of its own, each agency
/// as `fronts` front nodes.
async fn federation(postgres: bool, fronts: usize) -> anyhow::Result<TestFederation> {
    let builder = TestFederation::builder();
    if !postgres {
        anyhow::ensure!(
            fronts == 1,
            "--front-nodes {fronts}: several front nodes share a PostgreSQL database; add --postgres"
        );
        return builder.start().await;
    }
    let server = tocsin_testkit::postgres()?
        .ok_or_else(|| anyhow::anyhow!("--postgres: no PostgreSQL binaries on this machine"))?;
    builder
        .postgres(server)
        .front_nodes("TR-MIT", fronts)
        .front_nodes("FR-DGSI", fronts)
        .start()
        .await
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The bare stack: tonic unary echo over the same mutual TLS.
    Baseline(Load),
    /// Alerts delivered node to node, with the baseline in the same run.
    Deliver(Load),
    /// One alert to many agencies; latency until every receipt.
    Fanout(Fanout),
    /// Alerts queued for a peer that is down; drain rate once it starts.
    Backlog(Backlog),
    /// Deliver, acknowledge, and the originator records it.
    Ack(Load),
    /// One agency floods, another sends steadily; the steady one's latency.
    Flood(Flood),
    /// A node process started over many open deadlines and one due: how
    /// soon the due one is flagged, beside the same over none.
    Deadlines(Sized),
    /// Resident memory of a node process, idle and holding many alerts.
    Memory(Sized),
    /// Watchlist sync between two node processes: a new peer's full sync,
    /// then batches of changes reaching a caught-up peer.
    Sync(sync::SyncLoad),
    /// Ranking owed items by risk (`alerts list --triage`), beside a plain
    /// sort by deadline.
    Triage(triage::TriageLoad),
    /// Screening through a node process holding many entries: index
    /// ready, throughput, latency and memory, beside the library alone.
    Screen(screen::ScreenLoad),
}

#[derive(Debug, Args)]
struct Fanout {
    #[command(flatten)]
    load: Load,
    /// How many recipients per alert.
    #[arg(long, default_value_t = 30)]
    width: usize,
}

#[derive(Debug, Args)]
struct Backlog {
    /// How many alerts to queue.
    #[arg(long, short, default_value_t = 100_000)]
    n: usize,
    /// How many submissions in flight while queueing.
    #[arg(long, short, default_value_t = 64)]
    c: usize,
}

#[derive(Debug, Args)]
struct Flood {
    /// How many alerts the steady sender sends.
    #[arg(long, short, default_value_t = 1000)]
    n: usize,
    /// The steady sender's rate per second.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// The flooder's deliveries in flight.
    #[arg(long, default_value_t = 512)]
    flood_c: usize,
}

#[derive(Debug, Args)]
struct Sized {
    /// How many alerts in the store.
    #[arg(long, short)]
    n: Option<usize>,
    /// The `tocsin` binary (default: next to this one).
    #[arg(long)]
    tocsin: Option<PathBuf>,
}

fn print(rows: &[Figures]) {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::NOTHING);
    t.set_header(vec![
        "BENCH",
        "N",
        "LOAD",
        "SECONDS",
        "PER SECOND",
        "P50 MS",
        "P99 MS",
        "P99.9 MS",
        "RSS MIB",
        "OF BASELINE",
    ]);
    let dash = || "-".to_owned();
    for f in rows {
        let timed = f.p99_ms > 0.0;
        t.add_row(vec![
            f.name.clone(),
            f.n.to_string(),
            match (f.concurrency, f.offered_rate) {
                (Some(c), _) => format!("C={c}"),
                (_, Some(r)) => format!("R={r}/s"),
                _ => dash(),
            },
            // Start-up figures are milliseconds.
            if f.seconds < 1.0 {
                format!("{:.3}", f.seconds)
            } else {
                format!("{:.2}", f.seconds)
            },
            if f.n > 0 && f.rss_mib.is_none() {
                format!("{:.0}", f.throughput_per_s)
            } else {
                dash()
            },
            if timed {
                format!("{:.2}", f.p50_ms)
            } else {
                dash()
            },
            if timed {
                format!("{:.2}", f.p99_ms)
            } else {
                dash()
            },
            if timed {
                format!("{:.2}", f.p999_ms)
            } else {
                dash()
            },
            f.rss_mib.map(|m| format!("{m:.1}")).unwrap_or_else(dash),
            f.baseline_ratio
                .map(|r| format!("{:.1}%", r * 100.0))
                .unwrap_or_else(dash),
        ]);
    }
    println!("{t}");
    for f in rows {
        println!("  {}: {}", f.name, f.note);
    }
}

/// The baseline's row and `measured`'s, with `measured`'s throughput as a
/// share of the baseline's. A ratio of throughputs means something only
/// when both run flat out; an open loop runs at the offered rate.
fn beside_baseline(base: Figures, mut measured: Figures, load: &Load) -> Vec<Figures> {
    if load.rate.is_none() {
        measured.baseline_ratio = Some(measured.throughput_per_s / base.throughput_per_s.max(1e-9));
    }
    vec![base, measured]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tocsin_testkit::init();
    let rows = match cli.command {
        Command::Baseline(load) => {
            let fed = TestFederation::builder().start().await?;
            vec![net::baseline(&fed, &load).await?]
        }
        Command::Deliver(load) => {
            let fed = federation(cli.postgres, cli.front_nodes).await?;
            let base = net::baseline(&fed, &load.for_baseline()).await?;
            let d = net::deliver(&fed, &load).await?;
            beside_baseline(base, d, &load)
        }
        Command::Fanout(f) => vec![net::fanout(&f.load, f.width).await?],
        Command::Backlog(b) => vec![
            net::backlog(&Load {
                n: b.n,
                c: b.c,
                rate: None,
                baseline_n: None,
            })
            .await?,
        ],
        Command::Ack(load) => {
            let fed = federation(cli.postgres, cli.front_nodes).await?;
            let base = net::baseline(&fed, &load.for_baseline()).await?;
            let a = net::ack(&fed, &load).await?;
            beside_baseline(base, a, &load)
        }
        Command::Flood(f) => {
            let load = Load {
                n: f.n,
                c: 1,
                rate: Some(f.rate),
                baseline_n: None,
            };
            net::flood(&load, f.flood_c).await?
        }
        Command::Deadlines(s) => {
            let tocsin = tocsin_testkit::tocsin_binary(s.tocsin.as_deref())?;
            process::deadlines(tocsin, s.n.unwrap_or(1_000_000)).await?
        }
        Command::Memory(s) => {
            let tocsin = tocsin_testkit::tocsin_binary(s.tocsin.as_deref())?;
            process::memory_figures(tocsin, s.n.unwrap_or(100_000)).await?
        }
        Command::Sync(s) => sync::sync(&s).await?,
        Command::Triage(t) => triage::triage(&t)?,
        Command::Screen(s) => screen::screen(&s).await?,
    };
    print(&rows);
    if let Some(path) = &cli.json {
        std::fs::write(path, serde_json::to_string_pretty(&rows)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
