//! `tocsin store migrate`: an agency's SQLite store moved into an empty
//! PostgreSQL database. The work (and every check) is
//! `tocsin_store::migrate`'s; this module reports progress on stderr and
//! prints the summary.

use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tocsin_store::migrate::{self, Progress};

use crate::args::StoreMigrateArgs;

/// Reports progress on stderr at most once a second, and each table's
/// count once it is copied, for long runs.
fn progress() -> impl FnMut(Progress) {
    let start = Instant::now();
    let mut last = start;
    move |p| {
        let now = Instant::now();
        let finished = matches!(p, Progress::Copying { done, total, .. } if done == total);
        if now.duration_since(last) < Duration::from_secs(1) && !finished {
            return;
        }
        last = now;
        let took = now.duration_since(start);
        match p {
            Progress::Checking {
                target,
                done,
                total,
            } => {
                let which = if target { "target" } else { "source" };
                eprintln!("checked {done} of {total} {which} audit entries ({took:.0?})");
            }
            Progress::Copying { table, done, total } => {
                eprintln!("{table}: copied {done} of {total} rows ({took:.0?})");
            }
        }
    }
}

pub(crate) async fn migrate(args: StoreMigrateArgs) -> anyhow::Result<()> {
    let target = tocsin_store::postgres::describe_url(&args.to);
    // The copy reads SQLite on this thread: its future is not Send, and
    // is run to completion here.
    let summary = migrate::sqlite_to_postgres(&args.from, &args.to, progress())
        .await
        .with_context(|| {
            format!(
                "store not migrated from {} to {target}",
                args.from.display()
            )
        })?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "migrated {} to {}", summary.source, summary.target)?;
    for (table, rows) in &summary.tables {
        writeln!(out, "  {table:<24} {rows:>9} rows")?;
    }
    for (label, check) in [("source", &summary.before), ("target", &summary.after)] {
        match check.head {
            Some((seq, hash)) => writeln!(
                out,
                "  {label} audit head: entry {seq}, sha256 {}",
                tocsin_audit::hex_hash(&hash)
            )?,
            None => writeln!(out, "  {label} audit head: none (an empty log)")?,
        }
    }
    let next: Vec<String> = summary
        .next
        .iter()
        .map(|(name, value)| format!("{name} {value}"))
        .collect();
    writeln!(out, "  next numbers: {}", next.join(", "))?;
    writeln!(
        out,
        "OK: every row copied; the audit chain checks on both sides with the same head"
    )?;
    Ok(())
}
