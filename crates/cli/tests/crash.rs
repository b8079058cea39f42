//! Crash safety, measured: real `tocsin node` processes, a steady stream
//! of alerts from TR-MIT to FR-DGSI and of acknowledgements back, while
//! one node or another is killed with SIGKILL at random moments and
//! restarted on the same port and data directory. Afterwards the originator
//! is asked what it still awaits, both stores are read directly, and every
//! promise made to an operator is checked.
//!
//! It runs twice: each agency as one node on a SQLite file, and each
//! agency as two front nodes on one PostgreSQL database (issue 18), where
//! operators and peers turn to the other front node when one dies. The two
//! runs take turns, so that neither starves the other of the machine.
//!
//! The run must carry a real volume ([`SQLITE_VOLUME`], [`POSTGRES_VOLUME`]). A
//! call that fails while its node is down or being killed is retried; one
//! that fails while its node served throughout is retried too, but counted
//! and reported, and more than [`MAX_UNEXPECTED`] fail the test.
//!
//! The seed of the chaos is printed; `TOCSIN_CRASH_SEED=N` replays its
//! choices (which node, when, how long it stays down).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use prost::Message;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
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
#[path = "crash/stores.rs"]
mod stores;

use stores::Db;

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
/// The volume a run must reach, alerts accepted and acknowledgements.
struct Volume {
    accepted: usize,
    acks: usize,
}

/// On SQLite: well under half of what it reaches on the 2-core development
/// machine, even loaded by other builds (840 to 920 alerts accepted and 830
/// to 910 acknowledgements in 14 s of chaos), so that a loaded CI machine
/// passes.
const SQLITE_VOLUME: Volume = Volume {
    accepted: 300,
    acks: 250,
};
/// On PostgreSQL, where every write is a transaction committed to disk
/// before it is answered: well under half of what it reaches there.
const POSTGRES_VOLUME: Volume = Volume {
    accepted: 150,
    acks: 120,
};
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

/// One node process of an agency, and whether it serves.
struct Node {
    /// Its agency, and which of the agency's front nodes it is.
    agency: &'static str,
    front: usize,
    process: NodeProcess,
    live: Arc<Liveness>,
    kills: usize,
}

impl Node {
    fn new(agency: &'static str, front: usize, process: NodeProcess) -> Self {
        let live = Arc::new(Liveness::default());
        // Started, not yet serving.
        live.down();
        Self {
            agency,
            front,
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

/// An operator's way into one front node of its agency.
#[derive(Clone)]
struct Front {
    op: OperatorClient<Channel>,
    live: Arc<Liveness>,
}

/// An operator's ways into every front node of its agency: it uses one
/// until a call fails, then turns to the next.
struct Fronts {
    all: Vec<Front>,
    at: usize,
}

impl Fronts {
    fn new(all: Vec<Front>) -> Self {
        Self { all, at: 0 }
    }
    fn now(&mut self) -> (&mut OperatorClient<Channel>, Arc<Liveness>) {
        let front = &mut self.all[self.at];
        (&mut front.op, front.live.clone())
    }
    fn turn(&mut self) {
        self.at = (self.at + 1) % self.all.len();
    }
}

/// Submits alerts to FR-DGSI at a steady pace until `stop`; each with an id
/// of its own, retried with that id (on the agency's next front node, if it
/// has several) until a front node answers OK.
async fn submit_steadily(
    mut fronts: Fronts,
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
            let (op, live) = fronts.now();
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
                    fronts.turn();
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

/// Acknowledges, on FR-DGSI, every alert it owes an answer to, each with
/// an id of its own that a retry keeps; once `stop` is set, returns when it
/// owes none.
async fn acknowledge_steadily(
    mut fronts: Fronts,
    ledger: Arc<Ledger>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let mut ack_ids: HashMap<String, String> = HashMap::new();
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        let (op, live) = fronts.now();
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
                fronts.turn();
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
            // One id per alert, kept across retries: a call whose answer
            // was lost (its node died) and that is made again, here or on
            // another front node, is the same acknowledgement.
            let ack_id = ack_ids
                .entry(alert_id.clone())
                .or_insert_with(|| AlertId::generate().to_string())
                .clone();
            let (op, live) = fronts.now();
            let asked = op.acknowledge_alert(pb::AcknowledgeAlertRequest {
                id: ack_id,
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
                    fronts.turn();
                }
            }
        }
    }
}

/// The sender's deliveries still pending: alerts accepted but not yet
/// receipted, whose delivery the kill about to be survived interrupts.
async fn pending(db: &Db) -> anyhow::Result<Vec<String>> {
    db.rows("SELECT alert_id FROM deliveries WHERE state = 1", |r| {
        r.text(0)
    })
    .await
}

/// Polls `sql` (a count) until it is zero.
async fn until_zero(db: &Db, sql: &'static str, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let n = db.count(sql).await?;
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

/// Events of `kind` recorded more than once for one alert.
async fn repeated_events(db: &Db, node: &str, kind: i64) -> anyhow::Result<Vec<String>> {
    let sql = format!(
        "SELECT alert_id, COUNT(*) FROM events WHERE kind = {kind} GROUP BY alert_id HAVING COUNT(*) > 1"
    );
    let repeated: Vec<(String, i64)> = db.rows(&sql, |r| Ok((r.text(0)?, r.int(1)?))).await?;
    Ok(repeated
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
async fn check(
    s: &Db,
    r: &Db,
    verifier: &Verifier,
    ledger: &Ledger,
    interrupted: &HashSet<String>,
) -> anyhow::Result<Findings> {
    let mut f = Findings::default();

    let accepted: HashSet<String> = ledger.accepted.lock().unwrap().iter().cloned().collect();
    anyhow::ensure!(
        accepted.len() == ledger.accepted.lock().unwrap().len(),
        "an id was accepted twice"
    );
    let sent: HashMap<String, Vec<u8>> = s
        .rows("SELECT id, digest FROM alerts WHERE direction = 1", |row| {
            Ok((row.text(0)?, row.bytes(1)?))
        })
        .await?;
    // id -> (originator, digest, the receipt it issued)
    type Inbound = (String, Vec<u8>, Option<Vec<u8>>);
    let received: HashMap<String, Inbound> = r
        .rows(
            "SELECT id, originator, digest, receipt FROM alerts WHERE direction = 2",
            |row| {
                Ok((
                    row.text(0)?,
                    (row.text(1)?, row.bytes(2)?, row.opt_bytes(3)?),
                ))
            },
        )
        .await?;
    // alert id -> (state, receipt, last error)
    type Delivery = (i64, Option<Vec<u8>>, Option<String>);
    let deliveries: HashMap<String, Delivery> = s.rows(
        &format!(
            "SELECT alert_id, state, receipt, last_error FROM deliveries WHERE recipient = '{RECIPIENT}'"
        ),
        |row| {
            Ok((
                row.text(0)?,
                (row.int(1)?, row.opt_bytes(2)?, row.opt_text(3)?),
            ))
        },
    )
    .await?;
    let received_events: HashMap<String, i64> = r
        .rows(
            &format!(
                "SELECT alert_id, COUNT(*) FROM events WHERE kind = {} GROUP BY alert_id",
                EventKind::Received.code()
            ),
            |row| Ok((row.text(0)?, row.int(1)?)),
        )
        .await?;

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
    let own_acks: HashMap<String, (String, Vec<u8>)> = r
        .rows(
            "SELECT id, alert_id, envelope FROM acknowledgements",
            |row| Ok((row.text(0)?, (row.text(1)?, row.bytes(2)?))),
        )
        .await?;
    let sent_acks: HashMap<String, i64> = r
        .rows("SELECT id, state FROM messages", |row| {
            Ok((row.text(0)?, row.int(1)?))
        })
        .await?;
    let got_acks: HashMap<String, (String, Vec<u8>)> = s
        .rows(
            "SELECT id, alert_id, envelope FROM acknowledgements",
            |row| Ok((row.text(0)?, (row.text(1)?, row.bytes(2)?))),
        )
        .await?;
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
    let refused: Vec<(String, Option<String>)> = r
        .rows(
            "SELECT id, last_error FROM messages WHERE state = 3",
            |row| Ok((row.text(0)?, row.opt_text(1)?)),
        )
        .await?;
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
    for (db, node, kind) in [
        (r, RECIPIENT, EventKind::Received.code()),
        (s, SENDER, EventKind::Submitted.code()),
        (s, SENDER, EventKind::Delivered.code()),
        (r, RECIPIENT, EventKind::Acknowledged.code()),
        (s, SENDER, EventKind::Acknowledged.code()),
    ] {
        f.duplicated.extend(repeated_events(db, node, kind).await?);
    }
    for (db, node) in [(r, RECIPIENT), (s, SENDER)] {
        let twice: Vec<(String, i64)> = db
            .rows(
                "SELECT alert_id, COUNT(*) FROM acknowledgements GROUP BY alert_id HAVING COUNT(*) > 1",
                |row| Ok((row.text(0)?, row.int(1)?)),
            )
            .await?;
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

/// The two runs take turns: each wants the machine to itself.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_and_acks_survive_nodes_killed_at_random() -> anyhow::Result<()> {
    let _turn = ONE_AT_A_TIME.lock().await;
    chaos(None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_and_acks_survive_front_nodes_killed_at_random_on_postgres() -> anyhow::Result<()> {
    let Some(server) = tocsin_testkit::postgres()? else {
        return Ok(());
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    chaos(Some(&server)).await
}

/// Front nodes per agency on PostgreSQL.
const FRONTS: usize = 2;

/// One run: on SQLite (one node per agency) or on `postgres` (each agency
/// [`FRONTS`] front nodes on a database of its own).
async fn chaos(postgres: Option<&tocsin_pgtest::TestPostgres>) -> anyhow::Result<()> {
    tocsin_trust::install_crypto_provider();
    let seed: u64 = match std::env::var("TOCSIN_CRASH_SEED") {
        Ok(s) => s.parse().context("TOCSIN_CRASH_SEED")?,
        Err(_) => rand::random(),
    };
    let backend = if postgres.is_some() {
        format!("PostgreSQL, {FRONTS} front nodes per agency")
    } else {
        "SQLite".to_owned()
    };
    println!("crash test ({backend}): seed {seed} (replay with TOCSIN_CRASH_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let fronts = if postgres.is_some() { FRONTS } else { 1 };
    let volume = if postgres.is_some() {
        POSTGRES_VOLUME
    } else {
        SQLITE_VOLUME
    };

    // A federation whose ports are fixed in its file, so that a restarted
    // node listens where its peer and operators expect it.
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let ports = common::free_ports(2 * fronts);
    let (sender_ports, recipient_ports) = ports.split_at(fronts);
    let federation = common::federation_file_of_fronts(
        dir,
        FEDERATION,
        &[
            (SENDER, sender_ports.to_vec()),
            (RECIPIENT, recipient_ports.to_vec()),
        ],
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

    // Each agency's store, and how to run each of its front nodes.
    let mut nodes = Vec::new();
    let mut stores = Vec::new();
    for (agency, ports) in [(SENDER, sender_ports), (RECIPIENT, recipient_ports)] {
        let (db, configs) = match postgres {
            None => {
                let data = layout.agency_dir(&AgencyId::new(agency)?).join("data");
                let db = Db::Sqlite(Store::database_path(&data));
                (db, vec![format!("pki/agencies/{agency}/node.toml")])
            }
            Some(server) => {
                let name = format!("crash_{}", agency.to_lowercase().replace('-', "_"));
                let url = server.create_database(&name).await?;
                let configs = common::front_node_configs(dir, agency, ports, &url);
                (Db::Postgres(url), configs)
            }
        };
        stores.push(db);
        for (front, config) in configs.iter().enumerate() {
            nodes.push(Node::new(
                agency,
                front,
                common::node_at(dir, config).spawn()?,
            ));
        }
    }
    let (sender_db, recipient_db) = (stores[0].clone(), stores[1].clone());
    for node in &mut nodes {
        node.serve().await?;
    }
    let ways_in = |agency: &str, name: &str, ports: &[u16]| -> anyhow::Result<Fronts> {
        let live = nodes
            .iter()
            .filter(|n| n.agency == agency)
            .map(|n| n.live.clone());
        let all = ports
            .iter()
            .zip(live)
            .map(|(port, live)| {
                Ok(Front {
                    op: operator(agency, name, *port)?,
                    live,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Fronts::new(all))
    };
    let alice = operator(SENDER, "alice", sender_ports[0])?;

    // The traffic.
    let ledger = Arc::new(Ledger::default());
    let stop_submitting = Arc::new(AtomicBool::new(false));
    let stop_acking = Arc::new(AtomicBool::new(false));
    let submitters = (0..SUBMITTERS)
        .map(|i| {
            let mut fronts = ways_in(SENDER, "alice", sender_ports)?;
            // Each submitter starts on a front node of its own.
            for _ in 0..i {
                fronts.turn();
            }
            Ok(tokio::spawn(submit_steadily(
                fronts,
                ledger.clone(),
                stop_submitting.clone(),
            )))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let acker = tokio::spawn(acknowledge_steadily(
        ways_in(RECIPIENT, "bob", recipient_ports)?,
        ledger.clone(),
        stop_acking.clone(),
    ));

    // The chaos: a node serves for a random while, is killed, stays down
    // for a random while (the sender's operator and the recipient's peer
    // find nobody there, and turn to another front node if there is one),
    // and comes back. Now and then a node is killed again while it starts
    // up, before it serves.
    let started = std::time::Instant::now();
    let mut interrupted: HashSet<String> = HashSet::new();
    for _ in 0..KILLS {
        sleep(Duration::from_millis(rng.random_range(20..160))).await;
        let at = rng.random_range(0..nodes.len());
        let node = &mut nodes[at];
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
    let mut f = check(&sender_db, &recipient_db, &verifier, &ledger, &interrupted).await?;
    f.lost.extend(awaited.into_iter().map(|r| {
        let id = r.alert.map(|a| a.id).unwrap_or_default();
        format!("{id}: TR-MIT still awaits FR-DGSI's acknowledgement after the drain")
    }));
    let (accepted, acks) = (
        ledger.accepted.lock().unwrap().len(),
        ledger.acks.lock().unwrap().len(),
    );
    let statuses = ledger.unexpected.lock().unwrap().clone();
    let kills = |agency: &str| -> usize {
        nodes
            .iter()
            .filter(|n| n.agency == agency)
            .map(|n| n.kills)
            .sum()
    };
    let total_kills: usize = nodes.iter().map(|n| n.kills).sum();
    let report = format!(
        "crash test ({backend}): {total_kills} kills ({} sender, {} receiver), {accepted} alerts \
         accepted, {acks} acks; lost {}, recovered {}, unexpected {}, duplicated {}; refused \
         acks {}, unexpected statuses {}",
        kills(SENDER),
        kills(RECIPIENT),
        f.lost.len(),
        f.recovered,
        f.unexpected.len(),
        f.duplicated.len(),
        f.refused.len(),
        statuses.len(),
    );
    println!("{report}");
    if fronts > 1 {
        let each: Vec<String> = nodes
            .iter()
            .map(|n| format!("{} front {}: {}", n.agency, n.front, n.kills))
            .collect();
        println!(
            "crash test ({backend}): kills by front node: {}",
            each.join(", ")
        );
    }
    for status in &statuses {
        println!("crash test: unexpected status: {status}");
    }
    println!(
        "crash test ({backend}): seed {seed}, chaos {:.1}s, drain {:.1}s; {} submissions retried \
         after a kill; {} calls failed while their node was down or killed (retried); recovered \
         = accepted alerts still undelivered in TR-MIT's outbox when a node was killed, and held \
         by FR-DGSI in the end",
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
    assert!(total_kills >= 50, "{report}");
    // A real volume went through the chaos, not one alert and one answer.
    assert!(
        accepted >= volume.accepted && acks >= volume.acks,
        "seed {seed}: too little traffic (at least {} alerts and {} acknowledgements \
         expected): {report}",
        volume.accepted,
        volume.acks,
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
