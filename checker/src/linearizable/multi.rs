//! Knossos's `multi-register`: transactions of `[read|write, key, value]` micro-ops over
//! many registers, each transaction applied atomically, its micro-ops in order (a read
//! after a write in the same transaction sees that write).
//!
//! Keys are interned to slots of a dense state vector, values to [`ValueId`]s, so a state
//! is a small boxed slice: cheap to clone, hash and compare.

use std::collections::HashMap;

use serde_json::Value;

use super::model::{Action, MicroOp, Model, NULL, ValueId};

/// The multi-register model.
#[derive(Debug, Clone, Default)]
pub struct MultiRegister {
    /// Each slot's initial value.
    pub initial: Box<[ValueId]>,
    /// Each slot's key, as an interned value (for explanations).
    pub keys: Box<[ValueId]>,
    /// Knossos's meaning of a read of `null`: legal in every state. Otherwise it says the
    /// register is `null`.
    pub nil_reads_unknown: bool,
}

impl Model for MultiRegister {
    type State = Box<[ValueId]>;

    fn init(&self) -> Box<[ValueId]> {
        self.initial.clone()
    }

    fn step(&self, state: &Box<[ValueId]>, action: &Action) -> Option<Box<[ValueId]>> {
        let Action::Txn(mops) = action else {
            return None;
        };
        let mut next: Option<Box<[ValueId]>> = None;
        for mop in mops.iter() {
            let current = next.as_deref().unwrap_or(state);
            let slot = mop.slot as usize;
            if mop.write {
                if current.get(slot) != Some(&mop.value) {
                    let mut changed = next.take().unwrap_or_else(|| state.clone());
                    *changed.get_mut(slot)? = mop.value;
                    next = Some(changed);
                }
            } else if !(self.nil_reads_unknown && mop.value == NULL)
                && current.get(slot) != Some(&mop.value)
            {
                return None;
            }
        }
        Some(next.unwrap_or_else(|| state.clone()))
    }

    fn absorbs(&self, _state: &Box<[ValueId]>, action: &Action) -> bool {
        // A read-only transaction that fits changes nothing.
        matches!(action, Action::Txn(mops) if mops.iter().all(|m| !m.write))
    }

    fn describe(&self, state: &Box<[ValueId]>, show: &dyn Fn(ValueId) -> String) -> String {
        let pairs: Vec<String> = state
            .iter()
            .zip(self.keys.iter())
            .map(|(&v, &k)| format!("{} = {}", show(k), show(v)))
            .collect();
        format!("registers {{{}}}", pairs.join(", "))
    }
}

/// Interns the keys of one problem's transactions to slots.
#[derive(Debug, Default)]
pub(crate) struct Slots {
    ids: HashMap<String, u32>,
    /// Each slot's key.
    pub keys: Vec<Value>,
}

impl Slots {
    /// The slot of `key`, new or known.
    pub(crate) fn slot(&mut self, key: &Value) -> u32 {
        let text = key.to_string();
        if let Some(&slot) = self.ids.get(&text) {
            return slot;
        }
        let slot = self.keys.len() as u32;
        self.ids.insert(text, slot);
        self.keys.push(key.clone());
        slot
    }
}

/// Parses a transaction value into micro-ops, interning keys with `slot` and values
/// with `intern`. Reads are dropped when `keep_reads` is false (a crashed
/// transaction's reads are unknown). The error describes what is wrong.
pub(crate) fn parse_txn(
    value: &Value,
    keep_reads: bool,
    slot: &mut dyn FnMut(&Value) -> u32,
    intern: &mut dyn FnMut(&Value) -> ValueId,
) -> Result<Box<[MicroOp]>, String> {
    let Value::Array(items) = value else {
        return Err(format!(
            "a multi-register transaction is a list of [read|write, key, value] micro-ops, got {value}"
        ));
    };
    let mut mops = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let (f, key, v) = match item.as_array().map(Vec::as_slice) {
            Some([f, key, v]) => (f, key, v),
            _ => {
                return Err(format!(
                    "micro-op {i}: expected [read|write, key, value], got {item}"
                ));
            }
        };
        let write = match f.as_str() {
            Some("write") => true,
            Some("read") => false,
            _ => {
                return Err(format!(
                    "micro-op {i}: the multi-register's micro-ops are read and write, got {f}"
                ));
            }
        };
        if !write && !keep_reads {
            continue;
        }
        mops.push(MicroOp {
            slot: slot(key),
            write,
            value: intern(v),
        });
    }
    Ok(mops.into_boxed_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(mops: &[(u32, bool, ValueId)]) -> Action {
        Action::Txn(
            mops.iter()
                .map(|&(slot, write, value)| MicroOp { slot, write, value })
                .collect(),
        )
    }

    #[test]
    fn transactions_apply_in_order_and_atomically() {
        let m = MultiRegister {
            initial: vec![NULL, NULL].into(),
            keys: vec![1, 2].into(),
            nil_reads_unknown: false,
        };
        let s = m.init();
        // Write x = 3 then read it back inside the transaction.
        let s = m.step(&s, &txn(&[(0, true, 3), (0, false, 3)])).unwrap();
        assert_eq!(&*s, &[3, NULL]);
        // A read that fails rejects the whole transaction, writes included.
        assert_eq!(m.step(&s, &txn(&[(1, true, 4), (0, false, 4)])), None);
        // Strict: a read of null says the register is null.
        assert_eq!(m.step(&s, &txn(&[(0, false, NULL)])), None);
        assert!(m.step(&s, &txn(&[(1, false, NULL)])).is_some());
        // Knossos: a read of null is legal anywhere.
        let knossos = MultiRegister {
            nil_reads_unknown: true,
            ..m.clone()
        };
        assert!(knossos.step(&s, &txn(&[(0, false, NULL)])).is_some());
        assert!(knossos.absorbs(&s, &txn(&[(0, false, NULL)])));
        assert!(!knossos.absorbs(&s, &txn(&[(0, true, 1)])));
        assert_eq!(
            m.describe(&s, &|v| v.to_string()),
            "registers {1 = 3, 2 = 0}"
        );
    }

    #[test]
    fn parses_knossos_micro_ops() {
        let mut slots = Slots::default();
        let mut values: Vec<Value> = vec![Value::Null];
        let mut intern = |v: &Value| match values.iter().position(|x| x == v) {
            Some(i) => i as ValueId,
            None => {
                values.push(v.clone());
                (values.len() - 1) as ValueId
            }
        };
        let value = serde_json::json!([["read", "x", null], ["write", "y", 2]]);
        let mops = parse_txn(&value, true, &mut |k| slots.slot(k), &mut intern).unwrap();
        assert_eq!(mops.len(), 2);
        assert_eq!(
            (mops[0].slot, mops[0].write, mops[0].value),
            (0, false, NULL)
        );
        assert_eq!((mops[1].slot, mops[1].write), (1, true));
        let writes = parse_txn(&value, false, &mut |k| slots.slot(k), &mut intern).unwrap();
        assert_eq!(writes.len(), 1);
        let bad = serde_json::json!([["cas", "x", [1, 2]]]);
        let e = parse_txn(&bad, true, &mut |k| slots.slot(k), &mut intern).unwrap_err();
        assert!(e.contains("read and write"), "{e}");
    }
}
