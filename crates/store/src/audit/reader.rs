//! A read-only view of a node's store, for checking and exporting its
//! audit log.

use std::collections::HashSet;
use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::append::*;
use super::check::*;
use super::encoding::*;
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

/// A read-only view of a node's store, for checking and exporting its
/// audit log. Safe to use while the node runs: everything is read in one
/// snapshot.
pub struct AuditReader {
    conn: Connection,
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
        Ok(Self { conn })
    }

    /// Checks the whole store in one snapshot: the chain; each event against
    /// its entry; each envelope an entry recorded against the stored bytes;
    /// events and envelopes no entry recorded. `visit` sees every entry with
    /// the bytes found for its evidence (for signature checks or export);
    /// `progress` is told (entries done, entries in all) now and then.
    pub fn check(
        &mut self,
        mut visit: impl FnMut(&AuditEntry, &[Option<Vec<u8>>]),
        mut progress: impl FnMut(u64, u64),
    ) -> Result<StoreCheck, Error> {
        let tx = self.conn.transaction()?;
        let total: i64 = tx.query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get(0))?;
        let total = u64::try_from(total).unwrap_or(0);
        let mut chain = ChainCheck::new();
        let mut findings = Vec::new();
        let mut recorded: HashSet<Location> = HashSet::new();
        // (event id, seq) of every entry, to place unrecorded events.
        let mut event_ids: Vec<(i64, u64)> = Vec::with_capacity(total as usize);
        let mut envelopes = 0;
        {
            let mut entries = tx.prepare(&format!(
                "SELECT seq, {ENTRY_EVENT_COLUMNS}, evidence, prev_hash, hash FROM audit_log ORDER BY seq"
            ))?;
            let mut rows = entries.query([])?;
            let mut event_at =
                tx.prepare(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = ?1"))?;
            while let Some(r) = rows.next()? {
                let seq = u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0);
                let event = audit_event(r, 1)?;
                let raw_evidence: Vec<u8> = r.get(8)?;
                let prev: Vec<u8> = r.get(9)?;
                let hash: Vec<u8> = r.get(10)?;
                let evidence = match decode_evidence(&raw_evidence) {
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
                    <[u8; 32]>::try_from(prev.as_slice()),
                    <[u8; 32]>::try_from(hash.as_slice()),
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
                    event,
                    evidence,
                    prev_hash,
                    hash,
                };
                chain.push(&entry);
                event_ids.push((entry.event.id, seq));

                // The event as the events table holds it now.
                let stored = event_at
                    .query_row([entry.event.id], |r| audit_event(r, 0))
                    .optional()?;
                match stored {
                    None => findings.push(Finding::new(
                        seq,
                        Problem::Removed,
                        format!(
                            "event {} that entry {seq} recorded is gone from the events table",
                            entry.event.id
                        ),
                    )),
                    Some(now) if now != entry.event => {
                        findings.push(event_mismatch(&tx, &entry, &now)?);
                    }
                    Some(_) => {}
                }

                let mut found = Vec::with_capacity(entry.evidence.len());
                for r in &entry.evidence {
                    let l = &r.location;
                    let bytes: Option<Vec<u8>> = tx
                        .prepare_cached(l.kind.select())?
                        .query_row(params![l.key, l.key2], |r| r.get(0))
                        .optional()?
                        .flatten();
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
                if chain.entries().is_multiple_of(10_000) {
                    progress(chain.entries(), total);
                }
            }
        }
        progress(chain.entries(), total);

        // Events no entry recorded.
        event_ids.sort_unstable();
        let mut events = 0;
        {
            let mut all = tx.prepare("SELECT id FROM events ORDER BY id")?;
            let mut rows = all.query([])?;
            while let Some(r) = rows.next()? {
                events += 1;
                let id: i64 = r.get(0)?;
                if let Err(at) = event_ids.binary_search_by_key(&id, |(e, _)| *e) {
                    // Placed after the entry of the nearest earlier event.
                    let after = at.checked_sub(1).map(|i| event_ids[i].1).unwrap_or(0);
                    findings.push(Finding::new(
                        after + 1,
                        Problem::Inserted,
                        format!("event {id} is in the events table but in no audit entry (after entry {after})"),
                    ));
                }
            }
        }
        // Envelopes no entry recorded.
        for kind in EvidenceKind::ALL {
            let mut stmt = tx.prepare(kind.inventory())?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let location = Location {
                    kind,
                    key: r.get(0)?,
                    key2: r.get(1)?,
                };
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
}

/// Describes how an event differs from its entry: a reordering if it holds
/// what a nearby entry recorded, a change otherwise.
fn event_mismatch(
    conn: &Connection,
    entry: &AuditEntry,
    now: &AuditEvent,
) -> Result<Finding, Error> {
    let seq = i64::try_from(entry.seq).unwrap_or(i64::MAX);
    let nearby: Vec<(i64, AuditEvent)> = conn
        .prepare_cached(&format!(
            "SELECT seq, {ENTRY_EVENT_COLUMNS} FROM audit_log WHERE seq BETWEEN ?1 - 64 AND ?1 + 64 AND seq != ?1"
        ))?
        .query_map([seq], |r| Ok((r.get(0)?, audit_event(r, 1)?)))?
        .collect::<Result<_, _>>()?;
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
