//! A private PostgreSQL server for one test: `initdb` into a fresh
//! temporary directory, `pg_ctl start`, and `pg_ctl stop` plus removal of
//! the directory when the [`TestPostgres`] is dropped.
//!
//! The server listens only on a unix socket inside its own directory
//! (`listen_addresses = ''`): there is no port to race for, and no two
//! servers, test runs or engineers on one machine can reach each other's.
//! It runs with `fsync = on`, as production does, so that what the tests
//! measure and prove holds for a real deployment.
//!
//! The binaries come from `$TOCSIN_PG_BIN`, or else the newest
//! `/usr/lib/postgresql/<version>/bin` (the Debian layout). Where there
//! are none, [`TestPostgres::start`] returns `Ok(None)` and the test should
//! print SKIPPED and pass, unless `TOCSIN_REQUIRE_POSTGRES=1` (CI), which
//! makes that an error. PostgreSQL refuses to run as root, so when the
//! tests do, the server runs as the `postgres` user (`runuser`).

#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// The superuser `initdb` creates; tests connect as it.
pub const USER: &str = "tocsin";

/// The database every server has from the start.
pub const DEFAULT_DATABASE: &str = "postgres";

/// The variable that makes missing binaries an error rather than a skip.
pub const REQUIRE_VAR: &str = "TOCSIN_REQUIRE_POSTGRES";

/// The variable naming the directory of the PostgreSQL binaries.
pub const BIN_VAR: &str = "TOCSIN_PG_BIN";

/// Where the Debian packages put each major version's binaries.
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";

/// The log lines an error carries: enough for the cause, not the history.
const LOG_TAIL_LINES: usize = 30;

/// Why a test server could not be had.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No PostgreSQL binaries, and `TOCSIN_REQUIRE_POSTGRES=1`.
    #[error(
        "no PostgreSQL binaries (looked in {searched}); install the `postgresql` package or set {BIN_VAR}, or unset {REQUIRE_VAR} to skip"
    )]
    Missing {
        /// Where they were looked for.
        searched: String,
    },
    /// Running as root, but there is no `postgres` user to run the server as.
    #[error("running as root and there is no `postgres` user to run PostgreSQL as: {0}")]
    NoPostgresUser(String),
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// `initdb` failed.
    #[error("initdb failed ({status}):\n{output}")]
    Initdb {
        /// Its exit status.
        status: String,
        /// What it printed.
        output: String,
    },
    /// The server did not start; the tail of its log says why.
    #[error("PostgreSQL did not start ({status}):\n{output}\n-- server log (tail) --\n{log_tail}")]
    Start {
        /// `pg_ctl`'s exit status.
        status: String,
        /// What `pg_ctl` printed.
        output: String,
        /// The last lines of the server's log.
        log_tail: String,
    },
    /// A database name that is not a plain identifier.
    #[error("database name {0:?}: use lowercase letters, digits and '_' only")]
    BadName(String),
    /// Talking to the server failed.
    #[error("PostgreSQL: {}", describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
}

/// A running private PostgreSQL server; dropping it stops the server
/// (immediately: nothing in it outlives the test) and removes its files.
#[derive(Debug)]
pub struct TestPostgres {
    bin: PathBuf,
    data: PathBuf,
    socket_dir: PathBuf,
    log: PathBuf,
    run_as_postgres: bool,
    // Last: removed after `drop` has stopped the server.
    dir: TempDir,
}

impl TestPostgres {
    /// Starts a fresh server, or returns `None` when there are no
    /// PostgreSQL binaries and `TOCSIN_REQUIRE_POSTGRES` is not `1`.
    ///
    /// Blocking (it waits for `initdb` and `pg_ctl start -w`, a second or
    /// two): async tests may call it directly, or in `spawn_blocking`.
    pub fn start() -> Result<Option<Self>, Error> {
        let Some(bin) = find_bin() else {
            if std::env::var(REQUIRE_VAR).as_deref() == Ok("1") {
                return Err(Error::Missing {
                    searched: searched(),
                });
            }
            return Ok(None);
        };
        Self::start_with(bin).map(Some)
    }

    /// Starts a fresh server from the binaries in `bin`.
    pub fn start_with(bin: PathBuf) -> Result<Self, Error> {
        Self::start_configured(bin, "")
    }

    /// Starts a server with `settings` (postgresql.conf lines) added after
    /// ours: the tests use it to make a server that cannot start.
    fn start_configured(bin: PathBuf, settings: &str) -> Result<Self, Error> {
        if !bin.join("initdb").is_file() {
            return Err(Error::Missing {
                searched: bin.display().to_string(),
            });
        }
        let run_as_postgres = rustix::process::geteuid().is_root();
        let dir = tempfile::Builder::new()
            .prefix("tocsin-pg-")
            .tempdir()
            .map_err(io("create the server's temporary directory"))?;
        let data = dir.path().join("data");
        let socket_dir = dir.path().join("socket");
        let log = dir.path().join("server.log");
        std::fs::create_dir(&socket_dir).map_err(io("create the socket directory"))?;
        if run_as_postgres {
            let (uid, gid) = postgres_ids()?;
            for path in [dir.path(), socket_dir.as_path()] {
                std::os::unix::fs::chown(path, Some(uid), Some(gid))
                    .map_err(io(&format!("chown {} to postgres", path.display())))?;
            }
        }
        let server = Self {
            bin,
            data,
            socket_dir,
            log,
            run_as_postgres,
            dir,
        };
        server.initdb()?;
        server.configure(settings)?;
        server.pg_ctl_start()?;
        Ok(server)
    }

    /// The connection string (tokio-postgres key/value form) for the
    /// default database.
    pub fn url(&self) -> String {
        self.url_for(DEFAULT_DATABASE)
    }

    /// The connection string for database `name` on this server.
    pub fn url_for(&self, name: &str) -> String {
        format!(
            "host={} user={USER} dbname={}",
            quote(&self.socket_dir.display().to_string()),
            quote(name)
        )
    }

    /// The server's own temporary directory: its data, socket and log.
    pub fn directory(&self) -> &Path {
        self.dir.path()
    }

    /// The directory holding the server's socket.
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// Creates database `name` (lowercase letters, digits, `_`) and returns
    /// its connection string, for tests that want several databases on
    /// one server.
    pub async fn create_database(&self, name: &str) -> Result<String, Error> {
        let plain = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !plain {
            return Err(Error::BadName(name.to_owned()));
        }
        let (client, connection) =
            tokio_postgres::connect(&self.url(), tokio_postgres::NoTls).await?;
        let connection = tokio::spawn(connection);
        let result = client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await;
        drop(client);
        // The connection ends once the client is gone; its own error, if
        // any, is no news beside the statement's.
        let _ = connection.await;
        result?;
        Ok(self.url_for(name))
    }

    fn initdb(&self) -> Result<(), Error> {
        let out = self
            .command("initdb")
            .arg("--pgdata")
            .arg(&self.data)
            .args([
                "--username",
                USER,
                // Only the test process (root, or this user) can reach the
                // socket directory, so trust is no weaker than a password.
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                // initdb's own final sync only: a lost test directory costs
                // nothing. The server itself runs with fsync on.
                "--no-sync",
                "--no-instructions",
            ])
            .output()
            .map_err(io("run initdb"))?;
        if !out.status.success() {
            return Err(Error::Initdb {
                status: out.status.to_string(),
                output: printed(&out),
            });
        }
        Ok(())
    }

    fn configure(&self, settings: &str) -> Result<(), Error> {
        let conf = self.data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).map_err(io("read postgresql.conf"))?;
        // Later settings win; these are the test server's whole difference.
        let _ = write!(
            text,
            "\n# tocsin-pgtest\n\
             listen_addresses = ''\n\
             unix_socket_directories = '{}'\n\
             fsync = on\n\
             synchronous_commit = on\n\
             max_connections = 40\n\
             shared_buffers = 16MB\n\
             {settings}",
            self.socket_dir.display().to_string().replace('\'', "''")
        );
        std::fs::write(&conf, text).map_err(io("write postgresql.conf"))
    }

    fn pg_ctl_start(&self) -> Result<(), Error> {
        let out = self
            .command("pg_ctl")
            .arg("start")
            .arg("--pgdata")
            .arg(&self.data)
            .arg("--log")
            .arg(&self.log)
            .args(["--wait", "--timeout", "60", "--silent"])
            .output()
            .map_err(io("run pg_ctl start"))?;
        if !out.status.success() {
            // It may be up but slow: do not leave it running.
            self.stop();
            return Err(Error::Start {
                status: out.status.to_string(),
                output: printed(&out),
                log_tail: tail(&self.log, LOG_TAIL_LINES),
            });
        }
        Ok(())
    }

    fn stop(&self) {
        // Immediate: no checkpoint, the directory is about to go. A failure
        // here is reported, not raised: this runs in `drop`.
        match self
            .command("pg_ctl")
            .arg("stop")
            .arg("--pgdata")
            .arg(&self.data)
            .args(["--mode", "immediate", "--wait", "--silent"])
            .output()
        {
            Ok(out) if out.status.success() => {}
            Ok(out) if !self.data.join("postmaster.pid").exists() => drop(out),
            Ok(out) => eprintln!("tocsin-pgtest: pg_ctl stop: {}", printed(&out)),
            Err(e) => eprintln!("tocsin-pgtest: pg_ctl stop: {e}"),
        }
    }

    /// A command for one of the server's binaries, as the `postgres` user
    /// when we are root.
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if self.run_as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        // Then `dir`, a TempDir, removes the files as the fields drop.
        self.stop();
    }
}

/// `$TOCSIN_PG_BIN`, or the newest Debian version directory with `initdb`.
fn find_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(BIN_VAR) {
        let dir = PathBuf::from(dir);
        return dir.join("initdb").is_file().then_some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(DEBIAN_ROOT)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn searched() -> String {
    match std::env::var_os(BIN_VAR) {
        Some(dir) => format!("{BIN_VAR}={}", PathBuf::from(dir).display()),
        None => format!("{DEBIAN_ROOT}/*/bin"),
    }
}

/// The `postgres` user's uid and gid, from `id` (no unsafe libc calls).
fn postgres_ids() -> Result<(u32, u32), Error> {
    let id = |flag: &str| -> Result<u32, Error> {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .map_err(io("run id"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        match text.trim().parse() {
            Ok(n) if out.status.success() => Ok(n),
            _ => Err(Error::NoPostgresUser(printed(&out))),
        }
    };
    Ok((id("-u")?, id("-g")?))
}

/// A value for a key/value connection string: single-quoted, with `\` and
/// `'` escaped, so a path with spaces stays one value.
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// tokio-postgres's `Display` names only the kind ("db error"); the
/// server's message is in the source.
fn describe(e: &tokio_postgres::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

fn printed(out: &Output) -> String {
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    text.trim_end().to_owned()
}

fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(no log at {}: {e})", path.display()),
    }
}

fn io(what: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        what: what.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests;
