//! Test helpers shared by the checkers' unit tests.

use serde_json::Value;

use crate::history::{History, Op, OpType, Process};

/// A history from `(process, type, f, value)` rows: indexes from 0, times 10 ns apart.
pub(crate) fn rows(rows: &[(u64, &str, &str, Value)]) -> History {
    let ops = rows
        .iter()
        .enumerate()
        .map(|(i, (p, t, f, v))| {
            Op::new(
                i as u64,
                i as i64 * 10,
                Process::Client(*p),
                OpType::parse(t).expect("a known type"),
                f,
                v.clone(),
            )
        })
        .collect();
    History::from_ops("test", ops).expect("a valid test history")
}
