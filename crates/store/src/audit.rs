//! The tamper-evident record: an append-only, hash-chained audit log.
//!
//! Every event is written with one `audit_log` entry, in the same
//! transaction. An entry holds a copy of the event, the locations and
//! SHA-256 digests of the signed envelopes the step stored (its
//! *evidence*), the previous entry's hash and its own:
//!
//! ```text
//! hash(n) = SHA-256( bytes("tocsin/audit-entry/v1") || u64(seq) || bytes(hash(n-1))
//!                    || i64(event_id) || i64(at_ms) || i64(kind) || bytes(alert_id)
//!                    || bytes(agency) || i64(direction) || bytes(detail)
//!                    || bytes(evidence) )
//! evidence = u64(count) || { i64(kind) || bytes(key) || bytes(key2) || bytes(sha256) }*
//! ```
//!
//! `u64`/`i64` are 8 bytes big-endian; `bytes(x)` is `u64(len(x)) || x`;
//! strings are UTF-8; `hash(0)` is 32 zero bytes. The `evidence` column holds
//! exactly the `evidence` bytes hashed. An evidence digest is SHA-256 of the
//! envelope exactly as stored (the encoded `tocsin.v1.Envelope`).
//!
//! [`AuditReader`] opens a store read-only and checks it: the chain, each
//! event against the entry that recorded it, and every stored envelope
//! against the entry that recorded it. [`ChainCheck`] is the part that needs
//! only the entries, shared with exported bundles. Signatures are not
//! checked here: the store knows rows, not signatures.

use std::collections::HashSet;
use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, Transaction, params};

use crate::Error;

/// The previous hash of the first entry.
pub const GENESIS: [u8; 32] = [0; 32];

const ENTRY_TAG: &str = "tocsin/audit-entry/v1";
const HEAD_TAG: &str = "tocsin/audit-head/v1";

/// SHA-256.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Where a signed envelope is kept in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EvidenceKind {
    /// `alerts.envelope`, by alert id: an alert, sent or received.
    Alert = 1,
    /// `alerts.receipt`, by alert id: the receipt this node issued.
    ReceiptIssued = 2,
    /// `deliveries.receipt`, by alert id and recipient: a recipient's receipt.
    ReceiptReceived = 3,
    /// `acknowledgements.envelope`, by id: an acknowledgement, ours or a
    /// recipient's.
    Acknowledgement = 4,
    /// `messages.envelope`, by id: an acknowledgement, reminder or notice
    /// this node queued for a peer.
    Message = 5,
    /// `received_messages.envelope`, by id: a reminder or notice received.
    ReceivedMessage = 6,
}

impl EvidenceKind {
    /// Every kind, in code order.
    pub const ALL: [Self; 6] = [
        Self::Alert,
        Self::ReceiptIssued,
        Self::ReceiptReceived,
        Self::Acknowledgement,
        Self::Message,
        Self::ReceivedMessage,
    ];

    /// The kind with this code.
    pub fn from_code(code: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|k| *k as i64 == code)
    }

    /// A short name, as in exported bundles.
    pub fn name(self) -> &'static str {
        match self {
            Self::Alert => "alert",
            Self::ReceiptIssued => "receipt-issued",
            Self::ReceiptReceived => "receipt-received",
            Self::Acknowledgement => "acknowledgement",
            Self::Message => "message",
            Self::ReceivedMessage => "received-message",
        }
    }

    /// The kind with this [`EvidenceKind::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The query reading the envelope at a location (`?1` key, `?2` key2).
    fn select(self) -> &'static str {
        match self {
            Self::Alert => "SELECT envelope FROM alerts WHERE id = ?1 AND ?2 = ''",
            Self::ReceiptIssued => "SELECT receipt FROM alerts WHERE id = ?1 AND ?2 = ''",
            Self::ReceiptReceived => {
                "SELECT receipt FROM deliveries WHERE alert_id = ?1 AND recipient = ?2"
            }
            Self::Acknowledgement => {
                "SELECT envelope FROM acknowledgements WHERE id = ?1 AND ?2 = ''"
            }
            Self::Message => "SELECT envelope FROM messages WHERE id = ?1 AND ?2 = ''",
            Self::ReceivedMessage => {
                "SELECT envelope FROM received_messages WHERE id = ?1 AND ?2 = ''"
            }
        }
    }

    /// The query listing every stored location of this kind.
    fn inventory(self) -> &'static str {
        match self {
            Self::Alert => "SELECT id, '' FROM alerts",
            Self::ReceiptIssued => "SELECT id, '' FROM alerts WHERE receipt IS NOT NULL",
            Self::ReceiptReceived => {
                "SELECT alert_id, recipient FROM deliveries WHERE receipt IS NOT NULL"
            }
            Self::Acknowledgement => "SELECT id, '' FROM acknowledgements",
            Self::Message => "SELECT id, '' FROM messages",
            Self::ReceivedMessage => "SELECT id, '' FROM received_messages",
        }
    }
}

impl std::fmt::Display for EvidenceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A stored envelope's place: its kind and row key (`key2` is the
/// recipient for [`EvidenceKind::ReceiptReceived`], empty otherwise).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    /// Which table and column.
    pub kind: EvidenceKind,
    /// The row's key.
    pub key: String,
    /// The second part of the row's key, if any.
    pub key2: String,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.key2.is_empty() {
            write!(f, "{} {}", self.kind, self.key)
        } else {
            write!(f, "{} {} from {}", self.kind, self.key, self.key2)
        }
    }
}

/// A signed envelope an entry commits to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceRef {
    /// Where it is stored.
    pub location: Location,
    /// SHA-256 of the stored bytes.
    pub digest: [u8; 32],
}

/// An event as the audit log records it: raw column values, so that no
/// change hides behind a conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// `events.id`.
    pub id: i64,
    /// Milliseconds since the epoch (node clock).
    pub at: i64,
    /// Event kind (see [`crate::kind`]).
    pub kind: i64,
    /// The alert concerned.
    pub alert_id: String,
    /// The other agency concerned.
    pub agency: String,
    /// 1 outbound, 2 inbound.
    pub direction: i64,
    /// The readable account.
    pub detail: String,
}

impl AuditEvent {
    /// Which fields of `self` differ from `other`, as `field: was X, now Y`.
    pub fn differences(&self, now: &AuditEvent) -> String {
        let mut out = Vec::new();
        let mut diff = |name: &str, was: String, is: String| {
            if was != is {
                out.push(format!("{name}: was {was}, now {is}"));
            }
        };
        diff("id", self.id.to_string(), now.id.to_string());
        diff("at", self.at.to_string(), now.at.to_string());
        diff("kind", self.kind.to_string(), now.kind.to_string());
        diff(
            "alert_id",
            format!("{:?}", self.alert_id),
            format!("{:?}", now.alert_id),
        );
        diff(
            "agency",
            format!("{:?}", self.agency),
            format!("{:?}", now.agency),
        );
        diff(
            "direction",
            self.direction.to_string(),
            now.direction.to_string(),
        );
        diff(
            "detail",
            format!("{:?}", self.detail),
            format!("{:?}", now.detail),
        );
        out.join("; ")
    }

    /// The same content, whatever the id.
    fn same_content(&self, other: &AuditEvent) -> bool {
        (
            self.at,
            self.kind,
            &self.alert_id,
            &self.agency,
            self.direction,
            &self.detail,
        ) == (
            other.at,
            other.kind,
            &other.alert_id,
            &other.agency,
            other.direction,
            &other.detail,
        )
    }
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Position in the chain: 1, 2, 3, ... with no gaps.
    pub seq: u64,
    /// The event recorded.
    pub event: AuditEvent,
    /// The signed envelopes the step stored.
    pub evidence: Vec<EvidenceRef>,
    /// The previous entry's hash ([`GENESIS`] for the first).
    pub prev_hash: [u8; 32],
    /// This entry's hash, as stored.
    pub hash: [u8; 32],
}

impl AuditEntry {
    /// The hash this entry's content gives (equal to `hash` unless changed).
    pub fn computed_hash(&self) -> [u8; 32] {
        entry_hash(
            self.seq,
            &self.prev_hash,
            &self.event,
            &encode_evidence(&self.evidence),
        )
    }
}

/// The canonical, length-prefixed encoding.
#[derive(Default)]
struct Enc(Vec<u8>);

impl Enc {
    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn i64(&mut self, v: i64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.u64(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }
}

/// Reads what [`Enc`] wrote; every read is bounds-checked.
struct Dec<'a>(&'a [u8]);

impl<'a> Dec<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("truncated".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        Ok(u64::from_be_bytes(b.try_into().map_err(|_| "truncated")?))
    }
    fn i64(&mut self) -> Result<i64, String> {
        let b = self.take(8)?;
        Ok(i64::from_be_bytes(b.try_into().map_err(|_| "truncated")?))
    }
    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = usize::try_from(self.u64()?).map_err(|_| "length too large")?;
        self.take(n)
    }
    fn string(&mut self) -> Result<String, String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| "not UTF-8".into())
    }
    fn hash(&mut self) -> Result<[u8; 32], String> {
        self.bytes()?
            .try_into()
            .map_err(|_| "a hash is not 32 bytes".into())
    }
    fn end(&self) -> Result<(), String> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err("trailing bytes".into())
        }
    }
}

/// The canonical encoding of an evidence list (what the `evidence` column
/// holds).
pub fn encode_evidence(evidence: &[EvidenceRef]) -> Vec<u8> {
    let mut e = Enc::default();
    e.u64(evidence.len() as u64);
    for r in evidence {
        e.i64(r.location.kind as i64)
            .bytes(r.location.key.as_bytes())
            .bytes(r.location.key2.as_bytes())
            .bytes(&r.digest);
    }
    e.0
}

/// Reads an encoded evidence list.
pub fn decode_evidence(data: &[u8]) -> Result<Vec<EvidenceRef>, String> {
    let mut d = Dec(data);
    let n = d.u64()?;
    let mut out = Vec::new();
    for _ in 0..n {
        let code = d.i64()?;
        let kind =
            EvidenceKind::from_code(code).ok_or_else(|| format!("unknown evidence kind {code}"))?;
        out.push(EvidenceRef {
            location: Location {
                kind,
                key: d.string()?,
                key2: d.string()?,
            },
            digest: d.hash()?,
        });
    }
    d.end()?;
    Ok(out)
}

/// An entry's hash (see the module documentation).
pub fn entry_hash(seq: u64, prev: &[u8; 32], event: &AuditEvent, evidence: &[u8]) -> [u8; 32] {
    let mut e = Enc::default();
    e.bytes(ENTRY_TAG.as_bytes())
        .u64(seq)
        .bytes(prev)
        .i64(event.id)
        .i64(event.at)
        .i64(event.kind)
        .bytes(event.alert_id.as_bytes())
        .bytes(event.agency.as_bytes())
        .i64(event.direction)
        .bytes(event.detail.as_bytes())
        .bytes(evidence);
    sha256(&e.0)
}

/// The statement a node signs about its chain: for `federation`'s
/// `agency`, the chain had `seq` entries ending in `hash` at `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    /// The federation id.
    pub federation: String,
    /// The agency whose node keeps the log.
    pub agency: String,
    /// Entries in the chain (the last one's seq).
    pub seq: u64,
    /// The last entry's hash ([`GENESIS`] if none).
    pub hash: [u8; 32],
    /// When it was signed, ms since the epoch.
    pub at: i64,
}

impl AuditHead {
    /// `bytes("tocsin/audit-head/v1") || bytes(federation) || bytes(agency)
    /// || u64(seq) || bytes(hash) || i64(at_ms)`: the signed payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc::default();
        e.bytes(HEAD_TAG.as_bytes())
            .bytes(self.federation.as_bytes())
            .bytes(self.agency.as_bytes())
            .u64(self.seq)
            .bytes(&self.hash)
            .i64(self.at);
        e.0
    }

    /// The inverse of [`AuditHead::encode`].
    pub fn decode(data: &[u8]) -> Result<Self, String> {
        let mut d = Dec(data);
        if d.bytes()? != HEAD_TAG.as_bytes() {
            return Err("not an audit head".into());
        }
        let head = Self {
            federation: d.string()?,
            agency: d.string()?,
            seq: d.u64()?,
            hash: d.hash()?,
            at: d.i64()?,
        };
        d.end()?;
        Ok(head)
    }
}

/// A signed envelope a write stores, to be committed by its event's entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Evidence<'a> {
    pub(crate) kind: EvidenceKind,
    pub(crate) key: &'a str,
    pub(crate) key2: &'a str,
    pub(crate) bytes: &'a [u8],
}

impl Evidence<'_> {
    fn reference(&self) -> EvidenceRef {
        EvidenceRef {
            location: Location {
                kind: self.kind,
                key: self.key.to_owned(),
                key2: self.key2.to_owned(),
            },
            digest: sha256(self.bytes),
        }
    }
}

/// Appends the entry recording `event` (already inserted) and `evidence`,
/// after the last entry. Runs in the caller's transaction, so the entry
/// commits or rolls back with the event.
pub(crate) fn append(
    conn: &Connection,
    event: &AuditEvent,
    evidence: &[Evidence<'_>],
) -> Result<(), Error> {
    // The last entry is the end of the rowid B-tree: one seek, no scan.
    let last: Option<(i64, Vec<u8>)> = conn
        .prepare_cached("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (seq, prev) = match last {
        None => (1, GENESIS),
        Some((seq, hash)) => (
            u64::try_from(seq).unwrap_or(0) + 1,
            hash.try_into().map_err(|_| {
                Error::Commit(format!("audit entry {seq} has a hash that is not 32 bytes"))
            })?,
        ),
    };
    let refs: Vec<EvidenceRef> = evidence.iter().map(Evidence::reference).collect();
    insert_entry(conn, seq, &prev, event, &refs)?;
    Ok(())
}

fn insert_entry(
    conn: &Connection,
    seq: u64,
    prev: &[u8; 32],
    event: &AuditEvent,
    evidence: &[EvidenceRef],
) -> Result<[u8; 32], Error> {
    let encoded = encode_evidence(evidence);
    let hash = entry_hash(seq, prev, event, &encoded);
    conn.prepare_cached(
        "INSERT INTO audit_log (seq, event_id, at, kind, alert_id, agency, direction, detail, evidence, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        i64::try_from(seq).unwrap_or(i64::MAX),
        event.id,
        event.at,
        event.kind,
        event.alert_id,
        event.agency,
        event.direction,
        event.detail,
        encoded,
        prev.as_slice(),
        hash.as_slice(),
    ])?;
    Ok(hash)
}

const EVENT_COLUMNS: &str = "id, at, kind, alert_id, agency, direction, detail";
/// The same, as `audit_log` holds them.
const ENTRY_EVENT_COLUMNS: &str = "event_id, at, kind, alert_id, agency, direction, detail";

fn audit_event(r: &Row<'_>, first: usize) -> rusqlite::Result<AuditEvent> {
    Ok(AuditEvent {
        id: r.get(first)?,
        at: r.get(first + 1)?,
        kind: r.get(first + 2)?,
        alert_id: r.get(first + 3)?,
        agency: r.get(first + 4)?,
        direction: r.get(first + 5)?,
        detail: r.get(first + 6)?,
    })
}

/// Builds the chain for the events a store held before it had an audit log
/// (migration 008). Each event gets the evidence that a write of its kind
/// stores, found by its alert; what cannot be tied to one event (outbox
/// reminders and notices, which do not name their alert in the store) is
/// committed by the last entry.
pub(crate) fn backfill(tx: &Transaction<'_>) -> Result<(), Error> {
    let events: Vec<AuditEvent> = tx
        .prepare(&format!("SELECT {EVENT_COLUMNS} FROM events ORDER BY id"))?
        .query_map([], |r| audit_event(r, 0))?
        .collect::<Result<_, _>>()?;
    if events.is_empty() {
        return Ok(());
    }
    let mut claimed: HashSet<Location> = HashSet::new();
    let mut planned: Vec<Vec<EvidenceRef>> = Vec::with_capacity(events.len());
    for e in &events {
        let mut refs = Vec::new();
        let mut claim = |kind: EvidenceKind, key: &str, key2: &str| -> Result<bool, Error> {
            let location = Location {
                kind,
                key: key.to_owned(),
                key2: key2.to_owned(),
            };
            if claimed.contains(&location) {
                return Ok(false);
            }
            let bytes: Option<Vec<u8>> = tx
                .prepare_cached(kind.select())?
                .query_row(params![key, key2], |r| r.get(0))
                .optional()?
                .flatten();
            let Some(bytes) = bytes else {
                return Ok(false);
            };
            refs.push(EvidenceRef {
                digest: sha256(&bytes),
                location: location.clone(),
            });
            claimed.insert(location);
            Ok(true)
        };
        match (e.kind, e.direction) {
            (crate::kind::SUBMITTED, _) => {
                claim(EvidenceKind::Alert, &e.alert_id, "")?;
            }
            (crate::kind::RECEIVED, _) => {
                claim(EvidenceKind::Alert, &e.alert_id, "")?;
                claim(EvidenceKind::ReceiptIssued, &e.alert_id, "")?;
            }
            (crate::kind::DELIVERED, _) => {
                claim(EvidenceKind::ReceiptReceived, &e.alert_id, &e.agency)?;
            }
            (crate::kind::ACKNOWLEDGED, direction) => {
                // A recipient's acknowledgement names the recipient; ours is
                // recorded against the originator, so any agency matches.
                let ids: Vec<String> = tx
                    .prepare_cached(
                        "SELECT id, agency FROM acknowledgements WHERE alert_id = ?1
                         ORDER BY stored_at, rowid",
                    )?
                    .query_map([&e.alert_id], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                    })?
                    .filter_map(Result::ok)
                    .filter(|(_, agency)| direction == 2 || *agency == e.agency)
                    .map(|(id, _)| id)
                    .collect();
                for id in ids {
                    if claim(EvidenceKind::Acknowledgement, &id, "")? {
                        if direction == 2 {
                            claim(EvidenceKind::Message, &id, "")?;
                        }
                        break;
                    }
                }
            }
            (8 | 9, 2) => {
                let ids: Vec<String> = tx
                    .prepare_cached(
                        "SELECT id FROM received_messages WHERE alert_id = ?1 AND agency = ?2
                         ORDER BY received_at, rowid",
                    )?
                    .query_map([&e.alert_id, &e.agency], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                for id in ids {
                    if claim(EvidenceKind::ReceivedMessage, &id, "")? {
                        break;
                    }
                }
            }
            _ => {}
        }
        planned.push(refs);
    }
    // Whatever no event claimed goes to the last entry.
    let mut leftover = Vec::new();
    for kind in EvidenceKind::ALL {
        let keys: Vec<(String, String)> = tx
            .prepare(kind.inventory())?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (key, key2) in keys {
            let location = Location { kind, key, key2 };
            if claimed.contains(&location) {
                continue;
            }
            let bytes: Option<Vec<u8>> = tx
                .prepare_cached(kind.select())?
                .query_row(params![location.key, location.key2], |r| r.get(0))
                .optional()?
                .flatten();
            if let Some(bytes) = bytes {
                leftover.push(EvidenceRef {
                    digest: sha256(&bytes),
                    location,
                });
            }
        }
    }
    if let Some(last) = planned.last_mut() {
        last.extend(leftover);
    }
    let mut prev = GENESIS;
    for (i, (event, refs)) in events.iter().zip(&planned).enumerate() {
        prev = insert_entry(tx, i as u64 + 1, &prev, event, refs)?;
    }
    Ok(())
}

/// What kind of damage a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Problem {
    /// Something recorded was altered.
    Changed,
    /// Something recorded is gone.
    Removed,
    /// Something is there that was never recorded.
    Inserted,
    /// Recorded things are out of their order.
    Reordered,
    /// A stored envelope's signature does not hold.
    Invalid,
}

impl Problem {
    /// Lower case, as printed.
    pub fn name(self) -> &'static str {
        match self {
            Self::Changed => "changed",
            Self::Removed => "removed",
            Self::Inserted => "inserted",
            Self::Reordered => "reordered",
            Self::Invalid => "invalid",
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One thing wrong, at the entry it concerns. Something inserted after
/// entry `n` is reported at `n + 1`; something no entry can place, at
/// `u64::MAX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The entry.
    pub seq: u64,
    /// What is wrong.
    pub problem: Problem,
    /// How, precisely.
    pub detail: String,
}

impl Finding {
    fn new(seq: u64, problem: Problem, detail: impl Into<String>) -> Self {
        Self {
            seq,
            problem,
            detail: detail.into(),
        }
    }
}

/// Puts findings in report order: by entry, the cause before its echoes.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by_key(|f| (f.seq, f.problem));
}

fn short(hash: &[u8; 32]) -> String {
    hex(&hash[..8])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why an entry looked wrong, decided when the next one is seen.
#[derive(Debug, Clone)]
enum Pending {
    /// Did not hash to its stored hash.
    Changed { seq: u64, event_id: i64 },
    /// Hashed correctly but did not follow its predecessor.
    Unlinked { seq: u64, before: [u8; 32] },
    /// Came with a seq past the one expected: entries were removed
    /// (`finding`), unless the next entry is a missing one (a swap).
    Gap {
        expected: u64,
        seq: u64,
        finding: Finding,
    },
    /// Hashed correctly under a neighbouring seq: renumbered after an
    /// insertion or a removal (`finding`), if the next entry is renumbered
    /// alike; or moved, if the next entry comes from before it.
    Shifted {
        seq: u64,
        event_id: i64,
        prev_shift: i64,
        finding: Finding,
    },
}

/// The last entry seen.
#[derive(Debug, Clone, Copy)]
struct Last {
    seq: u64,
    hash: [u8; 32],
    event_id: i64,
    ok: bool,
}

/// Checks a chain entry by entry, in the order given. Needs only the
/// entries, and looks one entry ahead to tell an insertion from a removal
/// and a change from a reordering. An entry that hashes correctly under a
/// neighbouring seq was renumbered: the chain had an entry inserted or
/// removed before it, and the entries after it are not reported again.
#[derive(Debug, Default)]
pub struct ChainCheck {
    last: Option<Last>,
    /// The highest seq seen.
    max_seq: u64,
    /// The last few entries' (seq, hash), to find an entry's predecessor
    /// when entries come out of order.
    recent: std::collections::VecDeque<(u64, [u8; 32])>,
    pending: Option<Pending>,
    /// How far the seqs seen are shifted from the seqs the entries were
    /// hashed with (renumbering after an insertion or removal).
    shift: i64,
    findings: Vec<Finding>,
    entries: u64,
}

impl ChainCheck {
    /// A check of an empty chain so far.
    pub fn new() -> Self {
        Self::default()
    }

    /// Entries seen.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// The entry with the highest seq seen: its seq and stored hash.
    pub fn head(&self) -> Option<(u64, [u8; 32])> {
        self.recent
            .iter()
            .find(|(seq, _)| *seq == self.max_seq)
            .copied()
            .or(self.last.map(|l| (l.seq, l.hash)))
    }

    /// Decides what the pending entry was, now that `next` is seen (`fits`:
    /// `next` hashes under the current shift). Returns whether `next` is
    /// part of what was found, and so needs no finding of its own.
    fn resolve(&mut self, next: &AuditEntry, fits: bool) -> bool {
        match self.pending.take() {
            Some(Pending::Gap { expected, seq, .. }) if next.seq < seq => {
                self.findings.push(Finding::new(
                    expected,
                    Problem::Reordered,
                    format!("entry {seq} comes before entry {}", next.seq),
                ));
                return true;
            }
            Some(Pending::Gap { finding, .. }) => self.findings.push(finding),
            Some(Pending::Shifted { finding, .. }) if fits => self.findings.push(finding),
            Some(Pending::Shifted {
                seq,
                event_id,
                prev_shift,
                ..
            }) if next.event.id < event_id => {
                self.shift = prev_shift;
                self.findings.push(Finding::new(
                    seq,
                    Problem::Reordered,
                    format!(
                        "entries {seq} and {} traded places (events {event_id} and {})",
                        next.seq, next.event.id
                    ),
                ));
                return true;
            }
            Some(Pending::Shifted { finding, .. }) => self.findings.push(finding),
            Some(Pending::Changed { seq, event_id }) if next.event.id < event_id => {
                self.findings.push(Finding::new(
                    seq,
                    Problem::Reordered,
                    format!(
                        "entry {seq} (event {event_id}) and entry {} (event {}) are out of order",
                        next.seq, next.event.id
                    ),
                ));
            }
            Some(Pending::Changed { seq, .. }) => self.findings.push(changed(seq)),
            Some(Pending::Unlinked { seq, before }) if next.prev_hash == before => {
                self.findings.push(Finding::new(
                    seq,
                    Problem::Inserted,
                    format!(
                        "entry {seq} does not follow entry {}, but entry {} does: entry {seq} was inserted",
                        seq.saturating_sub(1),
                        next.seq
                    ),
                ));
            }
            Some(Pending::Unlinked { seq, .. }) => self.findings.push(Finding::new(
                seq,
                Problem::Removed,
                format!(
                    "entry {seq} does not follow entry {}: an entry between them was removed",
                    seq.saturating_sub(1)
                ),
            )),
            None => {}
        }
        false
    }

    /// Checks the next entry.
    pub fn push(&mut self, e: &AuditEntry) {
        self.entries += 1;
        let evidence = encode_evidence(&e.evidence);
        let hashes_as = |seq: i128| {
            u64::try_from(seq)
                .is_ok_and(|s| s >= 1 && entry_hash(s, &e.prev_hash, &e.event, &evidence) == e.hash)
        };
        let fits = hashes_as(i128::from(e.seq) - i128::from(self.shift));
        let mut echo = self.resolve(e, fits);
        let expected = self.max_seq.saturating_add(1);
        let before = if e.seq <= 1 {
            Some(GENESIS)
        } else {
            self.recent
                .iter()
                .find(|(seq, _)| *seq == e.seq - 1)
                .map(|(_, h)| *h)
        };
        let (prev_event, prev_ok) = self
            .last
            .map(|l| (l.event_id, l.ok))
            .unwrap_or((i64::MIN, true));
        if echo {
        } else if e.seq < expected {
            self.findings.push(Finding::new(
                e.seq,
                Problem::Reordered,
                format!("entry {} comes after entry {}", e.seq, self.max_seq),
            ));
            echo = true;
        } else if e.seq > expected {
            let missing = if e.seq - expected == 1 {
                format!("entry {expected} is missing")
            } else {
                format!("entries {expected} to {} are missing", e.seq - 1)
            };
            self.pending = Some(Pending::Gap {
                expected,
                seq: e.seq,
                finding: Finding::new(expected, Problem::Removed, missing),
            });
            echo = true;
        }
        let recorded = i128::from(e.seq) - i128::from(self.shift);
        let current = self.shift;
        let shifted = |finding: Finding| Pending::Shifted {
            seq: e.seq,
            event_id: e.event.id,
            prev_shift: current,
            finding,
        };
        let ok = if fits {
            true
        } else if !echo && hashes_as(recorded - 1) {
            self.shift += 1;
            self.pending = Some(shifted(Finding::new(
                e.seq - 1,
                Problem::Inserted,
                format!(
                    "entry {} was inserted: entry {} and those after it were renumbered from {}",
                    e.seq - 1,
                    e.seq,
                    recorded - 1
                ),
            )));
            echo = true;
            true
        } else if !echo && hashes_as(recorded + 1) {
            self.shift -= 1;
            self.pending = Some(shifted(Finding::new(
                e.seq,
                Problem::Removed,
                format!(
                    "an entry before entry {} was removed: it and those after it were renumbered from {}",
                    e.seq,
                    recorded + 1
                ),
            )));
            echo = true;
            true
        } else {
            false
        };
        if !ok && !echo {
            if e.event.id <= prev_event {
                self.findings.push(Finding::new(
                    e.seq,
                    Problem::Reordered,
                    format!(
                        "entry {} records event {}, which comes before the event of the entry ahead of it",
                        e.seq, e.event.id
                    ),
                ));
            } else {
                self.pending = Some(Pending::Changed {
                    seq: e.seq,
                    event_id: e.event.id,
                });
            }
        } else if ok
            && !echo
            && prev_ok
            && let Some(before) = before
            && e.prev_hash != before
        {
            // (If the predecessor was itself changed, or an entry went
            // missing, a broken link is only the echo of that.)
            self.pending = Some(Pending::Unlinked { seq: e.seq, before });
        }
        self.max_seq = self.max_seq.max(e.seq);
        self.recent.push_back((e.seq, e.hash));
        if self.recent.len() > 8 {
            self.recent.pop_front();
        }
        self.last = Some(Last {
            seq: e.seq,
            hash: e.hash,
            event_id: e.event.id,
            ok,
        });
    }

    /// Records a finding from outside the chain (an unreadable entry).
    pub fn note(&mut self, finding: Finding) {
        self.findings.push(finding);
    }

    /// The findings, in report order.
    pub fn finish(mut self) -> Vec<Finding> {
        match self.pending.take() {
            Some(Pending::Gap { finding, .. }) => self.findings.push(finding),
            Some(Pending::Shifted { finding, .. }) => self.findings.push(finding),
            Some(Pending::Changed { seq, .. }) => self.findings.push(changed(seq)),
            Some(Pending::Unlinked { seq, .. }) => self.findings.push(Finding::new(
                seq,
                Problem::Inserted,
                format!(
                    "entry {seq} does not follow entry {}: it was inserted, or an entry before it removed",
                    seq.saturating_sub(1)
                ),
            )),
            None => {}
        }
        sort_findings(&mut self.findings);
        self.findings
            .dedup_by(|a, b| a.seq == b.seq && a.problem == b.problem);
        self.findings
    }
}

fn changed(seq: u64) -> Finding {
    Finding::new(
        seq,
        Problem::Changed,
        format!("entry {seq} does not hash to its recorded hash: its content was changed"),
    )
}

/// Checks the envelopes an entry recorded against the bytes found for
/// them (`None`: not found).
pub fn check_evidence(entry: &AuditEntry, found: &[Option<Vec<u8>>]) -> Vec<Finding> {
    entry
        .evidence
        .iter()
        .zip(found)
        .filter_map(|(r, bytes)| match bytes {
            None => Some(Finding::new(
                entry.seq,
                Problem::Removed,
                format!(
                    "the {} that entry {} recorded is gone",
                    r.location, entry.seq
                ),
            )),
            Some(b) if sha256(b) != r.digest => Some(Finding::new(
                entry.seq,
                Problem::Changed,
                format!(
                    "the {} differs from what entry {} recorded (sha256 {}…, now {}…)",
                    r.location,
                    entry.seq,
                    short(&r.digest),
                    short(&sha256(b))
                ),
            )),
            Some(_) => None,
        })
        .collect()
}

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
        let path = crate::Store::database_path(data_dir);
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
        let latest = crate::db::AUDIT_LOG_VERSION;
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

#[cfg(test)]
mod tests {
    use chrono::{Duration, Utc};

    use super::*;
    use crate::{AttemptOutcome, NewAck, NewAlert, NewMessage, StepTaken, Store, StoreOptions};

    fn alert(id: &str, originator: &str) -> NewAlert {
        let now = Utc::now();
        NewAlert {
            id: id.into(),
            originator: originator.into(),
            created_at: now,
            stored_at: now,
            precedence: 3,
            category: "terrorism".into(),
            summary: "X".into(),
            digest: vec![7; 32],
            envelope: format!("envelope of {id}").into_bytes(),
            due_at: now + Duration::hours(12),
            first_step_at: Some(now),
            keys: vec![],
            closes: vec![],
        }
    }

    fn ack(id: &str, alert_id: &str, agency: &str) -> NewAck {
        NewAck {
            id: id.into(),
            alert_id: alert_id.into(),
            agency: agency.into(),
            operator: "analyst".into(),
            disposition: 1,
            note: String::new(),
            acknowledged_at: Utc::now(),
            stored_at: Utc::now(),
            envelope: format!("envelope of {id}").into_bytes(),
        }
    }

    /// A store that went through every kind of write that stores an
    /// envelope, closed. Events: 1 submitted A1, 2 delivered A1 to FR,
    /// 3 FR acknowledged A1, 4 received B1, 5 we acknowledged B1,
    /// 6 reminded BE about A1 (outbox message R1), 7 reminder R2 received
    /// for B1, 8 notice N1 received.
    async fn populated(dir: &Path) {
        let store = Store::open(dir, StoreOptions::default()).unwrap();
        let now = Utc::now();
        store
            .insert_outbound(
                alert("A1", "TR-MIT"),
                vec!["FR-DGSI".into(), "BE-VSSE".into()],
            )
            .await
            .unwrap();
        store
            .record_attempts(
                vec![(
                    "A1".into(),
                    "FR-DGSI".into(),
                    AttemptOutcome::Delivered {
                        delivered_at: now,
                        receipt: b"receipt of A1 by FR".to_vec(),
                    },
                )],
                now,
            )
            .await
            .unwrap();
        store
            .record_received_ack(ack("K1", "A1", "FR-DGSI"), "FR-DGSI acknowledged".into())
            .await
            .unwrap();
        store
            .insert_inbound(alert("B1", "FR-DGSI"), b"our receipt of B1".to_vec())
            .await
            .unwrap();
        store
            .insert_own_ack(
                ack("K2", "B1", "TR-MIT"),
                "FR-DGSI".into(),
                "we acknowledged".into(),
            )
            .await
            .unwrap();
        let taken = store
            .take_steps(vec![StepTaken {
                alert_id: "A1".into(),
                recipient: "BE-VSSE".into(),
                ladder: 1,
                next_step_at: None,
                messages: vec![NewMessage {
                    id: "R1".into(),
                    peer: "BE-VSSE".into(),
                    kind: crate::MESSAGE_REMINDER,
                    envelope: b"reminder R1".to_vec(),
                }],
                event_kind: crate::ladder_kind::REMINDED,
                detail: "reminded BE-VSSE".into(),
                at: now,
            }])
            .await
            .unwrap();
        assert_eq!(taken, 1);
        store
            .record_reminder(
                "R2".into(),
                "B1".into(),
                "FR-DGSI".into(),
                b"reminder R2".to_vec(),
                now,
                false,
                "reminder from FR-DGSI".into(),
            )
            .await
            .unwrap();
        store
            .record_notice(
                "N1".into(),
                "C9".into(),
                "BE-VSSE".into(),
                b"notice N1".to_vec(),
                now,
                "escalation".into(),
            )
            .await
            .unwrap();
        store.close().await;
    }

    fn check(dir: &Path) -> (StoreCheck, Vec<AuditEntry>) {
        let mut entries = Vec::new();
        let report = AuditReader::open(dir)
            .unwrap()
            .check(|e, _| entries.push(e.clone()), |_, _| {})
            .unwrap();
        (report, entries)
    }

    /// Opens the file as someone with write access would, without the
    /// append-only triggers.
    fn tamper(dir: &Path, sql: &str) {
        let conn = Connection::open(crate::Store::database_path(dir)).unwrap();
        conn.execute_batch(
            "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;
             DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete;",
        )
        .unwrap();
        conn.execute_batch(sql).unwrap();
    }

    /// The first finding after `sql` is applied to a fresh populated store.
    async fn first_after(sql: &str) -> Finding {
        let dir = tempfile::tempdir().unwrap();
        populated(dir.path()).await;
        tamper(dir.path(), sql);
        let (report, _) = check(dir.path());
        report
            .findings
            .first()
            .cloned()
            .unwrap_or_else(|| panic!("`{sql}` went unnoticed"))
    }

    fn key(l: &Location) -> (EvidenceKind, &str, &str) {
        (l.kind, l.key.as_str(), l.key2.as_str())
    }

    #[tokio::test]
    async fn every_event_gets_a_chained_entry_with_its_envelopes() {
        let dir = tempfile::tempdir().unwrap();
        populated(dir.path()).await;
        let (report, entries) = check(dir.path());
        assert!(report.findings.is_empty(), "{:?}", report.findings);
        assert_eq!(
            (report.entries, report.events, report.envelopes),
            (8, 8, 10)
        );
        assert_eq!(report.head.map(|h| h.0), Some(8));

        let mut prev = GENESIS;
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(e.seq, i as u64 + 1);
            assert_eq!(e.event.id, i as i64 + 1);
            assert_eq!(e.prev_hash, prev);
            assert_eq!(e.computed_hash(), e.hash);
            prev = e.hash;
        }
        let evidence: Vec<Vec<(EvidenceKind, &str, &str)>> = entries
            .iter()
            .map(|e| e.evidence.iter().map(|r| key(&r.location)).collect())
            .collect();
        use EvidenceKind::*;
        assert_eq!(
            evidence,
            vec![
                vec![(Alert, "A1", "")],
                vec![(ReceiptReceived, "A1", "FR-DGSI")],
                vec![(Acknowledgement, "K1", "")],
                vec![(Alert, "B1", ""), (ReceiptIssued, "B1", "")],
                vec![(Acknowledgement, "K2", ""), (Message, "K2", "")],
                vec![(Message, "R1", "")],
                vec![(ReceivedMessage, "R2", "")],
                vec![(ReceivedMessage, "N1", "")],
            ]
        );
        assert_eq!(entries[0].evidence[0].digest, sha256(b"envelope of A1"));

        // The store refuses to rewrite its own record.
        let conn = Connection::open(crate::Store::database_path(dir.path())).unwrap();
        for sql in [
            "UPDATE audit_log SET detail = 'x' WHERE seq = 1",
            "DELETE FROM audit_log WHERE seq = 8",
            "UPDATE events SET detail = 'x' WHERE id = 1",
            "DELETE FROM events WHERE id = 8",
        ] {
            let err = conn.execute_batch(sql).unwrap_err().to_string();
            assert!(err.contains("append-only"), "{sql}: {err}");
        }
    }

    #[tokio::test]
    async fn edits_to_events_are_found_at_their_entry() {
        let f = first_after("UPDATE events SET detail = 'nothing happened' WHERE id = 3").await;
        assert_eq!((f.seq, f.problem), (3, Problem::Changed), "{f:?}");
        assert!(
            f.detail
                .contains(r#"detail: was "FR-DGSI acknowledged", now "nothing happened""#),
            "{f:?}"
        );

        let f = first_after("DELETE FROM events WHERE id = 5").await;
        assert_eq!((f.seq, f.problem), (5, Problem::Removed), "{f:?}");

        // Swap events 2 and 4 (their contents; the ids stay in order).
        let f = first_after(
            "UPDATE events SET id = -2 WHERE id = 2; UPDATE events SET id = 2 WHERE id = 4;
             UPDATE events SET id = 4 WHERE id = -2;",
        )
        .await;
        assert_eq!((f.seq, f.problem), (2, Problem::Reordered), "{f:?}");
        assert!(f.detail.contains("entry 4 recorded"), "{f:?}");

        let f = first_after(
            "INSERT INTO events (at, kind, alert_id, agency, direction, detail)
             VALUES (0, 5, 'A1', 'BE-VSSE', 1, 'BE-VSSE acknowledged')",
        )
        .await;
        assert_eq!((f.seq, f.problem), (9, Problem::Inserted), "{f:?}");
        assert!(f.detail.contains("event 9"), "{f:?}");
    }

    #[tokio::test]
    async fn edits_to_the_log_itself_are_found_at_their_entry() {
        let f = first_after("UPDATE audit_log SET at = at + 1 WHERE seq = 4").await;
        assert_eq!((f.seq, f.problem), (4, Problem::Changed), "{f:?}");

        let f = first_after("DELETE FROM audit_log WHERE seq = 6").await;
        assert_eq!((f.seq, f.problem), (6, Problem::Removed), "{f:?}");

        // Entries 2 and 3 trade places.
        let f = first_after(
            "UPDATE audit_log SET seq = -2 WHERE seq = 2; UPDATE audit_log SET seq = 2 WHERE seq = 3;
             UPDATE audit_log SET seq = 3 WHERE seq = -2;",
        )
        .await;
        assert_eq!((f.seq, f.problem), (2, Problem::Reordered), "{f:?}");

        // Entry 7 removed and the later entries renumbered to close the gap.
        let f = first_after(
            "DELETE FROM audit_log WHERE seq = 7; UPDATE audit_log SET seq = 7 WHERE seq = 8;",
        )
        .await;
        assert_eq!((f.seq, f.problem), (7, Problem::Removed), "{f:?}");

        // A forged entry at the end that does not hash.
        let f = first_after(
            "INSERT INTO audit_log SELECT 9, event_id, at, kind, alert_id, agency, direction, detail,
             evidence, hash, prev_hash FROM audit_log WHERE seq = 8",
        )
        .await;
        assert_eq!(f.seq, 9, "{f:?}");
    }

    #[tokio::test]
    async fn a_forged_entry_inserted_with_its_event_and_a_renumbered_tail_is_found() {
        let dir = tempfile::tempdir().unwrap();
        populated(dir.path()).await;
        let (_, entries) = check(dir.path());
        // A careful forger: a new event, an entry that hashes and links after
        // entry 3, and entries 4..8 moved up by one (their hashes kept).
        let forged_event = AuditEvent {
            id: 100,
            at: entries[2].event.at,
            kind: crate::kind::ACKNOWLEDGED,
            alert_id: "A1".into(),
            agency: "BE-VSSE".into(),
            direction: 1,
            detail: "BE-VSSE acknowledged".into(),
        };
        let hash = entry_hash(4, &entries[2].hash, &forged_event, &encode_evidence(&[]));
        tamper(
            dir.path(),
            &format!(
                "UPDATE audit_log SET seq = -seq WHERE seq >= 4;
                 UPDATE audit_log SET seq = 1 - seq WHERE seq < 0;
                 INSERT INTO events (id, at, kind, alert_id, agency, direction, detail)
                 VALUES (100, {at}, 5, 'A1', 'BE-VSSE', 1, 'BE-VSSE acknowledged');
                 INSERT INTO audit_log VALUES (4, 100, {at}, 5, 'A1', 'BE-VSSE', 1, 'BE-VSSE acknowledged',
                    X'{evidence}', X'{prev}', X'{hash}');",
                at = forged_event.at,
                evidence = hex(&encode_evidence(&[])),
                prev = hex(&entries[2].hash),
                hash = hex(&hash),
            ),
        );
        let (report, _) = check(dir.path());
        let f = &report.findings[0];
        assert_eq!((f.seq, f.problem), (4, Problem::Inserted), "{report:?}");
        // The renumbered tail is one finding, not five.
        assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    }

    #[tokio::test]
    async fn envelopes_are_held_to_what_their_entry_recorded() {
        let f = first_after("UPDATE acknowledgements SET envelope = X'00' WHERE id = 'K1'").await;
        assert_eq!((f.seq, f.problem), (3, Problem::Changed), "{f:?}");
        assert!(f.detail.contains("acknowledgement K1"), "{f:?}");

        let f = first_after("UPDATE deliveries SET receipt = NULL WHERE alert_id = 'A1'").await;
        assert_eq!((f.seq, f.problem), (2, Problem::Removed), "{f:?}");
        assert!(
            f.detail.contains("receipt-received A1 from FR-DGSI"),
            "{f:?}"
        );

        // Two alerts trade envelopes: both still digest to something
        // recorded, but not at their own place.
        let f = first_after(
            "UPDATE alerts SET envelope = CASE id WHEN 'A1' THEN (SELECT envelope FROM alerts WHERE id = 'B1')
                                                  ELSE (SELECT envelope FROM alerts WHERE id = 'A1') END",
        )
        .await;
        assert_eq!((f.seq, f.problem), (1, Problem::Changed), "{f:?}");

        let f = first_after(
            "INSERT INTO received_messages (id, kind, alert_id, agency, received_at, envelope)
             VALUES ('R3', 2, 'B1', 'FR-DGSI', 0, X'01')",
        )
        .await;
        assert_eq!((f.seq, f.problem), (u64::MAX, Problem::Inserted), "{f:?}");
        assert!(f.detail.contains("received-message R3"), "{f:?}");
    }

    #[tokio::test]
    async fn a_store_from_before_the_audit_log_gets_the_same_chain_on_migration() {
        let dir = tempfile::tempdir().unwrap();
        populated(dir.path()).await;
        let (_, live) = check(dir.path());
        // Back to schema 7: no audit log, no triggers.
        tamper(dir.path(), "DROP TABLE audit_log; PRAGMA user_version = 7;");
        assert!(AuditReader::open(dir.path()).is_err());

        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        store.close().await;
        let (report, backfilled) = check(dir.path());
        assert!(report.findings.is_empty(), "{:?}", report.findings);
        assert_eq!(backfilled.len(), live.len());
        // Every event is recorded as it was when written, with its
        // envelopes, except the outbox reminder, whose alert the store
        // cannot tell: the last entry commits to it.
        for (b, l) in backfilled.iter().zip(&live) {
            assert_eq!(b.event, l.event);
            match b.seq {
                6 => assert!(b.evidence.is_empty(), "{b:?}"),
                8 => {
                    assert_eq!(b.evidence[0], l.evidence[0]);
                    assert_eq!(
                        key(&b.evidence[1].location),
                        (EvidenceKind::Message, "R1", "")
                    );
                }
                _ => assert_eq!(b.evidence, l.evidence, "entry {}", b.seq),
            }
        }
        assert_eq!(backfilled[..5], live[..5]);

        // New events chain on after the backfilled ones.
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        store
            .insert_outbound(alert("A2", "TR-MIT"), vec!["FR-DGSI".into()])
            .await
            .unwrap();
        store.close().await;
        let (report, after) = check(dir.path());
        assert!(report.findings.is_empty(), "{:?}", report.findings);
        assert_eq!(after[8].prev_hash, backfilled[7].hash);
    }

    #[test]
    fn the_encoding_is_length_prefixed_and_round_trips() {
        let refs = vec![EvidenceRef {
            location: Location {
                kind: EvidenceKind::ReceiptReceived,
                key: "A1".into(),
                key2: "FR".into(),
            },
            digest: [9; 32],
        }];
        let bytes = encode_evidence(&refs);
        assert_eq!(decode_evidence(&bytes).unwrap(), refs);
        assert!(decode_evidence(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode_evidence(&[bytes.as_slice(), &[0]].concat()).is_err());
        // Moving a byte between fields changes the hash.
        let e = |alert_id: &str, agency: &str| AuditEvent {
            id: 1,
            at: 0,
            kind: 1,
            alert_id: alert_id.into(),
            agency: agency.into(),
            direction: 1,
            detail: String::new(),
        };
        assert_ne!(
            entry_hash(1, &GENESIS, &e("ab", "c"), &[]),
            entry_hash(1, &GENESIS, &e("a", "bc"), &[])
        );
        let head = AuditHead {
            federation: "f".into(),
            agency: "TR-MIT".into(),
            seq: 3,
            hash: [1; 32],
            at: 5,
        };
        assert_eq!(AuditHead::decode(&head.encode()).unwrap(), head);
    }
}
