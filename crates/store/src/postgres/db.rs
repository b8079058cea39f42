//! [`Postgres`], the backend's handle: a pool of connections, the write
//! transaction every change runs in ([`Tx`]), and reads.
//!
//! Writes. Each runs in one transaction (READ COMMITTED) that first locks
//! the `events` row of `sequences`. Every write of an agency, whichever
//! front node makes it, so waits for the one before it to commit: the
//! event log and the audit chain get their numbers in commit order (a
//! reader following them never skips a row that commits later with a
//! smaller number), and no two writes can deadlock on the rows they touch
//! after it. It is the SQLite backend's single writer, held by the
//! database instead of a thread. A write runs in a task of its own, so a
//! caller that goes away (a cancelled RPC) neither cuts a transaction
//! short nor leaves one open: like SQLite's, a write once started commits
//! or fails whole.
//!
//! Reads take a pooled connection and need no lock; a read made of several
//! queries runs in one REPEATABLE READ snapshot.

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::Notify;
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
}

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
        Ok(Self {
            pool,
            events,
            writes: Arc::default(),
            closed: Arc::default(),
            holder: holder.into(),
            listener: Arc::new(listener),
            fences: Arc::default(),
        })
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

    /// Runs `f` in a write transaction of its own (see the module's
    /// documentation) and commits it when `f` succeeds; rolls it back when
    /// `f` fails. Resolves once the commit is durable.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx) -> BoxFuture<'t, Result<T, Error>> + Send + 'static,
    {
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let pool = self.pool.clone();
        let events = self.events.clone();
        let writing = self.writes.clone().read_owned().await;
        let task = tokio::spawn(async move {
            let _writing = writing;
            let mut tx = Tx::begin(pool.get().await?).await?;
            match f(&mut tx).await {
                Ok(value) => {
                    let added = tx.events_added;
                    if added {
                        // Heard by every front node once this commits.
                        tx.client().batch_execute(NOTIFY).await?;
                    }
                    tx.commit().await?;
                    if added {
                        events.notify_waiters();
                    }
                    Ok(value)
                }
                Err(e) => {
                    tx.rollback().await;
                    Err(e)
                }
            }
        });
        task.await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "a PostgreSQL write panicked; it is refused");
            Err(Error::Commit("the write failed before it committed".into()))
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

    /// Refuses new writes, waits for those in progress to end, then
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

/// A write transaction in progress, on a connection of its own.
pub(crate) struct Tx {
    client: Option<deadpool_postgres::Object>,
    events_added: bool,
}

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
        begun
            .client()
            .batch_execute(
                "BEGIN ISOLATION LEVEL READ COMMITTED;
                 SELECT next FROM sequences WHERE name = 'events' FOR UPDATE",
            )
            .await?;
        Ok(Self {
            client: begun.finished(),
            events_added: false,
        })
    }

    /// The transaction's connection.
    pub(crate) fn client(&self) -> &Client {
        self.client
            .as_ref()
            .expect("a transaction has its connection until it ends")
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

    async fn commit(mut self) -> Result<(), Error> {
        let client = self.client.take().expect("not ended yet");
        match client.batch_execute("COMMIT").await {
            Ok(()) => Ok(()),
            Err(e) => {
                // Whether it committed is unknown: the connection goes.
                let _ = deadpool_postgres::Object::take(client);
                Err(Error::Commit(describe(&e)))
            }
        }
    }

    async fn rollback(mut self) {
        let client = self.client.take().expect("not ended yet");
        if client.batch_execute("ROLLBACK").await.is_err() {
            let _ = deadpool_postgres::Object::take(client);
        }
    }
}

impl Drop for Tx {
    /// A transaction dropped before its end (its task panicked) must not
    /// go back to the pool open: the connection is closed instead, and the
    /// server rolls the transaction back.
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = deadpool_postgres::Object::take(client);
        }
    }
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
    // Every earlier run's holder is `name/` and random hex: match the
    // prefix exactly, not as a LIKE pattern.
    let prefix = format!("{name}/");
    let released = [
        "UPDATE deliveries SET claimed_by = NULL, claimed_until = NULL
          WHERE starts_with(claimed_by, $1) AND claimed_by <> $2",
        "UPDATE messages SET claimed_by = NULL, claimed_until = NULL
          WHERE starts_with(claimed_by, $1) AND claimed_by <> $2",
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
