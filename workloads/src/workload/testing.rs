//! Test helpers: an in-memory [`Store`] with the transaction semantics of the real ones
//! (a unit-test stand-in; the real stores are tested against real databases), and a
//! tiny executor for the futures workload clients return.

use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use serde_json::Value;

use crate::store::{Micro, Store, StoreError, TxnFuture, TxnOk};

/// Sequential key-value state; every transaction is applied atomically.
#[derive(Debug, Default)]
pub struct MemStore {
    pub data: HashMap<String, Value>,
}

impl MemStore {
    fn apply(&mut self, ops: &[Micro]) -> Result<Vec<Value>, StoreError> {
        let mut next = self.data.clone();
        let mut values = Vec::new();
        let fail = |error: &str| StoreError::Fail {
            error: error.into(),
            node: Some("mem".into()),
        };
        for op in ops {
            let current = next.get(op.key()).cloned().unwrap_or(Value::Null);
            values.push(Value::Null);
            match op {
                Micro::Read(_) => *values.last_mut().unwrap() = current,
                Micro::Write(k, v) => {
                    next.insert(k.clone(), v.clone());
                }
                Micro::Cas(k, old, new) => {
                    if current != *old {
                        return Err(fail("cas-mismatch"));
                    }
                    next.insert(k.clone(), new.clone());
                }
                Micro::Append(k, v) => {
                    let mut list = match current {
                        Value::Null => Vec::new(),
                        Value::Array(list) => list,
                        _ => return Err(fail("not-a-list")),
                    };
                    list.push(v.clone());
                    next.insert(k.clone(), Value::Array(list));
                }
                Micro::Add(k, d) => {
                    let n = match current {
                        Value::Null => 0,
                        v => v.as_i64().ok_or_else(|| fail("not-an-integer"))?,
                    };
                    next.insert(k.clone(), Value::from(n + d));
                }
            }
        }
        self.data = next;
        Ok(values)
    }
}

impl Store for MemStore {
    fn txn<'a>(&'a mut self, ops: &'a [Micro]) -> TxnFuture<'a> {
        let result = self.apply(ops).map(|values| TxnOk {
            values,
            node: "mem".into(),
        });
        Box::pin(async move { result })
    }
}

struct Noop;
impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

/// Polls a future that never waits (the in-memory store's) to completion.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
    }
}
