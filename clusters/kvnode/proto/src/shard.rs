//! Sharding (`--shards N`): which shard holds a key, and which node each shard's
//! leader prefers. One definition for the node, which routes by it, and the harness,
//! which reports each shard's placement and load by it.

use crate::txn::MicroOp;

/// The shard (`0..shards`) that holds `key` (as [`MicroOp::key_string`] spells it, so
/// the integer key `3` and the string `"3"` are one key): the CRC-32 (IEEE) of its
/// bytes modulo the shard count. Stable across versions and machines: changing it
/// would move keys between shards of an existing data directory.
pub fn shard_of(key: &str, shards: u32) -> u32 {
    if shards <= 1 {
        return 0;
    }
    crc32fast::hash(key.as_bytes()) % shards
}

/// The shards a transaction's micro-ops touch, ascending and without repeats.
pub fn shards_of(ops: &[MicroOp], shards: u32) -> Vec<u32> {
    let mut touched: Vec<u32> = ops
        .iter()
        .map(|op| shard_of(&op.key_string(), shards))
        .collect();
    touched.sort_unstable();
    touched.dedup();
    touched
}

/// The position, in the cluster's node ids sorted ascending (`nodes` of them), of the
/// node that shard `shard`'s leader prefers: `shard mod nodes`, so leaders spread
/// across the nodes. That node's election timeout for the shard is the configured
/// one, every other node's is twice it, so it is usually elected first.
pub fn preferred_node(shard: u32, nodes: usize) -> usize {
    if nodes == 0 {
        return 0;
    }
    shard as usize % nodes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::parse_txn;

    #[test]
    fn keys_spread_over_the_shards_stably() {
        // Pinned values: a change would move keys between shards of existing data.
        assert_eq!(shard_of("x", 3), crc32fast::hash(b"x") % 3);
        assert_eq!(crc32fast::hash(b"123456789"), 0xcbf4_3926);
        assert_eq!(shard_of("anything", 1), 0);
        assert_eq!(shard_of("anything", 0), 0);
        let mut counts = [0u32; 3];
        for k in 0..300 {
            counts[shard_of(&k.to_string(), 3) as usize] += 1;
        }
        assert!(counts.iter().all(|c| *c > 70), "{counts:?}");
    }

    #[test]
    fn a_transaction_touches_its_keys_shards() {
        let txn = parse_txn(&serde_json::json!([["r", 3, null], ["append", "3", 1]])).unwrap();
        assert_eq!(shards_of(&txn, 3), vec![shard_of("3", 3)]);
        let keys: Vec<String> = (0..20).map(|k| k.to_string()).collect();
        let all: Vec<MicroOp> = keys
            .iter()
            .map(|k| {
                parse_txn(&serde_json::json!([["r", k, null]]))
                    .unwrap()
                    .remove(0)
            })
            .collect();
        assert_eq!(shards_of(&all, 3), vec![0, 1, 2]);
    }

    #[test]
    fn leaders_prefer_nodes_in_turn() {
        let placed: Vec<usize> = (0..5).map(|s| preferred_node(s, 3)).collect();
        assert_eq!(placed, vec![0, 1, 2, 0, 1]);
        assert_eq!(preferred_node(4, 0), 0);
    }
}
