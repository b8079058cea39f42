//! What a new user trips over, tried as one would: the `tocsin` binary in
//! real processes, on real files.

use std::process::{Command, Output};

mod common;
use common::fails;

/// Whether the `openssl` command is there; says so loudly if it is not.
fn openssl_present() -> bool {
    let present = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        eprintln!(
            "\n*** SKIPPED: the `openssl` command is not installed, so the keys \
             `pki init` writes were NOT checked against OpenSSL. ***\n"
        );
    }
    present
}

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl")
}

/// Every private key `pki init` and `pki issue-operator` write is mode 0600
/// and read by OpenSSL (3.0 refused the agencies' signing keys, written in
/// PKCS#8 v2), and the signing key is the one its certificate names.
#[test]
fn openssl_reads_every_private_key_the_pki_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::two_agencies(dir, &[("TR-MIT", "analyst")]);
    let root = dir.join("pki");
    let keys = [
        "ca.key",
        "agencies/TR-MIT/node.key",
        "agencies/TR-MIT/signing.key",
        "agencies/FR-DGSI/node.key",
        "agencies/FR-DGSI/signing.key",
        "operators/TR-MIT/analyst.key",
    ];
    for key in keys {
        let path = root.join(key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{key}");
        }
        let pem = std::fs::read_to_string(&path).unwrap();
        assert!(
            pem.starts_with("-----BEGIN PRIVATE KEY-----\n"),
            "{key} is not a PEM PRIVATE KEY"
        );
    }
    if !openssl_present() {
        return;
    }
    for key in keys {
        let path = root.join(key);
        let out = openssl(&["pkey", "-in", path.to_str().unwrap(), "-noout"]);
        assert!(
            out.status.success(),
            "openssl pkey refuses {key}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for agency in ["TR-MIT", "FR-DGSI"] {
        let key = root.join(format!("agencies/{agency}/signing.key"));
        let cert = root.join(format!("agencies/{agency}/signing.crt"));
        let from_key = openssl(&["pkey", "-in", key.to_str().unwrap(), "-pubout"]);
        let from_cert = openssl(&["x509", "-in", cert.to_str().unwrap(), "-noout", "-pubkey"]);
        assert!(from_key.status.success() && from_cert.status.success());
        assert_eq!(
            String::from_utf8_lossy(&from_key.stdout),
            String::from_utf8_lossy(&from_cert.stdout),
            "{agency}'s signing key is not the one its certificate names"
        );
        let text = openssl(&["pkey", "-in", key.to_str().unwrap(), "-noout", "-text"]);
        assert!(
            String::from_utf8_lossy(&text.stdout).contains("ED25519 Private-Key"),
            "{}",
            String::from_utf8_lossy(&text.stdout)
        );
    }
}

/// An operator profile that points at another agency's node is told whose
/// node answered there, not `invalid peer certificate: NotValidForName`.
#[tokio::test]
async fn the_cli_at_another_agencys_node_says_whose_node_answered() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ports = common::free_ports(2);
    let fr_port = ports[1];
    common::two_agencies_on(dir, [ports[0], ports[1]], &[("TR-MIT", "analyst")]);
    let profile = dir.join("pki/operators/TR-MIT/analyst.toml");
    let text = std::fs::read_to_string(&profile).unwrap();
    let wrong = text.replace(
        &format!("127.0.0.1:{}", ports[0]),
        &format!("127.0.0.1:{fr_port}"),
    );
    assert_ne!(wrong, text, "the profile names TR-MIT's endpoint");
    std::fs::write(&profile, wrong).unwrap();
    let _fr = common::node(dir, "FR-DGSI")
        .start()
        .await
        .expect("FR-DGSI's node serves");

    let profile = profile.to_str().unwrap();
    let err = fails(dir, &["alerts", "list", "--operator", profile]);
    let expected = format!(
        "the node at 127.0.0.1:{fr_port} is FR-DGSI's, but this profile is for TR-MIT's node"
    );
    assert!(err.contains(&expected), "{err}");
    assert!(!err.contains("NotValidForName"), "{err}");
}

/// A node configuration without a required field names the field and its
/// table, with no position that points elsewhere.
#[test]
fn a_node_configuration_missing_a_field_names_it_and_its_table() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::two_agencies(dir, &[("TR-MIT", "analyst")]);
    let config = dir.join("pki/agencies/TR-MIT/node.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let without = |line_start: &str| -> String {
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with(line_start))
            .collect();
        assert!(kept.len() < text.lines().count(), "no line {line_start:?}");
        kept.join("\n")
    };
    let broken = dir.join("pki/agencies/TR-MIT/broken.toml");
    for (line, expected) in [
        (
            "data_dir =",
            "broken.toml: missing field `data_dir` (top level)",
        ),
        (
            "cert = \"node.crt\"",
            "broken.toml: missing field `cert` in [tls]",
        ),
    ] {
        std::fs::write(&broken, without(line)).unwrap();
        let err = fails(dir, &["node", "--config", broken.to_str().unwrap()]);
        assert!(err.contains(expected), "{err}");
        assert!(!err.contains("line 1, column 1"), "{err}");
    }
}
