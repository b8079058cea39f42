//! A read-only view of a node's store, for checking and exporting its
//! audit log.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::check::*;
use super::encoding::*;
use super::source::{AuditRows, PostgresRows, SqliteRows};
use crate::error::Error;

/// What [`AuditReader::check`] found.
#[derive(Debug, Clone, Default)]
pub struct StoreCheck {
    /// Entries walked.
    pub entries: u64,
    /// Rows in the events table.
    pub events: u64,
    /// Envelopes the entries recorded and found.
    pub envelopes: u64,
    /// The last entry: seq and stored hash.
    pub head: Option<(u64, [u8; 32])>,
    /// Everything wrong, in report order (without signature checks).
    pub findings: Vec<Finding>,
}

/// Where a node's store is: a SQLite data directory, or a PostgreSQL
/// database. Its `Debug` and [`StoreLocation::describe`] never show a
/// password the URL holds.
#[derive(Clone)]
pub enum StoreLocation {
    /// The SQLite store in this data directory.
    Dir(PathBuf),
    /// The PostgreSQL store at this connection string.
    Url(String),
}

impl StoreLocation {
    /// The store, as a report names it: the SQLite file, or the
    /// PostgreSQL database without its password.
    pub fn describe(&self) -> String {
        match self {
            Self::Dir(dir) => crate::sqlite::schema::database_path(dir)
                .display()
                .to_string(),
            Self::Url(url) => crate::postgres::describe_url(url),
        }
    }
}

impl std::fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dir(dir) => f.debug_tuple("Dir").field(dir).finish(),
            Self::Url(_) => f.debug_tuple("Url").field(&self.describe()).finish(),
        }
    }
}

/// A read-only view of a node's store, for checking and exporting its
/// audit log. Safe to use while the node runs: everything is read in one
/// snapshot (a SQLite read transaction, a PostgreSQL REPEATABLE READ READ
/// ONLY one). Blocking: call it off an async runtime's worker threads
/// (in `spawn_blocking`, or a thread of its own).
pub struct AuditReader {
    source: Source,
}

enum Source {
    Sqlite(Connection),
    Postgres {
        // A runtime of the reader's own: the connection runs on it, and
        // the check is driven by it, whatever the caller runs.
        runtime: tokio::runtime::Runtime,
        client: tokio_postgres::Client,
    },
}

impl std::fmt::Debug for AuditReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditReader").finish_non_exhaustive()
    }
}

impl AuditReader {
    /// Opens the store in `data_dir` read-only. A store whose schema is
    /// older than the audit log (version 8) has none yet: start its node
    /// once to migrate it.
    pub fn open(data_dir: &Path) -> Result<Self, Error> {
        Ok(Self {
            source: Source::Sqlite(open_sqlite(data_dir)?),
        })
    }

    /// Connects to the PostgreSQL store at `url`, read-only: the database
    /// is not migrated, and one that holds no Tocsin store, or a newer
    /// one than this binary knows, is refused.
    pub fn connect(url: &str) -> Result<Self, Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|cause| Error::Io {
                path: "the PostgreSQL reader's runtime".into(),
                cause,
            })?;
        let client = runtime.block_on(async {
            let client = crate::postgres::pool::connect_one(url).await?;
            crate::postgres::schema::check_version(&client).await?;
            Ok::<_, Error>(client)
        })?;
        Ok(Self {
            source: Source::Postgres { runtime, client },
        })
    }

    /// Opens the store at `at`: [`AuditReader::open`] or
    /// [`AuditReader::connect`].
    pub fn open_at(at: &StoreLocation) -> Result<Self, Error> {
        match at {
            StoreLocation::Dir(dir) => Self::open(dir),
            StoreLocation::Url(url) => Self::connect(url),
        }
    }

    /// Checks the whole store in one snapshot: the chain; each event against
    /// its entry; each envelope an entry recorded against the stored bytes;
    /// events and envelopes no entry recorded. `visit` sees every entry with
    /// the bytes found for its evidence (for signature checks or export);
    /// `progress` is told (entries done, entries in all) now and then.
    pub fn check(
        &mut self,
        visit: impl FnMut(&AuditEntry, &[Option<Vec<u8>>]),
        progress: impl FnMut(u64, u64),
    ) -> Result<StoreCheck, Error> {
        match &mut self.source {
            Source::Sqlite(conn) => {
                let tx = conn.transaction()?;
                // Nothing in a SQLite source waits: the future is ready
                // at its first poll.
                futures::executor::block_on(check_rows(
                    &mut SqliteRows { conn: &tx },
                    visit,
                    progress,
                ))
            }
            Source::Postgres { runtime, client } => runtime.block_on(async {
                let tx = client
                    .build_transaction()
                    .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()
                    .await?;
                let check = check_rows(&mut PostgresRows::new(&tx), visit, progress).await?;
                tx.rollback().await?;
                Ok(check)
            }),
        }
    }
}

/// Opens the SQLite store in `data_dir` read-only, refusing one older
/// than the audit log.
pub(crate) fn open_sqlite(data_dir: &Path) -> Result<Connection, Error> {
    let path = crate::sqlite::schema::database_path(data_dir);
    if !path.exists() {
        return Err(Error::NotFound(format!("no store at {}", path.display())));
    }
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    // Later versions add nothing the check reads.
    let latest = crate::sqlite::schema::AUDIT_LOG_VERSION;
    if version < latest {
        return Err(Error::NotFound(format!(
            "store {} has schema version {version}, older than the audit log's {latest}: start its node once to migrate it (the migration builds the audit log)",
            path.display()
        )));
    }
    Ok(conn)
}

/// Entries read per query.
const PAGE: i64 = 1000;

/// The check itself, on rows from either backend (see
/// [`AuditReader::check`]).
pub(crate) async fn check_rows(
    rows: &mut dyn AuditRows,
    mut visit: impl FnMut(&AuditEntry, &[Option<Vec<u8>>]),
    mut progress: impl FnMut(u64, u64),
) -> Result<StoreCheck, Error> {
    let total = rows.entry_count().await?;
    let mut chain = ChainCheck::new();
    let mut findings = Vec::new();
    let mut recorded: HashSet<Location> = HashSet::new();
    // (event id, seq) of every entry, to place unrecorded events.
    let mut event_ids: Vec<(i64, u64)> = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    let mut envelopes = 0;
    let mut after = 0;
    loop {
        let page = rows.entries_after(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        // The chain first, entry by entry; then the page's envelopes, read
        // at once (one round trip on PostgreSQL, not one per envelope).
        let mut entries = Vec::with_capacity(page.len());
        for stored in page {
            let seq = u64::try_from(stored.seq).unwrap_or(0);
            let evidence = match decode_evidence(&stored.evidence) {
                Ok(e) => e,
                Err(why) => {
                    chain.note(Finding::new(
                        seq,
                        Problem::Changed,
                        format!("entry {seq}'s evidence list is unreadable ({why})"),
                    ));
                    Vec::new()
                }
            };
            let (Ok(prev_hash), Ok(hash)) = (
                <[u8; 32]>::try_from(stored.prev_hash.as_slice()),
                <[u8; 32]>::try_from(stored.hash.as_slice()),
            ) else {
                chain.note(Finding::new(
                    seq,
                    Problem::Changed,
                    format!("entry {seq}'s hashes are not 32 bytes"),
                ));
                continue;
            };
            let entry = AuditEntry {
                seq,
                event: stored.event,
                evidence,
                prev_hash,
                hash,
            };
            chain.push(&entry);
            event_ids.push((entry.event.id, seq));
            entries.push((entry, stored.now));
        }
        let locations: Vec<Location> = entries
            .iter()
            .flat_map(|(e, _)| e.evidence.iter().map(|r| r.location.clone()))
            .collect();
        let mut fetched = rows.envelopes(&locations).await?.into_iter();

        for (entry, now) in entries {
            let seq = entry.seq;
            // The event as the events table holds it now.
            match now {
                None => findings.push(Finding::new(
                    seq,
                    Problem::Removed,
                    format!(
                        "event {} that entry {seq} recorded is gone from the events table",
                        entry.event.id
                    ),
                )),
                Some(now) if now != entry.event => {
                    findings.push(event_mismatch(rows, &entry, &now).await?);
                }
                Some(_) => {}
            }

            let mut found = Vec::with_capacity(entry.evidence.len());
            for r in &entry.evidence {
                let l = &r.location;
                let bytes = fetched.next().flatten();
                if !recorded.insert(l.clone()) {
                    findings.push(Finding::new(
                        seq,
                        Problem::Inserted,
                        format!("entry {seq} records the {l} a second time"),
                    ));
                }
                envelopes += u64::from(bytes.is_some());
                found.push(bytes);
            }
            findings.extend(check_evidence(&entry, &found));
            visit(&entry, &found);
            if chain.entries().is_multiple_of(10_000) && chain.entries() < total {
                progress(chain.entries(), total);
            }
        }
    }
    progress(chain.entries(), total);

    // Events no entry recorded.
    event_ids.sort_unstable();
    let all = rows.event_ids().await?;
    let events = all.len() as u64;
    for id in all {
        if let Err(at) = event_ids.binary_search_by_key(&id, |(e, _)| *e) {
            // Placed after the entry of the nearest earlier event.
            let after = at.checked_sub(1).map(|i| event_ids[i].1).unwrap_or(0);
            findings.push(Finding::new(
                after + 1,
                Problem::Inserted,
                format!(
                    "event {id} is in the events table but in no audit entry (after entry {after})"
                ),
            ));
        }
    }
    // Envelopes no entry recorded.
    for kind in EvidenceKind::ALL {
        for location in rows.inventory(kind).await? {
            if !recorded.contains(&location) {
                findings.push(Finding::new(
                    u64::MAX,
                    Problem::Inserted,
                    format!("the {location} is in the store but in no audit entry"),
                ));
            }
        }
    }
    let head = chain.head();
    let entries = chain.entries();
    findings.extend(chain.finish());
    sort_findings(&mut findings);
    Ok(StoreCheck {
        entries,
        events,
        envelopes,
        head,
        findings,
    })
}

/// Describes how an event differs from its entry: a reordering if it holds
/// what a nearby entry recorded, a change otherwise.
async fn event_mismatch(
    rows: &mut dyn AuditRows,
    entry: &AuditEntry,
    now: &AuditEvent,
) -> Result<Finding, Error> {
    let seq = i64::try_from(entry.seq).unwrap_or(i64::MAX);
    let nearby = rows.entries_near(seq).await?;
    if let Some((other, recorded)) = nearby.iter().find(|(_, e)| e.same_content(now)) {
        return Ok(Finding::new(
            entry.seq,
            Problem::Reordered,
            format!(
                "event {} holds what entry {other} recorded for event {}: events were reordered",
                now.id, recorded.id
            ),
        ));
    }
    Ok(Finding::new(
        entry.seq,
        Problem::Changed,
        format!(
            "event {} differs from what entry {} recorded ({})",
            now.id,
            entry.seq,
            entry.event.differences(now)
        ),
    ))
}
