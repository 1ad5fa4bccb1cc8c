//! The report's "Shards" section, from `results.json`'s `shards` (a sharded
//! faultline-kv run only): each shard's preferred node, its leader at the end of the
//! run, the client operations touching it and their share of the load, and how many
//! operations stayed in one shard or crossed several (see `docs/running.md`).

use serde::Serialize;
use serde_json::Value;

/// One shard's line.
#[derive(Debug, Serialize)]
pub struct ShardRow {
    shard: String,
    preferred: String,
    leader: String,
    operations: String,
    share: String,
}

/// What the section shows.
#[derive(Debug, Serialize)]
pub struct ShardsView {
    count: String,
    commit_protocol: String,
    rows: Vec<ShardRow>,
    /// Whether the load was computed (not with a client program).
    has_load: bool,
    single_shard: String,
    cross_shard: String,
    unplaced: String,
}

/// A number or a name as text; empty when absent or null.
fn text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The section for the `shards` object `shards`, or `None` when the run was not
/// sharded (no such object).
pub fn view(shards: &Value) -> Option<ShardsView> {
    let per_shard = shards.get("per_shard")?.as_array()?;
    let rows = per_shard
        .iter()
        .map(|entry| ShardRow {
            shard: text(entry.get("shard")),
            preferred: text(entry.get("preferred")),
            leader: match entry.get("leader") {
                Some(Value::String(name)) => name.clone(),
                _ => "unknown".to_string(),
            },
            operations: text(entry.get("operations")),
            share: entry
                .get("share")
                .and_then(Value::as_f64)
                .map(|s| format!("{:.1} %", s * 100.0))
                .unwrap_or_default(),
        })
        .collect();
    Some(ShardsView {
        count: text(shards.get("count")),
        commit_protocol: text(shards.get("commit_protocol")),
        rows,
        has_load: shards.get("single_shard_txns").is_some(),
        single_shard: text(shards.get("single_shard_txns")),
        cross_shard: text(shards.get("cross_shard_txns")),
        unplaced: text(shards.get("unplaced_ops")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shows_each_shards_placement_leader_and_load() {
        let shards = json!({"count": 2, "commit_protocol": "3pc", "per_shard": [
            {"shard": 0, "preferred": "n1", "leader": "n2", "operations": 30, "share": 0.75},
            {"shard": 1, "preferred": "n2", "leader": null, "operations": 10, "share": 0.25}],
            "single_shard_txns": 25, "cross_shard_txns": 5, "unplaced_ops": 0});
        let v = view(&shards).unwrap();
        assert_eq!((v.count.as_str(), v.commit_protocol.as_str()), ("2", "3pc"));
        assert_eq!(v.rows[0].leader, "n2");
        assert_eq!(v.rows[0].share, "75.0 %");
        assert_eq!(v.rows[1].leader, "unknown");
        assert_eq!(v.rows[1].operations, "10");
        assert!(v.has_load);
        assert_eq!(
            (v.single_shard.as_str(), v.cross_shard.as_str()),
            ("25", "5")
        );
        let without_load = json!({"count": 2, "per_shard": [{"shard": 0, "preferred": "n1"}]});
        assert!(!view(&without_load).unwrap().has_load);
        assert!(view(&json!({"count": 2})).is_none());
    }
}
