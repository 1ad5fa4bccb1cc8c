//! The store keys a workload's operation touches, as its built-in client names them
//! (`r3` for the register workload's key 3, `la7` for list-append's key 7, `bank2` for
//! account 2…): what a sharded store hashes to place the operation, so a run can say
//! which shards its load went to.

use faultline_checker::history::Op;
use serde_json::Value;

use super::{WorkloadOptions, bank, counter, lock, register, set, store_key, txn};

/// The store keys the built-in client of `workload` (one of [`super::NAMES`], run with
/// `options`) touches for the history's operation `op` (an invocation or completion:
/// its `f`, `key` and `value`); `None` when they cannot be told from it (an unknown
/// workload or `f`, a malformed value).
pub fn store_keys(workload: &str, options: &WorkloadOptions, op: &Op) -> Option<Vec<String>> {
    let independent = |prefix: &str| Some(vec![store_key(prefix, op.key.as_ref())]);
    match workload {
        "register" => independent(register::KEY_PREFIX),
        "set" => independent(set::KEY_PREFIX),
        "lock" => independent(lock::KEY_PREFIX),
        "counter" => Some(vec![counter::KEY.to_string()]),
        "list-append" => txn::store_keys(txn::Kind::ListAppend, &op.value),
        "rw-register" => txn::store_keys(txn::Kind::RwRegister, &op.value),
        "bank" => match op.f.as_str() {
            // A read reads every account.
            "read" => Some(
                (0..options.accounts)
                    .map(|a| bank::account_key(&a.to_string()))
                    .collect(),
            ),
            "transfer" => {
                let account = |field: &str| op.value.get(field).and_then(Value::as_u64);
                let (from, to) = (account("from")?, account("to")?);
                Some(vec![
                    bank::account_key(&from.to_string()),
                    bank::account_key(&to.to_string()),
                ])
            }
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_checker::history::{Key, OpType, Process};
    use serde_json::json;

    fn op(f: &str, value: Value) -> Op {
        Op::new(0, 0, Process::Client(0), OpType::Ok, f, value)
    }

    #[test]
    fn each_workload_names_its_keys_as_its_client_does() {
        let options = WorkloadOptions::default();
        let keys = |workload: &str, op: &Op| store_keys(workload, &options, op);
        let read = op("read", Value::Null).with_key(Key::Int(3));
        assert_eq!(keys("register", &read), Some(vec!["r3".to_string()]));
        assert_eq!(keys("set", &read), Some(vec!["set3".to_string()]));
        assert_eq!(keys("lock", &read), Some(vec!["lock3".to_string()]));
        assert_eq!(keys("counter", &read), Some(vec!["counter".to_string()]));
        let txn = op(
            "txn",
            json!([["append", 1, 2], ["r", "x", [2]], ["r", 1, null]]),
        );
        assert_eq!(
            keys("list-append", &txn),
            Some(vec![
                "la1".to_string(),
                "lax".to_string(),
                "la1".to_string()
            ])
        );
        // Not a rw-register transaction: appends are list-append's.
        assert_eq!(keys("rw-register", &txn), None);
        let rw = op("txn", json!([["w", 5, 1], ["r", 6, null]]));
        assert_eq!(
            keys("rw-register", &rw),
            Some(vec!["rw5".to_string(), "rw6".to_string()])
        );
        let transfer = op("transfer", json!({"from": 0, "to": 4, "amount": 2}));
        assert_eq!(
            keys("bank", &transfer),
            Some(vec!["bank0".to_string(), "bank4".to_string()])
        );
        assert_eq!(
            keys("bank", &op("read", Value::Null)).map(|k| k.len()),
            Some(5)
        );
        assert_eq!(keys("bank", &op("transfer", json!({"from": 0}))), None);
        assert_eq!(keys("queue", &read), None);
    }
}
