//! `tocsin screen`: screen a person against every watchlist entry the
//! operator's node holds, from flags or from a file of one JSON object per
//! line (one result per line out, in order).

use std::io::Write;
use std::path::PathBuf;

use anyhow::bail;
use chrono::{DateTime, Utc};
use clap::Args;
use comfy_table::{Table, presets};
use tocsin_core::watchlist::Entry;
use tocsin_proto::pb;
use tocsin_proto::pb::watchlist_desk_client::WatchlistDeskClient;
use tonic::transport::Channel;

use crate::args::ConnectArgs;
use crate::operator::{connect_channel, refused};

/// Requests sent in one `ScreenBatch` (the node takes at most 1,000): a
/// large file is streamed in chunks of this many lines.
const CHUNK: usize = 500;

/// What to screen.
#[derive(Debug, Args)]
pub(crate) struct ScreenArgs {
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
    /// One JSON object per line (names, aliases, dob, nationalities,
    /// documents, identifiers, seen_at, seen_place, ref); one result per
    /// line out, in order. No other screening flag may be given with it.
    #[arg(long, conflicts_with_all = ["name", "dob", "nationality", "document", "identifier", "seen_at", "seen_place", "reference"])]
    pub(crate) file: Option<PathBuf>,
    /// A name of the person (repeatable).
    #[arg(long)]
    pub(crate) name: Vec<String>,
    /// Date of birth, YYYY-MM-DD or YYYY.
    #[arg(long)]
    pub(crate) dob: Option<String>,
    /// A nationality, as a country code (repeatable).
    #[arg(long)]
    pub(crate) nationality: Vec<String>,
    /// A document, as KIND:NUMBER or KIND:NUMBER:COUNTRY (repeatable).
    #[arg(long)]
    pub(crate) document: Vec<String>,
    /// An identifier, as KIND:VALUE (phone:+33...) (repeatable).
    #[arg(long)]
    pub(crate) identifier: Vec<String>,
    /// When the person was seen (RFC 3339).
    #[arg(long)]
    pub(crate) seen_at: Option<DateTime<Utc>>,
    /// Where the person was seen.
    #[arg(long)]
    pub(crate) seen_place: Option<String>,
    /// Your own reference for this screen, kept in the result.
    #[arg(long = "ref", id = "reference")]
    pub(crate) reference: Option<String>,
    /// At most this many matches per screen, best first (the node's
    /// default is 10, its most 100). With `--file`, for every line that
    /// sets no `limit` of its own.
    #[arg(long)]
    pub(crate) limit: Option<u32>,
}

/// A document of a screened person, as a file line writes it.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DocumentLine {
    kind: String,
    number: String,
    #[serde(default)]
    issuing_country: String,
}

/// An identifier, as a file line writes it.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentifierLine {
    kind: String,
    value: String,
}

/// One line of a `--file`: a person to screen.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ScreenLine {
    #[serde(default, rename = "ref")]
    reference: String,
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    dob: String,
    #[serde(default)]
    nationalities: Vec<String>,
    #[serde(default)]
    documents: Vec<DocumentLine>,
    #[serde(default)]
    identifiers: Vec<IdentifierLine>,
    #[serde(default)]
    seen_at: Option<DateTime<Utc>>,
    #[serde(default)]
    seen_place: String,
    #[serde(default)]
    limit: Option<u32>,
}

impl ScreenLine {
    fn request(self, limit: Option<u32>) -> pb::ScreenRequest {
        pb::ScreenRequest {
            limit: self.limit.or(limit).unwrap_or_default(),
            person: Some(pb::Person {
                names: self.names,
                aliases: self.aliases,
                date_of_birth: self.dob,
                nationalities: self.nationalities,
                documents: self
                    .documents
                    .into_iter()
                    .map(|d| pb::Document {
                        kind: d.kind,
                        number: d.number,
                        issuing_country: d.issuing_country,
                    })
                    .collect(),
            }),
            identifiers: self
                .identifiers
                .into_iter()
                .map(|i| pb::Identifier {
                    kind: i.kind,
                    value: i.value,
                })
                .collect(),
            seen_at: self.seen_at.map(tocsin_core::to_timestamp),
            seen_place: self.seen_place,
            r#ref: self.reference,
        }
    }
}

/// Whether a request gives anything to screen on (the node checks the
/// same; checking here lets a file fail before anything is screened).
fn has_something(r: &pb::ScreenRequest) -> bool {
    let person = r.person.as_ref();
    person.is_some_and(|p| {
        p.names
            .iter()
            .chain(&p.aliases)
            .any(|n| !n.trim().is_empty())
            || p.documents.iter().any(|d| !d.number.trim().is_empty())
    }) || !r.identifiers.is_empty()
}

fn split_pair<'a>(flag: &str, value: &'a str) -> anyhow::Result<(&'a str, &'a str)> {
    match value.split_once(':') {
        Some((k, v)) if !k.trim().is_empty() && !v.trim().is_empty() => Ok((k.trim(), v.trim())),
        _ => bail!("--{flag} {value:?}: expected KIND:VALUE"),
    }
}

impl ScreenArgs {
    /// The request the flags describe.
    fn request(&self) -> anyhow::Result<pb::ScreenRequest> {
        let mut documents = Vec::new();
        for d in &self.document {
            let mut parts = d.splitn(3, ':');
            let (Some(kind), Some(number)) = (parts.next(), parts.next()) else {
                bail!("--document {d:?}: expected KIND:NUMBER or KIND:NUMBER:COUNTRY");
            };
            documents.push(pb::Document {
                kind: kind.trim().into(),
                number: number.trim().into(),
                issuing_country: parts.next().unwrap_or("").trim().into(),
            });
        }
        let mut identifiers = Vec::new();
        for i in &self.identifier {
            let (kind, value) = split_pair("identifier", i)?;
            identifiers.push(pb::Identifier {
                kind: kind.into(),
                value: value.into(),
            });
        }
        let request = pb::ScreenRequest {
            person: Some(pb::Person {
                names: self.name.clone(),
                aliases: vec![],
                date_of_birth: self.dob.clone().unwrap_or_default(),
                nationalities: self.nationality.clone(),
                documents,
            }),
            identifiers,
            seen_at: self.seen_at.map(tocsin_core::to_timestamp),
            seen_place: self.seen_place.clone().unwrap_or_default(),
            r#ref: self.reference.clone().unwrap_or_default(),
            limit: self.limit.unwrap_or_default(),
        };
        if !has_something(&request) {
            bail!("nothing to screen on: give --name, --document or --identifier, or --file");
        }
        Ok(request)
    }
}

/// A match as `--json` prints it.
#[derive(Debug, serde::Serialize)]
struct ShownMatch {
    score: f32,
    hit: bool,
    owner: String,
    #[serde(rename = "ref")]
    reference: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    entry: Option<Entry>,
    reasons: Vec<ShownReason>,
    reasons_text: String,
    /// The hit report sent to the owner (or the earlier one repeated).
    #[serde(skip_serializing_if = "String::is_empty")]
    hit_report_id: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    hit_report_repeated: bool,
    /// Why the hit report could not be sent, if it could not.
    #[serde(skip_serializing_if = "String::is_empty")]
    hit_report_error: String,
}

/// A reason as `--json` prints it.
#[derive(Debug, serde::Serialize)]
struct ShownReason {
    kind: String,
    query: String,
    candidate: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    how: String,
    text: String,
}

/// A result as `--json` prints it.
#[derive(Debug, serde::Serialize)]
struct Shown {
    #[serde(rename = "ref")]
    reference: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    screened_at: Option<DateTime<Utc>>,
    matches: Vec<ShownMatch>,
    /// More entries may have matched than are shown (the limit).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    more_matches: bool,
}

fn shown(result: pb::ScreenResponse, line: Option<usize>) -> Shown {
    Shown {
        reference: result.r#ref,
        line,
        more_matches: result.more_matches,
        screened_at: result
            .screened_at
            .as_ref()
            .and_then(tocsin_core::from_timestamp),
        matches: result
            .matches
            .into_iter()
            .map(|m| ShownMatch {
                score: m.score,
                hit: m.hit,
                owner: m.owner,
                reference: m.r#ref,
                entry: m.entry.and_then(|e| Entry::try_from(e).ok()),
                reasons: m
                    .reasons
                    .into_iter()
                    .map(|r| ShownReason {
                        kind: pb::match_reason::Kind::try_from(r.kind)
                            .map(|k| {
                                k.as_str_name()
                                    .trim_start_matches("KIND_")
                                    .to_ascii_lowercase()
                            })
                            .unwrap_or_default(),
                        query: r.query,
                        candidate: r.candidate,
                        how: r.how,
                        text: r.text,
                    })
                    .collect(),
                reasons_text: m.reasons_text,
                hit_report_id: m.hit_report_id,
                hit_report_repeated: m.hit_report_repeated,
                hit_report_error: m.hit_report_error,
            })
            .collect(),
    }
}

/// What became of a hit: the report sent to the owner, or the earlier one
/// this screen repeats; nothing for a hit on an own entry.
fn report_of(m: &ShownMatch) -> String {
    if !m.hit_report_error.is_empty() {
        return format!("NOT reported: {}", m.hit_report_error);
    }
    match (m.hit_report_id.as_str(), m.hit_report_repeated) {
        ("", _) => String::new(),
        (id, false) => format!("reported to {}: {id}", m.owner),
        (id, true) => format!("already reported: {id}"),
    }
}

fn action_of(m: &ShownMatch) -> String {
    m.entry
        .as_ref()
        .map(|e| e.action.to_string())
        .unwrap_or_default()
}

fn table(s: &Shown) -> String {
    if s.matches.is_empty() {
        return "no match".into();
    }
    let mut table = Table::new();
    table.load_preset(presets::UTF8_BORDERS_ONLY);
    table.set_header([
        "SCORE",
        "HIT",
        "OWNER",
        "REF",
        "ACTION",
        "REASONS",
        "HIT REPORT",
    ]);
    for m in &s.matches {
        table.add_row([
            format!("{:.2}", m.score),
            if m.hit { "HIT" } else { "" }.to_owned(),
            m.owner.clone(),
            m.reference.clone(),
            action_of(m),
            m.reasons_text.clone(),
            report_of(m),
        ]);
    }
    let mut out = table.to_string();
    if s.more_matches {
        out.push('\n');
        out.push_str(MORE);
    }
    out
}

/// Said under the matches when the node had more than it returned.
const MORE: &str =
    "more entries may match than are shown: give a date of birth, or --limit (up to 100)";

/// One line for a result of a file: its ref (or line) and its matches.
fn one_line(s: &Shown) -> String {
    let who = if s.reference.is_empty() {
        format!("line {}", s.line.unwrap_or(0))
    } else {
        s.reference.clone()
    };
    if s.matches.is_empty() {
        return format!("{who}: no match");
    }
    let found: Vec<String> = s
        .matches
        .iter()
        .map(|m| {
            let report = report_of(m);
            format!(
                "{}{}/{} {:.2} {} ({}){}",
                if m.hit { "HIT " } else { "" },
                m.owner,
                m.reference,
                m.score,
                action_of(m),
                m.reasons_text,
                if report.is_empty() {
                    String::new()
                } else {
                    format!(" [{report}]")
                }
            )
        })
        .collect();
    let more = if s.more_matches {
        "; (more may match)"
    } else {
        ""
    };
    format!("{who}: {}{more}", found.join("; "))
}

async fn client(connect: &ConnectArgs) -> anyhow::Result<WatchlistDeskClient<Channel>> {
    let (_, channel) = connect_channel(connect).await?;
    Ok(WatchlistDeskClient::new(channel))
}

/// Runs `tocsin screen`.
pub(crate) async fn run(args: ScreenArgs) -> anyhow::Result<()> {
    if let Some(file) = &args.file {
        return screen_file(&args.connect, file, args.limit).await;
    }
    let request = args.request()?;
    let mut client = client(&args.connect).await?;
    let result = client.screen(request).await.map_err(refused)?.into_inner();
    let shown = shown(result, None);
    if args.connect.json {
        println!("{}", serde_json::to_string_pretty(&shown)?);
    } else {
        println!("{}", table(&shown));
    }
    Ok(())
}

/// The lines of `file` that hold a request, each with its number, read
/// one at a time.
fn requests(
    file: &std::path::Path,
    limit: Option<u32>,
) -> anyhow::Result<impl Iterator<Item = anyhow::Result<(usize, pb::ScreenRequest)>>> {
    let name = file.display().to_string();
    Ok(
        crate::json_lines::read::<ScreenLine>(file)?.map(move |line| {
            let (n, line) = line?;
            let r = line.request(limit);
            if !has_something(&r) {
                bail!(
                    "{name} line {n}: nothing to screen on: give names, documents or identifiers"
                );
            }
            check_limit(r.limit).map_err(|e| anyhow::anyhow!("{name} line {n}: {e}"))?;
            Ok((n, r))
        }),
    )
}

/// The node refuses a screen asking for more matches than its most: a file
/// is checked whole before any of it is screened.
fn check_limit(limit: u32) -> anyhow::Result<()> {
    let most = tocsin_node::MAX_SCREEN_LIMIT;
    if limit as usize > most {
        bail!("limit {limit}: at most {most} matches a screen");
    }
    Ok(())
}

async fn screen_file(
    connect: &ConnectArgs,
    file: &std::path::Path,
    limit: Option<u32>,
) -> anyhow::Result<()> {
    // A first pass checks every line, so that a file with a bad line
    // screens nothing; the second streams it in chunks. Neither holds the
    // whole file.
    let mut count = 0usize;
    for r in requests(file, limit)? {
        r.map_err(|e| anyhow::anyhow!("{e}; nothing was screened"))?;
        count += 1;
    }
    if count == 0 {
        bail!("{} holds nothing to screen", file.display());
    }
    let mut client = client(connect).await?;
    let stdout = std::io::stdout();
    let mut lines = requests(file, limit)?.peekable();
    while lines.peek().is_some() {
        let mut numbers = Vec::with_capacity(CHUNK);
        let mut batch = Vec::with_capacity(CHUNK);
        for r in lines.by_ref().take(CHUNK) {
            let (n, request) = r?;
            numbers.push(n);
            batch.push(request);
        }
        let results = client
            .screen_batch(pb::ScreenBatchRequest { requests: batch })
            .await
            .map_err(|status| {
                match crate::json_lines::index_in(status.message(), "requests")
                    .and_then(|i| numbers.get(i))
                {
                    Some(line) => anyhow::anyhow!(
                        "{} line {line}: node refused: {:?}: {}",
                        file.display(),
                        status.code(),
                        status.message()
                    ),
                    None => refused(status),
                }
            })?
            .into_inner()
            .results;
        let mut out = stdout.lock();
        for (result, n) in results.into_iter().zip(&numbers) {
            let shown = shown(result, Some(*n));
            if connect.json {
                writeln!(out, "{}", serde_json::to_string(&shown)?)?;
            } else {
                writeln!(out, "{}", one_line(&shown))?;
            }
        }
        out.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_with_nothing_to_screen_on_is_refused() {
        let line: ScreenLine = serde_json::from_str(r#"{"ref": "a", "dob": "1980"}"#).unwrap();
        assert!(!has_something(&line.request(None)));
        let line: ScreenLine =
            serde_json::from_str(r#"{"identifiers": [{"kind": "phone", "value": "1"}]}"#).unwrap();
        assert!(has_something(&line.request(None)));
        assert!(serde_json::from_str::<ScreenLine>(r#"{"nmes": ["x"]}"#).is_err());
    }

    /// A line's own `limit` wins over `--limit`; a file with a line asking
    /// for more than the node's most is refused by its line number, in the
    /// pass that checks every line before any is screened.
    #[test]
    fn a_file_line_over_the_limit_is_named_before_anything_is_screened() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("people.jsonl");
        std::fs::write(
            &file,
            "{\"names\": [\"Salah Abdeslam\"]}\n{\"names\": [\"Samy Amimour\"], \"limit\": 3}\n",
        )
        .unwrap();
        let limits: Vec<u32> = requests(&file, Some(20))
            .unwrap()
            .map(|r| r.unwrap().1.limit)
            .collect();
        assert_eq!(limits, [20, 3]);
        let over = tocsin_node::MAX_SCREEN_LIMIT + 1;
        std::fs::write(
            &file,
            format!("{{\"names\": [\"A B\"]}}\n{{\"names\": [\"C D\"], \"limit\": {over}}}\n"),
        )
        .unwrap();
        let err = requests(&file, None)
            .unwrap()
            .find_map(Result::err)
            .unwrap()
            .to_string();
        assert!(
            err.contains("line 2") && err.contains("at most 100"),
            "{err}"
        );
    }
}
