//! Screening as a test writes it: [`Screen`] builds a request (a
//! [`Person`], identifiers, where and when seen, a ref), and the [`Desk`]
//! screens it against every entry its node holds, or waits until a screen
//! finds (or no longer finds) an entry.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> anyhow::Result<()> {
//! use tocsin_testkit::{Person, Screen, TestFederation, WatchEntry};
//!
//! let fed = TestFederation::builder().agencies(["TR-MIT", "FR-DGSI"]).start().await?;
//! let (tr, fr) = (fed.desk("TR-MIT").await?, fed.desk("FR-DGSI").await?);
//! tr.publish(WatchEntry::person("W-1", "Salah Abdeslam").to(["FR-DGSI"])).await?;
//! let m = fr.wait_hit(Screen::of(Person::named("ABDESLAM Salah")), "TR-MIT", "W-1").await?;
//! assert!(m.score > 0.8);
//! # Ok(()) }
//! ```
//!
//! The waits poll `Screen`: the index is updated right after the store
//! commits a change, so a listing may show an entry a moment before a
//! screen finds it.

use tocsin_proto::pb;

use crate::alerts::Person;
use crate::flow::{Desk, Probe, wait_for};

/// A screen request under construction.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct Screen(pb::ScreenRequest);

impl Screen {
    /// Screens this person.
    pub fn of(person: Person) -> Self {
        Screen(pb::ScreenRequest {
            person: Some(person.into()),
            ..Default::default()
        })
    }

    /// Screens this identifier only.
    pub fn identifier(kind: &str, value: &str) -> Self {
        Screen::default().and_identifier(kind, value)
    }

    /// Also this identifier.
    pub fn and_identifier(mut self, kind: &str, value: &str) -> Self {
        self.0.identifiers.push(pb::Identifier {
            kind: kind.to_owned(),
            value: value.to_owned(),
        });
        self
    }

    /// Seen there, then.
    pub fn seen(mut self, place: &str, at: chrono::DateTime<chrono::Utc>) -> Self {
        self.0.seen_place = place.to_owned();
        self.0.seen_at = Some(tocsin_core::to_timestamp(at));
        self
    }

    /// With the caller's own reference.
    pub fn reference(mut self, reference: &str) -> Self {
        self.0.r#ref = reference.to_owned();
        self
    }

    /// At most this many matches (the node's default is 10).
    pub fn limit(mut self, limit: u32) -> Self {
        self.0.limit = limit;
        self
    }
}

impl From<Screen> for pb::ScreenRequest {
    fn from(s: Screen) -> Self {
        s.0
    }
}

impl From<Person> for pb::ScreenRequest {
    fn from(p: Person) -> Self {
        Screen::of(p).0
    }
}

/// The match of `owner`'s entry `reference` in `result`, if any.
pub fn match_of<'a>(
    result: &'a pb::ScreenResponse,
    owner: &str,
    reference: &str,
) -> Option<&'a pb::ScreenMatch> {
    result
        .matches
        .iter()
        .find(|m| m.owner == owner && m.r#ref == reference)
}

fn describe(result: &pb::ScreenResponse) -> String {
    if result.matches.is_empty() {
        return "it matched nothing".into();
    }
    let found: Vec<String> = result
        .matches
        .iter()
        .map(|m| {
            format!(
                "{}/{} {:.2}{} ({})",
                m.owner,
                m.r#ref,
                m.score,
                if m.hit { " HIT" } else { "" },
                m.reasons_text
            )
        })
        .collect();
    format!("it matched {}", found.join(", "))
}

impl Desk {
    /// Screens one person against every entry this node holds.
    pub async fn screen(
        &self,
        request: impl Into<pb::ScreenRequest>,
    ) -> Result<pb::ScreenResponse, tonic::Status> {
        Ok(self
            .watchlist()
            .map_err(|e| tonic::Status::failed_precondition(e.to_string()))?
            .screen(request.into())
            .await?
            .into_inner())
    }

    /// Screens many; the results are in the order of the requests.
    pub async fn screen_batch(
        &self,
        requests: Vec<pb::ScreenRequest>,
    ) -> Result<Vec<pb::ScreenResponse>, tonic::Status> {
        Ok(self
            .watchlist()
            .map_err(|e| tonic::Status::failed_precondition(e.to_string()))?
            .screen_batch(pb::ScreenBatchRequest { requests })
            .await?
            .into_inner()
            .results)
    }

    /// Waits until screening `request` finds `owner`'s entry `reference`
    /// and `check` holds of the match (`what` says what is awaited).
    pub async fn wait_match_where<F>(
        &self,
        request: impl Into<pb::ScreenRequest>,
        owner: &str,
        reference: &str,
        what: &str,
        check: F,
    ) -> anyhow::Result<pb::ScreenMatch>
    where
        F: Fn(&pb::ScreenMatch) -> bool,
    {
        let request = request.into();
        let expected = format!(
            "a screen on {}'s node to find {owner}'s entry {reference} {what}",
            self.agency()
        );
        let (request, check) = (&request, &check);
        wait_for(self.patience, &expected, || async move {
            match self.screen(request.clone()).await {
                Err(s) => Probe::NotYet(format!("the screen failed: {s}")),
                Ok(result) => match match_of(&result, owner, reference) {
                    Some(m) if check(m) => Probe::Done(m.clone()),
                    _ => Probe::NotYet(describe(&result)),
                },
            }
        })
        .await
    }

    /// Waits until screening `request` finds `owner`'s entry `reference`
    /// as a hit.
    pub async fn wait_hit(
        &self,
        request: impl Into<pb::ScreenRequest>,
        owner: &str,
        reference: &str,
    ) -> anyhow::Result<pb::ScreenMatch> {
        self.wait_match_where(request, owner, reference, "as a hit", |m| m.hit)
            .await
    }

    /// Waits until screening `request` finds `owner`'s entry `reference`
    /// as a hit and this node has sent (or found already sent) its hit
    /// report: the match's `hit_report_id` is the report's alert id.
    pub async fn wait_hit_report(
        &self,
        request: impl Into<pb::ScreenRequest>,
        owner: &str,
        reference: &str,
    ) -> anyhow::Result<pb::ScreenMatch> {
        self.wait_match_where(request, owner, reference, "as a hit, reported", |m| {
            m.hit && !m.hit_report_id.is_empty()
        })
        .await
    }

    /// Waits until screening `request` no longer finds `owner`'s entry
    /// `reference` at all.
    pub async fn wait_no_match(
        &self,
        request: impl Into<pb::ScreenRequest>,
        owner: &str,
        reference: &str,
    ) -> anyhow::Result<()> {
        let request = request.into();
        let expected = format!(
            "a screen on {}'s node no longer to find {owner}'s entry {reference}",
            self.agency()
        );
        let request = &request;
        wait_for(self.patience, &expected, || async move {
            match self.screen(request.clone()).await {
                Err(s) => Probe::NotYet(format!("the screen failed: {s}")),
                Ok(result) if match_of(&result, owner, reference).is_some() => {
                    Probe::NotYet(describe(&result))
                }
                Ok(_) => Probe::Done(()),
            }
        })
        .await
    }
}
