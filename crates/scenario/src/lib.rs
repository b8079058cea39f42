//! Tocsin scenarios: alert flows replayed against a federation on scenario
//! time, and the post-mortem of what happened.
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
//! action = "send"                  # send | ack | cancel | stop | start | note
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
//! - [`Scenario`]: the file, loaded and checked against a federation.
//! - [`replay`]: performs each step at its scenario time through each
//!   agency's operator service. How it follows scenario time is a
//!   [`ClockDriver`]: [`ScaledDriver`] on real time, for nodes in separate
//!   processes on a shared scaled clock (`tocsin demo`, `tocsin scenario
//!   run`); [`ManualDriver`] on a `ManualClock`, for in-process federations
//!   (the test kit's), which moves the clock through every deadline and
//!   ladder step in order and waits for the federation to settle, so a year
//!   replays in a fraction of a second.
//! - [`post_mortem`]: what happened to every alert, read from the nodes, as
//!   a [`PostMortem`] to assert on, print (its `Display` is the demo's text)
//!   or serialise (the demo's `--json`).
//!
//! The test kit (`tocsin_testkit::scenario`) puts these together for tests.

#![forbid(unsafe_code)]

mod drivers;
mod file;
mod post_mortem;
mod replay;

pub use drivers::{ManualDriver, ScaledDriver};
pub use file::{Action, LoadError, Mistake, Scenario, ScenarioError, Step};
pub use post_mortem::{
    AckReport, AlertReport, AlertStatus, DeadlineFlag, FlagReport, LadderStep, PostMortem,
    RecipientReport, StepReport, Totals, human_duration, post_mortem,
};
pub use replay::{BoxError, Clients, ClockDriver, NodeControl, Nodes, Replay, ReplayError, replay};
