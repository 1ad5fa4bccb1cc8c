//! The run's configuration: flags and/or a TOML file (`--config FILE`), flags winning,
//! then defaults, parsed once into types. With no flags at all: the bundled node on
//! Raft, 5 local nodes, the register workload, partitions and kills, 60 s.
//!
//! Every key of the file has the flag's name (`time-limit = 30`, `nemesis =
//! ["partition", "kill"]`). An unknown key, a wrong type or an out-of-range value is an
//! error naming the file and line (or the flag) — exit 254.

mod args;
mod choice;
mod database;
mod kv;
mod schedule;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

use faultline_checker::elle::ConsistencyModel;
use faultline_clusters::ClusterKind;
use faultline_nemesis::{Fault, NemesisMode, Step};
use serde::Serialize;

use crate::error::UsageError;

pub use args::RunArgs;
use args::file_args;
pub(crate) use args::{toml_error, with_run_settings};
pub(crate) use choice::choice;
pub use choice::{Bug, CommitProtocol, Consensus, Isolation, ReadMode, Routing};
use choice::{FaultName, expand};
pub use database::Database;
use kv::{KvSettings, kv_settings};

/// A complete, checked configuration. Serialized as the run's `config.json`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct RunConfig {
    /// The database: `kv`, `etcd`, `postgres`, `zookeeper`, or the name in the `--db-file`.
    pub db: Database,
    /// The database file, when the database is described by one.
    pub db_file: Option<PathBuf>,
    /// The external client's command, when the client is a program.
    pub client_cmd: Option<String>,
    /// faultline-kv's consensus protocol.
    pub consensus: Consensus,
    /// faultline-kv's shards, 1 to 64 (1: unsharded; in `config.json` only
    /// above 1, so an unsharded run's file is as it was).
    #[serde(skip_serializing_if = "is_unsharded")]
    pub shards: u32,
    /// How faultline-kv commits a transaction across shards: `Some` exactly when
    /// `shards` is above 1 (2PC unless told).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit_protocol: Option<CommitProtocol>,
    /// The workload's name.
    pub workload: String,
    /// The enabled faults (empty: none).
    pub nemesis: Vec<Fault>,
    /// Mean time between fault changes.
    #[serde(serialize_with = "seconds")]
    pub nemesis_interval: Duration,
    /// How the random faults are scheduled.
    pub nemesis_mode: NemesisMode,
    /// The schedule file, when the faults follow one (`nemesis` is then its faults).
    pub nemesis_schedule: Option<PathBuf>,
    /// The schedule file's steps.
    #[serde(skip)]
    pub schedule: Option<Vec<Step>>,
    /// Node count.
    pub nodes: usize,
    /// Client processes.
    pub concurrency: usize,
    /// Total client operations per second; 0 = unlimited.
    pub rate: f64,
    /// How long operations run under faults.
    #[serde(serialize_with = "seconds")]
    pub time_limit: Duration,
    /// Where the nodes run.
    pub cluster: ClusterKind,
    /// The hosts file, for ssh.
    pub hosts: Option<PathBuf>,
    /// The seed.
    pub seed: u64,
    /// Planted bugs.
    pub bug: Vec<Bug>,
    /// Extra faultline-kv flags, split at white space.
    pub kv_args: Vec<String>,
    /// etcd's and ZooKeeper's read mode.
    pub read_mode: ReadMode,
    /// The model Elle checks transactional workloads against.
    #[serde(serialize_with = "model_name")]
    pub consistency_model: ConsistencyModel,
    /// PostgreSQL's isolation level.
    pub isolation: Isolation,
    /// How built-in clients pick their node.
    pub client_routing: Routing,
    /// The store directory.
    pub store: PathBuf,
    /// The test's name.
    pub name: String,
    /// A client operation's time limit.
    #[serde(serialize_with = "seconds")]
    pub op_timeout: Duration,
    /// Recovery time after healing.
    #[serde(serialize_with = "seconds")]
    pub recovery_time: Duration,
    /// The checker's time limit.
    #[serde(serialize_with = "seconds")]
    pub check_time_limit: Duration,
}

fn is_unsharded(shards: &u32) -> bool {
    *shards <= 1
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn model_name<S: serde::Serializer>(m: &ConsistencyModel, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(m.name())
}

/// The flags over the file's settings, and how to name a setting in errors.
struct Sources<'a> {
    flags: &'a RunArgs,
    file: RunArgs,
}

impl Sources<'_> {
    /// `--flag`, or `--flag (or `flag` in FILE)` when there is a file.
    fn origin(&self, flag: &str) -> String {
        match &self.flags.config {
            Some(path) => format!("--{flag} (or `{flag}` in {})", path.display()),
            None => format!("--{flag}"),
        }
    }

    /// The flag's string, else the file's, else `default`.
    fn string(&self, pick: impl Fn(&RunArgs) -> Option<&String>, default: &str) -> String {
        pick(self.flags)
            .or(pick(&self.file))
            .cloned()
            .unwrap_or_else(|| default.to_string())
    }

    /// The flag's value of type `T` (named by `flag`), else the file's, else `default`.
    fn choice<T: clap::ValueEnum + Clone>(
        &self,
        flag: &str,
        pick: impl Fn(&RunArgs) -> Option<&String>,
        default: T,
    ) -> Result<T, UsageError> {
        match pick(self.flags).or(pick(&self.file)) {
            Some(value) => choice(&self.origin(flag), value),
            None => Ok(default),
        }
    }

    /// A number of seconds of at least `min` (and at most 10⁷), else `default`.
    fn seconds(
        &self,
        flag: &str,
        pick: impl Fn(&RunArgs) -> Option<f64>,
        default: f64,
        min: f64,
    ) -> Result<Duration, UsageError> {
        let value = pick(self.flags).or(pick(&self.file)).unwrap_or(default);
        if !value.is_finite() || value < min || value > 1e7 {
            return Err(UsageError(format!(
                "{}: {value}; must be a number of seconds >= {min}",
                self.origin(flag)
            )));
        }
        Ok(Duration::from_secs_f64(value))
    }
}

impl RunConfig {
    /// Merges flags over the `--config` file over defaults, and checks every value.
    pub fn resolve(args: &RunArgs) -> Result<RunConfig, UsageError> {
        let src = Sources {
            flags: args,
            file: file_args(args.config.as_deref())?,
        };
        let db_file = args.db_file.clone().or(src.file.db_file.clone());
        let mut client_cmd = args.client_cmd.clone().or(src.file.client_cmd.clone());
        if let Some(cmd) = &client_cmd
            && cmd.trim().is_empty()
        {
            return Err(UsageError(format!(
                "{}: empty command",
                src.origin("client-cmd")
            )));
        }
        let (db, fixed_nodes) = database(&src, db_file.as_deref(), &mut client_cmd)?;
        let consensus = src.choice("consensus", |a| a.consensus.as_ref(), Consensus::Raft)?;
        if consensus == Consensus::Paxos && db != Database::Kv {
            return Err(UsageError(format!(
                "{}: paxos is a mode of faultline-kv; drop it or use --db kv",
                src.origin("consensus")
            )));
        }
        let workload = src.string(|a| a.workload.as_ref(), "register");
        if !faultline_workloads::workload::NAMES.contains(&workload.as_str()) {
            return Err(UsageError(format!(
                "{}: unknown value `{workload}`; expected one of {}",
                src.origin("workload"),
                faultline_workloads::workload::NAMES.join(", ")
            )));
        }
        let nemesis_mode = src.choice(
            "nemesis-mode",
            |a| a.nemesis_mode.as_ref(),
            NemesisMode::default(),
        )?;
        let nemesis_schedule = args
            .nemesis_schedule
            .clone()
            .or(src.file.nemesis_schedule.clone());
        let fault_names = fault_names(&src, &db)?;
        let (nodes, concurrency, rate) = sizes(&src, fixed_nodes, &db)?;
        let time_limit = src.seconds("time-limit", |a| a.time_limit, 60.0, 0.001)?;
        let nemesis_interval =
            src.seconds("nemesis-interval", |a| a.nemesis_interval, 10.0, 0.1)?;
        let op_timeout = src.seconds("op-timeout", |a| a.op_timeout, 5.0, 0.01)?;
        let recovery_time = src.seconds("recovery-time", |a| a.recovery_time, 5.0, 0.0)?;
        let check_time_limit =
            src.seconds("check-time-limit", |a| a.check_time_limit, 300.0, 0.001)?;
        let cluster = src.choice("cluster", |a| a.cluster.as_ref(), ClusterKind::Local)?;
        let hosts = args.hosts.clone().or(src.file.hosts.clone());
        match (cluster, &hosts) {
            (ClusterKind::Ssh, None) => {
                return Err(UsageError(
                    "--cluster ssh needs a hosts file: pass --hosts FILE".into(),
                ));
            }
            (ClusterKind::Local | ClusterKind::Docker, Some(_)) => {
                return Err(UsageError(
                    "--hosts FILE is for --cluster ssh only: drop it, or pass --cluster ssh".into(),
                ));
            }
            _ => {}
        }
        let mut nemesis = expand(&fault_names, &db.capabilities(), cluster);
        let schedule = match &nemesis_schedule {
            Some(path) => {
                let file = schedule::load(&src, path, cluster, nodes)?;
                nemesis = file.faults;
                Some(file.steps)
            }
            None => None,
        };
        for fault in &nemesis {
            if let Some(reason) = fault.refusal(&db.capabilities(), cluster) {
                return Err(UsageError(format!(
                    "{}: `{fault}` cannot be injected with {} on --cluster {}: {reason}",
                    src.origin(if schedule.is_some() {
                        "nemesis-schedule"
                    } else {
                        "nemesis"
                    }),
                    match &db_file {
                        Some(path) => format!("--db-file {}", path.display()),
                        None => format!("--db {db}"),
                    },
                    cluster.name()
                )));
            }
        }
        let KvSettings {
            bug,
            kv_args,
            shards,
            commit_protocol,
        } = kv_settings(&src, &db)?;
        let read_mode = src.choice(
            "read-mode",
            |a| a.read_mode.as_ref(),
            ReadMode::Linearizable,
        )?;
        let reads_modes = matches!(db, Database::Etcd | Database::Zookeeper);
        if read_mode == ReadMode::Serializable && (!reads_modes || client_cmd.is_some()) {
            return Err(UsageError(format!(
                "{}: serializable reads are a setting of the built-in etcd and ZooKeeper clients; use --db etcd or --db zookeeper without --client-cmd",
                src.origin("read-mode")
            )));
        }
        let consistency_model = consistency_model(&src, &workload)?;
        let isolation = src.choice("isolation", |a| a.isolation.as_ref(), Isolation::default())?;
        let isolation_given = args.isolation.is_some() || src.file.isolation.is_some();
        if isolation_given && (db != Database::Postgres || client_cmd.is_some()) {
            return Err(UsageError(format!(
                "{}: the isolation level is a setting of the built-in PostgreSQL client; use --db postgres without --client-cmd",
                src.origin("isolation")
            )));
        }
        let client_routing = src.choice(
            "client-routing",
            |a| a.client_routing.as_ref(),
            Routing::default(),
        )?;
        let store = args
            .store
            .clone()
            .or(src.file.store.clone())
            .unwrap_or_else(|| PathBuf::from("store"));
        let name = src.string(|a| a.name.as_ref(), &format!("{db}-{workload}"));
        if let Err(reason) = faultline_clusters::check_name(&name) {
            return Err(UsageError(format!("{}: {reason}", src.origin("name"))));
        }
        let seed = args.seed.or(src.file.seed).unwrap_or_else(rand::random);
        Ok(RunConfig {
            db,
            db_file,
            client_cmd,
            consensus,
            shards,
            commit_protocol,
            workload,
            nemesis,
            nemesis_interval,
            nemesis_mode,
            nemesis_schedule,
            schedule,
            nodes,
            concurrency,
            rate,
            time_limit,
            cluster,
            hosts,
            seed,
            bug,
            kv_args,
            read_mode,
            consistency_model,
            isolation,
            client_routing,
            store,
            name,
            op_timeout,
            recovery_time,
            check_time_limit,
        })
    }
}

/// `--consistency-model`, for the workloads Elle checks (others are refused: their
/// checkers have one model of their own).
fn consistency_model(src: &Sources, workload: &str) -> Result<ConsistencyModel, UsageError> {
    let Some(name) = src
        .flags
        .consistency_model
        .as_ref()
        .or(src.file.consistency_model.as_ref())
    else {
        return Ok(ConsistencyModel::default());
    };
    let model: ConsistencyModel = name
        .parse()
        .map_err(|e| UsageError(format!("{}: {e}", src.origin("consistency-model"))))?;
    if !faultline_workloads::workload::ELLE_WORKLOADS.contains(&workload) {
        return Err(UsageError(format!(
            "{}: the {workload} workload is not checked by Elle; a consistency model applies to {} only",
            src.origin("consistency-model"),
            faultline_workloads::workload::ELLE_WORKLOADS.join(" and ")
        )));
    }
    Ok(model)
}

/// `--db` or `--db-file` (which needs a client program: `client_cmd`, else the file's
/// `client`, run in the file's directory), and the node count a db-file fixes
/// (`nodes = N`), with the file.
fn database(
    src: &Sources,
    db_file: Option<&std::path::Path>,
    client_cmd: &mut Option<String>,
) -> Result<(Database, Option<(usize, PathBuf)>), UsageError> {
    let Some(path) = db_file else {
        let db = Database::built_in(&src.origin("db"), &src.string(|a| a.db.as_ref(), "kv"))?;
        return Ok((db, None));
    };
    if src.flags.db.is_some() || src.file.db.is_some() {
        return Err(UsageError(format!(
            "{}: give --db or --db-file, not both",
            src.origin("db-file")
        )));
    }
    let described =
        faultline_clusters::DbFile::load(path).map_err(|e| UsageError(e.to_string()))?;
    if client_cmd.is_none() {
        *client_cmd = described
            .client
            .as_ref()
            .map(|c| in_directory(&described.base_dir(), c));
    }
    if client_cmd.is_none() {
        return Err(UsageError(format!(
            "{}: a database from a file needs a client program: pass --client-cmd \"COMMAND\", or give the file a `client` key (see docs/your-client.md)",
            src.origin("db-file")
        )));
    }
    Ok((
        Database::File(described.name),
        described.nodes.map(|n| (n, path.to_path_buf())),
    ))
}

/// The shell command `command` run in `dir` (made absolute): a db-file's `client`, whose
/// paths are the file's, as its `ready` and `leader` commands' are.
fn in_directory(dir: &std::path::Path, command: &str) -> String {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let quoted = dir.to_string_lossy().replace('\'', "'\\''");
    format!("cd '{quoted}' && {command}")
}

/// `--nemesis`: fault names, `all`, or `none` alone [default: partition, kill; for a
/// single server, which partitions cannot touch: kill, pause].
fn fault_names(src: &Sources, db: &Database) -> Result<Vec<FaultName>, UsageError> {
    let origin = src.origin("nemesis");
    let given = src
        .flags
        .nemesis
        .clone()
        .or(src.file.nemesis.clone())
        .unwrap_or_else(|| match db.capabilities().peers {
            Ok(()) => vec!["partition".into(), "kill".into()],
            Err(_) => vec!["kill".into(), "pause".into()],
        });
    let mut names = given
        .iter()
        .map(|n| FaultName::parse(&origin, n))
        .collect::<Result<Vec<_>, _>>()?;
    if names.contains(&FaultName::None) {
        if names.len() > 1 {
            return Err(UsageError(format!(
                "{origin}: `none` cannot be combined with other faults"
            )));
        }
        names.clear();
    }
    Ok(names)
}

/// `--nodes` (default 5, or what the db-file fixes, or 1 for PostgreSQL's single
/// primary: giving another is an error), `--concurrency`, `--rate`, in range.
fn sizes(
    src: &Sources,
    fixed_nodes: Option<(usize, PathBuf)>,
    db: &Database,
) -> Result<(usize, usize, f64), UsageError> {
    let given = src.flags.nodes.or(src.file.nodes);
    if *db == Database::Postgres {
        return match given {
            Some(n) if n != 1 => Err(UsageError(format!(
                "{}: {n} nodes, but postgres runs as a single primary (one node, no \
                 replicas): drop --nodes or give 1",
                src.origin("nodes")
            ))),
            _ => {
                let (concurrency, rate) = concurrency_and_rate(src)?;
                Ok((1, concurrency, rate))
            }
        };
    }
    let nodes = match (&fixed_nodes, given) {
        (Some((fixed, file)), Some(n)) if n != *fixed => {
            return Err(UsageError(format!(
                "{}: {n} nodes, but {} says the database runs on {fixed} (`nodes = {fixed}`): \
                 drop --nodes, or change the file",
                src.origin("nodes"),
                file.display()
            )));
        }
        (Some((fixed, _)), _) => *fixed,
        (None, given) => given.unwrap_or(5),
    };
    if !(1..=200).contains(&nodes) {
        return Err(UsageError(format!(
            "{}: {nodes} nodes; must be 1 to 200",
            src.origin("nodes")
        )));
    }
    let (concurrency, rate) = concurrency_and_rate(src)?;
    Ok((nodes, concurrency, rate))
}

/// `--concurrency` and `--rate`, in range.
fn concurrency_and_rate(src: &Sources) -> Result<(usize, f64), UsageError> {
    let concurrency = src.flags.concurrency.or(src.file.concurrency).unwrap_or(10);
    if !(1..=10_000).contains(&concurrency) {
        return Err(UsageError(format!(
            "{}: {concurrency}; must be 1 to 10000",
            src.origin("concurrency")
        )));
    }
    let rate = src.flags.rate.or(src.file.rate).unwrap_or(200.0);
    if !rate.is_finite() || rate < 0.0 {
        return Err(UsageError(format!(
            "{}: {rate}; must be a number of operations per second >= 0",
            src.origin("rate")
        )));
    }
    Ok((concurrency, rate))
}

/// The faults as a word for people: `partition,kill`, or `none`.
pub(crate) fn faults_word(faults: &[faultline_nemesis::Fault]) -> String {
    if faults.is_empty() {
        "none".into()
    } else {
        let names: Vec<&str> = faults.iter().map(|f| f.name()).collect();
        names.join(",")
    }
}
