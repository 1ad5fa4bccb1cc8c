//! The databases a run can test, on the run's side (their names and capabilities are
//! the configuration's [`Database`]): the programs each needs on this machine and how
//! each is built on the hosts ([`DbPlan`]), and how clients reach it ([`Clients`]). (A
//! database described in a `--db-file` needs none of this: see `docs/db-file.md`.)

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Result, anyhow};
use faultline_clusters::docker::ImageContent;
use faultline_clusters::{
    Backend, Db, DbFile, EtcdDb, FileDb, KvDb, Lazyfs, Node, PostgresDb, ZookeeperDb,
};
use faultline_nemesis::Fault;

use super::binaries::{etcd_binary, kv_binary, lazyfs_binary};
use crate::config::{Database, Isolation, ReadMode, RunConfig};

/// How client processes reach the database.
pub enum Clients {
    /// A program in any language, one per client process (`--client-cmd`).
    Program(String),
    /// The built-in faultline-kv client.
    Kv,
    /// The built-in etcd client, reading so.
    Etcd(ReadMode),
    /// The built-in PostgreSQL client, its transactions at this level.
    Postgres(Isolation),
    /// The built-in ZooKeeper client, reading so.
    Zookeeper(ReadMode),
}

impl Clients {
    /// The clients `config` asks for: its program, else the database's built-in client.
    pub fn new(config: &RunConfig) -> Clients {
        match (&config.client_cmd, &config.db) {
            (Some(command), _) => Clients::Program(command.clone()),
            (None, Database::Etcd) => Clients::Etcd(config.read_mode),
            (None, Database::Postgres) => Clients::Postgres(config.isolation),
            (None, Database::Zookeeper) => Clients::Zookeeper(config.read_mode),
            (None, Database::Kv | Database::File(_)) => Clients::Kv,
        }
    }
}

/// The database to build once the hosts exist, its programs found.
pub(super) enum DbPlan {
    /// faultline-kv, from `binary` on this machine; on faultline-lazyfs from `lazyfs`
    /// when the power nemesis needs it.
    Kv {
        binary: PathBuf,
        lazyfs: Option<PathBuf>,
    },
    /// etcd, from the hosts' `PATH`.
    Etcd,
    /// PostgreSQL, its programs in `bin_dir` (found on this machine; the hosts must
    /// have them at the same place).
    Postgres { bin_dir: PathBuf },
    /// ZooKeeper, run by the JVM `java` (found on this machine; the hosts must have it,
    /// and Debian's ZooKeeper jars, at the same places).
    Zookeeper { java: PathBuf },
    /// A database described in a file.
    File(Box<DbFile>),
}

impl DbPlan {
    /// The database `config` asks for (described in `described`, when it is a file),
    /// with its programs on this machine found (etcd's on the `PATH`).
    pub(super) fn new(config: &RunConfig, described: Option<DbFile>) -> Result<DbPlan> {
        Ok(match (&config.db, described) {
            (_, Some(file)) => DbPlan::File(Box::new(file)),
            (Database::File(name), None) => {
                return Err(anyhow!("database {name} without its file (a bug)"));
            }
            (Database::Etcd, None) => {
                etcd_binary()?;
                DbPlan::Etcd
            }
            (Database::Postgres, None) => DbPlan::Postgres {
                bin_dir: PostgresDb::find_bin_dir().map_err(|e| anyhow!("{e}; or use --db kv"))?,
            },
            (Database::Zookeeper, None) => DbPlan::Zookeeper {
                java: ZookeeperDb::find_java().map_err(|e| anyhow!("{e}; or use --db kv"))?,
            },
            (Database::Kv, None) => DbPlan::Kv {
                binary: kv_binary()?,
                lazyfs: match config.nemesis.contains(&Fault::Power) {
                    true => Some(lazyfs_binary()?),
                    false => None,
                },
            },
        })
    }

    /// What goes into a container image: the programs the nodes run, and what else
    /// the database needs (PostgreSQL: its install tree, share files and user; ZooKeeper:
    /// the JVM and the Java libraries).
    pub(super) fn image_content(&self) -> Result<ImageContent> {
        Ok(match self {
            DbPlan::File(file) => {
                ImageContent::programs(file.upload.iter().map(|(from, _)| from.clone()).collect())
            }
            DbPlan::Etcd => ImageContent::programs(vec![etcd_binary()?]),
            DbPlan::Postgres { bin_dir } => PostgresDb::image_content(bin_dir)
                .map_err(|e| anyhow!("{e}; or use --cluster local"))?,
            DbPlan::Zookeeper { java } => ZookeeperDb::image_content(java)
                .map_err(|e| anyhow!("{e}; or use --cluster local"))?,
            DbPlan::Kv { binary, .. } => ImageContent::programs(vec![binary.clone()]),
        })
    }

    /// The database on `backend`'s nodes, and faultline-kv's own handle when it is
    /// faultline-kv (the run asks its nodes for their shards' leaders).
    pub(super) fn build(
        self,
        config: &RunConfig,
        backend: &dyn Backend,
        nodes: &[Node],
    ) -> (Arc<dyn Db>, Option<Arc<KvDb>>) {
        match self {
            DbPlan::File(file) => (Arc::new(FileDb::new(*file, nodes)), None),
            DbPlan::Etcd => (Arc::new(EtcdDb::new(nodes)), None),
            DbPlan::Postgres { bin_dir } => (Arc::new(PostgresDb::new(bin_dir)), None),
            DbPlan::Zookeeper { java } => (Arc::new(ZookeeperDb::new(java, nodes)), None),
            DbPlan::Kv { binary, lazyfs } => {
                let program = backend.program(&binary);
                // Uploaded copies go without debug sections (a seventh of the size).
                let path = match program.upload {
                    true => super::binaries::stripped(&program.path),
                    false => program.path,
                };
                let mut db = KvDb::new(path, nodes)
                    .upload(program.upload)
                    .consensus(config.consensus)
                    .shards(config.shards)
                    .commit_protocol(config.commit_protocol.unwrap_or_default())
                    .bugs(&config.bug)
                    .args(config.kv_args.iter().cloned())
                    // A clock nemesis needs every node under libfaketime from the start.
                    .faketime(config.nemesis.contains(&Fault::Clock));
                // A power nemesis needs every data directory on faultline-lazyfs.
                if let Some(lazyfs) = lazyfs {
                    db = db.lazyfs(Lazyfs::new(lazyfs, Arc::clone(backend.registry())));
                }
                let db = Arc::new(db);
                (Arc::clone(&db) as Arc<dyn Db>, Some(db))
            }
        }
    }
}
