//! Tests of a sharded run's placement, leaders and load.

use faultline_checker::Process;
use faultline_clusters::db::ShardStatus;
use faultline_workloads::workload::{WorkloadOptions, store_keys};
use serde_json::json;

use super::*;
use crate::config::RunArgs;

fn names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("n{i}")).collect()
}

fn config(shards: Option<u32>) -> RunConfig {
    RunConfig::resolve(&RunArgs {
        shards,
        workload: Some("list-append".into()),
        seed: Some(1),
        ..RunArgs::default()
    })
    .unwrap()
}

#[test]
fn shards_prefer_the_nodes_in_turn_by_name() {
    assert_eq!(placement(5, &names(3)), ["n1", "n2", "n3", "n1", "n2"]);
    let hosts: Vec<String> = ["db-a", "db-b"].iter().map(|s| s.to_string()).collect();
    assert_eq!(placement(3, &hosts), ["db-a", "db-b", "db-a"]);
    assert!(placement(3, &[]).is_empty());
}

#[test]
fn config_json_has_the_placement_only_when_sharded() {
    let sharded = config_json(&config(Some(3)), &names(5)).unwrap();
    assert_eq!(sharded["shards"], 3);
    assert_eq!(sharded["commit-protocol"], "2pc");
    assert_eq!(sharded["placement"], json!(["n1", "n2", "n3"]));
    let keys: Vec<&str> = sharded
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let at = |key: &str| keys.iter().position(|k| *k == key).unwrap();
    assert_eq!(at("shards") + 1, at("commit-protocol"));
    assert_eq!(at("commit-protocol") + 1, at("placement"));
    // An unsharded run's config.json is the configuration as it always was.
    let unsharded = config(None);
    let json = config_json(&unsharded, &names(5)).unwrap();
    assert_eq!(json, serde_json::to_value(&unsharded).unwrap());
    assert!(json.get("placement").is_none() && json.get("shards").is_none());
}

fn status(shard: u32, role: &str, leader: Option<u64>, term: u64) -> ShardStatus {
    ShardStatus {
        shard,
        role: role.into(),
        leader,
        term: Some(term),
    }
}

fn node(id: u64, shards: Vec<ShardStatus>) -> NodeShards {
    NodeShards {
        id,
        name: format!("n{id}"),
        shards,
    }
}

#[test]
fn a_shards_leader_is_the_majoritys_or_the_one_claiming_it() {
    let reports = vec![
        // Shard 0: three of five name n2. Shard 1: only n3 claims it (no majority
        // knows a leader). Shard 2: n4 and n5 claim it, n5 in a later term.
        node(
            1,
            vec![
                status(0, "follower", Some(2), 3),
                status(1, "follower", None, 1),
                status(2, "candidate", None, 4),
            ],
        ),
        node(
            2,
            vec![
                status(0, "leader", None, 3),
                status(1, "follower", Some(1), 1),
                status(2, "leader", Some(4), 2),
            ],
        ),
        node(
            3,
            vec![
                status(0, "follower", Some(2), 3),
                status(1, "leader", Some(3), 2),
                status(2, "leader", Some(5), 5),
            ],
        ),
        node(4, vec![status(0, "follower", Some(1), 2)]),
        // Unreachable.
        node(5, vec![]),
    ];
    assert_eq!(
        leaders(&reports, 4),
        [
            Some("n2".to_string()),
            Some("n3".to_string()),
            Some("n3".to_string()),
            None
        ]
    );
    // Two claims in one term: nobody can tell.
    let tied = vec![
        node(1, vec![status(0, "leader", None, 2)]),
        node(2, vec![status(0, "leader", None, 2)]),
        node(3, vec![]),
    ];
    assert_eq!(leaders(&tied, 1), [None]);
}

/// Integer keys `k` whose list-append store key `lak` lies in `shard` of 3.
fn key_in(shard: u32) -> i64 {
    (0..)
        .find(|k| shard_of(&format!("la{k}"), 3) == shard)
        .unwrap()
}

fn op(index: u64, op_type: OpType, value: Value) -> Op {
    Op::new(
        index,
        index as i64,
        Process::Client(0),
        op_type,
        "txn",
        value,
    )
}

#[test]
fn the_load_counts_completed_operations_per_shard_and_across_shards() {
    let (a, b) = (key_in(0), key_in(1));
    let ops = vec![
        op(0, OpType::Invoke, json!([["append", a, 1]])),
        op(1, OpType::Ok, json!([["append", a, 1]])),
        op(2, OpType::Invoke, json!([["append", a, 2], ["r", b, null]])),
        op(3, OpType::Fail, json!([["append", a, 2], ["r", b, null]])),
        op(4, OpType::Invoke, json!([["r", b, null], ["r", b, null]])),
        op(5, OpType::Info, json!([["r", b, null], ["r", b, null]])),
        // Not a list-append transaction: its keys cannot be told.
        op(6, OpType::Ok, json!("garbage")),
        Op::new(7, 7, Process::Nemesis, OpType::Info, "kill", json!(["n1"])),
    ];
    let options = WorkloadOptions::default();
    let load = load(&ops, 3, |op| store_keys("list-append", &options, op));
    assert_eq!(
        load,
        ShardLoad {
            operations: vec![2, 2, 0],
            single_shard: 2,
            cross_shard: 1,
            unplaced: 1,
        }
    );
    let summary = summary(
        &config(Some(3)),
        &names(3),
        &[Some("n2".into()), None, Some("n3".into())],
        Some(&load),
    );
    assert_eq!(
        summary,
        json!({
            "count": 3,
            "commit_protocol": "2pc",
            "per_shard": [
                {"shard": 0, "preferred": "n1", "leader": "n2", "operations": 2, "share": 0.5},
                {"shard": 1, "preferred": "n2", "leader": null, "operations": 2, "share": 0.5},
                {"shard": 2, "preferred": "n3", "leader": "n3", "operations": 0, "share": 0.0}
            ],
            "single_shard_txns": 2,
            "cross_shard_txns": 1,
            "unplaced_ops": 1
        })
    );
    // Without a load (a client program names its own keys): placement and leaders only.
    let without = super::summary(&config(Some(3)), &names(3), &[], None);
    assert!(without.get("single_shard_txns").is_none());
    assert!(without["per_shard"][0].get("operations").is_none());
    assert_eq!(without["per_shard"][0]["preferred"], "n1");
}
