//! `tocsin-bench`: how fast Tocsin delivers, measured beside the bare gRPC
//! stack it runs on.
//!
//! - `baseline`: a bare tonic unary echo over the same mutual-TLS settings
//!   (TLS 1.3, client certificates, the same verifiers) with the payload
//!   size of a delivered alert: the ceiling of the stack.
//! - `deliver`: N alerts from one real node to another (real mutual TLS on
//!   loopback, real SQLite files with full durability), closed loop at
//!   concurrency C, or open loop at a fixed rate R. A delivery counts when
//!   the sender has verified and committed the recipient's signed receipt
//!   (its DELIVERED event, written in the same transaction); latency runs
//!   from submission to that moment. The baseline runs first, in the same
//!   process, and the throughput is reported as a ratio of it.
//!
//! Each prints a table and, with `--json FILE`, writes the figures.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use hdrhistogram::Histogram;
use prost::Message;
use serde::Serialize;
use tocsin_core::{AgencyId, Identity, to_timestamp};
use tocsin_proto::pb;
use tocsin_testkit::{TestFederation, channel, draft};
use tocsin_trust::tls::{self, AcceptorLimits};
use tokio::sync::Mutex;

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
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The bare stack: tonic unary echo over the same mutual TLS.
    Baseline(Load),
    /// Alerts delivered node to node, with the baseline in the same run.
    Deliver(Load),
}

#[derive(Debug, Args, Clone)]
struct Load {
    /// How many calls or alerts.
    #[arg(long, short, default_value_t = 2000)]
    n: usize,
    /// Closed loop: how many in flight at once.
    #[arg(long, short, default_value_t = 64)]
    c: usize,
    /// Open loop: offered rate per second (instead of a closed loop).
    #[arg(long)]
    rate: Option<f64>,
}

/// One measurement.
#[derive(Debug, Serialize)]
struct Figures {
    name: String,
    n: usize,
    concurrency: Option<usize>,
    offered_rate: Option<f64>,
    seconds: f64,
    throughput_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    /// Throughput as a share of the baseline's, measured in the same run.
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline_ratio: Option<f64>,
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    // Microseconds, up to ten minutes, three significant digits.
    Ok(Histogram::new_with_bounds(1, 600_000_000, 3)?)
}

fn figures(
    name: &str,
    load: &Load,
    started: Instant,
    ended: Instant,
    h: &Histogram<u64>,
) -> Figures {
    let seconds = (ended - started).as_secs_f64().max(1e-9);
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    Figures {
        name: name.into(),
        n: load.n,
        concurrency: load.rate.is_none().then_some(load.c),
        offered_rate: load.rate,
        seconds,
        throughput_per_s: load.n as f64 / seconds,
        p50_ms: ms(0.50),
        p99_ms: ms(0.99),
        p999_ms: ms(0.999),
        baseline_ratio: None,
    }
}

/// Runs `n` operations, closed loop at concurrency `c` or open loop at
/// `rate`, timing each.
async fn drive<F, Fut>(load: &Load, op: F) -> anyhow::Result<(Instant, Instant, Histogram<u64>)>
where
    F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let h = Arc::new(Mutex::new(histogram()?));
    let started = Instant::now();
    match load.rate {
        None => {
            let next = Arc::new(AtomicUsize::new(0));
            let mut tasks = Vec::new();
            for _ in 0..load.c.max(1) {
                let (next, h, op, n) = (next.clone(), h.clone(), op.clone(), load.n);
                tasks.push(tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            return Ok::<_, anyhow::Error>(());
                        }
                        let t = Instant::now();
                        op(i).await?;
                        let _ = h.lock().await.record(t.elapsed().as_micros() as u64);
                    }
                }));
            }
            for t in tasks {
                t.await??;
            }
        }
        Some(rate) => {
            if !(rate.is_finite() && rate > 0.0) {
                bail!("--rate must be positive");
            }
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut tasks = Vec::with_capacity(load.n);
            for i in 0..load.n {
                tick.tick().await;
                let (h, op) = (h.clone(), op.clone());
                tasks.push(tokio::spawn(async move {
                    let t = Instant::now();
                    op(i).await?;
                    let _ = h.lock().await.record(t.elapsed().as_micros() as u64);
                    Ok::<_, anyhow::Error>(())
                }));
            }
            for t in tasks {
                t.await??;
            }
        }
    }
    let ended = Instant::now();
    let h = match Arc::try_unwrap(h) {
        Ok(h) => h.into_inner(),
        Err(shared) => shared.lock().await.clone(),
    };
    Ok((started, ended, h))
}

struct EchoService;

#[tonic::async_trait]
impl echo::echo_server::Echo for EchoService {
    async fn echo(
        &self,
        req: tonic::Request<echo::Payload>,
    ) -> Result<tonic::Response<echo::Payload>, tonic::Status> {
        Ok(tonic::Response::new(req.into_inner()))
    }
}

/// The size of a typical delivery request, so the baseline carries the same.
fn delivery_size(fed: &TestFederation) -> anyhow::Result<usize> {
    let mut alert = draft(&["FR-DGSI"]);
    alert.id = tocsin_core::AlertId::generate().to_string();
    alert.originator = "TR-MIT".into();
    alert.created_at = Some(to_timestamp(chrono::Utc::now()));
    let env = fed
        .signer("TR-MIT")?
        .sign(tocsin_proto::ALERT_PAYLOAD_TYPE, alert.encode_to_vec());
    Ok(pb::DeliverRequest { alert: Some(env) }.encoded_len())
}

async fn baseline(fed: &TestFederation, load: &Load) -> anyhow::Result<Figures> {
    let server_material = fed.node_material("FR-DGSI")?;
    let client_material = fed.node_material("TR-MIT")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let config = tls::server_config(&server_material, Arc::new(|_: &Identity| true))?;
    let incoming = tls::Acceptor::new(listener, config, AcceptorLimits::default()).into_stream();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(echo::echo_server::EchoServer::new(EchoService))
            .serve_with_incoming_shutdown(incoming, async move {
                let _ = stopped.await;
            }),
    );
    let ch = channel(addr, &client_material, &AgencyId::new("FR-DGSI")?)?;
    let client = echo::echo_client::EchoClient::new(ch);
    let payload = vec![7u8; delivery_size(fed)?];
    // Warm the connection: one handshake, as a node's long-lived channel has.
    client
        .clone()
        .echo(echo::Payload {
            data: payload.clone(),
        })
        .await?;
    let (started, ended, h) = drive(load, move |_| {
        let mut client = client.clone();
        let data = payload.clone();
        async move {
            client.echo(echo::Payload { data }).await?;
            Ok(())
        }
    })
    .await?;
    let _ = stop.send(());
    let _ = server.await;
    Ok(figures("baseline", load, started, ended, &h))
}

async fn deliver(fed: &TestFederation, load: &Load) -> anyhow::Result<Figures> {
    let op = fed.operator("TR-MIT").await?;
    // DELIVERED events: written in the same transaction as the verified
    // receipt, so their arrival is the moment a delivery counts.
    let delivered: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let all_in = Arc::new(tokio::sync::Notify::new());
    let mut events = op
        .clone()
        .watch_events(pb::WatchEventsRequest { after_id: Some(0) })
        .await?
        .into_inner();
    {
        let (delivered, all_in, n) = (delivered.clone(), all_in.clone(), load.n);
        tokio::spawn(async move {
            while let Ok(Some(e)) = events.message().await {
                if e.kind == pb::EventKind::Delivered as i32 {
                    let mut d = delivered.lock().await;
                    d.insert(e.alert_id, Instant::now());
                    if d.len() >= n {
                        all_in.notify_one();
                    }
                }
            }
        });
    }
    let submitted: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let subs = submitted.clone();
    let (started, submitted_by, _) = drive(load, move |_| {
        let mut op = op.clone();
        let subs = subs.clone();
        async move {
            let t = Instant::now();
            let record = op
                .submit_alert(pb::SubmitAlertRequest {
                    alert: Some(draft(&["FR-DGSI"])),
                })
                .await?
                .into_inner()
                .record
                .context("no record")?;
            let id = record.alert.map(|a| a.id).unwrap_or_default();
            subs.lock().await.insert(id, t);
            Ok(())
        }
    })
    .await?;
    eprintln!("submissions took {:?}", submitted_by - started);
    if delivered.lock().await.len() < load.n {
        tokio::time::timeout(Duration::from_secs(300), all_in.notified())
            .await
            .context("not every alert was delivered within 5 minutes")?;
    }
    let delivered = delivered.lock().await;
    let submitted = submitted.lock().await;
    let mut h = histogram()?;
    let mut ended = started;
    for (id, t0) in submitted.iter() {
        let t1 = delivered
            .get(id)
            .with_context(|| format!("alert {id} was not delivered"))?;
        let _ = h.record((*t1 - *t0).as_micros() as u64);
        ended = ended.max(*t1);
    }
    Ok(figures("deliver", load, started, ended, &h))
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
        "OF BASELINE",
    ]);
    for f in rows {
        t.add_row(vec![
            f.name.clone(),
            f.n.to_string(),
            match (f.concurrency, f.offered_rate) {
                (Some(c), _) => format!("C={c}"),
                (_, Some(r)) => format!("R={r}/s"),
                _ => "-".into(),
            },
            format!("{:.2}", f.seconds),
            format!("{:.0}", f.throughput_per_s),
            format!("{:.2}", f.p50_ms),
            format!("{:.2}", f.p99_ms),
            format!("{:.2}", f.p999_ms),
            f.baseline_ratio
                .map(|r| format!("{:.1}%", r * 100.0))
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    println!("{t}");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tocsin_testkit::init();
    // Real nodes, real TLS, real SQLite in a temporary directory.
    let fed = TestFederation::builder().start().await?;
    let rows = match &cli.command {
        Command::Baseline(load) => vec![baseline(&fed, load).await?],
        Command::Deliver(load) => {
            let base = baseline(&fed, load).await?;
            let mut d = deliver(&fed, load).await?;
            // A ratio of throughputs means something only when both run
            // flat out; an open loop runs at the offered rate.
            if load.rate.is_none() {
                d.baseline_ratio = Some(d.throughput_per_s / base.throughput_per_s.max(1e-9));
            }
            vec![base, d]
        }
    };
    print(&rows);
    if let Some(path) = &cli.json {
        std::fs::write(path, serde_json::to_string_pretty(&rows)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
