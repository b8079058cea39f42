//! Hosts of their own on one machine: a network namespace per host, joined
//! by a bridge, for tests that run agencies as if on separate machines and
//! cut the link of one (crates/cli/tests/netns.rs).
//!
//! [`Lan::build`] makes, for one run:
//!
//! - a *switch* namespace holding a bridge;
//! - one namespace per host, with `lo` up and an `eth0` (one end of a veth
//!   pair whose other end joins the bridge) at `10.K.0.N/24`, `K` drawn per
//!   run among the subnets this machine does not route yet, `N` from 1;
//! - one veth from the test's own (root) namespace onto the bridge, at
//!   `10.K.0.254`, so the test reaches every host directly (operators,
//!   health checks), and nothing else is routed there.
//!
//! [`Lan::cut`] and [`Lan::heal`] take a host's `eth0` down and up, as a
//! pulled cable would; [`Host::wrap`] runs a node inside a host (`ip netns
//! exec NS tocsin node ...`). The [`Lan`] deletes every namespace and
//! interface it made when dropped, also when the test fails or panics; and
//! each build first sweeps leftovers of earlier runs whose process is gone
//! (a run killed before its drop), recognised by their names, which carry
//! the process id.
//!
//! It needs root and a kernel that lets it make namespaces.
//! [`Lan::build_or_skip`] prints `SKIPPED` and returns `None` when either is
//! missing, unless `TOCSIN_REQUIRE_NETNS=1` (CI), which makes that an error.
//!
//! ```no_run
//! # fn demo() -> Result<(), tocsin_testkit::netns::NetnsError> {
//! use tocsin_testkit::netns::Lan;
//! let Some(lan) = Lan::build_or_skip(["TR-MIT", "FR-DGSI"])? else {
//!     return Ok(()); // not root here: SKIPPED was printed
//! };
//! let fr = lan.host("FR-DGSI")?;
//! println!("FR-DGSI is {} in namespace {}", fr.addr(), fr.namespace());
//! lan.cut("FR-DGSI")?;
//! lan.heal("FR-DGSI")?;
//! # Ok(()) }
//! ```

use std::collections::hash_map::RandomState;
use std::ffi::OsString;
use std::hash::{BuildHasher, Hasher};
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::process::NodeCommand;

/// Set to `1` to make a machine without namespaces (or not root) an error
/// rather than a skip.
pub const REQUIRE_VAR: &str = "TOCSIN_REQUIRE_NETNS";

/// Every namespace a [`Lan`] makes is named `tocsin-lan-PID-RUN-ROLE`.
const NS_PREFIX: &str = "tocsin-lan-";
/// The one interface it makes in the root namespace is `tl` + the pid in
/// 7 hex digits + the run in hex (at most 15 characters in all, the
/// kernel's limit).
const LINK_PREFIX: &str = "tl";
const PID_HEX: usize = 7;
/// The host part of the root namespace's address on every [`Lan`].
const GATEWAY_HOST: u8 = 254;
/// Builds in this process so far: part of each [`Lan`]'s names.
static RUNS: AtomicU32 = AtomicU32::new(0);

/// Why a [`Lan`] could not be built or changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetnsError {
    /// This machine or user cannot make namespaces (not root, no `ip`, or
    /// `ip netns add` refused).
    #[error("network namespaces are not available here: {reason}")]
    Unavailable {
        /// What was missing or refused.
        reason: String,
    },
    /// Namespaces are unavailable and [`REQUIRE_VAR`] is `1`.
    #[error("{REQUIRE_VAR}=1, but network namespaces are not available here: {reason}")]
    Required {
        /// What was missing or refused.
        reason: String,
    },
    /// An `ip` command failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// How it exited, or why it could not run.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// Every candidate subnet is already routed on this machine.
    #[error("no free 10.K.0.0/24 subnet: every one tried is already routed here")]
    NoSubnet,
    /// No host of that name on this [`Lan`].
    #[error("no host {name} on this network (hosts: {hosts})")]
    NoHost {
        /// The name asked for.
        name: String,
        /// The hosts there are.
        hosts: String,
    },
}

/// One host of a [`Lan`]: a namespace with an address of its own.
#[derive(Debug, Clone)]
pub struct Host {
    name: String,
    namespace: String,
    addr: Ipv4Addr,
}

impl Host {
    /// The name it was built with (an agency id, say).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its network namespace, as `ip netns` names it.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Its address on `eth0`.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// `node`, run on this host: under `ip netns exec NAMESPACE`, which
    /// execs the node in its own place, so its pid, signals and kills stay
    /// the node's.
    pub fn wrap(&self, node: NodeCommand) -> NodeCommand {
        node.wrapper("ip", ["netns", "exec", self.namespace.as_str()])
    }

    /// `ip netns exec NAMESPACE program`: a command run on this host.
    pub fn command(&self, program: impl Into<OsString>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.namespace])
            .arg(program.into());
        cmd
    }
}

/// Hosts in network namespaces on one bridge, reachable from the test;
/// deleted when dropped. See the module docs.
#[derive(Debug)]
pub struct Lan {
    hosts: Vec<Host>,
    gateway: Ipv4Addr,
    /// Namespaces made, in order (the switch first).
    namespaces: Vec<String>,
    /// The root namespace's veth, once made.
    root_link: Option<String>,
}

impl Lan {
    /// Builds a network of `hosts` (see the module docs). Fails with
    /// [`NetnsError::Unavailable`] when this process cannot make
    /// namespaces, before it made any.
    pub fn build<I, S>(hosts: I) -> Result<Self, NetnsError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let names: Vec<String> = hosts.into_iter().map(Into::into).collect();
        assert!(
            !names.is_empty() && names.len() < usize::from(GATEWAY_HOST),
            "a Lan has 1 to 253 hosts"
        );
        if !rustix::process::getuid().is_root() {
            return Err(NetnsError::Unavailable {
                reason: "not running as root".into(),
            });
        }
        sweep();
        let pid = std::process::id();
        let run = RUNS.fetch_add(1, Ordering::Relaxed);
        let k = free_subnet()?;
        let net = |host: u8| Ipv4Addr::new(10, k, 0, host);
        let mut lan = Lan {
            hosts: Vec::new(),
            gateway: net(GATEWAY_HOST),
            namespaces: Vec::new(),
            root_link: None,
        };

        let switch = format!("{NS_PREFIX}{pid}-{run}-switch");
        if let Err(e) = ip(&["netns", "add", &switch]) {
            return Err(match e {
                NetnsError::Command {
                    command, stderr, ..
                } => NetnsError::Unavailable {
                    reason: format!("`{command}` was refused: {}", stderr.trim()),
                },
                other => other,
            });
        }
        lan.namespaces.push(switch.clone());
        ip(&["-n", &switch, "link", "set", "lo", "up"])?;
        ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &switch, "link", "set", "br0", "up"])?;

        for (i, name) in names.into_iter().enumerate() {
            let n = u8::try_from(i + 1).expect("at most 253 hosts");
            let ns = format!("{NS_PREFIX}{pid}-{run}-{}", name.to_lowercase());
            ip(&["netns", "add", &ns])?;
            lan.namespaces.push(ns.clone());
            let port = format!("h{n}");
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&[
                "-n", &switch, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ])?;
            ip(&["-n", &switch, "link", "set", &port, "master", "br0", "up"])?;
            let addr = net(n);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            lan.hosts.push(Host {
                name,
                namespace: ns,
                addr,
            });
        }

        let root = format!("{LINK_PREFIX}{pid:0PID_HEX$x}{run:x}");
        ip(&[
            "link", "add", &root, "type", "veth", "peer", "name", "uplink", "netns", &switch,
        ])?;
        lan.root_link = Some(root.clone());
        ip(&[
            "-n", &switch, "link", "set", "uplink", "master", "br0", "up",
        ])?;
        ip(&["addr", "add", &format!("{}/24", lan.gateway), "dev", &root])?;
        ip(&["link", "set", &root, "up"])?;
        Ok(lan)
    }

    /// [`build`](Self::build), or `None` after printing `SKIPPED` when
    /// namespaces are unavailable here, unless [`REQUIRE_VAR`] is `1`:
    /// then that is [`NetnsError::Required`].
    pub fn build_or_skip<I, S>(hosts: I) -> Result<Option<Self>, NetnsError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        match Self::build(hosts) {
            Ok(lan) => Ok(Some(lan)),
            Err(NetnsError::Unavailable { reason }) => {
                if std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1") {
                    return Err(NetnsError::Required { reason });
                }
                println!("SKIPPED: network namespaces are not available here: {reason}");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> Result<&Host, NetnsError> {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .ok_or_else(|| NetnsError::NoHost {
                name: name.to_owned(),
                hosts: self
                    .hosts
                    .iter()
                    .map(|h| h.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Every host, in the order given.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The test's own address on the network.
    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    /// Takes `name`'s `eth0` down: nothing reaches it or leaves it until
    /// [`heal`](Self::heal). Its connections are not reset, only silent,
    /// as with a pulled cable.
    pub fn cut(&self, name: &str) -> Result<(), NetnsError> {
        let host = self.host(name)?;
        ip(&["-n", &host.namespace, "link", "set", "eth0", "down"])
    }

    /// Brings `name`'s `eth0` up again.
    pub fn heal(&self, name: &str) -> Result<(), NetnsError> {
        let host = self.host(name)?;
        ip(&["-n", &host.namespace, "link", "set", "eth0", "up"])
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        // Deleting the switch deletes the root veth's peer, and so the
        // veth; deleting it first makes sure.
        if let Some(root) = self.root_link.take()
            && let Err(e) = ip(&["link", "del", &root])
        {
            eprintln!("netns: cannot delete interface {root}: {e}");
        }
        for ns in self.namespaces.drain(..).rev() {
            if let Err(e) = ip(&["netns", "del", &ns]) {
                eprintln!("netns: cannot delete namespace {ns}: {e}");
            }
        }
    }
}

/// Runs `ip args`; an error names the command and quotes its stderr.
fn ip(args: &[&str]) -> Result<(), NetnsError> {
    ip_output(args).map(drop)
}

/// Runs `ip args`; returns its stdout.
fn ip_output(args: &[&str]) -> Result<String, NetnsError> {
    let command = format!("ip {}", args.join(" "));
    let out = match Command::new("ip").args(args).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(NetnsError::Unavailable {
                reason: "no `ip` command (install iproute2)".into(),
            });
        }
        Err(e) => {
            return Err(NetnsError::Command {
                command,
                status: format!("cannot run it: {e}"),
                stderr: String::new(),
            });
        }
    };
    if !out.status.success() {
        return Err(NetnsError::Command {
            command,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether process `pid` is gone (so what its runs made is left over).
fn gone(pid: u32) -> bool {
    pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Deletes the namespaces and root interfaces of earlier runs whose
/// process is gone; those of runs still going (other tests, other
/// checkouts on the same machine) are left alone.
fn sweep() {
    if let Ok(list) = ip_output(&["netns", "list"]) {
        for ns in list.lines().filter_map(|l| l.split_whitespace().next()) {
            let pid = ns
                .strip_prefix(NS_PREFIX)
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok());
            if pid.is_some_and(gone) {
                // A run killed before its drop left its nodes running in
                // there; they would hold the namespace alive.
                if let Ok(pids) = ip_output(&["netns", "pids", ns]) {
                    for p in pids.lines().filter_map(|p| p.trim().parse::<i32>().ok()) {
                        if let Some(p) = rustix::process::Pid::from_raw(p) {
                            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                        }
                    }
                }
                let _ = ip(&["netns", "del", ns]);
            }
        }
    }
    if let Ok(list) = ip_output(&["-o", "link", "show"]) {
        // "7: tl0001f2a0@if6: <BROADCAST,...": the name, then '@' or ':'.
        for name in list
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .filter_map(|n| n.split(['@', ':']).next())
        {
            let pid = name
                .strip_prefix(LINK_PREFIX)
                .filter(|rest| rest.len() > PID_HEX)
                .and_then(|rest| u32::from_str_radix(&rest[..PID_HEX], 16).ok());
            if pid.is_some_and(gone) {
                let _ = ip(&["link", "del", name]);
            }
        }
    }
}

/// A `K` for `10.K.0.0/24` that no route or address of this machine
/// mentions yet, drawn at random so that runs side by side rarely meet.
fn free_subnet() -> Result<u8, NetnsError> {
    let routes = ip_output(&["-4", "route", "show", "table", "all"])?;
    let addrs = ip_output(&["-4", "-o", "addr", "show"])?;
    let taken = |k: u8| {
        let net = format!(" 10.{k}.");
        let starts = format!("10.{k}.");
        routes
            .lines()
            .chain(addrs.lines())
            .any(|l| l.starts_with(&starts) || l.contains(&net))
    };
    let mut seed = RandomState::new().build_hasher();
    seed.write_u32(std::process::id());
    let start = seed.finish();
    // 10.16.0.0 to 10.250.0.0: clear of the low subnets people pick by hand.
    (0..235u64)
        .map(|i| u8::try_from(16 + (start + i) % 235).expect("16 to 250"))
        .find(|&k| !taken(k))
        .ok_or(NetnsError::NoSubnet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_interface_names_fit_the_kernels_limit_and_carry_the_pid() {
        let pid = 4_194_304u32; // the largest pid_max Linux allows
        let name = format!("{LINK_PREFIX}{pid:0PID_HEX$x}{:x}", 255u32);
        assert!(name.len() <= 15, "{name} is {} characters", name.len());
        let parsed = u32::from_str_radix(&name[LINK_PREFIX.len()..][..PID_HEX], 16).unwrap();
        assert_eq!(parsed, pid);
    }

    #[test]
    fn this_process_is_not_gone() {
        assert!(!gone(std::process::id()));
    }
}
