//! What a `faultline-kv` node's status answer (`{"id":0,"type":"status"}`) says of its
//! shards: with `--shards` above 1, a `shards` array with one object per shard as that
//! node sees it (`{"shard":0,"role":"leader","leader":1,"term":3,…}`); without it, the
//! top-level fields, which are shard 0's.

use serde_json::Value;

/// One shard's consensus state, as one node reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardStatus {
    /// The shard, from 0.
    pub shard: u32,
    /// The node's role in that shard's group: `leader`, `follower`, `candidate`…
    /// (`unknown` when the status does not say).
    pub role: String,
    /// The node id the node believes leads the shard, if it knows one.
    pub leader: Option<u64>,
    /// The node's term (Multi-Paxos: its ballot) in that shard's group, if reported.
    pub term: Option<u64>,
}

impl ShardStatus {
    /// Whether the node considers itself the shard's leader.
    pub fn is_leader(&self) -> bool {
        self.role == "leader"
    }

    /// The shard's state in the status object `fields` (a `shards` entry, or the
    /// top-level status for shard `shard`).
    fn from_fields(shard: u32, fields: &Value) -> ShardStatus {
        ShardStatus {
            shard,
            role: fields
                .get("role")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_string(),
            leader: fields.get("leader").and_then(Value::as_u64),
            term: fields.get("term").and_then(Value::as_u64),
        }
    }
}

/// Every shard's state in a node's `status` object: its `shards` array when there is
/// one (entries without a shard number are skipped), else shard 0 from the top-level
/// fields (an unsharded node, or one from before sharding).
pub fn shard_statuses(status: &Value) -> Vec<ShardStatus> {
    match status.get("shards").and_then(Value::as_array) {
        Some(shards) => shards
            .iter()
            .filter_map(|entry| {
                let shard = u32::try_from(entry.get("shard")?.as_u64()?).ok()?;
                Some(ShardStatus::from_fields(shard, entry))
            })
            .collect(),
        None => vec![ShardStatus::from_fields(0, status)],
    }
}

/// Whether the node whose status is `status` leads any shard (a primary, for the
/// nemesis's role targets): by its `shards` array, else by its top-level role.
pub fn leads_any_shard(status: &Value) -> bool {
    shard_statuses(status).iter().any(ShardStatus::is_leader)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_node_leading_any_shard_is_a_primary() {
        // Shard 0 (the top level) followed, shard 2 led.
        let sharded = json!({"role": "follower", "leader": 2, "term": 4, "shards": [
            {"shard": 0, "role": "follower", "leader": 2, "term": 4},
            {"shard": 1, "role": "follower", "leader": 3, "term": 2},
            {"shard": 2, "role": "leader", "leader": 1, "term": 7}]});
        assert!(leads_any_shard(&sharded));
        let statuses = shard_statuses(&sharded);
        assert_eq!(statuses.len(), 3);
        assert_eq!(
            statuses[2],
            ShardStatus {
                shard: 2,
                role: "leader".into(),
                leader: Some(1),
                term: Some(7)
            }
        );
        let following = json!({"role": "leader", "shards": [
            {"shard": 0, "role": "follower", "leader": 2},
            {"shard": 1, "role": "candidate"}]});
        // The shards array wins over the top level.
        assert!(!leads_any_shard(&following));
    }

    #[test]
    fn without_shards_the_top_level_role_decides() {
        assert!(leads_any_shard(
            &json!({"role": "leader", "leader": 1, "term": 3})
        ));
        assert!(!leads_any_shard(
            &json!({"role": "follower", "leader": 1, "term": 3})
        ));
        let statuses = shard_statuses(&json!({"role": "follower", "leader": 1, "term": 3}));
        assert_eq!(statuses.len(), 1);
        assert_eq!((statuses[0].shard, statuses[0].leader), (0, Some(1)));
        assert_eq!(shard_statuses(&json!({}))[0].role, "unknown");
        // Entries without a shard number are skipped.
        let odd = json!({"shards": [{"role": "leader"}, {"shard": 1, "role": "follower"}]});
        assert!(!leads_any_shard(&odd));
    }
}
