//! Agencies on separate hosts: three real `tocsin node` processes, each in
//! a network namespace of its own (its own `eth0`, address and loopback, on
//! one bridge), started from one `tocsin pki init` federation whose
//! endpoints are the hosts' addresses, all on one scenario clock at 300
//! times real time (a FLASH alert's 10 minutes pass in 2 s).
//!
//! TR-MIT sends FLASH alerts to FR-DGSI and BE-VSSE steadily. Once BE-VSSE
//! holds a few, its link is cut (`eth0` down, as a pulled cable: its
//! connections go silent, not reset) and TR-MIT keeps sending, until
//! deadlines have fallen during the cut and TR-MIT has flagged BE-VSSE's
//! deliveries UNDELIVERED. Then the link heals, a few more alerts go, and
//! the test checks, through the operator API and then in each store:
//! every alert is held exactly once by each recipient and nothing else is;
//! every deadline that fell is flagged, once, as the protocol says
//! (UNDELIVERED where TR-MIT held no receipt when it fell, OVERDUE where it
//! did, OVERDUE on each recipient's own record); and the acknowledgements
//! made after healing all reach TR-MIT.
//!
//! It needs root (`ip netns add`); elsewhere it prints SKIPPED and passes,
//! unless `TOCSIN_REQUIRE_NETNS=1` (CI), which makes that a failure.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, ensure};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags};
use tocsin_core::{AgencyId, FederationId, from_timestamp};
use tocsin_proto::pb;
use tocsin_proto::pb::operator_client::OperatorClient;
use tocsin_store::{EventKind, Store};
use tocsin_testkit::flow::describe_delivery;
use tocsin_testkit::netns::Lan;
use tocsin_testkit::{
    DeadlineFlag, DeliveryState, Desk, NodeProcess, Probe, channel, delivery, draft, id_of,
    wait_for,
};
use tocsin_trust::pki::PkiLayout;
use tocsin_trust::tls::TlsMaterial;

mod common;

const FEDERATION: &str = "netns-test.tocsin";
const SENDER: &str = "TR-MIT";
/// The recipient whose link holds.
const STEADY: &str = "FR-DGSI";
/// The recipient whose link is cut.
const CUT: &str = "BE-VSSE";
const AGENCIES: [&str; 3] = [SENDER, STEADY, CUT];
/// Every host listens on the same port, as on separate machines.
const PORT: u16 = 7300;
/// Scenario time runs this many times real time: FLASH's 10 minutes in 2 s.
const SPEED: f64 = 300.0;
const CLOCK_START: &str = "2035-01-01T00:00:00Z";
const SUBMIT_EVERY: Duration = Duration::from_millis(150);
/// Alerts whose receipts TR-MIT holds from BE-VSSE before the cut.
const BEFORE_CUT: usize = 5;
/// Alerts sent during the cut whose deadlines must fall, and be flagged
/// UNDELIVERED, before it heals.
const FELL_IN_CUT: usize = 3;
/// Alerts sent after the heal.
const AFTER_HEAL: usize = 5;
/// How long before the heal a deadline must fall to be sure to find TR-MIT
/// without a receipt, whatever the tracker's latency.
const MARGIN: Duration = Duration::from_millis(500);
/// Bound on every wait.
const PATIENCE: Duration = Duration::from_secs(30);

/// When an alert was sent, as the submitter saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Before = 0,
    /// After BE-VSSE's link was cut, before it healed.
    Cut = 1,
    Healed = 2,
}

impl Phase {
    fn of(code: u8) -> Self {
        match code {
            0 => Self::Before,
            1 => Self::Cut,
            _ => Self::Healed,
        }
    }
}

/// One alert TR-MIT accepted.
#[derive(Debug, Clone)]
struct Sent {
    id: String,
    /// The phase when it was submitted (read before the call).
    phase: Phase,
    /// Its deadline, on the nodes' clock.
    due: DateTime<Utc>,
}

/// The nodes' clock: scenario time from `origin` (real) at [`SPEED`].
#[derive(Debug, Clone, Copy)]
struct ScenarioClock {
    start: DateTime<Utc>,
    origin: DateTime<Utc>,
}

impl ScenarioClock {
    fn now(&self) -> DateTime<Utc> {
        let real = (Utc::now() - self.origin).num_microseconds().unwrap_or(0) as f64;
        self.start + chrono::Duration::microseconds((real * SPEED) as i64)
    }

    /// A real duration, on the scenario clock.
    fn scaled(d: Duration) -> chrono::Duration {
        chrono::Duration::microseconds((d.as_micros() as f64 * SPEED) as i64)
    }
}

/// Gives `agency`'s node the shared scenario clock, and retry and timeout
/// settings for a LAN (no wait of many seconds for a silent peer).
fn configure(config: &Path, clock: ScenarioClock) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(config)?;
    let mut table: toml::Table = toml::from_str(&text)?;
    let mut section = |name: &str, values: &[(&str, toml::Value)]| {
        let t = table
            .entry(name)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let t = t.as_table_mut().expect("a table");
        for (k, v) in values {
            t.insert((*k).to_owned(), v.clone());
        }
    };
    let s = |v: &str| toml::Value::String(v.to_owned());
    section(
        "clock",
        &[
            ("start", s(&clock.start.to_rfc3339())),
            ("origin", s(&clock.origin.to_rfc3339())),
            ("speed", toml::Value::Float(SPEED)),
        ],
    );
    section(
        "outbox",
        &[
            ("initial_backoff", s("100ms")),
            ("max_backoff", s("500ms")),
            ("connect_timeout", s("1s")),
        ],
    );
    section("limits", &[("request_timeout", s("2s"))]);
    std::fs::write(config, toml::to_string(&table)?)?;
    Ok(())
}

/// Submits FLASH alerts from TR-MIT to both recipients until `stop`.
/// TR-MIT's own link never breaks, so any refusal fails the test.
async fn submit_steadily(
    tr: Desk,
    phase: Arc<AtomicU8>,
    sent: Arc<Mutex<Vec<Sent>>>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(SUBMIT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.load(Ordering::SeqCst) {
        tick.tick().await;
        let now = Phase::of(phase.load(Ordering::SeqCst));
        let mut alert = draft(&[STEADY, CUT]);
        alert.precedence = pb::Precedence::Flash as i32;
        let record = tr
            .submit(alert)
            .await
            .map_err(|s| anyhow::anyhow!("TR-MIT refused an alert ({now:?}): {s}"))?;
        let due = record
            .deliveries
            .first()
            .and_then(|d| d.due_at.as_ref())
            .and_then(from_timestamp)
            .context("a delivery without its deadline")?;
        sent.lock().unwrap().push(Sent {
            id: id_of(&record),
            phase: now,
            due,
        });
    }
    Ok(())
}

fn snapshot(sent: &Mutex<Vec<Sent>>) -> Vec<Sent> {
    sent.lock().unwrap().clone()
}

/// TR-MIT's outbound records, by alert id.
async fn outbox(tr: &Desk) -> Result<HashMap<String, pb::AlertRecord>, String> {
    let records = tr.outbox().await.map_err(|s| format!("TR-MIT: {s}"))?;
    Ok(records.into_iter().map(|r| (id_of(&r), r)).collect())
}

fn open_read_only(db: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    Ok(conn)
}

/// `(event id, kind, alert id, agency)` of every event of `kinds`.
fn events(db: &Path, kinds: &[EventKind]) -> anyhow::Result<Vec<(i64, i64, String, String)>> {
    let conn = open_read_only(db)?;
    let codes: Vec<String> = kinds.iter().map(|k| k.code().to_string()).collect();
    let sql = format!(
        "SELECT id, kind, alert_id, agency FROM events WHERE kind IN ({}) ORDER BY id",
        codes.join(", ")
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The ids of the alerts a store holds as received.
fn received(db: &Path) -> anyhow::Result<Vec<String>> {
    let conn = open_read_only(db)?;
    let mut stmt = conn.prepare("SELECT id FROM alerts WHERE direction = 2")?;
    let ids = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_and_every_deadline_fires_across_a_cut_link() -> anyhow::Result<()> {
    tocsin_trust::install_crypto_provider();
    // Declared first, so dropped last: after the nodes in it are killed.
    let Some(lan) = Lan::build_or_skip(AGENCIES)? else {
        return Ok(());
    };
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let addr = |agency: &str| -> anyhow::Result<SocketAddr> {
        Ok(SocketAddr::new(lan.host(agency)?.addr().into(), PORT))
    };

    // One federation file for all hosts, as for separate machines.
    let mut text = format!("[federation]\nid = \"{FEDERATION}\"\n");
    for agency in AGENCIES {
        text.push_str(&format!(
            "\n[[agencies]]\nid = \"{agency}\"\nendpoint = \"{}\"\n",
            addr(agency)?
        ));
    }
    let federation = dir.join("federation.toml");
    std::fs::write(&federation, text)?;
    common::pki_init(
        dir,
        &federation,
        &[(SENDER, "alice"), (STEADY, "bob"), (CUT, "carol")],
    );
    let layout = PkiLayout::new(dir.join("pki"));
    let clock = ScenarioClock {
        start: CLOCK_START.parse()?,
        origin: Utc::now(),
    };
    let mut nodes: Vec<NodeProcess> = Vec::new();
    for agency in AGENCIES {
        let id = AgencyId::new(agency)?;
        configure(&layout.agency_dir(&id).join("node.toml"), clock)?;
        let node = lan.host(agency)?.wrap(common::node(dir, agency));
        nodes.push(node.start().await?);
    }
    let fed = FederationId::new(FEDERATION)?;
    let desk = |agency: &str, name: &str| -> anyhow::Result<Desk> {
        let id = AgencyId::new(agency)?;
        let material = TlsMaterial::load(
            &layout.ca_cert(),
            &layout.operator_cert(&id, name),
            &layout.operator_key(&id, name),
            &fed,
        )?;
        let client = OperatorClient::new(channel(addr(agency)?, &material, &id)?);
        Ok(Desk::new(agency, client).with_patience(PATIENCE))
    };
    let (tr, fr, be) = (
        desk(SENDER, "alice")?,
        desk(STEADY, "bob")?,
        desk(CUT, "carol")?,
    );
    let db = |agency: &str| -> anyhow::Result<PathBuf> {
        let data = layout.agency_dir(&AgencyId::new(agency)?).join("data");
        Ok(Store::database_path(&data))
    };

    let phase = Arc::new(AtomicU8::new(Phase::Before as u8));
    let sent = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let submitter = tokio::spawn(submit_steadily(
        tr.clone(),
        phase.clone(),
        sent.clone(),
        stop.clone(),
    ));

    // The waits below poll through these (a probe is called again and
    // again, and each call's future borrows them).
    let (tr, log) = (&tr, &sent);

    // Before the cut: TR-MIT holds BE-VSSE's receipts for a few alerts.
    let receipted_before: HashSet<String> = wait_for(
        PATIENCE,
        &format!("TR-MIT to hold BE-VSSE's receipts for {BEFORE_CUT} alerts"),
        move || async move {
            let records = match outbox(tr).await {
                Ok(r) => r,
                Err(e) => return Probe::NotYet(e),
            };
            let done: HashSet<String> = records
                .iter()
                .filter(|(_, r)| {
                    delivery(r, CUT).is_some_and(|d| d.state == DeliveryState::Delivered as i32)
                })
                .map(|(id, _)| id.clone())
                .collect();
            if done.len() >= BEFORE_CUT {
                Probe::Done(done)
            } else {
                Probe::NotYet(format!("it holds {}", done.len()))
            }
        },
    )
    .await?;

    // The cut, while alerts flow: until deadlines of alerts sent during it
    // have fallen (with a margin) and TR-MIT flagged them UNDELIVERED.
    lan.cut(CUT)?;
    let cut_at = std::time::Instant::now();
    phase.store(Phase::Cut as u8, Ordering::SeqCst);
    let margin = ScenarioClock::scaled(MARGIN);
    wait_for(
        PATIENCE,
        &format!(
            "TR-MIT to flag UNDELIVERED BE-VSSE's deliveries of {FELL_IN_CUT} alerts sent during the cut"
        ),
        move || async move {
            let records = match outbox(tr).await {
                Ok(r) => r,
                Err(e) => return Probe::NotYet(e),
            };
            let fell = snapshot(log)
                .into_iter()
                .filter(|s| s.phase == Phase::Cut && s.due + margin <= clock.now())
                .filter(|s| {
                    records
                        .get(&s.id)
                        .and_then(|r| delivery(r, CUT))
                        .is_some_and(|d| d.flag == DeadlineFlag::Undelivered as i32)
                })
                .count();
            if fell >= FELL_IN_CUT {
                Probe::Done(())
            } else {
                Probe::NotYet(format!("{fell} are"))
            }
        },
    )
    .await?;
    let healed_at = clock.now();
    lan.heal(CUT)?;
    let cut_for = cut_at.elapsed();
    phase.store(Phase::Healed as u8, Ordering::SeqCst);
    wait_for(
        PATIENCE,
        &format!("TR-MIT to accept {AFTER_HEAL} alerts after the heal"),
        move || async move {
            let n = snapshot(log)
                .iter()
                .filter(|s| s.phase == Phase::Healed)
                .count();
            if n >= AFTER_HEAL {
                Probe::Done(())
            } else {
                Probe::NotYet(format!("it accepted {n}"))
            }
        },
    )
    .await?;
    stop.store(true, Ordering::SeqCst);
    tokio::time::timeout(PATIENCE, submitter)
        .await
        .context("the submitter stops")???;
    let sent = snapshot(log);
    let ids: HashSet<String> = sent.iter().map(|s| s.id.clone()).collect();
    ensure!(ids.len() == sent.len(), "an id was accepted twice");
    let ids = &ids;

    // TR-MIT: both recipients' receipts for every alert, and every
    // deadline flagged (a delivery that missed its deadline reads OVERDUE
    // once receipted; its UNDELIVERED is in the events, checked below).
    wait_for(
        PATIENCE,
        &format!(
            "TR-MIT to hold receipts from both recipients of all {} alerts, each deadline flagged",
            sent.len()
        ),
        move || async move {
            let records = match outbox(tr).await {
                Ok(r) => r,
                Err(e) => return Probe::NotYet(e),
            };
            for id in ids {
                for recipient in [STEADY, CUT] {
                    let d = records.get(id).and_then(|r| delivery(r, recipient));
                    match d {
                        Some(d)
                            if d.state == DeliveryState::Delivered as i32
                                && d.flag != DeadlineFlag::None as i32 => {}
                        Some(d) => {
                            return Probe::NotYet(format!(
                                "{recipient}'s delivery of {id} is {}",
                                describe_delivery(d)
                            ));
                        }
                        None => return Probe::NotYet(format!("TR-MIT does not list {id}")),
                    }
                }
            }
            Probe::Done(())
        },
    )
    .await?;
    // Each recipient: every alert, nothing else, each flagged OVERDUE on
    // its own record (none was answered in time).
    for recipient in [&fr, &be] {
        wait_for(
            PATIENCE,
            &format!(
                "{} to hold exactly the {} alerts sent, each flagged OVERDUE",
                recipient.agency(),
                ids.len()
            ),
            move || async move {
                let inbox = match recipient.inbox().await {
                    Ok(r) => r,
                    Err(s) => return Probe::NotYet(format!("its inbox: {s}")),
                };
                let held: HashSet<String> = inbox.iter().map(id_of).collect();
                if let Some(extra) = held.difference(ids).next() {
                    return Probe::Done(Err(format!("it holds {extra}, which TR-MIT never sent")));
                }
                let unflagged = inbox
                    .iter()
                    .filter(|r| r.flag != DeadlineFlag::Overdue as i32)
                    .count();
                if held.len() == ids.len() && unflagged == 0 {
                    Probe::Done(Ok(()))
                } else {
                    Probe::NotYet(format!(
                        "it holds {} of them, {unflagged} not flagged OVERDUE",
                        held.len()
                    ))
                }
            },
        )
        .await?
        .map_err(anyhow::Error::msg)?;
    }

    // After the heal, both recipients answer everything, late; every
    // answer reaches TR-MIT.
    for recipient in [&fr, &be] {
        for id in ids {
            let ack = recipient
                .ack(id, pb::Disposition::Noted, "seen after the cut")
                .await
                .map_err(|s| anyhow::anyhow!("{} acknowledging {id}: {s}", recipient.agency()))?;
            ensure!(
                ack.late_by_seconds > 0,
                "{}'s acknowledgement of {id} is not late: {ack:?}",
                recipient.agency()
            );
        }
    }
    wait_for(
        PATIENCE,
        "TR-MIT to hold one acknowledgement from each recipient of every alert",
        move || async move {
            let records = match outbox(tr).await {
                Ok(r) => r,
                Err(e) => return Probe::NotYet(e),
            };
            for id in ids {
                for recipient in [STEADY, CUT] {
                    let acks = records
                        .get(id)
                        .and_then(|r| delivery(r, recipient))
                        .map_or(0, |d| d.acknowledgements.len());
                    if acks != 1 {
                        return Probe::NotYet(format!("it holds {acks} from {recipient} for {id}"));
                    }
                }
            }
            match tr.awaiting().await {
                Ok(a) if a.is_empty() => Probe::Done(()),
                Ok(a) => Probe::NotYet(format!("it still awaits answers to {} alerts", a.len())),
                Err(s) => Probe::NotYet(format!("TR-MIT: {s}")),
            }
        },
    )
    .await?;
    for node in &mut nodes {
        node.terminate().await?;
    }
    let panics: Vec<String> = nodes
        .iter()
        .flat_map(|n| {
            n.log()
                .lines()
                .filter(|l| l.contains("panicked"))
                .map(|l| format!("{}: {l}", n.agency()))
                .collect::<Vec<_>>()
        })
        .collect();
    ensure!(panics.is_empty(), "a node panicked: {panics:#?}");

    // The stores, read directly.
    let mut problems: Vec<String> = Vec::new();
    // (1) Each recipient received every alert exactly once, and flagged
    // each deadline once.
    for recipient in [STEADY, CUT] {
        let db = db(recipient)?;
        let held: HashSet<String> = received(&db)?.into_iter().collect();
        for id in ids.difference(&held) {
            problems.push(format!("{recipient} never stored {id}: lost"));
        }
        for id in held.difference(ids) {
            problems.push(format!("{recipient} stored {id}, which TR-MIT never sent"));
        }
        let mut count: HashMap<(i64, String), usize> = HashMap::new();
        for (_, kind, alert, _) in events(&db, &[EventKind::Received, EventKind::Overdue])? {
            *count.entry((kind, alert)).or_default() += 1;
        }
        for id in ids {
            for (kind, what) in [
                (EventKind::Received, "RECEIVED"),
                (EventKind::Overdue, "OVERDUE"),
            ] {
                let n = count.get(&(kind.code(), id.clone())).copied().unwrap_or(0);
                if n != 1 {
                    problems.push(format!("{recipient} recorded {id} {what} {n} times"));
                }
            }
        }
    }
    // (2) TR-MIT: for each delivery, one receipt, one deadline flag, and
    // the flag the protocol gives: UNDELIVERED if it fell before the
    // receipt came, OVERDUE if after; one acknowledgement.
    let mut timeline: HashMap<(String, String), Vec<(i64, i64)>> = HashMap::new();
    for (event, kind, alert, agency) in events(
        &db(SENDER)?,
        &[
            EventKind::Delivered,
            EventKind::Overdue,
            EventKind::Undelivered,
            EventKind::Acknowledged,
        ],
    )? {
        timeline
            .entry((alert, agency))
            .or_default()
            .push((event, kind));
    }
    let (delivered, overdue, undelivered, acknowledged) = (
        EventKind::Delivered.code(),
        EventKind::Overdue.code(),
        EventKind::Undelivered.code(),
        EventKind::Acknowledged.code(),
    );
    let mut flags: HashMap<(String, &str), i64> = HashMap::new();
    for s in &sent {
        for recipient in [STEADY, CUT] {
            let events = timeline
                .get(&(s.id.clone(), recipient.to_owned()))
                .cloned()
                .unwrap_or_default();
            let of = |k: i64| {
                events
                    .iter()
                    .filter(|(_, kind)| *kind == k)
                    .collect::<Vec<_>>()
            };
            let (receipts, deadline, acks) = (
                of(delivered),
                events
                    .iter()
                    .filter(|(_, k)| *k == overdue || *k == undelivered)
                    .collect::<Vec<_>>(),
                of(acknowledged),
            );
            let what = format!("TR-MIT's delivery of {} to {recipient}", s.id);
            if receipts.len() != 1 || deadline.len() != 1 || acks.len() != 1 {
                problems.push(format!(
                    "{what}: {} DELIVERED, {} OVERDUE or UNDELIVERED, {} ACKNOWLEDGED events",
                    receipts.len(),
                    deadline.len(),
                    acks.len()
                ));
                continue;
            }
            let ((receipt_at, _), (flag_at, flag)) = (receipts[0], deadline[0]);
            let expected = if flag_at < receipt_at {
                undelivered
            } else {
                overdue
            };
            if *flag != expected {
                problems.push(format!(
                    "{what}: flagged {} (event {flag_at}) with its receipt at event {receipt_at}",
                    if *flag == overdue {
                        "OVERDUE"
                    } else {
                        "UNDELIVERED"
                    }
                ));
            }
            flags.insert((s.id.clone(), recipient), *flag);
        }
    }
    // (3) And the flags the link's story implies.
    let mut fell_in_cut = 0;
    for s in &sent {
        let be_flag = flags.get(&(s.id.clone(), CUT)).copied();
        if flags
            .get(&(s.id.clone(), STEADY))
            .is_some_and(|f| *f != overdue)
        {
            problems.push(format!(
                "FR-DGSI's delivery of {} is not OVERDUE: its link never broke",
                s.id
            ));
        }
        if receipted_before.contains(&s.id) && be_flag.is_some_and(|f| f != overdue) {
            problems.push(format!(
                "BE-VSSE's delivery of {} was receipted before the cut, yet is not OVERDUE",
                s.id
            ));
        }
        if s.phase == Phase::Cut && s.due + margin <= healed_at {
            fell_in_cut += 1;
            if be_flag.is_some_and(|f| f != undelivered) {
                problems.push(format!(
                    "BE-VSSE's delivery of {}, sent and due during the cut, is not UNDELIVERED",
                    s.id
                ));
            }
        }
    }
    let count = |recipient: &str, flag: i64| {
        flags
            .iter()
            .filter(|((_, r), f)| *r == recipient && **f == flag)
            .count()
    };
    let by_phase = |p: Phase| sent.iter().filter(|s| s.phase == p).count();
    let report = format!(
        "netns test: {} alerts ({} before the cut, {} during it, {} after), cut for {:.1} s; \
         at TR-MIT, FR-DGSI's deliveries {} OVERDUE, BE-VSSE's {} OVERDUE and {} UNDELIVERED \
         ({fell_in_cut} due during the cut); problems {}",
        sent.len(),
        by_phase(Phase::Before),
        by_phase(Phase::Cut),
        by_phase(Phase::Healed),
        cut_for.as_secs_f64(),
        count(STEADY, overdue),
        count(CUT, overdue),
        count(CUT, undelivered),
        problems.len(),
    );
    println!("{report}");
    assert!(problems.is_empty(), "{report}\n{problems:#?}");
    assert!(fell_in_cut >= FELL_IN_CUT, "{report}");
    assert!(receipted_before.len() >= BEFORE_CUT, "{report}");
    Ok(())
}

/// What the namespaces rely on, checked without them: a node run under a
/// wrapper that execs it (`env` here, `ip netns exec` there) is the process
/// its `NodeProcess` holds, so signals reach the node itself.
#[tokio::test]
async fn a_node_under_a_wrapper_is_the_process_its_handle_signals() -> anyhow::Result<()> {
    tocsin_trust::install_crypto_provider();
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    common::two_agencies(dir, &[]);
    let mut node = common::node(dir, SENDER)
        .wrapper("env", ["TOCSIN_WRAPPED=1"])
        .start()
        .await?;
    let pid = node.pid().context("a pid")?;
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))?;
    assert_eq!(
        exe.canonicalize()?,
        Path::new(common::BIN).canonicalize()?,
        "pid {pid} is not the node"
    );
    let environ = std::fs::read(format!("/proc/{pid}/environ"))?;
    assert!(
        environ.split(|b| *b == 0).any(|v| v == b"TOCSIN_WRAPPED=1"),
        "the node did not run under the wrapper"
    );
    node.terminate().await?;
    Ok(())
}
