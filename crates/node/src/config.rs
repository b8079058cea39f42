//! A node's configuration file (`tocsin node --config FILE`).
//!
//! ```toml
//! agency = "TR-MIT"
//! listen = "127.0.0.1:7101"
//! data_dir = "data/TR-MIT"
//! federation = "pki/federation.toml"
//! metrics_listen = "127.0.0.1:9101"   # optional: Prometheus metrics over plain HTTP
//! web_listen = "127.0.0.1:8101"       # optional: the web desk (loopback only, token)
//!
//! [tls]
//! ca = "pki/ca.crt"
//! cert = "pki/agencies/TR-MIT/node.crt"
//! key = "pki/agencies/TR-MIT/node.key"
//!
//! [signing]
//! cert = "pki/agencies/TR-MIT/signing.crt"
//! key = "pki/agencies/TR-MIT/signing.key"
//!
//! [limits]        # optional, these are the defaults
//! max_message_bytes = 1048576
//! handshake_timeout = "10s"
//! request_timeout = "30s"
//! max_concurrent_streams = 256
//! max_concurrent_handshakes = 256
//! peer_concurrency = 8      # federation requests of one peer at once
//! peer_queue = 128          # more wait; beyond, RESOURCE_EXHAUSTED
//! clock_skew_tolerance = "2m"   # peers whose clocks differ more are warned about
//!
//! [clock]         # optional: scenario time instead of real time
//! start = "2014-12-01T00:00:00Z"
//! origin = "2026-11-23T10:00:00Z"   # real time when the clock reads start
//! speed = 500000
//!
//! [store]         # optional: PostgreSQL instead of SQLite under data_dir
//! url = "host=/var/run/postgresql dbname=tocsin_tr user=tocsin"
//! max_connections = 16
//!
//! [outbox]        # optional, these are the defaults
//! initial_backoff = "250ms"
//! max_backoff = "10s"
//! batch = 128
//! per_request = 32
//! ```
//!
//! Relative paths are taken from the configuration file's directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tocsin_core::AgencyId;

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read node configuration {path}: {cause}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        cause: std::io::Error,
    },
    /// The file is not a valid configuration.
    #[error("invalid node configuration {path}: {error}")]
    Parse {
        /// The file.
        path: String,
        /// What is missing or wrong.
        #[source]
        error: tocsin_core::toml_file::TomlError,
    },
    /// The file parses, but a value would leave the node unable to work.
    #[error("invalid node configuration {path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// TLS files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The federation CA certificate.
    pub ca: PathBuf,
    /// This node's certificate.
    pub cert: PathBuf,
    /// This node's private key (mode 0600).
    pub key: PathBuf,
    /// Certificate revocation lists signed by the federation CA (`tocsin
    /// pki revoke` writes `crl.pem`). Certificates they list get no
    /// session, and lose the sessions they have.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crls: Vec<PathBuf>,
    /// How often the certificate, key and CRL files are checked for
    /// changes; a change takes effect without a restart.
    #[serde(default = "default_reload_interval", with = "humantime_serde")]
    pub reload_interval: Duration,
}

fn default_reload_interval() -> Duration {
    Duration::from_secs(2)
}

/// Envelope-signing files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningFiles {
    /// The agency's signing certificate.
    pub cert: PathBuf,
    /// The agency's signing key (mode 0600).
    pub key: PathBuf,
}

/// Abuse limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest gRPC message accepted or sent, in bytes.
    pub max_message_bytes: usize,
    /// How long a TLS handshake may take.
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// How long one request may take.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Concurrent HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
    /// TLS handshakes in progress at once.
    pub max_concurrent_handshakes: usize,
    /// Sessions (TLS connections) one peer or operator may hold at once.
    pub max_connections_per_peer: usize,
    /// Federation requests of one peer worked on at once. Eight keep two
    /// cores busy (a request carries up to 64 alerts, 32 from a node with
    /// the default `per_request`) while leaving turns
    /// for the other peers: with 32, a flooding peer's handlers filled the
    /// runtime's queues and another agency's p99 tripled (docs/benchmarks.md).
    pub peer_concurrency: usize,
    /// Federation requests of one peer waiting for a turn; beyond this
    /// they are refused with RESOURCE_EXHAUSTED.
    pub peer_queue: usize,
    /// How far a peer's clock may be from this node's before it is warned
    /// about in the log and flagged on the metrics endpoint.
    #[serde(with = "humantime_serde")]
    pub clock_skew_tolerance: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 1024 * 1024,
            handshake_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_concurrent_streams: 256,
            max_concurrent_handshakes: 256,
            max_connections_per_peer: 32,
            peer_concurrency: 8,
            peer_queue: 128,
            clock_skew_tolerance: Duration::from_secs(120),
        }
    }
}

/// Outbox retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxOptions {
    /// First retry delay after a failure.
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// Longest retry delay.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// Deliveries in flight to one peer at once.
    pub batch: u32,
    /// The most alerts the outbox sends in one request (1 to 64). Alerts
    /// waiting for the same peer share a request, a batch check of their
    /// signatures and a commit; one waiting alone goes alone.
    pub per_request: u32,
    /// How long to wait for a peer's TCP connection.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
}

impl Default for OutboxOptions {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
            batch: 128,
            per_request: 32,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Screening and hit reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScreeningOptions {
    /// How long a hit report of one person on one entry covers later
    /// screens of the same person on that entry (the same traveller checked
    /// at two desks of one border post): they report the first, not again.
    #[serde(with = "humantime_serde")]
    pub hit_report_window: Duration,
}

impl Default for ScreeningOptions {
    fn default() -> Self {
        Self {
            hit_report_window: crate::domain::DEFAULT_REPEAT_WINDOW,
        }
    }
}

/// Where the store lives: the embedded SQLite file under `data_dir`
/// (the default), or a PostgreSQL database that several front nodes of the
/// agency may share.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// A PostgreSQL connection string (`host=/var/run/postgresql
    /// dbname=tocsin_tr user=tocsin`, or `postgres://...`); SQLite under
    /// `data_dir` when absent. It may hold a password, so it is never
    /// printed: prefer a unix socket with peer authentication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The most connections this node opens to PostgreSQL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
}

impl StoreSettings {
    /// Whether these are the default: SQLite under `data_dir`.
    pub fn is_sqlite(&self) -> bool {
        self.url.is_none()
    }
}

impl std::fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSettings")
            .field("url", &self.url.as_ref().map(|_| "(set, not shown)"))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// Scenario time (for demos and rehearsals): the node's clock reads `start`
/// at the real instant `origin` and runs `speed` times real time. Every
/// node of a federation must share all three, so their deadlines agree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockOptions {
    /// The scenario time at `origin`.
    pub start: chrono::DateTime<chrono::Utc>,
    /// The real time at which the clock reads `start` (default: when the
    /// node starts; set it explicitly for more than one node).
    #[serde(default)]
    pub origin: Option<chrono::DateTime<chrono::Utc>>,
    /// How many times faster than real time (default 1).
    #[serde(default = "one")]
    pub speed: f64,
    /// Stretches of scenario time that run at their own speed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pace: Vec<tocsin_core::Pace>,
}

fn one() -> f64 {
    1.0
}

/// A node's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The agency this node speaks for.
    pub agency: AgencyId,
    /// Where to listen.
    pub listen: SocketAddr,
    /// Where to serve Prometheus metrics over plain HTTP (`GET /metrics`);
    /// none when absent. Keep it on loopback or a monitoring network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
    /// Where to serve the web desk (plain HTTP, a per-start token); none
    /// when absent. Loopback only: the token is its only guard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_listen: Option<SocketAddr>,
    /// Where the store lives.
    pub data_dir: PathBuf,
    /// The federation file.
    pub federation: PathBuf,
    /// TLS files.
    pub tls: TlsFiles,
    /// Signing files.
    pub signing: SigningFiles,
    /// Abuse limits.
    #[serde(default)]
    pub limits: Limits,
    /// Outbox retry policy.
    #[serde(default)]
    pub outbox: OutboxOptions,
    /// Screening and hit reports.
    #[serde(default)]
    pub screening: ScreeningOptions,
    /// The store: SQLite under `data_dir` unless `[store] url` names a
    /// PostgreSQL database.
    #[serde(default, skip_serializing_if = "StoreSettings::is_sqlite")]
    pub store: StoreSettings,
    /// Scenario time; real time when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockOptions>,
}

impl NodeConfig {
    /// Reads a configuration file, resolving relative paths against its directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
            path: shown.clone(),
            cause,
        })?;
        let mut config: NodeConfig =
            tocsin_core::toml_file::from_str(&text).map_err(|error| ConfigError::Parse {
                path: shown.clone(),
                error,
            })?;
        config.check().map_err(|message| ConfigError::Invalid {
            path: shown,
            message,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        Ok(config)
    }

    /// Refuses values that parse but leave a node unable to work: a zero
    /// timeout, message size or concurrency, which would refuse every
    /// connection or request, and a zero first backoff, which would retry a
    /// peer that is down in a busy loop.
    pub fn check(&self) -> Result<(), String> {
        let l = &self.limits;
        let o = &self.outbox;
        let zero = [
            ("[limits] max_message_bytes", l.max_message_bytes == 0),
            ("[limits] handshake_timeout", l.handshake_timeout.is_zero()),
            ("[limits] request_timeout", l.request_timeout.is_zero()),
            (
                "[limits] max_concurrent_streams",
                l.max_concurrent_streams == 0,
            ),
            (
                "[limits] max_concurrent_handshakes",
                l.max_concurrent_handshakes == 0,
            ),
            ("[limits] peer_concurrency", l.peer_concurrency == 0),
            (
                "[limits] max_connections_per_peer",
                l.max_connections_per_peer == 0,
            ),
            ("[tls] reload_interval", self.tls.reload_interval.is_zero()),
            ("[outbox] initial_backoff", o.initial_backoff.is_zero()),
            ("[outbox] max_backoff", o.max_backoff.is_zero()),
            ("[outbox] batch", o.batch == 0),
            ("[outbox] per_request", o.per_request == 0),
            (
                "[store] max_connections",
                self.store.max_connections == Some(0),
            ),
            ("[outbox] connect_timeout", o.connect_timeout.is_zero()),
        ];
        if let Some((name, _)) = zero.iter().find(|(_, is_zero)| *is_zero) {
            return Err(format!("{name} must be more than zero"));
        }
        match &self.store.url {
            Some(url) if url.trim().is_empty() => {
                return Err(
                    "[store] url is empty: name a PostgreSQL database, or leave \
                            [store] out to keep SQLite under data_dir"
                        .into(),
                );
            }
            None if self.store.max_connections.is_some() => {
                return Err(
                    "[store] max_connections is for PostgreSQL: it needs [store] url".into(),
                );
            }
            _ => {}
        }
        if self.screening.hit_report_window > Duration::from_secs(366 * 24 * 3600) {
            return Err(
                "[screening] hit_report_window must be at most a year: a longer one would \
                 keep one sighting's report standing for every later one"
                    .into(),
            );
        }
        if let Some(addr) = self.web_listen
            && !addr.ip().is_loopback()
        {
            return Err(format!(
                "web_listen {addr} is not a loopback address: the web desk is guarded by a \
                 token alone and listens on loopback only (127.0.0.1 or ::1)"
            ));
        }
        if o.per_request as usize > tocsin_proto::MAX_DELIVER_BATCH {
            return Err(format!(
                "[outbox] per_request must be at most {}",
                tocsin_proto::MAX_DELIVER_BATCH
            ));
        }
        Ok(())
    }

    /// Makes every relative path relative to `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        for p in [
            &mut self.data_dir,
            &mut self.federation,
            &mut self.tls.ca,
            &mut self.tls.cert,
            &mut self.tls.key,
            &mut self.signing.cert,
            &mut self.signing.key,
        ]
        .into_iter()
        .chain(self.tls.crls.iter_mut())
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_follow_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.toml");
        std::fs::write(
            &file,
            r#"
            agency = "TR-MIT"
            listen = "127.0.0.1:0"
            data_dir = "data"
            federation = "/etc/tocsin/federation.toml"
            [tls]
            ca = "ca.crt"
            cert = "node.crt"
            key = "node.key"
            [signing]
            cert = "s.crt"
            key = "s.key"
            [limits]
            request_timeout = "5s"
            clock_skew_tolerance = "30s"
            "#,
        )
        .unwrap();
        let c = NodeConfig::load(&file).unwrap();
        assert_eq!(c.data_dir, dir.path().join("data"));
        assert_eq!(c.federation, PathBuf::from("/etc/tocsin/federation.toml"));
        assert_eq!(c.limits.request_timeout, Duration::from_secs(5));
        assert_eq!(c.limits.max_message_bytes, 1024 * 1024);
        assert_eq!(c.limits.clock_skew_tolerance, Duration::from_secs(30));
        assert_eq!(c.metrics_listen, None);
        assert_eq!(c.web_listen, None);
    }

    #[test]
    fn values_that_cannot_work_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.toml");
        let base = "agency = \"TR-MIT\"\nlisten = \"127.0.0.1:0\"\ndata_dir = \"d\"\n\
            federation = \"f\"\n[tls]\nca = \"a\"\ncert = \"c\"\nkey = \"k\"\n\
            [signing]\ncert = \"c\"\nkey = \"k\"\n";
        std::fs::write(&file, base).unwrap();
        assert!(NodeConfig::load(&file).is_ok());
        for (table, line, name) in [
            ("limits", "handshake_timeout = \"0s\"", "handshake_timeout"),
            (
                "limits",
                "max_concurrent_streams = 0",
                "max_concurrent_streams",
            ),
            ("limits", "peer_concurrency = 0", "peer_concurrency"),
            ("outbox", "initial_backoff = \"0ms\"", "initial_backoff"),
        ] {
            std::fs::write(&file, format!("{base}[{table}]\n{line}\n")).unwrap();
            let err = NodeConfig::load(&file).unwrap_err().to_string();
            assert!(
                err.contains(&format!("[{table}] {name} must be more than zero")),
                "{err}"
            );
        }
        // The web desk's token is its only guard: loopback or nothing.
        let web = base.replace("data_dir", "web_listen = \"0.0.0.0:8101\"\ndata_dir");
        std::fs::write(&file, web).unwrap();
        let err = NodeConfig::load(&file).unwrap_err().to_string();
        assert!(
            err.contains("web_listen 0.0.0.0:8101 is not a loopback"),
            "{err}"
        );
        let web = base.replace("data_dir", "web_listen = \"[::1]:8101\"\ndata_dir");
        std::fs::write(&file, web).unwrap();
        assert!(NodeConfig::load(&file).is_ok());
    }

    /// A missing field is named with its table, with no position: the
    /// parser's own error put a missing top-level field at line 1, column 1.
    #[test]
    fn a_missing_field_is_named_with_its_table() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.toml");
        let base = "agency = \"TR-MIT\"\nlisten = \"127.0.0.1:0\"\ndata_dir = \"d\"\n\
            federation = \"f\"\n[tls]\nca = \"a\"\ncert = \"c\"\nkey = \"k\"\n\
            [signing]\ncert = \"c\"\nkey = \"k\"\n";
        for (text, expected) in [
            (
                base.replace("data_dir = \"d\"\n", ""),
                "node.toml: missing field `data_dir` (top level)",
            ),
            (
                base.replace("[tls]\nca = \"a\"\ncert = \"c\"", "[tls]\nca = \"a\""),
                "node.toml: missing field `cert` in [tls]",
            ),
            (
                base.replace("[signing]\ncert = \"c\"\n", "[signing]\n"),
                "node.toml: missing field `cert` in [signing]",
            ),
            (
                format!("{base}[clock]\nspeed = 2\n"),
                "node.toml: missing field `start` in [clock]",
            ),
        ] {
            std::fs::write(&file, text).unwrap();
            let err = NodeConfig::load(&file).unwrap_err().to_string();
            assert!(err.ends_with(expected), "{err}");
            assert!(!err.contains("line 1, column 1"), "{err}");
        }
    }

    #[test]
    fn a_store_section_names_postgres_and_never_shows_its_url() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.toml");
        let base = "agency = \"TR-MIT\"\nlisten = \"127.0.0.1:0\"\ndata_dir = \"d\"\n\
            federation = \"f\"\n[tls]\nca = \"a\"\ncert = \"c\"\nkey = \"k\"\n\
            [signing]\ncert = \"c\"\nkey = \"k\"\n";
        std::fs::write(&file, base).unwrap();
        assert!(NodeConfig::load(&file).unwrap().store.is_sqlite());

        let url = "host=/run/pg dbname=tocsin password=hunter2";
        std::fs::write(
            &file,
            format!("{base}[store]\nurl = \"{url}\"\nmax_connections = 4\n"),
        )
        .unwrap();
        let c = NodeConfig::load(&file).unwrap();
        assert_eq!(c.store.url.as_deref(), Some(url));
        assert_eq!(c.store.max_connections, Some(4));
        assert!(!format!("{c:?}").contains("hunter2"), "{c:?}");

        for (text, expected) in [
            ("[store]\nurl = \" \"\n", "[store] url is empty"),
            (
                "[store]\nmax_connections = 4\n",
                "[store] max_connections is for PostgreSQL",
            ),
            (
                "[store]\nurl = \"host=/x\"\nmax_connections = 0\n",
                "[store] max_connections must be more than zero",
            ),
        ] {
            std::fs::write(&file, format!("{base}{text}")).unwrap();
            let err = NodeConfig::load(&file).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn a_hit_report_window_over_a_year_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.toml");
        let base = "agency = \"TR-MIT\"\nlisten = \"127.0.0.1:0\"\ndata_dir = \"d\"\n\
            federation = \"f\"\n[tls]\nca = \"a\"\ncert = \"c\"\nkey = \"k\"\n\
            [signing]\ncert = \"c\"\nkey = \"k\"\n";
        std::fs::write(
            &file,
            format!("{base}[screening]\nhit_report_window = \"2y\"\n"),
        )
        .unwrap();
        let err = NodeConfig::load(&file).unwrap_err().to_string();
        assert!(
            err.contains("hit_report_window must be at most a year"),
            "{err}"
        );
        std::fs::write(
            &file,
            format!("{base}[screening]\nhit_report_window = \"6h\"\n"),
        )
        .unwrap();
        let c = NodeConfig::load(&file).unwrap();
        assert_eq!(c.screening.hit_report_window, Duration::from_secs(6 * 3600));
    }

    #[test]
    fn unknown_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.toml");
        std::fs::write(&file, "agency = \"TR-MIT\"\nlisten_addr = \"x\"\n").unwrap();
        let err = NodeConfig::load(&file).unwrap_err().to_string();
        assert!(err.contains("listen_addr"), "{err}");
    }
}
