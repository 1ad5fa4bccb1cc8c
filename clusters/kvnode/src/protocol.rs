//! The client protocol (see [`faultline_kv_proto::client`]): the node parses requests
//! and renders responses; this module adds the status object it answers with.

use serde_json::{Map, Value};

pub use faultline_kv_proto::client::{Body, Outcome, Request, Response, parse_request};

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
    m.insert("vote".into(), status.vote.map_or(Value::Null, Value::from));
    m.insert("commit".into(), status.commit.into());
    m.insert("applied".into(), status.applied.into());
    m.insert("last_index".into(), status.last_index.into());
    m.insert("snapshot_index".into(), status.snapshot_index.into());
    Value::Object(m)
}
