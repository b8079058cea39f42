//! [`Postgres`], the backend's handle: a pool of connections, the write
//! transaction every change runs in ([`Tx`]), and reads.
//!
//! Writes. A write transaction (READ COMMITTED) first locks the `events`
//! row of `sequences`. Every write of an agency, whichever front node
//! makes it, so waits for the one before it to commit: the event log and
//! the audit chain get their numbers in commit order (a reader following
//! them never skips a row that commits later with a smaller number), and
//! no two writes can deadlock on the rows they touch after it. It is the
//! SQLite backend's single writer, held by the database instead of a
//! thread.
//!
//! Group commit. Each handle (and its clones) has one writer task. A
//! [`Postgres::write`] queues its closure as a job and waits for its
//! answer; the writer takes every job queued when it is free (up to
//! [`MAX_BATCH`], no timer), runs them in queue order in ONE transaction,
//! each inside a `SAVEPOINT` of its own, and commits once: one WAL flush
//! for the batch instead of one per write. A job that fails (an error, a
//! statement error, a lease fence, a panic caught by the writer) is rolled
//! back to its savepoint, which also leaves a transaction a failed
//! statement aborted usable again, and is answered with its own error; the
//! others go on. Counters (`next_value`) taken by a job rolled back are
//! given back with it, so numbers stay gapless and in commit order. One
//! `NOTIFY` goes with the COMMIT when any job of the batch added events.
//! Jobs are answered only after the COMMIT, so an answer is durable. If
//! the COMMIT itself fails the outcome is unknown: every job of the batch
//! gets [`Error::Commit`] and the connection is dropped; if the
//! transaction breaks before it (the connection is lost), every job not
//! already failed on its own gets [`Error::Commit`], and nothing of the
//! batch committed.
//!
//! A job runs in the writer task, not its caller's: a caller that goes
//! away (a cancelled RPC) neither cuts a transaction short nor leaves one
//! open; its job, once queued, still runs and commits or fails whole, and
//! its answer is dropped. [`Postgres::close`] refuses new writes and waits
//! for every queued one to be answered.
//!
//! Reads take a pooled connection and need no lock; a read made of several
//! queries runs in one REPEATABLE READ snapshot.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::{Notify, OwnedRwLockReadGuard, mpsc, oneshot};
use tokio_postgres::Row;

use super::listen::{Listener, NOTIFY};
use super::pool::{self, Pool, PoolOptions};
use crate::error::Error;

/// A handle on an agency's PostgreSQL store; clones share the pool.
#[derive(Clone)]
pub(crate) struct Postgres {
    pool: Pool,
    events: Arc<Notify>,
    /// Held shared by every write in progress, and exclusively by
    /// [`Postgres::close`], which so waits for them.
    writes: Arc<tokio::sync::RwLock<()>>,
    closed: Arc<std::sync::atomic::AtomicBool>,
    /// Who this handle is among the agency's front nodes: random, made at
    /// connect, shared by its clones. It names the outbox claims this node
    /// holds (see [`CLAIM_LEASE`]).
    holder: Arc<str>,
    /// Listens for other front nodes' commits (see [`super::listen`]).
    listener: Arc<Listener>,
    /// What this handle's `hold_lease` last answered (see
    /// [`super::leases`]).
    fences: super::leases::Fences,
    /// Where writes are queued for the writer task (see the module's
    /// documentation); it stops when every clone is dropped.
    jobs: mpsc::UnboundedSender<Queued>,
    /// How many transactions the writer committed.
    #[cfg(test)]
    batches: Arc<std::sync::atomic::AtomicU64>,
}

/// The most writes the writer commits in one transaction. Each write's
/// savepoint that changes a row is a subtransaction with an id of its
/// own, and a transaction with more than 64 of them (the server's
/// `PGPROC_MAX_CACHED_SUBXIDS`, released ones included) overflows its
/// subtransaction cache, which slows every other session's snapshots
/// while it runs: 64 writes a commit is already one WAL flush for 64.
pub(crate) const MAX_BATCH: usize = 64;

/// How long a front node's claim on a due delivery or message lasts
/// before another front node may take it: longer than a request to a
/// peer is let run (`[limits] request_timeout`, 30 s by default), so a
/// live node's claim does not lapse while its request is in flight, and
/// short enough that a node that dies leaves its deliveries stalled for
/// no more than this. Recording the attempt releases the claim at once,
/// whatever the outcome.
pub(crate) const CLAIM_LEASE: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the URL: it may carry a password.
        f.debug_struct("Postgres")
            .field("pool", &self.pool.status())
            .finish()
    }
}

/// The client a query runs on: a pooled connection.
pub(crate) type Client = deadpool_postgres::ClientWrapper;

impl Postgres {
    /// Connects to the database at `url`, migrating it to the latest
    /// schema.
    pub(crate) async fn connect(url: &str, options: PoolOptions) -> Result<Self, Error> {
        let pool = pool::connect(url, options.clone()).await?;
        let mut config: tokio_postgres::Config = url.parse().map_err(super::Error::Url)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        let holder = match &options.front_node {
            Some(name) => format!("{name}/{}", new_holder()?),
            None => new_holder()?,
        };
        if let Some(name) = &options.front_node {
            release_earlier_claims(&pool, name, &holder).await?;
        }
        let events = Arc::new(Notify::new());
        let listener = Listener::start(config, &format!("tocsin-listen-{holder}"), &events);
        let (jobs, queue) = mpsc::unbounded_channel();
        #[cfg(test)]
        let batches = Arc::<std::sync::atomic::AtomicU64>::default();
        tokio::spawn(writer(
            pool.clone(),
            events.clone(),
            queue,
            #[cfg(test)]
            batches.clone(),
        ));
        Ok(Self {
            pool,
            events,
            writes: Arc::default(),
            closed: Arc::default(),
            holder: holder.into(),
            listener: Arc::new(listener),
            fences: Arc::default(),
            jobs,
            #[cfg(test)]
            batches,
        })
    }

    /// How many transactions this handle's writer has committed.
    #[cfg(test)]
    pub(crate) fn batches(&self) -> u64 {
        self.batches.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Waits until this handle listens for other front nodes' commits,
    /// for the `times`th time (it listens again after a lost connection).
    #[cfg(test)]
    pub(crate) async fn listening(&self, times: u64) {
        self.listener.listening(times).await;
    }

    /// What this handle's `hold_lease` last answered, per lease.
    pub(crate) fn fences(&self) -> &super::leases::Fences {
        &self.fences
    }

    /// This handle's holder id (see [`Postgres::holder`]'s field).
    pub(crate) fn holder(&self) -> &str {
        &self.holder
    }

    /// Runs `f` in the writer's next transaction, in a savepoint of its
    /// own (see the module's documentation): its changes commit when `f`
    /// succeeds and are rolled back when it fails or panics, whatever the
    /// other writes of the batch do. Resolves once the commit is durable.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx) -> BoxFuture<'t, Result<T, Error>> + Send + 'static,
    {
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let writing = self.writes.clone().read_owned().await;
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let (done, answer) = oneshot::channel();
        let job = Box::new(Write {
            f: Some(f),
            result: None,
            done,
        });
        // Once queued the job runs, whether or not this caller waits.
        self.jobs
            .send(Queued {
                job,
                _writing: writing,
            })
            .map_err(|_| Error::Closed)?;
        answer.await.unwrap_or_else(|_| {
            Err(Error::Commit(
                "the writer stopped before the write committed".into(),
            ))
        })
    }

    /// Runs `f` on a pooled connection.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, Error>
    where
        F: for<'c> FnOnce(&'c Client) -> BoxFuture<'c, Result<T, Error>> + Send,
    {
        let client = self.pool.get().await?;
        f(&client).await
    }

    /// Like [`Postgres::read`], but everything `f` reads comes from one
    /// snapshot: for reads made of several queries.
    ///
    /// Safe to cancel: a caller that goes away mid-read (a peer or an
    /// operator that hung up) must not hand the pool a connection inside
    /// its read-only transaction, where the next user's statements would
    /// run and fail. Such a connection is closed instead.
    pub(crate) async fn read_snapshot<T, F>(&self, f: F) -> Result<T, Error>
    where
        F: for<'c> FnOnce(&'c Client) -> BoxFuture<'c, Result<T, Error>> + Send,
    {
        let snapshot = Unfinished(Some(self.pool.get().await?));
        let client = snapshot.client();
        client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?;
        let result = f(client).await;
        // A read-only transaction has nothing to keep: end it either way,
        // and drop the connection if even that fails.
        if client.batch_execute("COMMIT").await.is_ok() {
            snapshot.finished();
        }
        result
    }

    /// Refuses new writes, waits for those queued to be answered, then
    /// closes the pool: later calls fail with [`Error::Closed`] or a pool
    /// error.
    pub(crate) async fn close(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        let _all = self.writes.write().await;
        self.listener.stop();
        self.pool.close();
    }
}

/// A write transaction in progress, on a connection of its own: closed
/// rather than pooled if it is dropped before it commits (its batch
/// failed, or the runtime stopped), and the server rolls it back.
pub(crate) struct Tx {
    open: Unfinished,
    events_added: bool,
}

/// What every write transaction runs first: it locks the `events` row of
/// `sequences` until the transaction ends, so that an agency's writes,
/// from every front node, run one after another (see the module's
/// documentation). A write that took row locks before it could deadlock
/// with a batch.
const LOCK_WRITES: &str = "UPDATE sequences SET next = next WHERE name = 'events'";

/// A pooled connection in a transaction that has not ended yet: closed,
/// not handed back to the pool, if it is dropped so (its user was
/// cancelled, or beginning failed halfway), because the next user's
/// statements would run inside that transaction.
struct Unfinished(Option<deadpool_postgres::Object>);

impl Unfinished {
    fn client(&self) -> &Client {
        self.0.as_ref().expect("held until finished or dropped")
    }

    /// The transaction ended: the connection may go back to the pool.
    fn finished(mut self) -> Option<deadpool_postgres::Object> {
        self.0.take()
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            let _ = deadpool_postgres::Object::take(client);
        }
    }
}

impl Tx {
    async fn begin(client: deadpool_postgres::Object) -> Result<Self, Error> {
        let begun = Unfinished(Some(client));
        // The row lock is taken by an UPDATE that changes nothing, not by
        // SELECT ... FOR UPDATE: the writes' savepoints then update the
        // row (`next_value`) after the transaction itself did, where
        // after a FOR UPDATE lock each would make a MultiXact (the lock's
        // holder and the subtransaction's update) for the server to keep.
        begun
            .client()
            .batch_execute(&format!(
                "BEGIN ISOLATION LEVEL READ COMMITTED; {LOCK_WRITES}"
            ))
            .await?;
        Ok(Self {
            open: begun,
            events_added: false,
        })
    }

    /// The transaction's connection.
    pub(crate) fn client(&self) -> &Client {
        self.open.client()
    }

    /// Takes the next value of the gapless counter `name` (a row of
    /// `sequences`); the row stays locked until the transaction ends.
    pub(crate) async fn next_value(&self, name: &str) -> Result<i64, Error> {
        let row = self
            .client()
            .query_opt(
                "UPDATE sequences SET next = next + 1 WHERE name = $1 RETURNING next - 1",
                &[&name],
            )
            .await?;
        row.map(|r| r.get(0))
            .ok_or_else(|| Error::Damaged(format!("the sequence {name:?} is missing")))
    }

    /// Marks that this transaction added events, so that watchers are
    /// woken once it commits.
    pub(crate) fn note_events(&mut self) {
        self.events_added = true;
    }

    /// Ends the transaction; an error means its outcome is unknown, and
    /// the connection is dropped.
    async fn commit(self) -> Result<(), Error> {
        match self.open.client().batch_execute("COMMIT").await {
            Ok(()) => {
                self.open.finished();
                Ok(())
            }
            // Whether it committed is unknown: the connection goes (as
            // `open` drops unfinished).
            Err(e) => Err(Error::Commit(describe(&e))),
        }
    }
}

/// A write waiting in the writer's queue, with the share of
/// [`Postgres::close`]'s lock it holds until it is answered.
pub(crate) struct Queued {
    job: Box<dyn Job>,
    _writing: OwnedRwLockReadGuard<()>,
}

/// A write, its result type erased.
trait Job: Send {
    /// Runs the write in the batch's transaction (inside its savepoint);
    /// returns whether it succeeded. Runs once.
    fn run<'a>(&'a mut self, tx: &'a mut Tx) -> BoxFuture<'a, bool>;
    /// Answers the caller: its own result once the batch committed, or
    /// why the batch did not.
    fn finish(self: Box<Self>, committed: Result<(), String>);
    /// Answers the caller that its write failed, when it did not answer
    /// itself (it panicked, or the batch broke before it ran).
    fn fail(&mut self, why: &str);
}

struct Write<T, F> {
    f: Option<F>,
    result: Option<Result<T, Error>>,
    done: oneshot::Sender<Result<T, Error>>,
}

impl<T, F> Job for Write<T, F>
where
    T: Send + 'static,
    F: for<'t> FnOnce(&'t mut Tx) -> BoxFuture<'t, Result<T, Error>> + Send + 'static,
{
    fn run<'a>(&'a mut self, tx: &'a mut Tx) -> BoxFuture<'a, bool> {
        let f = self.f.take();
        Box::pin(async move {
            let Some(f) = f else { return false };
            let result = f(tx).await;
            let ok = result.is_ok();
            self.result = Some(result);
            ok
        })
    }

    fn finish(self: Box<Self>, committed: Result<(), String>) {
        let result = match (committed, self.result) {
            // A write that failed on its own was rolled back whatever the
            // batch did: its own error is the answer.
            (_, Some(Err(e))) => Err(e),
            (Ok(()), Some(result)) => result,
            (Ok(()), None) => Err(Error::Commit("the write never ran".into())),
            (Err(e), _) => Err(Error::Commit(e)),
        };
        let _ = self.done.send(result);
    }

    fn fail(&mut self, why: &str) {
        if !matches!(self.result, Some(Err(_))) {
            self.result = Some(Err(Error::Commit(why.to_owned())));
        }
    }
}

/// The writer task: group commit (see the module's documentation). Ends
/// when every handle is dropped.
async fn writer(
    pool: Pool,
    events: Arc<Notify>,
    mut queue: mpsc::UnboundedReceiver<Queued>,
    #[cfg(test)] batches: Arc<std::sync::atomic::AtomicU64>,
) {
    let mut batch: Vec<Queued> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let committed = run_batch(&pool, &mut batch).await;
        match &committed {
            Ok(added) => {
                #[cfg(test)]
                batches.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                if *added {
                    events.notify_waiters();
                }
            }
            Err(e) => {
                tracing::error!(error = %e, writes = batch.len(), "a PostgreSQL write batch failed");
            }
        }
        let committed = committed.map(|_| ());
        // Each answer releases its share of `close`'s lock, after the
        // commit and the wake-up.
        for queued in batch.drain(..) {
            queued.job.finish(committed.clone());
        }
    }
    tracing::debug!("PostgreSQL writer stopped");
}

/// Runs `batch` in one transaction and commits it; whether any write that
/// committed added events. An error: nothing of the batch committed, or
/// (the COMMIT failed) whether it did is unknown.
async fn run_batch(pool: &Pool, batch: &mut [Queued]) -> Result<bool, String> {
    let client = pool
        .get()
        .await
        .map_err(|e| format!("no connection for the write: {}", Error::from(e)))?;
    let mut tx = Tx::begin(client)
        .await
        .map_err(|e| format!("the write transaction did not begin: {e}"))?;
    let mut added = false;
    for queued in batch.iter_mut() {
        let ran = run_job(&mut tx, queued.job.as_mut()).await;
        match ran {
            Ok(()) => added |= tx.events_added,
            Err(broken) => {
                // The transaction is lost: dropping it drops the
                // connection and the server rolls everything back.
                drop(tx);
                let why = format!("the write transaction failed before it committed: {broken}");
                for queued in batch.iter_mut() {
                    queued.job.fail(&why);
                }
                return Err(why);
            }
        }
    }
    if added {
        // Heard by every front node once this commits.
        tx.client().batch_execute(NOTIFY).await.map_err(|e| {
            format!(
                "the write transaction failed before it committed: {}",
                describe(&e)
            )
        })?;
    }
    tx.commit().await.map_err(|e| match e {
        Error::Commit(why) => why,
        other => other.to_string(),
    })?;
    Ok(added)
}

/// Runs one job in a savepoint of its own, rolled back when it fails or
/// panics (the job then holds its error). An error: the transaction
/// itself is broken (a savepoint statement failed).
async fn run_job(tx: &mut Tx, job: &mut dyn Job) -> Result<(), String> {
    tx.events_added = false;
    tx.client()
        .batch_execute("SAVEPOINT job")
        .await
        .map_err(|e| describe(&e))?;
    let ok = match std::panic::AssertUnwindSafe(job.run(tx))
        .catch_unwind()
        .await
    {
        Ok(ok) => ok,
        Err(_) => {
            tracing::error!("a PostgreSQL write panicked; it is refused");
            job.fail("the write panicked before it committed");
            false
        }
    };
    if ok {
        match tx.client().batch_execute("RELEASE SAVEPOINT job").await {
            Ok(()) => return Ok(()),
            // The write succeeded but left its transaction aborted (it
            // ignored a failed statement): undone like a failed write.
            Err(e) => job.fail(&format!("the write could not be kept: {}", describe(&e))),
        }
    }
    tx.events_added = false;
    // Also ends the aborted state a failed statement left.
    tx.client()
        .batch_execute("ROLLBACK TO SAVEPOINT job; RELEASE SAVEPOINT job")
        .await
        .map_err(|e| describe(&e))
}

/// A fresh random holder id: 16 hex digits, unlikely to be any other
/// front node's (a clash would let two nodes send one delivery at once,
/// which the receiver's idempotence makes harmless, no worse).
/// Releases the outbox claims that an earlier run of front node `name`
/// left (it was killed while sending): they are due again at once, here or
/// on another front node. `holder` is this run's own.
async fn release_earlier_claims(pool: &Pool, name: &str, holder: &str) -> Result<(), Error> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    // In turn with every front node's writes, which may hold these rows
    // (a batch that touched them would otherwise deadlock with this).
    tx.batch_execute(LOCK_WRITES).await?;
    // Every earlier run's holder is `name/` and random hex: match the
    // prefix exactly, not as a LIKE pattern.
    let prefix = format!("{name}/");
    // Only pending rows are ever claimed (an attempt recorded releases
    // its claim): `state = 1` lets the server read the pending rows'
    // partial indexes rather than every delivery and message ever made,
    // while the agency's writes wait.
    let released = [
        "UPDATE deliveries SET claimed_by = NULL, claimed_until = NULL
          WHERE state = 1 AND starts_with(claimed_by, $1) AND claimed_by <> $2",
        "UPDATE messages SET claimed_by = NULL, claimed_until = NULL
          WHERE state = 1 AND starts_with(claimed_by, $1) AND claimed_by <> $2",
    ];
    let mut n = 0;
    for sql in released {
        n += tx.execute(sql, &[&prefix, &holder]).await?;
    }
    tx.commit().await?;
    if n > 0 {
        tracing::info!(
            claims = n,
            "released the outbox claims this front node held when it last stopped"
        );
    }
    Ok(())
}

fn new_holder() -> Result<String, Error> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::Damaged("no randomness for a holder id".into()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// tokio-postgres names only the kind of an error; the server's message
/// is its source.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// Reads a code column as its enum; an unknown code is corrupt data.
pub(crate) fn code<C>(
    row: &Row,
    column: usize,
    decode: fn(i64) -> Result<C, crate::codes::UnknownCode>,
) -> Result<C, Error> {
    Ok(decode(row.try_get(column)?)?)
}

#[async_trait::async_trait]
impl crate::backend::Backend for Postgres {
    fn event_signal(&self) -> Arc<Notify> {
        self.events.clone()
    }

    async fn close(&self) {
        Postgres::close(self).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::oneshot;

    use super::super::records::tests::new_alert;
    use super::super::testing::Both;
    use super::*;
    use crate::records::RecordStore;

    /// A write that holds the writer until `open` is sent or dropped, so
    /// that the writes queued meanwhile make one batch.
    fn gate(pg: &Postgres) -> (oneshot::Sender<()>, BoxFuture<'_, Result<(), Error>>) {
        let (open, gate) = oneshot::channel::<()>();
        let held = pg.write(move |_| {
            Box::pin(async move {
                let _ = gate.await;
                Ok(())
            })
        });
        (open, Box::pin(held))
    }

    async fn open_later(open: oneshot::Sender<()>) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = open.send(());
    }

    async fn make_table(pg: &Postgres) {
        pg.write(|tx| {
            Box::pin(async move {
                tx.client()
                    .batch_execute(
                        "CREATE TABLE t (x BIGINT PRIMARY KEY);
                         INSERT INTO sequences (name, next) VALUES ('gc', 1)",
                    )
                    .await?;
                Ok(())
            })
        })
        .await
        .unwrap();
    }

    async fn rows(pg: &Postgres, sql: &'static str) -> Vec<i64> {
        pg.read(move |c| {
            Box::pin(async move {
                Ok(c.query(sql, &[])
                    .await?
                    .iter()
                    .map(|r| r.get::<_, i64>(0))
                    .collect())
            })
        })
        .await
        .unwrap()
    }

    /// Writes made at once commit in fewer transactions than writes, and
    /// the events they add are numbered without a gap.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_commit_together_with_gapless_events() {
        let Some(both) = Both::start().await else {
            return;
        };
        let pg = &both.postgres;
        let n = 64u8;
        let before = pg.batches();
        let (open, held) = gate(pg);
        let inserts = futures::future::join_all((0..n).map(|i| {
            pg.insert_outbound(
                new_alert(&format!("GC{i}"), "TR-MIT", i),
                vec!["FR-DGSI".into()],
            )
        }));
        let (held, inserted, ()) = tokio::join!(held, inserts, open_later(open));
        held.unwrap();
        for r in inserted {
            r.unwrap();
        }
        let transactions = pg.batches() - before;
        assert!(
            transactions < u64::from(n) / 4,
            "{n} writes in {transactions} transactions"
        );
        let ids = rows(pg, "SELECT id FROM events ORDER BY id").await;
        assert!(ids.len() >= usize::from(n), "{ids:?}");
        let expected: Vec<i64> = (1..=i64::try_from(ids.len()).unwrap()).collect();
        assert_eq!(ids, expected);
    }

    /// In one batch: a write that fails, one whose statement fails, and
    /// one that ignores a failed statement are each answered with an
    /// error and leave no trace (not even a counter value); the others
    /// commit.
    #[tokio::test]
    async fn a_failed_write_in_a_batch_undoes_only_itself() {
        let Some(both) = Both::start().await else {
            return;
        };
        let pg = &both.postgres;
        make_table(pg).await;
        let before = pg.batches();
        let insert = |x: i64, how: &'static str| {
            pg.write(move |tx| {
                Box::pin(async move {
                    let n = tx.next_value("gc").await?;
                    tx.client()
                        .execute("INSERT INTO t (x) VALUES ($1)", &[&x])
                        .await?;
                    match how {
                        "fails" => return Err(Error::Conflict(x.to_string())),
                        "statement" => {
                            tx.client().batch_execute("SELECT 1/0").await?;
                        }
                        "ignores" => {
                            let _ = tx.client().batch_execute("SELECT 1/0").await;
                        }
                        _ => {}
                    }
                    Ok(n)
                })
            })
        };
        let (open, held) = gate(pg);
        let (held, a, b, c, d, e, ()) = tokio::join!(
            held,
            insert(1, "ok"),
            insert(2, "fails"),
            insert(3, "statement"),
            insert(4, "ignores"),
            insert(5, "ok"),
            open_later(open)
        );
        held.unwrap();
        assert_eq!(a.unwrap(), 1);
        assert!(matches!(b, Err(Error::Conflict(_))), "{b:?}");
        assert!(matches!(c, Err(Error::Postgres(_))), "{c:?}");
        assert!(d.is_err(), "{d:?}");
        assert_eq!(
            e.unwrap(),
            2,
            "the failed writes' counter values are given back"
        );
        assert!(pg.batches() - before <= 2, "{}", pg.batches() - before);
        assert_eq!(rows(pg, "SELECT x FROM t ORDER BY x").await, [1, 5]);
        assert_eq!(
            rows(pg, "SELECT next FROM sequences WHERE name = 'gc'").await,
            [3]
        );
    }

    /// A write that panics is answered with an error and undone; the
    /// writes of its batch and later ones commit.
    #[tokio::test]
    async fn a_panicking_write_is_refused_and_the_writer_goes_on() {
        let Some(both) = Both::start().await else {
            return;
        };
        let pg = &both.postgres;
        make_table(pg).await;
        let insert = |x: i64, panics: bool| {
            pg.write(move |tx| {
                Box::pin(async move {
                    tx.client()
                        .execute("INSERT INTO t (x) VALUES ($1)", &[&x])
                        .await?;
                    assert!(!panics, "write {x} panics, as the test asks");
                    Ok(x)
                })
            })
        };
        let (open, held) = gate(pg);
        let (held, a, b, c, ()) = tokio::join!(
            held,
            insert(1, false),
            insert(2, true),
            insert(3, false),
            open_later(open)
        );
        held.unwrap();
        assert_eq!(a.unwrap(), 1);
        assert!(matches!(b, Err(Error::Commit(_))), "{b:?}");
        assert_eq!(c.unwrap(), 3);
        assert_eq!(insert(4, false).await.unwrap(), 4);
        assert_eq!(rows(pg, "SELECT x FROM t ORDER BY x").await, [1, 3, 4]);
    }

    /// A caller that goes away once its write is queued does not stop it:
    /// the write commits with its batch; and `close` waits for the writes
    /// queued, then refuses new ones.
    #[tokio::test]
    async fn a_dropped_caller_write_still_commits_and_close_waits() {
        let Some(both) = Both::start().await else {
            return;
        };
        let pg = &both.postgres;
        make_table(pg).await;
        let (open, held) = gate(pg);
        let dropped = pg.write(|tx| {
            Box::pin(async move {
                tx.client()
                    .execute("INSERT INTO t (x) VALUES (8)", &[])
                    .await?;
                Ok(())
            })
        });
        let (mut held, mut dropped) = (held, Box::pin(dropped));
        // Polled once, each is queued; then their callers go away.
        assert!(futures::poll!(&mut held).is_pending());
        assert!(futures::poll!(&mut dropped).is_pending());
        drop((held, dropped));
        tokio::time::timeout(
            Duration::from_secs(30),
            futures::future::join(pg.close(), open_later(open)),
        )
        .await
        .expect("close ends once the queued writes are answered");
        let other = both.another_front_node().await;
        assert_eq!(rows(&other, "SELECT x FROM t").await, [8]);
        let refused = pg.write(|_| Box::pin(async { Ok(()) })).await;
        assert!(matches!(refused, Err(Error::Closed)), "{refused:?}");
    }
}
