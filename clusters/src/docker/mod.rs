//! The Docker backend: one container per node, from a `FROM scratch` image holding the
//! node binary (see [`build_image`]), on an internal Docker network made for the run
//! (no route off the machine). Every container and network is recorded in the run's
//! [`Registry`] before it is created, and labelled `faultline.run=RUN`.
//!
//! ```no_run
//! # use std::{path::Path, sync::Arc};
//! # use faultline_clusters::cleanup::Registry;
//! use faultline_clusters::docker::{DockerCluster, build_image};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let registry = Arc::new(Registry::create(Path::new("/tmp/run"), "r1")?);
//! let image = build_image(&[Path::new("target/release/faultline-kv")])?;
//! let mut cluster = DockerCluster::start(registry, &image, &["n1", "n2", "n3"])?;
//! // cluster.hosts() implement Remote.
//! cluster.teardown()?;
//! # Ok(()) }
//! ```

mod host;
mod image;
mod net;
mod nsenter;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

pub use host::DockerHost;
pub use image::{
    BUSYBOX, IMAGE_LABEL, IMAGE_REPOSITORY, ImageContent, build_image, build_image_of,
    remove_images,
};
pub use net::{CONTAINER_NETNS, DockerNet};
pub use nsenter::Nsenter;
pub use nsenter::container_pid;

use crate::cleanup::{Registry, Resource};
use crate::db::Node;
use crate::error::{ClusterError, RemoteError};
use crate::localhost::Localhost;
use crate::nft::{self, NetHosts};
use crate::remote::{Cmd, Output, Remote};

/// Where each node's directory (data, log, pid file) lives inside its container.
pub const NODE_DIR: &str = "/faultline";

/// The label on every container and network of a run: `faultline.run=RUN`.
pub const RUN_LABEL: &str = "faultline.run";

/// Something went wrong with Docker itself (not inside a node).
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The `docker` CLI is not installed.
    #[error(
        "docker: the `docker` command is not installed: install Docker (Debian: apt-get install docker.io) or use another backend"
    )]
    NoCli,
    /// The Docker daemon cannot be reached.
    #[error(
        "docker: cannot reach the Docker daemon ({reason}): start dockerd, or check DOCKER_HOST and your permissions on its socket"
    )]
    NoDaemon {
        /// What `docker version` said.
        reason: String,
    },
    /// A `docker` (or `ldd`, `busybox`) command failed.
    #[error("docker: `{command}` failed: {reason}")]
    Command {
        /// The command.
        command: String,
        /// Its error output.
        reason: String,
    },
    /// A file on this machine could not be read or written.
    #[error("docker: cannot {action} {}: {source}", path.display())]
    File {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The reason.
        source: io::Error,
    },
    /// A command could not be run on this machine.
    #[error(transparent)]
    Local(#[from] RemoteError),
    /// An nft table in a container could not be changed.
    #[error("docker: {0}")]
    Net(#[from] Box<crate::error::ClusterError>),
    /// The run's state file could not be written.
    #[error("docker: cannot record {resource} in the run's state file: {reason}")]
    Record {
        /// The resource.
        resource: String,
        /// Why.
        reason: String,
    },
    /// Removing the run's containers or network failed.
    #[error("docker: teardown left {}", .0.join("; "))]
    Teardown(Vec<String>),
}

impl DockerError {
    fn file(action: &'static str, path: &Path, source: io::Error) -> DockerError {
        DockerError::File {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Runs `program ARGS…` on this machine with a limit of `secs` seconds.
fn local_run<I, S>(program: &str, args: I, secs: u64) -> Result<Output, DockerError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let cmd = Cmd::new(program)
        .args(args)
        .timeout(Duration::from_secs(secs));
    Ok(Localhost::new().run(&cmd)?)
}

/// Runs `docker ARGS…` with a limit of `secs` seconds.
fn docker<I, S>(args: I, secs: u64) -> Result<Output, DockerError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    match local_run("docker", args, secs) {
        Err(DockerError::Local(RemoteError::ProgramNotFound { .. })) => Err(DockerError::NoCli),
        other => other,
    }
}

/// Runs `docker ARGS…`, failing on a non-zero exit.
fn docker_ok(args: &[&str], secs: u64) -> Result<Output, DockerError> {
    let out = docker(args.iter().copied(), secs)?;
    if out.success() {
        return Ok(out);
    }
    Err(DockerError::Command {
        command: format!("docker {}", args.join(" ")),
        reason: out.stderr.trim().to_string(),
    })
}

/// Checks that the `docker` CLI is installed and its daemon answers.
pub fn check_prerequisites() -> Result<(), DockerError> {
    let out = docker(["version", "--format", "{{.Server.Version}}"], 20)?;
    if out.success() && !out.stdout.trim().is_empty() {
        return Ok(());
    }
    let reason = out
        .stderr
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no answer")
        .trim()
        .to_string();
    Err(DockerError::NoDaemon { reason })
}

/// A name Docker accepts, from a run id or node name: `[a-zA-Z0-9_.-]`, others as `-`.
fn docker_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// A run's nodes as Docker containers on the run's internal network.
#[derive(Debug)]
pub struct DockerCluster {
    registry: Arc<Registry>,
    run: String,
    network: String,
    hosts: Vec<Arc<DockerHost>>,
    torn_down: bool,
}

impl DockerCluster {
    /// Creates the network `fl-RUN` (internal) and, in parallel, one container
    /// `fl-RUN-NODE` per node from `image`, recording each in `registry` first. On an
    /// error, removes what it created.
    pub fn start(
        registry: Arc<Registry>,
        image: &str,
        nodes: &[&str],
    ) -> Result<DockerCluster, DockerError> {
        check_prerequisites()?;
        let run = docker_name(&registry.run());
        let mut cluster = DockerCluster {
            network: format!("fl-{run}"),
            registry,
            run,
            hosts: Vec::new(),
            torn_down: false,
        };
        let label = format!("{RUN_LABEL}={}", cluster.run);
        cluster.record(Resource::DockerNetwork {
            name: cluster.network.clone(),
        })?;
        let network = cluster.network.clone();
        docker_ok(
            &[
                "network",
                "create",
                "--internal",
                "--label",
                &label,
                &network,
            ],
            60,
        )?;
        let started: Vec<Result<DockerHost, DockerError>> = thread::scope(|s| {
            let handles: Vec<_> = nodes
                .iter()
                .map(|node| {
                    let cluster = &cluster;
                    let label = &label;
                    s.spawn(move || cluster.start_container(node, image, label))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(DockerError::Command {
                            command: "docker run".to_string(),
                            reason: "the starting thread panicked".to_string(),
                        })
                    })
                })
                .collect()
        });
        for host in started {
            cluster.hosts.push(Arc::new(host?));
        }
        Ok(cluster)
    }

    fn record(&self, resource: Resource) -> Result<(), DockerError> {
        self.registry
            .record(resource.clone())
            .map_err(|e| DockerError::Record {
                resource: resource.to_string(),
                reason: e.to_string(),
            })
    }

    fn start_container(
        &self,
        node: &str,
        image: &str,
        label: &str,
    ) -> Result<DockerHost, DockerError> {
        let name = format!("fl-{}-{}", self.run, docker_name(node));
        self.record(Resource::Container { name: name.clone() })?;
        docker_ok(
            &[
                "run",
                "--detach",
                // An init that reaps orphans: a killed daemon must not stay a zombie,
                // which a signal-0 probe takes for alive (PostgreSQL then refuses to
                // start over its old postmaster.pid).
                "--init",
                "--name",
                &name,
                "--hostname",
                node,
                "--network",
                &self.network,
                "--label",
                label,
                image,
            ],
            120,
        )?;
        let format = format!(
            "{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}",
            self.network
        );
        let out = docker_ok(&["inspect", "--format", &format, &name], 30)?;
        Ok(DockerHost::new(node, name, out.stdout.trim()))
    }

    /// The nodes, in the order given to [`DockerCluster::start`].
    pub fn hosts(&self) -> &[Arc<DockerHost>] {
        &self.hosts
    }

    /// The nodes as database [`Node`]s: ids from 1, addresses on the run's network,
    /// directories `/faultline/NODE` inside the containers.
    pub fn nodes(&self) -> Vec<Node> {
        self.hosts
            .iter()
            .enumerate()
            .map(|(i, h)| Node {
                id: (i + 1) as u32,
                name: h.host().to_string(),
                addr: h.address().to_string(),
                dir: Path::new(NODE_DIR).join(h.host()),
                remote: Arc::clone(h) as Arc<dyn Remote>,
            })
            .collect()
    }

    /// Network faults for each node, in the order of [`DockerCluster::hosts`], recording
    /// their nft tables in the run's registry.
    pub fn nets(&self) -> Vec<DockerNet> {
        self.hosts
            .iter()
            .map(|h| DockerNet::new(Arc::clone(h), Arc::clone(&self.registry)))
            .collect()
    }

    /// How network faults reach each container ([`Nsenter`], tables recorded in the
    /// run's registry); bandwidth can be limited on their `eth0`.
    pub fn net_hosts(&self) -> Result<NetHosts, ClusterError> {
        Ok(NetHosts {
            hosts: self
                .hosts
                .iter()
                .map(|h| {
                    Ok(net::net_host(
                        h,
                        nft::resolve(h.host(), h.address())?,
                        &self.registry,
                    ))
                })
                .collect::<Result<_, ClusterError>>()?,
            registry: Some(Arc::clone(&self.registry)),
            run: self.registry.run(),
            shapeable: true,
        })
    }

    /// The run's registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The run's Docker network.
    pub fn network(&self) -> &str {
        &self.network
    }

    /// The label value of the run's containers and network (`faultline.run=…`).
    pub fn run(&self) -> &str {
        &self.run
    }

    /// Removes the run's containers (`docker rm -f`) and then its network, forgetting
    /// each in the registry once gone. Tolerates what is already gone; can be repeated.
    pub fn teardown(&mut self) -> Result<(), DockerError> {
        let mut left = Vec::new();
        let containers: Vec<String> = self
            .registry
            .resources()
            .into_iter()
            .filter_map(|r| match r {
                Resource::Container { name } if name.starts_with(&format!("fl-{}-", self.run)) => {
                    Some(name)
                }
                _ => None,
            })
            .collect();
        if !containers.is_empty() {
            let mut args = vec!["rm", "--force"];
            args.extend(containers.iter().map(String::as_str));
            match docker(args, 120) {
                Ok(out) if out.success() || out.stderr.contains("No such container") => {}
                Ok(out) => left.push(format!("containers ({})", out.stderr.trim())),
                Err(e) => left.push(format!("containers ({e})")),
            }
            if left.is_empty() {
                // Tables inside the containers' namespaces went with them.
                for resource in self.registry.resources() {
                    if let Resource::NftTable {
                        netns: Some(ns), ..
                    } = &resource
                        && ns
                            .strip_prefix(CONTAINER_NETNS)
                            .is_some_and(|c| containers.iter().any(|n| n == c))
                    {
                        let _ = self.registry.forget(&resource);
                    }
                }
                for name in containers {
                    let _ = self.registry.forget(&Resource::Container { name });
                }
            }
        }
        if left.is_empty() {
            match docker(["network", "rm", self.network.as_str()], 60) {
                Ok(out) if out.success() || out.stderr.contains("not found") => {
                    let _ = self.registry.forget(&Resource::DockerNetwork {
                        name: self.network.clone(),
                    });
                }
                Ok(out) => left.push(format!("network {} ({})", self.network, out.stderr.trim())),
                Err(e) => left.push(format!("network {} ({e})", self.network)),
            }
        }
        self.hosts.clear();
        self.torn_down = left.is_empty();
        if left.is_empty() {
            Ok(())
        } else {
            Err(DockerError::Teardown(left))
        }
    }
}

impl Drop for DockerCluster {
    fn drop(&mut self) {
        if !self.torn_down {
            let _ = self.teardown();
        }
    }
}
