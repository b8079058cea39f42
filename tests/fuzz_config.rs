//! Fuzz target: the federation file and the node configuration.
//!
//! Mutated and arbitrary text gets a clean error or a value that works:
//! a federation file that parses can be written back, gives ordered
//! deadlines and ladder steps for any alert, and `tocsin pki init` can
//! issue its certificates or say why not; a node configuration that loads
//! starts a node that answers an operator and a peer, and stops, without a
//! panic in any of its tasks.
//!
//! Two kinds of mutants of the node configuration: text mutants (most of
//! which never parse, and test the parser's refusals) and typed mutants,
//! which keep every path and change one to four settings to other values
//! of their type, so that most load and their values reach a running node.
//! A node that loads must answer: each call succeeds, or fails with the
//! code its configuration explains (a tiny message limit, request timeout
//! or handshake timeout), never with another.

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::select;
use tempfile::TempDir;
use tocsin_core::federation::{Agency, Federation, FederationInfo};
use tocsin_core::{AgencyId, Alert, FederationId};
use tocsin_node::{NodeConfig, NodeOptions};
use tocsin_proto::pb;
use tocsin_proto::pb::federation_client::FederationClient;
use tocsin_proto::pb::operator_client::OperatorClient;
use tocsin_testkit::{channel, draft, sign_as};
use tocsin_trust::Signer;
use tocsin_trust::pki::{self, CertificateAuthority, PkiLayout};
use tocsin_trust::tls::TlsMaterial;

const REGRESSIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/proptest-regressions/fuzz_config.txt"
);

/// Panics anywhere in this test binary, spawned tasks included: a node's
/// tasks run detached, and a panic there would otherwise go unseen.
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // proptest reports a failed property with a panic of its own on
            // the test's thread; any other panic is the nodes'.
            let proptest_failure = info
                .payload()
                .downcast_ref::<String>()
                .is_some_and(|m| m.starts_with("Test failed"));
            if !proptest_failure {
                PANICS.fetch_add(1, Ordering::SeqCst);
            }
            default(info);
        }));
    });
}

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
});

fn federation_seeds() -> Vec<String> {
    vec![
        tocsin_fuzz::seed("federation.toml"),
        tocsin_fuzz::workspace_file("deploy/demo/federation.toml"),
        tocsin_fuzz::workspace_file("deploy/hosts/federation.toml"),
        tocsin_fuzz::workspace_file("deploy/examples/two-agencies.toml"),
    ]
}

static CA: LazyLock<CertificateAuthority> = LazyLock::new(|| {
    tocsin_testkit::init();
    CertificateAuthority::generate(&FederationId::new("fuzz.tocsin").unwrap()).unwrap()
});

/// Checks a parsed federation: it writes back to itself, and what nodes
/// and `tocsin pki init` compute from it works.
fn check_federation(fed: &Federation, wire: pb::Alert) -> Result<(), TestCaseError> {
    prop_assert!(!fed.agencies.is_empty());
    for (i, a) in fed.agencies.iter().enumerate() {
        prop_assert!(fed.agency(&a.id).is_some());
        prop_assert!(
            fed.agencies[..i].iter().all(|b| b.id != a.id),
            "{} listed twice",
            a.id
        );
        let _ = a.endpoint_host();
    }
    let written = toml::to_string(fed);
    prop_assert!(written.is_ok(), "cannot write back: {written:?}");
    let reread = Federation::parse(&written.unwrap(), "written back");
    prop_assert_eq!(
        reread.as_ref().ok(),
        Some(fed),
        "{:?}",
        reread.as_ref().err()
    );

    if let Ok(alert) = Alert::try_from(wire) {
        let due = fed.deadlines.due_at(&alert);
        prop_assert!(due >= alert.created_at);
        let allowance = fed.deadlines.for_precedence(alert.precedence);
        let mut previous = due;
        for step in 1..=3 {
            let at = fed.escalation.step_at(step, due, allowance);
            prop_assert!(at >= previous, "step {step} at {at} before {previous}");
            previous = at;
        }
    }
    // What `tocsin pki init` issues for each agency.
    for a in fed.agencies.iter().take(3) {
        let mut hosts = a.hosts.clone();
        hosts.push(a.endpoint_host().to_owned());
        let _ = CA.issue_node(&a.id, &hosts);
    }
    Ok(())
}

/// A PKI and federation for the node this target configures: TR-MIT,
/// with peers on loopback ports where nothing listens, so that deliveries
/// fail at once and the outbox backs off.
struct NodeWorld {
    dir: TempDir,
    layout: PkiLayout,
    federation: Federation,
    operator: TlsMaterial,
    peer: TlsMaterial,
    peer_signer: Signer,
}

fn closed_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

static NODE_WORLD: LazyLock<NodeWorld> = LazyLock::new(|| {
    tocsin_testkit::init();
    let dir = tempfile::tempdir().unwrap();
    let agency = |id: &str, observer: bool| Agency {
        id: AgencyId::new(id).unwrap(),
        name: String::new(),
        country: String::new(),
        endpoint: closed_port().to_string(),
        endpoints: vec![],
        hosts: vec![],
        observer,
    };
    let federation = Federation {
        federation: FederationInfo {
            id: FederationId::new("fuzz.tocsin").unwrap(),
            name: "fuzz".into(),
        },
        deadlines: Default::default(),
        escalation: Default::default(),
        agencies: vec![
            agency("TR-MIT", false),
            agency("FR-DGSI", false),
            agency("EU-EUROPOL", true),
        ],
    };
    let text = toml::to_string(&federation).unwrap();
    let layout = pki::init(&federation, &text, &dir.path().join("pki")).unwrap();
    let tr = AgencyId::new("TR-MIT").unwrap();
    let fr = AgencyId::new("FR-DGSI").unwrap();
    let (cert, key) = pki::issue_operator(&layout, &federation, &tr, "analyst").unwrap();
    let id = federation.id().clone();
    let operator = TlsMaterial::load(&layout.ca_cert(), &cert, &key, &id).unwrap();
    let peer = TlsMaterial::load(
        &layout.ca_cert(),
        &layout.node_cert(&fr),
        &layout.node_key(&fr),
        &id,
    )
    .unwrap();
    let peer_signer =
        Signer::load(&layout.signing_cert(&fr), &layout.signing_key(&fr), &id).unwrap();
    NodeWorld {
        dir,
        layout,
        federation,
        operator,
        peer,
        peer_signer,
    }
});

/// Whether `path` stays inside `dir`: a mutated configuration must not
/// make the test read or write elsewhere on the machine.
fn inside(path: &Path, dir: &Path) -> bool {
    path.starts_with(dir) && !path.components().any(|c| c == Component::ParentDir)
}

/// Loads `text` as a node configuration in the node world; if it loads,
/// runs the node it describes.
fn check_node_config(text: &str) -> Result<bool, TestCaseError> {
    static CASE: AtomicUsize = AtomicUsize::new(0);
    let w = &*NODE_WORLD;
    let file = w
        .dir
        .path()
        .join(format!("node-{}.toml", CASE.fetch_add(1, Ordering::SeqCst)));
    std::fs::write(&file, text).unwrap();
    let loaded = NodeConfig::load(&file);
    let _ = std::fs::remove_file(&file);
    let mut config = match loaded {
        Ok(config) => config,
        Err(e) => {
            // A refusal says what is wrong.
            prop_assert!(!e.to_string().trim().is_empty());
            return Ok(false);
        }
    };
    let data = tempfile::tempdir().unwrap();
    config.data_dir = data.path().to_owned();
    let paths: [&PathBuf; 6] = [
        &config.federation,
        &config.tls.ca,
        &config.tls.cert,
        &config.tls.key,
        &config.signing.cert,
        &config.signing.key,
    ];
    if !paths.iter().all(|p| inside(p, w.dir.path())) {
        return Ok(false);
    }
    let options = match NodeOptions::from_config(&config) {
        Ok(options) => options,
        Err(e) => {
            prop_assert!(!e.to_string().trim().is_empty());
            return Ok(false);
        }
    };
    let before = PANICS.load(Ordering::SeqCst);
    let answered = RUNTIME.block_on(run_node(options));
    prop_assert_eq!(
        PANICS.load(Ordering::SeqCst),
        before,
        "a node task panicked with this configuration:\n{}",
        text
    );
    prop_assert!(
        answered.is_ok(),
        "{:?} with this configuration:\n{}",
        answered,
        text
    );
    Ok(true)
}

/// Whether the node's `limits` explain a call failing with `code` after
/// `elapsed`: a message limit below what these calls carry (a few KiB each
/// way), or a request or handshake timeout that had run out. Nothing else
/// is excused: the limits on concurrency cannot refuse calls made one at a
/// time, and `Unknown` says nothing.
fn excused(code: tonic::Code, elapsed: Duration, limits: &tocsin_node::config::Limits) -> bool {
    use tonic::Code;
    let ran_out = |timeout: Duration| elapsed + Duration::from_millis(20) >= timeout;
    match code {
        Code::OutOfRange => limits.max_message_bytes < 32 * 1024,
        Code::DeadlineExceeded | Code::Cancelled => ran_out(limits.request_timeout),
        // A handshake or request cut short reaches the client as a
        // transport error.
        Code::Unavailable => ran_out(limits.handshake_timeout) || ran_out(limits.request_timeout),
        _ => false,
    }
}

/// Starts a node with `options`, submits an alert as its operator, delivers
/// one as a peer, lists, and stops it. Each call must answer in time and
/// succeed, or fail with a code the configuration explains ([`excused`]);
/// the node must stop.
async fn run_node(options: NodeOptions) -> Result<(), String> {
    let w = &*NODE_WORLD;
    let limits = options.limits;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let node = tokio::spawn(tocsin_node::serve(options, listener, async move {
        let _ = stopped.await;
    }));
    let tr = AgencyId::new("TR-MIT").unwrap();
    let patience = Duration::from_secs(15);
    let judge =
        |what: &str, (answer, elapsed): (Result<Result<(), tonic::Status>, _>, Duration)| {
            match answer {
                Err(_) => Err(format!("{what}: no answer in {patience:?}")),
                Ok(Ok(())) => Ok(()),
                Ok(Err(status)) if excused(status.code(), elapsed, &limits) => Ok(()),
                Ok(Err(status)) => Err(format!("{what}: {status:?} after {elapsed:?}")),
            }
        };
    // Each call, timed from before its connection is made.
    async fn timed<T>(f: impl std::future::Future<Output = T>) -> (T, Duration) {
        let start = std::time::Instant::now();
        let out = f.await;
        (out, start.elapsed())
    }

    let mut operator =
        OperatorClient::new(channel(addr, &w.operator, &tr).map_err(|e| e.to_string())?);
    let submitted = timed(tokio::time::timeout(patience, async {
        operator
            .submit_alert(pb::SubmitAlertRequest {
                alert: Some(draft(&["FR-DGSI"])),
            })
            .await
            .map(|_| ())
    }))
    .await;
    let mut peer = FederationClient::new(channel(addr, &w.peer, &tr).map_err(|e| e.to_string())?);
    let (_, envelope) = sign_as(&w.peer_signer, draft(&["TR-MIT"]));
    let delivered = timed(tokio::time::timeout(patience, async {
        peer.deliver(pb::DeliverRequest {
            alert: Some(envelope),
        })
        .await
        .map(|_| ())
    }))
    .await;
    let listed = timed(tokio::time::timeout(patience, async {
        operator
            .list_alerts(pb::ListAlertsRequest {
                limit: 10,
                ..Default::default()
            })
            .await
            .map(|_| ())
    }))
    .await;
    let _ = stop.send(());
    let ended = tokio::time::timeout(patience, node).await;
    let verdicts = [
        judge("submit", submitted),
        judge("deliver", delivered),
        judge("list", listed),
    ];
    let failures: Vec<String> = verdicts.into_iter().filter_map(Result::err).collect();
    if !failures.is_empty() {
        return Err(failures.join("; "));
    }
    match ended {
        Err(_) => Err("the node did not stop".into()),
        Ok(Err(e)) => Err(format!("the node task failed: {e}")),
        Ok(Ok(_)) => Ok(()),
    }
}

/// A typed value for one setting of the node configuration.
fn typed_value(kind: Kind) -> BoxedStrategy<toml::Value> {
    use toml::Value;
    match kind {
        Kind::Count(max) => prop_oneof![
            1 => Just(0i64),
            1 => Just(1i64),
            4 => 1..=max,
        ]
        .prop_map(Value::Integer)
        .boxed(),
        Kind::Duration => prop_oneof![
            select(vec![
                "0s", "1ms", "50ms", "250ms", "1s", "2s", "5s", "30s", "10m", "1h", "7days"
            ])
            .prop_map(|d| d.to_owned()),
            (1u64..100_000, select(vec!["ms", "s", "m", "h"]))
                .prop_map(|(n, unit)| format!("{n}{unit}")),
        ]
        .prop_map(Value::String)
        .boxed(),
        Kind::Speed => prop_oneof![Just(0.0f64), Just(1.0), 0.5f64..2_000_000.0]
            .prop_map(Value::Float)
            .boxed(),
        Kind::Time => (946_684_800i64..4_102_444_800)
            .prop_map(|t| {
                let at = chrono::DateTime::from_timestamp(t, 0).unwrap();
                Value::String(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            })
            .boxed(),
        Kind::Listen => select(vec!["127.0.0.1:0", "[::1]:0", "localhost:0", "0.0.0.0:0"])
            .prop_map(|l| Value::String(l.to_owned()))
            .boxed(),
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Count(i64),
    Duration,
    Speed,
    Time,
    Listen,
}

/// The settings typed mutants change: every one that is not a path.
const SETTINGS: &[(&str, &str, Kind)] = &[
    ("", "listen", Kind::Listen),
    ("tls", "reload_interval", Kind::Duration),
    ("limits", "max_message_bytes", Kind::Count(2 << 20)),
    ("limits", "handshake_timeout", Kind::Duration),
    ("limits", "request_timeout", Kind::Duration),
    ("limits", "max_concurrent_streams", Kind::Count(512)),
    ("limits", "max_concurrent_handshakes", Kind::Count(512)),
    ("limits", "peer_concurrency", Kind::Count(64)),
    ("limits", "peer_queue", Kind::Count(256)),
    ("limits", "max_connections_per_peer", Kind::Count(64)),
    ("limits", "clock_skew_tolerance", Kind::Duration),
    ("clock", "start", Kind::Time),
    ("clock", "origin", Kind::Time),
    ("clock", "speed", Kind::Speed),
    ("outbox", "initial_backoff", Kind::Duration),
    ("outbox", "max_backoff", Kind::Duration),
    ("outbox", "batch", Kind::Count(256)),
    ("outbox", "per_request", Kind::Count(80)),
    ("outbox", "connect_timeout", Kind::Duration),
];

/// The node seed with one to four settings set to other values of their
/// type.
fn typed_mutants() -> impl Strategy<Value = String> {
    let edit = (0..SETTINGS.len()).prop_flat_map(|i| {
        let (table, key, kind) = SETTINGS[i];
        typed_value(kind).prop_map(move |v| (table, key, v))
    });
    proptest::collection::vec(edit, 1..=4).prop_map(|edits| {
        let mut doc: toml::Table = tocsin_fuzz::seed("node.toml").parse().unwrap();
        for (table, key, value) in edits {
            let target = if table.is_empty() {
                &mut doc
            } else {
                doc.entry(table)
                    .or_insert_with(|| toml::Value::Table(Default::default()))
                    .as_table_mut()
                    .unwrap()
            };
            target.insert(key.to_owned(), value);
        }
        toml::to_string(&doc).unwrap()
    })
}

proptest! {
    #![proptest_config(tocsin_fuzz::config(256, REGRESSIONS))]

    /// Federation files: mutated and arbitrary text is refused cleanly or
    /// gives a federation that works.
    #[test]
    fn federation_files_parse_or_are_refused(
        text in prop_oneof![
            6 => tocsin_fuzz::mutated_values(federation_seeds()),
            3 => tocsin_fuzz::mutated_text(federation_seeds()),
            1 => tocsin_fuzz::any_text(),
        ],
        wire in tocsin_fuzz::wire::valid_alert("TR-MIT", &["FR-DGSI"]),
    ) {
        count_panics();
        if let Ok(fed) = Federation::parse(&text, "fuzz") {
            check_federation(&fed, wire)?;
        }
    }
}

proptest! {
    #![proptest_config(tocsin_fuzz::config(32, REGRESSIONS))]

    /// Node configurations: mutated and arbitrary text is refused cleanly,
    /// or starts a node that answers and stops.
    #[test]
    fn node_configurations_load_or_are_refused(
        text in prop_oneof![
            3 => tocsin_fuzz::mutated_values(vec![tocsin_fuzz::seed("node.toml")]),
            3 => tocsin_fuzz::mutated_text(vec![tocsin_fuzz::seed("node.toml")]),
            1 => tocsin_fuzz::any_text(),
        ],
    ) {
        count_panics();
        check_node_config(&text)?;
    }

    /// Typed mutants of the node configuration: most load, and each that
    /// does runs a node that answers as its settings say.
    #[test]
    fn typed_node_settings_run_or_are_refused(text in typed_mutants()) {
        count_panics();
        check_node_config(&text)?;
    }
}

/// The typed mutants are worth running: most of them load, so that the
/// property above runs a node for most cases (were they mostly refused,
/// it would test little).
#[test]
fn most_typed_mutants_load() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let w = &*NODE_WORLD;
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let strategy = typed_mutants();
    let (mut loaded, n) = (0, 200);
    for i in 0..n {
        let text = strategy.new_tree(&mut runner).unwrap().current();
        let file = w.dir.path().join(format!("typed-{i}.toml"));
        std::fs::write(&file, &text).unwrap();
        if let Ok(config) = NodeConfig::load(&file)
            && NodeOptions::from_config(&config).is_ok()
        {
            loaded += 1;
        }
        let _ = std::fs::remove_file(&file);
    }
    assert!(
        loaded * 2 >= n,
        "only {loaded} of {n} typed mutants load; the generator has drifted from the configuration"
    );
}

#[test]
fn the_seeds_are_valid() {
    count_panics();
    for text in federation_seeds() {
        let fed = Federation::parse(&text, "seed").unwrap();
        let wire = pb::Alert {
            id: tocsin_core::AlertId::generate().to_string(),
            originator: fed.agencies[0].id.to_string(),
            created_at: Some(tocsin_core::to_timestamp(chrono::Utc::now())),
            ..draft(&[fed.agencies[1].id.as_str()])
        };
        assert!(Alert::try_from(wire.clone()).is_ok());
        check_federation(&fed, wire).unwrap();
    }
    // The node seed loads and runs: the mutants start from a working node.
    let w = &*NODE_WORLD;
    let file = w.dir.path().join("seed-node.toml");
    std::fs::write(&file, tocsin_fuzz::seed("node.toml")).unwrap();
    let mut config = NodeConfig::load(&file).unwrap();
    let data = tempfile::tempdir().unwrap();
    config.data_dir = data.path().to_owned();
    assert_eq!(config.federation, w.layout.federation_file());
    assert!(w.federation.is_member(&config.agency));
    let options = NodeOptions::from_config(&config).unwrap();
    RUNTIME.block_on(run_node(options)).unwrap();
}
