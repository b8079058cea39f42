//! How a replay follows scenario time.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tocsin_core::ScaledClock;

use crate::replay::{ClockDriver, Nodes, ReplayError};

/// Scenario time on real time: nodes run in their own processes on the
/// same [`ScaledClock`] (a shared origin, speed and paces), and the replay
/// sleeps until each step's real time. Nothing is waited for after a step:
/// the nodes' clocks do not wait either.
#[derive(Debug, Clone)]
pub struct ScaledDriver {
    clock: ScaledClock,
}

impl ScaledDriver {
    /// A driver following `clock`, the clock every node runs on.
    pub fn new(clock: ScaledClock) -> Self {
        Self { clock }
    }

    /// The scenario clock.
    pub fn clock(&self) -> &ScaledClock {
        &self.clock
    }
}

impl ClockDriver for ScaledDriver {
    fn now(&self) -> DateTime<Utc> {
        self.clock.at(Utc::now())
    }

    fn advance_to<'a>(
        &'a mut self,
        t: DateTime<Utc>,
        _nodes: Nodes<'a>,
    ) -> BoxFuture<'a, Result<(), ReplayError>> {
        let wait = (self.clock.real_time_of(t) - Utc::now())
            .to_std()
            .unwrap_or_default();
        Box::pin(async move {
            tokio::time::sleep(wait).await;
            Ok(())
        })
    }

    fn settle<'a>(&'a mut self, _nodes: Nodes<'a>) -> BoxFuture<'a, Result<(), ReplayError>> {
        Box::pin(async { Ok(()) })
    }
}
