//! Reading a Jepsen EDN list-append history (`history.edn`) into a [`TxnHistory`],
//! with the meaning the general EDN importer ([`crate::history::edn`]) gives it: the
//! same operation maps, the same dense event numbers, the same process numbers, the
//! same validation. Only the representation differs: no `serde_json::Value` is kept
//! per event, so a history of millions of transactions fits where the general
//! reader's would not.
//!
//! EDN is read one form at a time on one core (its forms may span lines, so the file
//! cannot be cut into batches as JSONL is); what it saves is memory.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::line::{ParsedLine, ValueField};
use super::reader::Builder;
use super::{NEMESIS, NotCompact, TxnHistory};
use crate::history::edn::{ProcessNumbers, each_op};
use crate::history::input::{MemoryBudget, ReadLimits};
use crate::history::op::Process;
use crate::history::validate::Validator;

impl TxnHistory {
    /// Reads a Jepsen EDN list-append history within `limits`, or says why it cannot
    /// (as [`TxnHistory::read_list_append`] does for JSONL): the caller then reads it
    /// with the general EDN importer, which gives the same verdict or names the
    /// problem with its file and line.
    pub fn read_list_append_edn(
        path: &Path,
        limits: &ReadLimits,
    ) -> Result<TxnHistory, NotCompact> {
        let file = File::open(path).map_err(|e| NotCompact(format!("cannot open: {e}")))?;
        TxnHistory::read_list_append_edn_from(
            path.display().to_string(),
            BufReader::with_capacity(1 << 20, file),
            limits,
        )
    }

    /// Reads EDN from `input` as [`TxnHistory::read_list_append_edn`] does; `source`
    /// names it.
    pub fn read_list_append_edn_from<R: BufRead>(
        source: String,
        input: R,
        limits: &ReadLimits,
    ) -> Result<TxnHistory, NotCompact> {
        let mut builder = Builder::new(source, limits, Validator::imported());
        let mut numbers = ProcessNumbers::default();
        let mut position: u64 = 0;
        // Lines are admitted against the limit here; what is kept is charged to the
        // builder's own budget.
        let mut lines_budget = MemoryBudget::new(limits.memory_bytes);
        each_op(input, limits, &mut lines_budget, |_, start, imported| {
            let fail = |message: String| (start, message);
            let (mut op, no_process) = imported.map_err(fail)?;
            op.index = position;
            position += 1;
            let value = std::mem::take(&mut op.value);
            let value = match op.process {
                // Checkers read nothing of a nemesis event's value.
                Process::Nemesis => ValueField::Other(Value::Null),
                Process::Client(original) => {
                    let written = (!no_process).then_some(original);
                    let provisional = numbers.assign(written, op.op_type).map_err(fail)?;
                    op.process = Process::Client(provisional);
                    ValueField::deserialize(value).map_err(|e| fail(e.to_string()))?
                }
            };
            builder
                .add(start, 0, ParsedLine { op, value })
                .map_err(fail)
        })
        .map_err(|(line, message)| NotCompact(format!("line {line}: {message}")))?;
        let mut history = builder.finish()?;
        history.resolve_processes(&numbers);
        Ok(history)
    }

    /// Replaces the provisional process numbers `numbers` gave with the final ones.
    fn resolve_processes(&mut self, numbers: &ProcessNumbers) {
        for process in self.processes.iter_mut().filter(|p| **p != NEMESIS) {
            *process = numbers.resolve(*process);
        }
        for txn in &mut self.txns {
            txn.process = numbers.resolve(txn.process);
        }
    }
}
