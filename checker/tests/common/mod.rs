//! Helpers shared by the Elle end-to-end tests: histories built event by event, and
//! the checker run on them.
#![allow(dead_code)] // each test file uses a different subset

use std::path::Path;

use faultline_checker::elle::{ConsistencyModel, ElleOptions, ElleWorkload, check, check_compact};
use faultline_checker::history::{
    History, HistoryWriter, InputError, Op, OpType, Process, ReadLimits, TxnHistory,
};
use faultline_checker::results::Verdict;
use serde_json::{Value, json};

/// Builds histories event by event.
#[derive(Default)]
pub struct H {
    pub ops: Vec<Op>,
}

pub fn blank(mops: &Value) -> Value {
    Value::Array(
        mops.as_array()
            .unwrap()
            .iter()
            .map(|m| {
                if m[0] == "r" {
                    json!(["r", m[1], null])
                } else {
                    m.clone()
                }
            })
            .collect(),
    )
}

impl H {
    pub fn event(&mut self, p: u64, t: OpType, value: Value) -> &mut H {
        let i = self.ops.len() as u64;
        self.ops.push(Op::new(
            i,
            1000 * i as i64,
            Process::Client(p),
            t,
            "txn",
            value,
        ));
        self
    }
    pub fn invoke(&mut self, p: u64, mops: Value) -> &mut H {
        let v = blank(&mops);
        self.event(p, OpType::Invoke, v)
    }
    pub fn ok(&mut self, p: u64, mops: Value) -> &mut H {
        self.event(p, OpType::Ok, mops)
    }
    pub fn fail(&mut self, p: u64, mops: Value) -> &mut H {
        let v = blank(&mops);
        self.event(p, OpType::Fail, v)
    }
    pub fn info(&mut self, p: u64, mops: Value) -> &mut H {
        let v = blank(&mops);
        self.event(p, OpType::Info, v)
    }
    /// A transaction invoked and completed ok right away.
    pub fn txn(&mut self, p: u64, mops: Value) -> &mut H {
        self.invoke(p, mops.clone()).ok(p, mops)
    }
    pub fn history(&self) -> History {
        History::from_ops("test.jsonl", self.ops.clone()).unwrap()
    }
}

pub fn run(h: &H, workload: ElleWorkload, model: &str) -> Verdict {
    let options = ElleOptions::new(workload).with_model(model.parse::<ConsistencyModel>().unwrap());
    check_both(&h.history(), &options).unwrap()
}

/// Asserts that two answers are the same, to the letter.
pub fn assert_same(general: &Result<Verdict, InputError>, compact: &Result<Verdict, InputError>) {
    match (general, compact) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.valid, b.valid, "{:#?}", a.details);
            assert_eq!(a.details, b.details);
            assert_eq!(a.explanation, b.explanation);
        }
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("the general and the compact path disagree: {general:#?} vs {compact:#?}"),
    }
}

/// `check`, and for list-append the same check on the history written as JSONL and
/// read back compactly (`TxnHistory`) when the compact reader takes it: the two must
/// agree to the letter. Returns the general answer and whether the compact reader
/// took the history.
pub fn check_both_compacted(
    history: &History,
    options: &ElleOptions,
) -> (Result<Verdict, InputError>, bool) {
    let general = check(history, options);
    if options.workload != ElleWorkload::ListAppend {
        return (general, false);
    }
    let mut writer = HistoryWriter::new(Vec::new());
    for op in history.ops() {
        writer.write(op).unwrap();
    }
    writer.flush().unwrap();
    let bytes = writer.into_inner();
    let read = TxnHistory::read_list_append_from(
        history.source_name().to_string(),
        &bytes[..],
        &ReadLimits::default(),
    );
    let Ok(compact) = read else {
        return (general, false);
    };
    assert_same(&general, &check_compact(&compact, options));
    (general, true)
}

/// [`check_both_compacted`]'s general answer.
pub fn check_both(history: &History, options: &ElleOptions) -> Result<Verdict, InputError> {
    check_both_compacted(history, options).0
}

/// A history file checked both ways (as `faultline check` may): read whole, and read
/// compactly when the compact reader takes it; they must agree to the letter.
pub fn check_file_both(path: &Path, options: &ElleOptions) -> Result<Verdict, InputError> {
    let general = History::read_jsonl(path).and_then(|h| check(&h, options));
    if options.workload == ElleWorkload::ListAppend
        && let Ok(compact) = TxnHistory::read_list_append(path, &ReadLimits::default())
    {
        assert_same(&general, &check_compact(&compact, options));
    }
    general
}

pub fn types(v: &Verdict) -> Vec<String> {
    v.details["anomaly_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}
