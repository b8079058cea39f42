//! Checking and exporting a node's tamper-evident record (`tocsin audit`).
//!
//! A crate of its own because it needs nothing of a running node: the
//! `tocsin` binary uses it on a store or a bundle, and so will the
//! federated post-mortem, which reads several agencies' bundles.
//!
//! The store keeps the hash chain and checks it row by row
//! ([`tocsin_store::audit`]), in a SQLite or a PostgreSQL store alike
//! ([`StoreLocation`]); this module adds what needs the federation's
//! trust: every stored envelope's signature, checked against the federation
//! CA, and the export bundle, whose head is signed with the agency's signing
//! key so that another party can check it offline with the CA certificate
//! alone.
//!
//! A bundle is JSON Lines: a `header` line, one `entry` line per audit entry
//! (the entry's fields, its evidence with each envelope in base64), and a
//! final `head` line carrying the signed [`AuditHead`] (payload type
//! [`AUDIT_HEAD_PAYLOAD_TYPE`]).

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufWriter, Write};
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use prost::Message;
use serde::{Deserialize, Serialize};
use tocsin_core::{AgencyId, FederationId};
use tocsin_proto::{
    ACK_PAYLOAD_TYPE, ALERT_PAYLOAD_TYPE, NOTICE_PAYLOAD_TYPE, RECEIPT_PAYLOAD_TYPE,
    REMINDER_PAYLOAD_TYPE, pb,
};
use tocsin_store::audit::{
    AuditEntry, AuditEvent, AuditReader, ChainCheck, EvidenceKind, EvidenceRef, Location,
    check_evidence, sort_findings,
};
use tocsin_trust::signing::Verified;
use tocsin_trust::{Signer, Verifier, ack, notice, receipt, reminder};

pub use tocsin_store::audit::{AuditHead, Finding, Problem, StoreLocation};

pub mod federated;

/// The payload type of an envelope carrying a signed [`AuditHead`].
pub const AUDIT_HEAD_PAYLOAD_TYPE: &str = "application/vnd.tocsin.audit-head.v1";

/// The `format` a bundle's header names.
pub const BUNDLE_FORMAT: &str = "tocsin-audit-bundle";

const BUNDLE_VERSION: u32 = 1;

/// Why a check or an export could not run at all (as opposed to finding
/// problems, which a [`Report`] lists).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The store could not be read.
    #[error("store: {0}")]
    Store(#[from] tocsin_store::Error),
    /// The CA certificate or signing key is unusable.
    #[error(transparent)]
    Trust(#[from] tocsin_trust::Error),
    /// A file could not be read or written.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        cause: std::io::Error,
    },
    /// The file is not an audit bundle.
    #[error("{path}: not a Tocsin audit bundle: {what}")]
    NotABundle {
        /// The file.
        path: String,
        /// What is wrong.
        what: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AuditError + '_ {
    move |cause| AuditError::Io {
        path: path.display().to_string(),
        cause,
    }
}

/// The public material a check trusts: the federation CA certificate, and
/// what is known of the federation and the node's agency. What is not
/// given is learnt from the first envelope that verifies against the CA
/// (a certificate the CA issued names its federation); after that, every
/// envelope must agree.
#[derive(Debug, Clone)]
pub struct Trust {
    ca_der: Vec<u8>,
    federation: Option<FederationId>,
    agency: Option<AgencyId>,
}

impl Trust {
    /// Trusts the CA certificate (PEM) at `ca`.
    pub fn load(ca: &Path) -> Result<Self, AuditError> {
        let certs = tocsin_trust::files::read_certs(ca)?;
        Ok(Self {
            ca_der: certs[0].as_ref().to_vec(),
            federation: None,
            agency: None,
        })
    }

    /// The federation the envelopes must belong to.
    pub fn federation(mut self, federation: FederationId) -> Self {
        self.federation = Some(federation);
        self
    }

    /// The agency whose node kept the store.
    pub fn agency(mut self, agency: AgencyId) -> Self {
        self.agency = Some(agency);
        self
    }
}

/// What a check found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The store or bundle checked.
    pub source: String,
    /// The agency whose node kept the log, if known.
    pub agency: Option<String>,
    /// Audit entries checked.
    pub entries: u64,
    /// Rows of the events table (stores only).
    pub events: Option<u64>,
    /// Envelopes whose signature was checked.
    pub signatures: u64,
    /// The last entry: seq and hash.
    pub head: Option<(u64, [u8; 32])>,
    /// The signed head (bundles, and exports).
    pub signed_head: Option<AuditHead>,
    /// Everything wrong, first first.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Nothing wrong.
    pub fn ok(&self) -> bool {
        self.findings.is_empty()
    }

    /// The first thing wrong, in chain order.
    pub fn first(&self) -> Option<&Finding> {
        self.findings.first()
    }
}

/// Checks envelopes, learning the federation and the node's agency.
struct Signatures {
    trust: Trust,
    verifier: Option<Verifier>,
    checked: u64,
}

impl Signatures {
    fn new(trust: Trust) -> Self {
        Self {
            trust,
            verifier: None,
            checked: 0,
        }
    }

    fn verify(&mut self, env: &pb::Envelope, payload_type: &str) -> Result<Verified, String> {
        self.checked += 1;
        if let Some(v) = &self.verifier {
            return v.verify(env, payload_type).map_err(|e| e.to_string());
        }
        let federation = match &self.trust.federation {
            Some(f) => f.clone(),
            None => {
                let cert = env
                    .signature
                    .as_ref()
                    .map(|s| s.certificate.as_slice())
                    .unwrap_or_default();
                tocsin_trust::identity::identity_of(cert)
                    .map_err(|e| format!("signing certificate: {e}"))?
                    .0
            }
        };
        let v = Verifier::new(&self.trust.ca_der, &federation).map_err(|e| e.to_string())?;
        let result = v.verify(env, payload_type).map_err(|e| e.to_string());
        // Only a certificate the CA issued may teach us the federation.
        if result.is_ok() || self.trust.federation.is_some() {
            self.trust.federation = Some(federation);
            self.verifier = Some(v);
        }
        result
    }

    /// An envelope this node signed: its signer must be the node's agency.
    fn own(&mut self, signer: &AgencyId) -> Result<(), String> {
        match &self.trust.agency {
            None => {
                self.trust.agency = Some(signer.clone());
                Ok(())
            }
            Some(a) if a == signer => Ok(()),
            Some(a) => Err(format!("signed by {signer}, not by this node's agency {a}")),
        }
    }

    /// Checks one stored envelope: signature, and that it is what its
    /// location says (the alert with this id, a receipt for this alert...).
    fn check(&mut self, entry: &AuditEntry, r: &EvidenceRef, bytes: &[u8]) -> Option<Finding> {
        let l = &r.location;
        let result = self.check_location(l, bytes);
        result.err().map(|why| Finding {
            seq: entry.seq,
            problem: Problem::Invalid,
            detail: format!("the {l} that entry {} recorded: {why}", entry.seq),
        })
    }

    fn check_location(&mut self, l: &Location, bytes: &[u8]) -> Result<(), String> {
        let env = pb::Envelope::decode(bytes).map_err(|e| format!("not an envelope ({e})"))?;
        let decode_err = |what: &str| format!("payload is not {what}");
        match l.kind {
            EvidenceKind::Alert => {
                let v = self.verify(&env, ALERT_PAYLOAD_TYPE)?;
                let a = pb::Alert::decode(env.payload.as_slice())
                    .map_err(|_| decode_err("an alert"))?;
                if a.id != l.key {
                    return Err(format!("holds alert {}", a.id));
                }
                if a.originator != v.signer.as_str() {
                    return Err(format!(
                        "signed by {}, not by its originator {}",
                        v.signer, a.originator
                    ));
                }
            }
            EvidenceKind::ReceiptIssued => {
                // Issued by this node: for this alert, by this agency.
                let v = self.verify(&env, RECEIPT_PAYLOAD_TYPE)?;
                self.own(&v.signer)?;
                let signer = v.signer.to_string();
                let expected = receipt::Expected {
                    alert_id: &l.key,
                    recipient: &signer,
                    alert_digest: None,
                };
                receipt::check(Ok(v), &env, expected)
                    .map_err(|e| format!("is a receipt that does not check out: {e}"))?;
            }
            EvidenceKind::ReceiptReceived => {
                // Received from the recipient the location names.
                let v = self.verify(&env, RECEIPT_PAYLOAD_TYPE)?;
                let expected = receipt::Expected {
                    alert_id: &l.key,
                    recipient: &l.key2,
                    alert_digest: None,
                };
                receipt::check(Ok(v), &env, expected)
                    .map_err(|e| format!("is a receipt that does not check out: {e}"))?;
            }
            EvidenceKind::Acknowledgement => {
                let v = self.verify(&env, ACK_PAYLOAD_TYPE)?;
                let expected = ack::Expected {
                    id: Some(&l.key),
                    ..Default::default()
                };
                ack::check(Ok(v), &env, expected).map_err(|e| match e {
                    ack::AckError::Decode(_) => decode_err("an acknowledgement"),
                    ack::AckError::Recipient {
                        id,
                        recipient,
                        signer,
                    } => format!("is acknowledgement {id} by {recipient}, signed by {signer}"),
                    other => format!("is an acknowledgement that does not check out: {other}"),
                })?;
            }
            EvidenceKind::Message => {
                // Signed by this node: an acknowledgement of ours, or a
                // reminder or notice of our ladder.
                let kind = env.payload_type.clone();
                if ![ACK_PAYLOAD_TYPE, REMINDER_PAYLOAD_TYPE, NOTICE_PAYLOAD_TYPE]
                    .contains(&kind.as_str())
                {
                    return Err(format!("unexpected payload type {kind:?}"));
                }
                let v = self.verify(&env, &kind)?;
                self.own(&v.signer)?;
                self.check_message(v, &env, &l.key)?;
            }
            EvidenceKind::ReceivedMessage => {
                let kind = env.payload_type.clone();
                if ![REMINDER_PAYLOAD_TYPE, NOTICE_PAYLOAD_TYPE].contains(&kind.as_str()) {
                    return Err(format!("unexpected payload type {kind:?}"));
                }
                let v = self.verify(&env, &kind)?;
                self.check_message(v, &env, &l.key)?;
            }
        }
        Ok(())
    }

    /// Checks a message whose signature holds against the id it is stored
    /// under, with the one check of its kind.
    fn check_message(&self, v: Verified, env: &pb::Envelope, id: &str) -> Result<(), String> {
        let id = Some(id);
        let why = match env.payload_type.as_str() {
            ACK_PAYLOAD_TYPE => {
                let expected = ack::Expected {
                    id,
                    ..Default::default()
                };
                ack::check(Ok(v), env, expected)
                    .err()
                    .map(|e| e.to_string())
            }
            REMINDER_PAYLOAD_TYPE => {
                let expected = reminder::Expected {
                    id,
                    ..Default::default()
                };
                reminder::check(Ok(v), env, expected)
                    .err()
                    .map(|e| e.to_string())
            }
            _ => {
                let expected = notice::Expected {
                    id,
                    ..Default::default()
                };
                notice::check(Ok(v), env, expected)
                    .err()
                    .map(|e| e.to_string())
            }
        };
        match why {
            Some(why) => Err(format!("does not check out: {why}")),
            None => Ok(()),
        }
    }
}

/// Checks the store in `data_dir`: the chain, the events against it, every
/// stored envelope against the entry that recorded it, and every
/// envelope's signature. Reads one snapshot; the node may be running.
/// `progress` is told (entries done, entries in all) now and then.
pub fn verify_store(
    data_dir: &Path,
    trust: Trust,
    progress: impl FnMut(u64, u64),
) -> Result<Report, AuditError> {
    verify_store_at(&StoreLocation::Dir(data_dir.to_owned()), trust, progress)
}

/// [`verify_store`] on the store at `at`: a SQLite data directory, or a
/// PostgreSQL database (read in one REPEATABLE READ snapshot). Blocking:
/// call it off the async runtime's workers.
pub fn verify_store_at(
    at: &StoreLocation,
    trust: Trust,
    progress: impl FnMut(u64, u64),
) -> Result<Report, AuditError> {
    walk_store(at, trust, None, |_, _| Ok(()), progress)
}

/// Like [`verify_store`], and also checks that the store still holds the
/// chain an earlier export pinned: every entry up to that bundle's signed
/// head must be unchanged. The bundle is checked first, offline.
pub fn verify_store_against(
    data_dir: &Path,
    trust: Trust,
    bundle: &Path,
    progress: impl FnMut(u64, u64),
) -> Result<Report, AuditError> {
    verify_store_against_at(
        &StoreLocation::Dir(data_dir.to_owned()),
        trust,
        bundle,
        progress,
    )
}

/// [`verify_store_against`] on the store at `at` (see [`verify_store_at`]).
pub fn verify_store_against_at(
    at: &StoreLocation,
    trust: Trust,
    bundle: &Path,
    mut progress: impl FnMut(u64, u64),
) -> Result<Report, AuditError> {
    let earlier = read_bundle(bundle, trust.clone(), &mut progress)?;
    let mut report = earlier.report;
    if !report.ok() {
        for f in &mut report.findings {
            f.detail = format!("in {}: {}", bundle.display(), f.detail);
        }
        return Ok(report);
    }
    let Some(head) = report.signed_head.clone() else {
        report.findings.push(no_head());
        return Ok(report);
    };
    let trust = match &trust.agency {
        Some(a) if a.as_str() != head.agency => {
            report.findings = vec![Finding {
                seq: u64::MAX,
                problem: Problem::Invalid,
                detail: format!("{} is {}'s log, not {a}'s", bundle.display(), head.agency),
            }];
            return Ok(report);
        }
        Some(_) => trust,
        None => match AgencyId::new(head.agency.clone()) {
            Ok(a) => trust.agency(a),
            Err(_) => trust,
        },
    };
    let pinned = Pinned {
        source: bundle.display().to_string(),
        hashes: earlier.hashes,
        head,
    };
    walk_store(at, trust, Some(pinned), |_, _| Ok(()), progress)
}

fn no_head() -> Finding {
    Finding {
        seq: u64::MAX,
        problem: Problem::Removed,
        detail: "the bundle has no signed head".into(),
    }
}

/// The entries an earlier bundle's signed head pins.
struct Pinned {
    source: String,
    hashes: Vec<[u8; 32]>,
    head: AuditHead,
}

fn walk_store(
    at: &StoreLocation,
    trust: Trust,
    pinned: Option<Pinned>,
    mut visit: impl FnMut(&AuditEntry, &[Option<Vec<u8>>]) -> std::io::Result<()>,
    progress: impl FnMut(u64, u64),
) -> Result<Report, AuditError> {
    let mut reader = AuditReader::open_at(at)?;
    let mut sigs = Signatures::new(trust);
    let mut extra = Vec::new();
    let mut write_error = None;
    let mut first_rewritten: Option<u64> = None;
    let check = reader.check(
        |entry, found| {
            for (r, bytes) in entry.evidence.iter().zip(found) {
                if let Some(b) = bytes
                    && let Some(f) = sigs.check(entry, r, b)
                {
                    extra.push(f);
                }
            }
            if let Some(p) = &pinned
                && first_rewritten.is_none()
                && let Some(h) = usize::try_from(entry.seq)
                    .ok()
                    .and_then(|s| s.checked_sub(1))
                    .and_then(|i| p.hashes.get(i))
                && *h != entry.hash
            {
                first_rewritten = Some(entry.seq);
            }
            if write_error.is_none()
                && let Err(e) = visit(entry, found)
            {
                write_error = Some(e);
            }
        },
        progress,
    )?;
    if let Some(e) = write_error {
        return Err(AuditError::Io {
            path: "bundle".into(),
            cause: e,
        });
    }
    let mut findings = check.findings;
    findings.extend(extra);
    if let Some(p) = &pinned {
        if let Some(seq) = first_rewritten {
            findings.push(Finding {
                seq,
                problem: Problem::Changed,
                detail: format!(
                    "entry {seq} is not the entry {} holds under its signed head: the log was rewritten from here",
                    p.source
                ),
            });
        } else if check.entries < p.head.seq {
            findings.push(Finding {
                seq: check.entries + 1,
                problem: Problem::Removed,
                detail: format!(
                    "the store has {} entries, but {} signed a head at entry {}",
                    check.entries, p.source, p.head.seq
                ),
            });
        }
    }
    sort_findings(&mut findings);
    let report = Report {
        source: at.describe(),
        agency: sigs.trust.agency.as_ref().map(ToString::to_string),
        entries: check.entries,
        events: Some(check.events),
        signatures: sigs.checked,
        head: check.head,
        signed_head: None,
        findings,
    };
    Ok(report)
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Line {
    Header(Header),
    Entry(EntryLine),
    Head(HeadLine),
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    federation: String,
    agency: String,
    exported_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize)]
struct EntryLine {
    seq: u64,
    event_id: i64,
    at: i64,
    kind: i64,
    alert_id: String,
    agency: String,
    direction: i64,
    detail: String,
    evidence: Vec<EvidenceLine>,
    prev_hash: String,
    hash: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct EvidenceLine {
    kind: String,
    key: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    key2: String,
    sha256: String,
    /// The stored envelope, base64.
    envelope: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct HeadLine {
    /// For readers: what the signed head says.
    seq: u64,
    hash: String,
    /// The signed head: an encoded `tocsin.v1.Envelope`, base64.
    envelope: String,
}

fn entry_line(entry: &AuditEntry, found: &[Option<Vec<u8>>]) -> EntryLine {
    let e = &entry.event;
    EntryLine {
        seq: entry.seq,
        event_id: e.id,
        at: e.at,
        kind: e.kind,
        alert_id: e.alert_id.clone(),
        agency: e.agency.clone(),
        direction: e.direction,
        detail: e.detail.clone(),
        evidence: entry
            .evidence
            .iter()
            .zip(found)
            .map(|(r, bytes)| EvidenceLine {
                kind: r.location.kind.name().to_owned(),
                key: r.location.key.clone(),
                key2: r.location.key2.clone(),
                sha256: hex::encode(r.digest),
                envelope: BASE64.encode(bytes.as_deref().unwrap_or_default()),
            })
            .collect(),
        prev_hash: hex::encode(entry.prev_hash),
        hash: hex::encode(entry.hash),
    }
}

fn hash32(s: &str) -> Result<[u8; 32], String> {
    hex::decode(s)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("{s:?} is not a 32-byte hex hash"))
}

/// The entry and its envelopes, from a bundle line.
/// The envelopes found for an entry's evidence, in its order.
type Found = Vec<Option<Vec<u8>>>;

fn from_line(line: EntryLine) -> Result<(AuditEntry, Found), String> {
    let mut evidence = Vec::with_capacity(line.evidence.len());
    let mut found = Vec::with_capacity(line.evidence.len());
    for ev in line.evidence {
        let kind = EvidenceKind::from_name(&ev.kind)
            .ok_or_else(|| format!("unknown evidence kind {:?}", ev.kind))?;
        evidence.push(EvidenceRef {
            location: Location {
                kind,
                key: ev.key,
                key2: ev.key2,
            },
            digest: hash32(&ev.sha256)?,
        });
        found.push(Some(
            BASE64
                .decode(&ev.envelope)
                .map_err(|e| format!("an envelope is not base64 ({e})"))?,
        ));
    }
    Ok((
        AuditEntry {
            seq: line.seq,
            event: AuditEvent {
                id: line.event_id,
                at: line.at,
                kind: line.kind,
                alert_id: line.alert_id,
                agency: line.agency,
                direction: line.direction,
                detail: line.detail,
            },
            evidence,
            prev_hash: hash32(&line.prev_hash)?,
            hash: hash32(&line.hash)?,
        },
        found,
    ))
}

fn write_line(out: &mut impl Write, line: &Line) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, line)?;
    out.write_all(b"\n")
}

/// Writes the store's audit log to `out` as a bundle: every entry with its
/// envelopes, and the head signed by `signer` (the node's agency). The store
/// is checked first, signatures included; if anything is wrong nothing is
/// written and the report says what. The file appears whole or not at all.
pub fn export(
    data_dir: &Path,
    trust: Trust,
    federation: &FederationId,
    signer: &Signer,
    out: &Path,
    now: DateTime<Utc>,
    progress: impl FnMut(u64, u64),
) -> Result<Report, AuditError> {
    let at = StoreLocation::Dir(data_dir.to_owned());
    export_at(&at, trust, federation, signer, out, now, progress)
}

/// [`export`] from the store at `at` (see [`verify_store_at`]).
pub fn export_at(
    at: &StoreLocation,
    trust: Trust,
    federation: &FederationId,
    signer: &Signer,
    out: &Path,
    now: DateTime<Utc>,
    progress: impl FnMut(u64, u64),
) -> Result<Report, AuditError> {
    let trust = trust
        .federation(federation.clone())
        .agency(signer.agency().clone());
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(io(dir))?;
    let mut w = BufWriter::new(tmp.as_file());
    let header = Header {
        format: BUNDLE_FORMAT.into(),
        version: BUNDLE_VERSION,
        federation: federation.to_string(),
        agency: signer.agency().to_string(),
        exported_at: now,
    };
    write_line(&mut w, &Line::Header(header)).map_err(io(out))?;
    let mut report = walk_store(
        at,
        trust,
        None,
        |entry, found| write_line(&mut w, &Line::Entry(entry_line(entry, found))),
        progress,
    )?;
    if !report.ok() {
        return Ok(report);
    }
    let (seq, hash) = report.head.unwrap_or((0, tocsin_store::audit::GENESIS));
    let head = AuditHead {
        federation: federation.to_string(),
        agency: signer.agency().to_string(),
        seq,
        hash,
        at: now.timestamp_millis(),
    };
    let envelope = signer.sign(AUDIT_HEAD_PAYLOAD_TYPE, head.encode());
    write_line(
        &mut w,
        &Line::Head(HeadLine {
            seq,
            hash: hex::encode(hash),
            envelope: BASE64.encode(envelope.encode_to_vec()),
        }),
    )
    .map_err(io(out))?;
    w.flush().map_err(io(out))?;
    drop(w);
    tmp.as_file().sync_all().map_err(io(out))?;
    tmp.persist(out).map_err(|e| AuditError::Io {
        path: out.display().to_string(),
        cause: e.error,
    })?;
    report.signed_head = Some(head);
    Ok(report)
}

/// Checks a bundle offline, with only the federation's public material:
/// the chain, every envelope against its entry and its signature, and the
/// head's signature by the agency named in the header.
pub fn verify_bundle(
    path: &Path,
    trust: Trust,
    mut progress: impl FnMut(u64, u64),
) -> Result<Report, AuditError> {
    read_bundle(path, trust, &mut progress).map(|b| b.report)
}

struct ReadBundle {
    report: Report,
    hashes: Vec<[u8; 32]>,
    /// The header's federation, as written.
    federation: String,
    /// Every entry read, with its envelopes (kept only when asked for).
    entries: Vec<(AuditEntry, Found)>,
}

fn read_bundle(
    path: &Path,
    trust: Trust,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ReadBundle, AuditError> {
    let file = std::fs::File::open(path).map_err(io(path))?;
    read_bundle_from(
        &path.display().to_string(),
        std::io::BufReader::new(file),
        trust,
        false,
        progress,
    )
}

fn read_bundle_from(
    shown: &str,
    reader: impl BufRead,
    trust: Trust,
    keep: bool,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ReadBundle, AuditError> {
    let shown = shown.to_owned();
    let not_a_bundle = |what: String| AuditError::NotABundle {
        path: shown.clone(),
        what,
    };
    let path = Path::new(&shown);
    let mut lines = reader.lines();
    let first = lines
        .next()
        .transpose()
        .map_err(io(path))?
        .ok_or_else(|| not_a_bundle("empty file".into()))?;
    let header = match serde_json::from_str::<Line>(&first) {
        Ok(Line::Header(h)) if h.format == BUNDLE_FORMAT => h,
        Ok(_) => return Err(not_a_bundle("the first line is not its header".into())),
        Err(e) => return Err(not_a_bundle(format!("header: {e}"))),
    };
    if header.version != BUNDLE_VERSION {
        return Err(not_a_bundle(format!(
            "version {} (this tocsin reads version {BUNDLE_VERSION})",
            header.version
        )));
    }
    let agency = AgencyId::new(header.agency.clone())
        .map_err(|e| not_a_bundle(format!("header agency: {e}")))?;
    let mut trust = trust.agency(agency.clone());
    if trust.federation.is_none()
        && let Ok(f) = FederationId::new(header.federation.clone())
    {
        trust = trust.federation(f);
    }
    let mut sigs = Signatures::new(trust);
    let mut chain = ChainCheck::new();
    let mut findings = Vec::new();
    let mut hashes = Vec::new();
    let mut head: Option<(usize, HeadLine)> = None;
    let mut seen_locations: HashMap<Location, u64> = HashMap::new();
    let mut entries_kept = Vec::new();
    for (i, line) in lines.enumerate() {
        let n = i + 2;
        let line = line.map_err(io(path))?;
        let at = chain.entries() + 1;
        if let Some((h, _)) = &head {
            findings.push(Finding {
                seq: at,
                problem: Problem::Inserted,
                detail: format!("line {n} follows the signed head (line {h})"),
            });
            continue;
        }
        let parsed = match serde_json::from_str::<Line>(&line) {
            Ok(Line::Entry(e)) => from_line(e).map_err(|why| format!("line {n}: {why}")),
            Ok(Line::Head(h)) => {
                head = Some((n, h));
                continue;
            }
            Ok(Line::Header(_)) => Err(format!("line {n} is a second header")),
            Err(e) => Err(format!("line {n} is not an entry ({e})")),
        };
        let (entry, found) = match parsed {
            Ok(p) => p,
            Err(why) => {
                chain.note(Finding {
                    seq: at,
                    problem: Problem::Changed,
                    detail: why,
                });
                continue;
            }
        };
        chain.push(&entry);
        hashes.push(entry.hash);
        findings.extend(check_evidence(&entry, &found));
        for (r, bytes) in entry.evidence.iter().zip(&found) {
            if let Some(first) = seen_locations.insert(r.location.clone(), entry.seq) {
                findings.push(Finding {
                    seq: entry.seq,
                    problem: Problem::Inserted,
                    detail: format!(
                        "entry {} records the {} that entry {first} recorded",
                        entry.seq, r.location
                    ),
                });
            }
            if let Some(b) = bytes
                && let Some(f) = sigs.check(&entry, r, b)
            {
                findings.push(f);
            }
        }
        if keep {
            entries_kept.push((entry, found));
        }
        if chain.entries().is_multiple_of(10_000) {
            progress(chain.entries(), 0);
        }
    }
    progress(chain.entries(), chain.entries());
    let last = chain.head();
    let entries = chain.entries();
    findings.extend(chain.finish());
    let mut signed_head = None;
    match head {
        None => findings.push(no_head()),
        Some((n, line)) => match check_head(&mut sigs, &header, &agency, &line) {
            Err(why) => findings.push(Finding {
                seq: u64::MAX,
                problem: Problem::Invalid,
                detail: format!("the signed head (line {n}): {why}"),
            }),
            Ok(h) => {
                let (seq, hash) = last.unwrap_or((0, tocsin_store::audit::GENESIS));
                if h.seq > seq {
                    findings.push(Finding {
                        seq: seq + 1,
                        problem: Problem::Removed,
                        detail: format!(
                            "the head was signed at entry {}, but the bundle ends at entry {seq}",
                            h.seq
                        ),
                    });
                } else if h.seq < seq {
                    findings.push(Finding {
                        seq: h.seq + 1,
                        problem: Problem::Inserted,
                        detail: format!(
                            "entries after {} are not covered by the signed head",
                            h.seq
                        ),
                    });
                } else if h.hash != hash {
                    findings.push(Finding {
                        seq,
                        problem: Problem::Changed,
                        detail: format!(
                            "entry {seq}'s hash is not the one the head signed: the chain was rewritten"
                        ),
                    });
                }
                signed_head = Some(h);
            }
        },
    }
    sort_findings(&mut findings);
    Ok(ReadBundle {
        report: Report {
            source: shown,
            agency: Some(agency.to_string()),
            entries,
            events: None,
            signatures: sigs.checked,
            head: last,
            signed_head,
            findings,
        },
        hashes,
        federation: header.federation,
        entries: entries_kept,
    })
}

fn check_head(
    sigs: &mut Signatures,
    header: &Header,
    agency: &AgencyId,
    line: &HeadLine,
) -> Result<AuditHead, String> {
    let bytes = BASE64
        .decode(&line.envelope)
        .map_err(|e| format!("not base64 ({e})"))?;
    let env =
        pb::Envelope::decode(bytes.as_slice()).map_err(|e| format!("not an envelope ({e})"))?;
    let v = sigs.verify(&env, AUDIT_HEAD_PAYLOAD_TYPE)?;
    if &v.signer != agency {
        return Err(format!("signed by {}, not by {agency}", v.signer));
    }
    let head = AuditHead::decode(&env.payload)?;
    if head.agency != header.agency || head.federation != header.federation {
        return Err(format!(
            "signed for {} of {}, but the header says {} of {}",
            head.agency, head.federation, header.agency, header.federation
        ));
    }
    if sigs
        .trust
        .federation
        .as_ref()
        .is_some_and(|f| f.as_str() != head.federation)
    {
        return Err(format!("signed for federation {}", head.federation));
    }
    Ok(head)
}

/// A hash in hex, for reports.
pub fn hex_hash(hash: &[u8; 32]) -> String {
    hex::encode(hash)
}
