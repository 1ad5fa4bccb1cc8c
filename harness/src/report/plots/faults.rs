//! Fault intervals: the nemesis's starts paired with their stops, shaded on time plots.

use faultline_checker::{History, OpType, Process};
use serde::Serialize;
use serde_json::Value;

use super::{seconds, truncate};

/// A fault in place from `start` to `end` (seconds).
#[derive(Debug, Clone, Serialize)]
pub struct FaultInterval {
    /// When the fault was in place.
    pub start: f64,
    /// When it was lifted (or the history ended).
    pub end: f64,
    /// The fault and its targets, e.g. `start-partition [["n1"],["n2","n3"]]`.
    pub label: String,
    /// True when the history ended before the fault was lifted.
    pub open: bool,
}

/// The fault that `f` lifts, when `f` is a stop.
fn started_by(stop: &str) -> Option<String> {
    match stop {
        "start" => Some("kill".into()),
        "resume" => Some("pause".into()),
        "power-on" => Some("power-loss".into()),
        _ => stop
            .strip_prefix("stop-")
            .map(|rest| format!("start-{rest}")),
    }
}

/// True when `f` begins a fault.
fn is_start(f: &str) -> bool {
    matches!(f, "kill" | "pause" | "power-loss") || f.starts_with("start-")
}

/// The fault intervals of the nemesis's `info` lines: from a start (`start-partition`,
/// `kill`, `pause`, …) to the matching stop (`stop-partition`, `start`, `resume`), or
/// to the end of the history.
pub fn fault_intervals(history: &History) -> Vec<FaultInterval> {
    let end = history.ops().last().map_or(0.0, |op| seconds(op.time));
    let mut open: Vec<(String, FaultInterval)> = Vec::new();
    let mut done = Vec::new();
    for op in history.ops() {
        if op.process != Process::Nemesis || op.op_type != OpType::Info {
            continue;
        }
        let at = seconds(op.time);
        if is_start(&op.f) {
            open.push((
                op.f.clone(),
                FaultInterval {
                    start: at,
                    end,
                    label: fault_label(&op.f, &op.value),
                    open: true,
                },
            ));
        } else if let Some(start) = started_by(&op.f) {
            let (closing, still): (Vec<_>, Vec<_>) =
                open.into_iter().partition(|(f, _)| *f == start);
            open = still;
            for (_, mut interval) in closing {
                interval.end = at;
                interval.open = false;
                done.push(interval);
            }
        }
    }
    done.extend(open.into_iter().map(|(_, interval)| interval));
    done.sort_by(|a, b| a.start.total_cmp(&b.start));
    done
}

fn fault_label(f: &str, value: &Value) -> String {
    let mut label = f.to_string();
    if !value.is_null() {
        let text = value.to_string();
        label.push(' ');
        label.push_str(&truncate(&text, 80));
    }
    label
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_checker::Op;
    use serde_json::json;

    fn nemesis(index: u64, time: i64, f: &str) -> Op {
        Op::new(index, time, Process::Nemesis, OpType::Info, f, json!(null))
    }

    #[test]
    fn faults_pair_starts_with_their_stops() {
        let ops = vec![
            nemesis(0, 1_000_000_000, "start-partition"),
            nemesis(1, 2_000_000_000, "kill"),
            nemesis(2, 3_000_000_000, "stop-partition"),
            nemesis(3, 4_000_000_000, "pause"),
            nemesis(4, 5_000_000_000, "start"),
            nemesis(5, 6_000_000_000, "read-only"),
        ];
        let history = History::from_ops("t", ops).unwrap();
        let faults = fault_intervals(&history);
        let spans: Vec<(f64, f64, bool)> =
            faults.iter().map(|f| (f.start, f.end, f.open)).collect();
        assert_eq!(
            spans,
            vec![(1.0, 3.0, false), (2.0, 5.0, false), (4.0, 6.0, true)]
        );
        assert_eq!(faults[2].label, "pause");
    }
}
