//! What the `tocsin` binary's tests share: running it, its nodes (as
//! [`NodeCommand`]s of the test kit), free ports, and a federation with its
//! PKI on disk. Each test binary uses a part.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use tocsin_testkit::NodeCommand;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_tocsin");

/// `n` distinct free loopback ports (all held until every one is chosen).
pub(crate) fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    held.iter()
        .map(|l| l.local_addr().expect("local address").port())
        .collect()
}

/// One free loopback port.
pub(crate) fn free_port() -> u16 {
    free_ports(1)[0]
}

/// Runs `tocsin args` in `dir`, with no operator profile from the
/// environment.
pub(crate) fn tocsin(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("TOCSIN_OPERATOR")
        .output()
        .expect("run tocsin")
}

/// Runs `tocsin args`, which must succeed; returns its stdout.
pub(crate) fn ok(dir: &Path, args: &[&str]) -> String {
    let out = tocsin(dir, args);
    assert!(
        out.status.success(),
        "tocsin {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Runs `tocsin args`, which must fail without panicking; returns its
/// stderr.
pub(crate) fn fails(dir: &Path, args: &[&str]) -> String {
    let out = tocsin(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "tocsin {args:?} should have failed");
    assert!(
        !stderr.contains("panicked"),
        "tocsin {args:?} panicked: {stderr}"
    );
    stderr
}

/// `text` as JSON.
pub(crate) fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Runs a command every 100 ms until its JSON output passes `check`
/// (returned), failing after 30 s with its last answer.
pub(crate) fn eventually(
    dir: &Path,
    args: &[&str],
    what: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = tocsin(dir, args);
        let last;
        if out.status.success() {
            last = String::from_utf8_lossy(&out.stdout).into_owned();
            let v = json(&last);
            if check(&v) {
                return v;
            }
        } else {
            last = String::from_utf8_lossy(&out.stderr).into_owned();
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting until {what}; last answer: {last}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Writes `dir/federation.toml`: federation `id`, each agency at its
/// loopback port. Returns its path.
pub(crate) fn federation_file(dir: &Path, id: &str, agencies: &[(&str, u16)]) -> PathBuf {
    let fronts: Vec<(&str, Vec<u16>)> = agencies.iter().map(|(a, p)| (*a, vec![*p])).collect();
    federation_file_of_fronts(dir, id, &fronts)
}

/// Writes `dir/federation.toml`: federation `id`, each agency with a front
/// node at each of its loopback ports (`endpoints`). Returns its path.
pub(crate) fn federation_file_of_fronts(
    dir: &Path,
    id: &str,
    agencies: &[(&str, Vec<u16>)],
) -> PathBuf {
    let mut text = format!("[federation]\nid = \"{id}\"\n");
    for (agency, ports) in agencies {
        let endpoints: Vec<String> = ports.iter().map(|p| format!("\"127.0.0.1:{p}\"")).collect();
        text.push_str(&format!(
            "\n[[agencies]]\nid = \"{agency}\"\nendpoints = [{}]\n",
            endpoints.join(", ")
        ));
    }
    let path = dir.join("federation.toml");
    std::fs::write(&path, text).expect("write the federation file");
    path
}

/// Points `agency`'s node configuration (the one `pki init` wrote) at the
/// PostgreSQL database `url`, and writes one for each further front node
/// beside it (`node-N.toml`, listening at `ports[N]`, with a data directory
/// of its own). Each node's pool holds at most 4 connections (and its
/// listener one more), so that four front nodes stay well within the test
/// server's 40. Returns each front node's configuration, relative to `dir`.
pub(crate) fn front_node_configs(
    dir: &Path,
    agency: &str,
    ports: &[u16],
    url: &str,
) -> Vec<String> {
    let first = format!("pki/agencies/{agency}/node.toml");
    let text = std::fs::read_to_string(dir.join(&first)).expect("read the node configuration");
    let mut config: toml::Table = text.parse().expect("a TOML node configuration");
    let mut store = toml::Table::new();
    store.insert("url".into(), url.into());
    store.insert("max_connections".into(), 4.into());
    config.insert("store".into(), store.into());
    let mut paths = Vec::new();
    for (front, port) in ports.iter().enumerate() {
        let path = if front == 0 {
            first.clone()
        } else {
            format!("pki/agencies/{agency}/node-{front}.toml")
        };
        config.insert("listen".into(), format!("127.0.0.1:{port}").into());
        if front > 0 {
            config.insert("data_dir".into(), format!("data-{front}").into());
            config.remove("metrics_listen");
            config.remove("web_listen");
        }
        std::fs::write(dir.join(&path), toml::to_string(&config).expect("TOML"))
            .expect("write a front node's configuration");
        paths.push(path);
    }
    paths
}

/// Runs `pki init` on `federation` into `dir/pki`, and issues each
/// `(agency, name)` operator.
pub(crate) fn pki_init(dir: &Path, federation: &Path, operators: &[(&str, &str)]) {
    let federation = federation.to_str().expect("a UTF-8 path");
    ok(
        dir,
        &["pki", "init", "--federation", federation, "--out", "pki"],
    );
    for (agency, name) in operators {
        ok(
            dir,
            &[
                "pki",
                "issue-operator",
                "--dir",
                "pki",
                "--agency",
                agency,
                "--name",
                name,
            ],
        );
    }
}

/// TR-MIT and FR-DGSI at `ports` (federation `cli-test.tocsin`): the
/// federation file, `pki init` and each `(agency, name)` operator. Returns
/// the federation file.
pub(crate) fn two_agencies_on(dir: &Path, ports: [u16; 2], operators: &[(&str, &str)]) -> PathBuf {
    let federation = federation_file(
        dir,
        "cli-test.tocsin",
        &[("TR-MIT", ports[0]), ("FR-DGSI", ports[1])],
    );
    pki_init(dir, &federation, operators);
    federation
}

/// The federation file of [`two_agencies_on`] at free ports, without its
/// PKI.
pub(crate) fn two_agencies_file(dir: &Path) -> PathBuf {
    let ports = free_ports(2);
    federation_file(
        dir,
        "cli-test.tocsin",
        &[("TR-MIT", ports[0]), ("FR-DGSI", ports[1])],
    )
}

/// [`two_agencies_on`] free ports.
pub(crate) fn two_agencies(dir: &Path, operators: &[(&str, &str)]) -> PathBuf {
    let ports = free_ports(2);
    two_agencies_on(dir, [ports[0], ports[1]], operators)
}

/// `operator` (a profile of TR-MIT's) sends FR-DGSI a watch on a phone
/// number, with `extra` flags; returns the stored alert as JSON.
pub(crate) fn send_watch(dir: &Path, operator: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["alert", "send", "--operator", operator, "--json"];
    args.extend_from_slice(extra);
    args.extend([
        "--to",
        "FR-DGSI",
        "--identifier",
        "phone:+33612345678",
        "--text",
        "Watch.",
    ]);
    json(&ok(dir, &args))
}

/// How to run `agency`'s node from `dir`, on the configuration `pki init`
/// wrote for it; its log goes to `node.log` beside that configuration.
pub(crate) fn node(dir: &Path, agency: &str) -> NodeCommand {
    node_at(dir, &format!("pki/agencies/{agency}/node.toml"))
}

/// How to run the node configured in `config` (relative to `dir`) from
/// `dir`; its log goes beside that configuration, named after it
/// (`node.toml` logs to `node.log`).
pub(crate) fn node_at(dir: &Path, config: &str) -> NodeCommand {
    NodeCommand::new(BIN, config)
        .current_dir(dir)
        .log_file(dir.join(Path::new(config).with_extension("log")))
}

/// `alice` (TR-MIT's operator profile) sends FR-DGSI a watch (see
/// [`send_watch`]), `bob` (FR-DGSI's) acknowledges it once it is owed, and
/// the acknowledgement reaches TR-MIT: a record with every kind of row.
/// Both nodes must be running. Returns the alert's id.
pub(crate) fn watch_answered(dir: &Path, alice: &str, bob: &str) -> String {
    let sent = send_watch(dir, alice, &[]);
    let id = sent["id"].as_str().unwrap().to_owned();
    eventually(
        dir,
        &["alerts", "list", "--owed", "--operator", bob, "--json"],
        "FR-DGSI owes an answer",
        |v| v.as_array().is_some_and(|a| a.len() == 1),
    );
    ack_noted(dir, &id, bob);
    eventually(
        dir,
        &["alert", "show", &id, "--operator", alice, "--json"],
        "the ack reaches TR-MIT",
        |v| {
            v["deliveries"][0]["acknowledgements"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        },
    );
    id
}

/// `operator` (a profile) acknowledges alert `id` as NOTED, which must
/// succeed; returns what `tocsin` printed.
pub(crate) fn ack_noted(dir: &Path, id: &str, operator: &str) -> String {
    ok(
        dir,
        &[
            "alert",
            "ack",
            id,
            "--disposition",
            "NOTED",
            "--operator",
            operator,
        ],
    )
}
