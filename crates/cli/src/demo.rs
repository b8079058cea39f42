//! `tocsin demo` and `tocsin scenario run`.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use futures::future::BoxFuture;
use tocsin_core::federation::Federation;
use tocsin_core::{AgencyId, ScaledClock};
use tocsin_scenario::{
    AgencyClient, BoxError, Clients, NodeControl, PostMortem, Replay, ReplayError, ScaledDriver,
    Scenario,
};
use tocsin_trust::pki::{self, PkiLayout};

use crate::args::{DemoArgs, ScenarioRunArgs};
use crate::live::{LiveDriver, Progress, lock};
use crate::operator::lazy_channel;

/// Where the demo federation and scenarios live: `--demo-dir`, else
/// `deploy/demo` under the working directory, else the source tree this
/// binary was built from.
fn demo_dir(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(d) = given {
        return Ok(d.to_path_buf());
    }
    let candidates = [
        PathBuf::from("deploy/demo"),
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/demo")),
    ];
    candidates
        .into_iter()
        .find(|p| p.join("federation.toml").is_file())
        .context(
            "cannot find deploy/demo/federation.toml; run from the repository or pass --demo-dir",
        )
}

fn scenario_path(demo: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let as_path = PathBuf::from(name);
    if as_path.is_file() {
        return Ok(as_path);
    }
    let shipped = demo.join("scenarios").join(format!("{name}.toml"));
    if shipped.is_file() {
        return Ok(shipped);
    }
    let known: Vec<String> = std::fs::read_dir(demo.join("scenarios"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| {
                    e.path()
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    bail!(
        "no scenario {name:?}: give a file, or one of {}",
        known.join(", ")
    )
}

/// `n` distinct free loopback ports. Every listener is held until all are
/// chosen: one dropped at once may be handed out again by the next bind,
/// and two nodes on one port leave one of them never healthy.
fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let held = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(held
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<Vec<_>, _>>()?)
}

/// The demo's node processes.
struct Nodes {
    exe: PathBuf,
    dir: PathBuf,
    /// Each agency's node.toml.
    configs: BTreeMap<AgencyId, PathBuf>,
    children: BTreeMap<AgencyId, Child>,
}

impl Nodes {
    fn spawn(&mut self, agency: &AgencyId) -> anyhow::Result<()> {
        let config = self
            .configs
            .get(agency)
            .with_context(|| format!("no node configuration for {agency}"))?;
        let logs = self.dir.join("logs");
        std::fs::create_dir_all(&logs)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(logs.join(format!("{agency}.log")))?;
        let child = Command::new(&self.exe)
            .arg("node")
            .arg("--config")
            .arg(config)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {agency}'s node"))?;
        self.children.insert(agency.clone(), child);
        Ok(())
    }

    /// Asks a node to stop (SIGTERM), waits, then kills it if it lingers.
    fn terminate(agency: &AgencyId, child: &mut Child) {
        let asked = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !asked {
            // No way to ask nicely: the store is crash-safe, so kill it.
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("{agency}'s node did not stop in 10 s; killing it");
        let _ = child.kill();
        let _ = child.wait();
    }

    fn stop_all(&mut self) {
        for (agency, mut child) in std::mem::take(&mut self.children) {
            Self::terminate(&agency, &mut child);
        }
    }
}

impl Nodes {
    fn stop(&mut self, agency: &AgencyId) -> anyhow::Result<()> {
        let mut child = self
            .children
            .remove(agency)
            .with_context(|| format!("{agency}'s node is not running"))?;
        Self::terminate(agency, &mut child);
        Ok(())
    }

    fn start(&mut self, agency: &AgencyId) -> anyhow::Result<()> {
        if self.children.contains_key(agency) {
            bail!("{agency}'s node is already running");
        }
        self.spawn(agency)
    }
}

impl NodeControl for Nodes {
    fn stop<'a>(&'a mut self, agency: &'a AgencyId) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move { Nodes::stop(self, agency).map_err(Into::into) })
    }

    fn start<'a>(&'a mut self, agency: &'a AgencyId) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move { Nodes::start(self, agency).map_err(Into::into) })
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        // Whatever happened, no node outlives the demo.
        self.stop_all();
    }
}

/// Waits until every agency's operator service answers.
async fn wait_healthy(clients: &Clients, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    for (agency, client) in clients {
        loop {
            let ok = client
                .operator
                .clone()
                .list_subject_flags(tocsin_proto::pb::ListSubjectFlagsRequest {})
                .await
                .is_ok();
            if ok {
                break;
            }
            if Instant::now() >= deadline {
                bail!("{agency}'s node did not become healthy in {timeout:?}; see its log");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

pub(crate) async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let demo = demo_dir(args.demo_dir.as_deref())?;
    let name = args.scenario.clone().unwrap_or_else(|| "paris-2015".into());
    let mut federation = Federation::load(&demo.join("federation.toml"))?;
    let scenario = Scenario::load(&scenario_path(&demo, &name)?, &federation)?;
    // Before any node starts: a refused address costs nothing then.
    let web = if args.web {
        Some(FederationView::start(args.web_listen, &scenario.name, &scenario.title).await?)
    } else {
        None
    };

    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => tempfile::Builder::new()
            .prefix("tocsin-demo-")
            .tempdir()?
            .keep(),
    };
    std::fs::create_dir_all(&dir)?;
    let dir = dir.canonicalize()?;
    // Free loopback ports, so a second run (or another program) never clashes.
    let ports = free_ports(federation.agencies.len())?;
    for (a, port) in federation.agencies.iter_mut().zip(ports) {
        a.endpoint = format!("127.0.0.1:{port}");
    }
    let fed_toml = toml::to_string(&federation)?;
    std::fs::write(dir.join("federation.toml"), &fed_toml)?;
    let layout = PkiLayout::new(dir.join("pki"));
    if layout.root().exists() {
        std::fs::remove_dir_all(layout.root())
            .with_context(|| format!("cannot clear {}", layout.root().display()))?;
    }
    for data in federation
        .agencies
        .iter()
        .map(|a| dir.join("data").join(a.id.as_str()))
    {
        let _ = std::fs::remove_dir_all(data);
    }
    let say = |s: &str| {
        if !args.json {
            println!("{s}");
        }
    };
    say(&format!("== {}: {}", scenario.name, scenario.title));
    say(&format!(
        "== federation of {} agencies in {}",
        federation.agencies.len(),
        dir.display()
    ));
    let speed = args.speed.unwrap_or(scenario.speed);
    // Every node reads the scenario start at the same real instant, a few
    // seconds from now, and shares the scenario's paces, so their clocks
    // and deadlines agree.
    let origin = Utc::now() + chrono::Duration::seconds(4);
    let clock_options = scenario.node_clock(speed, origin).context("bad --speed")?;
    pki::init(&federation, &fed_toml, layout.root())?;
    let mut configs = BTreeMap::new();
    let mut clients = Clients::new();
    for a in &federation.agencies {
        let config = crate::pki_cmd::write_node_config(
            &layout,
            a,
            &dir.join("data").join(a.id.as_str()),
            Some(clock_options.clone()),
        )?;
        configs.insert(a.id.clone(), config);
        let profile = crate::pki_cmd::issue_operator_profile(&layout, &federation, &a.id, "demo")?;
        clients.insert(a.id.clone(), AgencyClient::new(lazy_channel(&profile)?));
    }
    let exe = std::env::current_exe().context("cannot find the tocsin binary")?;
    let mut nodes = Nodes {
        exe,
        dir: dir.clone(),
        configs,
        children: BTreeMap::new(),
    };
    for a in &federation.agencies {
        nodes.spawn(&a.id)?;
    }
    wait_healthy(&clients, Duration::from_secs(30)).await?;
    say(&format!(
        "== {} nodes up (real processes, mutual TLS); replaying at {speed}x: {} to {}",
        federation.agencies.len(),
        scenario.start.format("%Y-%m-%d"),
        scenario.end.format("%Y-%m-%d")
    ));

    let outcome = tokio::select! {
        r = replay_live(&scenario, &clients, scenario.clock(speed, origin), Some(&mut nodes as &mut dyn NodeControl), args.json, web.as_ref().map(|w| w.view.clone())) => r,
        // Dropping `nodes` stops every node.
        _ = tokio::signal::ctrl_c() => {
            bail!("interrupted; every node was stopped. Files are in {}", dir.display());
        }
    };
    let replay = match outcome {
        Ok(r) => r,
        Err(e) => {
            return Err(anyhow::Error::from(e).context(format!(
                "the replay failed; node logs are in {}",
                dir.join("logs").display()
            )));
        }
    };
    // Nodes that were stopped by the scenario and not restarted still count
    // for the story: bring them back to read their records.
    for a in &federation.agencies {
        if !nodes.children.contains_key(&a.id) {
            nodes.spawn(&a.id)?;
        }
    }
    wait_healthy(&clients, Duration::from_secs(30)).await?;
    let pm = tocsin_scenario::post_mortem(&scenario, &clients, &replay).await?;
    nodes.stop_all();
    print_post_mortem(&pm, args.json)?;
    // Then the post-mortem across agencies, proven from their records
    // alone: each agency exports its signed audit bundle, and the bundles
    // are verified against the federation CA, merged and cross-checked.
    let federated = federated_post_mortem(&dir, &layout, &federation, &nodes.configs).await?;
    if !args.json {
        println!();
        print!("{federated}");
        println!();
        println!(
            "every node stopped; certificates, stores, logs and the agencies' audit bundles are in {}",
            dir.display()
        );
    }
    std::fs::write(
        dir.join("postmortem.json"),
        serde_json::to_string_pretty(&federated)?,
    )?;
    if let Some(web) = web {
        web.conclude(&federated).await?;
    }
    Ok(())
}

/// `--web`: the federation view, served from before the scenario plays
/// until Ctrl-C after it.
struct FederationView {
    view: tocsin_fedview::View,
    addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl FederationView {
    /// Listens on `addr` (loopback only), prints the address with this
    /// start's token once on stderr, and serves.
    async fn start(addr: std::net::SocketAddr, name: &str, title: &str) -> anyhow::Result<Self> {
        let server = tocsin_fedview::Server::bind(addr).await?;
        let view = tocsin_fedview::View::new(format!("{name}: {title}"));
        eprintln!(
            "== federation view: {} (the token is shown this once)",
            server.login_url()
        );
        let addr = server.addr();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let served = tokio::spawn(server.serve(view.clone(), async {
            let _ = stopped.await;
        }));
        Ok(Self {
            view,
            addr,
            stop,
            served,
        })
    }

    /// Gives the view the post-mortem, then serves until SIGINT or SIGTERM.
    async fn conclude(self, pm: &tocsin_audit::federated::PostMortem) -> anyhow::Result<()> {
        self.view.conclude(tocsin_fedview::Timeline::of(pm));
        eprintln!(
            "== the federation view shows the post-mortem at http://{}/ ; serving until Ctrl-C",
            self.addr
        );
        stop_signal().await?;
        let _ = self.stop.send(());
        self.served.await??;
        eprintln!("== federation view stopped");
        Ok(())
    }
}

/// Ctrl-C (SIGINT), or SIGTERM where there is one.
async fn stop_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}

/// Exports every agency's audit bundle into `dir/bundles` and merges them
/// into the federated post-mortem.
async fn federated_post_mortem(
    dir: &Path,
    layout: &PkiLayout,
    federation: &Federation,
    configs: &BTreeMap<AgencyId, PathBuf>,
) -> anyhow::Result<tocsin_audit::federated::PostMortem> {
    let bundles = dir.join("bundles");
    std::fs::create_dir_all(&bundles)?;
    let configs = configs.clone();
    let ca = layout.ca_cert();
    let options = tocsin_audit::federated::Options::for_federation(federation);
    tokio::task::spawn_blocking(move || {
        let mut paths = Vec::new();
        for (agency, config) in &configs {
            let out = bundles.join(format!("{agency}.jsonl"));
            let report = crate::audit_cmd::export_bundle(config, None, None, &out, |_, _| {})
                .with_context(|| format!("exporting {agency}'s audit bundle"))?;
            if !report.ok() {
                bail!("{agency}'s store fails verification; its bundle was not written");
            }
            paths.push(out);
        }
        let trust = tocsin_audit::Trust::load(&ca)
            .with_context(|| format!("CA certificate {}", ca.display()))?;
        Ok(tocsin_audit::federated::post_mortem_files(
            &paths, &trust, &options,
        )?)
    })
    .await
    .context("the federated post-mortem failed")?
}

pub(crate) async fn run(args: ScenarioRunArgs) -> anyhow::Result<()> {
    let federation = Federation::load(&args.federation)?;
    let scenario = Scenario::load(&args.file, &federation)?;
    let mut clients = Clients::new();
    for a in &federation.agencies {
        let dir = args.operators.join(a.id.as_str());
        let profile = std::fs::read_dir(&dir).ok().and_then(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|x| x == "toml"))
        });
        match profile {
            Some(p) => {
                clients.insert(a.id.clone(), AgencyClient::new(lazy_channel(&p)?));
            }
            None if scenario.actors().contains(&a.id) => {
                bail!("no operator profile for {} in {}", a.id, dir.display())
            }
            None => {}
        }
    }
    wait_healthy(&clients, Duration::from_secs(30)).await?;
    let speed = args.speed.unwrap_or(scenario.speed);
    let origin = args.clock_origin.unwrap_or_else(Utc::now);
    let clock_options = scenario.node_clock(speed, origin).context("bad --speed")?;
    if !args.json {
        println!("== {}: {}", scenario.name, scenario.title);
        println!(
            "== replaying at {speed}x; every node must run with this [clock] in its configuration:\n{}",
            toml::to_string(&clock_options)?
        );
    }
    let replay = replay_live(
        &scenario,
        &clients,
        scenario.clock(speed, origin),
        None,
        args.json,
        None,
    )
    .await?;
    let pm = tocsin_scenario::post_mortem(&scenario, &clients, &replay).await?;
    print_post_mortem(&pm, args.json)
}

/// Replays `scenario` on real time, on `clock`, with the live view unless
/// `quiet` (`--json`), feeding the federation view `web` if given.
async fn replay_live(
    scenario: &Scenario,
    clients: &Clients,
    clock: ScaledClock,
    control: Option<&mut dyn NodeControl>,
    quiet: bool,
    web: Option<tocsin_fedview::View>,
) -> Result<Replay, ReplayError> {
    let progress = Progress::new(quiet);
    let mut driver = LiveDriver::new(ScaledDriver::new(clock), progress.clone(), web);
    let mut narrate = |line: &str| lock(&progress).line(line);
    let replay =
        tocsin_scenario::replay(scenario, clients, &mut driver, control, &mut narrate).await?;
    // A last refresh, so the table shows the end state.
    driver.refresh(clients).await;
    Ok(replay)
}

/// The post-mortem as text, or as JSON.
fn print_post_mortem(pm: &PostMortem, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(pm)?);
    } else {
        println!();
        println!("{pm}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct() {
        let ports = free_ports(64).unwrap();
        let unique: std::collections::BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(unique.len(), 64, "{ports:?}");
    }

    #[test]
    fn the_shipped_host_configurations_are_valid() {
        let base = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/hosts");
        let fed = Federation::load(&Path::new(base).join("federation.toml")).unwrap();
        for a in &fed.agencies {
            let path = Path::new(base).join("nodes").join(format!("{}.toml", a.id));
            let config = tocsin_node::NodeConfig::load(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(config.agency, a.id);
        }
        assert!(fed.agencies.iter().any(|a| a.observer));
    }
}
