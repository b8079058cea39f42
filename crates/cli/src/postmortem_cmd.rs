//! `tocsin postmortem`: several agencies' audit bundles merged, checked
//! and cross-checked. The work is `tocsin_audit::federated`'s; this module
//! reads the files, prints the findings and sets the exit status.

use std::io::Write as _;

use anyhow::Context;
use tocsin_audit::Trust;
use tocsin_audit::federated::{self, Options};
use tocsin_core::federation::Federation;

use crate::args::PostmortemArgs;

pub(crate) async fn run(args: PostmortemArgs) -> anyhow::Result<()> {
    let trust =
        Trust::load(&args.ca).with_context(|| format!("CA certificate {}", args.ca.display()))?;
    let mut options = match &args.federation {
        Some(path) => Options::for_federation(&Federation::load(path)?),
        None => Options::default(),
    };
    options.subject = args.subject.clone();
    let bundles = args.bundles.clone();
    // Reading and checking signatures is CPU work: off the runtime.
    let pm = tokio::task::spawn_blocking(move || {
        federated::post_mortem_files(&bundles, &trust, &options)
    })
    .await
    .context("post-mortem failed")??;
    let mut out = std::io::stdout().lock();
    // A bundle that fails verification is a finding, not a failure: the
    // post-mortem was made, so the exit status is 0.
    if args.json {
        serde_json::to_writer_pretty(&mut out, &pm)?;
        writeln!(out)?;
    } else {
        write!(out, "{pm}")?;
    }
    Ok(())
}
