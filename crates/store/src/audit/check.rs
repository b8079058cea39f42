//! Checks of a chain and of the evidence its entries commit to: what a
//! store check and a bundle check share.

use super::encoding::*;

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
    pub(super) fn new(seq: u64, problem: Problem, detail: impl Into<String>) -> Self {
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

pub(super) fn short(hash: &[u8; 32]) -> String {
    hex(&hash[..8])
}

pub(super) fn hex(bytes: &[u8]) -> String {
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
