//! Benchmarks of a real `tocsin node` process (a test kit
//! [`NodeProcess`]): how soon after it starts its deadline tracker flags a
//! deadline that fell while it was down, over a store of open ones, and its
//! resident memory (from `/proc`). The store is preloaded through the store
//! API with rows made exactly as `SubmitAlert` makes them.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use futures::future::try_join_all;
use prost::Message;
use tocsin_core::{AgencyId, Alert, to_timestamp};
use tocsin_node::{NodeConfig, NodeOptions};
use tocsin_proto::pb;
use tocsin_proto::pb::operator_client::OperatorClient;
use tocsin_store::{AttemptOutcome, Store, StoreOptions};
use tocsin_testkit::{NodeCommand, NodeProcess, channel, draft};
use tocsin_trust::pki::{self, PkiLayout};
use tocsin_trust::tls::TlsMaterial;
use tonic::transport::Channel;

use crate::drive::{Figures, Progress};

pub(crate) const NODE: &str = "TR-MIT";
pub(crate) const PEER: &str = "FR-DGSI";
/// The node's operator, who looks for the flag.
pub(crate) const OPERATOR: &str = "bench";
/// What the tracker logs, at WARN, for each deadline it has flagged.
const FLAGGED_LINE: &str = "deadline passed without acknowledgement";

/// A two-agency federation on disk, made with `tocsin pki init`.
pub(crate) struct Site {
    pub(crate) tocsin: PathBuf,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) layout: PkiLayout,
    /// The node's configuration as written by `tocsin pki init`.
    config: PathBuf,
    /// What the node makes of it (data directory, signer, federation).
    pub(crate) node: NodeOptions,
    /// The peer's, whose signer receipts the delivered alert.
    pub(crate) peer: NodeOptions,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
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
        pki::issue_operator(&layout, &node.federation, &node.agency, OPERATOR)?;
        Ok(Self {
            tocsin,
            dir,
            layout,
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
            let now = tocsin_core::clock::truncate_ms(Utc::now());
            let mut rows = Vec::with_capacity(chunk);
            for _ in 0..chunk {
                let (alert, envelope) = self.signed(now)?;
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

    /// An alert from the node to the peer made at `created`, signed.
    fn signed(&self, created: DateTime<Utc>) -> anyhow::Result<(Alert, pb::Envelope)> {
        self.sign(draft(&[PEER]), created)
    }

    /// `wire` as the node sends it, made at `created`, signed.
    fn sign(
        &self,
        mut wire: pb::Alert,
        created: DateTime<Utc>,
    ) -> anyhow::Result<(Alert, pb::Envelope)> {
        wire.id = tocsin_core::AlertId::generate().to_string();
        wire.originator = NODE.into();
        wire.created_at = Some(to_timestamp(created));
        let alert = Alert::try_from(wire)?;
        let envelope = self.node.signer.sign(
            tocsin_proto::ALERT_PAYLOAD_TYPE,
            pb::Alert::from(&alert).encode_to_vec(),
        );
        Ok((alert, envelope))
    }

    /// Stores one alert the node sent a day ago (PRIORITY: twelve hours to
    /// answer), delivered with the peer's signed receipt and never
    /// acknowledged: its deadline has passed, and the tracker's first pass
    /// must flag it OVERDUE. Its subject is a person of its own (the open
    /// alerts are all about one other person), so that the
    /// REPEATED_UNANSWERED check the flag starts has one alert to look at.
    /// Returns its id.
    pub(crate) async fn preload_due(&self) -> anyhow::Result<String> {
        let store = Store::open(&self.node.data_dir, StoreOptions::default())?;
        let created = tocsin_core::clock::truncate_ms(Utc::now() - chrono::Duration::days(1));
        let mut wire = draft(&[PEER]);
        wire.subjects = vec![pb::Subject {
            kind: Some(pb::subject::Kind::Person(pb::Person {
                names: vec!["Salah Abdeslam".into()],
                date_of_birth: "1989-09-15".into(),
                nationalities: vec!["FR".into()],
                ..Default::default()
            })),
        }];
        let (alert, envelope) = self.sign(wire, created)?;
        let row = tocsin_node::outbound_row(&self.node.federation, &alert, &envelope, created);
        anyhow::ensure!(row.due_at < Utc::now(), "the due alert is not due");
        store.insert_outbound(row, vec![PEER.into()]).await?;
        let delivered_at = created + chrono::Duration::minutes(1);
        let receipt = tocsin_trust::receipt::issue(
            &self.peer.signer,
            &alert.id.to_string(),
            &tocsin_trust::signing::digest(&envelope),
            delivered_at,
        );
        let outcome = AttemptOutcome::Delivered {
            delivered_at,
            receipt: receipt.encode_to_vec(),
        };
        store
            .record_attempts(
                vec![(alert.id.to_string(), PEER.into(), outcome)],
                delivered_at,
                tocsin_node::OUTCOME_WORDS,
            )
            .await?;
        store.close().await;
        Ok(alert.id.to_string())
    }

    /// How to run the node: `tocsin node` on the site's configuration,
    /// logging at WARN (the tracker's flags among it).
    fn command(&self) -> NodeCommand {
        NodeCommand::new(&self.tocsin, &self.config)
            .env("RUST_LOG", "warn")
            .log_file(self.dir.path().join("node.log"))
            .ready_timeout(Duration::from_secs(120))
    }

    /// The node's operator.
    fn operator(&self) -> anyhow::Result<OperatorClient<Channel>> {
        let agency = &self.node.agency;
        let material = TlsMaterial::load(
            &self.layout.ca_cert(),
            &self.layout.operator_cert(agency, OPERATOR),
            &self.layout.operator_key(agency, OPERATOR),
            self.node.federation.id(),
        )?;
        let addr = self
            .node
            .federation
            .agency(agency)
            .context("node not in the federation")?
            .endpoint
            .parse()?;
        Ok(OperatorClient::new(channel(addr, &material, agency)?))
    }

    /// Starts `tocsin node`; returns it once it answers a health check, with
    /// how long that took.
    pub(crate) async fn start(&self) -> anyhow::Result<(NodeProcess, Duration)> {
        let mut node = self.command().spawn()?;
        let took = node.wait_serving().await?;
        Ok((node, took))
    }

    /// Starts `tocsin node` over a store holding `due` (see
    /// [`Site::preload_due`]) and times it until an operator sees `due`
    /// flagged OVERDUE.
    pub(crate) async fn start_until_flagged(&self, due: &str) -> anyhow::Result<FirstPass> {
        let op = self.operator()?;
        let wall = Utc::now();
        let mut node = self.command().spawn()?;
        let started = Instant::now();
        let (serving, flagged) = tokio::join!(node.wait_serving(), until_flagged(op, due, started));
        let serving = serving?;
        let (seen, flagged_at) = flagged?;
        let since_start = |at: DateTime<Utc>| (at - wall).to_std().unwrap_or_default();
        // The tracker stamps the flag with the time its pass began, and logs
        // it once it has committed it and checked the alert's subjects for
        // repeated warnings (perhaps after an operator saw it).
        let committed = tocsin_testkit::wait_until(
            Duration::from_secs(10),
            &format!("the node logs {FLAGGED_LINE:?} for {due}"),
            || {
                let log = node.log();
                async move { flagged_line_time(&log, due) }
            },
        )
        .await?;
        if let Some(line) = node.log().lines().find(|l| l.contains("tracker cannot")) {
            bail!("the tracker failed: {line}");
        }
        Ok(FirstPass {
            serving,
            began: since_start(flagged_at),
            logged: since_start(committed),
            seen,
            node,
        })
    }
}

/// Polls `op`'s node for `due`'s delivery to be flagged OVERDUE, from the
/// moment the node is started (each call fails until it serves). Returns
/// when it was seen, and the flag's time as the node stamped it.
async fn until_flagged(
    mut op: OperatorClient<Channel>,
    due: &str,
    started: Instant,
) -> anyhow::Result<(Duration, DateTime<Utc>)> {
    let patience = Duration::from_secs(300);
    loop {
        let asked = op.get_alert(pb::GetAlertRequest { id: due.into() });
        if let Ok(Ok(record)) = tokio::time::timeout(Duration::from_secs(5), asked).await {
            let seen = started.elapsed();
            let record = record.into_inner();
            let delivery = record
                .deliveries
                .iter()
                .find(|d| d.recipient == PEER)
                .context("the due alert has no delivery to the peer")?;
            if delivery.flag == pb::DeadlineFlag::Overdue as i32 {
                let at = delivery
                    .flagged_at
                    .context("flagged OVERDUE without flagged_at")?;
                let at = DateTime::from_timestamp(at.seconds, u32::try_from(at.nanos)?)
                    .context("flagged_at out of range")?;
                return Ok((seen, at));
            }
        }
        if started.elapsed() > patience {
            bail!("{due} not flagged OVERDUE within {patience:?} of the node's start");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// When the node logged that it flagged `alert`: the timestamp that starts
/// the tracker's line.
fn flagged_line_time(log: &str, alert: &str) -> Option<DateTime<Utc>> {
    let line = log
        .lines()
        .find(|l| l.contains(FLAGGED_LINE) && l.contains(alert))?;
    let stamp = line.split_whitespace().next()?;
    Some(
        DateTime::parse_from_rfc3339(stamp)
            .ok()?
            .with_timezone(&Utc),
    )
}

/// A node started over a due deadline, and when (from its start) it did
/// what.
pub(crate) struct FirstPass {
    /// It answered a health check.
    serving: Duration,
    /// Its tracker's first pass began (the flag's time).
    began: Duration,
    /// The first pass had flagged it and checked its subjects for repeated
    /// warnings (its log line).
    logged: Duration,
    /// An operator saw the flag.
    seen: Duration,
    node: NodeProcess,
}

impl FirstPass {
    /// The figures, named `name`, for a store of `n` open deadlines beside
    /// the due one.
    fn figures(&self, name: &str, n: usize) -> anyhow::Result<Figures> {
        let (_, peak) = memory(&self.node)?;
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        Ok(Figures {
            name: name.into(),
            n,
            seconds: self.seen.as_secs_f64(),
            rss_mib: Some(peak),
            serving_s: Some(self.serving.as_secs_f64()),
            first_pass_began_s: Some(self.began.as_secs_f64()),
            first_pass_ms: Some(ms(self.logged.saturating_sub(self.began))),
            note: format!(
                "{n} open deadlines and one due: seen OVERDUE by an operator {:.0} ms after the \
                 process started; the tracker's first pass began at {:.0} ms, and had flagged \
                 it and checked its subject for repeated warnings at {:.0} ms; serving at \
                 {:.0} ms; peak resident memory",
                ms(self.seen),
                ms(self.began),
                ms(self.logged),
                ms(self.serving),
            ),
            ..Default::default()
        })
    }
}

/// Resident memory of `node` now and at its peak, in MiB.
fn memory(node: &NodeProcess) -> anyhow::Result<(f64, f64)> {
    tocsin_testkit::resident_mib(node.pid().context("the node exited")?)
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

/// How soon a due deadline is flagged after the node starts, over `n` open
/// deadlines, beside the same over none (the baseline, in the same run).
pub(crate) async fn deadlines(tocsin: PathBuf, n: usize) -> anyhow::Result<Vec<Figures>> {
    let mut rows = Vec::new();
    for (name, n) in [("deadlines: baseline", 0), ("deadlines", n)] {
        let site = Site::new(tocsin.clone())?;
        eprintln!("  storing {n} open alerts (each with an open deadline) and one due");
        site.preload(n).await?;
        let due = site.preload_due().await?;
        let pass = site.start_until_flagged(&due).await?;
        rows.push(pass.figures(name, n)?);
    }
    // A share of the baseline's speed, as for throughputs: 100 % when the
    // open deadlines cost nothing.
    let base = rows[0].seconds;
    rows[1].baseline_ratio = Some(base / rows[1].seconds.max(1e-9));
    Ok(rows)
}

/// Resident memory idle, and holding `n` alerts.
pub(crate) async fn memory_figures(tocsin: PathBuf, n: usize) -> anyhow::Result<Vec<Figures>> {
    let idle = Site::new(tocsin.clone())?;
    let (node, took) = idle.start().await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss, _) = memory(&node)?;
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
    // Measured once the tracker's first pass has flagged a due deadline.
    let due = loaded.preload_due().await?;
    let pass = loaded.start_until_flagged(&due).await?;
    let (_, peak) = memory(&pass.node)?;
    let loaded_row = row(
        "memory: loaded",
        n,
        pass.serving.as_secs_f64(),
        peak,
        format!("a node holding {n} alerts, peak resident memory after the tracker's first pass"),
    );
    Ok(vec![idle_row, loaded_row])
}
