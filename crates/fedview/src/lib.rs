//! The federation view: `tocsin demo --web` in a browser. The agencies,
//! the warnings travelling between them, deadlines running out and flags
//! going up while a scenario plays, and afterwards the federated
//! post-mortem as a timeline to scrub through.
//!
//! - [`picture`] (pure): the federation at one scenario instant, from
//!   what each node's operator API says ([`Picture`]), and [`picture::read`],
//!   the one place that asks the nodes.
//! - [`timeline`] (pure): the federated post-mortem as records and
//!   findings in time order, each finding linked to its records
//!   ([`Timeline`]).
//! - [`View`]: the pictures seen so far and, at the end, the timeline; an
//!   [`Observer`](tocsin_scenario::Observer) of the replay, so the demo's
//!   refresh and a test's replay on a manual clock feed it the same way.
//! - `web` (private): the thin axum adapter ([`Server`]): server-rendered
//!   pages, a small pinned script and stylesheet, server-sent events, on
//!   loopback behind a per-start token (the node desk's guard,
//!   `tocsin_node::web_access`). Read-only: nothing in it acts on a node.

#![forbid(unsafe_code)]

pub mod picture;
pub mod timeline;
mod web;

use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

pub use picture::{EdgeState, Picture};
pub use timeline::Timeline;
pub use web::{Error, Server};

/// How many distinct pictures a view keeps for the scrubber: a long demo
/// refreshes often, and most refreshes change nothing but the clock.
const HISTORY: usize = 5000;

/// What the view shows: every distinct picture seen (each with the clock
/// it was first seen at), the latest clock, and the timeline once the
/// post-mortem is made. Cheap to clone; every clone is the same view.
#[derive(Debug, Clone)]
pub struct View {
    state: Arc<Mutex<State>>,
    /// Bumped on every change, for the live page's events.
    version: watch::Sender<u64>,
}

#[derive(Debug)]
struct State {
    title: String,
    history: Vec<Picture>,
    clock: Option<DateTime<Utc>>,
    timeline: Option<Timeline>,
}

/// A consistent copy of what the view holds, for one page.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The scenario's name and title.
    pub title: String,
    /// The latest picture, at the latest clock.
    pub now: Option<Picture>,
    /// The timeline, once the post-mortem is made.
    pub timeline: Option<Timeline>,
    /// The version this copy is of.
    pub version: u64,
}

impl View {
    /// An empty view of the scenario called `title`.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                title: title.into(),
                history: Vec::new(),
                clock: None,
                timeline: None,
            })),
            version: watch::channel(0).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere cannot leave a picture half-written: every
        // change is one push or one assignment.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn changed(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    /// Shows `picture`: kept if the federation changed, else only its
    /// clock moves on.
    pub fn show(&self, picture: Picture) {
        {
            let mut s = self.lock();
            s.clock = Some(picture.clock);
            let same = s.history.last().is_some_and(|p| p.same_state(&picture));
            if !same {
                if s.history.len() >= HISTORY {
                    // Keep the first (the start) and drop the oldest after it.
                    s.history.remove(1);
                }
                s.history.push(picture);
            }
        }
        self.changed();
    }

    /// Adds the post-mortem's timeline: the replay is over.
    pub fn conclude(&self, timeline: Timeline) {
        self.lock().timeline = Some(timeline);
        self.changed();
    }

    /// The latest picture, at the latest clock.
    pub fn latest(&self) -> Option<Picture> {
        let s = self.lock();
        let mut p = s.history.last()?.clone();
        if let Some(c) = s.clock {
            p.clock = c;
        }
        Some(p)
    }

    /// The federation as it stood at `t`: the last picture first seen at
    /// or before it (the first one before any), shown at `t`.
    pub fn picture_at(&self, t: DateTime<Utc>) -> Option<Picture> {
        let s = self.lock();
        let i = s.history.partition_point(|p| p.clock <= t);
        let mut p = s.history.get(i.saturating_sub(1))?.clone();
        p.clock = t;
        Some(p)
    }

    /// Everything one page shows, read at once.
    pub fn snapshot(&self) -> Snapshot {
        let version = *self.version.borrow();
        let now = self.latest();
        let s = self.lock();
        Snapshot {
            title: s.title.clone(),
            now,
            timeline: s.timeline.clone(),
            version,
        }
    }

    /// Follows the view's changes.
    fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::picture::{Edge, EdgeKind};

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn at(clock: &str, state: Option<EdgeState>) -> Picture {
        let mut p = Picture::empty(t(clock), ["TR-MIT".parse().unwrap()]);
        if let Some(state) = state {
            p.edges.push(Edge {
                alert_id: "A1".into(),
                kind: EdgeKind::Alert,
                from: "TR-MIT".into(),
                to: "FR-DGSI".into(),
                state,
                late: false,
                precedence: "PRIORITY".into(),
                subject: String::new(),
                due_at: None,
            });
        }
        p
    }

    #[test]
    fn the_view_keeps_each_change_and_answers_for_any_instant() {
        let view = View::new("paris-2015");
        assert!(view.latest().is_none() && view.picture_at(t("2015-01-01T00:00:00Z")).is_none());
        let mut follow = view.subscribe();
        view.show(at("2014-12-01T00:00:00Z", None));
        view.show(at("2014-12-05T00:00:00Z", None));
        view.show(at("2014-12-10T09:00:00Z", Some(EdgeState::Delivered)));
        view.show(at("2014-12-11T09:00:00Z", Some(EdgeState::Overdue)));
        view.show(at("2014-12-20T00:00:00Z", Some(EdgeState::Overdue)));
        assert!(follow.has_changed().unwrap());
        assert_eq!(*follow.borrow_and_update(), 5);
        assert_eq!(view.lock().history.len(), 3, "only changes are kept");

        let latest = view.latest().unwrap();
        assert_eq!(latest.clock, t("2014-12-20T00:00:00Z"));
        assert_eq!(latest.edges[0].state, EdgeState::Overdue);
        let before = view.picture_at(t("2014-12-10T08:59:00Z")).unwrap();
        assert!(before.edges.is_empty());
        assert_eq!(before.clock, t("2014-12-10T08:59:00Z"));
        let then = view.picture_at(t("2014-12-10T09:00:00Z")).unwrap();
        assert_eq!(then.edges[0].state, EdgeState::Delivered);
        let early = view.picture_at(t("2014-01-01T00:00:00Z")).unwrap();
        assert!(early.edges.is_empty(), "before the first: the first");

        let snap = view.snapshot();
        assert_eq!((snap.title.as_str(), snap.version), ("paris-2015", 5));
        assert!(snap.timeline.is_none());
        view.conclude(Timeline {
            federation: "demo.tocsin".into(),
            items: vec![],
            limits: vec![],
            bundles: vec![],
        });
        assert!(view.snapshot().timeline.is_some());
        assert_eq!(view.snapshot().version, 6);
    }
}
