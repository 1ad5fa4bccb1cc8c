//! The local backend: each host is a network namespace on a private bridge created for
//! the run. Nodes reach each other and the controller (the bridge's address) and nothing
//! else: no default route, no NAT.
//!
//! Names derive from a random 6-hex-digit run id, reserved machine-wide
//! ([`crate::reserve`]), so concurrent runs do not collide: bridge `flbr-ID`,
//! namespaces `fl-ID-nN`, host veth ends `flIDvN` (Linux limits interface names to 15
//! characters). The subnet is a free `10.X.Y.0/24`, reserved the same way; the
//! controller is `.1`, node `nN` is `.(N+1)`. Every resource is recorded in the run's
//! [`Registry`] before it is created.
//!
//! A Docker engine sets the host's FORWARD policy to DROP, and with `br_netfilter` on,
//! bridged traffic goes through that hook. An accept in a table of our own does not help
//! (a drop in any base chain is final; tested), so when the `ip filter FORWARD` chain
//! exists, the cluster inserts one rule there accepting its bridge's traffic, tagged with
//! the comment `faultline-ID`, and removes it at teardown.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime};

use crate::cleanup::{Registry, Resource};
use crate::db::Node;
use crate::error::{ClusterError, RemoteError};
use crate::localhost::Localhost;
use crate::remote::{Cmd, DaemonSpec, Output, Remote, Signal};

/// The most hosts a cluster can have (addresses `.2` to `.254`).
pub const MAX_HOSTS: usize = 253;

/// How to install what the local backend needs, on Debian.
const INSTALL: &str = "apt-get install iproute2 nftables";

/// Checks that the local backend can run here: root, and `ip` and `nft` on `PATH`.
/// The error is one line naming what is missing and how to get it.
pub fn check_prerequisites() -> Result<(), ClusterError> {
    check(effective_uid(), std::env::var_os("PATH").as_deref())
}

fn check(uid: Option<u32>, path: Option<&std::ffi::OsStr>) -> Result<(), ClusterError> {
    if uid != Some(0) {
        let uid = uid.map_or_else(|| "unknown".to_string(), |u| u.to_string());
        return Err(ClusterError::Prerequisite {
            what: format!("local hosts (network namespaces) need root, but this runs as uid {uid}"),
            fix: "run as root (e.g. with sudo)".into(),
        });
    }
    for (program, package) in [("ip", "iproute2"), ("nft", "nftables")] {
        if find_program(program, path).is_none() {
            return Err(ClusterError::Prerequisite {
                what: format!(
                    "local hosts need `{program}` (package {package}), not found on PATH"
                ),
                fix: format!("install it (Debian: {INSTALL})"),
            });
        }
    }
    Ok(())
}

/// The effective uid of this process, from `/proc/self/status`; `None` if unreadable.
pub fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// `program`'s path, if an executable of that name is on `PATH`.
fn find_program(program: &str, path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path?)
        .map(|dir| dir.join(program))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// A random run id: 6 lowercase hex digits.
pub fn new_run_id() -> String {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    if let Ok(t) = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
        hasher.write_u128(t.as_nanos());
    }
    format!("{:06x}", hasher.finish() & 0xff_ffff)
}

/// One host of a [`NetnsCluster`]: a network namespace. Commands and daemons run in it
/// through `ip netns exec` (which execs, so a daemon's pid is the node's); files are on
/// the shared filesystem. Daemons it starts are recorded in the run's registry.
#[derive(Debug)]
pub struct NetnsHost {
    name: String,
    netns: String,
    addr: Ipv4Addr,
    dir: PathBuf,
    inner: Localhost,
    registry: Arc<Registry>,
}

impl NetnsHost {
    /// The namespace's name (`ip netns list`), e.g. `fl-3fa9c1-n1`.
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// The host's address on the bridge.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The host's directory under the run's directory (data, logs, pid files).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Remote for NetnsHost {
    fn host(&self) -> &str {
        &self.name
    }

    fn run(&self, cmd: &Cmd) -> Result<Output, RemoteError> {
        self.inner.run(cmd)
    }

    fn upload(&self, local: &Path, remote: &Path) -> Result<(), RemoteError> {
        self.inner.upload(local, remote)
    }

    fn download(&self, remote: &Path, local: &Path) -> Result<(), RemoteError> {
        self.inner.download(remote, local)
    }

    /// Starts the daemon in the namespace and records its process (after the fact: its
    /// pid is not known before; the namespace's removal kills it anyway).
    fn start_daemon(&self, spec: &DaemonSpec) -> Result<u32, RemoteError> {
        let pid = self.inner.start_daemon(spec)?;
        if let Some(resource) = Resource::process(pid) {
            if let Err(e) = self.registry.record(resource) {
                let _ = self.inner.signal(&spec.pid_file, Signal::Kill);
                return Err(RemoteError::Spawn {
                    host: self.name.clone(),
                    command: spec.cmd.to_string(),
                    source: std::io::Error::other(e.to_string()),
                });
            }
        }
        Ok(pid)
    }

    fn signal(&self, pid_file: &Path, signal: Signal) -> Result<bool, RemoteError> {
        self.inner.signal(pid_file, signal)
    }

    fn is_running(&self, pid_file: &Path) -> Result<bool, RemoteError> {
        self.inner.is_running(pid_file)
    }
}

/// A run's local hosts: a bridge, a namespace per host, and the registry that records
/// them. [`NetnsCluster::teardown`] (or dropping it) removes everything it created.
#[derive(Debug)]
pub struct NetnsCluster {
    run: String,
    bridge: String,
    controller: Ipv4Addr,
    hosts: Vec<Arc<NetnsHost>>,
    registry: Arc<Registry>,
    torn_down: bool,
}

impl NetnsCluster {
    /// Creates `count` hosts `n1…nN` for a run whose directory is `run_dir` (the state
    /// file and each host's directory go there). Checks prerequisites first. On failure,
    /// removes whatever it had created.
    pub fn create(run_dir: &Path, count: usize) -> Result<NetnsCluster, ClusterError> {
        check_prerequisites()?;
        if count == 0 || count > MAX_HOSTS {
            return Err(ClusterError::Config(format!(
                "local hosts: {count} hosts asked, must be 1 to {MAX_HOSTS}"
            )));
        }
        // A fresh id, reserved machine-wide, whose names are free: recorded resources
        // must never be someone else's (see `crate::reserve`).
        let reservations = Path::new(crate::reserve::DIR);
        let registry = Arc::new(crate::reserve::new_registry(
            run_dir,
            reservations,
            names_free,
        )?);
        let run = registry.run();
        let subnet = match crate::reserve::subnet(&registry, reservations, used_addresses) {
            Ok(subnet) => subnet,
            Err(e) => {
                let _ = registry.teardown();
                return Err(e);
            }
        };
        let mut cluster = NetnsCluster {
            bridge: format!("flbr-{run}"),
            controller: Ipv4Addr::new(subnet[0], subnet[1], subnet[2], 1),
            hosts: Vec::new(),
            registry,
            torn_down: false,
            run,
        };
        // On an error, `cluster` is dropped here, which tears down what exists.
        cluster.build(run_dir, subnet, count)?;
        Ok(cluster)
    }

    fn build(&mut self, run_dir: &Path, subnet: [u8; 3], count: usize) -> Result<(), ClusterError> {
        let host = Localhost::new();
        let ip = |args: &[&str]| -> Result<(), ClusterError> {
            host.run_ok(
                &Cmd::new("ip")
                    .args(args.iter().copied())
                    .timeout(Duration::from_secs(20)),
            )?;
            Ok(())
        };
        let bridge = self.bridge.clone();
        self.registry.record(Resource::Link {
            name: bridge.clone(),
        })?;
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/24", self.controller),
            "dev",
            &bridge,
        ])?;
        ip(&["link", "set", &bridge, "up"])?;
        self.accept_forwarding(&host)?;

        let hosts: Vec<NetnsHost> = (1..=count)
            .map(|i| {
                let name = format!("n{i}");
                let netns = format!("fl-{}-{name}", self.run);
                NetnsHost {
                    inner: Localhost::with_prefix(name.clone(), ["ip", "netns", "exec", &netns]),
                    dir: run_dir.join(&name),
                    addr: Ipv4Addr::new(subnet[0], subnet[1], subnet[2], (i + 1) as u8),
                    registry: Arc::clone(&self.registry),
                    name,
                    netns,
                }
            })
            .collect();
        let this = &*self;
        let results: Vec<Result<(), ClusterError>> = thread::scope(|s| {
            let handles: Vec<_> = hosts
                .iter()
                .enumerate()
                .map(|(i, h)| s.spawn(move || this.create_host(h, i + 1)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(ClusterError::Config(
                            "a host-creating thread panicked".into(),
                        ))
                    })
                })
                .collect()
        });
        self.hosts = hosts.into_iter().map(Arc::new).collect();
        results.into_iter().collect()
    }

    /// Accepts the bridge's forwarded traffic in `ip filter FORWARD`, if that chain exists.
    fn accept_forwarding(&self, host: &Localhost) -> Result<(), ClusterError> {
        let list = Cmd::new("nft")
            .args(["list", "chain", "ip", "filter", "FORWARD"])
            .timeout(Duration::from_secs(10));
        if !host.run(&list)?.success() {
            return Ok(());
        }
        let comment = format!("faultline-{}", self.run);
        self.registry.record(Resource::NftRule {
            family: "ip".into(),
            table: "filter".into(),
            chain: "FORWARD".into(),
            comment: comment.clone(),
        })?;
        let br = &self.bridge;
        host.run_ok(
            &Cmd::new("nft")
                .args(["insert", "rule", "ip", "filter", "FORWARD"])
                .args(["iifname", br, "oifname", br, "accept", "comment"])
                .arg(format!("\"{comment}\""))
                .timeout(Duration::from_secs(10)),
        )?;
        Ok(())
    }

    fn create_host(&self, h: &NetnsHost, i: usize) -> Result<(), ClusterError> {
        let local = Localhost::new();
        let ip = |args: &[&str]| -> Result<(), ClusterError> {
            local.run_ok(
                &Cmd::new("ip")
                    .args(args.iter().copied())
                    .timeout(Duration::from_secs(20)),
            )?;
            Ok(())
        };
        let veth = format!("fl{}v{i}", self.run);
        std::fs::create_dir_all(&h.dir).map_err(|e| RemoteError::File {
            host: h.name.clone(),
            action: "create directory",
            path: h.dir.clone(),
            source: e,
        })?;
        self.registry.record(Resource::Namespace {
            name: h.netns.clone(),
        })?;
        ip(&["netns", "add", &h.netns])?;
        self.registry
            .record(Resource::Link { name: veth.clone() })?;
        ip(&[
            "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &h.netns,
        ])?;
        ip(&["link", "set", &veth, "master", &self.bridge, "up"])?;
        let addr = format!("{}/24", h.addr);
        ip(&["-n", &h.netns, "addr", "add", &addr, "dev", "eth0"])?;
        ip(&["-n", &h.netns, "link", "set", "eth0", "up"])?;
        ip(&["-n", &h.netns, "link", "set", "lo", "up"])?;
        Ok(())
    }

    /// The run's id (6 hex digits).
    pub fn run_id(&self) -> &str {
        &self.run
    }

    /// The bridge's name.
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// The controller's address on the bridge (`.1`).
    pub fn controller_addr(&self) -> Ipv4Addr {
        self.controller
    }

    /// The hosts, `n1` first.
    pub fn hosts(&self) -> &[Arc<NetnsHost>] {
        &self.hosts
    }

    /// The hosts as [`Node`]s for a [`crate::Db`]: ids from 1, addresses, directories.
    pub fn nodes(&self) -> Vec<Node> {
        self.hosts
            .iter()
            .enumerate()
            .map(|(i, h)| Node {
                id: (i + 1) as u32,
                name: h.name.clone(),
                addr: h.addr.to_string(),
                dir: h.dir.clone(),
                remote: Arc::clone(h) as Arc<dyn Remote>,
            })
            .collect()
    }

    /// The run's registry, for other resources of the run (e.g. partitions' tables).
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Removes everything the run recorded (processes, namespaces, veths, the bridge, the
    /// FORWARD rule), last created first, and deletes the state file.
    pub fn teardown(mut self) -> Result<(), ClusterError> {
        self.torn_down = true;
        self.registry.teardown()?;
        Ok(())
    }
}

/// Tears down, best effort, unless [`NetnsCluster::teardown`] ran.
impl Drop for NetnsCluster {
    fn drop(&mut self) {
        if !self.torn_down {
            let _ = self.registry.teardown();
        }
    }
}

/// Whether no bridge, veth or namespace of run `id` exists.
fn names_free(id: &str) -> bool {
    let net = Path::new("/sys/class/net");
    !net.join(format!("flbr-{id}")).exists()
        && !net.join(format!("fl{id}v1")).exists()
        && std::fs::read_dir("/run/netns").map_or(true, |entries| {
            entries.flatten().all(|e| {
                !e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("fl-{id}-"))
            })
        })
}

/// This machine's IPv4 addresses and routes, as `ip` lists them (a subnet whose
/// `10.X.Y.` appears there is in use).
fn used_addresses() -> Result<String, ClusterError> {
    let host = Localhost::new();
    let mut used = String::new();
    let queries: [&[&str]; 2] = [
        &["-4", "-o", "addr", "show"],
        &["-4", "route", "show", "table", "all"],
    ];
    for args in queries {
        let out = host.run_ok(
            &Cmd::new("ip")
                .args(args.iter().copied())
                .timeout(Duration::from_secs(10)),
        )?;
        used.push_str(&out.stdout);
    }
    Ok(used)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn prerequisites_fail_in_one_line_naming_the_fix() {
        let path = Some(OsStr::new("/usr/sbin:/usr/bin:/sbin:/bin"));
        let err = check(Some(1000), path).unwrap_err().to_string();
        assert!(
            err.contains("need root") && err.contains("uid 1000"),
            "{err}"
        );
        let err = check(Some(0), Some(OsStr::new("/nonexistent")))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "local hosts need `ip` (package iproute2), not found on PATH: \
             install it (Debian: apt-get install iproute2 nftables)"
        );
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/usr/sbin/ip", dir.path().join("ip")).unwrap();
        let err = check(Some(0), Some(dir.path().as_os_str()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`nft` (package nftables)"), "{err}");
        assert!(!err.contains('\n'));
    }

    #[test]
    fn run_ids_fit_interface_names() {
        let id = new_run_id();
        assert_eq!(id.len(), 6);
        assert!(format!("fl{id}v{MAX_HOSTS}").len() <= 15);
        assert!(format!("flbr-{id}").len() <= 15);
    }
}
