//! Load generation and figures: closed loop at a concurrency, or open loop
//! at a fixed offered rate (so latency stays honest under load).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::Mutex;

/// How hard to push.
#[derive(Debug, Args, Clone)]
pub(crate) struct Load {
    /// How many calls or alerts.
    #[arg(long, short, default_value_t = 2000)]
    pub(crate) n: usize,
    /// Closed loop: how many in flight at once.
    #[arg(long, short, default_value_t = 64)]
    pub(crate) c: usize,
    /// Open loop: offered rate per second (instead of a closed loop).
    #[arg(long)]
    pub(crate) rate: Option<f64>,
    /// Calls of the baseline measured beside a closed loop (default: n, and
    /// at least 100,000: a run of well over a second gives a steady figure).
    #[arg(long)]
    pub(crate) baseline_n: Option<usize>,
}

impl Load {
    /// The load of the baseline measured beside this one.
    pub(crate) fn for_baseline(&self) -> Load {
        let n = match (self.rate, self.baseline_n) {
            (_, Some(n)) => n,
            (None, None) => self.n.max(100_000),
            (Some(_), None) => self.n,
        };
        Load {
            n,
            baseline_n: None,
            ..self.clone()
        }
    }
}

/// One measurement.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Figures {
    pub(crate) name: String,
    pub(crate) n: usize,
    pub(crate) concurrency: Option<usize>,
    pub(crate) offered_rate: Option<f64>,
    pub(crate) seconds: f64,
    pub(crate) throughput_per_s: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) p999_ms: f64,
    /// Throughput as a share of the baseline's, measured in the same run
    /// (for a time: the baseline's time over this one's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) baseline_ratio: Option<f64>,
    /// Resident memory of a node process, in MiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rss_mib: Option<f64>,
    /// Peak resident memory of a node process (VmHWM), in MiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rss_peak_mib: Option<f64>,
    /// Screening: listed people whose screen found their entry as a hit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) found: Option<u64>,
    /// A node process: from its start until it answered a health check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) serving_s: Option<f64>,
    /// A node process: from its start until its deadline tracker's first
    /// pass began.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) first_pass_began_s: Option<f64>,
    /// How long the tracker's first pass took to flag a due deadline and
    /// check its subject for repeated warnings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) first_pass_ms: Option<f64>,
    /// Requests refused with RESOURCE_EXHAUSTED.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) refused: Option<u64>,
    /// Watchlist sync: the entries the peer held when the figure was taken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) held: Option<u64>,
    /// What was measured, in words.
    pub(crate) note: String,
}

pub(crate) fn histogram() -> anyhow::Result<Histogram<u64>> {
    // Microseconds, up to ten minutes, three significant digits.
    Ok(Histogram::new_with_bounds(1, 600_000_000, 3)?)
}

impl Figures {
    /// Throughput over `n` in `elapsed`, latencies from `h` (µs).
    pub(crate) fn new(name: &str, load: &Load, elapsed: Duration, h: &Histogram<u64>) -> Self {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        Self {
            name: name.into(),
            n: load.n,
            concurrency: load.rate.is_none().then_some(load.c),
            offered_rate: load.rate,
            seconds,
            throughput_per_s: load.n as f64 / seconds,
            p50_ms: ms(0.50),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            ..Default::default()
        }
    }
}

/// Runs `n` operations, closed loop at concurrency `c` or open loop at
/// `rate`, timing each. Returns the start, the end and the latencies (µs).
pub(crate) async fn drive<F, Fut>(
    load: &Load,
    op: F,
) -> anyhow::Result<(Instant, Instant, Histogram<u64>)>
where
    F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
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
    // Every task has been awaited, so no other handle is left.
    let h = h.lock().await.clone();
    Ok((started, ended, h))
}

/// Prints a progress line on stderr every so often during long work.
pub(crate) struct Progress {
    what: &'static str,
    total: usize,
    done: AtomicUsize,
    step: usize,
}

impl Progress {
    pub(crate) fn new(what: &'static str, total: usize) -> Arc<Self> {
        Arc::new(Self {
            what,
            total,
            done: AtomicUsize::new(0),
            step: (total / 10).max(10_000),
        })
    }

    pub(crate) fn add(&self, n: usize) {
        let before = self.done.fetch_add(n, Ordering::Relaxed);
        let after = before + n;
        if after / self.step != before / self.step || (after >= self.total && before < self.total) {
            eprintln!("  {}: {}/{}", self.what, after.min(self.total), self.total);
        }
    }
}
