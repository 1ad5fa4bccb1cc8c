//! `--nemesis-schedule FILE`: the schedule read once (a TOML timeline, or a run's
//! `nemesis.jsonl` to replay), its node names checked against the run's nodes. Its
//! faults become the run's, checked like `--nemesis`'s, so `--nemesis` must not be
//! given with it.

use std::path::Path;

use faultline_clusters::ClusterKind;
use faultline_nemesis::schedule::file::{self, ScheduleFile};
use serde_json::Value;

use super::Sources;
use crate::error::UsageError;

/// The schedule at `path` for a run of `nodes` nodes on `cluster`.
pub(super) fn load(
    src: &Sources,
    path: &Path,
    cluster: ClusterKind,
    nodes: usize,
) -> Result<ScheduleFile, UsageError> {
    if src.flags.nemesis.is_some() || src.file.nemesis.is_some() {
        return Err(UsageError(format!(
            "{}: a schedule brings its own faults; drop --nemesis (or `nemesis` in the file)",
            src.origin("nemesis-schedule")
        )));
    }
    let schedule = file::load(path).map_err(|e| UsageError(format!("--nemesis-schedule {e}")))?;
    // Local and Docker nodes are n1…nN; SSH hosts are named by the hosts file.
    if cluster != ClusterKind::Ssh {
        for step in &schedule.steps {
            if let Some(name) = unknown_node(&step.value, nodes) {
                return Err(UsageError(format!(
                    "--nemesis-schedule {}: `{}` at {:.3} s names node {name}, but the run has n1 to n{nodes} (--nodes)",
                    schedule.path.display(),
                    step.f,
                    step.time as f64 / 1e9
                )));
            }
        }
    }
    Ok(schedule)
}

/// A node name (`nK`) in `value` beyond the `nodes` of the run.
fn unknown_node(value: &Value, nodes: usize) -> Option<String> {
    match value {
        Value::String(s) => {
            let k: usize = s.strip_prefix('n')?.parse().ok()?;
            (k == 0 || k > nodes).then(|| s.clone())
        }
        Value::Array(items) => items.iter().find_map(|v| unknown_node(v, nodes)),
        Value::Object(fields) => fields.values().find_map(|v| unknown_node(v, nodes)),
        _ => None,
    }
}
