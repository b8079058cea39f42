//! Subjects: alerts linked by shared match keys, and the REPEATED_UNANSWERED
//! flag.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::codes::Direction;
use crate::error::Error;

/// A REPEATED_UNANSWERED flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectFlag {
    /// The subject's canonical key.
    pub subject: String,
    /// The agency that left the alerts unanswered.
    pub recipient: String,
    /// Who or what the subject is.
    pub label: String,
    /// The alerts, oldest first.
    pub alert_ids: Vec<String>,
    /// When the flag was raised (or last grew).
    pub flagged_at: DateTime<Utc>,
}

/// What is known of the subject an alert is linked to
/// ([`Store::subject_contexts`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectContext {
    /// Agencies that sent alerts about it (sightings apart), sorted.
    pub originators: Vec<String>,
    /// Hit reports (sightings) about it.
    pub hits: usize,
    /// Whether the agency asked about is flagged REPEATED_UNANSWERED on it.
    pub flagged: bool,
}

/// A request to check subjects for REPEATED_UNANSWERED after deadlines
/// passed. The threshold and the event's text are the node's policy and
/// wording; the store only counts and records.
#[derive(Debug, Clone)]
pub struct RepeatedCheck {
    /// For each deadline that just passed: the alert, and the agency that
    /// did not answer it (`own_agency` for an alert this agency received).
    pub checks: Vec<(String, String)>,
    /// This agency: marks the recipient side.
    pub own_agency: String,
    /// When the check is made (the flag's and the event's time).
    pub now: DateTime<Utc>,
    /// How many alerts about one subject one agency must leave unanswered
    /// past their deadlines to raise the flag (at least one).
    pub threshold: usize,
    /// The FLAGGED event's text for a flag raised or grown, and which way
    /// its alerts went ([`Direction::Inbound`]: this agency left them).
    pub detail: fn(&SubjectFlag, Direction) -> String,
}

/// Subjects linked by match keys, and REPEATED_UNANSWERED. Part of [`crate::Backend`].
#[async_trait]
pub trait SubjectStore: Send + Sync {
    /// For each (alert, recipient) whose deadline just passed, checks the
    /// alert's subject: if that recipient now leaves `threshold` or more
    /// alerts about it unanswered past their deadlines, raises (or grows)
    /// the subject's REPEATED_UNANSWERED flag, with its event. Returns the
    /// flags raised or grown.
    async fn check_repeated(&self, check: RepeatedCheck) -> Result<Vec<SubjectFlag>, Error>;

    /// What this node knows of the subject each of `alert_ids` is linked
    /// to: the agencies that sent alerts about it (not counting alerts of
    /// `hit_category`, which are sightings, not reports), how many of those
    /// sightings there are, and whether `agency` is flagged
    /// REPEATED_UNANSWERED on it. One read snapshot; alerts of one linked
    /// subject share one walk. An alert linked to nothing has only itself.
    async fn subject_contexts(
        &self,
        alert_ids: Vec<String>,
        agency: String,
        hit_category: &'static str,
    ) -> Result<std::collections::HashMap<String, SubjectContext>, Error>;

    /// Every REPEATED_UNANSWERED flag, newest first.
    async fn subject_flags(&self) -> Result<Vec<SubjectFlag>, Error>;

    /// The alerts about a subject, found by an alert id, a document number,
    /// or a folded name (`doc_key`, `name`; see `tocsin_core::subject`),
    /// with the subject's keys. Empty if nothing matches.
    async fn find_subject(
        &self,
        alert_id: String,
        doc_key: String,
        name: String,
    ) -> Result<(Vec<String>, Vec<String>), Error>;
}
