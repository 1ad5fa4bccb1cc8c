//! Deploying the database on the run's backend (chosen once: local namespaces by
//! default, Docker containers or SSH machines); collecting node logs; tearing
//! everything down.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, anyhow};
use faultline_clusters::cleanup::{InterruptGuard, teardown_on_interrupt};
use faultline_clusters::ssh::{self, SshConfig, SshHost};
use faultline_clusters::{Backend, ClusterKind, Db, DbFile, KvDb, Node, Planned, Registry};

use super::database::DbPlan;
use crate::config::RunConfig;
use crate::error::UsageError;

/// How long a node may take to serve after it is started.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A deployed database on its hosts.
pub struct Deployment {
    /// The nodes, `n1` first.
    pub nodes: Vec<Node>,
    /// The database.
    pub db: Arc<dyn Db>,
    /// The same database as faultline-kv, when it is (its nodes' status: their shards).
    pub kv: Option<Arc<KvDb>>,
    /// Every resource the run created.
    pub registry: Arc<Registry>,
    /// The hosts.
    pub backend: Box<dyn Backend>,
    /// Tears the run down on Ctrl-C (SIGINT) or SIGTERM, from the moment its hosts
    /// exist: with a suite's runs at once, a Ctrl-C while one is still deploying must
    /// remove its resources too. Dropped (unregistered) after teardown.
    _interrupt: InterruptGuard,
}

/// A run that passed every check that can refuse it, before anything is created: the
/// database file and binaries, root and tools for local hosts, the Docker daemon, the
/// hosts file and every SSH host answering (connected, host key checked, logged in).
/// [`Prepared::deploy`] then creates the hosts; `faultline run` creates the run's
/// directory in between, so a refused run leaves the store as it was.
pub struct Prepared {
    backend: Planned,
    db: DbPlan,
}

impl Prepared {
    /// Every check that can refuse the run; for SSH, connects to the hosts (the first
    /// `--nodes` of the hosts file). Creates nothing.
    pub fn new(config: &RunConfig) -> Result<Prepared> {
        let usage = |e: faultline_clusters::ClusterError| UsageError(e.to_string());
        let described = match &config.db_file {
            Some(path) => Some(DbFile::load(path).map_err(|e| UsageError(e.to_string()))?),
            None => None,
        };
        // The one place the backend is chosen.
        let mut backend = match config.cluster {
            ClusterKind::Local => Planned::local().map_err(usage)?,
            ClusterKind::Docker => Planned::docker(Default::default()).map_err(usage)?,
            ClusterKind::Ssh => Planned::ssh(connect_ssh(config)?),
        };
        let db = DbPlan::new(config, described)?;
        // A container image holds the database's programs, on its PATH.
        if let Planned::Docker { image } = &mut backend {
            *image = db.image_content()?;
        }
        Ok(Prepared { backend, db })
    }

    /// The names the run's `nodes` nodes will have, in the order of their ids.
    pub fn node_names(&self, nodes: usize) -> Vec<String> {
        self.backend.node_names(nodes)
    }

    /// Creates the hosts and starts the database on all of them; waits until every node
    /// serves. On an error, removes whatever was created.
    pub fn deploy(self, config: &RunConfig, run_dir: &Path) -> Result<Deployment> {
        let backend = self
            .backend
            .create(run_dir, config.nodes)
            .map_err(|e| anyhow!(e).context("cannot create the hosts"))?;
        let interrupt = match teardown_on_interrupt(Arc::clone(backend.registry())) {
            Ok(guard) => guard,
            Err(e) => {
                let registry = Arc::clone(backend.registry());
                let _ = backend.teardown();
                let _ = registry.teardown();
                return Err(anyhow!(e).context("cannot install the Ctrl-C handler"));
            }
        };
        let nodes = backend.nodes();
        let (db, kv) = self.db.build(config, &*backend, &nodes);
        let deployment = Deployment {
            nodes,
            db,
            kv,
            registry: Arc::clone(backend.registry()),
            backend,
            _interrupt: interrupt,
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

impl Deployment {
    /// Each node's name and client address.
    pub fn client_addrs(&self) -> Vec<(String, String)> {
        self.nodes
            .iter()
            .map(|n| (n.name.clone(), self.db.client_addr(n)))
            .collect()
    }

    /// Copies every node's log files into `DIR/nodes/NODE/` (where the backend does not
    /// keep them there already). Returns the problems, which do not stop the run.
    pub fn collect_logs(&self, run_dir: &Path) -> Vec<String> {
        self.backend.collect_logs(&*self.db, run_dir)
    }

    /// Stops the database and removes every resource of the run.
    pub fn teardown(self) -> Result<()> {
        let db_result = faultline_clusters::db::teardown_all(&*self.db, &self.nodes);
        let hosts_result = self.backend.teardown().map_err(|e| anyhow!(e));
        let registry_result = self.registry.teardown().map_err(|e| anyhow!(e));
        db_result.map_err(|e| anyhow!(e))?;
        hosts_result?;
        registry_result
    }
}
