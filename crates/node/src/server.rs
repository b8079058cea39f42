//! Starting and stopping a node.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tocsin_core::federation::{Federation, FederationError};
use tocsin_core::{AgencyId, Clock, Identity, SystemClock};
use tocsin_proto::desk::watchlist_desk_server::WatchlistDeskServer;
use tocsin_proto::pb::federation_server::FederationServer;
use tocsin_proto::pb::operator_server::OperatorServer;
use tocsin_proto::pb::watchlist_sync_server::WatchlistSyncServer;
use tocsin_store::{Store, StoreOptions};
use tocsin_trust::live::{LiveTls, TlsSource};
use tocsin_trust::tls::{self, AcceptorLimits, TlsMaterial};
use tocsin_trust::{Signer, Verifier};
use tokio::net::TcpListener;
use tonic::transport::{Channel, Endpoint, Server};

use crate::config::{Limits, NodeConfig, OutboxOptions, ScreeningOptions};
use crate::domain::{Node, NodeParts};
use crate::outbox::{self, OutboxContext, OutboxHandle};
use crate::service::{FederationService, OperatorService};
use crate::shutdown::Shutdown;
use crate::skew::SkewMonitor;
use crate::tracker::Tracker;

/// Why a node could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The federation file is unusable.
    #[error(transparent)]
    Federation(#[from] FederationError),
    /// A certificate or key is unusable.
    #[error(transparent)]
    Trust(#[from] tocsin_trust::Error),
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(#[from] tocsin_store::Error),
    /// Something else is inconsistent.
    #[error("{0}")]
    Invalid(String),
    /// The listener handed to the node is unusable.
    #[error("listener: {0}")]
    Listener(#[source] std::io::Error),
    /// A peer's endpoint in the federation file is not a usable address.
    #[error("endpoint of {peer}: {source}")]
    Endpoint {
        /// The peer.
        peer: AgencyId,
        /// Why.
        source: tonic::transport::Error,
    },
    /// The reflection service could not be built.
    #[error("reflection: {0}")]
    Reflection(#[source] tonic_reflection::server::Error),
    /// The server failed.
    #[error("server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Everything a node needs, loaded and checked.
pub struct NodeOptions {
    /// The agency this node speaks for.
    pub agency: AgencyId,
    /// The federation.
    pub federation: Federation,
    /// The node's TLS material.
    pub tls: TlsMaterial,
    /// Where the TLS material and CRLs are reloaded from while the node
    /// runs; `None` keeps `tls` as it is, with nothing revoked.
    pub tls_source: Option<TlsSource>,
    /// How often `tls_source` is checked for changes.
    pub reload_interval: Duration,
    /// The agency's envelope signer.
    pub signer: Signer,
    /// Where the node keeps its files (the web token; the SQLite store
    /// unless `store` names PostgreSQL).
    pub data_dir: PathBuf,
    /// The store: SQLite under `data_dir`, or a PostgreSQL database.
    pub store: crate::config::StoreSettings,
    /// Abuse limits.
    pub limits: Limits,
    /// Outbox retry policy.
    pub outbox: OutboxOptions,
    /// Screening and hit reports.
    pub screening: ScreeningOptions,
    /// The source of time.
    pub clock: Arc<dyn Clock>,
    /// Where to serve Prometheus metrics (`GET /metrics`, plain HTTP);
    /// nowhere when `None`. [`NodeOptions::from_config`] leaves it empty:
    /// the caller binds `metrics_listen`, as it binds `listen`.
    pub metrics: Option<TcpListener>,
    /// Where to serve the web desk (plain HTTP on loopback, guarded by a
    /// per-start token written to `<data_dir>/web.token`); nowhere when
    /// `None`. A listener that is not on loopback is refused at start.
    /// [`NodeOptions::from_config`] leaves it empty: the caller binds
    /// `web_listen`.
    pub web: Option<TcpListener>,
}

impl std::fmt::Debug for NodeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeOptions")
            .field("agency", &self.agency)
            .field("data_dir", &self.data_dir)
            .field("metrics", &self.metrics)
            .field("web", &self.web)
            .finish_non_exhaustive()
    }
}

impl NodeOptions {
    /// Loads the federation file, certificates and keys a configuration
    /// names, and checks that they agree with each other.
    pub fn from_config(config: &NodeConfig) -> Result<Self, StartError> {
        let federation = Federation::load(&config.federation)?;
        let fed_id = federation.id().clone();
        if !federation.is_member(&config.agency) {
            return Err(StartError::Invalid(format!(
                "agency {} is not in federation file {}",
                config.agency,
                config.federation.display()
            )));
        }
        let tls = TlsMaterial::load(&config.tls.ca, &config.tls.cert, &config.tls.key, &fed_id)?;
        if tls.identity != Identity::Agency(config.agency.clone()) {
            return Err(StartError::Invalid(format!(
                "certificate {} is for {}, not agency {}",
                config.tls.cert.display(),
                tls.identity,
                config.agency
            )));
        }
        let signer = Signer::load(&config.signing.cert, &config.signing.key, &fed_id)?;
        if signer.agency() != &config.agency {
            return Err(StartError::Invalid(format!(
                "signing certificate {} is {}'s, not {}'s",
                config.signing.cert.display(),
                signer.agency(),
                config.agency
            )));
        }
        Ok(Self {
            agency: config.agency.clone(),
            federation,
            tls,
            tls_source: Some(TlsSource {
                cert: config.tls.cert.clone(),
                key: config.tls.key.clone(),
                crls: config.tls.crls.clone(),
            }),
            reload_interval: config.tls.reload_interval,
            signer,
            data_dir: config.data_dir.clone(),
            store: config.store.clone(),
            limits: config.limits,
            outbox: config.outbox,
            screening: config.screening,
            clock: match config.clock.clone() {
                None => Arc::new(SystemClock),
                Some(c) => {
                    let origin = c.origin.unwrap_or_else(chrono::Utc::now);
                    if !(c.speed.is_finite() && c.speed >= 1.0) {
                        return Err(StartError::Invalid(format!(
                            "[clock] speed must be a number of at least 1, not {}",
                            c.speed
                        )));
                    }
                    Arc::new(tocsin_core::ScaledClock::with_pace(
                        c.start, origin, c.speed, &c.pace,
                    ))
                }
            },
            metrics: None,
            web: None,
        })
    }
}

/// Runs a node on `listener` until `shutdown` resolves, then drains
/// connections, stops the outbox and closes the store.
pub async fn serve(
    options: NodeOptions,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), StartError> {
    let NodeOptions {
        agency,
        federation,
        tls: material,
        tls_source,
        reload_interval,
        signer,
        data_dir,
        store: store_settings,
        limits,
        outbox: outbox_options,
        screening,
        clock,
        metrics,
        web,
    } = options;
    let local: SocketAddr = listener.local_addr().map_err(StartError::Listener)?;
    let web = web.map(crate::web::Desk::check).transpose()?;
    let federation = Arc::new(federation);
    let mut stop = Shutdown::default();

    let (live, verifier) = load_trust(&material, tls_source, &federation)?;
    let signer = Arc::new(signer);
    stop.track(live.watch(reload_interval, stop.stopping().receiver()));
    let store = open_store(&data_dir, &store_settings, local).await?;
    let peers = peer_channels(&federation, &agency, &live, &outbox_options, &limits)?;
    let skew = SkewMonitor::new(limits.clock_skew_tolerance);
    let backoff = (outbox_options.initial_backoff, outbox_options.max_backoff);
    let outbox = start_outbox(
        OutboxContext {
            store: store.clone(),
            verifier: verifier.clone(),
            clock: clock.clone(),
            options: outbox_options,
            skew: skew.clone(),
            words: crate::domain::wording::OUTCOME_WORDS,
        },
        peers.clone(),
        limits.max_message_bytes,
        &mut stop,
    );
    // Watchlists: this agency's log, and a puller per other owner. Peers'
    // FollowHead streams never end by themselves and the graceful drain
    // waits for every stream, so they end as soon as shutdown begins, not
    // when the drain does.
    let (closing_tx, closing) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        shutdown.await;
        let _ = closing_tx.send(true);
    };
    let watchlists = crate::watchlist::Watchlists::new(
        agency.clone(),
        federation.clone(),
        store.clone(),
        signer.clone(),
        verifier.clone(),
        clock.clone(),
        closing,
    )
    .await?;
    start_watchlist_tasks(&watchlists, &peers, backoff, &limits, &mut stop);
    let tracker = Tracker::new(clock.clone());
    let node = Node::new(NodeParts {
        agency: agency.clone(),
        federation: federation.clone(),
        store: store.clone(),
        signer: signer.clone(),
        verifier: verifier.clone(),
        clock: clock.clone(),
        outbox: outbox.clone(),
        tracker: tracker.handle(),
        shutdown: stop.stopping(),
        hit_window: screening.hit_report_window,
    });
    stop.track(tracker.start(node.clone(), stop.stopping()));

    // Refused sessions by reason, for the metrics endpoint.
    let refusals = tocsin_trust::refusals::Refusals::default();
    let incoming = accept(
        listener,
        &live,
        access_policy(&federation, &agency),
        &limits,
        &refusals,
        on_session(&outbox, &skew, &watchlists),
    )?;
    tracing::info!(%agency, listen = %local, federation = %federation.id(), "node serving");
    if let Some(listener) = metrics {
        let sources = crate::metrics::Sources {
            skew: skew.clone(),
            refusals,
            watchlist: watchlists.board.clone(),
            clock: clock.clone(),
        };
        stop.spawn(crate::metrics::serve(
            listener,
            sources,
            stop.stopping().receiver(),
        ));
    }
    if let Some(desk) = web {
        let token = desk.issue_token(&data_dir)?;
        let sources = crate::web::Sources {
            watchlists: watchlists.clone(),
            links: outbox.links().clone(),
            skew: skew.clone(),
            tls: live.clone(),
            signer: signer.clone(),
        };
        stop.spawn(desk.serve(node.clone(), sources, token, stop.stopping().receiver()));
    }
    // Greets every peer at once (the session this opens tells a peer that
    // was waiting for us that we are back, so it need not wait out its
    // backoff), then measures the clocks of those nothing else measured.
    stop.spawn(crate::skew::probe(
        peers,
        clock.clone(),
        skew,
        stop.stopping().receiver(),
    ));
    let served = serve_grpc(node, watchlists, &limits, clock, incoming, shutdown).await;

    stop.drain().await;
    store.close().await;
    tracing::info!(%agency, "node stopped");
    served
}

/// The certificate, key and CRLs in force, reloaded while the node runs,
/// and the envelope verifier that shares their revocations.
fn load_trust(
    material: &TlsMaterial,
    source: Option<TlsSource>,
    federation: &Federation,
) -> Result<(Arc<LiveTls>, Verifier), StartError> {
    let live = match source {
        Some(source) => LiveTls::watched(material, source)?,
        None => LiveTls::fixed(material)?,
    };
    let verifier =
        Verifier::new(material.ca.as_ref(), federation.id())?.with_revocations(live.revocations());
    Ok((live, verifier))
}

/// One lazy, long-lived HTTP/2 channel to each peer; to a peer with
/// several front nodes (`endpoints`), one that fails over between them
/// (see [`crate::failover`]).
fn peer_channels(
    federation: &Federation,
    agency: &AgencyId,
    live: &Arc<LiveTls>,
    outbox: &OutboxOptions,
    limits: &Limits,
) -> Result<Vec<(AgencyId, Channel)>, StartError> {
    let mut peers = Vec::new();
    for peer in federation.agencies.iter().filter(|a| &a.id != agency) {
        let config = tls::live_client_config(live, Identity::Agency(peer.id.clone()))?;
        let mut uris = Vec::new();
        for endpoint in peer.all_endpoints() {
            let parsed = Endpoint::from_shared(format!("http://{endpoint}")).map_err(|source| {
                StartError::Endpoint {
                    peer: peer.id.clone(),
                    source,
                }
            })?;
            uris.push(parsed.uri().clone());
        }
        let endpoint = Endpoint::from(uris[0].clone())
            .timeout(limits.request_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10));
        let connector = tls::connector_tracked(config, Some(live.clone()));
        let channel = if uris.len() == 1 {
            endpoint
                .connect_timeout(outbox.connect_timeout)
                .connect_with_connector_lazy(connector)
        } else {
            // Each front node gets the connect timeout; the whole try
            // may take them all.
            let n = u32::try_from(uris.len()).unwrap_or(u32::MAX);
            endpoint
                .connect_timeout(outbox.connect_timeout.saturating_mul(n))
                .connect_with_connector_lazy(crate::failover::failover(
                    connector,
                    uris,
                    outbox.connect_timeout,
                ))
        };
        peers.push((peer.id.clone(), channel));
    }
    Ok(peers)
}

/// Starts one outbox worker per peer, stopped and waited for on drain.
fn start_outbox(
    ctx: OutboxContext,
    peers: Vec<(AgencyId, Channel)>,
    max_message_bytes: usize,
    stop: &mut Shutdown,
) -> OutboxHandle {
    let (outbox, workers) =
        outbox::spawn(ctx, peers, max_message_bytes, stop.stopping().receiver());
    for worker in workers {
        stop.track(worker);
    }
    outbox
}

/// Who may open a session: known agencies of the federation, and this
/// agency's own operators. Everyone else is refused in the handshake.
fn access_policy(federation: &Arc<Federation>, agency: &AgencyId) -> tls::AccessPolicy {
    let federation = federation.clone();
    let agency = agency.clone();
    Arc::new(move |id: &Identity| match id {
        Identity::Agency(a) => federation.is_member(a),
        Identity::Operator { agency: of, .. } => of == &agency,
    })
}

/// Opens the store the configuration names: SQLite under `data_dir`, or
/// the PostgreSQL database of `[store] url` (migrated as needed), where
/// this node is one of its agency's front nodes, named by its host and the
/// address it listens on (`local`): unique among them, and the same at
/// every start.
async fn open_store(
    data_dir: &Path,
    settings: &crate::config::StoreSettings,
    local: SocketAddr,
) -> Result<Store, StartError> {
    Ok(match &settings.url {
        None => Store::open(data_dir, StoreOptions::default())?,
        Some(url) => {
            let mut pool = tocsin_store::postgres::PoolOptions::default();
            if let Some(n) = settings.max_connections {
                pool.max_size = n;
            }
            let host = gethostname::gethostname();
            pool.front_node = Some(format!("{}/{local}", host.to_string_lossy()));
            Store::connect(url, pool).await?
        }
    })
}

/// What a new session tells the node: a peer that opens one is up, so
/// retry what waits for it, and measure its clock if that could not be
/// done yet.
fn on_session(
    outbox: &OutboxHandle,
    skew: &SkewMonitor,
    watchlists: &crate::watchlist::Watchlists,
) -> tls::SessionHook {
    let outbox = outbox.clone();
    let skew = skew.clone();
    let watchlists = watchlists.clone();
    Arc::new(move |id: &Identity| {
        if let Identity::Agency(a) = id {
            outbox.peer_up(a);
            skew.peer_up(a);
            watchlists.owner_up(a);
        }
    })
}

/// Starts the pullers of every other owner's watchlist and the expiry of
/// our own entries, stopped and waited for on drain.
fn start_watchlist_tasks(
    watchlists: &crate::watchlist::Watchlists,
    peers: &[(AgencyId, Channel)],
    backoff: (Duration, Duration),
    limits: &Limits,
    stop: &mut Shutdown,
) {
    for task in
        crate::watchlist::spawn_pullers(watchlists, peers, backoff, limits.max_message_bytes)
    {
        stop.track(task);
    }
    stop.track(tokio::spawn(watchlists.clone().run_expiry()));
    stop.track(crate::watchlist::spawn_own_follower(watchlists));
}

/// Accepted mutual-TLS connections, as the gRPC server takes them.
type Incoming = tokio_stream::wrappers::ReceiverStream<std::io::Result<tls::TlsConn>>;

/// The mutual-TLS sessions the node accepts on `listener` under `policy`;
/// refused ones are counted in `refusals`.
fn accept(
    listener: TcpListener,
    live: &Arc<LiveTls>,
    policy: tls::AccessPolicy,
    limits: &Limits,
    refusals: &tocsin_trust::refusals::Refusals,
    hook: tls::SessionHook,
) -> Result<Incoming, StartError> {
    let server_config = tls::live_server_config(live, policy)?;
    Ok(tls::Acceptor::new(
        listener,
        server_config,
        AcceptorLimits {
            handshake_timeout: limits.handshake_timeout,
            max_concurrent_handshakes: limits.max_concurrent_handshakes,
            max_connections_per_peer: limits.max_connections_per_peer,
        },
    )
    .tracked_by(live.clone())
    .counting(refusals.clone())
    .on_session(hook)
    .into_stream())
}

/// Serves the federation and operator services, health and reflection on
/// `incoming` until `shutdown` resolves and connections have drained.
async fn serve_grpc(
    node: Node,
    watchlists: crate::watchlist::Watchlists,
    limits: &Limits,
    clock: Arc<dyn Clock>,
    incoming: Incoming,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), StartError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<FederationServer<FederationService>>()
        .await;
    health
        .set_serving::<OperatorServer<OperatorService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tocsin_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(StartError::Reflection)?;

    let max = limits.max_message_bytes;
    let federation_service = FederationServer::new(FederationService {
        node: node.clone(),
        gate: Arc::new(crate::admission::PeerGate::new(
            limits.peer_concurrency,
            limits.peer_queue,
        )),
    })
    .max_decoding_message_size(max)
    .max_encoding_message_size(max);
    let watchlist_desk = WatchlistDeskServer::new(crate::watchlist::DeskService {
        watchlists: watchlists.clone(),
        node: node.clone(),
    })
    .max_decoding_message_size(max)
    .max_encoding_message_size(max);
    let operator_service = OperatorServer::new(OperatorService { node })
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let watchlist_sync = WatchlistSyncServer::new(crate::watchlist::SyncService {
        watchlists: watchlists.clone(),
    })
    .max_decoding_message_size(max)
    .max_encoding_message_size(max);

    // Every answer carries our clock reading, for peers to measure skew by.
    let stamp = tower::util::MapResponseLayer::new(
        move |mut response: http::Response<tonic::body::Body>| {
            crate::skew::stamp(&mut response, clock.now());
            response
        },
    );
    // A node must go on serving whatever one request does, so the request
    // timeout and stream cap apply to every connection.
    // Requests in flight per identity are counted before their bodies
    // are read, so a flood of large messages takes bounded memory.
    let in_flight =
        crate::admission::InFlightLayer::new(limits.peer_concurrency + limits.peer_queue);
    Server::builder()
        .layer(stamp)
        .layer(in_flight)
        .timeout(limits.request_timeout)
        .max_concurrent_streams(limits.max_concurrent_streams)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(federation_service)
        .add_service(operator_service)
        .add_service(watchlist_sync)
        .add_service(watchlist_desk)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .map_err(StartError::from)
}
