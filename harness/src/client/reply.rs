//! The protocol's replies: a reply line becomes a completion, or a reason it is
//! garbage (`docs/your-client.md`); and the micro-ops requests carry.

use faultline_checker::OpType;
use faultline_generator::OpSpec;
use faultline_workloads::store::Micro;
use faultline_workloads::workload::Completion;
use serde_json::{Value, json};

/// At most 200 characters of `bytes`, quoted, for messages.
pub(super) fn quote(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end_matches(['\n', '\r']);
    let short: String = text.chars().take(200).collect();
    if short.len() < text.len() {
        format!("{short:?}…")
    } else {
        format!("{short:?}")
    }
}

/// The completion a reply line stands for, or why it is garbage. `fail` and `info` keep
/// the invocation's value; `ok` without a `value` keeps it too.
pub fn parse_reply(op: &OpSpec, line: &str, node: &str) -> Result<Completion, String> {
    let reply: Value = serde_json::from_str(line).map_err(|e| format!("not JSON ({e})"))?;
    let Value::Object(reply) = reply else {
        return Err("not a JSON object".into());
    };
    let node = match reply.get("node") {
        None | Some(Value::Null) => Some(node.to_string()).filter(|n| !n.is_empty()),
        Some(Value::String(n)) => Some(n.clone()),
        Some(other) => return Err(format!("`node` must be a string, not {other}")),
    };
    let error = match reply.get("error") {
        None | Some(Value::Null) => None,
        Some(Value::String(e)) => Some(e.clone()),
        Some(other) => Some(other.to_string()),
    };
    let op_type = match reply.get("type").and_then(Value::as_str) {
        Some("ok") => OpType::Ok,
        Some("fail") => OpType::Fail,
        Some("info") => OpType::Info,
        Some(other) => {
            return Err(format!(
                "`type` is {other:?}; expected \"ok\", \"fail\" or \"info\""
            ));
        }
        None => return Err("no `type` (\"ok\", \"fail\" or \"info\")".into()),
    };
    Ok(match op_type {
        OpType::Ok => {
            let value = match reply.get("value") {
                Some(v) => v.clone(),
                None => op.value.clone(),
            };
            check_ok_value(op, &value)?;
            Completion {
                op_type,
                value,
                node,
                error: None,
            }
        }
        OpType::Fail => Completion::fail(
            op.value.clone(),
            error.unwrap_or_else(|| "fail".into()),
            node,
        ),
        _ => Completion::info(
            op.value.clone(),
            error.unwrap_or_else(|| "info".into()),
            node,
        ),
    })
}

/// The checks an `ok` value must pass so that checkers can use it: a transaction comes
/// back as the same micro-ops (function and key) in the same order; a write echoes its
/// value; a cas echoes its pair.
fn check_ok_value(op: &OpSpec, value: &Value) -> Result<(), String> {
    match op.f.as_str() {
        "txn" => {
            let (Value::Array(sent), Value::Array(got)) = (&op.value, value) else {
                return Err(format!(
                    "an ok txn's `value` must be the list of micro-ops, not {value}"
                ));
            };
            if sent.len() != got.len() {
                return Err(format!(
                    "an ok txn must return its {} micro-op(s), not {}",
                    sent.len(),
                    got.len()
                ));
            }
            for (s, g) in sent.iter().zip(got) {
                let same = matches!((s, g), (Value::Array(s), Value::Array(g))
                    if g.len() == 3 && s.len() == 3 && s[0] == g[0] && s[1] == g[1]);
                if !same {
                    return Err(format!("micro-op {g} does not match the request's {s}"));
                }
            }
            Ok(())
        }
        "write" | "cas" if value != &op.value => Err(format!(
            "an ok {} must echo its value {}, not {value}",
            op.f, op.value
        )),
        _ => Ok(()),
    }
}

/// A micro-op as the history writes it: `["w", key, value]`, `["r", key, null]`,
/// `["append", key, value]`, `["add", key, n]`, `["cas", key, [old, new]]`.
pub fn micro_json(micro: &Micro) -> Value {
    match micro {
        Micro::Read(k) => json!(["r", k, null]),
        Micro::Write(k, v) => json!(["w", k, v]),
        Micro::Cas(k, old, new) => json!(["cas", k, [old, new]]),
        Micro::Append(k, v) => json!(["append", k, v]),
        Micro::Add(k, n) => json!(["add", k, n]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(f: &str, value: Value) -> OpSpec {
        OpSpec::new(f, value)
    }

    #[test]
    fn replies_become_completions() {
        let w = op("write", json!(3));
        let c = parse_reply(&w, r#"{"type":"ok"}"#, "n1").unwrap();
        assert_eq!(
            (c.op_type, c.value, c.node.as_deref()),
            (OpType::Ok, json!(3), Some("n1"))
        );
        let r = op("read", Value::Null);
        let c = parse_reply(&r, r#"{"type":"ok","value":4,"node":"n2"}"#, "n1").unwrap();
        assert_eq!((c.value, c.node.as_deref()), (json!(4), Some("n2")));
        let c = parse_reply(
            &w,
            r#"{"type":"fail","error":"cas-mismatch","value":9}"#,
            "n1",
        )
        .unwrap();
        assert_eq!(
            (c.op_type, c.value, c.error.as_deref()),
            (OpType::Fail, json!(3), Some("cas-mismatch"))
        );
        let c = parse_reply(&w, r#"{"type":"info"}"#, "n1").unwrap();
        assert_eq!(c.op_type, OpType::Info);
    }

    #[test]
    fn garbage_is_explained() {
        let w = op("write", json!(3));
        assert!(
            parse_reply(&w, "hello", "n1")
                .unwrap_err()
                .starts_with("not JSON")
        );
        assert!(
            parse_reply(&w, "[1]", "n1")
                .unwrap_err()
                .contains("not a JSON object")
        );
        assert!(
            parse_reply(&w, r#"{"value":1}"#, "n1")
                .unwrap_err()
                .contains("no `type`")
        );
        assert!(
            parse_reply(&w, r#"{"type":"yes"}"#, "n1")
                .unwrap_err()
                .contains("\"yes\"")
        );
        assert!(
            parse_reply(&w, r#"{"type":"ok","value":4}"#, "n1")
                .unwrap_err()
                .contains("must echo")
        );
        let t = op("txn", json!([["append", "x", 1], ["r", "x", null]]));
        assert!(parse_reply(&t, r#"{"type":"ok","value":[["append","x",1]]}"#, "n1").is_err());
        assert!(
            parse_reply(
                &t,
                r#"{"type":"ok","value":[["append","x",1],["r","y",[1]]]}"#,
                "n1"
            )
            .is_err()
        );
        let c = parse_reply(
            &t,
            r#"{"type":"ok","value":[["append","x",1],["r","x",[1]]]}"#,
            "n1",
        )
        .unwrap();
        assert_eq!(c.value, json!([["append", "x", 1], ["r", "x", [1]]]));
    }
}
