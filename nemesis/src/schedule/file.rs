//! Schedule files (`--nemesis-schedule FILE`): an explicit timeline in TOML, or a
//! run's recorded `nemesis.jsonl` (see [`super::replay`]), read into [`Step`]s.
//!
//! ```toml
//! [[at]]
//! time = 5.0                        # seconds from the start of the workload
//! start = "partition"               # a fault (or `stop = "partition"`, or `f = "truncate-log"`)
//! target = "minority-with-leader"   # optional: nodes, a role, a topology, or groups
//! [[at]]
//! time = 9.0
//! stop = "partition"
//! ```
//!
//! `value = {…}` gives the nemesis's value itself (e.g. `{ loss = 30 }` for `packet`,
//! `{ delta_ms = -60000 }` for `clock`); a `target` is merged into it.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::timeline::Step;
use crate::fault::Fault;
use crate::partitioner::TOPOLOGIES;
use crate::process::TARGETS;
use crate::roles::{FOLLOWERS, LEADER, MINORITY_WITH_LEADER, PREVIOUS_LEADER, ROLES};
use crate::storm::STORM_TARGETS;

/// A schedule file that cannot be used: the file, the line (when known) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ScheduleError {
    /// The file.
    pub path: PathBuf,
    /// The line of the entry (1-based), when known.
    pub line: Option<usize>,
    /// What is wrong and what is allowed.
    pub message: String,
}

/// A schedule, read: its steps and the faults they use.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleFile {
    /// The file it was read from.
    pub path: PathBuf,
    /// The steps, in the file's order.
    pub steps: Vec<Step>,
    /// The faults whose nemeses the steps need, in [`Fault::ALL`] order.
    pub faults: Vec<Fault>,
}

/// Reads the schedule at `path`: a TOML timeline, a run's `nemesis.jsonl` (by its
/// `.jsonl` extension), or a run directory (its `nemesis.jsonl`).
pub fn load(path: &Path) -> Result<ScheduleFile, ScheduleError> {
    let path = if path.is_dir() {
        path.join("nemesis.jsonl")
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&path).map_err(|e| ScheduleError {
        path: path.clone(),
        line: None,
        message: format!("cannot read the schedule: {e}"),
    })?;
    let steps = if path.extension().is_some_and(|e| e == "jsonl") {
        super::replay::parse(&path, &text)?
    } else {
        parse(&path, &text)?
    };
    let mut faults: Vec<Fault> = steps.iter().filter_map(|s| Fault::of_f(&s.f)).collect();
    faults.sort();
    faults.dedup();
    Ok(ScheduleFile {
        path,
        steps,
        faults,
    })
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Toml {
    #[serde(default)]
    at: Vec<toml::Spanned<Entry>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    time: f64,
    start: Option<String>,
    stop: Option<String>,
    f: Option<String>,
    target: Option<toml::Value>,
    value: Option<toml::Value>,
}

/// The steps of the TOML schedule `text` (read from `path`, for errors).
pub fn parse(path: &Path, text: &str) -> Result<Vec<Step>, ScheduleError> {
    let error = |line: Option<usize>, message: String| ScheduleError {
        path: path.to_path_buf(),
        line,
        message,
    };
    let line_of = |at: usize| text[..at.min(text.len())].matches('\n').count() + 1;
    let file: Toml = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(s.start));
        error(
            line,
            format!(
                "{} (entries are [[at]] tables with time, start|stop|f, target, value)",
                e.message().trim_end()
            ),
        )
    })?;
    let mut steps = Vec::new();
    let mut lines = Vec::new();
    for spanned in file.at {
        let line = line_of(spanned.span().start);
        let entry = spanned.into_inner();
        steps.push(step(entry).map_err(|m| error(Some(line), m))?);
        lines.push(line);
    }
    delayer_overlap(&steps, &lines).map_or(Ok(steps), |(line, m)| Err(error(Some(line), m)))
}

/// The faults that hold packets in `faultline-delayer` on the nodes: two of them active
/// at once would fight over the same queue.
const DELAYING: [Fault; 3] = [Fault::Packet, Fault::Figure8, Fault::VoteKill];

/// The first start (line, message) in time order of a fault of [`DELAYING`] while another
/// one is active, if any: the composed schedule never does that, and a file must not.
fn delayer_overlap(steps: &[Step], lines: &[usize]) -> Option<(usize, String)> {
    let mut order: Vec<usize> = (0..steps.len()).collect();
    order.sort_by_key(|i| steps[*i].time);
    let mut active: Vec<(Fault, usize)> = Vec::new();
    for i in order {
        let Some(fault) = Fault::of_f(&steps[i].f).filter(|f| DELAYING.contains(f)) else {
            continue;
        };
        if steps[i].f == fault.stop_f() {
            active.retain(|(f, _)| *f != fault);
        } else if steps[i].f == fault.start_f() {
            if let Some((other, since)) = active.iter().find(|(f, _)| *f != fault) {
                return Some((
                    lines[i],
                    format!(
                        "`{}` at {} s would overlap `{}` (started on line {since}): both hold \
                         packets in faultline-delayer on the nodes; stop `{}` before",
                        fault.name(),
                        steps[i].time as f64 / 1e9,
                        other.name(),
                        other.name(),
                    ),
                ));
            }
            active.push((fault, lines[i]));
        }
    }
    None
}

/// One entry as a step; the message says what is wrong and what is allowed.
fn step(entry: Entry) -> Result<Step, String> {
    if !entry.time.is_finite() || entry.time < 0.0 || entry.time > 1e7 {
        return Err(format!("time = {}: seconds from 0 to 10^7", entry.time));
    }
    let time = (entry.time * 1e9).round() as u64;
    let faults = Fault::ALL.map(Fault::name).join(", ");
    let named = |name: &str| {
        Fault::from_name(name)
            .ok_or_else(|| format!("unknown fault `{name}`; expected one of {faults}"))
    };
    let json = |v: Option<toml::Value>| v.map(|v| serde_json::to_value(v).unwrap_or(Value::Null));
    let (target, value) = (json(entry.target), json(entry.value));
    let (fault, f, starting) = match (entry.start, entry.stop, entry.f) {
        (Some(name), None, None) => {
            let fault = named(&name)?;
            (fault, fault.start_f().to_string(), true)
        }
        (None, Some(name), None) => {
            let fault = named(&name)?;
            (fault, fault.stop_f().to_string(), false)
        }
        (None, None, Some(f)) => match Fault::of_f(&f) {
            Some(fault) => (fault, f.clone(), f != fault.stop_f()),
            None => {
                let all: Vec<&str> = Fault::ALL
                    .iter()
                    .flat_map(|f| f.fs().iter().copied())
                    .collect();
                return Err(format!(
                    "unknown f `{f}`; expected one of {}",
                    all.join(", ")
                ));
            }
        },
        _ => return Err("give exactly one of start = FAULT, stop = FAULT or f = F".into()),
    };
    if !starting && (target.is_some() || value.is_some()) {
        return Err(format!(
            "`{f}` takes no target or value: it stops every {fault} fault"
        ));
    }
    let value = match target {
        Some(target) => fault.with_target(&target, value)?,
        None => value.unwrap_or(Value::Null),
    };
    Ok(Step { time, f, value })
}

/// Whether `v` is a list of node names.
fn names(v: &Value) -> bool {
    v.as_array().is_some_and(|a| a.iter().all(Value::is_string))
}

impl Fault {
    /// The nemesis value for a schedule entry of this fault aimed at `target` (node
    /// names, a role, a target or topology name, or groups) with the entry's `value`,
    /// if any; else what targets the fault allows.
    pub fn with_target(self, target: &Value, value: Option<Value>) -> Result<Value, String> {
        let word = target.as_str();
        let is = |allowed: &[&str]| word.is_some_and(|w| allowed.contains(&w));
        let process: Vec<&str> = TARGETS.iter().chain(&ROLES).copied().collect();
        let one_node = [LEADER, PREVIOUS_LEADER];
        let bad = |allowed: String| Err(format!("target {target} for {self}: expected {allowed}"));
        let field = |key: &str| -> Result<Value, String> {
            let mut object = match value.clone() {
                None | Some(Value::Null) => serde_json::Map::new(),
                Some(Value::Object(o)) => o,
                Some(other) => return Err(format!("value {other} for {self}: expected a table")),
            };
            object.insert(key.to_string(), target.clone());
            Ok(Value::Object(object))
        };
        let no_value = |v: Value| match &value {
            None => Ok(v),
            Some(_) => Err(format!("{self}: give target or value, not both")),
        };
        match self {
            Fault::Kill | Fault::Pause | Fault::Power if is(&process) || names(target) => {
                no_value(target.clone())
            }
            Fault::Kill | Fault::Pause | Fault::Power => {
                bad(format!("node names or one of {}", process.join(", ")))
            }
            Fault::Partition => {
                let groups = target
                    .as_array()
                    .is_some_and(|a| a.iter().all(|g| names(g) || g.is_string()));
                let words: Vec<&str> = TOPOLOGIES
                    .iter()
                    .chain(&[
                        "majority",
                        "primary",
                        LEADER,
                        PREVIOUS_LEADER,
                        MINORITY_WITH_LEADER,
                    ])
                    .copied()
                    .collect();
                if groups && !names(target) {
                    no_value(json!({ "isolated": target }))
                } else if is(&words) || groups {
                    no_value(target.clone())
                } else {
                    bad(format!(
                        "groups of node names ([[\"n1\"], [\"n2\", \"n3\"]]) or one of {}",
                        words.join(", ")
                    ))
                }
            }
            Fault::Storm => {
                let words: Vec<&str> = STORM_TARGETS
                    .iter()
                    .chain(&TARGETS)
                    .chain(&ROLES)
                    .copied()
                    .collect();
                if is(&words) || names(target) {
                    field("target")
                } else {
                    bad(format!("node names or one of {}", words.join(", ")))
                }
            }
            Fault::Packet if is(&[LEADER, FOLLOWERS, PREVIOUS_LEADER]) || names(target) => {
                field("nodes")
            }
            Fault::Packet => bad(format!(
                "node names or one of {LEADER}, {FOLLOWERS}, {PREVIOUS_LEADER}"
            )),
            Fault::Clock | Fault::Disk if word.is_some() || target == &json!(null) => field("node"),
            Fault::Clock | Fault::Disk => {
                bad(format!("one node name, or one of {}", one_node.join(", ")))
            }
            // A scenario picks its own nodes, round after round.
            Fault::LeaderChurn
            | Fault::VoteKill
            | Fault::Flap
            | Fault::StaleLeader
            | Fault::Figure8 => Err(format!(
                "{self} picks its own targets: give no target (a `value` table sets its knobs)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(text: &str) -> Result<Vec<Step>, String> {
        parse(Path::new("s.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn entries_become_nemesis_operations() {
        let got = steps(
            "[[at]]\ntime = 5.0\nstart = \"partition\"\ntarget = \"minority-with-leader\"\n\
             [[at]]\ntime = 6.5\nstart = \"kill\"\ntarget = [\"n1\", \"n3\"]\n\
             [[at]]\ntime = 7\nstart = \"packet\"\ntarget = \"followers\"\nvalue = { loss = 30 }\n\
             [[at]]\ntime = 8\nf = \"truncate-log\"\nvalue = { node = \"n2\", bytes = 5 }\n\
             [[at]]\ntime = 9.0\nstop = \"partition\"\n",
        )
        .unwrap();
        let ops: Vec<(u64, &str, Value)> = got
            .iter()
            .map(|s| (s.time, s.f.as_str(), s.value.clone()))
            .collect();
        assert_eq!(
            ops,
            [
                (
                    5_000_000_000,
                    "start-partition",
                    json!("minority-with-leader")
                ),
                (6_500_000_000, "kill", json!(["n1", "n3"])),
                (
                    7_000_000_000,
                    "start-packet",
                    json!({"loss": 30, "nodes": "followers"})
                ),
                (
                    8_000_000_000,
                    "truncate-log",
                    json!({"node": "n2", "bytes": 5})
                ),
                (9_000_000_000, "stop-partition", Value::Null),
            ]
        );
    }

    #[test]
    fn the_example_schedules_are_valid() {
        let text = include_str!("../../../suites/schedules/figure8.toml");
        let got = steps(text).unwrap();
        assert_eq!(got.len(), 6);
        assert_eq!(got[4].value, json!("previous-leader"));
    }

    #[test]
    fn bad_entries_name_the_file_line_and_what_is_allowed() {
        let err = steps("[[at]]\ntime = 1\nstart = \"flood\"\n").unwrap_err();
        assert!(
            err.starts_with("s.toml:1: unknown fault `flood`; expected one of partition"),
            "{err}"
        );
        let err = steps("[[at]]\ntime = 1\nstart = \"kill\"\n\n[[at]]\ntime = 2\nstart = \"kill\"\ntarget = \"most\"\n").unwrap_err();
        assert!(
            err.starts_with(
                "s.toml:5: target \"most\" for kill: expected node names or one of one,"
            ),
            "{err}"
        );
        assert!(err.contains("previous-leader"), "{err}");
        let err = steps("[[at]]\ntime = 1\nstop = \"kill\"\ntarget = \"one\"\n").unwrap_err();
        assert!(err.contains("`start` takes no target"), "{err}");
        let err = steps("[[at]]\ntime = 1\nstart = \"kill\"\nstop = \"kill\"\n").unwrap_err();
        assert!(err.contains("exactly one of start"), "{err}");
        let err = steps("[[at]]\ntime = -1\nstart = \"kill\"\n").unwrap_err();
        assert!(err.contains("time = -1"), "{err}");
        let err = steps("[[at]]\ntime = 1\nbegin = \"kill\"\n").unwrap_err();
        assert!(err.starts_with("s.toml:3: unknown field `begin`"), "{err}");
        let err = steps("[[at]]\ntime = 1\nf = \"explode\"\n").unwrap_err();
        assert!(
            err.contains("unknown f `explode`; expected one of start-partition"),
            "{err}"
        );
        let err =
            steps("[[at]]\ntime = 1\nstart = \"partition\"\ntarget = \"square\"\n").unwrap_err();
        assert!(err.contains("minority-with-leader"), "{err}");
    }

    #[test]
    fn faults_that_delay_packets_may_not_overlap() {
        let packet_then_figure8 = "[[at]]\ntime = 1\nstart = \"packet\"\n\n\
                                   [[at]]\ntime = 2\nstart = \"figure8\"\n\n\
                                   [[at]]\ntime = 3\nstop = \"packet\"\n";
        let err = steps(packet_then_figure8).unwrap_err();
        assert!(
            err.starts_with(
                "s.toml:5: `figure8` at 2 s would overlap `packet` (started on line 1)"
            ),
            "{err}"
        );
        // In time order, whatever the file's order.
        let err = steps(
            "[[at]]\ntime = 5\nstart = \"vote-kill\"\n\n[[at]]\ntime = 1\nstart = \"packet\"\n",
        )
        .unwrap_err();
        assert!(err.starts_with("s.toml:1: `vote-kill`"), "{err}");
        // One after the other is fine, and so is a partition beside either.
        steps(
            "[[at]]\ntime = 1\nstart = \"packet\"\n\n[[at]]\ntime = 2\nstop = \"packet\"\n\n\
             [[at]]\ntime = 2\nstart = \"figure8\"\n\n[[at]]\ntime = 2.5\nstart = \"partition\"\n",
        )
        .unwrap();
    }
}
