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
    let mut text = format!("[federation]\nid = \"{id}\"\n");
    for (agency, port) in agencies {
        text.push_str(&format!(
            "\n[[agencies]]\nid = \"{agency}\"\nendpoint = \"127.0.0.1:{port}\"\n"
        ));
    }
    let path = dir.join("federation.toml");
    std::fs::write(&path, text).expect("write the federation file");
    path
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
    NodeCommand::new(BIN, format!("pki/agencies/{agency}/node.toml")).current_dir(dir)
}
