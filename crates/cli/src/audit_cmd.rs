//! `tocsin audit verify` and `tocsin audit export`: the node's
//! tamper-evident record, checked from its store or from an exported
//! bundle. The work is `tocsin_audit`'s; this module finds the files,
//! prints the report and sets the exit status.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use tocsin_audit::{self as audit, Finding, Report, StoreLocation, Trust};
use tocsin_core::federation::Federation;
use tocsin_node::NodeConfig;
use tocsin_trust::Signer;

use crate::args::{AuditExportArgs, AuditVerifyArgs};

/// What a configuration file tells an audit command.
struct NodeFiles {
    config: NodeConfig,
    federation: Federation,
}

fn load_config(path: &Path) -> anyhow::Result<NodeFiles> {
    let config = NodeConfig::load(path)?;
    let federation = Federation::load(&config.federation)
        .with_context(|| format!("federation file of {}", path.display()))?;
    Ok(NodeFiles { config, federation })
}

fn trust_of(ca: Option<&Path>, node: Option<&NodeFiles>) -> anyhow::Result<Trust> {
    let ca: PathBuf = match (ca, node) {
        (Some(ca), _) => ca.to_owned(),
        (None, Some(n)) => n.config.tls.ca.clone(),
        (None, None) => bail!("give the federation CA certificate with --ca (or --config)"),
    };
    let mut trust = Trust::load(&ca).with_context(|| format!("CA certificate {}", ca.display()))?;
    if let Some(n) = node {
        trust = trust
            .federation(n.federation.id().clone())
            .agency(n.config.agency.clone());
    }
    Ok(trust)
}

/// Reports progress on stderr at most once a second, for long runs only.
fn progress() -> impl FnMut(u64, u64) {
    let start = Instant::now();
    let mut last = start;
    move |done, total| {
        let now = Instant::now();
        if now.duration_since(last) < Duration::from_secs(1) {
            return;
        }
        last = now;
        let of = if total > 0 {
            format!(" of {total}")
        } else {
            String::new()
        };
        eprintln!(
            "checked {done}{of} entries ({:.0?})",
            now.duration_since(start)
        );
    }
}

pub(crate) async fn verify(args: AuditVerifyArgs) -> anyhow::Result<()> {
    let node = args.config.as_deref().map(load_config).transpose()?;
    let trust = trust_of(args.ca.as_deref(), node.as_ref())?;
    let report = tokio::task::spawn_blocking(move || -> anyhow::Result<Report> {
        if let Some(bundle) = &args.bundle {
            return Ok(audit::verify_bundle(bundle, trust, progress())?);
        }
        let Some(at) = store_location(
            args.data_dir.as_deref(),
            args.store_url.as_deref(),
            node.as_ref().map(|n| &n.config),
        ) else {
            bail!("give --config FILE, --data-dir DIR, --store-url URL or --bundle FILE")
        };
        Ok(match &args.against {
            Some(earlier) => audit::verify_store_against_at(&at, trust, earlier, progress())?,
            None => audit::verify_store_at(&at, trust, progress())?,
        })
    })
    .await
    .context("audit check failed")??;
    print_report(&report, args.json, None)?;
    conclude(&report)
}

/// The store a command reads: the directory or URL given, else the
/// configuration's (its `[store] url`, else its data directory).
fn store_location(
    data_dir: Option<&Path>,
    store_url: Option<&str>,
    config: Option<&NodeConfig>,
) -> Option<StoreLocation> {
    match (data_dir, store_url, config) {
        (Some(d), _, _) => Some(StoreLocation::Dir(d.to_owned())),
        (None, Some(u), _) => Some(StoreLocation::Url(u.to_owned())),
        (None, None, Some(c)) => Some(match &c.store.url {
            Some(url) => StoreLocation::Url(url.clone()),
            None => StoreLocation::Dir(c.data_dir.clone()),
        }),
        (None, None, None) => None,
    }
}

pub(crate) async fn export(args: AuditExportArgs) -> anyhow::Result<()> {
    let (config, data_dir, store_url, out) = (
        args.config.clone(),
        args.data_dir.clone(),
        args.store_url.clone(),
        args.out.clone(),
    );
    let report = tokio::task::spawn_blocking(move || {
        export_bundle(
            &config,
            data_dir.as_deref(),
            store_url.as_deref(),
            &out,
            progress(),
        )
    })
    .await
    .context("audit export failed")??;
    print_report(&report, args.json, Some(&args.out))?;
    if !report.ok() {
        bail!(
            "not exported: the store fails verification ({})",
            first_phrase(&report)
        );
    }
    Ok(())
}

/// Exports the store of the node configured in `config` (its own store
/// unless `data_dir` or `store_url` is given) to the bundle `out`, signed
/// with the node's signing key. Blocking: run it off the async runtime.
pub(crate) fn export_bundle(
    config: &Path,
    data_dir: Option<&Path>,
    store_url: Option<&str>,
    out: &Path,
    progress: impl FnMut(u64, u64),
) -> anyhow::Result<Report> {
    let node = load_config(config)?;
    let trust = trust_of(None, Some(&node))?;
    let fed = node.federation.id().clone();
    let signer = Signer::load(&node.config.signing.cert, &node.config.signing.key, &fed)?;
    if signer.agency() != &node.config.agency {
        bail!(
            "signing certificate {} is {}'s, not {}'s",
            node.config.signing.cert.display(),
            signer.agency(),
            node.config.agency
        );
    }
    let at = store_location(data_dir, store_url, Some(&node.config))
        .unwrap_or_else(|| StoreLocation::Dir(node.config.data_dir.clone()));
    Ok(audit::export_at(
        &at,
        trust,
        &fed,
        &signer,
        out,
        chrono::Utc::now(),
        progress,
    )?)
}

fn conclude(report: &Report) -> anyhow::Result<()> {
    if report.ok() {
        return Ok(());
    }
    bail!(
        "audit verification failed: {} problem(s), {}",
        report.findings.len(),
        first_phrase(report)
    )
}

fn first_phrase(report: &Report) -> String {
    match report.first() {
        Some(f) => format!("the first {}: {}", place(f), f.problem),
        None => "none".into(),
    }
}

fn place(f: &Finding) -> String {
    if f.seq == u64::MAX {
        "outside the chain".into()
    } else {
        format!("at entry {}", f.seq)
    }
}

#[derive(Debug, Serialize)]
struct ProblemView<'a> {
    /// The entry concerned; none for what no entry places.
    entry: Option<u64>,
    problem: &'static str,
    detail: &'a str,
}

#[derive(Debug, Serialize)]
struct HeadView {
    seq: u64,
    hash: String,
}

#[derive(Debug, Serialize)]
struct SignedHeadView {
    federation: String,
    agency: String,
    seq: u64,
    hash: String,
    signed_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Serialize)]
struct ReportView<'a> {
    ok: bool,
    source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    written: Option<String>,
    agency: Option<&'a str>,
    entries: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    events: Option<u64>,
    signatures: u64,
    head: Option<HeadView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signed_head: Option<SignedHeadView>,
    first: Option<ProblemView<'a>>,
    problems: Vec<ProblemView<'a>>,
}

fn problem_view(f: &Finding) -> ProblemView<'_> {
    ProblemView {
        entry: (f.seq != u64::MAX).then_some(f.seq),
        problem: f.problem.name(),
        detail: &f.detail,
    }
}

/// Problems listed in text output; JSON lists them all.
const SHOWN: usize = 20;

fn print_report(report: &Report, json: bool, written: Option<&Path>) -> anyhow::Result<()> {
    let written = written.filter(|_| report.ok());
    if json {
        let view = ReportView {
            ok: report.ok(),
            source: &report.source,
            written: written.map(|p| p.display().to_string()),
            agency: report.agency.as_deref(),
            entries: report.entries,
            events: report.events,
            signatures: report.signatures,
            head: report.head.map(|(seq, hash)| HeadView {
                seq,
                hash: audit::hex_hash(&hash),
            }),
            signed_head: report.signed_head.as_ref().map(|h| SignedHeadView {
                federation: h.federation.clone(),
                agency: h.agency.clone(),
                seq: h.seq,
                hash: audit::hex_hash(&h.hash),
                signed_at: chrono::DateTime::from_timestamp_millis(h.at),
            }),
            first: report.first().map(problem_view),
            problems: report.findings.iter().map(problem_view).collect(),
        };
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    let agency = report
        .agency
        .as_deref()
        .map(|a| format!(" ({a})"))
        .unwrap_or_default();
    writeln!(out, "audit log: {}{agency}", report.source)?;
    let events = report
        .events
        .map(|n| format!(", {n} events"))
        .unwrap_or_default();
    writeln!(
        out,
        "  {} entries{events}, {} signatures checked",
        report.entries, report.signatures
    )?;
    if let Some((seq, hash)) = report.head {
        writeln!(
            out,
            "  head: entry {seq}, sha256 {}",
            audit::hex_hash(&hash)
        )?;
    }
    if let Some(h) = &report.signed_head {
        let at = chrono::DateTime::from_timestamp_millis(h.at)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default();
        writeln!(
            out,
            "  signed head: entry {} of {} in {}, signed {at}",
            h.seq, h.agency, h.federation
        )?;
    }
    match report.first() {
        None => {
            if let Some(p) = written {
                writeln!(out, "OK: exported to {}", p.display())?;
            } else {
                writeln!(
                    out,
                    "OK: the chain is intact, every event and envelope is as recorded, every signature verifies"
                )?;
            }
        }
        Some(first) => {
            writeln!(
                out,
                "FAILED: {} {}: {}",
                place(first),
                first.problem,
                first.detail
            )?;
            writeln!(out, "  {} problem(s):", report.findings.len())?;
            for f in report.findings.iter().take(SHOWN) {
                writeln!(out, "  - {} {}: {}", place(f), f.problem, f.detail)?;
            }
            if report.findings.len() > SHOWN {
                writeln!(
                    out,
                    "  ... and {} more (--json lists them all)",
                    report.findings.len() - SHOWN
                )?;
            }
        }
    }
    Ok(())
}
