//! Unit tests of transaction parsing.

use serde_json::json;

use super::*;
use crate::history::{Op, Process};

#[test]
fn pairs_and_interns() {
    let ops = vec![
        Op::new(
            0,
            0,
            Process::Client(0),
            OpType::Invoke,
            "txn",
            json!([["append", "x", 1], ["r", 7, null]]),
        ),
        Op::new(
            1,
            1,
            Process::Client(1),
            OpType::Invoke,
            "txn",
            json!([["r", "x", null]]),
        ),
        Op::new(
            2,
            2,
            Process::Client(0),
            OpType::Ok,
            "txn",
            json!([["append", "x", 1], ["r", 7, [3]]]),
        ),
        Op::new(
            3,
            3,
            Process::Client(1),
            OpType::Fail,
            "txn",
            json!([["r", "x", null]]),
        ),
        Op::new(
            4,
            4,
            Process::Client(2),
            OpType::Invoke,
            "txn",
            json!([["append", 7, 2]]),
        ),
    ];
    let h = History::from_ops("t", ops).unwrap();
    let txns = parse(&h, ElleWorkload::ListAppend).unwrap();
    assert_eq!(txns.txns.len(), 3);
    assert_eq!(txns.keys.len(), 2);
    assert_eq!(txns.txns[0].outcome, Outcome::Ok);
    assert_eq!(txns.txns[1].outcome, Outcome::Fail);
    assert_eq!(txns.txns[2].outcome, Outcome::Info);
    assert_eq!(txns.nodes, vec![0, 2]);
    assert_eq!(txns.mops_of(0)[1].value.to_json(), json!([3]));
    assert_eq!(txns.mops_of(2)[0].key, txns.mops_of(0)[1].key);
}

#[test]
fn errors_name_the_line() {
    let ops = vec![Op::new(
        0,
        0,
        Process::Client(0),
        OpType::Invoke,
        "read",
        json!(null),
    )];
    let h = History::from_ops("h.jsonl", ops).unwrap();
    let e = parse(&h, ElleWorkload::ListAppend)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.starts_with("h.jsonl:1:") && e.contains("list of micro-ops"),
        "{e}"
    );
    let ops = vec![Op::new(
        0,
        0,
        Process::Client(0),
        OpType::Invoke,
        "txn",
        json!([["w", "x"]]),
    )];
    let h = History::from_ops("h.jsonl", ops).unwrap();
    let e = parse(&h, ElleWorkload::RwRegister)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("expected [f, key, value]"), "{e}");
}

fn op(index: u64, process: u64, op_type: OpType, f: &str, value: Value) -> Op {
    Op::new(
        index,
        index as i64,
        Process::Client(process),
        op_type,
        f,
        value,
    )
}

#[test]
fn any_f_and_committed_null_reads_are_empty_lists() {
    let ops = vec![
        op(0, 0, OpType::Invoke, "read", json!([["r", "x", null]])),
        op(1, 1, OpType::Invoke, "anything", json!([["r", "x", null]])),
        op(2, 2, OpType::Invoke, "txn", json!([["r", "x", null]])),
        op(3, 0, OpType::Ok, "read", json!([["r", "x", null]])),
        op(4, 1, OpType::Info, "anything", json!([["r", "x", null]])),
        op(5, 2, OpType::Fail, "txn", json!([["r", "x", null]])),
    ];
    let h = History::from_ops("t", ops).unwrap();
    let txns = parse(&h, ElleWorkload::ListAppend).unwrap();
    assert_eq!(txns.mops_of(0)[0].value.to_json(), json!([]));
    assert_eq!(txns.mops_of(1)[0].value.to_json(), json!(null));
    assert_eq!(txns.mops_of(2)[0].value.to_json(), json!(null));
    // rw-register: a committed null read is the initial nil, kept as null.
    let txns = parse(&h, ElleWorkload::RwRegister).unwrap();
    assert_eq!(txns.mops_of(0)[0].value.to_json(), json!(null));
}
