//! Where a check's transactions came from: a whole [`History`] of events, or a compact
//! [`TxnHistory`] read straight from a list-append file. The passes ask only for the
//! few facts of an event that explanations and error messages name.

use super::ElleWorkload;
use super::txn::{Mop, MopKind, Outcome, Txn, Txns};
use super::value::MopValue;
pub(crate) use crate::history::compact::Event;
use crate::history::compact::{Observed, TxnHistory};
use crate::history::{History, InputError, OpType};

/// The history behind a set of transactions.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source<'h> {
    /// Every event, as `Op`s.
    History(&'h History),
    /// The compact form: events' times and lines, transactions, micro-ops.
    Compact(&'h TxnHistory),
}

impl Source<'_> {
    /// The event at `position`, if there is one.
    pub(crate) fn event(&self, position: usize) -> Option<Event> {
        match self {
            Source::History(history) => history.ops().get(position).map(|op| Event {
                index: op.index,
                process: op.process,
                time: op.time,
                op_type: op.op_type,
            }),
            Source::Compact(history) => history.event(position),
        }
    }

    /// The line of the file that the event at `position` came from.
    pub(crate) fn line_of(&self, position: usize) -> usize {
        match self {
            Source::History(history) => history.line_of(position),
            Source::Compact(history) => history.line_of(position),
        }
    }

    /// An input error about the event at `position`.
    pub(crate) fn error_at(&self, position: usize, message: impl Into<String>) -> InputError {
        let name = match self {
            Source::History(history) => history.source_name(),
            Source::Compact(history) => history.source_name(),
        };
        InputError::at(name, self.line_of(position), message)
    }
}

/// The transactions of a compact list-append history, micro-ops laid out in
/// invocation order as [`super::txn::parse`] lays them out for a whole history.
pub(crate) fn compact_txns(history: &TxnHistory) -> Txns<'_> {
    let mut txns = Vec::with_capacity(history.txns.len());
    let mut mops = Vec::with_capacity(history.mops.len());
    for record in &history.txns {
        let start = mops.len() as u32;
        let range = record.mops.start as usize..record.mops.end as usize;
        mops.extend(history.mops.get(range).unwrap_or(&[]).iter().map(|m| Mop {
            kind: if m.append {
                MopKind::Write
            } else {
                MopKind::Read
            },
            key: m.key,
            value: match &m.value {
                Observed::Null => MopValue::Null,
                Observed::Int(n) => MopValue::Int(*n),
                Observed::List(range) => MopValue::Ints(history.items(range)),
            },
        }));
        txns.push(Txn {
            outcome: match record.outcome {
                Some(OpType::Ok) => Outcome::Ok,
                Some(OpType::Fail) => Outcome::Fail,
                _ => Outcome::Info,
            },
            process: record.process,
            invoke: record.invoke as usize,
            completion: record.completion(),
            mops: start..mops.len() as u32,
        });
    }
    Txns::assemble(
        Source::Compact(history),
        txns,
        mops,
        history.keys.iter().collect(),
        ElleWorkload::ListAppend,
    )
}
