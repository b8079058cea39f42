//! In-process Tocsin federations for integration tests.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> anyhow::Result<()> {
//! use tocsin_testkit::{AlertBuilder, DeadlineFlag, ManualClock, Person, TestFederation};
//! use std::sync::Arc;
//!
//! let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
//! let fed = TestFederation::builder()
//!     .agencies(["TR-MIT", "FR-DGSI"])
//!     .clock(clock.clone())
//!     .start()
//!     .await?;
//! let tr = fed.desk("TR-MIT").await?;
//! let id = tr
//!     .send(AlertBuilder::to(["FR-DGSI"]).person(Person::named("Ismaël Omar Mostefaï")))
//!     .await?;
//! tr.wait_delivered(&id, "FR-DGSI").await?;
//! clock.advance(chrono::Duration::hours(13)); // PRIORITY: 12 h to answer
//! tr.wait_flag(&id, "FR-DGSI", DeadlineFlag::Overdue).await?;
//! # Ok(()) }
//! ```
//!
//! Module [`alerts`] builds alerts without protobuf ceremony; module
//! [`flow`] gives each agency a [`Desk`] that submits, acknowledges and
//! waits for deliveries, acknowledgements, flags, ladder steps, subject
//! flags and sequences of events, with timeouts that say what is there
//! instead of what was expected. Module [`watchlist`] adds the watchlist
//! calls and waits to the [`Desk`] (publish, update, remove, what is held,
//! how far behind) and builds entries ([`WatchEntry`]); [`screening`]
//! screens and waits for hits and hit reports; [`triage`] reads what an
//! agency owes, ranked.
//!
//! Every node is a real node: real mutual TLS on a loopback port chosen by
//! the OS, a real SQLite store in a temporary directory, certificates
//! freshly issued by a per-federation CA, and a metrics endpoint on a port
//! of its own ([`TestFederation::metrics`] scrapes it). Nodes can be stopped
//! and started again on the same port and data directory; each can run on
//! its own clock ([`Builder::clock_for`]); [`wait_until`] polls a condition
//! with a timeout instead of sleeping.
//!
//! With [`Builder::postgres`], each agency keeps its store in a database
//! of its own on a private PostgreSQL server ([`postgres`]); with
//! [`Builder::front_nodes`], an agency runs as several front nodes on that
//! one database, each reachable on its own ([`TestFederation::desk_on`],
//! [`TestFederation::stop_front`]).
//!
//! With [`Builder::web`], every node also serves its web desk on a
//! loopback port; [`TestFederation::web_desk`] gives its address and this
//! start's token ([`WebDesk`], module [`web`]).
//!
//! Partitions and slow links: [`Builder::through_proxy`] routes one node's
//! peer traffic to another through a [`FaultProxy`] (module [`proxy`]),
//! which can delay, drop, black-hole or reset it on command, while mutual
//! TLS stays end to end.
//!
//! Real `tocsin node` processes: module [`process`] ([`NodeCommand`],
//! [`NodeProcess`]); module [`netns`] puts them on hosts of their own,
//! network namespaces on one bridge ([`netns::Lan`]), whose links a test
//! can cut and heal.

#![forbid(unsafe_code)]

pub mod alerts;
pub mod flow;
pub mod netns;
pub mod process;
pub mod proxy;
pub mod scenario;
pub mod screening;
pub mod triage;
pub mod watchlist;
pub mod web;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};
use std::time::Duration;

use anyhow::{Context, bail};
use tempfile::TempDir;
use tocsin_core::federation::{Agency, Deadlines, Escalation, Federation, FederationInfo};
use tocsin_core::{AgencyId, FederationId, Identity};
use tocsin_node::config::{Limits, OutboxOptions};
use tocsin_node::{NodeOptions, StartError};
use tocsin_proto::pb;
use tocsin_proto::pb::federation_client::FederationClient;
use tocsin_proto::pb::operator_client::OperatorClient;
use tocsin_trust::Signer;
use tocsin_trust::live::TlsSource;
use tocsin_trust::pki::{self, PkiLayout};
use tocsin_trust::tls::{self, TlsMaterial};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};

pub use alerts::{AlertBuilder, Person};
pub use flow::{Desk, PATIENCE, Probe, delivery, id_of, kinds, wait_for};
pub use process::{NodeCommand, NodeProcess, ProcessError, tocsin_binary};
pub use proxy::{Fault, FaultProxy, Flow, ProxyStats};
pub use scenario::{ScenarioFederation, ScenarioTest};
pub use screening::{Screen, match_of};
pub use tocsin_core::clock::{Clock, ManualClock, SystemClock};
pub use tocsin_proto::pb::{
    DeadlineFlag, DeliveryState, Direction, Disposition, EventKind, LadderStep, Precedence, Tlp,
};
pub use watchlist::WatchEntry;
pub use web::WebDesk;

/// Installs a test-friendly tracing subscriber (level from `RUST_LOG`,
/// default `warn`) and the rustls crypto provider; safe to call repeatedly.
pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        tocsin_trust::install_crypto_provider();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .with_test_writer()
            .try_init();
    });
}

/// Polls `check` every 20 ms until it returns `Some`, or fails after
/// `timeout` naming `what`. Prefer [`wait_for`], whose timeout also says
/// what is there now, or a [`Desk`]'s waits.
pub async fn wait_until<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    wait_for(timeout, what, || {
        let looked = check();
        async move {
            match looked.await {
                Some(v) => Probe::Done(v),
                None => Probe::NotYet("it has not happened".into()),
            }
        }
    })
    .await
}

/// A valid alert for `recipients`, ready for `SubmitAlert`: PRIORITY,
/// one person subject.
pub fn draft(recipients: &[&str]) -> pb::Alert {
    AlertBuilder::to(recipients.iter().copied())
        .person(
            Person::named("Ismaël Omar Mostefaï")
                .born("1985-11-21")
                .nationality("FR"),
        )
        .text("Subject assessed as linked to a terrorist network; travel to Syria suspected.")
        .build()
}

/// `alert` as `signer`'s node would send it: a fresh id, the signer's agency
/// as originator, created now, signed. For delivering by hand from a peer
/// client (hostile or flooding peers, benchmarks).
pub fn sign_as(signer: &Signer, mut alert: pb::Alert) -> (pb::Alert, pb::Envelope) {
    use prost::Message;
    alert.id = tocsin_core::AlertId::generate().to_string();
    alert.originator = signer.agency().to_string();
    alert.created_at = Some(tocsin_core::to_timestamp(chrono::Utc::now()));
    let envelope = signer.sign(tocsin_proto::ALERT_PAYLOAD_TYPE, alert.encode_to_vec());
    (alert, envelope)
}

/// Fetches `GET /metrics` from `addr` over plain HTTP and reads the
/// Prometheus text: each series (`name{labels}`, exactly as written) with
/// its value.
pub async fn scrape(addr: SocketAddr) -> anyhow::Result<BTreeMap<String, f64>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fetch = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        anyhow::Ok(String::from_utf8(answer)?)
    };
    let answer = tokio::time::timeout(Duration::from_secs(5), fetch)
        .await
        .with_context(|| format!("no answer from {addr} within 5 s"))??;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .with_context(|| format!("not an HTTP answer: {answer:?}"))?;
    if !head.starts_with("HTTP/1.1 200 ") {
        bail!("metrics endpoint answered {head:?}");
    }
    let mut series = BTreeMap::new();
    for line in body
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (name, value) = line
            .rsplit_once(' ')
            .with_context(|| format!("bad metrics line {line:?}"))?;
        let value: f64 = value
            .parse()
            .with_context(|| format!("bad value in metrics line {line:?}"))?;
        series.insert(name.to_owned(), value);
    }
    Ok(series)
}

/// Connects to a node as the holder of `material`, expecting the server to
/// be `agency`. The connection is made on first use.
pub fn channel(
    addr: SocketAddr,
    material: &TlsMaterial,
    agency: &AgencyId,
) -> anyhow::Result<Channel> {
    let config = tls::client_config(material, Identity::Agency(agency.clone()))?;
    Ok(Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(20))
        .connect_with_connector_lazy(tls::connector(config)))
}

struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), StartError>>,
}

struct Slot {
    addr: SocketAddr,
    data_dir: PathBuf,
    running: Option<Running>,
    /// Where the running node serves metrics (a new port at each start).
    metrics: Option<SocketAddr>,
    /// Where the running node serves its web desk, if the federation has
    /// desks (a new port at each start).
    web: Option<SocketAddr>,
    /// The node's store: SQLite under `data_dir`, or its PostgreSQL
    /// database (kept across restarts, like the SQLite file).
    store: tocsin_node::config::StoreSettings,
}

/// A private PostgreSQL server for a federation's stores
/// ([`Builder::postgres`]); `None` when this machine has no PostgreSQL
/// binaries (the test should pass saying SKIPPED), unless
/// `TOCSIN_REQUIRE_POSTGRES=1`, when that is an error.
pub fn postgres() -> anyhow::Result<Option<Arc<tocsin_pgtest::TestPostgres>>> {
    match tocsin_pgtest::TestPostgres::start().context("start a private PostgreSQL")? {
        Some(server) => Ok(Some(Arc::new(server))),
        None => {
            eprintln!("SKIPPED: no PostgreSQL binaries on this machine");
            Ok(None)
        }
    }
}

/// An agency's database name: its id, lower-cased, `-` as `_`.
fn database_name(agency: &AgencyId) -> String {
    format!(
        "tocsin_{}",
        agency.as_str().to_lowercase().replace('-', "_")
    )
}

/// Configures a [`TestFederation`].
pub struct Builder {
    agencies: Vec<String>,
    down: Vec<String>,
    outbox: OutboxOptions,
    limits: Limits,
    clock: Arc<dyn Clock>,
    clocks: BTreeMap<String, Arc<dyn Clock>>,
    node_limits: BTreeMap<String, Limits>,
    escalation: Escalation,
    deadlines: Deadlines,
    observers: Vec<String>,
    routes: Vec<(String, String)>,
    web: bool,
    postgres: Option<Arc<tocsin_pgtest::TestPostgres>>,
    fronts: BTreeMap<String, usize>,
}

impl Builder {
    /// Runs `agency` as `n` front nodes on its one PostgreSQL database
    /// (needs [`Builder::postgres`]): each its own process-like node, with
    /// a port, metrics and data directory of its own, all listed as the
    /// agency's `endpoints` in the federation, so that peers use any that
    /// answers. Front node 0 is the one [`TestFederation::desk`] and the
    /// other agency-wide calls reach; [`TestFederation::desk_on`],
    /// [`TestFederation::stop_front`] and friends reach each.
    pub fn front_nodes(mut self, agency: impl Into<String>, n: usize) -> Self {
        self.fronts.insert(agency.into(), n);
        self
    }

    /// Keeps each node's store in a PostgreSQL database of its own on
    /// `server` (see [`postgres`]) instead of a SQLite file.
    pub fn postgres(mut self, server: Arc<tocsin_pgtest::TestPostgres>) -> Self {
        self.postgres = Some(server);
        self
    }

    /// Serves every node's web desk on a loopback port of its own (reach
    /// it with [`TestFederation::web_desk`]).
    pub fn web(mut self) -> Self {
        self.web = true;
        self
    }

    /// Routes `from`'s peer traffic to `to` through a [`FaultProxy`]
    /// (reach it with [`TestFederation::proxy`]): `from`'s node finds `to`
    /// at the proxy's address. One direction only: route `to` to `from` as
    /// well to cut both ways. Operators and [`TestFederation::peer_client`]
    /// still reach `to` directly.
    pub fn through_proxy(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        self.routes.push((from.into(), to.into()));
        self
    }

    /// The escalation ladder of the federation (default: the federation
    /// file's defaults).
    pub fn escalation(mut self, escalation: Escalation) -> Self {
        self.escalation = escalation;
        self
    }

    /// How long recipients have to acknowledge, per precedence (default:
    /// the federation file's defaults).
    pub fn deadlines(mut self, deadlines: Deadlines) -> Self {
        self.deadlines = deadlines;
        self
    }

    /// Agencies that are observers (they receive escalation notices).
    pub fn observers<I, S>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.observers = ids.into_iter().map(Into::into).collect();
        self
    }
    /// The member agencies (default `TR-MIT`, `FR-DGSI`).
    pub fn agencies<I, S>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.agencies = ids.into_iter().map(Into::into).collect();
        self
    }

    /// Agencies whose nodes are not started by [`Builder::start`] (start
    /// them later with [`TestFederation::start_node`]).
    pub fn down<I, S>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.down = ids.into_iter().map(Into::into).collect();
        self
    }

    /// The outbox policy of every node (default: fast retries for tests,
    /// 50 ms initial backoff, 1 s at most).
    pub fn outbox(mut self, outbox: OutboxOptions) -> Self {
        self.outbox = outbox;
        self
    }

    /// The limits of every node.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The clock every node uses, unless [`Builder::clock_for`] gives it
    /// its own.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The clock of `agency`'s node alone, for example a `ManualClock` set
    /// minutes apart from the others' to test clock skew.
    pub fn clock_for(mut self, agency: impl Into<String>, clock: Arc<dyn Clock>) -> Self {
        self.clocks.insert(agency.into(), clock);
        self
    }

    /// The limits of `agency`'s node alone, for example a smaller message
    /// size than its peers'.
    pub fn limits_for(mut self, agency: impl Into<String>, limits: Limits) -> Self {
        self.node_limits.insert(agency.into(), limits);
        self
    }

    /// Issues the certificates and starts the nodes.
    pub async fn start(self) -> anyhow::Result<TestFederation> {
        init();
        let dir = tempfile::tempdir()?;
        let fed_id = FederationId::new("test.tocsin")?;
        let mut listeners = BTreeMap::new();
        let mut agencies = Vec::new();
        for (id, n) in &self.fronts {
            if !self.agencies.contains(id) {
                bail!("front_nodes({id:?}): {id} is not one of the agencies");
            }
            if *n == 0 {
                bail!("front_nodes({id:?}, 0): an agency has at least one front node");
            }
            if *n > 1 && self.postgres.is_none() {
                bail!(
                    "front_nodes({id:?}, {n}): several front nodes share one PostgreSQL \
                     database; give the federation Builder::postgres"
                );
            }
        }
        for id in &self.agencies {
            let fronts = self.fronts.get(id).copied().unwrap_or(1);
            let id = AgencyId::new(id.clone())?;
            let mut addrs = Vec::new();
            for front in 0..fronts {
                let listener = TcpListener::bind("127.0.0.1:0").await?;
                addrs.push(listener.local_addr()?.to_string());
                listeners.insert((id.clone(), front), listener);
            }
            agencies.push(Agency {
                id: id.clone(),
                name: format!("{id} (test)"),
                country: String::new(),
                endpoint: addrs[0].clone(),
                endpoints: if fronts > 1 { addrs } else { vec![] },
                hosts: vec![],
                observer: self.observers.iter().any(|o| o == id.as_str()),
            });
        }
        let mut proxies = BTreeMap::new();
        for (from, to) in &self.routes {
            let (from, to) = (AgencyId::new(from.clone())?, AgencyId::new(to.clone())?);
            if from == to {
                bail!("cannot route {from} to itself through a proxy");
            }
            if !listeners.contains_key(&(from.clone(), 0)) {
                bail!("cannot route {from} to {to} through a proxy: {from} is not a member");
            }
            let target = listeners
                .get(&(to.clone(), 0))
                .with_context(|| {
                    format!("cannot route {from} to {to} through a proxy: {to} is not a member")
                })?
                .local_addr()?;
            proxies.insert((from, to), FaultProxy::start(target).await?);
        }
        let federation = Federation {
            federation: FederationInfo {
                id: fed_id,
                name: "test federation".into(),
            },
            deadlines: self.deadlines,
            escalation: self.escalation,
            agencies,
        };
        let per_agency = (self.clocks.keys().map(|id| ("clock_for", id)))
            .chain(self.node_limits.keys().map(|id| ("limits_for", id)));
        for (setting, id) in per_agency {
            if !self.agencies.contains(id) {
                bail!("{setting}({id:?}): {id} is not one of the agencies");
            }
        }
        let toml = toml_of(&federation)?;
        let layout = pki::init(&federation, &toml, &dir.path().join("pki"))?;
        let postgres = self.postgres.clone();
        let mut fed = TestFederation {
            slots: BTreeMap::new(),
            layout,
            federation,
            outbox: self.outbox,
            limits: self.limits,
            clock: self.clock,
            proxies,
            clocks: self.clocks,
            node_limits: self.node_limits,
            web: self.web,
            _postgres: postgres.clone(),
            dir,
        };
        let mut urls: BTreeMap<AgencyId, tocsin_node::config::StoreSettings> = BTreeMap::new();
        for ((id, front), listener) in listeners {
            let store = match (&postgres, urls.get(&id)) {
                (_, Some(store)) => store.clone(),
                (None, None) => tocsin_node::config::StoreSettings::default(),
                (Some(server), None) => tocsin_node::config::StoreSettings {
                    url: Some(
                        server
                            .create_database(&database_name(&id))
                            .await
                            .with_context(|| format!("create {id}'s PostgreSQL database"))?,
                    ),
                    // A few each, so that several front nodes of several
                    // agencies stay well within the test server's 40.
                    max_connections: Some(4),
                },
            };
            urls.insert(id.clone(), store.clone());
            let data = fed.dir.path().join("data").join(id.as_str());
            let slot = Slot {
                addr: listener.local_addr()?,
                data_dir: if front == 0 {
                    data
                } else {
                    data.join(format!("front-{front}"))
                },
                running: None,
                metrics: None,
                web: None,
                store,
            };
            fed.slots.insert((id.clone(), front), slot);
            if self.down.iter().any(|d| d == id.as_str()) {
                drop(listener);
            } else {
                fed.launch(&id, front, listener)?;
            }
        }
        Ok(fed)
    }
}

fn toml_of(federation: &Federation) -> anyhow::Result<String> {
    Ok(toml::to_string(federation)?)
}

/// A federation of in-process nodes; every node is stopped when it drops.
pub struct TestFederation {
    /// Each agency's front nodes, by (agency, front node number).
    slots: BTreeMap<(AgencyId, usize), Slot>,
    layout: PkiLayout,
    federation: Federation,
    outbox: OutboxOptions,
    limits: Limits,
    node_limits: BTreeMap<String, Limits>,
    clock: Arc<dyn Clock>,
    /// Fault proxies by (from, to) route.
    proxies: BTreeMap<(AgencyId, AgencyId), FaultProxy>,
    clocks: BTreeMap<String, Arc<dyn Clock>>,
    web: bool,
    /// The PostgreSQL server the nodes' stores are on, if they are: kept
    /// running as long as the federation.
    _postgres: Option<Arc<tocsin_pgtest::TestPostgres>>,
    dir: TempDir,
}

impl TestFederation {
    /// A builder with defaults suited to tests.
    pub fn builder() -> Builder {
        Builder {
            agencies: vec!["TR-MIT".into(), "FR-DGSI".into()],
            down: vec![],
            outbox: OutboxOptions {
                initial_backoff: Duration::from_millis(50),
                max_backoff: Duration::from_secs(1),
                batch: 128,
                per_request: 32,
                connect_timeout: Duration::from_secs(2),
            },
            limits: Limits::default(),
            clock: Arc::new(SystemClock),
            clocks: BTreeMap::new(),
            node_limits: BTreeMap::new(),
            escalation: Escalation::default(),
            deadlines: Deadlines::default(),
            observers: vec![],
            routes: vec![],
            web: false,
            postgres: None,
            fronts: BTreeMap::new(),
        }
    }

    fn id(agency: &str) -> anyhow::Result<AgencyId> {
        Ok(AgencyId::new(agency)?)
    }

    /// `agency`'s first front node.
    fn slot(&self, agency: &AgencyId) -> anyhow::Result<&Slot> {
        self.front_slot(agency, 0)
    }

    fn front_slot(&self, agency: &AgencyId, front: usize) -> anyhow::Result<&Slot> {
        self.slots
            .get(&(agency.clone(), front))
            .with_context(|| match self.fronts_of(agency) {
                0 => format!("{agency} is not in this test federation"),
                n => format!("{agency} has {n} front node(s), numbered from 0: no {front}"),
            })
    }

    fn fronts_of(&self, agency: &AgencyId) -> usize {
        self.slots.keys().filter(|(a, _)| a == agency).count()
    }

    /// How many front nodes `agency` runs ([`Builder::front_nodes`]).
    pub fn front_nodes(&self, agency: &str) -> anyhow::Result<usize> {
        let id = Self::id(agency)?;
        match self.fronts_of(&id) {
            0 => bail!("{agency} is not in this test federation"),
            n => Ok(n),
        }
    }

    /// The federation as `agency`'s node sees it: peers it is routed to
    /// through a proxy are at the proxy's address.
    fn federation_seen_by(&self, agency: &AgencyId) -> Federation {
        let mut federation = self.federation.clone();
        for peer in &mut federation.agencies {
            if let Some(proxy) = self.proxies.get(&(agency.clone(), peer.id.clone())) {
                // Through the proxy only (to the peer's first front node).
                peer.endpoint = proxy.addr().to_string();
                peer.endpoints.clear();
            }
        }
        federation
    }

    fn launch(
        &mut self,
        agency: &AgencyId,
        front: usize,
        listener: TcpListener,
    ) -> anyhow::Result<()> {
        let metrics = std::net::TcpListener::bind("127.0.0.1:0")?;
        metrics.set_nonblocking(true)?;
        let metrics = TcpListener::from_std(metrics)?;
        let metrics_addr = metrics.local_addr()?;
        let web = if self.web {
            // The last start's token is no longer valid; tests wait for
            // this start's.
            let token = self
                .front_slot(agency, front)?
                .data_dir
                .join(tocsin_node::WEB_TOKEN_FILE);
            if token.exists() {
                std::fs::remove_file(&token)?;
            }
            let web = std::net::TcpListener::bind("127.0.0.1:0")?;
            web.set_nonblocking(true)?;
            Some(TcpListener::from_std(web)?)
        } else {
            None
        };
        let web_addr = web.as_ref().map(TcpListener::local_addr).transpose()?;
        let options = NodeOptions {
            agency: agency.clone(),
            federation: self.federation_seen_by(agency),
            tls: TlsMaterial::load(
                &self.layout.ca_cert(),
                &self.layout.node_cert(agency),
                &self.layout.node_key(agency),
                self.federation.id(),
            )?,
            tls_source: Some(TlsSource {
                cert: self.layout.node_cert(agency),
                key: self.layout.node_key(agency),
                crls: vec![self.layout.crl()],
            }),
            // Quick, so tests of revocation and renewal need not wait.
            reload_interval: Duration::from_millis(100),
            signer: Signer::load(
                &self.layout.signing_cert(agency),
                &self.layout.signing_key(agency),
                self.federation.id(),
            )?,
            data_dir: self.front_slot(agency, front)?.data_dir.clone(),
            store: self.front_slot(agency, front)?.store.clone(),
            limits: *self
                .node_limits
                .get(agency.as_str())
                .unwrap_or(&self.limits),
            outbox: self.outbox,
            screening: tocsin_node::config::ScreeningOptions::default(),
            clock: self
                .clocks
                .get(agency.as_str())
                .unwrap_or(&self.clock)
                .clone(),
            metrics: Some(metrics),
            web,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(tocsin_node::serve(options, listener, async move {
            let _ = stopped.await;
        }));
        let slot = self
            .slots
            .get_mut(&(agency.clone(), front))
            .context("unknown front node")?;
        slot.running = Some(Running { stop, task });
        slot.metrics = Some(metrics_addr);
        slot.web = web_addr;
        Ok(())
    }

    /// The address `agency`'s node listens on (its first front node).
    pub fn addr(&self, agency: &str) -> anyhow::Result<SocketAddr> {
        Ok(self.slot(&Self::id(agency)?)?.addr)
    }

    /// The proxy between `from`'s node and `to`'s, set up with
    /// [`Builder::through_proxy`].
    pub fn proxy(&self, from: &str, to: &str) -> anyhow::Result<&FaultProxy> {
        self.proxies
            .get(&(Self::id(from)?, Self::id(to)?))
            .with_context(|| format!("{from} is not routed to {to} through a proxy"))
    }

    /// Where `agency`'s running node serves Prometheus metrics.
    pub fn metrics_addr(&self, agency: &str) -> anyhow::Result<SocketAddr> {
        self.slot(&Self::id(agency)?)?
            .metrics
            .with_context(|| format!("{agency} is not running"))
    }

    /// Scrapes `agency`'s metrics endpoint (see [`scrape`]).
    pub async fn metrics(&self, agency: &str) -> anyhow::Result<BTreeMap<String, f64>> {
        scrape(self.metrics_addr(agency)?).await
    }

    /// `agency`'s web desk, once its node has written this start's token
    /// (the federation must be built with [`Builder::web`]).
    pub async fn web_desk(&self, agency: &str) -> anyhow::Result<WebDesk> {
        let slot = self.slot(&Self::id(agency)?)?;
        let addr = slot.web.with_context(|| {
            format!("{agency} serves no web desk (not running, or no Builder::web)")
        })?;
        WebDesk::wait_for(addr, &slot.data_dir).await
    }

    /// The PostgreSQL connection string of `agency`'s store, when the
    /// federation keeps its stores there ([`Builder::postgres`]).
    pub fn store_url(&self, agency: &str) -> anyhow::Result<Option<String>> {
        Ok(self.slot(&AgencyId::new(agency)?)?.store.url.clone())
    }

    /// `agency`'s data directory.
    pub fn data_dir(&self, agency: &str) -> anyhow::Result<PathBuf> {
        Ok(self.slot(&Self::id(agency)?)?.data_dir.clone())
    }

    /// The PKI directory (CA, node and signing certificates).
    pub fn pki(&self) -> &PkiLayout {
        &self.layout
    }

    /// The federation as its nodes see it.
    pub fn federation(&self) -> &Federation {
        &self.federation
    }

    /// A scratch directory that lives as long as the federation.
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// Stops `agency`'s node gracefully (every front node of it) and waits
    /// until it has closed its store.
    pub async fn stop_node(&mut self, agency: &str) -> anyhow::Result<()> {
        let id = Self::id(agency)?;
        let mut stopped = false;
        for front in 0..self.fronts_of(&id) {
            if self.front_slot(&id, front)?.running.is_some() {
                self.stop_front(agency, front).await?;
                stopped = true;
            }
        }
        if !stopped {
            bail!("{agency} is not running");
        }
        Ok(())
    }

    /// Starts `agency`'s node again (every front node of it that is not
    /// running) on the same ports and data directories.
    pub async fn start_node(&mut self, agency: &str) -> anyhow::Result<()> {
        let id = Self::id(agency)?;
        let mut started = false;
        for front in 0..self.fronts_of(&id) {
            if self.front_slot(&id, front)?.running.is_none() {
                self.start_front(agency, front).await?;
                started = true;
            }
        }
        if !started {
            bail!("{agency} is already running");
        }
        Ok(())
    }

    /// Stops front node `front` of `agency` gracefully and waits until it
    /// has closed its store; the agency's other front nodes carry on.
    pub async fn stop_front(&mut self, agency: &str, front: usize) -> anyhow::Result<()> {
        let id = Self::id(agency)?;
        self.front_slot(&id, front)?;
        let slot = self
            .slots
            .get_mut(&(id, front))
            .context("unknown front node")?;
        let running = slot
            .running
            .take()
            .with_context(|| format!("{agency}'s front node {front} is not running"))?;
        slot.metrics = None;
        slot.web = None;
        let _ = running.stop.send(());
        running.task.await??;
        Ok(())
    }

    /// Starts front node `front` of `agency` again on its port and data
    /// directory.
    pub async fn start_front(&mut self, agency: &str, front: usize) -> anyhow::Result<()> {
        let id = Self::id(agency)?;
        let slot = self.front_slot(&id, front)?;
        if slot.running.is_some() {
            bail!("{agency}'s front node {front} is already running");
        }
        let addr = slot.addr;
        // The port was released when the node stopped; the OS may take a
        // moment to let it be bound again.
        let listener = wait_until(
            Duration::from_secs(5),
            &format!("{addr} can be bound again"),
            || async move { TcpListener::bind(addr).await.ok() },
        )
        .await?;
        self.launch(&id, front, listener)
    }

    /// Stops and starts `agency`'s node.
    pub async fn restart_node(&mut self, agency: &str) -> anyhow::Result<()> {
        self.stop_node(agency).await?;
        self.start_node(agency).await
    }

    /// TLS material for an operator `name` of `agency`, issued on first use.
    pub fn operator_material(&self, agency: &str, name: &str) -> anyhow::Result<TlsMaterial> {
        let id = Self::id(agency)?;
        let (cert, key) = (
            self.layout.operator_cert(&id, name),
            self.layout.operator_key(&id, name),
        );
        if !cert.exists() {
            pki::issue_operator(&self.layout, &self.federation, &id, name)?;
        }
        Ok(TlsMaterial::load(
            &self.layout.ca_cert(),
            &cert,
            &key,
            self.federation.id(),
        )?)
    }

    /// `agency`'s own TLS material (its node certificate).
    pub fn node_material(&self, agency: &str) -> anyhow::Result<TlsMaterial> {
        let id = Self::id(agency)?;
        Ok(TlsMaterial::load(
            &self.layout.ca_cert(),
            &self.layout.node_cert(&id),
            &self.layout.node_key(&id),
            self.federation.id(),
        )?)
    }

    /// `agency`'s envelope signer.
    pub fn signer(&self, agency: &str) -> anyhow::Result<Signer> {
        let id = Self::id(agency)?;
        Ok(Signer::load(
            &self.layout.signing_cert(&id),
            &self.layout.signing_key(&id),
            self.federation.id(),
        )?)
    }

    /// `agency`'s [`Desk`]: its operator "analyst" on its node (its first
    /// front node), with the flow calls and waits of module [`flow`].
    pub async fn desk(&self, agency: &str) -> anyhow::Result<Desk> {
        self.desk_on(agency, 0).await
    }

    /// `agency`'s [`Desk`] on its front node `front` (see
    /// [`Builder::front_nodes`]): the same operator, another process.
    pub async fn desk_on(&self, agency: &str, front: usize) -> anyhow::Result<Desk> {
        let ch = self.analyst_channel(agency, front)?;
        Ok(Desk::new(agency, OperatorClient::new(ch.clone()))
            .with_watchlist(pb::watchlist_desk_client::WatchlistDeskClient::new(ch)))
    }

    /// The address `agency`'s front node `front` listens on.
    pub fn front_addr(&self, agency: &str, front: usize) -> anyhow::Result<SocketAddr> {
        Ok(self.front_slot(&Self::id(agency)?, front)?.addr)
    }

    /// An operator client on `agency`'s node, as its operator "analyst".
    pub async fn operator(&self, agency: &str) -> anyhow::Result<OperatorClient<Channel>> {
        self.operator_as(agency, "analyst", agency)
    }

    /// An operator client on every front node of `agency`, in order, as
    /// its operator "analyst".
    pub fn operators(&self, agency: &str) -> anyhow::Result<Vec<OperatorClient<Channel>>> {
        (0..self.front_nodes(agency)?)
            .map(|front| Ok(OperatorClient::new(self.analyst_channel(agency, front)?)))
            .collect()
    }

    /// A channel to `agency`'s front node `front` as its operator "analyst".
    fn analyst_channel(&self, agency: &str, front: usize) -> anyhow::Result<Channel> {
        let material = self.operator_material(agency, "analyst")?;
        let id = Self::id(agency)?;
        channel(self.front_slot(&id, front)?.addr, &material, &id)
    }

    /// An operator client connecting to `node`'s node with the certificate
    /// of operator `name` of `agency` (which may be another agency, to test
    /// refusals).
    pub fn operator_as(
        &self,
        agency: &str,
        name: &str,
        node: &str,
    ) -> anyhow::Result<OperatorClient<Channel>> {
        let material = self.operator_material(agency, name)?;
        let ch = channel(self.addr(node)?, &material, &Self::id(node)?)?;
        Ok(OperatorClient::new(ch))
    }

    /// A federation client calling `to`'s node with `from`'s node certificate,
    /// as a peer would.
    pub fn peer_client(&self, from: &str, to: &str) -> anyhow::Result<FederationClient<Channel>> {
        let material = self.node_material(from)?;
        let ch = channel(self.addr(to)?, &material, &Self::id(to)?)?;
        Ok(FederationClient::new(ch))
    }
}

impl Drop for TestFederation {
    fn drop(&mut self) {
        for slot in self.slots.values_mut() {
            if let Some(running) = slot.running.take() {
                let _ = running.stop.send(());
                running.task.abort();
            }
        }
    }
}

/// Resident memory of process `pid` now and at its peak (`VmRSS`, `VmHWM`),
/// in MiB; Linux only.
pub fn resident_mib(pid: u32) -> anyhow::Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("cannot read /proc (resident memory is measured on Linux)")?;
    let field = |name: &str| -> anyhow::Result<f64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("no {name} in /proc status"))?;
        let kb: f64 = line
            .split_whitespace()
            .nth(1)
            .context("malformed /proc status")?
            .parse()?;
        Ok(kb / 1024.0)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}
