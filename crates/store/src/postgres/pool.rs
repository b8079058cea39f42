//! The connection pool: deadpool-postgres over tokio-postgres, migrating
//! the database before the pool is handed out.
//!
//! Connections are made without TLS. That is right for a unix socket
//! (`host=/var/run/postgresql`), where the kernel is the transport, and
//! for nothing else: a deployment whose front nodes reach the database
//! over TCP needs TLS to it, which this build does not have yet. A URL
//! that asks for it (`sslmode=require`) is refused with
//! [`Error::TlsNotBuilt`] rather than connected in the clear; the default
//! `sslmode=prefer` connects in the clear.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::config::SslMode;

use super::{Error, schema};

/// The pool: cheap to clone, shared by every task of a node.
pub type Pool = deadpool_postgres::Pool;

/// How many connections, and how long to wait for one.
#[derive(Clone, Debug)]
pub struct PoolOptions {
    /// The most connections open at once.
    pub max_size: usize,
    /// How long a caller waits for a free connection before an error.
    pub wait_timeout: Duration,
    /// How long to wait for the server to accept a new connection (unless
    /// the URL sets `connect_timeout`).
    pub connect_timeout: Duration,
    /// This node's name among its agency's front nodes, the same at every
    /// start and unique among them (the node uses its host name and
    /// listening address). It prefixes the outbox claims this node makes,
    /// and at connect the claims an earlier run of it left are released,
    /// so that a node restarted after a crash takes back at once what it
    /// was sending instead of waiting for its own claims to lapse. None:
    /// claims left by a crash lapse after their minute.
    pub front_node: Option<String>,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_size: 16,
            wait_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            front_node: None,
        }
    }
}

/// Parses `url`, refusing what this build cannot do (TLS).
fn config_of(url: &str, connect_timeout: Duration) -> Result<tokio_postgres::Config, Error> {
    let mut config: tokio_postgres::Config = url.parse().map_err(Error::Url)?;
    match config.get_ssl_mode() {
        SslMode::Disable | SslMode::Prefer => {}
        _ => return Err(Error::TlsNotBuilt),
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(connect_timeout);
    }
    Ok(config)
}

/// One connection to the database at `url`, outside any pool and not
/// migrated (the audit reader's, the migration's). Its connection task
/// runs on the current runtime.
pub(crate) async fn connect_one(url: &str) -> Result<tokio_postgres::Client, Error> {
    let config = config_of(url, PoolOptions::default().connect_timeout)?;
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection ended");
        }
    });
    Ok(client)
}

/// The database `url` names, as it may be shown: user, host, port and
/// database, never the password.
pub fn describe_url(url: &str) -> String {
    let Ok(config) = url.parse::<tokio_postgres::Config>() else {
        return "a PostgreSQL database (its connection string does not parse)".into();
    };
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let port = match config.get_ports() {
        [] => String::new(),
        ports => format!(
            ":{}",
            ports
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ),
    };
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let db = config.get_dbname().unwrap_or("");
    format!("postgresql://{user}{}{port}/{db}", hosts.join(","))
}

/// Connects to the database at `url` (`host=/path dbname=tocsin`, or
/// `postgres://user@%2Fpath/tocsin`), migrates it to the latest schema,
/// and returns the pool.
pub async fn connect(url: &str, options: PoolOptions) -> Result<Pool, Error> {
    let config = config_of(url, options.connect_timeout)?;
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            // Fast: a connection the server dropped fails its next
            // statement, which the store reports; no round trip per get.
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(options.max_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(options.wait_timeout))
        .create_timeout(Some(options.connect_timeout))
        .build()?;
    let mut client = pool.get().await?;
    schema::migrate(&mut client).await?;
    drop(client);
    Ok(pool)
}
