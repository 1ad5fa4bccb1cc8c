//! A transaction's keys as a store read them, changed locally by its micro-ops before
//! one conditional commit: etcd's `txn` on each key's `mod_revision`, ZooKeeper's
//! `multi` on each znode's version.

use serde_json::Value;

use super::Micro;

/// One key of a transaction: what was read and what the micro-ops made of it.
#[derive(Debug, PartialEq)]
pub(super) struct KeyState<V> {
    /// The version read, which the commit is conditional on (etcd: the `mod_revision`,
    /// 0 when the key was absent; ZooKeeper: the znode's version, `None` when absent).
    pub(super) version: V,
    /// The value, as read and then changed by the micro-ops; `None` when absent.
    pub(super) value: Option<Value>,
    /// Whether a micro-op wrote it (so the commit must write it).
    pub(super) written: bool,
}

/// Applies one micro-op to its key's state; the value it returns (`null` but for reads),
/// or the abort code.
pub(super) fn apply<V>(op: &Micro, key: &mut KeyState<V>) -> Result<Value, &'static str> {
    match op {
        Micro::Read(_) => return Ok(key.value.clone().unwrap_or(Value::Null)),
        Micro::Write(_, v) => key.value = Some(v.clone()),
        Micro::Cas(_, old, new) => {
            if key.value.as_ref().unwrap_or(&Value::Null) != old {
                return Err("cas-mismatch");
            }
            key.value = Some(new.clone());
        }
        Micro::Append(_, v) => match &mut key.value {
            None => key.value = Some(Value::Array(vec![v.clone()])),
            Some(Value::Array(list)) => list.push(v.clone()),
            Some(_) => return Err("not-a-list"),
        },
        Micro::Add(_, delta) => {
            let base = match &key.value {
                None => 0,
                Some(v) => v.as_i64().ok_or("not-an-integer")?,
            };
            key.value = Some(Value::from(base.checked_add(*delta).ok_or("overflow")?));
        }
    }
    key.written = true;
    Ok(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fresh() -> KeyState<()> {
        KeyState {
            version: (),
            value: None,
            written: false,
        }
    }

    #[test]
    fn micro_ops_apply_locally_in_order() {
        let mut k = fresh();
        assert_eq!(apply(&Micro::Read("k".into()), &mut k), Ok(Value::Null));
        assert!(!k.written, "a read writes nothing");
        apply(&Micro::Append("k".into(), json!(1)), &mut k).unwrap();
        apply(&Micro::Append("k".into(), json!(2)), &mut k).unwrap();
        assert_eq!(apply(&Micro::Read("k".into()), &mut k), Ok(json!([1, 2])));
        assert_eq!(
            apply(&Micro::Add("k".into(), 1), &mut k),
            Err("not-an-integer")
        );
        let mut c = fresh();
        apply(&Micro::Add("c".into(), 5), &mut c).unwrap();
        apply(&Micro::Add("c".into(), -2), &mut c).unwrap();
        assert_eq!(c.value, Some(json!(3)));
        assert_eq!(
            apply(&Micro::Cas("c".into(), json!(4), json!(9)), &mut c),
            Err("cas-mismatch")
        );
        apply(&Micro::Cas("c".into(), json!(3), json!(9)), &mut c).unwrap();
        assert_eq!(c.value, Some(json!(9)));
        assert_eq!(
            apply(&Micro::Add("c".into(), i64::MAX), &mut c),
            Err("overflow")
        );
        let mut l = fresh();
        l.value = Some(json!(1));
        assert_eq!(
            apply(&Micro::Append("l".into(), json!(1)), &mut l),
            Err("not-a-list")
        );
        let mut w = fresh();
        w.value = Some(json!(3));
        assert_eq!(
            apply(&Micro::Cas("w".into(), json!(4), json!(9)), &mut w),
            Err("cas-mismatch")
        );
        assert!(!w.written, "a failed cas writes nothing");
        apply(&Micro::Cas("w".into(), json!(3), json!(9)), &mut w).unwrap();
        assert!(w.written);
    }
}
