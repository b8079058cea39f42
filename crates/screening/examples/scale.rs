//! Build an index of synthetic candidates and measure screening.
//!
//! `cargo run --release -p tocsin-screening --example scale [-- CANDIDATES QUERIES THREADS MAX_RESULTS ROUNDS]`
//! (defaults: 1,000,000 candidates, 20,000 queries, 2 threads, 50 results, 1 round). Half the
//! queries are variants of indexed candidates (as an operator would type a
//! listed person's name), half are synthetic people not in the index.
//! Prints build time, screens per second, p50/p99 latency and resident memory
//! (from /proc/self/status: the example may read /proc, the library does not).
//! With more than one round the queries are screened again and the best
//! round's screens per CPU-second printed: on a shared host whose speed
//! varies from minute to minute, the best of several rounds is the steadiest
//! figure to compare two builds by.

use std::time::{Duration, Instant};

use rustix::time::{ClockId, clock_gettime};
use tocsin_screening::{Index, Options, Query, synthetic};

/// The `tocsin` binary's allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// CPU time of this thread: what a screen costs, whatever else the machine runs.
fn thread_cpu() -> Duration {
    let t = clock_gettime(ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Per thread: (wall, CPU) per screen, queries with a hit, matches
/// returned, variants found, variants crowded out.
type ThreadResult = (Vec<(Duration, Duration)>, usize, usize, usize, usize);

fn rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("a number"))
        .collect();
    let n = args.first().copied().unwrap_or(1_000_000);
    let queries_n = args.get(1).copied().unwrap_or(20_000);
    let threads = args.get(2).copied().unwrap_or(2).max(1);
    let max_results = args
        .get(3)
        .copied()
        .unwrap_or(Options::default().max_results);
    let rounds = args.get(4).copied().unwrap_or(1).max(1);

    // Queries first: variants of indexed candidates, each with the key it
    // should find, then people who are not in the index.
    let mut queries: Vec<(Query, Option<u64>)> = Vec::with_capacity(queries_n);
    let step = (n / (queries_n / 2).max(1)).max(1);
    for c in synthetic::stream(n, 2026).step_by(step).take(queries_n / 2) {
        let seed = c.key;
        queries.push((synthetic::query_for(&c, seed), Some(c.key)));
    }
    let strangers = synthetic::stream(queries_n - queries.len(), 99);
    queries.extend(strangers.map(|c| (synthetic::query_for(&c, c.key), None)));
    let before = rss_mib().unwrap_or(0.0);

    // The candidates stream into the index, so resident memory after the
    // build is the index's (plus allocator slack).
    let (start, cpu_start) = (Instant::now(), thread_cpu());
    let index = Index::build(synthetic::stream(n, 2026));
    let (build, build_cpu) = (start.elapsed(), thread_cpu() - cpu_start);
    let after = rss_mib().unwrap_or(0.0);
    println!(
        "candidates {n}: build {:.1} s wall, {:.1} s CPU (generating the candidates included)",
        build.as_secs_f64(),
        build_cpu.as_secs_f64()
    );
    println!(
        "memory: VmRSS {after:.0} MiB after the build, {before:.0} MiB before it: index ~{:.0} MiB",
        after - before
    );

    let options = Options {
        max_results,
        ..Options::default()
    };
    let start = Instant::now();
    let results: Vec<ThreadResult> = on_threads(&queries, threads, |part| {
        let mut times = Vec::with_capacity(part.len());
        let (mut hits, mut matches, mut recalled, mut crowded) = (0, 0, 0, 0);
        for (q, expected) in part {
            let (t, cpu) = (Instant::now(), thread_cpu());
            let found = index.screen(q, &options);
            times.push((t.elapsed(), thread_cpu() - cpu));
            matches += found.len();
            hits += usize::from(found.iter().any(|m| m.hit));
            // A variant's candidate counts as found when it is a hit,
            // and as crowded out when the screen returned its cap of
            // equally good hits (a common name's namesakes).
            if let Some(k) = *expected {
                if found.iter().any(|m| m.hit && m.key == k) {
                    recalled += 1;
                } else if found.len() == options.max_results && found.iter().all(|m| m.hit) {
                    crowded += 1;
                }
            }
        }
        (times, hits, matches, recalled, crowded)
    });
    let wall = start.elapsed();
    let mut times: Vec<Duration> = results
        .iter()
        .flat_map(|r| r.0.iter().map(|t| t.0))
        .collect();
    let mut cpu: Vec<Duration> = results
        .iter()
        .flat_map(|r| r.0.iter().map(|t| t.1))
        .collect();
    let hits: usize = results.iter().map(|r| r.1).sum();
    let matches: usize = results.iter().map(|r| r.2).sum();
    let recalled: usize = results.iter().map(|r| r.3).sum();
    let crowded: usize = results.iter().map(|r| r.4).sum();
    times.sort();
    cpu.sort();
    let pct = |v: &[Duration], p: f64| {
        v[((v.len() as f64 * p) as usize).min(v.len() - 1)].as_secs_f64() * 1e3
    };
    let cpu_total: f64 = cpu.iter().map(Duration::as_secs_f64).sum();
    println!(
        "screens {}: {:.0} screens/s wall on {threads} threads; wall p50 {:.3} ms, p99 {:.3} ms",
        times.len(),
        times.len() as f64 / wall.as_secs_f64(),
        pct(&times, 0.5),
        pct(&times, 0.99),
    );
    println!(
        "thread CPU per screen: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms; {:.0} screens per CPU-second ({:.0}/s on 2 idle cores)",
        pct(&cpu, 0.5),
        pct(&cpu, 0.99),
        pct(&cpu, 1.0),
        cpu.len() as f64 / cpu_total,
        2.0 * cpu.len() as f64 / cpu_total,
    );
    println!(
        "variant queries whose candidate is a hit: {recalled} of {} ({crowded} more crowded out by {} namesake hits); queries with any hit: {hits}; matches returned: {matches}; VmRSS {:.0} MiB",
        queries.iter().filter(|q| q.1.is_some()).count(),
        options.max_results,
        rss_mib().unwrap_or(0.0)
    );
    if rounds > 1 {
        let mut best: f64 = cpu.len() as f64 / cpu_total;
        for round in 2..=rounds {
            let rate = round_rate(&index, &queries, &options, threads);
            println!("round {round}: {rate:.0} screens per CPU-second");
            best = best.max(rate);
        }
        println!("best of {rounds} rounds: {best:.0} screens per CPU-second");
    }
}

/// Screens per CPU-second of one more round of the queries.
fn round_rate(
    index: &Index,
    queries: &[(Query, Option<u64>)],
    options: &Options,
    threads: usize,
) -> f64 {
    let cpu: Duration = on_threads(queries, threads, |part| {
        let start = thread_cpu();
        for (q, _) in part {
            std::hint::black_box(index.screen(q, options));
        }
        thread_cpu() - start
    })
    .into_iter()
    .sum();
    queries.len() as f64 / cpu.as_secs_f64()
}

/// `work` on each of `threads` equal shares of the queries at once; the
/// results in the order of the shares.
fn on_threads<T: Sync, R: Send>(
    queries: &[T],
    threads: usize,
    work: impl Fn(&[T]) -> R + Sync,
) -> Vec<R> {
    let chunk = queries.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let work = &work;
        let handles: Vec<_> = queries
            .chunks(chunk)
            .map(|part| s.spawn(move || work(part)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("screen thread"))
            .collect()
    })
}
