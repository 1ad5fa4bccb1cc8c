//! The run's configuration: flags and/or a TOML file (`--config FILE`), flags winning,
//! then defaults. With no flags at all: the bundled node on Raft, 5 local nodes, the
//! register workload, partitions and kills, 60 s.
//!
//! Every key of the file has the flag's name (`time-limit = 30`, `nemesis =
//! ["partition", "kill"]`). An unknown key, a wrong type or an out-of-range value is an
//! error naming the file and line (or the flag) — exit 254.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use crate::error::UsageError;

/// Faults a run can inject (`--nemesis`).
pub const FAULTS: &[&str] = &[
    "partition",
    "kill",
    "pause",
    "packet",
    "clock",
    "disk",
    "power",
    "storm",
    "all",
    "none",
];

/// Why database `db` (`kv`, `etcd`, or `file` for a `--db-file` one) on `cluster` cannot
/// have `fault`, or `None` when it can. Checked before anything is deployed.
pub fn unsupported_fault(fault: &str, db: &str, cluster: ClusterKind) -> Option<String> {
    match (fault, db, cluster) {
        ("clock", "etcd", _) => Some(
            "etcd is a Go program: it reads the time without libc, so libfaketime cannot move \
             its clock (and the machine's real clock is one for every node); use --db kv"
                .into(),
        ),
        ("clock", _, ClusterKind::Docker)
            if !faultline_clusters::db::FAKETIME_LIBS
                .iter()
                .any(|p| Path::new(p).is_file()) =>
        {
            Some(
                "the node image takes libfaketime from this machine, which has none \
                 (apt-get install libfaketime)"
                    .into(),
            )
        }
        ("disk", "etcd", _) => {
            Some("the disk nemesis knows only faultline-kv's write-ahead log; use --db kv".into())
        }
        ("clock", "file", _) => Some(
            "a database from --db-file runs without libfaketime, so its clock cannot be moved"
                .into(),
        ),
        ("disk", "file", _) => Some(
            "the disk nemesis knows only faultline-kv's write-ahead log; a --db-file database's \
             files are its own"
                .into(),
        ),
        ("power", "etcd" | "file", _) => Some(
            "power loss needs the nodes' data on faultline-lazyfs, which only faultline-kv \
             has; use --db kv"
                .into(),
        ),
        ("power", _, ClusterKind::Docker | ClusterKind::Ssh) => Some(
            "faultline-lazyfs mounts each node's data directory on the controller, so only \
             local namespaces (which share its filesystem) can lose unsynced writes; use \
             --cluster local"
                .into(),
        ),
        _ => None,
    }
}

/// The faults `all` stands for with `db` on `cluster`: every one it supports (clock on
/// SSH hosts only when asked for by name, since it needs libfaketime installed there;
/// `storm` only by name, since it keeps restarting nodes for as long as it lasts).
pub fn all_faults(db: &str, cluster: ClusterKind) -> Vec<String> {
    FAULTS
        .iter()
        .filter(|f| !matches!(**f, "all" | "none" | "storm"))
        .filter(|f| !(**f == "clock" && cluster == ClusterKind::Ssh))
        .filter(|f| unsupported_fault(f, db, cluster).is_none())
        .map(|f| f.to_string())
        .collect()
}

/// The databases a run can test.
pub const DBS: &[&str] = &["kv", "etcd"];

/// Flags of `faultline run`. Every one may also be given in the `--config` file.
#[derive(Debug, Default, Args)]
pub struct RunArgs {
    /// The database: kv (the bundled faultline-kv) or etcd [default: kv].
    #[arg(long)]
    pub db: Option<String>,
    /// Any other database, described in a TOML file (instead of --db; needs
    /// --client-cmd); see docs/db-file.md.
    #[arg(long, value_name = "FILE")]
    pub db_file: Option<PathBuf>,
    /// A client in any language: a command (run with `sh -c`, once per client process)
    /// speaking JSON lines on stdin/stdout; see docs/your-client.md.
    #[arg(long, value_name = "COMMAND")]
    pub client_cmd: Option<String>,
    /// faultline-kv's consensus protocol: raft or paxos [default: raft].
    #[arg(long)]
    pub consensus: Option<String>,
    /// The workload: register, list-append, rw-register, bank, set, counter, lock
    /// [default: register].
    #[arg(long)]
    pub workload: Option<String>,
    /// Faults, comma-separated: partition, kill, pause, packet, clock, disk, power, storm, all (every
    /// one the database and cluster support), or none [default: partition,kill].
    #[arg(long, value_delimiter = ',')]
    pub nemesis: Option<Vec<String>>,
    /// Mean seconds between fault changes [default: 10].
    #[arg(long, value_name = "SECS")]
    pub nemesis_interval: Option<f64>,
    /// Number of nodes [default: 5].
    #[arg(long)]
    pub nodes: Option<usize>,
    /// Logical client processes, one operation at a time each [default: 10].
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Client operations per second in total; 0 for as fast as possible [default: 200].
    #[arg(long, value_name = "OPS")]
    pub rate: Option<f64>,
    /// Seconds of operations under faults [default: 60].
    #[arg(long, value_name = "SECS")]
    pub time_limit: Option<f64>,
    /// Where the nodes run: local (network namespaces), docker, ssh [default: local].
    #[arg(long)]
    pub cluster: Option<String>,
    /// The hosts file (TOML) for --cluster ssh.
    #[arg(long, value_name = "FILE")]
    pub hosts: Option<PathBuf>,
    /// The seed of every random choice (operations, faults) [default: random].
    #[arg(long)]
    pub seed: Option<u64>,
    /// A planted faultline-kv bug to switch on (repeatable): stale-read, no-fsync,
    /// old-term-commit, forget-vote; paxos-ignore-promise with --consensus paxos.
    #[arg(long)]
    pub bug: Option<Vec<String>>,
    /// Extra faultline-kv flags for every node, e.g. "--tick-ms 2 --election-ticks 20"
    /// (`faultline-kv --help` lists them).
    #[arg(long, value_name = "FLAGS", allow_hyphen_values = true)]
    pub kv_args: Option<String>,
    /// etcd reads: linearizable or serializable [default: linearizable].
    #[arg(long)]
    pub read_mode: Option<String>,
    /// The store directory runs are written to [default: store].
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// A TOML file with any of these settings (flags win).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The test's name in the store [default: DB-WORKLOAD].
    #[arg(long)]
    pub name: Option<String>,
    /// Seconds a client operation may take before it is `info` [default: 5].
    #[arg(long, value_name = "SECS")]
    pub op_timeout: Option<f64>,
    /// Seconds to let the cluster recover after healing, before final reads [default: 5].
    #[arg(long, value_name = "SECS")]
    pub recovery_time: Option<f64>,
    /// Seconds the checker may take before answering unknown [default: 300].
    #[arg(long, value_name = "SECS")]
    pub check_time_limit: Option<f64>,
}

/// Declares a struct holding every `faultline run` setting that a file may give (the
/// keys of `--config`, and of suite files), plus the given extra fields, and `overlay`,
/// which copies the settings it has onto a `RunArgs`. One list, so a new run setting is
/// a key of both kinds of file at once.
macro_rules! with_run_settings {
    ($(#[$meta:meta])* struct $name:ident { $($(#[$fmeta:meta])* $extra:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Default, ::serde::Deserialize)]
        #[serde(deny_unknown_fields, rename_all = "kebab-case")]
        struct $name {
            db: Option<String>,
            db_file: Option<::std::path::PathBuf>,
            client_cmd: Option<String>,
            consensus: Option<String>,
            workload: Option<String>,
            nemesis: Option<Vec<String>>,
            nemesis_interval: Option<f64>,
            nodes: Option<usize>,
            concurrency: Option<usize>,
            rate: Option<f64>,
            time_limit: Option<f64>,
            cluster: Option<String>,
            hosts: Option<::std::path::PathBuf>,
            seed: Option<u64>,
            bug: Option<Vec<String>>,
            kv_args: Option<String>,
            read_mode: Option<String>,
            store: Option<::std::path::PathBuf>,
            op_timeout: Option<f64>,
            recovery_time: Option<f64>,
            check_time_limit: Option<f64>,
            $($(#[$fmeta])* $extra: $ty,)*
        }

        impl $name {
            fn overlay(&self, args: &mut $crate::run::RunArgs) {
                $crate::run::with_run_settings!(@copy self, args; db, db_file, client_cmd, consensus, workload,
                    nemesis, nemesis_interval, nodes, concurrency, rate, time_limit, cluster,
                    hosts, seed, bug, kv_args, read_mode, store, op_timeout, recovery_time,
                    check_time_limit);
            }
        }
    };
    (@copy $from:ident, $to:ident; $($field:ident),*) => {
        $(if let Some(value) = &$from.$field {
            $to.$field = Some(value.clone());
        })*
    };
}
pub(crate) use with_run_settings;

with_run_settings! {
    /// The settings of a `--config` file.
    struct FileConfig {
        name: Option<String>,
    }
}

/// Where the nodes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClusterKind {
    /// Network namespaces on this machine.
    Local,
    /// Docker containers.
    Docker,
    /// Machines over SSH.
    Ssh,
}

/// A complete, checked configuration.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct RunConfig {
    /// `kv` or `etcd`, or the name in the `--db-file`.
    pub db: String,
    /// The database file, when the database is described by one.
    pub db_file: Option<PathBuf>,
    /// The external client's command, when the client is a program.
    pub client_cmd: Option<String>,
    /// faultline-kv's consensus protocol: `raft` or `paxos`.
    pub consensus: String,
    /// The workload's name.
    pub workload: String,
    /// The enabled faults (empty: none).
    pub nemesis: Vec<String>,
    /// Mean time between fault changes.
    #[serde(serialize_with = "seconds")]
    pub nemesis_interval: Duration,
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
    pub bug: Vec<String>,
    /// Extra faultline-kv flags, split at white space.
    pub kv_args: Vec<String>,
    /// etcd read mode: `linearizable` or `serializable`.
    pub read_mode: String,
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

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// The planted bugs of faultline-kv.
const BUGS: &[&str] = &[
    "stale-read",
    "no-fsync",
    "old-term-commit",
    "forget-vote",
    "paxos-ignore-promise",
];

impl RunConfig {
    /// Merges flags over the `--config` file over defaults, and checks every value.
    pub fn resolve(args: &RunArgs) -> Result<RunConfig, UsageError> {
        // The file's settings, as flags would give them.
        let file = match &args.config {
            Some(path) => {
                let loaded = load(path)?;
                let mut file = RunArgs::default();
                loaded.overlay(&mut file);
                file.name = loaded.name;
                file
            }
            None => RunArgs::default(),
        };
        let origin = |flag: &str| match &args.config {
            Some(path) => format!("--{flag} (or `{flag}` in {})", path.display()),
            None => format!("--{flag}"),
        };
        let pick_str = |flag: Option<&String>, file: Option<String>, default: &str| {
            flag.cloned()
                .or(file)
                .unwrap_or_else(|| default.to_string())
        };
        let db_file = args.db_file.clone().or(file.db_file);
        let client_cmd = args.client_cmd.clone().or(file.client_cmd);
        if let Some(cmd) = &client_cmd
            && cmd.trim().is_empty()
        {
            return Err(UsageError(format!(
                "{}: empty command",
                origin("client-cmd")
            )));
        }
        // `kind` is what the checks below know the database by: kv, etcd, or file.
        let (db, kind) = match &db_file {
            Some(path) => {
                if args.db.is_some() || file.db.is_some() {
                    return Err(UsageError(format!(
                        "{}: give --db or --db-file, not both",
                        origin("db-file")
                    )));
                }
                if client_cmd.is_none() {
                    return Err(UsageError(format!(
                        "{}: a database from a file needs a client program: pass --client-cmd \"COMMAND\" (see docs/your-client.md)",
                        origin("db-file")
                    )));
                }
                let described = faultline_clusters::DbFile::load(path)
                    .map_err(|e| UsageError(e.to_string()))?;
                (described.name, "file".to_string())
            }
            None => {
                let db = pick_str(args.db.as_ref(), file.db, "kv");
                one_of(&origin("db"), &db, DBS)?;
                (db.clone(), db)
            }
        };
        let consensus = pick_str(args.consensus.as_ref(), file.consensus, "raft");
        one_of(&origin("consensus"), &consensus, &["raft", "paxos"])?;
        if consensus == "paxos" && kind != "kv" {
            return Err(UsageError(format!(
                "{}: paxos is a mode of faultline-kv; drop it or use --db kv",
                origin("consensus")
            )));
        }
        let workload = pick_str(args.workload.as_ref(), file.workload, "register");
        one_of(
            &origin("workload"),
            &workload,
            faultline_workloads::workload::NAMES,
        )?;
        let mut nemesis = args
            .nemesis
            .clone()
            .or(file.nemesis)
            .unwrap_or_else(|| vec!["partition".into(), "kill".into()]);
        for fault in &nemesis {
            one_of(&origin("nemesis"), fault, FAULTS)?;
        }
        if nemesis.iter().any(|f| f == "none") {
            if nemesis.len() > 1 {
                return Err(UsageError(format!(
                    "{}: `none` cannot be combined with other faults",
                    origin("nemesis")
                )));
            }
            nemesis.clear();
        }
        nemesis.dedup();
        let nodes = args.nodes.or(file.nodes).unwrap_or(5);
        if !(1..=200).contains(&nodes) {
            return Err(UsageError(format!(
                "{}: {nodes} nodes; must be 1 to 200",
                origin("nodes")
            )));
        }
        let concurrency = args.concurrency.or(file.concurrency).unwrap_or(10);
        if !(1..=10_000).contains(&concurrency) {
            return Err(UsageError(format!(
                "{}: {concurrency}; must be 1 to 10000",
                origin("concurrency")
            )));
        }
        let rate = args.rate.or(file.rate).unwrap_or(200.0);
        if !rate.is_finite() || rate < 0.0 {
            return Err(UsageError(format!(
                "{}: {rate}; must be a number of operations per second >= 0",
                origin("rate")
            )));
        }
        let secs = |flag: &str, value: Option<f64>, default: f64, min: f64| {
            let value = value.unwrap_or(default);
            if !value.is_finite() || value < min || value > 1e7 {
                return Err(UsageError(format!(
                    "{}: {value}; must be a number of seconds >= {min}",
                    origin(flag)
                )));
            }
            Ok(Duration::from_secs_f64(value))
        };
        let time_limit = secs(
            "time-limit",
            args.time_limit.or(file.time_limit),
            60.0,
            0.001,
        )?;
        let nemesis_interval = secs(
            "nemesis-interval",
            args.nemesis_interval.or(file.nemesis_interval),
            10.0,
            0.1,
        )?;
        let op_timeout = secs("op-timeout", args.op_timeout.or(file.op_timeout), 5.0, 0.01)?;
        let recovery_time = secs(
            "recovery-time",
            args.recovery_time.or(file.recovery_time),
            5.0,
            0.0,
        )?;
        let check_time_limit = secs(
            "check-time-limit",
            args.check_time_limit.or(file.check_time_limit),
            300.0,
            0.001,
        )?;
        let cluster_name = pick_str(args.cluster.as_ref(), file.cluster, "local");
        let cluster = match cluster_name.as_str() {
            "local" => ClusterKind::Local,
            "docker" => ClusterKind::Docker,
            "ssh" => ClusterKind::Ssh,
            other => {
                return Err(UsageError(format!(
                    "{}: unknown cluster `{other}`; expected one of local, docker, ssh",
                    origin("cluster")
                )));
            }
        };
        let hosts = args.hosts.clone().or(file.hosts);
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
        if nemesis.iter().any(|f| f == "all") {
            let mut expanded = all_faults(&kind, cluster);
            for f in &nemesis {
                if f != "all" && !expanded.contains(f) {
                    expanded.push(f.clone());
                }
            }
            nemesis = expanded;
        }
        for fault in &nemesis {
            if let Some(reason) = unsupported_fault(fault, &kind, cluster) {
                return Err(UsageError(format!(
                    "{}: `{fault}` cannot be injected with {} on --cluster {cluster_name}: {reason}",
                    origin("nemesis"),
                    match &db_file {
                        Some(path) => format!("--db-file {}", path.display()),
                        None => format!("--db {db}"),
                    }
                )));
            }
        }
        let bug = args.bug.clone().or(file.bug).unwrap_or_default();
        for b in &bug {
            one_of(&origin("bug"), b, BUGS)?;
        }
        let kv_args: Vec<String> = args
            .kv_args
            .clone()
            .or(file.kv_args)
            .map(|a| a.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        if !kv_args.is_empty() && kind != "kv" {
            return Err(UsageError(format!(
                "{}: these are faultline-kv flags; drop them or use --db kv",
                origin("kv-args")
            )));
        }
        if let Some(flag) = kv_args.iter().find(|a| {
            [
                "--id",
                "--peer",
                "--listen-peer",
                "--listen-client",
                "--data-dir",
            ]
            .iter()
            .any(|f| a.as_str() == *f || a.starts_with(&format!("{f}=")))
        }) {
            return Err(UsageError(format!(
                "{}: {flag} is set by the harness for each node; drop it",
                origin("kv-args")
            )));
        }
        if !bug.is_empty() && kind != "kv" {
            return Err(UsageError(format!(
                "{}: planted bugs are faultline-kv's; drop --bug or use --db kv",
                origin("bug")
            )));
        }
        let read_mode = pick_str(args.read_mode.as_ref(), file.read_mode, "linearizable");
        one_of(
            &origin("read-mode"),
            &read_mode,
            &["linearizable", "serializable"],
        )?;
        if read_mode == "serializable" && (kind != "etcd" || client_cmd.is_some()) {
            return Err(UsageError(format!(
                "{}: serializable reads are a setting of the built-in etcd client; use --db etcd without --client-cmd",
                origin("read-mode")
            )));
        }
        let store = args
            .store
            .clone()
            .or(file.store)
            .unwrap_or_else(|| PathBuf::from("store"));
        let name = pick_str(args.name.as_ref(), file.name, &format!("{db}-{workload}"));
        if let Err(reason) = faultline_clusters::check_name(&name) {
            return Err(UsageError(format!("{}: {reason}", origin("name"))));
        }
        let seed = args.seed.or(file.seed).unwrap_or_else(rand::random);
        Ok(RunConfig {
            db,
            db_file,
            client_cmd,
            consensus,
            workload,
            nemesis,
            nemesis_interval,
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
            store,
            name,
            op_timeout,
            recovery_time,
            check_time_limit,
        })
    }
}

fn one_of(origin: &str, value: &str, allowed: &[&str]) -> Result<(), UsageError> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(UsageError(format!(
            "{origin}: unknown value `{value}`; expected one of {}",
            allowed.join(", ")
        )))
    }
}

/// Reads the TOML file; errors name the file and line.
fn load(path: &Path) -> Result<FileConfig, UsageError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        UsageError(format!(
            "{}: cannot read the config file: {e}",
            path.display()
        ))
    })?;
    toml::from_str(&text).map_err(|e| toml_error(path, &text, &e))
}

/// A TOML error as `FILE:LINE: message` (or `FILE: message` without a position).
pub(crate) fn toml_error(path: &Path, text: &str, error: &toml::de::Error) -> UsageError {
    let message = error.message().trim_end();
    match error.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            UsageError(format!("{}:{line}: {message}", path.display()))
        }
        None => UsageError(format!("{}: {message}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn defaults_are_a_meaningful_test() {
        let c = RunConfig::resolve(&RunArgs::default()).unwrap();
        assert_eq!((c.db.as_str(), c.consensus.as_str()), ("kv", "raft"));
        let paxos = RunArgs {
            consensus: Some("paxos".into()),
            bug: Some(vec!["paxos-ignore-promise".into()]),
            ..RunArgs::default()
        };
        assert_eq!(RunConfig::resolve(&paxos).unwrap().consensus, "paxos");
        assert_eq!((c.nodes, c.workload.as_str()), (5, "register"));
        assert_eq!(c.nemesis, ["partition", "kill"]);
        assert_eq!(c.time_limit, Duration::from_secs(60));
        assert_eq!(c.cluster, ClusterKind::Local);
    }

    #[test]
    fn flags_win_over_the_file() {
        let (_dir, path) = file("workload = \"bank\"\nnodes = 3\nnemesis = [\"pause\"]\n");
        let args = RunArgs {
            config: Some(path),
            nodes: Some(7),
            ..RunArgs::default()
        };
        let c = RunConfig::resolve(&args).unwrap();
        assert_eq!((c.workload.as_str(), c.nodes), ("bank", 7));
        assert_eq!(c.nemesis, ["pause"]);
    }

    #[test]
    fn file_errors_name_the_line() {
        let (_dir, path) = file("nodes = 3\n\nnodez = 4\n");
        let args = RunArgs {
            config: Some(path.clone()),
            ..RunArgs::default()
        };
        let e = RunConfig::resolve(&args).unwrap_err().0;
        assert!(
            e.starts_with(&format!("{}:3: unknown field `nodez`", path.display())),
            "{e}"
        );
        let (_dir, path) = file("nodes = \"five\"\n");
        let args = RunArgs {
            config: Some(path.clone()),
            ..RunArgs::default()
        };
        let e = RunConfig::resolve(&args).unwrap_err().0;
        assert!(e.starts_with(&format!("{}:1:", path.display())), "{e}");
    }

    #[test]
    fn bad_values_name_the_flag() {
        let cases: Vec<(RunArgs, &str)> = vec![
            (
                RunArgs {
                    db: Some("mongo".into()),
                    ..RunArgs::default()
                },
                "--db: unknown value `mongo`",
            ),
            (
                RunArgs {
                    nodes: Some(0),
                    ..RunArgs::default()
                },
                "--nodes: 0 nodes",
            ),
            (
                RunArgs {
                    rate: Some(-1.0),
                    ..RunArgs::default()
                },
                "--rate: -1",
            ),
            (
                RunArgs {
                    nemesis: Some(vec!["flood".into()]),
                    ..RunArgs::default()
                },
                "--nemesis: unknown value `flood`",
            ),
            (
                RunArgs {
                    bug: Some(vec!["stale-read".into()]),
                    db: Some("etcd".into()),
                    ..RunArgs::default()
                },
                "--bug: planted bugs",
            ),
            (
                RunArgs {
                    kv_args: Some("--tick-ms 2".into()),
                    db: Some("etcd".into()),
                    ..RunArgs::default()
                },
                "--kv-args: these are faultline-kv flags",
            ),
            (
                RunArgs {
                    kv_args: Some("--tick-ms 2 --data-dir=/x".into()),
                    ..RunArgs::default()
                },
                "--kv-args: --data-dir=/x is set by the harness",
            ),
            (
                RunArgs {
                    consensus: Some("paxos".into()),
                    db: Some("etcd".into()),
                    ..RunArgs::default()
                },
                "--consensus: paxos is a mode of faultline-kv",
            ),
            (
                RunArgs {
                    cluster: Some("ssh".into()),
                    ..RunArgs::default()
                },
                "--cluster ssh needs a hosts file",
            ),
            (
                RunArgs {
                    name: Some("../x".into()),
                    ..RunArgs::default()
                },
                "--name: `../x`",
            ),
        ];
        for (args, expected) in cases {
            let e = RunConfig::resolve(&args).unwrap_err().0;
            assert!(
                e.starts_with(expected),
                "{e} does not start with {expected}"
            );
        }
    }

    #[test]
    fn kv_args_are_split_at_white_space() {
        let c = RunConfig::resolve(&RunArgs {
            kv_args: Some(" --tick-ms 1\t--election-ticks  20 ".into()),
            ..RunArgs::default()
        })
        .unwrap();
        assert_eq!(c.kv_args, ["--tick-ms", "1", "--election-ticks", "20"]);
    }

    #[test]
    fn a_database_file_names_the_run_and_limits_the_faults() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/etcd/etcd.toml");
        let args = |nemesis: &str| RunArgs {
            db_file: Some(example.clone()),
            client_cmd: Some("python3 client.py".into()),
            nemesis: Some(vec![nemesis.into()]),
            ..RunArgs::default()
        };
        let c = RunConfig::resolve(&args("all")).unwrap();
        assert_eq!((c.db.as_str(), c.name.as_str()), ("etcd", "etcd-register"));
        assert_eq!(c.nemesis, ["partition", "kill", "pause", "packet"]);
        for fault in ["clock", "disk"] {
            let e = RunConfig::resolve(&args(fault)).unwrap_err().0;
            assert!(e.contains("cannot be injected with --db-file"), "{e}");
        }
        let e = RunConfig::resolve(&RunArgs {
            db: Some("etcd".into()),
            ..args("none")
        })
        .unwrap_err()
        .0;
        assert!(e.contains("give --db or --db-file, not both"), "{e}");
        let e = RunConfig::resolve(&RunArgs {
            client_cmd: None,
            ..args("none")
        })
        .unwrap_err()
        .0;
        assert!(e.contains("needs a client program"), "{e}");
        // Files give them too.
        let (_dir, path) = file(&format!(
            "db-file = {:?}\nclient-cmd = \"./client\"\n",
            example.display().to_string()
        ));
        let c = RunConfig::resolve(&RunArgs {
            config: Some(path),
            ..RunArgs::default()
        })
        .unwrap();
        assert_eq!(c.client_cmd.as_deref(), Some("./client"));
        // A client program against a built-in database is fine.
        let c = RunConfig::resolve(&RunArgs {
            db: Some("etcd".into()),
            client_cmd: Some("./client".into()),
            ..RunArgs::default()
        })
        .unwrap();
        assert_eq!((c.db.as_str(), c.db_file.as_ref()), ("etcd", None));
    }

    #[test]
    fn all_faults_follow_the_database_and_unsupported_ones_are_refused() {
        let resolve = |db: &str, cluster: &str, faults: &[&str]| {
            RunConfig::resolve(&RunArgs {
                db: Some(db.into()),
                cluster: Some(cluster.into()),
                nemesis: Some(faults.iter().map(|f| f.to_string()).collect()),
                ..RunArgs::default()
            })
        };
        let c = resolve("kv", "local", &["all"]).unwrap();
        assert_eq!(
            c.nemesis,
            [
                "partition",
                "kill",
                "pause",
                "packet",
                "clock",
                "disk",
                "power"
            ]
        );
        let c = resolve("etcd", "local", &["all"]).unwrap();
        assert_eq!(c.nemesis, ["partition", "kill", "pause", "packet"]);
        let faketime = faultline_clusters::db::FAKETIME_LIBS
            .iter()
            .any(|p| Path::new(p).is_file());
        let c = resolve("kv", "docker", &["all"]).unwrap();
        if faketime {
            assert_eq!(
                c.nemesis,
                ["partition", "kill", "pause", "packet", "clock", "disk"]
            );
        } else {
            assert_eq!(c.nemesis, ["partition", "kill", "pause", "packet", "disk"]);
        }
        let c = resolve("kv", "local", &["kill", "all"]).unwrap();
        assert_eq!(c.nemesis.len(), 7);
        let e = resolve("etcd", "local", &["partition", "clock"])
            .unwrap_err()
            .0;
        assert!(
            e.starts_with("--nemesis: `clock` cannot be injected with --db etcd on --cluster local: etcd is a Go program"),
            "{e}"
        );
        let docker_clock = resolve("kv", "docker", &["clock"]);
        if faketime {
            assert!(docker_clock.is_ok());
        } else {
            let e = docker_clock.unwrap_err().0;
            assert!(e.contains("`clock` cannot be injected"), "{e}");
        }
        let e = resolve("etcd", "local", &["disk"]).unwrap_err().0;
        assert!(e.contains("faultline-kv's write-ahead log"), "{e}");
        let e = resolve("kv", "docker", &["power"]).unwrap_err().0;
        assert!(e.contains("--cluster local"), "{e}");
        assert!(resolve("etcd", "local", &["power"]).is_err());
        assert!(resolve("kv", "local", &["all", "none"]).is_err());
    }
}
