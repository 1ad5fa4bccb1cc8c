//! Reading a JSONL list-append history into a [`TxnHistory`]: lines in batches, each
//! batch parsed on every core ([`super::line`]), then folded in order: validation,
//! pairing, key interning, micro-ops checked as the Elle checker checks them.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::mem;
use std::ops::Range;
use std::path::Path;

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde_json::Value;

use super::line::{ParsedLine, RawKey, RawMop, RawValue, ValueField, parse_line};
use super::{MicroOp, NEMESIS, NO_EVENT, NotCompact, Observed, TxnHistory, TxnRecord};
use crate::history::input::{LineSource, MemoryBudget, ReadLimits};
use crate::history::op::{OpType, Process};
use crate::history::validate::Validator;

/// Text read before a batch is parsed.
const BATCH_BYTES: usize = 4 << 20;

impl TxnHistory {
    /// Reads a JSONL list-append history within `limits`, or says why it cannot (see
    /// the module documentation): the caller then reads it with the general reader.
    pub fn read_list_append(path: &Path, limits: &ReadLimits) -> Result<TxnHistory, NotCompact> {
        let file = File::open(path).map_err(|e| NotCompact(format!("cannot open: {e}")))?;
        let size = file.metadata().map_or(0, |m| m.len());
        TxnHistory::read_list_append_sized(
            path.display().to_string(),
            BufReader::with_capacity(1 << 20, file),
            limits,
            size,
        )
    }

    /// Reads from `input` as [`TxnHistory::read_list_append`] does; `source` names it.
    ///
    /// Two stages overlap: while one batch is folded into the history, the next is
    /// read and parsed on the other cores.
    pub fn read_list_append_from<R: BufRead + Send>(
        source: String,
        input: R,
        limits: &ReadLimits,
    ) -> Result<TxnHistory, NotCompact> {
        TxnHistory::read_list_append_sized(source, input, limits, 0)
    }

    /// Reads `input`, of `size` bytes if known (else 0): after the first batch the
    /// arrays are sized for the whole input, so they do not grow (and copy) as often.
    /// For a caller that opens the file itself (to count what is read, say).
    pub fn read_list_append_sized<R: BufRead + Send>(
        source: String,
        input: R,
        limits: &ReadLimits,
        size: u64,
    ) -> Result<TxnHistory, NotCompact> {
        let mut lines = LineSource::new(input, limits.max_line_bytes);
        let mut builder = Builder::new(source, limits, Validator::new());
        let mut next = read_and_parse(&mut lines)?;
        let mut first = true;
        loop {
            let (
                Parsed {
                    batch,
                    lines: parsed,
                },
                more,
            ) = next;
            let (folded, after) = rayon::join(
                || builder.fold(&batch, parsed),
                || more.then(|| read_and_parse(&mut lines)),
            );
            folded?;
            if first {
                first = false;
                let read = batch.lines.last().map_or(0, |(_, r)| r.end) as u64;
                builder.reserve_for(size as f64 / read.max(1) as f64);
            }
            match after {
                Some(after) => next = after?,
                None => break,
            }
        }
        builder.finish()
    }
}

/// The next batch, parsed, and whether more may follow.
fn read_and_parse<R: BufRead>(lines: &mut LineSource<R>) -> Result<(Parsed, bool), NotCompact> {
    let mut batch = Batch::default();
    let more = batch.fill(lines)?;
    let parsed = batch
        .lines
        .par_iter()
        .with_min_len(512)
        .map(|(_, range)| parse_line(batch.text.get(range.clone()).unwrap_or("")))
        .collect();
    Ok((
        Parsed {
            batch,
            lines: parsed,
        },
        more,
    ))
}

/// A batch and its lines parsed, in order.
struct Parsed {
    batch: Batch,
    lines: Vec<Result<ParsedLine, String>>,
}

/// Non-blank lines read but not parsed yet, in one buffer.
#[derive(Default)]
struct Batch {
    text: String,
    /// Each line's number and its (trimmed) text in `text`.
    lines: Vec<(usize, Range<usize>)>,
}

impl Batch {
    /// Refills the batch from `source`; `false` when the input is exhausted.
    fn fill<R: BufRead>(&mut self, source: &mut LineSource<R>) -> Result<bool, NotCompact> {
        self.text.clear();
        self.lines.clear();
        while self.text.len() < BATCH_BYTES {
            let Some(line) = source.next() else {
                return Ok(false);
            };
            let number = line.number;
            let text = line
                .text
                .map_err(|e| NotCompact(format!("line {number}: {}", e.message())))?
                .trim();
            if text.is_empty() {
                continue;
            }
            let start = self.text.len();
            self.text.push_str(text);
            self.lines.push((number, start..self.text.len()));
        }
        Ok(true)
    }
}

/// An invocation waiting for its completion.
struct Pending {
    /// Its transaction.
    txn: u32,
    /// Its micro-ops, as written.
    mops: Vec<RawMop>,
    /// Per micro-op: its interned key.
    keys: Vec<u32>,
}

/// The history as it is folded together, event by event.
pub(super) struct Builder {
    history: TxnHistory,
    validator: Validator,
    budget: MemoryBudget,
    open: FxHashMap<u64, Pending>,
    int_keys: FxHashMap<i64, u32>,
    str_keys: FxHashMap<Box<str>, u32>,
}

impl Builder {
    /// An empty history read from `source` within `limits`, its events checked by
    /// `validator`.
    pub(super) fn new(source: String, limits: &ReadLimits, validator: Validator) -> Builder {
        Builder {
            history: TxnHistory {
                source_name: source,
                ..TxnHistory::default()
            },
            validator,
            budget: MemoryBudget::new(limits.memory_bytes),
            open: FxHashMap::default(),
            int_keys: FxHashMap::default(),
            str_keys: FxHashMap::default(),
        }
    }

    /// Makes room for `scale` times what is held: the whole input when the first
    /// batch held `1 / scale` of it. (Capacity is address space until it is used, so
    /// what is left over costs no memory and is not trimmed, which could copy; the
    /// budget and [`TxnHistory::heap_bytes`] count what is held.)
    fn reserve_for(&mut self, scale: f64) {
        if scale <= 1.0 {
            return;
        }
        let h = &mut self.history;
        let more = |len: usize| (len as f64 * (scale - 1.0) * 1.05) as usize;
        h.lines.reserve(more(h.lines.len()));
        h.times.reserve(more(h.times.len()));
        h.processes.reserve(more(h.processes.len()));
        h.types.reserve(more(h.types.len()));
        h.txns.reserve(more(h.txns.len()));
        h.mops.reserve(more(h.mops.len()));
        h.ints.reserve(more(h.ints.len()));
    }

    /// Adds a parsed batch, line by line.
    fn fold(
        &mut self,
        batch: &Batch,
        parsed: Vec<Result<ParsedLine, String>>,
    ) -> Result<(), NotCompact> {
        for ((number, range), parsed) in batch.lines.iter().zip(parsed) {
            let parsed = parsed.map_err(|m| NotCompact(format!("line {number}: {m}")))?;
            self.add(*number, range.len(), parsed)
                .map_err(|m| NotCompact(format!("line {number}: {m}")))?;
        }
        Ok(())
    }

    /// Adds the event of line `number` (`len` bytes of text).
    pub(super) fn add(
        &mut self,
        number: usize,
        len: usize,
        parsed: ParsedLine,
    ) -> Result<(), String> {
        self.budget.admit(len)?;
        let problems = self.validator.check(&parsed.op, number);
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        let h = &mut self.history;
        let position = u32::try_from(h.lines.len()).map_err(|_| "events beyond 32 bits")?;
        h.lines
            .push(u32::try_from(number).map_err(|_| "line number beyond 32 bits")?);
        h.times.push(parsed.op.time);
        h.types.push(parsed.op.op_type);
        let process = match parsed.op.process {
            Process::Nemesis => {
                h.processes.push(NEMESIS);
                self.budget.charge_bytes(EVENT_BYTES);
                return Ok(());
            }
            Process::Client(NEMESIS) => return Err("process number reserved".into()),
            Process::Client(n) => n,
        };
        h.processes.push(process);
        let (mops, ints) = (h.mops.len(), h.ints.len());
        if parsed.op.op_type == OpType::Invoke {
            self.invoke(process, position, parsed.value)?;
        } else {
            let pending = self
                .open
                .remove(&process)
                .ok_or("a completion without an invocation")?;
            let completion = (position, parsed.op.op_type, parsed.value);
            self.complete(pending, Some(completion))?;
        }
        let h = &self.history;
        let held = (h.mops.len() - mops) * mem::size_of::<MicroOp>()
            + (h.ints.len() - ints) * mem::size_of::<i64>();
        self.budget
            .charge_bytes(EVENT_BYTES + mem::size_of::<TxnRecord>() + held);
        Ok(())
    }

    /// An invocation: its micro-ops checked and keys interned, its transaction opened.
    fn invoke(&mut self, process: u64, position: u32, value: ValueField) -> Result<(), String> {
        let ValueField::Txn(mops) = value else {
            return Err("a client invocation's value is not a list of micro-ops".into());
        };
        let mut keys = Vec::with_capacity(mops.len());
        for mop in &mops {
            keys.push(self.intern(&mop.key)?);
            if mop.append && !matches!(mop.value, RawValue::Int(_)) {
                return Err("an appended value is not an integer".into());
            }
        }
        let txn = index32(self.history.txns.len(), "transactions")?;
        self.history.txns.push(TxnRecord {
            process,
            invoke: position,
            completion: NO_EVENT,
            outcome: None,
            mops: 0..0,
        });
        self.open.insert(process, Pending { txn, mops, keys });
        Ok(())
    }

    /// The interned id of a micro-op's key.
    fn intern(&mut self, key: &RawKey) -> Result<u32, String> {
        let next = index32(self.history.keys.len(), "keys")?;
        let id = match key {
            RawKey::Str(s) => match self.str_keys.get(s.as_str()) {
                Some(id) => *id,
                None => {
                    self.str_keys.insert(s.as_str().into(), next);
                    next
                }
            },
            RawKey::Int(n) => *self.int_keys.entry(*n).or_insert(next),
        };
        if id == next {
            self.history.keys.push(match key {
                RawKey::Str(s) => Value::from(s.as_str()),
                RawKey::Int(n) => Value::from(*n),
            });
        }
        Ok(id)
    }

    /// Closes `pending` with its completion (`None`: it never completed), keeping the
    /// micro-ops the Elle checker reads: the completion's for ok (and for info when it
    /// has a list), the invocation's otherwise; a committed read of `null` is `[]`.
    fn complete(
        &mut self,
        pending: Pending,
        completion: Option<(u32, OpType, ValueField)>,
    ) -> Result<(), String> {
        let (position, outcome, value) = match completion {
            Some((p, t, v)) => (p, Some(t), Some(v)),
            None => (NO_EVENT, None, None),
        };
        let completed = match (outcome, value) {
            (Some(OpType::Ok | OpType::Info), Some(ValueField::Txn(mops))) => Some(mops),
            (Some(OpType::Ok), _) => return Err("an ok txn's value is not a list".into()),
            _ => None,
        };
        let Pending { txn, mops, keys } = pending;
        let mut completed = match completed {
            Some(c) if c.len() != mops.len() => {
                return Err("the completion's micro-ops differ from its invocation's".into());
            }
            Some(c) => Some(c.into_iter()),
            None => None,
        };
        let start = index32(self.history.mops.len(), "micro-ops")?;
        for (invoked, key) in mops.into_iter().zip(keys) {
            let append = invoked.append;
            let value = match completed.as_mut().and_then(Iterator::next) {
                None => invoked.value,
                Some(done) => {
                    let same = done.append == append
                        && done.key == invoked.key
                        && (!append || done.value == invoked.value);
                    if !same {
                        return Err("a completion's micro-op differs from its invocation's".into());
                    }
                    match done.value {
                        RawValue::Null if !append && outcome == Some(OpType::Ok) => {
                            RawValue::Ints(Vec::new())
                        }
                        value => value,
                    }
                }
            };
            let value = match value {
                RawValue::Null => Observed::Null,
                RawValue::Int(_) if !append && outcome != Some(OpType::Fail) => {
                    return Err("a list-append read is not a list or null".into());
                }
                RawValue::Int(n) => Observed::Int(n),
                RawValue::Ints(items) => {
                    let from = index32(self.history.ints.len(), "read elements")?;
                    self.history.ints.extend(items);
                    Observed::List(from..index32(self.history.ints.len(), "read elements")?)
                }
            };
            self.history.mops.push(MicroOp { append, key, value });
        }
        let record = self
            .history
            .txns
            .get_mut(txn as usize)
            .ok_or("a transaction lost")?;
        record.completion = position;
        record.outcome = outcome;
        record.mops = start..index32(self.history.mops.len(), "micro-ops")?;
        Ok(())
    }

    /// Closes the invocations that never completed and checks there was something to
    /// check.
    pub(super) fn finish(mut self) -> Result<TxnHistory, NotCompact> {
        let mut open: Vec<Pending> = self.open.drain().map(|(_, p)| p).collect();
        open.sort_unstable_by_key(|p| p.txn);
        for pending in open {
            self.complete(pending, None).map_err(NotCompact)?;
        }
        if self.history.mops.is_empty() {
            return Err(NotCompact("no micro-ops at all".into()));
        }
        Ok(self.history)
    }
}

/// `len` as a position in one of the history's arrays, which are indexed by 32 bits.
fn index32(len: usize, what: &str) -> Result<u32, String> {
    u32::try_from(len).map_err(|_| format!("more than 2^32 {what}: beyond the compact form"))
}

/// What the budget is charged per event: its line, time, process and type.
const EVENT_BYTES: usize = 4 + 8 + 8 + 1;
