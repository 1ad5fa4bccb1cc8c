//! Recognizing transactional histories by the shape of their values, as Elle and
//! Knossos do: they look only at `value`, never at `f` (which may be `"txn"`, absent in
//! EDN, or anything else).
//!
//! A history is transactional when every client invocation's value is a list of
//! three-element micro-ops `[f, key, value]` and at least one micro-op exists. The
//! micro-op functions then say whose transactions they are:
//!
//! - `append`/`r` (list-append) or `w`/`r` (rw-register): Elle's;
//! - `read`/`write`: Knossos's `multi-register` (`[:read :x nil]`, `[:write :y 2]`),
//!   checked for linearizability, not by Elle.

use serde_json::Value;

use crate::elle::ElleWorkload;
use crate::history::{History, OpType};

/// What kind of transactions a history holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnShape {
    /// Elle's micro-ops (`append`, `r`, `w`), with the workload they imply: any
    /// `append` → list-append, else any `w` → rw-register, else (reads only)
    /// list-append.
    Elle(ElleWorkload),
    /// Knossos's multi-register micro-ops (`read`, `write`).
    MultiRegister,
}

/// The micro-op functions of Elle's workloads.
const ELLE_FS: [&str; 3] = ["append", "r", "w"];
/// The micro-op functions of Knossos's multi-register.
const MULTI_REGISTER_FS: [&str; 2] = ["read", "write"];

/// The history's transaction shape, or `None` when some client invocation's value is
/// not a list of `[f, key, value]` micro-ops, when there are no micro-ops at all, or
/// when the functions mix Elle's and Knossos's (or are neither).
pub fn txn_shape(history: &History) -> Option<TxnShape> {
    let mut elle = false;
    let mut multi = false;
    let mut append = false;
    let mut write = false;
    for op in history.ops() {
        if !op.is_client() || op.op_type != OpType::Invoke {
            continue;
        }
        let Value::Array(mops) = &op.value else {
            return None;
        };
        for mop in mops {
            let f = match mop.as_array() {
                Some(parts) if parts.len() == 3 => parts[0].as_str()?,
                _ => return None,
            };
            if ELLE_FS.contains(&f) {
                elle = true;
                append |= f == "append";
                write |= f == "w";
            } else if MULTI_REGISTER_FS.contains(&f) {
                multi = true;
            } else {
                return None;
            }
        }
    }
    match (elle, multi) {
        (true, false) if append || !write => Some(TxnShape::Elle(ElleWorkload::ListAppend)),
        (true, false) => Some(TxnShape::Elle(ElleWorkload::RwRegister)),
        (false, true) => Some(TxnShape::MultiRegister),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::rows;

    fn shape(values: &[(&str, Value)]) -> Option<TxnShape> {
        let invokes: Vec<(u64, &str, &str, Value)> = values
            .iter()
            .enumerate()
            .map(|(p, (f, v))| (p as u64, "invoke", *f, v.clone()))
            .collect();
        txn_shape(&rows(&invokes))
    }

    #[test]
    fn by_value_not_f() {
        let la = Some(TxnShape::Elle(ElleWorkload::ListAppend));
        let rw = Some(TxnShape::Elle(ElleWorkload::RwRegister));
        let mr = Some(TxnShape::MultiRegister);
        assert_eq!(
            shape(&[("txn", json!([["append", 1, 2], ["r", 1, null]]))]),
            la
        );
        assert_eq!(shape(&[("read", json!([["r", 1, null]]))]), la);
        assert_eq!(shape(&[("", json!([["w", "x", 1]])), ("", json!([]))]), rw);
        assert_eq!(
            shape(&[("txn", json!([["read", "x", null], ["write", "y", 2]]))]),
            mr
        );
        // Not transactions: plain register operations, mixed spellings, tuples.
        assert_eq!(shape(&[("read", json!(null))]), None);
        assert_eq!(
            shape(&[("txn", json!([["read", "x", null], ["w", "y", 2]]))]),
            None
        );
        assert_eq!(shape(&[("write", json!(["x", 2]))]), None);
        assert_eq!(shape(&[("write", json!([["cas", "x", 2]]))]), None);
        assert_eq!(shape(&[("txn", json!([]))]), None);
        assert_eq!(shape(&[]), None);
    }
}
