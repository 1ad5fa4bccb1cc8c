//! Importing Jepsen's `history.edn` (and Knossos's and Elle's EDN histories), with the
//! meaning Jepsen gives them. `docs/checking-jepsen.md` has the whole table.
//!
//! - Layout: one operation map after another (several may share a line, one may span
//!   lines), or one vector or list of maps; `;` comments and `#_` anywhere.
//! - Order: the file's order is the history's order, as in Jepsen, where `:index` is the
//!   position. Events are numbered densely from 0; an `:index` that differs (absent,
//!   sparse, not from 0) is kept as `jepsen_index`. `:time` comes from several threads'
//!   clocks and may step back; it is kept as written and only drawn in reports. A
//!   missing `:time` is the previous event's plus one.
//! - `:process :nemesis` becomes `"nemesis"`. A history with no `:process` at all (Elle's
//!   hand-written ones) is one process. A process that invokes again after an `:info`
//!   gets a fresh number (its operations are independent, as Jepsen's are), keeping the
//!   original as `jepsen_process`.
//! - `:f` may be absent when the value is a transaction (a vector of `[f k v]`
//!   micro-ops): it becomes `"txn"`.
//! - Independent histories (`jepsen.independent`) carry `[k v]` tuples as values. A
//!   history is read as independent when every client operation's value is a two-element
//!   vector whose first element is a string or number (and not every operation is a
//!   `cas` of two plain values, a cas-register history's `[old new]`); the tuple then
//!   becomes `key` and `value`. Ordinary register histories never look like that,
//!   because their reads are invoked with `nil`.

mod atoms;
mod forms;
mod write;

pub use write::to_edn;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Cursor};
use std::path::Path;

#[cfg(test)]
use serde_json::Map;
use serde_json::Value;

use self::forms::FormReader;
use super::input::{LineSource, MemoryBudget, ReadLimits};
use super::op::{Op, OpType, Process};
use super::parse::op_from_object;
use super::{History, HistoryError, InputError, MAX_REPORTED_PROBLEMS, Validator};

/// Reads and validates an EDN history file, with the default [`ReadLimits`].
pub fn read_edn_file(path: &Path) -> Result<History, InputError> {
    read_edn_file_with(path, &ReadLimits::default())
}

/// Reads and validates an EDN history file within `limits`.
pub fn read_edn_file_with(path: &Path, limits: &ReadLimits) -> Result<History, InputError> {
    let file = File::open(path).map_err(|e| InputError::Io {
        source_name: path.display().to_string(),
        message: e.to_string(),
    })?;
    read_edn(
        &path.display().to_string(),
        BufReader::with_capacity(1 << 20, file),
        limits,
    )
}

/// Reads and validates an EDN history held in memory; `source_name` names it in errors.
pub fn read_edn_str(source_name: &str, text: &str) -> Result<History, InputError> {
    read_edn(
        source_name,
        Cursor::new(text.as_bytes()),
        &ReadLimits::default(),
    )
}

/// Reads and validates an EDN history from `input` within `limits`.
pub fn read_edn<R: BufRead>(
    source_name: &str,
    input: R,
    limits: &ReadLimits,
) -> Result<History, InputError> {
    let mut problems = Problems::new(source_name);
    let imported = match read_ops(input, limits, &mut problems) {
        Some(imported) if problems.is_empty() => imported,
        _ => return Err(problems.into_error()),
    };
    let mut ops: Vec<Op> = Vec::with_capacity(imported.len());
    let mut lines = Vec::with_capacity(imported.len());
    let mut one_process = Vec::with_capacity(imported.len());
    for item in imported {
        lines.push(item.line);
        one_process.push(item.no_process);
        ops.push(item.op);
    }
    lift_independent_tuples(&mut ops);
    if let Err((position, message)) = renumber(&mut ops, &one_process) {
        problems.push(lines.get(position).copied().unwrap_or(0), message);
        return Err(problems.into_error());
    }
    let mut validator = Validator::imported();
    for (op, &line) in ops.iter().zip(&lines) {
        for message in validator.check(op, line) {
            problems.push(line, message);
        }
    }
    if problems.is_empty() {
        Ok(History::from_parts(source_name.to_string(), ops, lines))
    } else {
        Err(problems.into_error())
    }
}

/// An operation as read, before the history-wide passes.
struct Imported {
    line: usize,
    op: Op,
    /// The map had no `:process`.
    no_process: bool,
}

/// Reads every operation map; `None` when reading had to stop (the reason is in
/// `problems`).
fn read_ops<R: BufRead>(
    input: R,
    limits: &ReadLimits,
    problems: &mut Problems,
) -> Option<Vec<Imported>> {
    let mut budget = MemoryBudget::new(limits.memory_bytes);
    let mut imported = Vec::new();
    let read = each_op(input, limits, &mut budget, |budget, start, op| {
        match op {
            Ok((op, no_process)) => {
                budget.charge(&op);
                imported.push(Imported {
                    line: start,
                    op,
                    no_process,
                });
            }
            Err(message) => problems.push(start, message),
        }
        Ok(())
    });
    match read {
        Ok(()) => Some(imported),
        Err((line, message)) => {
            problems.push(line, message);
            None
        }
    }
}

/// Reads the operation maps of `input` in file order and hands each to `each`, with
/// the line it starts on, as [`import_op`] converts it (with whether the map had no
/// `:process`), or why it could not. Every line is admitted by `budget` first. A
/// problem with the text itself (not UTF-8, too long, not EDN) stops reading, as does
/// an error `each` returns: the error is returned with its line.
pub(crate) fn each_op<R: BufRead>(
    input: R,
    limits: &ReadLimits,
    budget: &mut MemoryBudget,
    mut each: impl FnMut(
        &mut MemoryBudget,
        usize,
        Result<(Op, bool), String>,
    ) -> Result<(), (usize, String)>,
) -> Result<(), (usize, String)> {
    let mut lines = LineSource::new(input, limits.max_line_bytes);
    let mut reader = FormReader::new(limits.max_line_bytes);
    let mut forms = Vec::new();
    let mut last_time: i64 = -1;
    while let Some(line) = lines.next() {
        let number = line.number;
        // Any problem with the text itself stops reading: a form may span the line.
        let text = line.text.map_err(|error| (number, error.message()))?;
        budget
            .admit(text.len())
            .map_err(|message| (number, message))?;
        reader
            .feed(number, text, &mut forms)
            .map_err(|message| (number, format!("not valid EDN: {message}")))?;
        for (start, value) in forms.drain(..) {
            each(budget, start, import_op(value, &mut last_time))?;
        }
    }
    reader
        .finish()
        .map_err(|(line, message)| (line, format!("not valid EDN: {message}")))
}

/// Converts one operation map into an event, filling what Jepsen leaves out. Returns
/// whether the map had no `:process`.
fn import_op(value: Value, last_time: &mut i64) -> Result<(Op, bool), String> {
    let Value::Object(mut object) = value else {
        return Err(format!(
            "expected an operation map, got {}",
            super::parse::describe(&value)
        ));
    };
    for field in ["error", "node"] {
        if let Some(value) = object.get_mut(field)
            && !matches!(value, Value::Null | Value::String(_))
        {
            *value = Value::String(value.to_string());
        }
    }
    let original_index = object.remove("index");
    object.insert("index".into(), Value::from(0u64));
    match object.get("time") {
        Some(Value::Number(n)) => {
            if let Some(t) = n.as_i64() {
                *last_time = t;
            }
        }
        Some(_) => {}
        None => {
            *last_time = last_time.saturating_add(1);
            object.insert("time".into(), Value::from(*last_time));
        }
    }
    let no_process = !object.contains_key("process");
    if no_process {
        object.insert("process".into(), Value::from(0u64));
    }
    if !object.contains_key("f") && object.get("value").is_some_and(is_transaction) {
        object.insert("f".into(), Value::from("txn"));
    }
    let mut op = op_from_object(object).map_err(|message| {
        if message == "missing required field `f`" {
            "missing `:f`: only a transaction (a vector of [f k v] micro-ops) may leave it out"
                .to_string()
        } else {
            message
        }
    })?;
    if let Some(index) = original_index {
        op.extra.insert("jepsen_index".into(), index);
    }
    Ok((op, no_process))
}

/// A transaction: a vector of `[f k v]` micro-ops, each `f` a name.
fn is_transaction(value: &Value) -> bool {
    matches!(value, Value::Array(mops) if !mops.is_empty() && mops.iter().all(|mop| {
        matches!(mop, Value::Array(parts) if parts.len() == 3 && parts[0].is_string())
    }))
}

/// Numbers the events densely in file order, and gives processes their numbers (see
/// [`ProcessNumbers`]). The original `:index` is kept only where it differs.
fn renumber(ops: &mut [Op], no_process: &[bool]) -> Result<(), (usize, String)> {
    let mut numbers = ProcessNumbers::default();
    let mut originals = Vec::with_capacity(ops.len());
    for (position, (op, &none)) in ops.iter_mut().zip(no_process).enumerate() {
        let index = position as u64;
        if op.extra.get("jepsen_index").and_then(Value::as_u64) == Some(index) {
            op.extra.remove("jepsen_index");
        }
        op.index = index;
        let Process::Client(original) = op.process else {
            originals.push(None);
            continue;
        };
        let original = (!none).then_some(original);
        let provisional = numbers
            .assign(original, op.op_type)
            .map_err(|message| (position, message))?;
        op.process = Process::Client(provisional);
        originals.push(original);
    }
    for (op, original) in ops.iter_mut().zip(originals) {
        let Process::Client(provisional) = op.process else {
            continue;
        };
        let assigned = numbers.resolve(provisional);
        op.process = Process::Client(assigned);
        if let Some(original) = original
            && original != assigned
        {
            op.extra
                .insert("jepsen_process".into(), Value::from(original));
        }
    }
    Ok(())
}

/// Jepsen's client processes made ours, one event at a time, as Jepsen means them:
/// maps without `:process` share one process, numbered after the highest process in
/// the file; a process that invokes again after an `:info` gets a fresh number (its
/// operations are independent), the fresh numbers following that one.
///
/// Those numbers depend on the highest process in the whole file, so
/// [`ProcessNumbers::assign`] gives provisional numbers at or above [`PROVISIONAL`]
/// for them, and [`ProcessNumbers::resolve`], once every event has been assigned,
/// turns a provisional number into the final one. Numbers written in the file below
/// [`PROVISIONAL`] stay as they are.
#[derive(Debug, Default)]
pub(crate) struct ProcessNumbers {
    /// The highest process written in the file.
    highest: Option<u64>,
    /// Whether some map had no `:process`.
    any_missing: bool,
    /// Each original process (or [`PROVISIONAL`] for "none") and its number now.
    current: HashMap<u64, u64>,
    /// Numbers whose last operation crashed.
    retired: HashSet<u64>,
    /// Fresh numbers given so far.
    fresh: u64,
}

/// The first provisional number: the shared process of maps without `:process`; the
/// fresh ones follow it. A file's own process numbers must stay below it.
pub(crate) const PROVISIONAL: u64 = 1 << 62;

impl ProcessNumbers {
    /// The (possibly provisional) number of a client event of `original` (`None`: the
    /// map had no `:process`) and type `op_type`, given in file order.
    pub(crate) fn assign(&mut self, original: Option<u64>, op_type: OpType) -> Result<u64, String> {
        let original = match original {
            Some(p) if p >= PROVISIONAL => {
                return Err(format!(
                    "process {p} is too large: process numbers must be below {PROVISIONAL}"
                ));
            }
            Some(p) => {
                self.highest = self.highest.max(Some(p));
                p
            }
            None => {
                self.any_missing = true;
                PROVISIONAL
            }
        };
        let mut assigned = *self.current.entry(original).or_insert(original);
        if op_type == OpType::Invoke && self.retired.contains(&assigned) {
            assigned = PROVISIONAL + 1 + self.fresh;
            self.fresh += 1;
            self.current.insert(original, assigned);
        }
        if op_type == OpType::Info {
            self.retired.insert(assigned);
        }
        Ok(assigned)
    }

    /// The final number of a number [`ProcessNumbers::assign`] gave, once it has seen
    /// every event.
    pub(crate) fn resolve(&self, provisional: u64) -> u64 {
        if provisional < PROVISIONAL {
            return provisional;
        }
        let shared = self.highest.map_or(0, |p| p + 1);
        if provisional == PROVISIONAL {
            return shared;
        }
        shared + u64::from(self.any_missing) + (provisional - PROVISIONAL - 1)
    }
}

/// Moves `[k v]` tuples into `key` and `value` when every client operation has one.
fn lift_independent_tuples(ops: &mut [Op]) {
    let is_tuple = |op: &Op| {
        matches!(&op.value, Value::Array(items) if items.len() == 2
            && matches!(items[0], Value::String(_) | Value::Number(_)))
    };
    // A cas-register history of only `cas` has `[old new]` pairs; an independent one
    // has `[k [old new]]`.
    let plain_cas =
        |op: &Op| op.f == "cas" && matches!(&op.value, Value::Array(items) if !items[1].is_array());
    let mut clients = ops.iter().filter(|op| op.is_client()).peekable();
    if clients.peek().is_none()
        || !clients.all(is_tuple)
        || ops.iter().filter(|op| op.is_client()).all(plain_cas)
        || ops.iter().any(|op| op.key.is_some())
    {
        return;
    }
    for op in ops.iter_mut().filter(|op| op.is_client()) {
        if let Value::Array(mut items) = std::mem::take(&mut op.value) {
            op.value = items.pop().unwrap_or(Value::Null);
            op.key = items.pop().as_ref().and_then(super::op::Key::from_json);
        }
    }
}

/// Problems found, up to [`MAX_REPORTED_PROBLEMS`].
struct Problems {
    source_name: String,
    kept: Vec<HistoryError>,
    more: usize,
}

impl Problems {
    fn new(source_name: &str) -> Problems {
        Problems {
            source_name: source_name.to_string(),
            kept: Vec::new(),
            more: 0,
        }
    }

    fn push(&mut self, line: usize, message: String) {
        if self.kept.len() < MAX_REPORTED_PROBLEMS {
            self.kept.push(HistoryError {
                source_name: self.source_name.clone(),
                line,
                message,
            });
        } else {
            self.more += 1;
        }
    }

    fn is_empty(&self) -> bool {
        self.kept.is_empty() && self.more == 0
    }

    fn into_error(self) -> InputError {
        InputError::Invalid {
            problems: self.kept,
            more: self.more,
        }
    }
}

/// Converts an operation's JSON object back to the map shape tests compare with.
#[cfg(test)]
fn object_of(op: &Op) -> Map<String, Value> {
    match serde_json::to_value(op) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(text: &str) -> Vec<Map<String, Value>> {
        read_edn_str("h.edn", text)
            .unwrap()
            .ops()
            .iter()
            .map(object_of)
            .collect()
    }

    #[test]
    fn processes_are_renumbered_after_info_and_missing_ones_shared() {
        let got = ops(concat!(
            "{:type :invoke, :f :read, :process 1}\n",
            "{:type :info, :f :read, :process 1}\n",
            "{:type :invoke, :f :read, :process 1}\n",
            "{:type :ok, :f :read, :process 1, :value 3}\n",
        ));
        assert_eq!(got[2]["process"], 2);
        assert_eq!(got[2]["jepsen_process"], 1);
        assert_eq!(got[3]["process"], 2);
        let got = ops(concat!(
            "{:type :invoke, :value [[:append 1 2]]}\n",
            "{:type :ok, :value [[:append 1 2]]}\n",
        ));
        assert_eq!(got[0]["process"], 0);
        assert_eq!(got[0]["f"], "txn");
    }

    #[test]
    fn sparse_indices_are_kept_beside_the_dense_ones() {
        let got = ops(concat!(
            "{:index 10, :type :invoke, :f :read, :process 0}\n",
            "{:index 11, :type :ok, :f :read, :process 0, :value 1}\n",
        ));
        assert_eq!(got[1]["index"], 1);
        assert_eq!(got[1]["jepsen_index"], 11);
        let got = ops("{:index 0, :type :invoke, :f :read, :process 0}\n");
        assert!(!got[0].contains_key("jepsen_index"));
    }

    #[test]
    fn cas_pairs_are_not_independent_tuples() {
        let got = ops(concat!(
            "{:type :invoke, :f :cas, :process 0, :value [0 1]}\n",
            "{:type :ok, :f :cas, :process 0, :value [0 1]}\n",
        ));
        assert_eq!(got[0]["value"], serde_json::json!([0, 1]));
        assert!(!got[0].contains_key("key"));
        let got = ops(concat!(
            "{:type :invoke, :f :cas, :process 0, :value [7 [0 1]]}\n",
            "{:type :ok, :f :cas, :process 0, :value [7 [0 1]]}\n",
        ));
        assert_eq!(got[0]["key"], 7);
        assert_eq!(got[0]["value"], serde_json::json!([0, 1]));
    }

    #[test]
    fn time_may_step_back_and_missing_time_follows_the_previous() {
        let got = ops(concat!(
            "{:time 500, :type :invoke, :f :read, :process 0}\n",
            "{:time 200, :type :invoke, :f :read, :process 1}\n",
            "{:type :ok, :f :read, :process 0, :value 1}\n",
        ));
        assert_eq!(got[1]["time"], 200);
        assert_eq!(got[2]["time"], 201);
    }
}
