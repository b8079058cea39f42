//! The audit log's entries, their evidence and the signed head, and their
//! canonical, length-prefixed encoding (see the [module](super) docs).

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
    pub(super) fn select(self) -> &'static str {
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
    pub(super) fn inventory(self) -> &'static str {
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
    /// Event kind (see [`crate::EventKind`]).
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
    pub(super) fn same_content(&self, other: &AuditEvent) -> bool {
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
