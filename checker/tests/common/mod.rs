//! Helpers shared by the Elle end-to-end tests: histories built event by event, and
//! the checker run on them.
#![allow(dead_code)] // each test file uses a different subset

use faultline_checker::elle::{ConsistencyModel, ElleOptions, ElleWorkload, check};
use faultline_checker::history::{History, Op, OpType, Process};
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
    check(&h.history(), &options).unwrap()
}

pub fn types(v: &Verdict) -> Vec<String> {
    v.details["anomaly_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}
