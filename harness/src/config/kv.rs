//! faultline-kv's own settings: `--bug`, `--kv-args`, `--shards` and
//! `--commit-protocol`, each refused with another database, and with one another where
//! they do not fit (a commit protocol or a cross-shard bug without shards).

use super::choice::{Bug, CommitProtocol, choice};
use super::{Database, Sources};
use crate::error::UsageError;

/// faultline-kv flags the harness sets for each node itself.
const HARNESS_KV_FLAGS: [&str; 5] = [
    "--id",
    "--peer",
    "--listen-peer",
    "--listen-client",
    "--data-dir",
];

/// faultline-kv flags that are run settings of their own: the harness reports by them
/// (the placement and load of shards), so `--kv-args` must not set them behind its back.
const RUN_SETTING_KV_FLAGS: [&str; 2] = ["--shards", "--commit-protocol"];

/// The most shards faultline-kv takes.
pub const MAX_SHARDS: u32 = 64;

/// faultline-kv's settings of a run, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct KvSettings {
    /// Planted bugs.
    pub bug: Vec<Bug>,
    /// Extra flags, split at white space.
    pub kv_args: Vec<String>,
    /// Shards, 1 to [`MAX_SHARDS`].
    pub shards: u32,
    /// How transactions across shards commit: `Some` exactly when `shards` is above 1.
    pub commit_protocol: Option<CommitProtocol>,
}

/// Whether `arg` is one of `flags`, alone or as `--flag=VALUE`.
fn is_one_of(arg: &str, flags: &[&str]) -> bool {
    flags
        .iter()
        .any(|f| arg == *f || arg.starts_with(&format!("{f}=")))
}

/// `--bug`, `--kv-args`, `--shards` and `--commit-protocol`: faultline-kv's only.
pub(super) fn kv_settings(src: &Sources, db: &Database) -> Result<KvSettings, UsageError> {
    let bug_origin = src.origin("bug");
    let bug = src
        .flags
        .bug
        .clone()
        .or(src.file.bug.clone())
        .unwrap_or_default()
        .iter()
        .map(|b| choice::<Bug>(&bug_origin, b))
        .collect::<Result<Vec<_>, _>>()?;
    let kv_args: Vec<String> = src
        .flags
        .kv_args
        .clone()
        .or(src.file.kv_args.clone())
        .map(|a| a.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    if !kv_args.is_empty() && *db != Database::Kv {
        return Err(UsageError(format!(
            "{}: these are faultline-kv flags; drop them or use --db kv",
            src.origin("kv-args")
        )));
    }
    if let Some(flag) = kv_args.iter().find(|a| is_one_of(a, &HARNESS_KV_FLAGS)) {
        return Err(UsageError(format!(
            "{}: {flag} is set by the harness for each node; drop it",
            src.origin("kv-args")
        )));
    }
    if let Some(flag) = kv_args.iter().find(|a| is_one_of(a, &RUN_SETTING_KV_FLAGS)) {
        let name = flag.split('=').next().unwrap_or(flag);
        return Err(UsageError(format!(
            "{}: {flag} is a run setting (the report's placement and load of shards follow \
             it); give it as {name} instead",
            src.origin("kv-args")
        )));
    }
    if !bug.is_empty() && *db != Database::Kv {
        return Err(UsageError(format!(
            "{bug_origin}: planted bugs are faultline-kv's; drop --bug or use --db kv"
        )));
    }
    let (shards, commit_protocol) = sharding(src, db)?;
    if bug.contains(&Bug::TwoPcPresumedCommit) && shards <= 1 {
        return Err(UsageError(format!(
            "{bug_origin}: {} is a bug of the commit across shards, and the run has one \
             shard; pass --shards N with N above 1 (e.g. --shards 3)",
            Bug::TwoPcPresumedCommit
        )));
    }
    Ok(KvSettings {
        bug,
        kv_args,
        shards,
        commit_protocol,
    })
}

/// `--shards` (1 to [`MAX_SHARDS`]; above 1 with faultline-kv only) and
/// `--commit-protocol` (only with shards above 1; 2PC by default there).
fn sharding(src: &Sources, db: &Database) -> Result<(u32, Option<CommitProtocol>), UsageError> {
    let shards = src.flags.shards.or(src.file.shards).unwrap_or(1);
    if !(1..=MAX_SHARDS).contains(&shards) {
        return Err(UsageError(format!(
            "{}: {shards}; must be 1 to {MAX_SHARDS}",
            src.origin("shards")
        )));
    }
    if shards > 1 && *db != Database::Kv {
        return Err(UsageError(format!(
            "{}: shards are a mode of faultline-kv; drop it or use --db kv",
            src.origin("shards")
        )));
    }
    let given = src
        .flags
        .commit_protocol
        .as_ref()
        .or(src.file.commit_protocol.as_ref());
    let commit_protocol = match given {
        Some(value) => Some(choice::<CommitProtocol>(
            &src.origin("commit-protocol"),
            value,
        )?),
        None => None,
    };
    match commit_protocol {
        Some(protocol) if shards == 1 => Err(UsageError(format!(
            "{}: {protocol} commits transactions across shards, and the run has one shard; \
             pass --shards N with N above 1, or drop it",
            src.origin("commit-protocol")
        ))),
        _ if shards == 1 => Ok((1, None)),
        given => Ok((shards, Some(given.unwrap_or_default()))),
    }
}
