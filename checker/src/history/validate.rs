//! The rules a history obeys beyond each line's own shape.

use std::collections::{HashMap, HashSet};

use super::op::{Key, Op, OpType, Process};

/// An operation a process has invoked and not yet completed.
#[derive(Debug, Clone)]
struct Open {
    f: String,
    key: Option<Key>,
    line: usize,
}

/// Checks, event by event, the rules of `shared/spec/history.md`: dense `index`,
/// non-decreasing `time`, one open operation per process, completions matching their
/// invocation, and no use of a process after an `info`.
#[derive(Debug, Default)]
pub struct Validator {
    /// Whether `time` may step back (imported histories, whose order is the file's).
    time_may_step_back: bool,
    next_index: u64,
    last_time: Option<i64>,
    open: HashMap<u64, Open>,
    retired: HashMap<u64, usize>,
    seen_processes: HashSet<u64>,
}

impl Validator {
    /// A validator expecting index 0 next.
    pub fn new() -> Validator {
        Validator::default()
    }

    /// A validator for histories imported from Jepsen's EDN, where `time` comes from
    /// several threads' clocks and may step back from one line to the next: the file's
    /// order is the history's order, and `time` is only drawn.
    pub fn imported() -> Validator {
        Validator {
            time_may_step_back: true,
            ..Validator::default()
        }
    }

    /// Accounts for a line that could not be parsed into an event, so that the next
    /// line's index is still expected to follow it.
    pub fn skip_line(&mut self) {
        self.next_index += 1;
    }

    /// Checks the next event, found at `line`. Returns every rule it breaks.
    ///
    /// The validator's state advances even when the event is wrong, so that one bad line
    /// does not make every later line wrong too.
    pub fn check(&mut self, op: &Op, line: usize) -> Vec<String> {
        let mut problems = Vec::new();
        if op.index != self.next_index {
            problems.push(format!(
                "`index` is {}, expected {} (indices are dense from 0, one per line)",
                op.index, self.next_index
            ));
        }
        self.next_index = op.index.max(self.next_index) + 1;
        if let Some(last) = self.last_time
            && op.time < last
            && !self.time_may_step_back
        {
            problems.push(format!(
                "`time` {} is earlier than the previous line's {last} (time never decreases)",
                op.time
            ));
        }
        self.last_time = Some(self.last_time.map_or(op.time, |t| t.max(op.time)));
        let Process::Client(process) = op.process else {
            if matches!(op.op_type, OpType::Ok | OpType::Fail) {
                problems.push(format!(
                    "the nemesis logs `invoke` and `info` events, not `{}`",
                    op.op_type
                ));
            }
            return problems;
        };
        self.seen_processes.insert(process);
        if let Some(info_line) = self.retired.get(&process) {
            problems.push(format!(
                "process {process} is used again after its `info` on line {info_line} (a crashed process is retired; use a fresh process number)"
            ));
        }
        match op.op_type {
            OpType::Invoke => {
                if let Some(open) = self.open.get(&process) {
                    problems.push(format!(
                        "process {process} invokes `{}` while its `{}` from line {} is still open (one operation at a time per process)",
                        op.f, open.f, open.line
                    ));
                }
                self.open.insert(
                    process,
                    Open {
                        f: op.f.clone(),
                        key: op.key.clone(),
                        line,
                    },
                );
            }
            completion => {
                match self.open.remove(&process) {
                    None => problems.push(format!(
                        "`{completion}` completion for process {process} without an open invocation (duplicate completion, or the invoke is missing)"
                    )),
                    Some(open) => {
                        if open.f != op.f {
                            problems.push(format!(
                                "completion `f` is \"{}\" but the invocation on line {} was \"{}\"",
                                op.f, open.line, open.f
                            ));
                        }
                        if open.key != op.key {
                            problems.push(format!(
                                "completion `key` is {} but the invocation on line {} had {}",
                                show_key(&op.key),
                                open.line,
                                show_key(&open.key)
                            ));
                        }
                    }
                }
                if completion == OpType::Info {
                    self.retired.insert(process, line);
                }
            }
        }
        problems
    }
}

fn show_key(key: &Option<Key>) -> String {
    match key {
        None => "no key".to_string(),
        Some(k) => k.to_json().to_string(),
    }
}
