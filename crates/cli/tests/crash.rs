//! Crash safety, measured: two real `tocsin node` processes, a steady
//! stream of alerts from TR-MIT to FR-DGSI and of acknowledgements back,
//! while one node or the other is killed with SIGKILL at random moments and
//! restarted on the same port and data directory. Afterwards the originator
//! is asked what it still awaits, both SQLite stores are read directly, and
//! every promise made to an operator is checked.
//!
//! The run must carry a real volume ([`MIN_ACCEPTED`], [`MIN_ACKS`]). A
//! call that fails while its node is down or being killed is retried; one
//! that fails while its node served throughout is retried too, but counted
//! and reported, and more than [`MAX_UNEXPECTED`] fail the test.
//!
//! The seed of the chaos is printed; `TOCSIN_CRASH_SEED=N` replays its
//! choices (which node, when, how long it stays down).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use prost::Message;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rusqlite::{Connection, OpenFlags};
use tocsin_core::{AgencyId, AlertId, FederationId};
use tocsin_proto::pb;
use tocsin_proto::pb::operator_client::OperatorClient;
use tocsin_store::{EventKind, Store};
use tocsin_testkit::{NodeProcess, channel, draft};
use tocsin_trust::Verifier;
use tocsin_trust::pki::PkiLayout;
use tocsin_trust::tls::TlsMaterial;
use tokio::time::{Instant, sleep, timeout};
use tonic::transport::Channel;

mod common;

const SENDER: &str = "TR-MIT";
const RECIPIENT: &str = "FR-DGSI";
const FEDERATION: &str = "crash-test.tocsin";

/// Kills in all, split at random between the two nodes.
const KILLS: usize = 80;
/// Concurrent submitters, each submitting one alert per interval.
const SUBMITTERS: usize = 2;
const SUBMIT_EVERY: Duration = Duration::from_millis(25);
/// One operator call; a node being killed answers within this or never.
const CALL: Duration = Duration::from_secs(3);
/// Bound on every wait: for a node to serve, a submission to be accepted,
/// the stores to drain.
const PATIENCE: Duration = Duration::from_secs(30);
/// The volume the run must reach: well under half of what it reaches on
/// the 2-core development machine, even loaded by other builds (840 to 920
/// alerts accepted and 830 to 910 acknowledgements in 14 s of chaos), so
/// that a loaded CI machine passes.
const MIN_ACCEPTED: usize = 300;
const MIN_ACKS: usize = 250;
/// Failed calls that no kill explains (the node they went to served
/// throughout, and answered neither OK nor a refusal): each is retried,
/// reported, and more than this many fail the test.
const MAX_UNEXPECTED: usize = 3;

/// Retryable or not: a node being killed makes calls fail in many ways,
/// and a submission with a client-chosen id is safe to retry, but these
/// answers mean the node judged the request itself.
fn judged(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::InvalidArgument
            | tonic::Code::AlreadyExists
            | tonic::Code::PermissionDenied
            | tonic::Code::NotFound
            | tonic::Code::FailedPrecondition
    )
}

/// Whether a node serves, and since which start: even while it serves,
/// odd while it is down (killed, or starting). Each kill and each start
/// moves it on, so a call that fails while it stayed even failed with no
/// kill to explain it.
#[derive(Default)]
struct Liveness(AtomicU64);

impl Liveness {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
    fn up(&self) {
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |e| {
                (!e.is_multiple_of(2)).then_some(e + 1)
            });
    }
    fn down(&self) {
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |e| {
                e.is_multiple_of(2).then_some(e + 1)
            });
    }
}

/// One agency's node process, and whether it serves.
struct Node {
    process: NodeProcess,
    live: Arc<Liveness>,
    kills: usize,
}

impl Node {
    fn new(process: NodeProcess) -> Self {
        let live = Arc::new(Liveness::default());
        // Started, not yet serving.
        live.down();
        Self {
            process,
            live,
            kills: 0,
        }
    }

    /// (Re)starts the node if it is not running, and waits until it serves.
    async fn serve(&mut self) -> anyhow::Result<()> {
        if !self.process.is_running() {
            self.process.respawn()?;
        }
        self.process.wait_serving().await?;
        self.live.up();
        Ok(())
    }

    /// SIGKILL.
    fn kill(&mut self) -> anyhow::Result<()> {
        self.live.down();
        self.process.kill()?;
        self.kills += 1;
        Ok(())
    }
}

/// How a call ended, when it did not answer OK.
enum Failed {
    /// The node it went to was killed or down meanwhile: retry.
    Explained,
    /// The node judged the request itself (see [`judged`]): the test fails.
    Judged(tonic::Status),
    /// Neither: retried, counted, reported.
    Unexpected(String),
}

/// Makes one call to a node whose liveness is `live`, within [`CALL`].
async fn call<T>(
    live: &Liveness,
    what: &str,
    asked: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, Failed> {
    let before = live.now();
    let answer = timeout(CALL, asked).await;
    let unexplained = before.is_multiple_of(2) && live.now() == before;
    match answer {
        Ok(Ok(answer)) => Ok(answer.into_inner()),
        Ok(Err(status)) if judged(&status) => Err(Failed::Judged(status)),
        _ if !unexplained => Err(Failed::Explained),
        Ok(Err(status)) => Err(Failed::Unexpected(format!(
            "{what}: {:?} {:?}",
            status.code(),
            status.message()
        ))),
        Err(_) => Err(Failed::Unexpected(format!(
            "{what}: no answer within {CALL:?}"
        ))),
    }
}

/// What the operators were told.
#[derive(Default)]
struct Ledger {
    /// Alerts whose SubmitAlert answered OK.
    accepted: Mutex<Vec<String>>,
    /// Of those, how many took more than one call (the sender was down or
    /// died while answering; the retry carried the same id).
    resubmitted: AtomicUsize,
    /// (acknowledgement id, alert id) whose AcknowledgeAlert answered OK.
    acks: Mutex<Vec<(String, String)>>,
    /// Calls that failed while their node was down or being killed.
    explained: AtomicUsize,
    /// Calls that failed with no kill to explain them (see [`Failed`]).
    unexpected: Mutex<Vec<String>>,
}

impl Ledger {
    /// Counts a failed call, and says whether to retry it.
    fn failed(&self, failed: Failed) -> Result<(), tonic::Status> {
        match failed {
            Failed::Explained => {
                self.explained.fetch_add(1, Ordering::Relaxed);
            }
            Failed::Unexpected(what) => self.unexpected.lock().unwrap().push(what),
            Failed::Judged(status) => return Err(status),
        }
        Ok(())
    }
}

/// Submits alerts to FR-DGSI at a steady pace until `stop`; each with an id
/// of its own, retried with that id until the sender answers OK.
async fn submit_steadily(
    mut op: OperatorClient<Channel>,
    live: Arc<Liveness>,
    ledger: Arc<Ledger>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(SUBMIT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let mut alert = draft(&[RECIPIENT]);
        let id = AlertId::generate().to_string();
        alert.id = id.clone();
        let deadline = Instant::now() + PATIENCE;
        let mut calls = 0;
        loop {
            calls += 1;
            let asked = op.submit_alert(pb::SubmitAlertRequest {
                alert: Some(alert.clone()),
            });
            match call(&live, &format!("SubmitAlert of {id}"), asked).await {
                Ok(answer) => {
                    let stored = answer.record.and_then(|r| r.alert).map(|a| a.id);
                    anyhow::ensure!(
                        stored.as_deref() == Some(id.as_str()),
                        "accepted {stored:?} for {id}"
                    );
                    break;
                }
                Err(failed) => {
                    if let Err(status) = ledger.failed(failed) {
                        bail!("SubmitAlert of {id} refused after {calls} call(s): {status:?}")
                    }
                }
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{id} not accepted within {PATIENCE:?}"
            );
            sleep(Duration::from_millis(20)).await;
        }
        if calls > 1 {
            ledger.resubmitted.fetch_add(1, Ordering::Relaxed);
        }
        ledger.accepted.lock().unwrap().push(id);
    }
    Ok(())
}

/// Acknowledges, on FR-DGSI, every alert it owes an answer to; once `stop`
/// is set, returns when it owes none.
async fn acknowledge_steadily(
    mut op: OperatorClient<Channel>,
    live: Arc<Liveness>,
    ledger: Arc<Ledger>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        let asked = op.list_alerts(pb::ListAlertsRequest {
            direction: pb::Direction::Inbound as i32,
            limit: 200,
            filter: pb::list_alerts_request::Filter::Owed as i32,
        });
        let owed = match call(&live, "ListAlerts owed", asked).await {
            Ok(answer) => answer.alerts,
            Err(failed) => {
                if let Err(status) = ledger.failed(failed) {
                    bail!("ListAlerts owed refused: {status:?}")
                }
                sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        if owed.is_empty() {
            if stopping {
                return Ok(());
            }
            sleep(Duration::from_millis(30)).await;
            continue;
        }
        for record in owed {
            let alert_id = record.alert.map(|a| a.id).unwrap_or_default();
            let asked = op.acknowledge_alert(pb::AcknowledgeAlertRequest {
                alert_id: alert_id.clone(),
                disposition: pb::Disposition::Noted as i32,
                note: String::new(),
            });
            let what = format!("AcknowledgeAlert of {alert_id}");
            match call(&live, &what, asked).await {
                Ok(answer) => {
                    let ack = answer
                        .acknowledgement
                        .and_then(|r| r.acknowledgement)
                        .context("AcknowledgeAlert answered without the acknowledgement")?;
                    anyhow::ensure!(ack.alert_id == alert_id, "ack for {}", ack.alert_id);
                    ledger.acks.lock().unwrap().push((ack.id, alert_id));
                }
                // Not told accepted: still owed if it was not committed,
                // and acknowledged again on the next pass.
                Err(failed) => {
                    if let Err(status) = ledger.failed(failed) {
                        bail!("AcknowledgeAlert of {alert_id} refused: {status:?}")
                    }
                }
            }
        }
    }
}

fn open_read_only(db: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    Ok(conn)
}

/// One number from a store, read beside the node (WAL lets it).
async fn count(db: &Path, sql: &'static str) -> anyhow::Result<i64> {
    let db = db.to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<i64> {
        Ok(open_read_only(&db)?.query_row(sql, [], |r| r.get(0))?)
    })
    .await?
}

/// The sender's deliveries still pending: alerts accepted but not yet
/// receipted, whose delivery the kill about to be survived interrupts.
async fn pending(db: &Path) -> anyhow::Result<Vec<String>> {
    let db = db.to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
        let conn = open_read_only(&db)?;
        let mut stmt = conn.prepare("SELECT alert_id FROM deliveries WHERE state = 1")?;
        let ids = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(ids)
    })
    .await?
}

/// Polls `sql` (a count) until it is zero.
async fn until_zero(db: &Path, sql: &'static str, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let n = count(db, sql).await?;
        if n == 0 {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "after {PATIENCE:?}, {n} left: {what}"
        );
        sleep(Duration::from_millis(50)).await;
    }
}

/// Everything the test found, by kind.
#[derive(Debug, Default)]
struct Findings {
    lost: Vec<String>,
    unexpected: Vec<String>,
    duplicated: Vec<String>,
    /// Acknowledgements the originator refused for good.
    refused: Vec<String>,
    recovered: usize,
}

fn rows<T>(
    conn: &Connection,
    sql: &str,
    f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> anyhow::Result<Vec<T>> {
    let mut stmt = conn.prepare(sql)?;
    let out = stmt.query_map([], f)?.collect::<Result<_, _>>()?;
    Ok(out)
}

/// Events of `kind` recorded more than once for one alert.
fn repeated_events(conn: &Connection, node: &str, kind: i64) -> anyhow::Result<Vec<String>> {
    let sql = format!(
        "SELECT alert_id, COUNT(*) FROM events WHERE kind = {kind} GROUP BY alert_id HAVING COUNT(*) > 1"
    );
    Ok(rows(conn, &sql, |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })?
    .into_iter()
    .map(|(id, n)| format!("{node}: event kind {kind} recorded {n} times for {id}"))
    .collect())
}

/// A receipt the sender holds for `id` counts if FR-DGSI signed it for
/// exactly the alert both hold (`held`: its digest and the receipt it
/// issued) and it is the receipt FR-DGSI stored.
fn check_receipt(
    verifier: &Verifier,
    id: &str,
    receipt: &[u8],
    sent_digest: Option<&Vec<u8>>,
    held: Option<(&Vec<u8>, &Option<Vec<u8>>)>,
) -> Result<(), String> {
    let env = pb::Envelope::decode(receipt).map_err(|e| e.to_string())?;
    let verified = verifier
        .verify(&env, tocsin_proto::RECEIPT_PAYLOAD_TYPE)
        .map_err(|e| e.to_string())?;
    if verified.signer.as_str() != RECIPIENT {
        return Err(format!("signed by {}", verified.signer));
    }
    let body = pb::Receipt::decode(env.payload.as_slice()).map_err(|e| e.to_string())?;
    if body.alert_id != id || body.recipient != RECIPIENT {
        return Err(format!("names {} at {}", body.alert_id, body.recipient));
    }
    let (digest, issued) = held.ok_or("FR-DGSI holds no such alert")?;
    if &body.alert_digest != digest || sent_digest != Some(digest) {
        return Err("digest differs from the alert held".into());
    }
    if issued.as_deref() != Some(receipt) {
        return Err("not the receipt FR-DGSI stored for it".into());
    }
    Ok(())
}

/// Reads both stores (nodes stopped) and checks them against the ledger.
fn check(
    sender_db: &Path,
    recipient_db: &Path,
    verifier: &Verifier,
    ledger: &Ledger,
    interrupted: &HashSet<String>,
) -> anyhow::Result<Findings> {
    let s = open_read_only(sender_db)?;
    let r = open_read_only(recipient_db)?;
    let mut f = Findings::default();

    let accepted: HashSet<String> = ledger.accepted.lock().unwrap().iter().cloned().collect();
    anyhow::ensure!(
        accepted.len() == ledger.accepted.lock().unwrap().len(),
        "an id was accepted twice"
    );
    let sent: HashMap<String, Vec<u8>> = rows(
        &s,
        "SELECT id, digest FROM alerts WHERE direction = 1",
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?
    .into_iter()
    .collect();
    // id -> (originator, digest, the receipt it issued)
    type Inbound = (String, Vec<u8>, Option<Vec<u8>>);
    let received: HashMap<String, Inbound> = rows(
        &r,
        "SELECT id, originator, digest, receipt FROM alerts WHERE direction = 2",
        |row| Ok((row.get(0)?, (row.get(1)?, row.get(2)?, row.get(3)?))),
    )?
    .into_iter()
    .collect();
    // alert id -> (state, receipt, last error)
    type Delivery = (i64, Option<Vec<u8>>, Option<String>);
    let deliveries: HashMap<String, Delivery> = rows(
        &s,
        &format!(
            "SELECT alert_id, state, receipt, last_error FROM deliveries WHERE recipient = '{RECIPIENT}'"
        ),
        |row| Ok((row.get(0)?, (row.get(1)?, row.get(2)?, row.get(3)?))),
    )?
    .into_iter()
    .collect();
    let received_events: HashMap<String, i64> = rows(
        &r,
        &format!(
            "SELECT alert_id, COUNT(*) FROM events WHERE kind = {} GROUP BY alert_id",
            EventKind::Received.code()
        ),
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?
    .into_iter()
    .collect();

    // (1) Every accepted alert: on the sender, delivered, and at the
    // recipient exactly once.
    for id in &accepted {
        if !sent.contains_key(id) {
            f.lost
                .push(format!("{id}: accepted, but not in the sender's store"));
        }
        match deliveries.get(id) {
            Some((2, Some(_), _)) => {}
            other => f.lost.push(format!(
                "{id}: accepted, but its delivery is not receipted: {other:?}"
            )),
        }
        if !received.contains_key(id) {
            f.lost
                .push(format!("{id}: accepted, but FR-DGSI never stored it"));
        } else if received_events.get(id).copied().unwrap_or(0) == 0 {
            f.lost.push(format!(
                "{id}: stored at FR-DGSI without its RECEIVED event"
            ));
        } else if interrupted.contains(id) {
            f.recovered += 1;
        }
    }
    for (id, (originator, _, _)) in &received {
        if originator != SENDER || (!accepted.contains(id) && !sent.contains_key(id)) {
            f.unexpected.push(format!(
                "{id}: FR-DGSI holds an alert from {originator} that TR-MIT neither accepted nor holds"
            ));
        }
    }

    // (2) Every receipt the sender holds: signed by FR-DGSI, for an alert
    // FR-DGSI holds with the same digest, and the very receipt it issued.
    for (id, (_, receipt, _)) in &deliveries {
        let Some(receipt) = receipt else { continue };
        let held = received.get(id).map(|(_, digest, issued)| (digest, issued));
        let problem = check_receipt(verifier, id, receipt, sent.get(id), held);
        if let Err(e) = problem {
            f.unexpected.push(format!("receipt for {id}: {e}"));
        }
    }

    // (3) Every acknowledgement FR-DGSI's operator was told was accepted:
    // stored there, sent, and recorded by TR-MIT, byte for byte.
    let own_acks: HashMap<String, (String, Vec<u8>)> = rows(
        &r,
        "SELECT id, alert_id, envelope FROM acknowledgements",
        |row| Ok((row.get(0)?, (row.get(1)?, row.get(2)?))),
    )?
    .into_iter()
    .collect();
    let sent_acks: HashMap<String, i64> = rows(&r, "SELECT id, state FROM messages", |row| {
        Ok((row.get(0)?, row.get(1)?))
    })?
    .into_iter()
    .collect();
    let got_acks: HashMap<String, (String, Vec<u8>)> = rows(
        &s,
        "SELECT id, alert_id, envelope FROM acknowledgements",
        |row| Ok((row.get(0)?, (row.get(1)?, row.get(2)?))),
    )?
    .into_iter()
    .collect();
    for (ack, alert) in ledger.acks.lock().unwrap().iter() {
        match own_acks.get(ack) {
            Some((a, _)) if a == alert => {}
            other => f.lost.push(format!(
                "ack {ack} of {alert}: accepted, FR-DGSI holds {other:?}"
            )),
        }
        if sent_acks.get(ack) != Some(&2) {
            f.lost.push(format!(
                "ack {ack} of {alert}: not delivered to TR-MIT ({:?})",
                sent_acks.get(ack)
            ));
        }
        match (got_acks.get(ack), own_acks.get(ack)) {
            (Some(got), Some(own)) if got == own => {}
            (got, _) => f.lost.push(format!(
                "ack {ack} of {alert}: TR-MIT holds {:?}",
                got.map(|(a, _)| a)
            )),
        }
    }
    // No acknowledgement ended refused by the originator: FR-DGSI's
    // outbox gave up on none.
    let refused = rows(
        &r,
        "SELECT id, last_error FROM messages WHERE state = 3",
        |row| Ok((row.get::<_, String>(0)?, row.get::<_, Option<String>>(1)?)),
    )?;
    f.refused.extend(
        refused
            .into_iter()
            .map(|(id, error)| format!("ack {id}: refused by TR-MIT: {error:?}")),
    );
    for (ack, (alert, envelope)) in &got_acks {
        if own_acks.get(ack).map(|(_, e)| e) != Some(envelope) {
            f.unexpected.push(format!(
                "ack {ack} of {alert}: TR-MIT holds it, FR-DGSI never made it"
            ));
        }
    }

    // Nothing recorded twice: the alert at the recipient, its submission,
    // its delivery, its acknowledgement on either side.
    for (conn, node, kind) in [
        (&r, RECIPIENT, EventKind::Received.code()),
        (&s, SENDER, EventKind::Submitted.code()),
        (&s, SENDER, EventKind::Delivered.code()),
        (&r, RECIPIENT, EventKind::Acknowledged.code()),
        (&s, SENDER, EventKind::Acknowledged.code()),
    ] {
        f.duplicated.extend(repeated_events(conn, node, kind)?);
    }
    for (conn, node) in [(&r, RECIPIENT), (&s, SENDER)] {
        let twice = rows(
            conn,
            "SELECT alert_id, COUNT(*) FROM acknowledgements GROUP BY alert_id HAVING COUNT(*) > 1",
            |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)),
        )?;
        f.duplicated.extend(
            twice
                .into_iter()
                .map(|(id, n)| format!("{node}: {id} acknowledged {n} times")),
        );
    }
    Ok(f)
}

fn logged_panics(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("panicked"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_and_acks_survive_nodes_killed_at_random() -> anyhow::Result<()> {
    tocsin_trust::install_crypto_provider();
    let seed: u64 = match std::env::var("TOCSIN_CRASH_SEED") {
        Ok(s) => s.parse().context("TOCSIN_CRASH_SEED")?,
        Err(_) => rand::random(),
    };
    println!("crash test: seed {seed} (replay with TOCSIN_CRASH_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);

    // A federation whose ports are fixed in its file, so that a restarted
    // node listens where its peer and operators expect it.
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let [sender_port, recipient_port] = common::free_ports(2)[..] else {
        unreachable!()
    };
    let federation = common::federation_file(
        dir,
        FEDERATION,
        &[(SENDER, sender_port), (RECIPIENT, recipient_port)],
    );
    common::pki_init(dir, &federation, &[(SENDER, "alice"), (RECIPIENT, "bob")]);
    let layout = PkiLayout::new(dir.join("pki"));
    let fed = FederationId::new(FEDERATION)?;
    let operator = |agency: &str, name: &str, port: u16| -> anyhow::Result<_> {
        let id = AgencyId::new(agency)?;
        let material = TlsMaterial::load(
            &layout.ca_cert(),
            &layout.operator_cert(&id, name),
            &layout.operator_key(&id, name),
            &fed,
        )?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        Ok(OperatorClient::new(channel(addr, &material, &id)?))
    };
    let alice = operator(SENDER, "alice", sender_port)?;
    let bob = operator(RECIPIENT, "bob", recipient_port)?;
    let db = |agency: &str| -> anyhow::Result<PathBuf> {
        let data = layout.agency_dir(&AgencyId::new(agency)?).join("data");
        Ok(Store::database_path(&data))
    };
    let (sender_db, recipient_db) = (db(SENDER)?, db(RECIPIENT)?);

    let mut nodes = [
        Node::new(common::node(dir, SENDER).spawn()?),
        Node::new(common::node(dir, RECIPIENT).spawn()?),
    ];
    for node in &mut nodes {
        node.serve().await?;
    }

    // The traffic.
    let ledger = Arc::new(Ledger::default());
    let stop_submitting = Arc::new(AtomicBool::new(false));
    let stop_acking = Arc::new(AtomicBool::new(false));
    let submitters: Vec<_> = (0..SUBMITTERS)
        .map(|_| {
            tokio::spawn(submit_steadily(
                alice.clone(),
                nodes[0].live.clone(),
                ledger.clone(),
                stop_submitting.clone(),
            ))
        })
        .collect();
    let acker = tokio::spawn(acknowledge_steadily(
        bob.clone(),
        nodes[1].live.clone(),
        ledger.clone(),
        stop_acking.clone(),
    ));

    // The chaos: a node serves for a random while, is killed, stays down
    // for a random while (the sender's operator and the recipient's peer
    // find nobody), and comes back. Now and then a node is killed again
    // while it starts up, before it serves.
    let started = std::time::Instant::now();
    let mut interrupted: HashSet<String> = HashSet::new();
    for _ in 0..KILLS {
        sleep(Duration::from_millis(rng.random_range(20..160))).await;
        let node = &mut nodes[rng.random_range(0..2)];
        node.kill()?;
        interrupted.extend(pending(&sender_db).await?);
        sleep(Duration::from_millis(rng.random_range(0..120))).await;
        if rng.random_bool(0.1) {
            node.process.respawn()?;
            sleep(Duration::from_millis(rng.random_range(0..40))).await;
            node.kill()?;
        }
        node.serve().await?;
        for (task, what) in submitters
            .iter()
            .map(|t| (t, "a submitter"))
            .chain([(&acker, "the acker")])
        {
            anyhow::ensure!(!task.is_finished(), "{what} stopped during the chaos");
        }
    }
    let chaos = started.elapsed();

    // The drain: submissions stop (each submitter finishing the alert it
    // holds), the sender delivers everything, the recipient acknowledges
    // everything and its acknowledgements reach the sender.
    let draining = std::time::Instant::now();
    stop_submitting.store(true, Ordering::Relaxed);
    for s in submitters {
        timeout(PATIENCE, s).await.context("submitters stop")???;
    }
    until_zero(
        &sender_db,
        "SELECT COUNT(*) FROM deliveries WHERE state = 1",
        "deliveries pending at TR-MIT",
    )
    .await?;
    stop_acking.store(true, Ordering::Relaxed);
    timeout(PATIENCE, acker).await.context("acker stops")???;
    until_zero(
        &recipient_db,
        "SELECT COUNT(*) FROM messages WHERE state = 1",
        "acknowledgements pending at FR-DGSI",
    )
    .await?;
    let drain = draining.elapsed();
    // The originator, asked as its operator would: it awaits no
    // acknowledgement (none was lost, and none refused).
    let awaited = alice
        .clone()
        .list_alerts(pb::ListAlertsRequest {
            direction: pb::Direction::Outbound as i32,
            limit: 20,
            filter: pb::list_alerts_request::Filter::Awaiting as i32,
        })
        .await?
        .into_inner()
        .alerts;
    for node in &mut nodes {
        node.process.terminate().await?;
    }

    let verifier = Verifier::load(&layout.ca_cert(), &fed)?;
    let mut f = check(&sender_db, &recipient_db, &verifier, &ledger, &interrupted)?;
    f.lost.extend(awaited.into_iter().map(|r| {
        let id = r.alert.map(|a| a.id).unwrap_or_default();
        format!("{id}: TR-MIT still awaits FR-DGSI's acknowledgement after the drain")
    }));
    let (accepted, acks) = (
        ledger.accepted.lock().unwrap().len(),
        ledger.acks.lock().unwrap().len(),
    );
    let statuses = ledger.unexpected.lock().unwrap().clone();
    let report = format!(
        "crash test: {} kills ({} sender, {} receiver), {accepted} alerts accepted, {acks} acks; \
         lost {}, recovered {}, unexpected {}, duplicated {}; refused acks {}, unexpected statuses {}",
        nodes[0].kills + nodes[1].kills,
        nodes[0].kills,
        nodes[1].kills,
        f.lost.len(),
        f.recovered,
        f.unexpected.len(),
        f.duplicated.len(),
        f.refused.len(),
        statuses.len(),
    );
    println!("{report}");
    for status in &statuses {
        println!("crash test: unexpected status: {status}");
    }
    println!(
        "crash test: seed {seed}, chaos {:.1}s, drain {:.1}s; {} submissions retried after a kill; \
         {} calls failed while their node was down or killed (retried); recovered = \
         accepted alerts still undelivered in TR-MIT's outbox when a node was killed, and held by \
         FR-DGSI in the end",
        chaos.as_secs_f64(),
        drain.as_secs_f64(),
        ledger.resubmitted.load(Ordering::Relaxed),
        ledger.explained.load(Ordering::Relaxed),
    );
    let panics: Vec<String> = nodes
        .iter()
        .flat_map(|n| logged_panics(n.process.log_path()))
        .collect();
    assert!(
        panics.is_empty(),
        "seed {seed}: a node panicked: {panics:#?}"
    );
    assert!(
        f.lost.is_empty()
            && f.unexpected.is_empty()
            && f.duplicated.is_empty()
            && f.refused.is_empty(),
        "seed {seed}: {report}\n{f:#?}"
    );
    assert!(
        statuses.len() <= MAX_UNEXPECTED,
        "seed {seed}: more than {MAX_UNEXPECTED} calls failed with no kill to explain them: \
         {report}\n{statuses:#?}"
    );
    assert!(nodes.iter().all(|n| n.kills > 0), "{report}");
    assert!(nodes[0].kills + nodes[1].kills >= 50, "{report}");
    // A real volume went through the chaos, not one alert and one answer.
    assert!(
        accepted >= MIN_ACCEPTED && acks >= MIN_ACKS,
        "seed {seed}: too little traffic (at least {MIN_ACCEPTED} alerts and {MIN_ACKS} \
         acknowledgements expected): {report}"
    );
    // The chaos did what it is for: deliveries were interrupted, and
    // submissions met a dead sender and were retried.
    assert!(f.recovered > 0, "no delivery was interrupted: {report}");
    assert!(
        ledger.resubmitted.load(Ordering::Relaxed) > 0,
        "no submission met a dead sender: {report}"
    );
    Ok(())
}
