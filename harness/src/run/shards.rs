//! A sharded run's account of its shards (faultline-kv with `--shards` above 1; an
//! unsharded run's files are as they were): the placement (each shard's preferred node)
//! in `config.json`; in `results.json`'s `shards`, each shard's leader at the end of the
//! run (asked of every node before teardown) and the load, from the history: the client
//! operations touching each shard, single-shard and cross-shard.

use std::collections::HashMap;
use std::thread;

use anyhow::Result;
use faultline_checker::{Op, OpType};
use faultline_clusters::db::{ShardStatus, shard_statuses};
use faultline_clusters::{KvDb, Node};
use faultline_kv_proto::{preferred_node, shard_of};
use serde_json::{Map, Value, json};

use crate::config::RunConfig;

/// Each shard's preferred node, by name: shard `k`'s is the node at
/// [`preferred_node`]`(k, N)` among the `node_names` (in the order of their ids).
pub fn placement(shards: u32, node_names: &[String]) -> Vec<String> {
    (0..shards)
        .filter_map(|shard| {
            node_names
                .get(preferred_node(shard, node_names.len()))
                .cloned()
        })
        .collect()
}

/// `config.json`: the configuration, and when sharded its `placement` right after the
/// shard count and commit protocol.
pub fn config_json(config: &RunConfig, node_names: &[String]) -> Result<Value> {
    let json = serde_json::to_value(config)?;
    if config.shards <= 1 {
        return Ok(json);
    }
    let Value::Object(fields) = json else {
        return Ok(json);
    };
    let mut with_placement = Map::new();
    for (key, value) in fields {
        let after = key == "commit-protocol";
        with_placement.insert(key, value);
        if after {
            with_placement.insert(
                "placement".into(),
                json!(placement(config.shards, node_names)),
            );
        }
    }
    Ok(Value::Object(with_placement))
}

/// One node's answer: its id, its name and its shards as it sees them (none when it
/// did not answer).
#[derive(Debug, Clone)]
pub struct NodeShards {
    /// The node's id (what the others report as leader).
    pub id: u64,
    /// Its name.
    pub name: String,
    /// What it says of each shard.
    pub shards: Vec<ShardStatus>,
}

/// Asks every node for its status at once (each bounded by the status request's
/// time-out); a node that does not answer reports no shard.
pub fn ask_nodes(kv: &KvDb, nodes: &[Node]) -> Vec<NodeShards> {
    thread::scope(|scope| {
        let asks: Vec<_> = nodes
            .iter()
            .map(|node| scope.spawn(move || kv.status(node).map(|s| shard_statuses(&s))))
            .collect();
        nodes
            .iter()
            .zip(asks)
            .map(|(node, ask)| NodeShards {
                id: u64::from(node.id),
                name: node.name.clone(),
                shards: ask.join().ok().and_then(Result::ok).unwrap_or_default(),
            })
            .collect()
    })
}

/// Each of `shards` shards' leader by name, from what the nodes say: the node a
/// majority of the cluster's nodes report as leader, else the one node that reports
/// itself leader (the highest term's, when several do); `None` when neither tells.
pub fn leaders(reports: &[NodeShards], shards: u32) -> Vec<Option<String>> {
    let majority = reports.len() / 2 + 1;
    let name_of = |id: u64| {
        reports
            .iter()
            .find(|r| r.id == id)
            .map_or_else(|| format!("#{id}"), |r| r.name.clone())
    };
    (0..shards)
        .map(|shard| {
            let seen: Vec<(&NodeShards, &ShardStatus)> = reports
                .iter()
                .filter_map(|r| Some((r, r.shards.iter().find(|s| s.shard == shard)?)))
                .collect();
            let mut votes: HashMap<u64, usize> = HashMap::new();
            for (node, status) in &seen {
                let believed = match status.leader {
                    Some(id) => Some(id),
                    None if status.is_leader() => Some(node.id),
                    None => None,
                };
                if let Some(id) = believed {
                    *votes.entry(id).or_default() += 1;
                }
            }
            if let Some((id, _)) = votes.iter().find(|(_, n)| **n >= majority) {
                return Some(name_of(*id));
            }
            let mut claims: Vec<(Option<u64>, u64)> = seen
                .iter()
                .filter(|(_, status)| status.is_leader())
                .map(|(node, status)| (status.term, node.id))
                .collect();
            claims.sort_unstable_by(|a, b| b.cmp(a));
            match claims.as_slice() {
                [(_, id)] => Some(name_of(*id)),
                [(first, id), (second, _), ..] if first > second => Some(name_of(*id)),
                _ => None,
            }
        })
        .collect()
}

/// Where a run's client operations went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardLoad {
    /// Per shard, the client operations completed (`ok`, `fail`, `info`) that touch it.
    pub operations: Vec<u64>,
    /// Completed client operations whose keys all lie in one shard.
    pub single_shard: u64,
    /// Completed client operations whose keys lie in several shards.
    pub cross_shard: u64,
    /// Completed client operations whose keys could not be told.
    pub unplaced: u64,
}

/// The load of the history `ops` over `shards` shards: each completed client
/// operation's store keys (`keys_of`) placed by faultline-kv's rule ([`shard_of`],
/// as `shards_of` places a transaction's micro-ops).
pub fn load(ops: &[Op], shards: u32, keys_of: impl Fn(&Op) -> Option<Vec<String>>) -> ShardLoad {
    let mut load = ShardLoad {
        operations: vec![0; shards as usize],
        ..ShardLoad::default()
    };
    for op in ops
        .iter()
        .filter(|op| op.is_client() && op.op_type != OpType::Invoke)
    {
        let Some(keys) = keys_of(op).filter(|keys| !keys.is_empty()) else {
            load.unplaced += 1;
            continue;
        };
        let mut touched: Vec<u32> = keys.iter().map(|key| shard_of(key, shards)).collect();
        touched.sort_unstable();
        touched.dedup();
        for shard in &touched {
            if let Some(count) = load.operations.get_mut(*shard as usize) {
                *count += 1;
            }
        }
        if touched.len() > 1 {
            load.cross_shard += 1;
        } else {
            load.single_shard += 1;
        }
    }
    load
}

/// `results.json`'s `shards`: the count, the commit protocol, per shard its preferred
/// node, its leader at the end and (with `load`) its operations and share of them, and
/// the single-shard and cross-shard counts. See `docs/running.md`.
pub fn summary(
    config: &RunConfig,
    node_names: &[String],
    leaders: &[Option<String>],
    load: Option<&ShardLoad>,
) -> Value {
    let preferred = placement(config.shards, node_names);
    let touches: u64 = load.map_or(0, |l| l.operations.iter().sum());
    let per_shard: Vec<Value> = (0..config.shards as usize)
        .map(|shard| {
            let mut entry = json!({
                "shard": shard,
                "preferred": preferred.get(shard),
                "leader": leaders.get(shard).cloned().flatten(),
            });
            if let Some(load) = load {
                let operations = load.operations.get(shard).copied().unwrap_or(0);
                entry["operations"] = json!(operations);
                entry["share"] = json!(if touches == 0 {
                    0.0
                } else {
                    operations as f64 / touches as f64
                });
            }
            entry
        })
        .collect();
    let mut summary = json!({
        "count": config.shards,
        "commit_protocol": config.commit_protocol.map(|p| p.name()),
        "per_shard": per_shard,
    });
    if let Some(load) = load {
        summary["single_shard_txns"] = json!(load.single_shard);
        summary["cross_shard_txns"] = json!(load.cross_shard);
        summary["unplaced_ops"] = json!(load.unplaced);
    }
    summary
}

#[cfg(test)]
mod tests;
