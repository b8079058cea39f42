//! `tocsin watchlist`: add, update, remove, list and import this agency's
//! entries, and see how far behind each owner the node's copy is.

use std::path::PathBuf;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use comfy_table::{Table, presets};
use tocsin_core::alert::{Document, Person, Precedence, Subject, Tlp};
use tocsin_core::watchlist::{Action, Entry, EntryDraft};
use tocsin_proto::pb;
use tocsin_proto::pb::watchlist_desk_client::WatchlistDeskClient;
use tonic::transport::Channel;

use crate::args::ConnectArgs;
use crate::operator::{connect_channel, refused};

/// The `watchlist` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum WatchlistCommand {
    /// Publish an entry of this agency, from flags or a JSON file.
    Add(Box<EntryArgs>),
    /// Replace an entry of this agency (found by its ref) with new content.
    Update(Box<EntryArgs>),
    /// Remove an entry of this agency.
    Remove(RemoveArgs),
    /// The entries this node holds: this agency's and those of others
    /// releasable to it.
    List(ListArgs),
    /// Publish the entries of a file, one JSON entry per line (or, with
    /// --stix, the individuals of a STIX 2.1 bundle), all or none.
    Import(ImportArgs),
    /// How far behind each other agency's watchlist this node is.
    SyncStatus(StatusArgs),
}

/// An entry, from flags or from a file.
#[derive(Debug, Args)]
pub(crate) struct EntryArgs {
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
    /// A JSON file holding the entry (the form of one `import` line);
    /// no other entry flag may be given with it.
    #[arg(long, conflicts_with_all = ["reference", "name", "identifier", "reason", "action"])]
    pub(crate) file: Option<PathBuf>,
    /// This agency's reference for the entry, for example W-2026-0042.
    #[arg(long = "ref", id = "reference")]
    pub(crate) reference: Option<String>,
    /// A name of the person (repeatable).
    #[arg(long)]
    pub(crate) name: Vec<String>,
    /// Another name the person uses (repeatable).
    #[arg(long)]
    pub(crate) alias: Vec<String>,
    /// Date of birth, YYYY-MM-DD.
    #[arg(long)]
    pub(crate) dob: Option<chrono::NaiveDate>,
    /// A nationality, as a country code (repeatable).
    #[arg(long)]
    pub(crate) nationality: Vec<String>,
    /// A document, as KIND:NUMBER or KIND:NUMBER:COUNTRY (repeatable).
    #[arg(long)]
    pub(crate) document: Vec<String>,
    /// An identifier instead of a person, as KIND:VALUE (phone:+33...).
    #[arg(long, conflicts_with_all = ["name", "alias", "dob", "nationality", "document"])]
    pub(crate) identifier: Option<String>,
    /// Why the subject is listed.
    #[arg(long)]
    pub(crate) reason: Option<String>,
    /// What to do on a hit: DISCREET_CHECK, INQUIRY_CHECK, SPECIFIC_CHECK,
    /// REFUSE_ENTRY or ARREST.
    #[arg(long)]
    pub(crate) action: Option<Action>,
    /// The precedence of the hit report wanted.
    #[arg(long, default_value = "ROUTINE")]
    pub(crate) hit_precedence: Precedence,
    /// TLP label.
    #[arg(long, default_value = "AMBER")]
    pub(crate) tlp: Tlp,
    /// Agencies the entry is releasable to (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    pub(crate) to: Vec<String>,
    /// When this agency will review the entry (RFC 3339).
    #[arg(long)]
    pub(crate) review_at: Option<DateTime<Utc>>,
    /// When the entry lapses (RFC 3339); holders drop it then.
    #[arg(long)]
    pub(crate) expires_at: Option<DateTime<Utc>>,
    /// A hit threshold stricter than the screening default (0.78), in
    /// (0, 1]: a match must score at least this to send a hit report.
    #[arg(long, value_parser = hit_threshold)]
    pub(crate) hit_threshold: Option<tocsin_core::watchlist::HitThreshold>,
}

fn hit_threshold(value: &str) -> Result<tocsin_core::watchlist::HitThreshold, String> {
    let score: f32 = value
        .parse()
        .map_err(|_| format!("{value:?} is not a number"))?;
    tocsin_core::watchlist::HitThreshold::new(score).map_err(|e| e.problem)
}

/// Which entry to remove.
#[derive(Debug, Args)]
pub(crate) struct RemoveArgs {
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
    /// The entry's ref.
    #[arg(value_name = "REF")]
    pub(crate) reference: String,
}

/// Which entries to list.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
    /// Only this owner's entries.
    #[arg(long)]
    pub(crate) owner: Option<String>,
}

/// The file to import.
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
    /// Read a STIX 2.1 bundle: its `identity` objects of individuals
    /// become entries (see docs/stix.md).
    #[arg(long)]
    pub(crate) stix: bool,
    /// One JSON entry per line (blank lines are skipped), or with
    /// --stix a STIX 2.1 bundle.
    pub(crate) file: PathBuf,
}

/// Sync status.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
}

/// Runs a `watchlist` subcommand.
pub(crate) async fn run(command: WatchlistCommand) -> anyhow::Result<()> {
    match command {
        WatchlistCommand::Add(args) => put(*args, false).await,
        WatchlistCommand::Update(args) => put(*args, true).await,
        WatchlistCommand::Remove(args) => remove(args).await,
        WatchlistCommand::List(args) => list(args).await,
        WatchlistCommand::Import(args) => import(args).await,
        WatchlistCommand::SyncStatus(args) => sync_status(args).await,
    }
}

async fn client(
    connect: &ConnectArgs,
) -> anyhow::Result<(tocsin_core::AgencyId, WatchlistDeskClient<Channel>)> {
    let (profile, channel) = connect_channel(connect).await?;
    Ok((profile.agency, WatchlistDeskClient::new(channel)))
}

fn split_pair<'a>(flag: &str, value: &'a str) -> anyhow::Result<(&'a str, &'a str)> {
    match value.split_once(':') {
        Some((k, v)) if !k.trim().is_empty() && !v.trim().is_empty() => Ok((k.trim(), v.trim())),
        _ => bail!("--{flag} {value:?}: expected KIND:VALUE"),
    }
}

impl EntryArgs {
    /// The draft the flags (or the file) describe.
    fn draft(&self) -> anyhow::Result<EntryDraft> {
        if let Some(file) = &self.file {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            return serde_json::from_str(&text)
                .with_context(|| format!("{} is not a watchlist entry", file.display()));
        }
        let subject = match &self.identifier {
            Some(id) => {
                let (kind, value) = split_pair("identifier", id)?;
                Subject::Identifier {
                    kind: kind.into(),
                    value: value.into(),
                }
            }
            None => {
                let mut documents = Vec::new();
                for d in &self.document {
                    let mut parts = d.splitn(3, ':');
                    let (Some(kind), Some(number)) = (parts.next(), parts.next()) else {
                        bail!("--document {d:?}: expected KIND:NUMBER or KIND:NUMBER:COUNTRY");
                    };
                    documents.push(Document {
                        kind: kind.trim().into(),
                        number: number.trim().into(),
                        issuing_country: parts.next().unwrap_or("").trim().into(),
                    });
                }
                Subject::Person(Person {
                    names: self.name.clone(),
                    aliases: self.alias.clone(),
                    date_of_birth: self.dob,
                    nationalities: self.nationality.clone(),
                    documents,
                })
            }
        };
        Ok(EntryDraft {
            reference: self
                .reference
                .clone()
                .context("--ref is required: this agency's reference for the entry")?,
            subject,
            reason: self
                .reason
                .clone()
                .context("--reason is required: why the subject is listed")?,
            action: self
                .action
                .context("--action is required: what to do on a hit")?,
            hit_precedence: self.hit_precedence,
            tlp: self.tlp,
            releasable_to: self.to.clone(),
            review_at: self.review_at,
            expires_at: self.expires_at,
            hit_threshold: self.hit_threshold,
        })
    }
}

/// An entry as listings show it (and `--json` prints it).
#[derive(Debug, serde::Serialize)]
struct Shown {
    #[serde(flatten)]
    entry: Entry,
    seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    changed_at: Option<DateTime<Utc>>,
}

fn shown(record: pb::WatchlistRecord) -> anyhow::Result<Shown> {
    let entry = record.entry.context("the node answered without an entry")?;
    let entry = Entry::try_from(entry).context("the node answered with a bad entry")?;
    Ok(Shown {
        entry,
        seq: record.seq,
        changed_at: record
            .changed_at
            .as_ref()
            .and_then(tocsin_core::from_timestamp),
    })
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

async fn put(args: EntryArgs, update: bool) -> anyhow::Result<()> {
    let draft = args.draft()?;
    let (_, mut client) = client(&args.connect).await?;
    let record = if update {
        client
            .update_entry(pb::UpdateEntryRequest {
                entry: Some(draft.to_proto()),
            })
            .await
            .map_err(refused)?
            .into_inner()
            .entry
            .context("the node answered without the entry")?
    } else {
        client
            .add_entries(pb::AddEntriesRequest {
                entries: vec![draft.to_proto()],
            })
            .await
            .map_err(refused)?
            .into_inner()
            .entries
            .pop()
            .context("the node answered without the entry")?
    };
    let shown = shown(record)?;
    if args.connect.json {
        return print_json(&shown);
    }
    println!(
        "{} {}/{} (seq {})",
        if update { "updated" } else { "added" },
        shown.entry.owner,
        shown.entry.reference,
        shown.seq
    );
    Ok(())
}

async fn remove(args: RemoveArgs) -> anyhow::Result<()> {
    let (agency, mut client) = client(&args.connect).await?;
    let seq = client
        .remove_entry(pb::RemoveEntryRequest {
            r#ref: args.reference.clone(),
        })
        .await
        .map_err(refused)?
        .into_inner()
        .seq;
    if args.connect.json {
        return print_json(&serde_json::json!({
            "owner": agency.to_string(), "ref": args.reference, "seq": seq,
        }));
    }
    println!("removed {agency}/{} (seq {seq})", args.reference);
    Ok(())
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let (_, mut client) = client(&args.connect).await?;
    let records = client
        .list_entries(pb::ListEntriesRequest {
            owner: args.owner.clone().unwrap_or_default(),
        })
        .await
        .map_err(refused)?
        .into_inner()
        .entries;
    let shown = records
        .into_iter()
        .map(shown)
        .collect::<anyhow::Result<Vec<_>>>()?;
    if args.connect.json {
        return print_json(&shown);
    }
    if shown.is_empty() {
        println!("no watchlist entries");
        return Ok(());
    }
    let mut table = Table::new();
    table.load_preset(presets::UTF8_BORDERS_ONLY);
    table.set_header([
        "OWNER",
        "REF",
        "SUBJECT",
        "ACTION",
        "HIT",
        "TLP",
        "RELEASABLE TO",
        "EXPIRES",
        "SEQ",
    ]);
    for s in &shown {
        let e = &s.entry;
        table.add_row([
            e.owner.to_string(),
            e.reference.clone(),
            e.subject.label(),
            e.action.to_string(),
            e.hit_precedence.to_string(),
            e.tlp.to_string(),
            e.releasable_to
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            e.expires_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            s.seq.to_string(),
        ]);
    }
    println!("{table}");
    Ok(())
}

async fn import(args: ImportArgs) -> anyhow::Result<()> {
    let name = args.file.display().to_string();
    let stored = if args.stix {
        crate::stix_cmd::import(&args.connect, &args.file).await?
    } else {
        import_lines(&args).await?
    };
    let shown = stored
        .into_iter()
        .map(shown)
        .collect::<anyhow::Result<Vec<_>>>()?;
    if args.connect.json {
        return print_json(&shown);
    }
    let seqs: Vec<u64> = shown.iter().map(|s| s.seq).collect();
    println!(
        "imported {} entries from {name} (seq {}..{})",
        shown.len(),
        seqs.first().unwrap_or(&0),
        seqs.last().unwrap_or(&0)
    );
    Ok(())
}

/// The entries of a file of JSON lines, published all or none.
async fn import_lines(args: &ImportArgs) -> anyhow::Result<Vec<pb::WatchlistRecord>> {
    let name = args.file.display().to_string();
    // Every line is read and checked before anything is sent: a file with
    // one bad line imports nothing.
    let mut lines = Vec::new();
    let mut drafts = Vec::new();
    for line in crate::json_lines::read::<EntryDraft>(&args.file)? {
        let (n, draft) = line.map_err(|e| anyhow::anyhow!("{e}; nothing was imported"))?;
        lines.push(n);
        drafts.push(draft);
    }
    if drafts.is_empty() {
        bail!("{name} holds no entry");
    }
    let (agency, mut client) = client(&args.connect).await?;
    for (draft, line) in drafts.iter().zip(&lines) {
        if let Err(e) = draft.check(&agency) {
            bail!("{name} line {line}: {e}; nothing was imported");
        }
    }
    let stored = client
        .add_entries(pb::AddEntriesRequest {
            entries: drafts.iter().map(EntryDraft::to_proto).collect(),
        })
        .await
        .map_err(|status| {
            match crate::json_lines::index_in(status.message(), "entries")
                .and_then(|i| lines.get(i))
            {
                Some(line) => anyhow::anyhow!(
                    "{name} line {line}: node refused: {:?}: {}; nothing was imported",
                    status.code(),
                    status.message()
                ),
                // The request as a whole, too large for the node, say:
                // still all or none.
                None => anyhow::anyhow!(
                    "{name}: node refused: {:?}: {}; nothing was imported",
                    status.code(),
                    status.message()
                ),
            }
        })?
        .into_inner()
        .entries;
    Ok(stored)
}

async fn sync_status(args: StatusArgs) -> anyhow::Result<()> {
    let (_, mut client) = client(&args.connect).await?;
    let owners = client
        .sync_status(pb::SyncStatusRequest {})
        .await
        .map_err(refused)?
        .into_inner()
        .owners;
    let rows: Vec<serde_json::Value> = owners
        .iter()
        .map(|o| {
            serde_json::json!({
                "owner": o.owner,
                "cursor": o.cursor,
                "head": o.head,
                "behind_changes": o.behind_changes,
                "behind_seconds": o.behind_seconds,
                "held": o.held,
                "heard_at": o.heard_at.as_ref().and_then(tocsin_core::from_timestamp),
                "last_refusal": o.last_refusal,
            })
        })
        .collect();
    if args.connect.json {
        return print_json(&rows);
    }
    let mut table = Table::new();
    table.load_preset(presets::UTF8_BORDERS_ONLY);
    table.set_header([
        "OWNER",
        "CURSOR",
        "HEAD",
        "BEHIND",
        "BEHIND (s)",
        "HELD",
        "LAST REFUSAL",
    ]);
    for o in &owners {
        table.add_row([
            o.owner.clone(),
            o.cursor.to_string(),
            o.head.to_string(),
            o.behind_changes.to_string(),
            format!("{:.1}", o.behind_seconds),
            o.held.to_string(),
            o.last_refusal.clone(),
        ]);
    }
    println!("{table}");
    Ok(())
}
