//! The client protocol: newline-delimited JSON over TCP. See the crate docs for the
//! full description; this module parses requests and renders responses.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::kv::{MicroOp, parse_txn};

/// What a request asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// Run a transaction.
    Txn(Vec<MicroOp>),
    /// Report the node's Raft status.
    Status,
}

/// One parsed request line.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The client's request id, echoed in the response (any JSON value).
    pub id: Value,
    /// What to do.
    pub body: Body,
}

/// How a request ended, as the history format spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Done; it took effect.
    Ok,
    /// Definitely did not take effect.
    Fail,
    /// Unknown whether it took effect (it may, later).
    Info,
}

/// One response line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Response {
    /// The request's id (`null` if the request could not be parsed that far).
    pub id: Value,
    /// `ok`, `fail` or `info`.
    #[serde(rename = "type")]
    pub outcome: Outcome,
    /// On `ok` for a transaction: the micro-ops with reads filled in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub txn: Option<Value>,
    /// On `ok` for a status request: the node's status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
    /// On `fail` or `info`: a short code (see the crate docs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// On `fail` or `info`: an explanation for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// On `not-leader`: the leader's node id, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader: Option<u64>,
    /// On `not-leader`: the leader's client address, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader_addr: Option<String>,
    /// The node that answered.
    pub node: u64,
}

impl Response {
    fn new(id: Value, outcome: Outcome, node: u64) -> Response {
        Response {
            id,
            outcome,
            txn: None,
            status: None,
            error: None,
            message: None,
            leader: None,
            leader_addr: None,
            node,
        }
    }

    /// A successful transaction.
    pub fn ok_txn(id: Value, node: u64, txn: Vec<Value>) -> Response {
        let mut r = Response::new(id, Outcome::Ok, node);
        r.txn = Some(Value::Array(txn));
        r
    }

    /// A status answer.
    pub fn ok_status(id: Value, node: u64, status: Value) -> Response {
        let mut r = Response::new(id, Outcome::Ok, node);
        r.status = Some(status);
        r
    }

    /// A definite failure with a code and explanation.
    pub fn fail(id: Value, node: u64, code: &str, message: impl Into<String>) -> Response {
        let mut r = Response::new(id, Outcome::Fail, node);
        r.error = Some(code.to_string());
        r.message = Some(message.into());
        r
    }

    /// An indeterminate outcome with a code and explanation.
    pub fn info(id: Value, node: u64, code: &str, message: impl Into<String>) -> Response {
        let mut r = Response::new(id, Outcome::Info, node);
        r.error = Some(code.to_string());
        r.message = Some(message.into());
        r
    }

    /// `not-leader`: a definite failure, with where to go instead.
    pub fn not_leader(
        id: Value,
        node: u64,
        leader: Option<u64>,
        leader_addr: Option<String>,
    ) -> Response {
        let mut r = Response::fail(
            id,
            node,
            "not-leader",
            "this node is not the leader; retry at the leader",
        );
        r.leader = leader;
        r.leader_addr = leader_addr;
        r
    }

    /// The response as one line of JSON (without the newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(r#"{{"id":null,"type":"info","error":"internal","message":"cannot render response: {e}"}}"#)
        })
    }
}

/// Parses a request line. On error returns the response to send (`fail`, `bad-request`).
pub fn parse_request(line: &str, node: u64) -> Result<Request, Box<Response>> {
    let bad =
        |id: Value, message: String| Box::new(Response::fail(id, node, "bad-request", message));
    let value: Value =
        serde_json::from_str(line).map_err(|e| bad(Value::Null, format!("not JSON: {e}")))?;
    let Value::Object(object) = value else {
        return Err(bad(Value::Null, "a request is a JSON object".into()));
    };
    let id = object.get("id").cloned().unwrap_or(Value::Null);
    let kind = object.get("type").and_then(Value::as_str).unwrap_or("txn");
    let body = match kind {
        "txn" => {
            let txn = object.get("txn").ok_or_else(|| {
                bad(
                    id.clone(),
                    "a txn request needs \"txn\": [[f, key, value], ...]".into(),
                )
            })?;
            let ops = parse_txn(txn).map_err(|e| bad(id.clone(), e.to_string()))?;
            if ops.is_empty() {
                return Err(bad(id, "empty transaction".into()));
            }
            Body::Txn(ops)
        }
        "status" => Body::Status,
        other => {
            return Err(bad(
                id,
                format!("unknown request type {other:?} (txn or status)"),
            ));
        }
    };
    Ok(Request { id, body })
}

/// The status object for a status response.
pub fn status_json(status: &crate::consensus::Status) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), status.id.into());
    m.insert("role".into(), status.role.to_string().into());
    m.insert("term".into(), status.term.into());
    m.insert(
        "leader".into(),
        status.leader.map_or(Value::Null, Value::from),
    );
    m.insert("commit".into(), status.commit.into());
    m.insert("applied".into(), status.applied.into());
    m.insert("last_index".into(), status.last_index.into());
    m.insert("snapshot_index".into(), status.snapshot_index.into());
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_requests_and_rejects_bad_ones() {
        let r = parse_request(r#"{"id":7,"txn":[["r","x",null],["w","x",2]]}"#, 1).unwrap();
        assert_eq!(r.id, json!(7));
        assert!(matches!(r.body, Body::Txn(ref ops) if ops.len() == 2));
        assert_eq!(
            parse_request(r#"{"id":"a","type":"status"}"#, 1)
                .unwrap()
                .body,
            Body::Status
        );
        let err = parse_request(r#"{"id":3,"txn":[["zap","x",1]]}"#, 1).unwrap_err();
        assert_eq!(err.error.as_deref(), Some("bad-request"));
        assert_eq!(err.id, json!(3));
        assert_eq!(err.outcome, Outcome::Fail);
        assert!(parse_request("nope", 1).is_err());
    }

    #[test]
    fn responses_render_as_one_line() {
        let line = Response::not_leader(json!(1), 2, Some(3), Some("127.0.0.1:1".into())).to_line();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["type"], "fail");
        assert_eq!(v["error"], "not-leader");
        assert_eq!(v["leader"], 3);
        let line = Response::ok_txn(json!(1), 2, vec![json!(["r", "x", 5])]).to_line();
        assert!(!line.contains('\n'));
        assert_eq!(
            serde_json::from_str::<Value>(&line).unwrap()["txn"][0][2],
            5
        );
    }
}
