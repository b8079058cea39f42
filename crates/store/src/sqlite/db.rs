use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags};
use rusqlite_migration::{M, Migrations};
use tokio::sync::{mpsc, oneshot};

use crate::backend::Backend;

use super::schema;
use crate::error::Error;

/// The schema's migrations, oldest first; the store's version is their count.
pub(crate) fn migrations() -> Vec<M<'static>> {
    vec![
        M::up(include_str!("migrations/001_initial.sql")),
        M::up(include_str!("migrations/002_acknowledgements.sql")),
        M::up(include_str!("migrations/003_deadlines_and_events.sql")),
        M::up(include_str!("migrations/004_escalation.sql")),
        M::up(include_str!("migrations/005_subjects.sql")),
        M::up(include_str!("migrations/006_references.sql")),
        M::up(include_str!("migrations/007_settled.sql")),
        // Builds the chain over the events already stored, in Rust: SQLite
        // has no SHA-256.
        M::up_with_hook(
            include_str!("migrations/008_audit_log.sql"),
            |tx: &rusqlite::Transaction<'_>| {
                crate::audit::backfill(tx)
                    .map_err(|e| rusqlite_migration::HookError::Hook(e.to_string()))
            },
        ),
        M::up(include_str!("migrations/009_peer_blocks.sql")),
        M::up(include_str!("migrations/010_watchlist.sql")),
        M::up(include_str!("migrations/011_watchlist_held_expiry.sql")),
        M::up(include_str!("migrations/012_hit_reports.sql")),
    ]
}

/// A write waiting in the writer's batch.
trait Job: Send {
    /// Runs the write inside the batch's transaction; in a savepoint of its
    /// own when `isolated`, so that its failure undoes its changes only.
    /// May run twice: see [`writer_loop`]. Returns whether it succeeded.
    fn run(&mut self, conn: &Connection, isolated: bool) -> bool;
    /// Tells the caller, once the transaction has committed (or failed to).
    fn finish(self: Box<Self>, committed: Result<(), String>);
}

struct Write<T, F> {
    f: F,
    result: Option<Result<T, Error>>,
    done: oneshot::Sender<Result<T, Error>>,
}

impl<T, F> Job for Write<T, F>
where
    T: Send,
    F: Fn(&Connection) -> Result<T, Error> + Send,
{
    fn run(&mut self, conn: &Connection, isolated: bool) -> bool {
        let result = if isolated {
            in_savepoint(conn, &self.f)
        } else {
            (self.f)(conn)
        };
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, committed: Result<(), String>) {
        let result = match (committed, self.result) {
            (Ok(()), Some(result)) => result,
            (Ok(()), None) => Err(Error::Commit("the write never ran".into())),
            (Err(e), _) => Err(Error::Commit(e)),
        };
        let _ = self.done.send(result);
    }
}

/// How the store is set up.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Most writes committed in one transaction.
    pub max_batch: usize,
    /// Read-only connections in the pool.
    pub readers: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_batch: 512,
            readers: 4,
        }
    }
}

struct Inner {
    writer: Mutex<Option<mpsc::Sender<Box<dyn Job>>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    path: PathBuf,
    events: Arc<tokio::sync::Notify>,
}

/// A handle on a node's store; clones share it.
#[derive(Clone)]
pub(crate) struct Sqlite {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Sqlite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sqlite")
            .field("path", &self.inner.path)
            .finish()
    }
}

/// Prepared statements kept per connection: more than the store has, so
/// none is parsed again (rusqlite keeps 16 by default, fewer than the
/// statements a delivery alone runs).
const STATEMENT_CACHE: usize = 128;

/// What every connection, the writer's and the readers', is set up with.
fn cache_statements(conn: &Connection) -> Result<(), rusqlite::Error> {
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // Plans that do not depend on bound values: without this SQLite reads a
    // bound `LIMIT ?` while planning and so prepares the statement again at
    // every run, a tenth of a node's SQLite time under load. No query here
    // needs a bound value to pick its index (partial indexes are matched
    // on literals).
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

fn configure(conn: &Connection) -> Result<(), rusqlite::Error> {
    cache_statements(conn)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // FULL: a commit is on disk (the WAL fsynced) before any caller is told.
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(())
}

impl Sqlite {
    /// The database file inside a data directory.
    pub(crate) fn database_path(data_dir: &Path) -> PathBuf {
        schema::database_path(data_dir)
    }

    /// Opens (creating and migrating as needed) the store in `data_dir`.
    pub(crate) fn open(data_dir: &Path, options: StoreOptions) -> Result<Self, Error> {
        std::fs::create_dir_all(data_dir).map_err(|cause| Error::Io {
            path: data_dir.display().to_string(),
            cause,
        })?;
        let path = Self::database_path(data_dir);
        let mut conn = Connection::open(&path)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Commit(format!(
                "could not enable WAL (journal_mode={mode})"
            )));
        }
        configure(&conn)?;
        Migrations::new(migrations()).to_latest(&mut conn)?;

        let mut readers = Vec::with_capacity(options.readers.max(1));
        for _ in 0..options.readers.max(1) {
            let r = Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            cache_statements(&r)?;
            r.busy_timeout(std::time::Duration::from_secs(10))?;
            readers.push(Mutex::new(r));
        }

        let (tx, rx) = mpsc::channel::<Box<dyn Job>>(4096);
        let max_batch = options.max_batch.max(1);
        let thread = std::thread::Builder::new()
            .name("tocsin-store-writer".into())
            .spawn(move || writer_loop(conn, rx, max_batch))
            .map_err(|cause| Error::Io {
                path: path.display().to_string(),
                cause,
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                writer: Mutex::new(Some(tx)),
                thread: Mutex::new(Some(thread)),
                readers,
                next_reader: AtomicUsize::new(0),
                path,
                events: Arc::new(tokio::sync::Notify::new()),
            }),
        })
    }

    pub(crate) fn notify_events(&self) {
        self.inner.events.notify_waiters();
    }

    /// Runs `f` in the writer's current transaction; resolves once that
    /// transaction is committed. An error from `f` rolls back `f`'s own
    /// changes only. `f` may be run twice (the first run undone, when
    /// another write of the batch failed), so it must do nothing but work
    /// on the connection.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: Fn(&Connection) -> Result<T, Error> + Send + 'static,
    {
        let (done, rx) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Write {
            f,
            result: None,
            done,
        });
        let sender = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or(Error::Closed)?;
        sender.send(job).await.map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Runs `f` on a pooled read-only connection.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, Error> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let i = inner.next_reader.fetch_add(1, Ordering::Relaxed) % inner.readers.len();
            let conn = inner.readers[i].lock().unwrap_or_else(|e| e.into_inner());
            f(&conn)
        })
        .await
        .map_err(|_| Error::Closed)?
    }

    /// Like [`Sqlite::read`], but everything `f` reads comes from one
    /// snapshot: for reads made of several queries.
    pub(crate) async fn read_snapshot<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, Error> + Send + 'static,
    {
        self.read(move |conn| {
            // Rolled back when dropped, also if `f` fails or panics, so the
            // pooled connection never stays inside a transaction.
            let tx = conn.unchecked_transaction()?;
            let result = f(&tx)?;
            tx.commit()?;
            Ok(result)
        })
        .await
    }
}

#[async_trait]
impl Backend for Sqlite {
    fn event_signal(&self) -> Arc<tokio::sync::Notify> {
        self.inner.events.clone()
    }

    async fn close(&self) {
        let sender = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        drop(sender);
        let thread = self
            .inner
            .thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

fn in_savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, Error>,
) -> Result<T, Error> {
    // A savepoint copies every page a write touches before it changes it:
    // worth it only when a write in the batch fails (see writer_loop).
    conn.execute_batch("SAVEPOINT job")?;
    match f(conn) {
        Ok(v) => {
            conn.execute_batch("RELEASE job")?;
            Ok(v)
        }
        Err(e) => {
            conn.execute_batch("ROLLBACK TO job; RELEASE job")?;
            Err(e)
        }
    }
}

/// Runs one write; a write that panics counts as failed (its caller hears
/// that it never ran) rather than taking the writer thread down.
fn run_job(job: &mut Box<dyn Job>, conn: &Connection, isolated: bool) -> bool {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run(conn, isolated)))
        .unwrap_or_else(|_| {
            tracing::error!("a store write panicked; it is refused");
            false
        })
}

/// Group commit: takes every write waiting (up to `max_batch`) and commits
/// them in one transaction, one fsync. The writes run optimistically, with
/// no savepoint each (a savepoint copies every page a write touches, which
/// was a fifth of the writer's work); should one fail, the transaction is
/// rolled back and the batch run again with a savepoint per write, so the
/// failed write's changes alone are undone.
fn writer_loop(conn: Connection, mut rx: mpsc::Receiver<Box<dyn Job>>, max_batch: usize) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(max_batch);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let n = batch.len();
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            // The jobs never ran; dropping them tells each caller the write
            // failed (Error::Closed) rather than leaving it waiting.
            tracing::error!(error = %e, writes = n, "could not begin a transaction");
            batch.clear();
            continue;
        }
        // The optimistic pass stops at the first failure: some errors (a
        // full disk, an I/O error) roll the whole transaction back, and a
        // write run after that would commit on its own.
        let failed = batch.iter_mut().any(|job| !run_job(job, &conn, false));
        let mut committed = Ok(());
        if failed {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            committed = conn
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(|e| e.to_string());
            if committed.is_ok() {
                for job in batch.iter_mut() {
                    run_job(job, &conn, true);
                    if conn.is_autocommit() {
                        committed = Err(
                            "SQLite rolled the transaction back (disk full or I/O error)".into(),
                        );
                        break;
                    }
                }
            }
        }
        if committed.is_ok() {
            committed = conn.execute_batch("COMMIT").map_err(|e| e.to_string());
        }
        if let Err(e) = &committed {
            tracing::error!(error = %e, writes = n, "commit failed");
            let _ = conn.execute_batch("ROLLBACK");
        }
        for job in batch.drain(..) {
            job.finish(committed.clone());
        }
    }
    tracing::debug!("store writer stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch where one write fails: the others commit, the failed one's
    /// changes are undone, and each caller hears its own outcome.
    #[tokio::test]
    async fn a_failed_write_undoes_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(dir.path(), StoreOptions::default()).unwrap();
        store
            .write(|conn| Ok(conn.execute_batch("CREATE TABLE t (x INTEGER)")?))
            .await
            .unwrap();

        // Hold the writer in a write of its own until the three below are
        // queued, so that they make one batch.
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Mutex::new(gate);
        let held = store.write(move |_| {
            let _ = gate.lock().unwrap().recv();
            Ok(())
        });
        let insert = |x: i64, fail: bool| {
            store.write(move |conn| {
                conn.execute("INSERT INTO t (x) VALUES (?1)", [x])?;
                if fail {
                    return Err(Error::Conflict(format!("{x}")));
                }
                Ok(x)
            })
        };
        let (a, b, c) = (insert(1, false), insert(2, true), insert(3, false));
        let release = async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            release.send(()).unwrap();
        };
        let (held, a, b, c, ()) = tokio::join!(held, a, b, c, release);
        held.unwrap();
        assert_eq!(a.unwrap(), 1);
        assert!(matches!(b, Err(Error::Conflict(_))), "{b:?}");
        assert_eq!(c.unwrap(), 3);
        let rows: Vec<i64> = store
            .read(|conn| {
                let mut stmt = conn.prepare("SELECT x FROM t ORDER BY x")?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
            .unwrap();
        assert_eq!(rows, vec![1, 3]);
    }
}
