//! Replaying a run's faults: its `nemesis.jsonl` (the nemesis's `invoke` and `info`
//! lines) read as [`Step`]s that do again exactly what was done, at the same times, on
//! the same nodes and partitions (the `info` values, made invocation values:
//! `{"killed":["n3"]}` → `kill ["n3"]`), and written back as a TOML schedule to edit
//! ([`to_toml`]).

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Map, Value, json};

use super::file::ScheduleError;
use super::timeline::Step;
use crate::disk::START_DISK;
use crate::fault::Fault;

/// The steps replaying the nemesis lines `text` of `path` (a `nemesis.jsonl`, or a
/// whole `history.jsonl`: client lines are skipped). An invocation without its `info`
/// (the run stopped there) ends the replay.
pub fn parse(path: &Path, text: &str) -> Result<Vec<Step>, ScheduleError> {
    let error = |line: usize, message: String| ScheduleError {
        path: path.to_path_buf(),
        line: Some(line),
        message,
    };
    let mut steps = Vec::new();
    let mut open: Option<(usize, u64, String, Value)> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let op: Value =
            serde_json::from_str(line).map_err(|e| error(n, format!("not a history line: {e}")))?;
        if op["process"] != json!("nemesis") {
            continue;
        }
        let f = op["f"].as_str().ok_or_else(|| error(n, "no `f`".into()))?;
        let fault = Fault::of_f(f).ok_or_else(|| error(n, format!("no fault has f `{f}`")))?;
        match op["type"].as_str() {
            Some("invoke") => {
                let time = op["time"]
                    .as_u64()
                    .ok_or_else(|| error(n, "no `time`".into()))?;
                open = Some((n, time, f.to_string(), op["value"].clone()));
            }
            Some("info") => {
                let Some((_, time, invoked, _)) = open.take().filter(|o| o.2 == f) else {
                    return Err(error(n, format!("an `info` of {f} without its invocation")));
                };
                // A partition that found no leader to isolate did nothing.
                if fault == Fault::Partition && op["value"].get("isolated") == Some(&Value::Null) {
                    continue;
                }
                let (f, value) = fault.replayed(&invoked, &op["value"]);
                steps.push(Step { time, f, value });
            }
            other => return Err(error(n, format!("a nemesis line of type {other:?}"))),
        }
    }
    Ok(steps)
}

/// `info` without the keys that describe rather than ask.
fn without(info: &Value, keys: &[&str]) -> Value {
    match info {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| !keys.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The fields `keys` of `info` that are present.
fn only(info: &Value, keys: &[&str]) -> Value {
    let map: Map<String, Value> = keys
        .iter()
        .filter_map(|k| info.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect();
    Value::Object(map)
}

impl Fault {
    /// The operation that does again what `f` did, as its `info` value `info` says.
    /// Stops replay as they were (null); starts with the concrete nodes and settings
    /// chosen then. Not exact: a storm's bounces (its timer draws them again) and where
    /// `corrupt-log` flips bytes.
    pub fn replayed(self, f: &str, info: &Value) -> (String, Value) {
        let same = |value: Value| (f.to_string(), value);
        if f == self.stop_f() {
            return same(Value::Null);
        }
        match self {
            Fault::Partition => same(without(info, &["primaries", "role"])),
            Fault::Kill => same(info["killed"].clone()),
            Fault::Pause => same(info["paused"].clone()),
            Fault::Power => same(info["nodes"].clone()),
            Fault::Packet => same(only(
                info,
                &[
                    "loss",
                    "delay_ms",
                    "jitter_ms",
                    "distribution",
                    "rate",
                    "nodes",
                ],
            )),
            Fault::Clock => {
                let mut value = only(info, &["node", "delta_ms", "period_ms"]);
                if let Some(bumps) = info.get("nodes").and_then(Value::as_array) {
                    let bumps: Vec<Value> = bumps
                        .iter()
                        .map(|b| only(b, &["node", "delta_ms"]))
                        .collect();
                    value["nodes"] = Value::from(bumps);
                }
                same(value)
            }
            Fault::Disk => {
                let f = match info["fault"].as_str() {
                    Some(chosen) if f == START_DISK => chosen,
                    _ => f,
                };
                let mut value = only(info, &["node"]);
                if let Some(bytes) = info.get("truncated_bytes").or(info.get("bytes")) {
                    value["bytes"] = bytes.clone();
                } else if let Some(bytes) = info.get("torn_bytes") {
                    value["torn_bytes"] = bytes.clone();
                }
                (f.to_string(), value)
            }
            Fault::Storm => same(only(info, &["target", "period_ms", "down_ms", "trigger"])),
            // A scenario draws its rounds again: its knobs replay, not its choices.
            Fault::LeaderChurn
            | Fault::VoteKill
            | Fault::Flap
            | Fault::StaleLeader
            | Fault::Figure8 => same(Value::Null),
        }
    }
}

/// `steps` as a TOML schedule (`[[at]]` entries that [`super::file::parse`] reads back
/// into the same steps): `start`/`stop` where the `f` is a fault's, else `f`; node
/// lists and partition components as `target`, other values as `value`.
pub fn to_toml(steps: &[Step]) -> String {
    let mut out = String::from(
        "# A faultline schedule (docs/schedules.md). Times are seconds from the start of\n\
         # the workload; each entry starts or stops a fault.\n",
    );
    for step in steps {
        let _ = write!(out, "\n[[at]]\ntime = {}\n", seconds(step.time));
        let fault = Fault::of_f(&step.f);
        match fault {
            Some(fault) if fault.start_f() == step.f => {
                let _ = writeln!(out, "start = \"{}\"", fault.name());
            }
            Some(fault) if fault.stop_f() == step.f => {
                let _ = writeln!(out, "stop = \"{}\"", fault.name());
            }
            _ => {
                let _ = writeln!(out, "f = {}", json!(step.f));
            }
        }
        let isolated = step
            .value
            .as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.get("isolated"));
        let target = match (fault, &step.value) {
            (
                Some(Fault::Kill | Fault::Pause | Fault::Power),
                v @ (Value::Array(_) | Value::String(_)),
            ) => Some(v.clone()),
            (Some(Fault::Partition), Value::String(_)) => Some(step.value.clone()),
            (Some(Fault::Partition), _) => isolated.filter(|i| i.is_array()).cloned(),
            _ => None,
        };
        match (target, &step.value) {
            (Some(target), _) => {
                let _ = writeln!(out, "target = {}", inline(&target));
            }
            (None, Value::Null) => {}
            (None, value) => {
                let _ = writeln!(out, "value = {}", inline(value));
            }
        }
    }
    out
}

/// Nanoseconds as seconds, exact to the nanosecond, without trailing zeros.
fn seconds(ns: u64) -> String {
    let text = format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000);
    let text = text.trim_end_matches('0');
    if text.ends_with('.') {
        format!("{text}0")
    } else {
        text.to_string()
    }
}

/// A TOML key: bare when it can be, else quoted.
fn key(k: &str) -> String {
    let bare = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        k.to_string()
    } else {
        json!(k).to_string()
    }
}

/// A JSON value as a TOML inline value (nulls dropped: TOML has none).
fn inline(value: &Value) -> String {
    match value {
        Value::Null => "\"\"".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => json!(s).to_string(),
        Value::Array(a) => {
            let items: Vec<String> = a.iter().filter(|v| !v.is_null()).map(inline).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(o) => {
            let items: Vec<String> = o
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("{} = {}", key(k), inline(v)))
                .collect();
            format!("{{ {} }}", items.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use faultline_checker::history::{Op, OpType};
    use faultline_generator::sim::{Simulation, invocations};
    use faultline_generator::{BoxGen, Generator, nemesis, phases, time_limit};

    use super::*;
    use crate::schedule::{composed, final_heal, timeline};

    /// What a real nemesis could have answered to `f`, the `k`th operation: concrete
    /// nodes and settings.
    fn answer(f: &str, k: usize) -> Value {
        let node = format!("n{}", k % 5 + 1);
        match f {
            "start-partition" if k % 2 == 0 => json!({"isolated": [[node], ["n9"]]}),
            "start-partition" => json!({"one-way": {"from": [node], "to": ["n9"]}}),
            "kill" => json!({"killed": [node]}),
            "pause" => json!({"paused": [node, "n9"]}),
            "start-packet" => json!({"loss": 30, "nodes": [node]}),
            "bump-clock" => json!({"node": node, "delta_ms": -4000, "offset_ms": -4000}),
            "start-disk" => {
                json!({"node": node, "truncated_bytes": k, "fault": "truncate-log", "size": 99})
            }
            "power-loss" => json!({"target": "one", "nodes": [node], "files": 2, "lost": []}),
            "start-storm" => {
                json!({"target": "one", "period_ms": 100, "down_ms": 0, "trigger": "timer"})
            }
            _ => json!({"stopped": k}),
        }
    }

    /// The nemesis's operations of a 4-minute composed run of every fault, then the
    /// final heal (`steps`: a timeline instead of the random schedule).
    fn run(steps: Option<Vec<Step>>) -> Vec<Op> {
        let main: BoxGen = match steps {
            Some(steps) => timeline(steps).boxed(),
            None => composed(&Fault::ALL, Duration::from_secs(5)).boxed(),
        };
        let mut test = phases(vec![
            time_limit(Duration::from_secs(240), nemesis(main)).boxed(),
            final_heal(&Fault::ALL),
        ]);
        Simulation::new(11).nemesis(true).run(&mut test).unwrap()
    }

    #[test]
    fn a_recorded_run_converts_to_a_schedule_that_replays_it() {
        let mut recorded = run(None);
        let infos = recorded.iter_mut().filter(|op| op.op_type == OpType::Info);
        for (k, op) in infos.enumerate() {
            op.value = answer(&op.f, k);
        }
        let jsonl: String = recorded
            .iter()
            .map(|op| serde_json::to_string(op).unwrap() + "\n")
            .collect();
        let steps = parse(Path::new("nemesis.jsonl"), &jsonl).unwrap();
        assert!(steps.len() > 60, "{}", steps.len());
        let toml = to_toml(&steps);
        let read = super::super::file::parse(Path::new("s.toml"), &toml).unwrap();
        assert_eq!(read, steps, "{toml}");
        // The replay invokes the recorded operations, at the same times, with the
        // concrete values the recorded ones ended with.
        let replayed: Vec<(String, Value, i64)> = invocations(&run(Some(read)))
            .into_iter()
            .map(|op| (op.f, op.value, op.time))
            .collect();
        let infos: Vec<&Op> = recorded
            .iter()
            .filter(|op| op.op_type == OpType::Info)
            .collect();
        let expected: Vec<(String, Value, i64)> = invocations(&recorded)
            .into_iter()
            .zip(infos)
            .map(|(invoke, info)| {
                let (f, value) = Fault::of_f(&invoke.f)
                    .unwrap()
                    .replayed(&invoke.f, &info.value);
                (f, value, invoke.time)
            })
            .collect();
        assert_eq!(replayed, expected);
        assert!(
            expected
                .iter()
                .any(|(f, v, _)| f == "truncate-log" && v["bytes"].is_u64())
        );
        // A bump of several clocks replays each node's delta.
        let bumps = json!({"nodes": [{"node": "n1", "delta_ms": -2000, "offset_ms": -2000},
                                     {"node": "n3", "delta_ms": 4000, "offset_ms": 9000}]});
        assert_eq!(
            Fault::Clock.replayed("bump-clock", &bumps),
            (
                "bump-clock".to_string(),
                json!({"nodes": [{"node": "n1", "delta_ms": -2000}, {"node": "n3", "delta_ms": 4000}]})
            )
        );
        // A torn write replays with its length, a cut with its bytes.
        let torn = json!({"node": "n2", "torn_bytes": 7, "fault": "truncate-log", "size": 99});
        assert_eq!(
            Fault::Disk.replayed("start-disk", &torn),
            (
                "truncate-log".to_string(),
                json!({"node": "n2", "torn_bytes": 7})
            )
        );
        assert!(
            expected
                .iter()
                .any(|(f, v, _)| f == "pause" && v.is_array())
        );
    }

    #[test]
    fn bad_lines_name_the_line() {
        let path = Path::new("run/nemesis.jsonl");
        let err = parse(
            path,
            "{\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"kill\",\"time\":1}\n",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "run/nemesis.jsonl:1: an `info` of kill without its invocation"
        );
        let err = parse(path, "\nnot json\n").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("run/nemesis.jsonl:2: not a history line")
        );
        assert_eq!(seconds(5_000_000_000), "5.0");
        assert_eq!(seconds(12_345_678_901), "12.345678901");
    }
}
