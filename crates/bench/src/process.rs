//! Benchmarks of a real `tocsin node` process: start-up time until it
//! serves, and resident memory (from `/proc`), with its store preloaded
//! through the store API with rows made exactly as `SubmitAlert` makes them.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::future::try_join_all;
use prost::Message;
use tocsin_core::{AgencyId, Alert, to_timestamp};
use tocsin_node::{NodeConfig, NodeOptions};
use tocsin_proto::pb;
use tocsin_store::{Store, StoreOptions};
use tocsin_testkit::{channel, draft};
use tocsin_trust::pki::PkiLayout;

use crate::drive::{Figures, Progress};

const NODE: &str = "TR-MIT";
const PEER: &str = "FR-DGSI";

/// A two-agency federation on disk, made with `tocsin pki init`.
pub(crate) struct Site {
    tocsin: PathBuf,
    dir: tempfile::TempDir,
    /// The node's configuration as written by `tocsin pki init`.
    config: PathBuf,
    /// What the node makes of it (data directory, signer, federation).
    node: NodeOptions,
    /// The peer's, whose certificate the health checks present.
    peer: NodeOptions,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The `tocsin` binary: `--tocsin`, or next to this one.
pub(crate) fn tocsin_binary(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let path = match given {
        Some(p) => p,
        None => std::env::current_exe()?
            .parent()
            .context("no directory for this executable")?
            .join("tocsin"),
    };
    if !path.is_file() {
        bail!(
            "no tocsin binary at {} (build it with `cargo build --release -p tocsin-cli`, or pass --tocsin)",
            path.display()
        );
    }
    Ok(path)
}

impl Site {
    pub(crate) fn new(tocsin: PathBuf) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let text = format!(
            "[federation]\nid = \"bench.tocsin\"\nname = \"bench\"\n\n\
             [[agencies]]\nid = \"{NODE}\"\nname = \"node\"\nendpoint = \"127.0.0.1:{}\"\n\n\
             [[agencies]]\nid = \"{PEER}\"\nname = \"peer\"\nendpoint = \"127.0.0.1:{}\"\n",
            free_port()?,
            free_port()?
        );
        let fed_file = dir.path().join("federation.toml");
        std::fs::write(&fed_file, &text)?;
        let pki = dir.path().join("pki");
        let out = Command::new(&tocsin)
            .args(["pki", "init", "--federation"])
            .arg(&fed_file)
            .arg("--out")
            .arg(&pki)
            .output()
            .context("cannot run tocsin pki init")?;
        if !out.status.success() {
            bail!(
                "tocsin pki init failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let layout = PkiLayout::new(&pki);
        let options = |agency: &str| -> anyhow::Result<(PathBuf, NodeOptions)> {
            let config = layout.agency_dir(&AgencyId::new(agency)?).join("node.toml");
            let options = NodeOptions::from_config(&NodeConfig::load(&config)?)?;
            Ok((config, options))
        };
        let (config, node) = options(NODE)?;
        let (_, peer) = options(PEER)?;
        Ok(Self {
            tocsin,
            dir,
            config,
            node,
            peer,
        })
    }

    /// Stores `n` open alerts sent by the node, as `SubmitAlert` would.
    pub(crate) async fn preload(&self, n: usize) -> anyhow::Result<()> {
        let store = Store::open(&self.node.data_dir, StoreOptions::default())?;
        let progress = Progress::new("stored", n);
        let mut left = n;
        while left > 0 {
            let chunk = left.min(2048);
            let now = tocsin_core::clock::truncate_ms(chrono::Utc::now());
            let mut rows = Vec::with_capacity(chunk);
            for _ in 0..chunk {
                let mut wire = draft(&[PEER]);
                wire.id = tocsin_core::AlertId::generate().to_string();
                wire.originator = NODE.into();
                wire.created_at = Some(to_timestamp(now));
                let alert = Alert::try_from(wire)?;
                let envelope = self.node.signer.sign(
                    tocsin_proto::ALERT_PAYLOAD_TYPE,
                    pb::Alert::from(&alert).encode_to_vec(),
                );
                rows.push(tocsin_node::outbound_row(
                    &self.node.federation,
                    &alert,
                    &envelope,
                    now,
                ));
            }
            try_join_all(
                rows.into_iter()
                    .map(|row| store.insert_outbound(row, vec![PEER.into()])),
            )
            .await?;
            left -= chunk;
            progress.add(chunk);
        }
        store.close().await;
        Ok(())
    }

    /// Starts `tocsin node`; returns it once it answers a health check, with
    /// how long that took.
    pub(crate) async fn start(&self) -> anyhow::Result<(Node, Duration)> {
        let addr = self
            .node
            .federation
            .agency(&self.node.agency)
            .context("node not in the federation")?
            .endpoint
            .parse()?;
        // One lazily connecting channel: each check retries the connection
        // until the node listens, then reuses it.
        let health = tonic_health::pb::health_client::HealthClient::new(channel(
            addr,
            &self.peer.tls,
            &self.node.agency,
        )?);
        let log = std::fs::File::create(self.dir.path().join("node.log"))?;
        let started = Instant::now();
        let child = Command::new(&self.tocsin)
            .arg("node")
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("cannot start tocsin node")?;
        let mut node = Node { child };
        loop {
            if let Some(status) = node.child.try_wait()? {
                bail!(
                    "tocsin node exited ({status}): {}",
                    std::fs::read_to_string(self.dir.path().join("node.log")).unwrap_or_default()
                );
            }
            let serving = health
                .clone()
                .check(tonic_health::pb::HealthCheckRequest::default())
                .await
                .is_ok_and(|r| {
                    r.into_inner().status
                        == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
                });
            if serving {
                return Ok((node, started.elapsed()));
            }
            if started.elapsed() > Duration::from_secs(120) {
                bail!("tocsin node did not serve within 2 minutes");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// A running node process, killed on drop.
pub(crate) struct Node {
    child: Child,
}

impl Node {
    /// Resident memory now and at its peak, in MiB.
    pub(crate) fn memory(&self) -> anyhow::Result<(f64, f64)> {
        tocsin_testkit::resident_mib(self.child.id())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn row(name: &str, n: usize, seconds: f64, rss: f64, note: String) -> Figures {
    Figures {
        name: name.into(),
        n,
        seconds,
        rss_mib: Some(rss),
        note,
        ..Default::default()
    }
}

/// Start-up with `n` open deadlines in the store.
pub(crate) async fn deadlines(tocsin: PathBuf, n: usize) -> anyhow::Result<Figures> {
    let site = Site::new(tocsin)?;
    eprintln!("  storing {n} open alerts (each with an open deadline)");
    site.preload(n).await?;
    let (node, took) = site.start().await?;
    // Let the tracker's first pass over the deadlines run before measuring.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, peak) = node.memory()?;
    Ok(row(
        "deadlines",
        n,
        took.as_secs_f64(),
        peak,
        format!("start-up until serving with {n} open deadlines; peak resident memory"),
    ))
}

/// Resident memory idle, and holding `n` alerts.
pub(crate) async fn memory(tocsin: PathBuf, n: usize) -> anyhow::Result<Vec<Figures>> {
    let idle = Site::new(tocsin.clone())?;
    let (node, took) = idle.start().await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss, _) = node.memory()?;
    drop(node);
    let idle_row = row(
        "memory: idle",
        0,
        took.as_secs_f64(),
        rss,
        "an idle node, resident memory".into(),
    );

    let loaded = Site::new(tocsin)?;
    eprintln!("  storing {n} alerts");
    loaded.preload(n).await?;
    let (node, took) = loaded.start().await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, peak) = node.memory()?;
    let loaded_row = row(
        "memory: loaded",
        n,
        took.as_secs_f64(),
        peak,
        format!("a node holding {n} alerts, peak resident memory"),
    );
    Ok(vec![idle_row, loaded_row])
}
