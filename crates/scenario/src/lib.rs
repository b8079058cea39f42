//! Tocsin scenarios: alert flows and watchlist checks replayed against a
//! federation on scenario time, and the post-mortem of what happened.
//!
//! A scenario file (TOML) says at which scenario time which agency sends
//! which alert to whom, and which recipient acknowledges what, when, with
//! which disposition; silence is simply the absence of an `ack` step:
//!
//! ```toml
//! name = "paris-2015"
//! title = "..."
//! start = "2014-12-01T00:00:00Z"   # scenario time when the replay begins
//! end = "2015-11-20T00:00:00Z"     # and ends
//! speed = 500000                   # on real time: scenario seconds per real second
//!
//! [[pace]]                         # optional: slower stretches, where minutes count
//! from = "2015-11-12T09:00:00Z"
//! until = "2015-11-12T13:00:00Z"
//! speed = 2000
//!
//! [[steps]]
//! at = "2014-12-10T09:00:00Z"
//! action = "send"                  # send | ack | cancel | watchlist | screen | stop | start | note
//! from = "TR-MIT"
//! label = "mit-notice-1"           # names the alert for later steps
//! [steps.alert]                    # the alert, as in `tocsin alert send --file`
//! precedence = "PRIORITY"
//! # ...
//!
//! [[steps]]
//! at = "2014-12-10T15:30:00Z"
//! action = "ack"
//! by = "FR-DGSI"
//! label = "mit-notice-1"
//! disposition = "ACTIONED"
//! note = "..."
//! ```
//!
//! `cancel` (`from`, `label`, `as` for the cancel's own label) cancels an
//! earlier alert; `stop` and `start` (`agency`) take a node down and up
//! (through a [`NodeControl`]); `note` (`text`) narrates.
//!
//! Watchlists: `watchlist` (`from`, the owner) publishes entries through
//! the owner's `WatchlistDesk.AddEntries`, each entry as in `tocsin
//! watchlist import`; `screen` (`by`, `label`, `person`, `place`, optional
//! `seen_at`, the step's time if not given, and `ref`) screens a person
//! through the agency's `WatchlistDesk.Screen`:
//!
//! ```toml
//! [[steps]]
//! at = "2015-02-01T09:00:00Z"
//! action = "watchlist"
//! from = "BE-VSSE"
//! [[steps.entries]]
//! ref = "VSSE-2015-0032"
//! subject = { person = { names = ["Salah Abdeslam"], date_of_birth = "1989-09-15" } }
//! reason = "..."
//! action = "DISCREET_CHECK"
//! hit_precedence = "IMMEDIATE"     # the hit report's precedence
//! releasable_to = ["FR-GN", "AT-BVT"]
//!
//! [[steps]]
//! at = "2015-11-14T09:10:00Z"
//! action = "screen"
//! by = "FR-GN"
//! label = "abdeslam-cambrai"       # names the hit report
//! person = { names = ["Salah ABDESLAM"], date_of_birth = "1989-09-15" }
//! place = "road check near Cambrai"
//! ref = "GN-59-2015-11-14-03"      # the screening agency's own reference
//! ```
//!
//! A screen must hit another agency's entry: its node then sends the
//! entry's owner a hit report, an alert with the acknowledgement cycle of
//! any alert, which the screen's `label` names, so an `ack` step by the
//! owner answers it as it would an alert. Before screening, the replay
//! waits until the screening node's sync status shows it holds every list
//! released to it by earlier `watchlist` steps (entries travel by the
//! holders' pulls); a screen that does not hit is a replay error naming
//! it. [`Scenario::check`] refuses, naming the step, an entry the owner's
//! node would refuse or one releasable to a non-member, a ref listed
//! twice, a screen with no name or document or with no earlier entry of
//! another agency it could hit, and an `ack` of a hit report by anyone but
//! an owner of such an entry.
//!
//! - [`Scenario`]: the file, loaded and checked against a federation.
//! - [`replay`]: performs each step at its scenario time through each
//!   agency's operator service. How it follows scenario time is a
//!   [`ClockDriver`]: [`ScaledDriver`] on real time, for nodes in separate
//!   processes on a shared scaled clock (`tocsin demo`, `tocsin scenario
//!   run`); [`ManualDriver`] on a `ManualClock`, for in-process federations
//!   (the test kit's), which moves the clock through every deadline and
//!   ladder step in order and waits for the federation to settle, so a year
//!   replays in seconds.
//!   An [`Observer`] (the demo's federation view) follows a replay: the
//!   live driver calls it on each refresh, [`Observed`] after each arrival
//!   and settle of any other driver.
//! - [`post_mortem`]: what happened to every alert and every hit report
//!   (who screened whom, where, when, which entry, how well, and what the
//!   owner did with it), read from the nodes, as a [`PostMortem`] to assert
//!   on, print (its `Display` is the demo's text) or serialise (the demo's
//!   `--json`).
//! - [`Clients`]: each agency's operator services, alerts and watchlists
//!   ([`AgencyClient`]), through which the replay acts and the post-mortem
//!   reads.
//!
//! The test kit (`tocsin_testkit::scenario`) puts these together for tests.

#![forbid(unsafe_code)]

mod drivers;
mod file;
mod post_mortem;
mod replay;

pub use drivers::{ManualDriver, Observed, Observer, ScaledDriver};
pub use file::{Action, LoadError, Mistake, Scenario, ScenarioError, Step};
pub use post_mortem::{
    AckReport, AlertReport, AlertStatus, DeadlineFlag, FlagReport, HitReport, LadderStep,
    PostMortem, RecipientReport, StepReport, Totals, human_duration, post_mortem,
};
pub use replay::{
    AgencyClient, BoxError, Clients, ClockDriver, NodeControl, Nodes, Replay, ReplayError,
    TriageSeen, TriagedItem, replay,
};
