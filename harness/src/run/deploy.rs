//! Deploying the database on the chosen hosts: local namespaces (the default), Docker
//! containers or SSH machines; collecting node logs; tearing everything down.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use faultline_clusters::docker::{self, DockerCluster};
use faultline_clusters::ssh::{self, SshConfig, SshHost};
use faultline_clusters::{
    Db, DbFile, EtcdDb, FileDb, KvDb, Lazyfs, NetnsCluster, Node, Registry, Remote,
};

use super::config::{ClusterKind, RunConfig};
use crate::error::UsageError;

/// How long a node may take to serve after it is started.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The hosts of a run, kept for teardown.
enum Hosts {
    Local(NetnsCluster),
    Docker(DockerCluster),
    Ssh,
}

/// A deployed database.
pub struct Deployment {
    /// The nodes, `n1` first.
    pub nodes: Vec<Node>,
    /// The database.
    pub db: Arc<dyn Db>,
    /// Every resource the run created.
    pub registry: Arc<Registry>,
    /// Which backend.
    pub kind: ClusterKind,
    hosts: Hosts,
}

/// The faultline-kv binary: `$FAULTLINE_KV` if set, else beside this executable (both
/// are built by `cargo build --release`).
pub fn kv_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("FAULTLINE_KV") {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        return Err(UsageError(format!(
            "FAULTLINE_KV={}: no such file; unset it to use the faultline-kv beside faultline",
            path.display()
        ))
        .into());
    }
    let exe = std::env::current_exe().context("cannot find the faultline executable")?;
    let beside = exe.with_file_name("faultline-kv");
    if beside.is_file() {
        return Ok(beside);
    }
    Err(UsageError(format!(
        "{}: faultline-kv is missing; build it with `cargo build --release` (it is built beside faultline)",
        beside.display()
    ))
    .into())
}

/// faultline-lazyfs: `$FAULTLINE_LAZYFS` if set, else beside this executable.
fn lazyfs_binary() -> Result<PathBuf> {
    let path = match std::env::var_os("FAULTLINE_LAZYFS") {
        Some(path) => PathBuf::from(path),
        None => std::env::current_exe()
            .context("cannot find the faultline executable")?
            .with_file_name("faultline-lazyfs"),
    };
    if path.is_file() {
        return Ok(path);
    }
    Err(UsageError(format!(
        "{}: faultline-lazyfs is missing (the power fault needs it); build it with \
         `cargo build --release`, or point FAULTLINE_LAZYFS at it",
        path.display()
    ))
    .into())
}

/// The packet delayer (`faultline-delayer`, built by `cargo build --release` beside
/// faultline), `$FAULTLINE_DELAYER` if set; `None` when it is missing, in which case
/// packet faults are loss and bandwidth only.
pub fn delayer_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("FAULTLINE_DELAYER") {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let exe = std::env::current_exe().ok()?;
    Some(exe.with_file_name("faultline-delayer")).filter(|p| p.is_file())
}

/// The etcd binary on this machine's PATH.
fn etcd_binary() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("etcd"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            UsageError(
                "etcd is not installed: `apt-get install etcd-server` (Debian), or use --db kv"
                    .into(),
            )
            .into()
        })
}

/// Where the nodes will run, checked and (for SSH) connected.
enum Backend {
    Local,
    Docker { binaries: Vec<PathBuf> },
    Ssh { hosts: Vec<SshHost> },
}

/// A run that passed every check that can refuse it, before anything is created: the
/// database file and binaries, root and tools for local hosts, the Docker daemon, the
/// hosts file and every SSH host answering (connected, host key checked, logged in).
/// [`Prepared::deploy`] then creates the hosts; `faultline run` creates the run's
/// directory in between, so a refused run leaves the store as it was.
pub struct Prepared {
    described: Option<DbFile>,
    backend: Backend,
    /// faultline-kv on this machine, when the nodes run it from here.
    kv: Option<PathBuf>,
    /// faultline-lazyfs, for the power nemesis.
    lazyfs: Option<PathBuf>,
}

impl Prepared {
    /// Every check that can refuse the run; for SSH, connects to the hosts (the first
    /// `--nodes` of the hosts file). Creates nothing.
    pub fn new(config: &RunConfig) -> Result<Prepared> {
        let described = match &config.db_file {
            Some(path) => Some(DbFile::load(path).map_err(|e| UsageError(e.to_string()))?),
            None => None,
        };
        let backend = match config.cluster {
            ClusterKind::Local => {
                faultline_clusters::netns::check_prerequisites()
                    .map_err(|e| UsageError(e.to_string()))?;
                Backend::Local
            }
            ClusterKind::Docker => {
                docker::check_prerequisites().map_err(|e| UsageError(e.to_string()))?;
                // A described database brings its own files (uploaded at setup); they
                // also go into the image, on its PATH.
                let binaries: Vec<PathBuf> = match (&described, config.db.as_str()) {
                    (Some(file), _) => file.upload.iter().map(|(from, _)| from.clone()).collect(),
                    (None, "etcd") => vec![etcd_binary()?],
                    (None, _) => vec![kv_binary()?],
                };
                Backend::Docker { binaries }
            }
            ClusterKind::Ssh => Backend::Ssh {
                hosts: connect_ssh(config)?,
            },
        };
        let mut kv = None;
        let mut lazyfs = None;
        match (&described, config.db.as_str()) {
            (Some(_), _) => {}
            (None, "etcd") => {
                if config.cluster != ClusterKind::Docker {
                    etcd_binary()?;
                }
            }
            (None, _) => {
                if config.cluster != ClusterKind::Docker {
                    kv = Some(kv_binary()?);
                }
                if config.nemesis.iter().any(|f| f == "power") {
                    lazyfs = Some(lazyfs_binary()?);
                }
            }
        }
        Ok(Prepared {
            described,
            backend,
            kv,
            lazyfs,
        })
    }

    /// Creates the hosts and starts the database on all of them; waits until every node
    /// serves. On an error, removes whatever was created.
    pub fn deploy(self, config: &RunConfig, run_dir: &Path) -> Result<Deployment> {
        let mut kv_args: Vec<String> = Vec::new();
        if config.consensus != "raft" {
            kv_args.extend(["--consensus".to_string(), config.consensus.clone()]);
        }
        for bug in &config.bug {
            kv_args.extend(["--bug".to_string(), bug.clone()]);
        }
        kv_args.extend(config.kv_args.iter().cloned());
        let names: Vec<String> = (1..=config.nodes).map(|i| format!("n{i}")).collect();
        let Prepared {
            described,
            backend,
            kv,
            lazyfs,
        } = self;
        let (hosts, nodes, registry, image_bin) = match backend {
            Backend::Local => {
                let cluster = NetnsCluster::create(&run_dir.join("nodes"), config.nodes)
                    .context("cannot create the local hosts")?;
                let nodes = cluster.nodes();
                let registry = Arc::clone(cluster.registry());
                (Hosts::Local(cluster), nodes, registry, None)
            }
            Backend::Docker { binaries } => {
                let refs: Vec<&Path> = binaries.iter().map(PathBuf::as_path).collect();
                let image = docker::build_image(&refs).context("cannot build the node image")?;
                let run = faultline_clusters::netns::new_run_id();
                let registry = Arc::new(
                    Registry::create(run_dir, &run)
                        .context("cannot create the run's state file")?,
                );
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                let cluster = DockerCluster::start(Arc::clone(&registry), &image, &refs)
                    .context("cannot start the containers")?;
                let nodes = cluster.nodes();
                (
                    Hosts::Docker(cluster),
                    nodes,
                    registry,
                    Some(PathBuf::from("/usr/local/bin")),
                )
            }
            Backend::Ssh { hosts } => {
                let run = faultline_clusters::netns::new_run_id();
                let registry = Arc::new(
                    Registry::create(run_dir, &run)
                        .context("cannot create the run's state file")?,
                );
                let nodes = ssh_nodes(hosts, &run, &registry)?;
                (Hosts::Ssh, nodes, registry, None)
            }
        };
        let db: Arc<dyn Db> = match (described, config.db.as_str()) {
            (Some(file), _) => Arc::new(FileDb::new(file, &nodes)),
            (None, "etcd") => Arc::new(EtcdDb::new(&nodes)),
            (None, _) => {
                let db = match (&image_bin, kv) {
                    (Some(bin), _) => KvDb::new(bin.join("faultline-kv"), &nodes).upload(false),
                    (None, Some(kv)) if config.cluster == ClusterKind::Local => {
                        KvDb::new(kv, &nodes).upload(false)
                    }
                    (None, Some(kv)) => KvDb::new(kv, &nodes),
                    (None, None) => return Err(anyhow!("no faultline-kv binary (a bug)")),
                };
                // A clock nemesis needs every node under libfaketime from the start.
                let faketime = config.nemesis.iter().any(|f| f == "clock");
                let mut db = db.args(kv_args).faketime(faketime);
                // A power nemesis needs every data directory on faultline-lazyfs.
                if let Some(lazyfs) = lazyfs {
                    db = db.lazyfs(Lazyfs::new(lazyfs, Arc::clone(&registry)));
                }
                Arc::new(db)
            }
        };
        let deployment = Deployment {
            nodes,
            db,
            registry,
            kind: config.cluster,
            hosts,
        };
        if let Err(e) =
            faultline_clusters::db::setup_all(&*deployment.db, &deployment.nodes, READY_TIMEOUT)
        {
            let _ = deployment.teardown();
            return Err(anyhow!(e).context(format!("cannot start {}", config.db)));
        }
        Ok(deployment)
    }
}

/// Loads the hosts file and connects to the first `--nodes` hosts.
fn connect_ssh(config: &RunConfig) -> Result<Vec<SshHost>> {
    let file = config
        .hosts
        .as_deref()
        .ok_or_else(|| UsageError("--cluster ssh needs a hosts file: pass --hosts FILE".into()))?;
    let mut ssh_config = SshConfig::load(file).map_err(|e| UsageError(e.to_string()))?;
    if ssh_config.hosts.len() < config.nodes {
        return Err(UsageError(format!(
            "{}: lists {} hosts, but the run needs --nodes {}",
            file.display(),
            ssh_config.hosts.len(),
            config.nodes
        ))
        .into());
    }
    ssh_config.hosts.truncate(config.nodes);
    Ok(ssh::connect_all(&ssh_config).map_err(|e| UsageError(e.to_string()))?)
}

/// The nodes on SSH hosts, each in `/tmp/faultline-RUN/NAME`; the run's directory on
/// every host is recorded in `registry` first, so teardown and `faultline clean`
/// remove it.
fn ssh_nodes(hosts: Vec<SshHost>, run: &str, registry: &Registry) -> Result<Vec<Node>> {
    let dir = ssh::run_dir(run).map_err(|e| anyhow!("run id {e}"))?;
    let mut nodes = Vec::new();
    for (i, host) in hosts.into_iter().enumerate() {
        let resource = host
            .run_dir_resource(run)
            .map_err(|e| anyhow!("run id {e}"))?;
        registry
            .record(resource)
            .context("cannot record the run's directory on the SSH hosts")?;
        let spec = host.spec().clone();
        nodes.push(Node {
            id: (i + 1) as u32,
            name: spec.name.clone(),
            addr: spec.address.clone(),
            dir: dir.join(&spec.name),
            remote: Arc::new(host) as Arc<dyn Remote>,
        });
    }
    Ok(nodes)
}

impl Deployment {
    /// The local cluster, when the hosts are local.
    pub fn local(&self) -> Option<&NetnsCluster> {
        match &self.hosts {
            Hosts::Local(cluster) => Some(cluster),
            _ => None,
        }
    }

    /// The Docker cluster, when the hosts are containers.
    pub fn docker(&self) -> Option<&DockerCluster> {
        match &self.hosts {
            Hosts::Docker(cluster) => Some(cluster),
            _ => None,
        }
    }

    /// Each node's name and client address.
    pub fn client_addrs(&self) -> Vec<(String, String)> {
        self.nodes
            .iter()
            .map(|n| (n.name.clone(), self.db.client_addr(n)))
            .collect()
    }

    /// Copies every node's log files into `DIR/NODE/` (for local hosts they are there
    /// already, under `nodes/`). Returns the problems, which do not stop the run.
    pub fn collect_logs(&self, run_dir: &Path) -> Vec<String> {
        if self.kind == ClusterKind::Local {
            return Vec::new();
        }
        let mut problems = Vec::new();
        for node in &self.nodes {
            let dir = run_dir.join("nodes").join(&node.name);
            if let Err(e) = fs::create_dir_all(&dir) {
                problems.push(format!("{}: {e}", dir.display()));
                continue;
            }
            for log in self.db.log_files(node) {
                let name = log
                    .file_name()
                    .map(PathBuf::from)
                    .unwrap_or_else(|| "node.log".into());
                if let Err(e) = node.remote.download(&log, &dir.join(name)) {
                    problems.push(format!(
                        "{}: cannot fetch {}: {e}",
                        node.name,
                        log.display()
                    ));
                }
            }
        }
        problems
    }

    /// Stops the database and removes every resource of the run.
    pub fn teardown(self) -> Result<()> {
        let db_result = faultline_clusters::db::teardown_all(&*self.db, &self.nodes);
        let hosts_result: Result<()> = match self.hosts {
            Hosts::Local(cluster) => cluster.teardown().map_err(|e| anyhow!(e)),
            Hosts::Docker(mut cluster) => cluster.teardown().map_err(|e| anyhow!(e)),
            Hosts::Ssh => Ok(()),
        };
        let registry_result = self.registry.teardown().map_err(|e| anyhow!(e));
        db_result.map_err(|e| anyhow!(e))?;
        hosts_result?;
        registry_result
    }
}
