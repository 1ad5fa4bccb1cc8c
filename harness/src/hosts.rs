//! `faultline hosts`: a preflight to run before a test. It checks that the chosen
//! backend can be used from this machine: for `ssh`, that the hosts file is right and
//! every host answers (`uname -a`, all hosts in parallel); for `local`, that this runs as
//! root with `ip` and `nft`, listing first every optional tool (found, or missing with
//! the feature that needs it and its Debian package); for `docker`, that the Docker
//! daemon answers. Every problem
//! is one line naming the host or file and what to do, and exits 254.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, ValueEnum};
use faultline_clusters::ssh::{self, SshConfig, SshHost};
use faultline_clusters::{Cmd, Remote};

use crate::error::UsageError;
use crate::output::say;

/// How long `uname -a` may take on a host.
const UNAME_LIMIT: Duration = Duration::from_secs(20);

/// Where the nodes of a test run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClusterKind {
    /// Network namespaces on this machine (needs root, iproute2, nftables).
    Local,
    /// Docker containers (needs a reachable Docker daemon).
    Docker,
    /// Machines over SSH, listed in a hosts file (--hosts FILE).
    Ssh,
}

/// Arguments of `faultline hosts`.
#[derive(Debug, Args)]
pub struct HostsArgs {
    /// The backend to check [default: ssh with --hosts, local otherwise].
    #[arg(long, value_enum)]
    pub cluster: Option<ClusterKind>,
    /// The hosts file (TOML) of the ssh backend.
    #[arg(long, value_name = "FILE")]
    pub hosts: Option<PathBuf>,
}

/// Checks the backend, printing one line per host (or one for the machine).
pub fn run(args: &HostsArgs) -> Result<()> {
    let kind = args.cluster.unwrap_or(if args.hosts.is_some() {
        ClusterKind::Ssh
    } else {
        ClusterKind::Local
    });
    match (kind, &args.hosts) {
        (ClusterKind::Ssh, Some(file)) => check_ssh(file),
        (ClusterKind::Ssh, None) => {
            Err(UsageError("--cluster ssh needs a hosts file: pass --hosts FILE".into()).into())
        }
        (_, Some(_)) => Err(UsageError(
            "--hosts FILE is for --cluster ssh only: drop it, or pass --cluster ssh".into(),
        )
        .into()),
        (ClusterKind::Local, None) => {
            // Every optional tool first, so one preflight names all that is missing.
            for tool in OPTIONAL_TOOLS {
                if (tool.found)() {
                    say!("  {}: ok ({})", tool.name, tool.needed_for);
                } else {
                    say!(
                        "  {}: missing, needed for {} ({})",
                        tool.name,
                        tool.needed_for,
                        tool.install
                    );
                }
            }
            faultline_clusters::netns::check_prerequisites()
                .map_err(|e| UsageError(e.to_string()))?;
            say!("local: ok (root, ip, nft)");
            Ok(())
        }
        (ClusterKind::Docker, None) => {
            faultline_clusters::docker::check_prerequisites()
                .map_err(|e| UsageError(e.to_string()))?;
            say!("docker: ok (the Docker daemon answers)");
            Ok(())
        }
    }
}

/// A tool that some optional feature of a run on this machine needs.
struct Tool {
    /// What it is called.
    name: &'static str,
    /// Whether this machine has it.
    found: fn() -> bool,
    /// What needs it.
    needed_for: &'static str,
    /// How to get it.
    install: &'static str,
}

/// The tools `faultline hosts --cluster local` lists beside the required `ip` and
/// `nft` (`scripts/setup.sh --all` installs the packages).
const OPTIONAL_TOOLS: &[Tool] = &[
    Tool {
        name: "iptables",
        found: || on_path("iptables"),
        needed_for: "packet delays, --nemesis packet",
        install: "apt-get install iptables",
    },
    Tool {
        name: "faultline-delayer",
        found: || crate::run::binaries::delayer_binary().is_some(),
        needed_for: "packet delays and the figure8 scenario",
        install: "built beside faultline by cargo build --release --workspace",
    },
    Tool {
        name: "libfaketime",
        found: faultline_clusters::db::faketime_installed,
        needed_for: "clock faults, --nemesis clock",
        install: "apt-get install libfaketime",
    },
    Tool {
        name: "fusermount3",
        found: || on_path("fusermount3"),
        needed_for: "power-loss faults, --nemesis power",
        install: "apt-get install fuse3",
    },
    Tool {
        name: "faultline-lazyfs",
        found: || crate::run::binaries::lazyfs_binary().is_ok(),
        needed_for: "power-loss faults, --nemesis power",
        install: "built beside faultline by cargo build --release --workspace",
    },
    Tool {
        name: "etcd",
        found: || on_path("etcd"),
        needed_for: "--db etcd",
        install: "apt-get install etcd-server",
    },
    Tool {
        name: "postgresql",
        found: || faultline_clusters::PostgresDb::find_bin_dir().is_ok(),
        needed_for: "--db postgres",
        install: "apt-get install postgresql",
    },
    Tool {
        name: "zookeeper",
        found: || faultline_clusters::ZookeeperDb::find_java().is_ok(),
        needed_for: "--db zookeeper",
        install: "apt-get install zookeeperd",
    },
    Tool {
        name: "docker",
        found: || on_path("docker"),
        needed_for: "--cluster docker",
        install: "apt-get install docker.io",
    },
];

/// Whether `program` is a file in a directory of `PATH`.
fn on_path(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| dir.join(program).is_file())
}

/// Loads the hosts file, connects to every host in parallel and runs `uname -a` on each.
/// Prints `NAME ADDRESS: ok, UNAME` per host that answers, and one error line per host
/// that does not (the last one is returned, so `main` prints it and exits 254).
fn check_ssh(file: &std::path::Path) -> Result<()> {
    let config = SshConfig::load(file).map_err(|e| UsageError(e.to_string()))?;
    let results = ssh::on_all(&config.hosts, |spec| -> Result<String, String> {
        let host = SshHost::connect(spec, &config).map_err(|e| e.to_string())?;
        let uname = Cmd::new("uname").arg("-a").timeout(UNAME_LIMIT);
        let address = format!("{}:{}", spec.address, spec.port);
        match host.run(&uname) {
            Ok(out) if out.success() => Ok(out.stdout.lines().next().unwrap_or("").trim().into()),
            Ok(out) => Err(format!(
                "{} ({address}): `uname -a` failed ({}): {}; check the login user's shell and PATH there",
                spec.name,
                out.status,
                out.stderr.lines().next().unwrap_or("").trim()
            )),
            Err(e) => Err(format!(
                "{} ({address}): `uname -a` failed: {e}; check the host and its sshd",
                spec.name
            )),
        }
    });
    let mut last_error = None;
    for (spec, result) in config.hosts.iter().zip(results) {
        match result {
            Ok(uname) => say!("{} {}: ok, {uname}", spec.name, spec.address),
            Err(message) => {
                if let Some(previous) = last_error.replace(message) {
                    eprintln!("faultline: {previous}");
                }
            }
        }
    }
    match last_error {
        Some(message) => Err(UsageError(message).into()),
        None => Ok(()),
    }
}
