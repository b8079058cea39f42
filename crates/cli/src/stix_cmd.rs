//! `tocsin export --stix` and `tocsin watchlist import --stix`: thin
//! adapters between the node's operator services and `tocsin-stix`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use tocsin_core::Alert;
use tocsin_core::watchlist::Entry;
use tocsin_proto::pb;
use tocsin_proto::pb::operator_client::OperatorClient;
use tocsin_proto::pb::watchlist_desk_client::WatchlistDeskClient;
use tocsin_stix::HeldEntry;

use crate::args::ConnectArgs;
use crate::operator::{connect_channel, refused};

/// The most alerts one `ListAlerts` answers with.
const LIST_LIMIT: u32 = 1000;

/// What to export, and where.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
    /// Write a STIX 2.1 bundle (the only format so far; see docs/stix.md).
    #[arg(long, required = true)]
    pub(crate) stix: bool,
    /// Write the bundle to this file, atomically, instead of stdout.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
}

/// Writes the agency's alerts, hit reports and watchlist entries as one
/// STIX 2.1 bundle.
pub(crate) async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let (profile, channel) = connect_channel(&args.connect).await?;
    let mut operator = OperatorClient::new(channel.clone());
    let records = operator
        .list_alerts(pb::ListAlertsRequest {
            direction: pb::Direction::Unspecified as i32,
            limit: LIST_LIMIT,
            filter: pb::list_alerts_request::Filter::Unspecified as i32,
        })
        .await
        .map_err(refused)?
        .into_inner()
        .alerts;
    if records.len() >= LIST_LIMIT as usize {
        eprintln!(
            "warning: the node lists at most {LIST_LIMIT} alerts; the newest {LIST_LIMIT} are exported"
        );
    }
    let mut alerts = Vec::with_capacity(records.len());
    for record in records {
        let alert = record
            .alert
            .context("the node answered with an alert record without its alert")?;
        let id = alert.id.clone();
        alerts.push(
            Alert::try_from(alert)
                .with_context(|| format!("the node answered with a bad alert {id}"))?,
        );
    }
    let mut desk = WatchlistDeskClient::new(channel);
    let mut entries = Vec::new();
    for record in desk
        .list_entries(pb::ListEntriesRequest::default())
        .await
        .map_err(refused)?
        .into_inner()
        .entries
    {
        let entry = record.entry.context("the node answered without an entry")?;
        let entry = Entry::try_from(entry).context("the node answered with a bad entry")?;
        let changed_at = record
            .changed_at
            .as_ref()
            .and_then(tocsin_core::from_timestamp)
            .with_context(|| {
                format!(
                    "the node answered without the time of entry {}",
                    entry.reference
                )
            })?;
        entries.push(HeldEntry {
            entry,
            seq: record.seq,
            changed_at,
        });
    }
    let bundle = tocsin_stix::export(&tocsin_stix::Export {
        federation: &profile.federation,
        agency: &profile.agency,
        alerts: &alerts,
        entries: &entries,
    });
    let mut text = serde_json::to_string_pretty(&bundle)?;
    text.push('\n');
    match &args.out {
        None => std::io::stdout()
            .write_all(text.as_bytes())
            .context("cannot write the bundle to stdout")?,
        Some(path) => {
            write_atomically(path, text.as_bytes())?;
            eprintln!(
                "exported {} alerts and {} watchlist entries of {} to {}",
                alerts.len(),
                entries.len(),
                profile.agency,
                path.display()
            );
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file beside it, so a
/// reader sees the old file or the whole new one, never a part.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Publishes the individuals of the STIX bundle `file` as this agency's
/// watchlist entries, all or none.
pub(crate) async fn import(
    connect: &ConnectArgs,
    file: &Path,
) -> anyhow::Result<Vec<pb::WatchlistRecord>> {
    let name = file.display().to_string();
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {name}"))?;
    let (profile, channel) = connect_channel(connect).await?;
    let imported = tocsin_stix::import(&text, &profile.agency, &profile.federation)
        .map_err(|e| anyhow::anyhow!("{name}: {e}; nothing was imported"))?;
    for i in &imported {
        if let Err(e) = i.draft.check(&profile.agency) {
            bail!("{name}: object {}: {e}; nothing was imported", i.object);
        }
    }
    let mut desk = WatchlistDeskClient::new(channel);
    let stored = desk
        .add_entries(pb::AddEntriesRequest {
            entries: imported.iter().map(|i| i.draft.to_proto()).collect(),
        })
        .await
        .map_err(|status| {
            match crate::json_lines::index_in(status.message(), "entries")
                .and_then(|i| imported.get(i))
            {
                Some(i) => anyhow::anyhow!(
                    "{name}: object {}: node refused: {:?}: {}; nothing was imported",
                    i.object,
                    status.code(),
                    status.message()
                ),
                None => refused(status),
            }
        })?
        .into_inner()
        .entries;
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::write_atomically;

    #[test]
    fn a_bundle_replaces_the_file_whole_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tr.json");
        std::fs::write(&path, "old, and longer than the new one").unwrap();
        write_atomically(&path, b"{}\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["tr.json"]);
        let missing = dir.path().join("no-such-dir").join("tr.json");
        let err = write_atomically(&missing, b"{}").unwrap_err();
        assert!(format!("{err:#}").contains("no-such-dir"), "{err:#}");
    }
}
