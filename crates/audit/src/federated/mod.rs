//! The federated post-mortem: several agencies' audit bundles, each
//! checked offline against the federation CA, merged into one timeline of
//! signed records and cross-checked, with every gap named.
//!
//! A pure function over bundles already read into memory ([`Input`]): no
//! network, no store, so it runs anywhere the CA certificate is, and the
//! same function serves `tocsin postmortem` and the demo.
//!
//! The parts: `records` (the signed records a verified bundle holds,
//! decoded once), `merge` (one timeline, the cross-checks between bundles
//! and the gaps), `display` (the text form, grouped by area). What it
//! finds is a [`PostMortem`]; what makes input unusable is an [`Error`].

mod display;
mod merge;
mod records;
#[cfg(test)]
mod tests;

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tocsin_core::FederationId;
use tocsin_core::federation::Deadlines;

use crate::{AuditError, Trust};

pub use records::RecordKind;

/// One bundle, as read from its file: its name (for findings) and bytes.
#[derive(Debug, Clone)]
pub struct Input {
    /// How findings name the bundle: usually its path.
    pub name: String,
    /// The bundle's JSON Lines.
    pub bytes: Vec<u8>,
}

impl Input {
    /// Reads the bundle at `path`.
    pub fn read(path: &Path) -> Result<Self, AuditError> {
        let bytes = std::fs::read(path).map_err(|cause| AuditError::Io {
            path: path.display().to_string(),
            cause,
        })?;
        Ok(Self {
            name: path.display().to_string(),
            bytes,
        })
    }
}

/// What the post-mortem is told besides the bundles.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The federation every bundle must belong to; by default the one the
    /// first bundle that verifies names.
    pub federation: Option<FederationId>,
    /// The deadline policy, from the federation file. Without it the
    /// protocol's defaults are used, and the findings say so.
    pub deadlines: Option<Deadlines>,
    /// Only the records linked to this subject (a name, a document
    /// number or an alert id), as `tocsin subject show` links them.
    pub subject: Option<String>,
}

impl Options {
    /// The federation file's id and deadlines, as `tocsin postmortem
    /// --federation` takes them.
    pub fn for_federation(federation: &tocsin_core::Federation) -> Self {
        Self {
            federation: Some(federation.id().clone()),
            deadlines: Some(federation.deadlines),
            subject: None,
        }
    }
}

/// Why the post-mortem could not be made at all: the input is unusable.
/// A bundle that fails verification is not one of these; it is a finding.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No bundle was given.
    #[error("no bundle given")]
    NoBundles,
    /// A file is not an audit bundle, or could not be read.
    #[error(transparent)]
    Unreadable(#[from] AuditError),
    /// A bundle belongs to another federation.
    #[error(
        "{bundle} is a bundle of federation {federation}, not of {expected}: a post-mortem merges one federation's records"
    )]
    OtherFederation {
        /// The bundle.
        bundle: String,
        /// The federation its header names.
        federation: String,
        /// The federation of the others.
        expected: String,
    },
    /// Not one bundle verified: there is nothing to merge.
    #[error("no bundle verifies against the federation CA: {0}")]
    NoneVerifies(String),
}

/// The three areas of the seeds' evaluation a finding belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Area {
    /// Was the warning seen, and given its rank (deadlines, escalations).
    DetectionAndPrioritisation,
    /// Were the watchlist hits reported and answered.
    Surveillance,
    /// Did the warnings reach those who needed them, and do the agencies'
    /// records agree on who was told what.
    InformationSharing,
}

impl Area {
    /// Every area, in the order the findings are shown.
    pub const ALL: [Area; 3] = [
        Area::DetectionAndPrioritisation,
        Area::Surveillance,
        Area::InformationSharing,
    ];

    /// The heading the text form shows.
    pub fn title(self) -> &'static str {
        match self {
            Area::DetectionAndPrioritisation => "Detection and prioritisation",
            Area::Surveillance => "Surveillance (hit reports)",
            Area::InformationSharing => "Information sharing",
        }
    }
}

/// What a finding says went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// A bundle failed verification; its records are left out.
    BundleFailed,
    /// Two bundles hold different signed records under one identity, or
    /// one holds a record the other's signed records should hold and lack.
    Contradiction,
    /// A receipt commits to other alert content than the alert held.
    ReceiptMismatch,
    /// No receipt from a recipient: the alert never reached it.
    NeverDelivered,
    /// Delivered, never acknowledged.
    NeverAcknowledged,
    /// Acknowledged after its deadline.
    AcknowledgedLate,
    /// A hit report delivered and never answered.
    HitNotAnswered,
    /// A hit report that never reached the entry's owner.
    HitNotDelivered,
    /// An escalation notice no observer acted on.
    EscalationNotActedOn,
}

/// One thing that went wrong, proven from the signed records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The area it belongs to.
    pub area: Area,
    /// What it is.
    pub kind: FindingKind,
    /// The alert (or hit report) concerned, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_id: Option<String>,
    /// The agencies concerned.
    pub agencies: Vec<String>,
    /// The bundles whose records show it.
    pub bundles: Vec<String>,
    /// The account, for people.
    pub detail: String,
}

/// How one bundle fared.
#[derive(Debug, Clone, Serialize)]
pub struct BundleStatus {
    /// The bundle's name.
    pub name: String,
    /// The agency whose log it is.
    pub agency: String,
    /// Entries read.
    pub entries: u64,
    /// When its head was signed (the export), if it verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exported_at: Option<DateTime<Utc>>,
    /// Whether it verified: chain, envelopes and signed head.
    pub verified: bool,
    /// Why not, first problem first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// One signed record of the merged timeline.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineItem {
    /// Its signed time (created, received, acknowledged, sent, escalated).
    pub at: DateTime<Utc>,
    /// What it is.
    pub kind: RecordKind,
    /// The alert it concerns.
    pub alert_id: String,
    /// The agency that signed it.
    pub signer: String,
    /// What it says, in one line.
    pub summary: String,
    /// The bundles that hold it.
    pub held_by: Vec<String>,
}

/// What the post-mortem found.
#[derive(Debug, Clone, Serialize)]
pub struct PostMortem {
    /// The federation of the bundles.
    pub federation: String,
    /// The subject asked about, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Every bundle given, verified or not.
    pub bundles: Vec<BundleStatus>,
    /// The signed records of the verified bundles, once each, in signed
    /// time order.
    pub timeline: Vec<TimelineItem>,
    /// What went wrong, by area, then as found.
    pub findings: Vec<Finding>,
    /// What the findings cannot show, and why (missing bundles...).
    pub limits: Vec<String>,
}

impl PostMortem {
    /// The findings of one area.
    pub fn in_area(&self, area: Area) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.area == area)
    }

    /// The findings of one kind.
    pub fn of_kind(&self, kind: FindingKind) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.kind == kind)
    }
}

/// Reads the bundles at `paths` and makes their post-mortem: what the demo
/// calls on the bundles it exported, and `tocsin postmortem` on its
/// arguments. `pm.to_string()` is the text form.
pub fn post_mortem_files(
    paths: &[impl AsRef<Path>],
    trust: &Trust,
    options: &Options,
) -> Result<PostMortem, Error> {
    let inputs = paths
        .iter()
        .map(|p| Input::read(p.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    post_mortem(&inputs, trust, options)
}

/// Verifies every bundle offline against `trust` (the federation CA),
/// merges the verified ones and cross-checks them. A bundle that fails is
/// a finding and the rest still merge; an agency named in the records
/// without a bundle is a stated limit. Fails only on unusable input: no
/// bundle, a file that is not a bundle, a bundle of another federation,
/// or not one bundle that verifies.
pub fn post_mortem(
    inputs: &[Input],
    trust: &Trust,
    options: &Options,
) -> Result<PostMortem, Error> {
    if inputs.is_empty() {
        return Err(Error::NoBundles);
    }
    let mut read = Vec::with_capacity(inputs.len());
    for input in inputs {
        let mut trust = trust.clone();
        if let Some(f) = &options.federation {
            trust = trust.federation(f.clone());
        }
        let bundle = crate::read_bundle_from(
            &input.name,
            std::io::Cursor::new(&input.bytes),
            trust,
            true,
            &mut |_, _| {},
        )?;
        read.push((input.name.clone(), bundle));
    }
    let expected = match &options.federation {
        Some(f) => f.to_string(),
        None => read
            .iter()
            .find(|(_, b)| b.report.ok())
            .or(read.first())
            .map(|(_, b)| b.federation.clone())
            .unwrap_or_default(),
    };
    if let Some((name, b)) = read.iter().find(|(_, b)| b.federation != expected) {
        return Err(Error::OtherFederation {
            bundle: name.clone(),
            federation: b.federation.clone(),
            expected,
        });
    }
    if read.iter().all(|(_, b)| !b.report.ok()) {
        let why: Vec<String> = read
            .iter()
            .map(|(name, b)| {
                let first = b
                    .report
                    .first()
                    .map(|f| f.detail.clone())
                    .unwrap_or_default();
                format!("{name}: {first}")
            })
            .collect();
        return Err(Error::NoneVerifies(why.join("; ")));
    }
    Ok(merge::merge(expected, read, options))
}
