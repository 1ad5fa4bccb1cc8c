//! How much uncertainty a run created, computed from its history alone (so it is right
//! for any run, whatever the clients and faults): the share of client operations that
//! ended `info` (indeterminate), overall and per `f`, and how many client operations
//! were in flight (invoked, not yet completed) when each fault started. Consensus bugs
//! live in operations that are in flight across a leader change; a run with none
//! cannot find them. Written into `results.json`'s `run` (see `docs/reports.md`).

use std::collections::{BTreeMap, HashSet};

use faultline_checker::{Op, OpType, Process};
use serde::Serialize;

/// `info` against completed operations, for one `f` or for all.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct InfoCount {
    /// Client operations completed (`ok`, `fail` or `info`).
    pub completed: u64,
    /// Of those, completed `info`.
    pub info: u64,
    /// `info / completed` (0 when nothing completed).
    pub rate: f64,
}

impl InfoCount {
    fn add(&mut self, info: bool) {
        self.completed += 1;
        self.info += u64::from(info);
        self.rate = self.info as f64 / self.completed as f64;
    }
}

/// One fault's start and the client operations in flight at that moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InFlight {
    /// The nemesis invocation's index in the history.
    pub index: u64,
    /// Its time, in seconds since the test started.
    pub time: f64,
    /// The fault started, e.g. `start-partition`, `kill`.
    pub f: String,
    /// Client operations invoked and not completed at that point.
    pub in_flight: u64,
}

/// The run's uncertainty figures (flattened into `results.json`'s `run`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Uncertainty {
    /// `info` / completed client operations.
    pub info_rate: f64,
    /// The same per client `f`.
    pub info_by_f: BTreeMap<String, InfoCount>,
    /// Each nemesis operation that starts a fault, in history order.
    pub in_flight_at_faults: Vec<InFlight>,
    /// The sum of their `in_flight`.
    pub in_flight_at_faults_total: u64,
}

/// True when the nemesis `f` starts (rather than ends) a fault: anything but the stops
/// (`stop-…`, `start` after a kill, `resume`, `power-on`, `reset-clock`,
/// `restore-log`, `heal`), so that new faults count without being listed here.
pub fn starts_fault(f: &str) -> bool {
    !(f.starts_with("stop-")
        || matches!(
            f,
            "start" | "resume" | "power-on" | "reset-clock" | "restore-log" | "heal"
        ))
}

/// The uncertainty figures of the history `ops` (in index order).
pub fn uncertainty(ops: &[Op]) -> Uncertainty {
    let mut out = Uncertainty::default();
    let mut all = InfoCount::default();
    let mut open: HashSet<u64> = HashSet::new();
    for op in ops {
        match (op.process, op.op_type) {
            (Process::Client(p), OpType::Invoke) => {
                open.insert(p);
            }
            (Process::Client(p), done) => {
                open.remove(&p);
                let info = done == OpType::Info;
                all.add(info);
                out.info_by_f.entry(op.f.clone()).or_default().add(info);
            }
            (Process::Nemesis, OpType::Invoke) if starts_fault(&op.f) => {
                let in_flight = open.len() as u64;
                out.in_flight_at_faults_total += in_flight;
                out.in_flight_at_faults.push(InFlight {
                    index: op.index,
                    time: op.time as f64 / 1e9,
                    f: op.f.clone(),
                    in_flight,
                });
            }
            (Process::Nemesis, _) => {}
        }
    }
    out.info_rate = all.rate;
    out
}

/// One line for people: `info 2.5 % (3 of 120: write 5.0 %, read 0.0 %); 14 client
/// operation(s) in flight at 4 fault start(s)`.
pub fn summary(u: &Uncertainty) -> String {
    let completed: u64 = u.info_by_f.values().map(|c| c.completed).sum();
    let info: u64 = u.info_by_f.values().map(|c| c.info).sum();
    let per_f: Vec<String> = u
        .info_by_f
        .iter()
        .map(|(f, c)| format!("{f} {:.1} %", c.rate * 100.0))
        .collect();
    let per_f = if per_f.is_empty() {
        String::new()
    } else {
        format!(": {}", per_f.join(", "))
    };
    format!(
        "info {:.1} % ({info} of {completed}{per_f}); {} client operation(s) in flight at {} fault start(s)",
        u.info_rate * 100.0,
        u.in_flight_at_faults_total,
        u.in_flight_at_faults.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn op(index: u64, process: Process, op_type: OpType, f: &str) -> Op {
        Op::new(
            index,
            index as i64 * 1_000_000_000,
            process,
            op_type,
            f,
            json!(null),
        )
    }

    #[test]
    fn counts_info_per_f_and_operations_in_flight_at_each_fault_start() {
        use OpType::{Info, Invoke, Ok};
        use Process::{Client, Nemesis};
        let ops = vec![
            op(0, Client(0), Invoke, "write"),
            op(1, Client(1), Invoke, "read"),
            op(2, Nemesis, Invoke, "start-partition"),
            op(3, Nemesis, Info, "start-partition"),
            op(4, Client(1), Ok, "read"),
            op(5, Client(0), Info, "write"),
            op(6, Client(2), Invoke, "write"),
            // A stop is no fault start; the kill sees the one write in flight.
            op(7, Nemesis, Invoke, "stop-partition"),
            op(8, Nemesis, Info, "stop-partition"),
            op(9, Nemesis, Invoke, "kill"),
            op(10, Nemesis, Info, "kill"),
            op(11, Client(2), OpType::Fail, "write"),
            op(12, Nemesis, Invoke, "start"),
        ];
        let u = uncertainty(&ops);
        assert_eq!(u.info_rate, 1.0 / 3.0);
        assert_eq!(
            u.info_by_f["write"],
            InfoCount {
                completed: 2,
                info: 1,
                rate: 0.5
            }
        );
        assert_eq!(u.info_by_f["read"].info, 0);
        let at: Vec<(&str, u64, f64)> = u
            .in_flight_at_faults
            .iter()
            .map(|i| (i.f.as_str(), i.in_flight, i.time))
            .collect();
        assert_eq!(at, [("start-partition", 2, 2.0), ("kill", 1, 9.0)]);
        assert_eq!(u.in_flight_at_faults_total, 3);
        assert_eq!(
            summary(&u),
            "info 33.3 % (1 of 3: read 0.0 %, write 50.0 %); 3 client operation(s) in flight at 2 fault start(s)"
        );
    }

    #[test]
    fn an_empty_history_has_no_uncertainty() {
        let u = uncertainty(&[]);
        assert_eq!(u, Uncertainty::default());
        assert_eq!(
            summary(&u),
            "info 0.0 % (0 of 0); 0 client operation(s) in flight at 0 fault start(s)"
        );
    }

    #[test]
    fn stops_are_told_from_starts() {
        for f in [
            "start-partition",
            "kill",
            "pause",
            "bump-clock",
            "truncate-log",
        ] {
            assert!(starts_fault(f), "{f}");
        }
        for f in [
            "stop-partition",
            "start",
            "resume",
            "reset-clock",
            "restore-log",
        ] {
            assert!(!starts_fault(f), "{f}");
        }
    }
}
