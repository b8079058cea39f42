//! Real `tocsin node` processes, for the tests and benchmarks that need
//! them (crashes, signals, resident memory, the binary as users run it).
//!
//! [`NodeCommand`] says how to run one (the `tocsin` binary, a node
//! configuration, more arguments, environment); [`NodeProcess`] is the
//! running node. It writes the node's stdout and stderr to a log file, waits
//! until the node answers a gRPC health check over mutual TLS (presenting
//! the node's own certificate, read from its configuration), stops it with
//! SIGTERM or SIGKILL, starts it again on the same configuration (so the
//! same port and data directory), and kills it when dropped, so no process
//! outlives its test.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tocsin_testkit::ProcessError> {
//! use tocsin_testkit::process::{NodeCommand, tocsin_binary};
//! let tocsin = tocsin_binary(None)?;
//! let mut node = NodeCommand::new(tocsin, "pki/agencies/FR-DGSI/node.toml")
//!     .start()
//!     .await?;
//! node.kill()?; // SIGKILL, as a crash would
//! node.restart().await?; // the same port and store, serving again
//! node.terminate().await?; // SIGTERM; a clean exit or an error
//! # Ok(()) }
//! ```

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{Read, Seek};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tocsin_core::federation::Federation;
use tocsin_core::{AgencyId, Identity};
use tocsin_node::NodeConfig;
use tocsin_trust::tls::{self, TlsMaterial};
use tonic::transport::Endpoint;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// How much of a node's log an error quotes: its last lines.
const LOG_TAIL_LINES: usize = 40;

/// What the node prints when its port is taken. A node started again on
/// its port may find it taken for a moment (another process's ephemeral
/// port, picked while the node was down); it is started again.
const CANNOT_LISTEN: &str = "cannot listen on";

/// Why a node process could not be found, started, or stopped as asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessError {
    /// No `tocsin` binary where one was looked for.
    #[error(
        "no tocsin binary at {}: build it with `cargo build -p tocsin-cli` \
         (with --release for benchmarks), or give its path",
        looked.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" nor ")
    )]
    NoBinary {
        /// Where it was looked for.
        looked: Vec<PathBuf>,
    },
    /// The node's configuration (or a file it names) cannot be read, so
    /// there is no knowing where it listens or how to reach it.
    #[error("cannot read node configuration {}: {message}", path.display())]
    Config {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The process could not be started.
    #[error("cannot start {}: {source}", binary.display())]
    Spawn {
        /// The binary.
        binary: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The log file could not be opened.
    #[error("cannot open node log {}: {source}", path.display())]
    Log {
        /// The log file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Waiting for or signalling the process failed.
    #[error("{agency}'s node process (pid {pid}): {source}")]
    Os {
        /// The node's agency.
        agency: AgencyId,
        /// Its process id.
        pid: u32,
        /// The cause.
        source: std::io::Error,
    },
    /// The node exited while it was expected to run.
    #[error("{agency}'s node exited ({status}); its log ends:\n{log}")]
    Exited {
        /// The node's agency.
        agency: AgencyId,
        /// How it exited.
        status: ExitStatus,
        /// The end of what it logged since it was last started.
        log: String,
    },
    /// The node did not answer a health check in time.
    #[error("{agency}'s node did not serve within {timeout:?}; its log ends:\n{log}")]
    NotServing {
        /// The node's agency.
        agency: AgencyId,
        /// How long it was given.
        timeout: Duration,
        /// The end of what it logged since it was last started.
        log: String,
    },
    /// Something else held the node's port until the ready timeout (an
    /// earlier node still running, or another process).
    #[error("{agency}'s node cannot listen on {listen}: something else held it for {timeout:?}")]
    PortTaken {
        /// The node's agency.
        agency: AgencyId,
        /// The address it is configured to listen on.
        listen: SocketAddr,
        /// How long it was given.
        timeout: Duration,
    },
    /// The node did not exit in time after SIGTERM; it was killed.
    #[error(
        "{agency}'s node did not stop within {timeout:?} of SIGTERM and was killed; its log ends:\n{log}"
    )]
    NotStopped {
        /// The node's agency.
        agency: AgencyId,
        /// How long it was given.
        timeout: Duration,
        /// The end of what it logged since it was last started.
        log: String,
    },
    /// The node exited after SIGTERM, but not cleanly.
    #[error("{agency}'s node exited with {status} after SIGTERM; its log ends:\n{log}")]
    Unclean {
        /// The node's agency.
        agency: AgencyId,
        /// How it exited.
        status: ExitStatus,
        /// The end of what it logged since it was last started.
        log: String,
    },
    /// Asked to stop or signal a node that is not running.
    #[error("{agency}'s node is not running")]
    NotRunning {
        /// The node's agency.
        agency: AgencyId,
    },
    /// Asked to start a node that is still running.
    #[error("{agency}'s node is already running (pid {pid})")]
    AlreadyRunning {
        /// The node's agency.
        agency: AgencyId,
        /// Its process id.
        pid: u32,
    },
}

/// The `tocsin` binary: `explicit` if given (for example
/// `env!("CARGO_BIN_EXE_tocsin")` in the `tocsin-cli` crate's own tests, or
/// a benchmark's `--tocsin`), otherwise the one cargo builds beside the
/// running executable (a binary in `target/PROFILE/`, or a test in
/// `target/PROFILE/deps/`).
pub fn tocsin_binary(explicit: Option<&Path>) -> Result<PathBuf, ProcessError> {
    let looked = match explicit {
        Some(path) => vec![path.to_owned()],
        None => {
            let exe = std::env::current_exe().map_err(|source| ProcessError::Spawn {
                binary: PathBuf::from("tocsin"),
                source,
            })?;
            let dir = exe.parent().unwrap_or(Path::new("."));
            let mut looked = vec![dir.join("tocsin")];
            if dir.file_name().is_some_and(|n| n == "deps")
                && let Some(profile) = dir.parent()
            {
                looked.push(profile.join("tocsin"));
            }
            looked
        }
    };
    match looked.iter().find(|p| p.is_file()) {
        Some(found) => Ok(found.clone()),
        None => Err(ProcessError::NoBinary { looked }),
    }
}

/// How to run a node: `BINARY node --config CONFIG [ARGS]`, with its
/// output appended to a log file. Build one with [`NodeCommand::new`], then
/// [`spawn`](NodeCommand::spawn) or [`start`](NodeCommand::start) it.
#[derive(Debug, Clone)]
pub struct NodeCommand {
    /// A program the node runs under, with its arguments (see
    /// [`NodeCommand::wrapper`]).
    wrapper: Option<(OsString, Vec<OsString>)>,
    binary: PathBuf,
    config: PathBuf,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    dir: Option<PathBuf>,
    log: Option<PathBuf>,
    ready_timeout: Duration,
    stop_timeout: Duration,
}

impl NodeCommand {
    /// Runs `binary node --config config`. A relative `config` is taken
    /// from [`current_dir`](Self::current_dir) if one is set. The node logs
    /// at `RUST_LOG=warn` unless [`env`](Self::env) says otherwise; it is
    /// given 30 s to serve and 15 s to stop.
    pub fn new(binary: impl Into<PathBuf>, config: impl Into<PathBuf>) -> Self {
        Self {
            wrapper: None,
            binary: binary.into(),
            config: config.into(),
            args: Vec::new(),
            envs: Vec::new(),
            dir: None,
            log: None,
            ready_timeout: Duration::from_secs(30),
            stop_timeout: Duration::from_secs(15),
        }
    }

    /// One more argument after the configuration (for example
    /// `--clock-start`).
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// More arguments after the configuration.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Runs the node as `program args.. BINARY node --config ..`: under a
    /// program that puts it somewhere else and then execs it in its own
    /// place, such as `ip netns exec NS` (another host's network, see
    /// [`crate::netns`]). The process id, kills and signals are then the
    /// node's only because the wrapper execs rather than forks: one that
    /// forks would be signalled instead.
    ///
    /// The node may then listen on a network stack this process cannot
    /// see, so whether its port is free is not checked before it starts:
    /// any answer at its address counts as its own.
    pub fn wrapper<I, S>(mut self, program: impl Into<OsString>, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.wrapper = Some((program.into(), args.into_iter().map(Into::into).collect()));
        self
    }

    /// An environment variable for the node (`RUST_LOG` replaces the
    /// default `warn`).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// The node's working directory (default: the test's).
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Where the node's stdout and stderr go, appended across restarts
    /// (default: `node.log` beside its configuration file).
    pub fn log_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.log = Some(path.into());
        self
    }

    /// How long [`NodeProcess::wait_serving`] waits for the node to serve.
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// How long [`NodeProcess::terminate`] waits after SIGTERM before it
    /// kills the node.
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.stop_timeout = timeout;
        self
    }

    /// Starts the node and returns at once, before it serves (to kill it
    /// while it starts up, or to time its start-up with
    /// [`NodeProcess::wait_serving`]).
    pub fn spawn(self) -> Result<NodeProcess, ProcessError> {
        let config = match &self.dir {
            Some(dir) => dir.join(&self.config),
            None => self.config.clone(),
        };
        let log = self
            .log
            .clone()
            .unwrap_or_else(|| config.parent().unwrap_or(Path::new(".")).join("node.log"));
        let Listen {
            agency,
            listen,
            addr,
        } = read_config(&config)?;
        let mut node = NodeProcess {
            command: self,
            config,
            agency,
            listen,
            addr,
            log,
            log_from: 0,
            child: None,
            spawned: Instant::now(),
            port_was_free: false,
        };
        node.launch()?;
        Ok(node)
    }

    /// Starts the node and returns once it serves.
    pub async fn start(self) -> Result<NodeProcess, ProcessError> {
        let mut node = self.spawn()?;
        node.wait_serving().await?;
        Ok(node)
    }
}

/// Where a node listens, and where to reach it, from its configuration.
#[derive(Debug, Clone)]
struct Listen {
    agency: AgencyId,
    /// As configured.
    listen: SocketAddr,
    /// To connect to (loopback for an unspecified address).
    addr: SocketAddr,
}

fn read_config(path: &Path) -> Result<Listen, ProcessError> {
    let config = NodeConfig::load(path).map_err(|e| ProcessError::Config {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let mut addr = config.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    if addr.port() == 0 {
        return Err(ProcessError::Config {
            path: path.to_owned(),
            message: "it listens on port 0: give the node a fixed port, so that it can be \
                      reached and started again on it"
                .into(),
        });
    }
    Ok(Listen {
        agency: config.agency,
        listen: config.listen,
        addr,
    })
}

/// The node's own TLS material, as its configuration names it: a health
/// check presents it, as the node would to itself.
fn probe_material(path: &Path) -> Result<TlsMaterial, ProcessError> {
    let bad = |message: String| ProcessError::Config {
        path: path.to_owned(),
        message,
    };
    let config = NodeConfig::load(path).map_err(|e| bad(e.to_string()))?;
    let federation = Federation::load(&config.federation).map_err(|e| bad(e.to_string()))?;
    TlsMaterial::load(
        &config.tls.ca,
        &config.tls.cert,
        &config.tls.key,
        federation.id(),
    )
    .map_err(|e| bad(e.to_string()))
}

fn os_error(agency: &AgencyId, pid: u32, source: std::io::Error) -> ProcessError {
    ProcessError::Os {
        agency: agency.clone(),
        pid,
        source,
    }
}

/// A running `tocsin node` process (or one stopped, to be started again);
/// killed with SIGKILL when dropped.
#[derive(Debug)]
pub struct NodeProcess {
    command: NodeCommand,
    /// The configuration file, as the node is given it.
    config: PathBuf,
    agency: AgencyId,
    /// Where it listens, as configured.
    listen: SocketAddr,
    /// Where to reach it.
    addr: SocketAddr,
    log: PathBuf,
    /// Where in the log the current incarnation began.
    log_from: u64,
    child: Option<Child>,
    /// When the current incarnation was started.
    spawned: Instant,
    /// Whether nothing else listened on the node's port when the current
    /// incarnation was started: only then is an answer there its own.
    port_was_free: bool,
}

impl NodeProcess {
    /// The agency whose node this is.
    pub fn agency(&self) -> &AgencyId {
        &self.agency
    }

    /// Where the node listens (loopback if it listens on every interface).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The node's configuration file.
    pub fn config(&self) -> &Path {
        &self.config
    }

    /// The process id of the current incarnation; `None` once it was
    /// killed or stopped through this handle, or found exited while
    /// waiting for it to serve.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still running (it may have exited on its
    /// own; see [`wait_serving`](Self::wait_serving) for why).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The log file, with every incarnation's output.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Everything the node has logged, over every incarnation.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// What the node has logged since it was last started.
    pub fn last_log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.seek(std::io::SeekFrom::Start(self.log_from));
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// The last lines of [`last_log`](Self::last_log), for error messages.
    fn log_tail(&self) -> String {
        let text = self.last_log();
        let lines: Vec<&str> = text.lines().collect();
        let mut tail = String::new();
        if lines.len() > LOG_TAIL_LINES {
            let _ = writeln!(
                tail,
                "[{} earlier lines in {}]",
                lines.len() - LOG_TAIL_LINES,
                self.log.display()
            );
        }
        for line in &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..] {
            let _ = writeln!(tail, "{line}");
        }
        if tail.is_empty() {
            tail = "(nothing)".into();
        }
        tail
    }

    fn launch(&mut self) -> Result<(), ProcessError> {
        let log_error = |source| ProcessError::Log {
            path: self.log.clone(),
            source,
        };
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(log_error)?;
        let err = out.try_clone().map_err(log_error)?;
        self.log_from = out.metadata().map_err(log_error)?.len();
        let c = &self.command;
        let mut cmd = match &c.wrapper {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(&c.binary);
                cmd
            }
            None => Command::new(&c.binary),
        };
        cmd.arg("node")
            .arg("--config")
            .arg(&self.config)
            .args(&c.args)
            .env("RUST_LOG", "warn")
            .envs(c.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        if let Some(dir) = &c.dir {
            cmd.current_dir(dir);
        }
        // Under a wrapper the node's port may be on another network stack,
        // which a bind here cannot test.
        self.port_was_free =
            c.wrapper.is_some() || std::net::TcpListener::bind(self.listen).is_ok();
        self.spawned = Instant::now();
        let child = cmd.spawn().map_err(|source| ProcessError::Spawn {
            binary: match &c.wrapper {
                Some((program, _)) => PathBuf::from(program),
                None => c.binary.clone(),
            },
            source,
        })?;
        self.child = Some(child);
        Ok(())
    }

    /// Starts the node again on the same configuration (so the same port and
    /// data directory), and returns at once, before it serves. Refused while
    /// it still runs.
    pub fn respawn(&mut self) -> Result<(), ProcessError> {
        if let Some(pid) = self.pid()
            && self.is_running()
        {
            return Err(ProcessError::AlreadyRunning {
                agency: self.agency.clone(),
                pid,
            });
        }
        self.reap();
        let Listen {
            agency,
            listen,
            addr,
        } = read_config(&self.config)?;
        (self.agency, self.listen, self.addr) = (agency, listen, addr);
        self.launch()
    }

    /// Waits until the node answers a gRPC health check over mutual TLS as
    /// SERVING, and returns how long after it was started that was. Fails if
    /// it exits first (quoting its log), or after the command's ready
    /// timeout. A node that exits because its port is taken for a moment is
    /// started again, until the timeout; while something else listened on
    /// the port when it was started, no answer there counts as its own.
    pub async fn wait_serving(&mut self) -> Result<Duration, ProcessError> {
        let timeout = self.command.ready_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let material = probe_material(&self.config)?;
        let config =
            tls::client_config(&material, Identity::Agency(self.agency.clone())).map_err(|e| {
                ProcessError::Config {
                    path: self.config.clone(),
                    message: e.to_string(),
                }
            })?;
        // One lazily connecting channel: each check connects again until
        // the node listens, then reuses the connection.
        let channel = Endpoint::from_shared(format!("http://{}", self.addr))
            .map_err(|e| ProcessError::Config {
                path: self.config.clone(),
                message: e.to_string(),
            })?
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(2))
            .connect_with_connector_lazy(tls::connector(config));
        let mut health = HealthClient::new(channel);
        loop {
            let child = self
                .child
                .as_mut()
                .ok_or_else(|| ProcessError::NotRunning {
                    agency: self.agency.clone(),
                })?;
            let pid = child.id();
            let exited = child
                .try_wait()
                .map_err(|e| os_error(&self.agency, pid, e))?;
            if let Some(status) = exited {
                self.child = None;
                if self.last_log().contains(CANNOT_LISTEN) {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(self.port_taken(timeout));
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    self.launch()?;
                    continue;
                }
                return Err(ProcessError::Exited {
                    agency: self.agency.clone(),
                    status,
                    log: self.log_tail(),
                });
            }
            // Another process on the port (an earlier node still running)
            // would answer for this one, which is about to exit.
            if self.port_was_free {
                let asked = health.check(HealthCheckRequest::default());
                if let Ok(Ok(answer)) = tokio::time::timeout(Duration::from_secs(2), asked).await
                    && answer.into_inner().status == ServingStatus::Serving as i32
                {
                    return Ok(self.spawned.elapsed());
                }
            }
            if tokio::time::Instant::now() >= deadline {
                if !self.port_was_free {
                    return Err(self.port_taken(timeout));
                }
                return Err(ProcessError::NotServing {
                    agency: self.agency.clone(),
                    timeout,
                    log: self.log_tail(),
                });
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn port_taken(&self, timeout: Duration) -> ProcessError {
        ProcessError::PortTaken {
            agency: self.agency.clone(),
            listen: self.listen,
            timeout,
        }
    }

    /// SIGKILL, as a crash would, and reaps the process.
    pub fn kill(&mut self) -> Result<(), ProcessError> {
        let mut child = self.child.take().ok_or_else(|| ProcessError::NotRunning {
            agency: self.agency.clone(),
        })?;
        let pid = child.id();
        child.kill().map_err(|e| os_error(&self.agency, pid, e))?;
        child.wait().map_err(|e| os_error(&self.agency, pid, e))?;
        Ok(())
    }

    /// SIGTERM, then waits for a clean exit. A node still running after the
    /// command's stop timeout is killed ([`ProcessError::NotStopped`]); one
    /// that exits otherwise than with success is [`ProcessError::Unclean`].
    /// Send it once the node serves: until then it has no handler for it.
    pub async fn terminate(&mut self) -> Result<(), ProcessError> {
        let not_running = || ProcessError::NotRunning {
            agency: self.agency.clone(),
        };
        let child = self.child.as_mut().ok_or_else(not_running)?;
        let pid = child.id();
        if let Some(status) = child
            .try_wait()
            .map_err(|e| os_error(&self.agency, pid, e))?
        {
            self.child = None;
            return Err(ProcessError::Exited {
                agency: self.agency.clone(),
                status,
                log: self.log_tail(),
            });
        }
        rustix::process::kill_process(
            rustix::process::Pid::from_child(child),
            rustix::process::Signal::TERM,
        )
        .map_err(|e| os_error(&self.agency, pid, e.into()))?;
        let timeout = self.command.stop_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let child = self.child.as_mut().ok_or_else(not_running)?;
            if let Some(status) = child
                .try_wait()
                .map_err(|e| os_error(&self.agency, pid, e))?
            {
                self.child = None;
                if status.success() {
                    return Ok(());
                }
                return Err(ProcessError::Unclean {
                    agency: self.agency.clone(),
                    status,
                    log: self.log_tail(),
                });
            }
            if tokio::time::Instant::now() >= deadline {
                self.reap();
                return Err(ProcessError::NotStopped {
                    agency: self.agency.clone(),
                    timeout,
                    log: self.log_tail(),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the node if it runs ([`terminate`](Self::terminate)), starts it
    /// again on the same configuration, port and data directory, and returns
    /// once it serves.
    pub async fn restart(&mut self) -> Result<(), ProcessError> {
        if self.is_running() {
            self.terminate().await?;
        }
        self.respawn()?;
        self.wait_serving().await?;
        Ok(())
    }

    /// Kills and reaps the process if there is one, ignoring errors.
    fn reap(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.reap();
    }
}
