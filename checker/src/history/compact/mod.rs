//! A compact transactional history: what a list-append check needs of a JSONL file,
//! read straight into typed, flat arrays instead of one `serde_json::Value` tree per
//! event.
//!
//! [`TxnHistory::read_list_append`] streams the file (in batches, parsed on every core),
//! validates every line by the same rules as [`HistoryReader`](super::HistoryReader),
//! pairs invocations with completions, interns keys, and keeps per event only its
//! time and line, per transaction its process, events and outcome, and per micro-op
//! its kind, key and value (a read's list is the only tree kept). It takes only files
//! whose every client invocation is a list of `append`/`r` micro-ops that the Elle
//! checker accepts as they are; for anything else, and for anything malformed, it
//! answers [`NotCompact`] and the caller reads the file the general way, which gives
//! the same verdict or names the problem with its file and line.
//!
//! [`TxnHistory::read_list_append_edn`] reads Jepsen's EDN into the same form, with
//! the meaning the general EDN importer gives it.

mod edn;
mod line;
mod reader;

use std::ops::Range;

use serde_json::Value;

use super::op::{OpType, Process};

/// Sentinel for "no completion".
const NO_EVENT: u32 = u32::MAX;

/// Why a file was not read into a [`TxnHistory`]: it is not a list-append history
/// the compact form holds exactly, or something in it needs the general reader's
/// explanation. Not an error: the general reader takes over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotCompact(pub String);

/// One client operation: a transaction.
#[derive(Debug, Clone)]
pub(crate) struct TxnRecord {
    /// The client process.
    pub(crate) process: u64,
    /// Position of the invocation among the events.
    pub(crate) invoke: u32,
    /// Position of the completion, or [`NO_EVENT`].
    pub(crate) completion: u32,
    /// How it completed (`None`: never, which counts as `info`).
    pub(crate) outcome: Option<OpType>,
    /// Its micro-ops in [`TxnHistory::mops`] (in completion order, not invocation
    /// order).
    pub(crate) mops: Range<u32>,
}

impl TxnRecord {
    /// The position of the completion, if there is one.
    pub(crate) fn completion(&self) -> Option<usize> {
        (self.completion != NO_EVENT).then_some(self.completion as usize)
    }
}

/// One micro-op as the checker reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MicroOp {
    /// True for `append`, false for `r`.
    pub(crate) append: bool,
    /// Interned key: an index into [`TxnHistory::keys`].
    pub(crate) key: u32,
    /// The appended element, or the read's list (`null`: nothing known).
    pub(crate) value: Observed,
}

/// A micro-op's value: an integer, a list of integers, or `null`. (Histories with
/// string elements are read the general way.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Observed {
    /// `null`: nothing known.
    Null,
    /// An appended integer.
    Int(i64),
    /// A read's list: these items of [`TxnHistory::ints`].
    List(Range<u32>),
}

/// A list-append history in compact form (see the module documentation).
#[derive(Debug, Clone, Default)]
pub struct TxnHistory {
    source_name: String,
    /// Per event (by position, which is its `index`): its line in the file.
    lines: Vec<u32>,
    /// Per event: its `time`.
    times: Vec<i64>,
    /// Per event: its process (`u64::MAX` for the nemesis).
    processes: Vec<u64>,
    /// Per event: its `type`.
    types: Vec<OpType>,
    /// Every client operation, in invocation order.
    pub(crate) txns: Vec<TxnRecord>,
    /// Every micro-op, transaction by transaction in completion order.
    pub(crate) mops: Vec<MicroOp>,
    /// Every read's items, one read after another.
    pub(crate) ints: Vec<i64>,
    /// Interned keys, numbered in order of first appearance in an invocation.
    pub(crate) keys: Vec<Value>,
}

/// The facts of one event that explanations use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Event {
    /// The event's `index`.
    pub(crate) index: u64,
    /// Its process.
    pub(crate) process: Process,
    /// Its `time` (nanoseconds).
    pub(crate) time: i64,
    /// Its `type`.
    pub(crate) op_type: OpType,
}

/// The process number that stands for the nemesis in [`TxnHistory`].
const NEMESIS: u64 = u64::MAX;

impl TxnHistory {
    /// The file the history came from.
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// Number of events (lines with an event).
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// True when there are no events.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Number of transactions (client operations).
    pub fn txn_count(&self) -> usize {
        self.txns.len()
    }

    /// The line of the file that the event at `position` came from.
    pub fn line_of(&self, position: usize) -> usize {
        self.lines
            .get(position)
            .map_or(position + 1, |line| *line as usize)
    }

    /// The event at `position`: its index, process, time and type.
    pub(crate) fn event(&self, position: usize) -> Option<Event> {
        let process = match *self.processes.get(position)? {
            NEMESIS => Process::Nemesis,
            n => Process::Client(n),
        };
        Some(Event {
            index: position as u64,
            process,
            time: *self.times.get(position)?,
            op_type: *self.types.get(position)?,
        })
    }

    /// The items of a read's list.
    pub(crate) fn items(&self, range: &Range<u32>) -> &[i64] {
        self.ints
            .get(range.start as usize..range.end as usize)
            .unwrap_or(&[])
    }

    /// The heap this history's arrays hold (their length, not their capacity, which
    /// is address space until it is used).
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        self.lines.len() * size_of::<u32>()
            + self.times.len() * size_of::<i64>()
            + self.processes.len() * size_of::<u64>()
            + self.types.len() * size_of::<OpType>()
            + self.txns.len() * size_of::<TxnRecord>()
            + self.mops.len() * size_of::<MicroOp>()
            + self.ints.len() * size_of::<i64>()
            + self
                .keys
                .iter()
                .map(|k| size_of::<Value>() + super::input::value_bytes(k))
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests;
