//! The two ways a replay follows scenario time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tocsin_core::clock::{Clock, ManualClock, Sleep};
use tocsin_core::{AgencyId, ScaledClock, time_of};
use tocsin_proto::pb;
use tokio::sync::Notify;

use crate::replay::{Clients, ClockDriver, Nodes, ReplayError};

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

/// Scenario time on a [`ManualClock`], for federations of in-process nodes
/// (the test kit's): a year replays in seconds.
///
/// Each node must run on the clock [`ManualDriver::clock_for`] gives it:
/// the same manual clock, watched, so the driver can tell when the node's
/// deadline tracker has finished its pass (it sleeps on the clock between
/// passes, and nothing else in a node does).
///
/// To reach a time, the driver moves the clock to each deadline and ladder
/// step that falls before it, one after the other, and lets the federation
/// settle at each, so every flag and step is taken at its own time and in
/// order, as on real time. The federation has settled when, on every node
/// that runs, the tracker sleeps until a later time, no alert to a running
/// node is still pending, every acknowledgement has reached its running
/// originator, no deadline or ladder step is due, and two readings in a
/// row find nothing changed. Reminders and escalation notices (the
/// post-mortem does not read them) are not waited for. An
/// [`advance_to`](ClockDriver::advance_to) right after a
/// [`settle`](ClockDriver::settle) starts from what the settle read: the
/// replay does nothing in between.
#[derive(Debug)]
pub struct ManualDriver {
    clock: ManualClock,
    trackers: BTreeMap<AgencyId, Arc<Watch>>,
    slept: Arc<Notify>,
    patience: Duration,
    /// The last settled reading, until the replay does something.
    settled: Option<Reading>,
}

impl ManualDriver {
    /// A driver moving `clock`.
    pub fn new(clock: ManualClock) -> Self {
        Self {
            clock,
            trackers: BTreeMap::new(),
            slept: Arc::new(Notify::new()),
            patience: Duration::from_secs(30),
            settled: None,
        }
    }

    /// How long, in real time, the federation may take to settle before the
    /// replay fails saying what is still going on (default 30 s).
    pub fn patience(mut self, patience: Duration) -> Self {
        self.patience = patience;
        self
    }

    /// The manual clock.
    pub fn clock(&self) -> &ManualClock {
        &self.clock
    }

    /// The clock `agency`'s node must run on: the manual clock, watched.
    /// The same for every call, so a node restarted on it is watched too.
    pub fn clock_for(&mut self, agency: &AgencyId) -> Arc<dyn Clock> {
        let watch = self
            .trackers
            .entry(agency.clone())
            .or_insert_with(|| {
                Arc::new(Watch {
                    state: Mutex::new(Sleepers::default()),
                    slept: self.slept.clone(),
                })
            })
            .clone();
        Arc::new(WatchedClock {
            clock: self.clock.clone(),
            watch,
        })
    }

    /// Each running node's tracker: `Err` naming the first that is at work.
    fn trackers(&self, nodes: &Nodes<'_>, now: DateTime<Utc>) -> Result<Vec<u64>, String> {
        let mut out = Vec::new();
        for (agency, _) in nodes.up() {
            let Some(watch) = self.trackers.get(agency) else {
                continue;
            };
            let s = watch.state.lock().unwrap_or_else(|e| e.into_inner());
            if s.sleeping.is_empty() || s.sleeping.values().any(|t| *t <= now) {
                return Err(format!("{agency}'s deadline tracker is taking what is due"));
            }
            out.push(s.generation);
        }
        Ok(out)
    }

    /// Waits until the federation has settled at the clock's time, and
    /// returns what it holds then.
    async fn settled(&mut self, nodes: Nodes<'_>) -> Result<Reading, ReplayError> {
        let began = Instant::now();
        let mut last: Option<Reading> = None;
        loop {
            let now = self.clock.now();
            // A tracker pass that begins or ends while the nodes are read
            // changes a tracker's generation.
            let slept = self.slept.notified();
            tokio::pin!(slept);
            slept.as_mut().enable();
            let before = self.trackers(&nodes, now);
            let reading = Reading::of(&nodes).await?;
            let after = self.trackers(&nodes, now);
            let pending = match (&before, &after, &reading) {
                (Err(busy), _, _) | (_, Err(busy), _) => Some(busy.clone()),
                (Ok(b), Ok(a), _) if b != a => Some("a deadline tracker is at work".into()),
                (_, _, Err(unreadable)) => Some(unreadable.clone()),
                (_, _, Ok(r)) => r.pending(&nodes, now),
            };
            match (pending, reading) {
                (None, Ok(mut r)) => {
                    r.trackers = after.unwrap_or_default();
                    if last.as_ref() == Some(&r) {
                        return Ok(r);
                    }
                    // Once more: settled is two readings alike.
                    last = Some(r);
                    continue;
                }
                (Some(what), _) | (None, Err(what)) => {
                    last = None;
                    if began.elapsed() >= self.patience {
                        return Err(ReplayError::Unsettled {
                            at: now,
                            waited: began.elapsed(),
                            pending: what,
                        });
                    }
                }
            }
            // Deliveries and acknowledgements travel in real time.
            tokio::select! {
                _ = slept => {}
                _ = tokio::time::sleep(Duration::from_millis(2)) => {}
            }
        }
    }
}

impl ClockDriver for ManualDriver {
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn advance_to<'a>(
        &'a mut self,
        t: DateTime<Utc>,
        nodes: Nodes<'a>,
    ) -> BoxFuture<'a, Result<(), ReplayError>> {
        Box::pin(async move {
            // Settled after the last step, unless the replay did something
            // since (it does nothing between a settle and the next advance).
            let mut reading = match self.settled.take() {
                Some(r) => r,
                None => self.settled(nodes).await?,
            };
            while self.clock.now() < t {
                let now = self.clock.now();
                let next = reading.next_after(now).filter(|n| *n < t).unwrap_or(t);
                self.clock.set(next);
                reading = self.settled(nodes).await?;
            }
            Ok(())
        })
    }

    fn settle<'a>(&'a mut self, nodes: Nodes<'a>) -> BoxFuture<'a, Result<(), ReplayError>> {
        Box::pin(async move {
            self.settled = Some(self.settled(nodes).await?);
            Ok(())
        })
    }
}

/// Who sleeps on one node's clock, until when.
#[derive(Debug, Default)]
struct Sleepers {
    /// Changes whenever a sleep begins or ends.
    generation: u64,
    next_id: u64,
    sleeping: BTreeMap<u64, DateTime<Utc>>,
}

#[derive(Debug)]
struct Watch {
    state: Mutex<Sleepers>,
    slept: Arc<Notify>,
}

/// Ends a sleep's registration however the sleep ends.
struct Registered {
    watch: Arc<Watch>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut s = self.watch.state.lock().unwrap_or_else(|e| e.into_inner());
        s.sleeping.remove(&self.id);
        s.generation += 1;
    }
}

/// A node's clock under a [`ManualDriver`]: the manual clock, with its
/// sleepers counted.
#[derive(Debug)]
struct WatchedClock {
    clock: ManualClock,
    watch: Arc<Watch>,
}

impl Clock for WatchedClock {
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn sleep_until(&self, t: DateTime<Utc>) -> Sleep {
        let id = {
            let mut s = self.watch.state.lock().unwrap_or_else(|e| e.into_inner());
            let id = s.next_id;
            s.next_id += 1;
            s.generation += 1;
            s.sleeping.insert(id, t);
            id
        };
        self.watch.slept.notify_waiters();
        let registered = Registered {
            watch: self.watch.clone(),
            id,
        };
        let sleep = self.clock.sleep_until(t);
        Box::pin(async move {
            let _registered = registered;
            sleep.await;
        })
    }
}

/// What the running nodes hold at one moment.
#[derive(Debug, PartialEq)]
struct Reading {
    records: Vec<(AgencyId, Vec<pb::AlertRecord>)>,
    trackers: Vec<u64>,
}

/// As many alerts as a node lists at once.
const LIST_LIMIT: u32 = 1000;

impl Reading {
    /// Every alert of every running node; `Ok(Err(_))` says which node
    /// does not answer (yet).
    async fn of(nodes: &Nodes<'_>) -> Result<Result<Reading, String>, ReplayError> {
        let listed = futures::future::join_all(nodes.up().map(|(agency, client)| async move {
            let listed = client
                .operator
                .clone()
                .list_alerts(pb::ListAlertsRequest {
                    limit: LIST_LIMIT,
                    ..Default::default()
                })
                .await;
            (agency, listed)
        }))
        .await;
        let mut records = Vec::new();
        for (agency, listed) in listed {
            let alerts = match listed {
                Ok(r) => r.into_inner().alerts,
                Err(s) => {
                    return Ok(Err(format!(
                        "{agency}'s node does not answer: {}",
                        s.message()
                    )));
                }
            };
            if alerts.len() >= LIST_LIMIT as usize {
                return Err(ReplayError::Invalid {
                    agency: agency.clone(),
                    what: format!(
                        "{LIST_LIMIT} alerts or more, more than a replay on a manual clock can follow"
                    ),
                });
            }
            records.push((agency.clone(), alerts));
        }
        Ok(Ok(Reading {
            records,
            trackers: Vec::new(),
        }))
    }

    /// Deadlines and ladder steps still to fire, on either side.
    fn timers(&self) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        self.records.iter().flat_map(|(_, alerts)| {
            alerts.iter().flat_map(|r| {
                let active = r.status == pb::AlertStatus::Active as i32;
                let mut out = Vec::new();
                if r.direction == pb::Direction::Outbound as i32 {
                    for d in r.deliveries.iter().filter(|d| active && open(d)) {
                        if d.flag == pb::DeadlineFlag::None as i32 {
                            out.extend(time_of(&d.due_at));
                        }
                        if d.ladder < pb::LadderStep::Lapsed as i32 {
                            out.extend(time_of(&d.next_step_at));
                        }
                    }
                } else if active
                    && r.acknowledgements.is_empty()
                    && r.flag == pb::DeadlineFlag::None as i32
                {
                    out.extend(time_of(&r.due_at));
                }
                out
            })
        })
    }

    /// The first timer after `now`.
    fn next_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.timers().filter(|t| *t > now).min()
    }

    /// What is still under way at `now`, if anything.
    fn pending(&self, nodes: &Nodes<'_>, now: DateTime<Utc>) -> Option<String> {
        if let Some(t) = self.timers().find(|t| *t <= now) {
            return Some(format!(
                "a deadline or ladder step due at {t} is not taken yet"
            ));
        }
        for (agency, alerts) in &self.records {
            for r in alerts {
                let id = r.alert.as_ref().map(|a| a.id.as_str()).unwrap_or("?");
                for d in &r.deliveries {
                    if d.state == pb::DeliveryState::Pending as i32 && nodes.is_up(&d.recipient) {
                        let mut what = format!(
                            "{agency}'s delivery of alert {id} to {} is PENDING after {} attempts",
                            d.recipient, d.attempts
                        );
                        if !d.last_error.is_empty() {
                            let _ = write!(what, ", last error {:?}", d.last_error);
                        }
                        return Some(what);
                    }
                }
                let originator = r.alert.as_ref().map(|a| a.originator.as_str());
                if let Some(originator) = originator.filter(|o| nodes.is_up(o))
                    && r.acknowledgements
                        .iter()
                        .any(|a| !a.delivered && a.refusal.is_empty())
                {
                    return Some(format!(
                        "{agency}'s acknowledgement of alert {id} has not reached {originator}"
                    ));
                }
            }
        }
        None
    }
}

/// Whether a delivery still waits for its recipient's answer.
fn open(d: &pb::Delivery) -> bool {
    d.acknowledgements.is_empty() && d.state != pb::DeliveryState::Rejected as i32
}

/// What watches the federation while a replay plays, such as the demo's
/// federation view: told the scenario time and given every agency's
/// operator client each time the driver has reached a time or settled.
pub trait Observer: Send + Sync {
    /// Reads what it wants of the federation at scenario time `now`. A
    /// node that does not answer (one the scenario stopped) is the
    /// observer's to handle; nothing it does fails the replay.
    fn observe<'a>(&'a self, now: DateTime<Utc>, clients: &'a Clients) -> BoxFuture<'a, ()>;
}

/// A driver whose every arrival and settle an [`Observer`] follows: the
/// way a replay on a [`ManualDriver`] feeds the federation view.
pub struct Observed<'d, D: ?Sized> {
    driver: &'d mut D,
    observer: &'d dyn Observer,
}

impl<'d, D: ClockDriver + ?Sized> Observed<'d, D> {
    /// `driver`, followed by `observer`.
    pub fn new(driver: &'d mut D, observer: &'d dyn Observer) -> Self {
        Self { driver, observer }
    }
}

impl<D: ClockDriver + ?Sized> ClockDriver for Observed<'_, D> {
    fn now(&self) -> DateTime<Utc> {
        self.driver.now()
    }

    fn advance_to<'a>(
        &'a mut self,
        t: DateTime<Utc>,
        nodes: Nodes<'a>,
    ) -> BoxFuture<'a, Result<(), ReplayError>> {
        Box::pin(async move {
            self.driver.advance_to(t, nodes).await?;
            self.observer
                .observe(self.driver.now(), nodes.clients())
                .await;
            Ok(())
        })
    }

    fn settle<'a>(&'a mut self, nodes: Nodes<'a>) -> BoxFuture<'a, Result<(), ReplayError>> {
        Box::pin(async move {
            self.driver.settle(nodes).await?;
            self.observer
                .observe(self.driver.now(), nodes.clients())
                .await;
            Ok(())
        })
    }
}
