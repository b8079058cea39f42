//! The live view of a replay on a terminal: the narrative lines of
//! [`tocsin_scenario::replay`], and a table per agency refreshed in place
//! while the replay waits for scenario time (plain lines elsewhere). With
//! `--web`, each refresh feeds the federation view as well.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::Serialize;
use tocsin_core::AgencyId;
use tocsin_fedview::View;
use tocsin_proto::pb;
use tocsin_proto::pb::operator_client::OperatorClient;
use tocsin_scenario::{Clients, ClockDriver, Nodes, Observer, ReplayError, ScaledDriver};
use tonic::transport::Channel;

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

/// Counts per agency, for the live table.
#[derive(Debug, Default, Clone, Serialize)]
struct Counts {
    sent: usize,
    delivered: usize,
    acknowledged: usize,
    awaiting: usize,
    overdue: usize,
    escalated: usize,
    received: usize,
    owed: usize,
    flags: usize,
}

async fn counts(client: &mut OperatorClient<Channel>) -> Option<Counts> {
    let alerts = client
        .list_alerts(pb::ListAlertsRequest {
            limit: 1000,
            ..Default::default()
        })
        .await
        .ok()?
        .into_inner()
        .alerts;
    let flags = client
        .list_subject_flags(pb::ListSubjectFlagsRequest {})
        .await
        .ok()?
        .into_inner()
        .flags
        .len();
    let mut c = Counts {
        flags,
        ..Default::default()
    };
    for a in &alerts {
        if a.direction == pb::Direction::Outbound as i32 {
            c.sent += 1;
            for d in &a.deliveries {
                let acked = !d.acknowledgements.is_empty();
                c.delivered += usize::from(d.state == pb::DeliveryState::Delivered as i32);
                c.acknowledged += usize::from(acked);
                c.awaiting += usize::from(!acked && a.status == 0);
                c.overdue += usize::from(!acked && d.flag != 0);
                c.escalated += usize::from(d.ladder >= pb::LadderStep::Escalated as i32);
            }
        } else {
            c.received += 1;
            c.owed += usize::from(a.acknowledgements.is_empty() && a.status == 0);
        }
    }
    Some(c)
}

/// What is on the terminal: narrative lines, and below them the table.
#[derive(Debug)]
pub(crate) struct Progress {
    tty: bool,
    table_lines: usize,
    quiet: bool,
}

impl Progress {
    /// Prints to stdout, nothing at all if `quiet` (`--json`).
    pub(crate) fn new(quiet: bool) -> Arc<Mutex<Self>> {
        Arc::new(Mutex::new(Self {
            tty: std::io::stdout().is_terminal(),
            table_lines: 0,
            quiet,
        }))
    }

    /// Whether the table is drawn: only on a terminal, and not under
    /// `--json`; its counts are fetched only then.
    fn live(&self) -> bool {
        self.tty && !self.quiet
    }

    /// A narrative line, above the table.
    pub(crate) fn line(&mut self, text: &str) {
        if self.quiet {
            return;
        }
        let mut out = std::io::stdout().lock();
        if self.tty && self.table_lines > 0 {
            // Move above the table and clear it; the line goes there.
            let _ = write!(out, "\x1b[{}A\x1b[J", self.table_lines);
            self.table_lines = 0;
        }
        let _ = writeln!(out, "{text}");
    }

    fn table(&mut self, now: DateTime<Utc>, rows: &BTreeMap<AgencyId, Option<Counts>>) {
        if !self.live() {
            return;
        }
        let mut t = comfy_table::Table::new();
        t.load_preset(comfy_table::presets::NOTHING);
        t.set_header(vec![
            "AGENCY",
            "SENT",
            "DELIVERED",
            "ACKED",
            "AWAITING",
            "OVERDUE",
            "ESCALATED",
            "RECEIVED",
            "OWED",
            "FLAGS",
        ]);
        for (agency, c) in rows {
            match c {
                Some(c) => t.add_row(vec![
                    agency.to_string(),
                    c.sent.to_string(),
                    c.delivered.to_string(),
                    c.acknowledged.to_string(),
                    c.awaiting.to_string(),
                    c.overdue.to_string(),
                    c.escalated.to_string(),
                    c.received.to_string(),
                    c.owed.to_string(),
                    if c.flags > 0 {
                        format!("!! {}", c.flags)
                    } else {
                        "0".into()
                    },
                ]),
                None => t.add_row(vec![agency.to_string(), "(down)".into()]),
            };
        }
        let text = format!("-- scenario time {} --\n{t}", stamp(now));
        let mut out = std::io::stdout().lock();
        if self.table_lines > 0 {
            let _ = write!(out, "\x1b[{}A\x1b[J", self.table_lines);
        }
        let _ = writeln!(out, "{text}");
        self.table_lines = text.lines().count();
    }
}

/// Replays on real time ([`ScaledDriver`]), redrawing the table (and
/// feeding the federation view, if there is one) every 400 ms while it
/// waits.
pub(crate) struct LiveDriver {
    inner: ScaledDriver,
    progress: Arc<Mutex<Progress>>,
    view: Option<View>,
}

impl LiveDriver {
    pub(crate) fn new(
        inner: ScaledDriver,
        progress: Arc<Mutex<Progress>>,
        view: Option<View>,
    ) -> Self {
        Self {
            inner,
            progress,
            view,
        }
    }

    /// Draws the table once, with every agency's counts now, and feeds
    /// the view.
    pub(crate) async fn refresh(&self, clients: &Clients) {
        let now = self.inner.clock().at(Utc::now());
        refresh(&self.progress, self.view.as_ref(), now, clients).await;
    }
}

async fn refresh(
    progress: &Mutex<Progress>,
    view: Option<&View>,
    now: DateTime<Utc>,
    clients: &Clients,
) {
    if let Some(view) = view {
        view.observe(now, clients).await;
    }
    if !lock(progress).live() {
        return;
    }
    let mut rows = BTreeMap::new();
    for (agency, c) in clients {
        rows.insert(agency.clone(), counts(&mut c.operator.clone()).await);
    }
    lock(progress).table(now, &rows);
}

/// The progress, even if a panic elsewhere poisoned it: it only prints.
pub(crate) fn lock(progress: &Mutex<Progress>) -> std::sync::MutexGuard<'_, Progress> {
    progress.lock().unwrap_or_else(|e| e.into_inner())
}

impl ClockDriver for LiveDriver {
    fn now(&self) -> DateTime<Utc> {
        self.inner.now()
    }

    fn advance_to<'a>(
        &'a mut self,
        t: DateTime<Utc>,
        nodes: Nodes<'a>,
    ) -> BoxFuture<'a, Result<(), ReplayError>> {
        Box::pin(async move {
            let clock = self.inner.clock().clone();
            let progress = self.progress.clone();
            let view = self.view.clone();
            let wait = self.inner.advance_to(t, nodes);
            tokio::pin!(wait);
            let mut tick = tokio::time::interval(Duration::from_millis(400));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let live = lock(&progress).live() || view.is_some();
            loop {
                tokio::select! {
                    r = &mut wait => return r,
                    _ = tick.tick(), if live => {
                        let now = clock.at(Utc::now());
                        refresh(&progress, view.as_ref(), now, nodes.clients()).await;
                    }
                }
            }
        })
    }

    fn settle<'a>(&'a mut self, nodes: Nodes<'a>) -> BoxFuture<'a, Result<(), ReplayError>> {
        self.inner.settle(nodes)
    }
}
