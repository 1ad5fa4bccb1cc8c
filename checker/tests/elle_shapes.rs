//! Elle reads histories by their values: a committed list-append read of `null` is the
//! empty list (as in Elle, whose `si-without-g-single.edn` relies on it), and `f` may be
//! anything.

mod common;

use common::types;
use faultline_checker::elle::{ConsistencyModel, ElleOptions, ElleWorkload};
use faultline_checker::history::{History, Op, OpType, Process};
use faultline_checker::results::{Validity, Verdict};
use faultline_checker::shape::{TxnShape, txn_shape};
use serde_json::{Value, json};

fn history(f: &str, rows: &[(u64, OpType, Value)]) -> History {
    let ops = rows
        .iter()
        .enumerate()
        .map(|(i, (p, t, v))| {
            Op::new(
                i as u64,
                10 * i as i64,
                Process::Client(*p),
                *t,
                f,
                v.clone(),
            )
        })
        .collect();
    History::from_ops("test.jsonl", ops).unwrap()
}

fn list_append(h: &History, model: ConsistencyModel) -> Verdict {
    common::check_both(
        h,
        &ElleOptions::new(ElleWorkload::ListAppend).with_model(model),
    )
    .unwrap()
}

fn write_skew(f: &str) -> History {
    let t1 = json!([["r", "x", null], ["r", "y", null], ["append", "x", 1]]);
    let t2 = json!([["r", "x", null], ["r", "y", null], ["append", "y", 1]]);
    history(
        f,
        &[
            (0, OpType::Invoke, t1.clone()),
            (1, OpType::Invoke, t2.clone()),
            (0, OpType::Ok, t1),
            (1, OpType::Ok, t2),
        ],
    )
}

#[test]
fn write_skew_with_null_reads_is_g2_item() {
    for f in ["txn", "read", ""] {
        let h = write_skew(f);
        assert_eq!(
            txn_shape(&h),
            Some(TxnShape::Elle(ElleWorkload::ListAppend))
        );
        let v = list_append(&h, ConsistencyModel::default());
        assert_eq!(v.valid, Validity::Invalid, "{f}: {:#?}", v.details);
        assert_eq!(types(&v), vec!["G2-item"], "{f}");
        let si = "snapshot-isolation".parse().unwrap();
        assert_eq!(list_append(&h, si).valid, Validity::Valid);
    }
}

#[test]
fn null_read_after_a_completed_append_is_stale() {
    // T1 appends 1 to x and commits; T2 begins afterwards and reads x as null (= []).
    let h = history(
        "txn",
        &[
            (0, OpType::Invoke, json!([["append", "x", 1]])),
            (0, OpType::Ok, json!([["append", "x", 1]])),
            (1, OpType::Invoke, json!([["r", "x", null]])),
            (1, OpType::Ok, json!([["r", "x", null]])),
        ],
    );
    let v = list_append(&h, ConsistencyModel::default());
    assert_eq!(v.valid, Validity::Invalid, "{:#?}", v.details);
    assert_eq!(types(&v), vec!["G-single-realtime"]);
}

#[test]
fn null_reads_of_crashed_transactions_say_nothing() {
    // An info transaction's read of null is no information: nothing is inferred from it.
    let h = history(
        "txn",
        &[
            (0, OpType::Invoke, json!([["append", "x", 1]])),
            (0, OpType::Ok, json!([["append", "x", 1]])),
            (
                1,
                OpType::Invoke,
                json!([["r", "x", null], ["append", "y", 1]]),
            ),
            (
                1,
                OpType::Info,
                json!([["r", "x", null], ["append", "y", 1]]),
            ),
            (
                2,
                OpType::Invoke,
                json!([["r", "x", null], ["r", "y", null]]),
            ),
            (2, OpType::Ok, json!([["r", "x", [1]], ["r", "y", [1]]])),
        ],
    );
    let v = list_append(&h, ConsistencyModel::default());
    assert_eq!(v.valid, Validity::Valid, "{:#?}", v.details);
}
