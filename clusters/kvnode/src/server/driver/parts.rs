//! A cross-shard transaction's parts: its micro-ops split by shard, its results
//! reassembled from the parts' reads, and its id.

use std::collections::BTreeMap;

use serde_json::Value;

use faultline_kv_proto::shard_of;

use crate::commit::ShardId;
use crate::kv::{MicroOp, txn_to_json};

/// SplitMix64's output function: a bijection that spreads its input's bits.
pub(super) fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `txn`'s parts: for each shard it touches, the keys and micro-ops there, in order.
pub(super) fn split(txn: &[MicroOp], shards: u32) -> Vec<(ShardId, Vec<String>, Vec<u8>)> {
    let mut parts: BTreeMap<ShardId, (Vec<String>, Vec<MicroOp>)> = BTreeMap::new();
    for op in txn {
        let key = op.key_string();
        let (keys, ops) = parts.entry(shard_of(&key, shards)).or_default();
        if !keys.contains(&key) {
            keys.push(key);
        }
        ops.push(op.clone());
    }
    parts
        .into_iter()
        .map(|(shard, (keys, ops))| {
            let part = serde_json::to_vec(&txn_to_json(&ops)).unwrap_or_default();
            (shard, keys, part)
        })
        .collect()
}

/// The transaction's results from its parts' reads, in its own order; `None` when a
/// part with reads did not report them.
pub(super) fn assemble(
    txn: &[MicroOp],
    shards: u32,
    reads: &BTreeMap<ShardId, Vec<u8>>,
) -> Option<Vec<Value>> {
    let mut parts: BTreeMap<ShardId, std::vec::IntoIter<Value>> = reads
        .iter()
        .filter_map(|(shard, bytes)| {
            let values: Vec<Value> = serde_json::from_slice(bytes).ok()?;
            Some((*shard, values.into_iter()))
        })
        .collect();
    txn.iter()
        .map(|op| {
            let shard = shard_of(&op.key_string(), shards);
            match parts.get_mut(&shard).and_then(Iterator::next) {
                Some(result) => Some(result),
                None if !op.is_read() => Some(op.to_json(None)),
                None => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::parse_txn;
    use serde_json::json;

    fn ops(v: Value) -> Vec<MicroOp> {
        parse_txn(&v).unwrap()
    }

    #[test]
    fn a_transaction_splits_by_shard_and_its_results_reassemble_in_order() {
        let txn = ops(json!([
            ["append", "a", 1],
            ["r", "b", null],
            ["r", "a", null]
        ]));
        let shards = 64;
        let parts = split(&txn, shards);
        let (sa, sb) = (shard_of("a", shards), shard_of("b", shards));
        assert_ne!(sa, sb, "pick keys of different shards");
        assert_eq!(parts.len(), 2);
        let part_a = parts.iter().find(|p| p.0 == sa).unwrap();
        assert_eq!(part_a.1, vec!["a".to_string()]);
        let part_ops: Value = serde_json::from_slice(&part_a.2).unwrap();
        assert_eq!(part_ops, json!([["append", "a", 1], ["r", "a", null]]));
        let mut reads = BTreeMap::new();
        reads.insert(
            sa,
            serde_json::to_vec(&json!([["append", "a", 1], ["r", "a", [1]]])).unwrap(),
        );
        reads.insert(sb, serde_json::to_vec(&json!([["r", "b", [7]]])).unwrap());
        assert_eq!(
            assemble(&txn, shards, &reads),
            Some(vec![
                json!(["append", "a", 1]),
                json!(["r", "b", [7]]),
                json!(["r", "a", [1]])
            ])
        );
        reads.remove(&sb);
        assert_eq!(assemble(&txn, shards, &reads), None, "a read is missing");
        let writes = ops(json!([["w", "a", 1], ["w", "b", 2]]));
        assert_eq!(
            assemble(&writes, shards, &BTreeMap::new()),
            Some(vec![json!(["w", "a", 1]), json!(["w", "b", 2])])
        );
    }
}
