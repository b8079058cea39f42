//! `tocsin pki`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use tocsin_core::AgencyId;
use tocsin_core::federation::{Agency, Federation};
use tocsin_node::NodeConfig;
use tocsin_node::config::{Limits, OutboxOptions, SigningFiles, TlsFiles};
use tocsin_trust::pki::{self, PkiLayout};

use crate::args::{IssueOperatorArgs, PkiInitArgs, RenewArgs, RevokeArgs};
use crate::operator::OperatorProfile;

fn listen_addr(agency: &Agency) -> anyhow::Result<SocketAddr> {
    if let Ok(addr) = agency.endpoint.parse::<SocketAddr>() {
        return Ok(addr);
    }
    // A host name: listen on every interface at the endpoint's port.
    let port = agency
        .endpoint
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok())
        .with_context(|| {
            format!(
                "endpoint {:?} of {} has no port",
                agency.endpoint, agency.id
            )
        })?;
    Ok(SocketAddr::from(([0, 0, 0, 0], port)))
}

fn rel(path: &Path, base: &Path) -> PathBuf {
    path.strip_prefix(base)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| path.to_path_buf())
}

/// A starting configuration for `agency`, next to its certificates.
fn node_config(layout: &PkiLayout, agency: &Agency) -> anyhow::Result<NodeConfig> {
    let dir = layout.agency_dir(&agency.id);
    Ok(NodeConfig {
        agency: agency.id.clone(),
        listen: listen_addr(agency)?,
        metrics_listen: None,
        web_listen: None,
        data_dir: PathBuf::from("data"),
        federation: PathBuf::from("../../federation.toml"),
        tls: TlsFiles {
            ca: PathBuf::from("../../ca.crt"),
            cert: rel(&layout.node_cert(&agency.id), &dir),
            key: rel(&layout.node_key(&agency.id), &dir),
            crls: vec![PathBuf::from("../../crl.pem")],
            reload_interval: std::time::Duration::from_secs(2),
        },
        signing: SigningFiles {
            cert: rel(&layout.signing_cert(&agency.id), &dir),
            key: rel(&layout.signing_key(&agency.id), &dir),
        },
        limits: Limits::default(),
        outbox: OutboxOptions::default(),
        screening: tocsin_node::config::ScreeningOptions::default(),
        store: tocsin_node::config::StoreSettings::default(),
        clock: None,
    })
}

pub(crate) fn init(args: PkiInitArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.federation)
        .with_context(|| format!("cannot read federation file {}", args.federation.display()))?;
    let federation = Federation::parse(&text, &args.federation.display().to_string())?;
    let layout = pki::init(&federation, &text, &args.out)?;
    println!(
        "federation {} CA: {}",
        federation.id(),
        layout.ca_cert().display()
    );
    for agency in &federation.agencies {
        let path = write_node_config(&layout, agency, Path::new("data"), None)?;
        println!(
            "  {:<12} node + signing certificates, config {}",
            agency.id,
            path.display()
        );
    }
    println!(
        "private keys are mode 0600; keep {} offline once operators are issued",
        layout.ca_key().display()
    );
    Ok(())
}

/// Writes `agency`'s starting node configuration next to its certificates;
/// a relative `data_dir` is taken from there.
pub(crate) fn write_node_config(
    layout: &PkiLayout,
    agency: &Agency,
    data_dir: &Path,
    clock: Option<tocsin_node::config::ClockOptions>,
) -> anyhow::Result<PathBuf> {
    let mut config = node_config(layout, agency)?;
    config.data_dir = data_dir.to_path_buf();
    config.clock = clock;
    let path = layout.agency_dir(&agency.id).join("node.toml");
    std::fs::write(&path, toml::to_string(&config)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

pub(crate) fn issue_operator(args: IssueOperatorArgs) -> anyhow::Result<()> {
    let (layout, federation) = load_pki(&args.dir)?;
    let agency = AgencyId::new(args.agency.clone())?;
    let path = issue_operator_profile(&layout, &federation, &agency, &args.name)?;
    let cert = layout.operator_cert(&agency, &args.name);
    println!("operator {} of {agency}: {}", args.name, cert.display());
    println!(
        "profile: {} (use --operator {} or TOCSIN_OPERATOR)",
        path.display(),
        path.display()
    );
    Ok(())
}

/// Issues an operator certificate and writes its connection profile;
/// returns the profile's path.
pub(crate) fn issue_operator_profile(
    layout: &PkiLayout,
    federation: &Federation,
    agency: &AgencyId,
    name: &str,
) -> anyhow::Result<PathBuf> {
    let member = federation
        .agency(agency)
        .with_context(|| {
            format!(
                "{agency} is not an agency of federation {}",
                federation.id()
            )
        })?
        .clone();
    let (cert, key) = pki::issue_operator(layout, federation, agency, name)?;
    let dir = cert.parent().map(Path::to_path_buf).unwrap_or_default();
    let profile = OperatorProfile {
        federation: federation.id().clone(),
        agency: agency.clone(),
        endpoint: member.endpoint.clone(),
        ca: PathBuf::from("../../ca.crt"),
        cert: rel(&cert, &dir),
        key: rel(&key, &dir),
    };
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, toml::to_string(&profile)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

fn load_pki(dir: &Path) -> anyhow::Result<(PkiLayout, Federation)> {
    let layout = PkiLayout::new(dir);
    let federation = Federation::load(&layout.federation_file()).with_context(|| {
        format!(
            "{} is not a PKI directory made by `tocsin pki init`",
            dir.display()
        )
    })?;
    Ok((layout, federation))
}

pub(crate) fn revoke(args: RevokeArgs) -> anyhow::Result<()> {
    let (layout, federation) = load_pki(&args.dir)?;
    let certs = match (&args.agency, &args.operator_name) {
        (Some(agency), Some(name)) => {
            let agency = AgencyId::new(agency.clone())?;
            vec![layout.operator_cert(&agency, name)]
        }
        (Some(agency), None) => {
            let agency = AgencyId::new(agency.clone())?;
            anyhow::ensure!(
                federation.is_member(&agency),
                "{agency} is not an agency of federation {}",
                federation.id()
            );
            vec![layout.node_cert(&agency), layout.signing_cert(&agency)]
        }
        (None, _) => args.cert.clone(),
    };
    let report = pki::revoke(&layout, federation.id(), &certs)?;
    for path in &report.revoked {
        println!("revoked {}", path.display());
    }
    for path in &report.already {
        println!("already revoked {}", path.display());
    }
    println!(
        "CRL {} lists {} certificate(s); nodes configured with it refuse them within their reload interval",
        report.crl.display(),
        report.total
    );
    Ok(())
}

pub(crate) fn renew(args: RenewArgs) -> anyhow::Result<()> {
    let (layout, federation) = load_pki(&args.dir)?;
    let agency = AgencyId::new(args.agency.clone())?;
    pki::renew_node(&layout, &federation, &agency)?;
    println!(
        "renewed {}'s node certificate {} and key {}; its node uses them for new connections within its reload interval",
        agency,
        layout.node_cert(&agency).display(),
        layout.node_key(&agency).display()
    );
    Ok(())
}
