//! The client protocol: newline-delimited JSON over TCP, one request object a line
//! (`{"id":…,"txn":[[f, key, value], …]}` or `{"id":…,"type":"status"}`; a transaction
//! may add `"forward":true` to have a node that is not the leader relay it to its
//! leader), answered by one response object a line with the same `id`. The node parses requests and renders
//! responses; clients render requests and parse responses (see
//! `clusters/kvnode/README.md` for the error codes).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::txn::{MicroOp, parse_txn, txn_to_json};

/// What a request asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// Run a transaction.
    Txn(Vec<MicroOp>),
    /// Report the node's consensus status.
    Status,
}

/// One parsed request line.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The client's request id, echoed in the response (any JSON value).
    pub id: Value,
    /// What to do.
    pub body: Body,
    /// A transaction to relay to the leader when this node is not it (`"forward":
    /// true`; absent means `false`, the old protocol). Ignored by status requests.
    pub forward: bool,
}

impl Request {
    /// A transaction request.
    pub fn txn(id: impl Into<Value>, ops: Vec<MicroOp>) -> Request {
        Request {
            id: id.into(),
            body: Body::Txn(ops),
            forward: false,
        }
    }

    /// The same request, asking a node that is not the leader to forward it (`true`) or
    /// not.
    pub fn forwarded(mut self, forward: bool) -> Request {
        self.forward = forward;
        self
    }

    /// A status request.
    pub fn status(id: impl Into<Value>) -> Request {
        Request {
            id: id.into(),
            body: Body::Status,
            forward: false,
        }
    }

    /// The request as one line of JSON (without the newline), as [`parse_request`]
    /// reads it.
    pub fn to_line(&self) -> String {
        match &self.body {
            Body::Txn(ops) if self.forward => {
                json!({"id": self.id, "txn": txn_to_json(ops), "forward": true})
            }
            Body::Txn(ops) => json!({"id": self.id, "txn": txn_to_json(ops)}),
            Body::Status => json!({"id": self.id, "type": "status"}),
        }
        .to_string()
    }
}

/// How a request ended, as the history format spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The request's id (`null` if the request could not be parsed that far).
    #[serde(default)]
    pub id: Value,
    /// `ok`, `fail` or `info`.
    #[serde(rename = "type")]
    pub outcome: Outcome,
    /// On `ok` for a transaction: the micro-ops with reads filled in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn: Option<Value>,
    /// On `ok` for a status request: the node's status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
    /// On `fail` or `info`: a short code (see the crate docs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// On `fail` or `info`: an explanation for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// On `not-leader`: the leader's node id, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<u64>,
    /// On `not-leader`: the leader's client address, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_addr: Option<String>,
    /// The node that answered.
    #[serde(default)]
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

    /// Reads a response line (as [`Response::to_line`] writes it).
    pub fn from_line(line: &[u8]) -> Result<Response, serde_json::Error> {
        serde_json::from_slice(line)
    }

    /// Reads a response already parsed as JSON.
    pub fn from_value(value: Value) -> Result<Response, serde_json::Error> {
        serde_json::from_value(value)
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
    let forward = match object.get("forward") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(forward)) => *forward,
        Some(other) => {
            return Err(bad(
                id,
                format!("\"forward\" is true or false, not {other}"),
            ));
        }
    };
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
    Ok(Request { id, body, forward })
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
    fn requests_render_as_the_node_reads_them() {
        let ops = parse_txn(&json!([["r", "x", null], ["cas", 3, [null, 1]]])).unwrap();
        let line = Request::txn(7, ops.clone()).to_line();
        assert_eq!(
            line,
            r#"{"id":7,"txn":[["r","x",null],["cas",3,[null,1]]]}"#
        );
        assert_eq!(parse_request(&line, 1).unwrap(), Request::txn(7, ops));
        let line = Request::status(0).to_line();
        assert_eq!(line, r#"{"id":0,"type":"status"}"#);
        assert_eq!(parse_request(&line, 1).unwrap().body, Body::Status);
    }

    #[test]
    fn forward_is_optional_and_omitted_when_false() {
        let ops = parse_txn(&json!([["w", "x", 1]])).unwrap();
        let plain = Request::txn(1, ops.clone());
        assert!(!plain.to_line().contains("forward"));
        assert!(!parse_request(&plain.to_line(), 1).unwrap().forward);
        let forwarded = Request::txn(1, ops).forwarded(true);
        let line = forwarded.to_line();
        assert_eq!(line, r#"{"id":1,"txn":[["w","x",1]],"forward":true}"#);
        assert_eq!(parse_request(&line, 1).unwrap(), forwarded);
        let err =
            parse_request(r#"{"id":2,"txn":[["r","x",null]],"forward":"yes"}"#, 1).unwrap_err();
        assert_eq!(err.error.as_deref(), Some("bad-request"));
        assert_eq!(err.id, json!(2));
    }

    #[test]
    fn responses_parse_back() {
        let r = Response::not_leader(json!(1), 2, Some(3), Some("127.0.0.1:1".into()));
        assert_eq!(Response::from_line(r.to_line().as_bytes()).unwrap(), r);
        let r = Response::ok_status(json!(0), 1, json!({"role": "leader"}));
        assert_eq!(Response::from_line(r.to_line().as_bytes()).unwrap(), r);
        assert!(Response::from_line(br#"{"id":1,"type":"maybe"}"#).is_err());
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
