//! The flags of `faultline run` and the keys of a `--config` file (the same names), as
//! given: strings and numbers, parsed into types once by [`super::RunConfig::resolve`].

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use faultline_clusters::ClusterKind;
use faultline_nemesis::{Fault, NemesisMode};
use faultline_workloads::workload;

use super::choice::{
    Bug, CommitProtocol, Consensus as Protocol, Isolation, ReadMode, Routing, names,
};
use super::database::BuiltIn;

use crate::error::UsageError;

/// `T`'s value names, comma-separated: the `--help` lists come from the types, so a new
/// database, fault or bug shows there without editing any prose.
fn listed<T: ValueEnum>() -> String {
    names::<T>().join(", ")
}

/// `--db`'s help.
fn db_help() -> String {
    format!(
        "The database: {} (kv: the bundled faultline-kv) [default: kv]",
        listed::<BuiltIn>()
    )
}

/// `--nemesis`'s help.
fn nemesis_help() -> String {
    format!(
        "Faults, comma-separated: {}, all (every one the database and cluster support), \
         or none [default: partition,kill]",
        listed::<Fault>()
    )
}

/// `--bug`'s help: each bug, and the protocol (or sharding) it needs when it is not
/// Raft.
fn bug_help() -> String {
    let bugs: Vec<String> = Bug::value_variants()
        .iter()
        .map(|bug| match bug.protocol() {
            Some(Protocol::Paxos) => format!("{bug} (with --consensus paxos)"),
            _ if *bug == Bug::TwoPcPresumedCommit => format!("{bug} (with --shards above 1)"),
            _ => bug.to_string(),
        })
        .collect();
    format!(
        "A planted faultline-kv bug to switch on (repeatable): {}",
        bugs.join(", ")
    )
}

/// Flags of `faultline run`. Every one may also be given in the `--config` file.
#[derive(Debug, Clone, Default, Args)]
pub struct RunArgs {
    /// The database, one of `BuiltIn`'s names [default: kv].
    #[arg(long, help = db_help())]
    pub db: Option<String>,
    /// Any other database, described in a TOML file (instead of --db; needs
    /// --client-cmd); see docs/db-file.md.
    #[arg(long, value_name = "FILE")]
    pub db_file: Option<PathBuf>,
    /// A client in any language: a command (run with `sh -c`, once per client process)
    /// speaking JSON lines on stdin/stdout; see docs/your-client.md.
    #[arg(long, value_name = "COMMAND")]
    pub client_cmd: Option<String>,
    /// faultline-kv's consensus protocol [default: raft].
    #[arg(long, help = format!("faultline-kv's consensus protocol: {} [default: raft]", listed::<Protocol>()))]
    pub consensus: Option<String>,
    /// faultline-kv's shards: keys hashed to N consensus groups, 1 to 64 [default: 1].
    #[arg(
        long,
        value_name = "N",
        help = "faultline-kv's shards, 1 to 64: keys hashed to N consensus groups over all the nodes, each shard's leader preferring a node in turn; transactions across shards commit by --commit-protocol (only with --db kv) [default: 1]"
    )]
    pub shards: Option<u32>,
    /// How faultline-kv commits a transaction across shards [default: 2pc].
    #[arg(long, value_name = "PROTOCOL", help = format!("How faultline-kv commits a transaction across shards: {} (2pc: prepares and the decision replicated in the shards' logs; 3pc: classic three-phase commit, unreplicated; only with --shards above 1) [default: 2pc]", listed::<CommitProtocol>()))]
    pub commit_protocol: Option<String>,
    /// The workload, one of `workload::NAMES` [default: register].
    #[arg(long, help = format!("The workload: {} [default: register]", workload::NAMES.join(", ")))]
    pub workload: Option<String>,
    /// Faults, comma-separated: `Fault` names, `all` (every one the database and cluster
    /// support), or `none` [default: partition,kill].
    #[arg(long, value_delimiter = ',', help = nemesis_help())]
    pub nemesis: Option<Vec<String>>,
    /// Mean seconds between fault changes [default: 10].
    #[arg(long, value_name = "SECS")]
    pub nemesis_interval: Option<f64>,
    /// How the faults are scheduled: composed (one timer per fault group: process,
    /// network, packet, clock, scenario; groups overlap, e.g. a partition held while
    /// nodes are killed, but scenarios take turns with process, network and packet
    /// faults) or sequential (one fault at a time) [default: composed].
    #[arg(long, value_name = "MODE", help = format!("How faults are scheduled: {} (composed: one timer per fault group — process, network, packet, clock, scenario — groups overlap, but scenarios take turns with process, network and packet faults; sequential: one fault at a time) [default: composed]", listed::<NemesisMode>()))]
    pub nemesis_mode: Option<String>,
    /// An explicit fault timeline instead of random faults: a TOML schedule
    /// (docs/schedules.md), or a run's nemesis.jsonl or run directory to replay its
    /// faults exactly. Its faults are the run's: do not also give --nemesis.
    #[arg(long, value_name = "FILE")]
    pub nemesis_schedule: Option<PathBuf>,
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
    /// Where the nodes run, a `ClusterKind` [default: local].
    #[arg(long, help = format!("Where the nodes run: {} (local: network namespaces on a private bridge) [default: local]", listed::<ClusterKind>()))]
    pub cluster: Option<String>,
    /// The hosts file (TOML) for --cluster ssh.
    #[arg(long, value_name = "FILE")]
    pub hosts: Option<PathBuf>,
    /// The seed of every random choice (operations, faults) [default: random].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Planted faultline-kv bugs to switch on (repeatable).
    #[arg(long, help = bug_help())]
    pub bug: Option<Vec<String>>,
    /// Extra faultline-kv flags for every node, e.g. "--tick-ms 2 --election-ticks 20"
    /// (`faultline-kv --help` lists them).
    #[arg(long, value_name = "FLAGS", allow_hyphen_values = true)]
    pub kv_args: Option<String>,
    /// etcd's and ZooKeeper's read mode [default: linearizable].
    #[arg(long, help = format!("etcd and ZooKeeper reads: {} [default: linearizable]", listed::<ReadMode>()))]
    pub read_mode: Option<String>,
    /// Elle's consistency model that transactions must satisfy [default:
    /// strict-serializable].
    #[arg(
        long,
        value_name = "MODEL",
        help = "The consistency model the transactions (list-append, rw-register) must satisfy, by Elle's names: strict-serializable, serializable, snapshot-isolation, repeatable-read, read-committed, read-uncommitted… (`faultline check --help` lists them) [default: strict-serializable]"
    )]
    pub consistency_model: Option<String>,
    /// PostgreSQL's isolation level [default: serializable].
    #[arg(long, help = format!("PostgreSQL's transaction isolation: {} [default: serializable]", listed::<Isolation>()))]
    pub isolation: Option<String>,
    /// How built-in clients pick their node [default: pinned].
    #[arg(long, value_name = "ROUTING", help = format!("How built-in clients pick their node: {} (pinned: Jepsen's, each client thread talks only to its own node, which forwards to its leader; time-outs are info. leader: follow not-leader hints to the leader, fail over) [default: pinned]", listed::<Routing>()))]
    pub client_routing: Option<String>,
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
            shards: Option<u32>,
            commit_protocol: Option<String>,
            workload: Option<String>,
            nemesis: Option<Vec<String>>,
            nemesis_interval: Option<f64>,
            nemesis_mode: Option<String>,
            nemesis_schedule: Option<::std::path::PathBuf>,
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
            consistency_model: Option<String>,
            isolation: Option<String>,
            client_routing: Option<String>,
            store: Option<::std::path::PathBuf>,
            op_timeout: Option<f64>,
            recovery_time: Option<f64>,
            check_time_limit: Option<f64>,
            $($(#[$fmeta])* $extra: $ty,)*
        }

        impl $name {
            fn overlay(&self, args: &mut $crate::config::RunArgs) {
                $crate::config::with_run_settings!(@copy self, args; db, db_file, client_cmd, consensus, shards,
                    commit_protocol, workload, nemesis, nemesis_interval, nemesis_mode, nemesis_schedule, nodes,
                    concurrency, rate, time_limit, cluster, hosts, seed, bug, kv_args, read_mode, consistency_model,
                    isolation, client_routing, store, op_timeout, recovery_time, check_time_limit);
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

/// The settings of the `--config` file `path`, as flags would give them (none without
/// a file).
pub(super) fn file_args(path: Option<&Path>) -> Result<RunArgs, UsageError> {
    let mut file = RunArgs::default();
    if let Some(path) = path {
        let loaded = load(path)?;
        loaded.overlay(&mut file);
        file.name = loaded.name;
    }
    Ok(file)
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
