//! What a shard's log entries and snapshots hold.
//!
//! An entry is a client's transaction, a JSON list of micro-ops (as ever), a
//! two-phase commit record, a JSON object `{"record": "prepared" | "decided" |
//! "finished", ...}`, or a committed three-phase commit part, `{"committed-part":
//! TXN, "ops": [...]}` (the last two only on a sharded node). A snapshot is the store's JSON map, or,
//! on a sharded node, the byte [`SHARDED_SNAPSHOT`] followed by a JSON object holding
//! the store and the records' durable state (locks, outcomes), which a replica
//! restored from the snapshot needs as much as the data.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::commit::two_phase::{Durable, Record};
use crate::kv::{MicroOp, Store, parse_txn};

/// The first byte of a sharded node's snapshot (never the first byte of JSON).
pub const SHARDED_SNAPSHOT: u8 = 0x02;

/// What an entry holds.
#[derive(Debug)]
pub enum Command {
    /// A client's transaction.
    Txn(Vec<MicroOp>),
    /// A two-phase commit record.
    Record(Record),
    /// A committed three-phase commit part, applied at its shard's home.
    Part {
        /// Its transaction.
        txn: u64,
        /// Its micro-ops.
        ops: Vec<MicroOp>,
    },
}

/// A committed 3PC part as an entry: `{"committed-part": TXN, "ops": [...]}`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct PartEntry {
    committed_part: u64,
    ops: Value,
}

/// Reads an entry's payload.
pub fn decode(data: &[u8]) -> Result<Command, String> {
    let value: Value = serde_json::from_slice(data).map_err(|e| e.to_string())?;
    if value.get("committed-part").is_some() {
        let entry: PartEntry = serde_json::from_value(value).map_err(|e| e.to_string())?;
        parse_txn(&entry.ops)
            .map(|ops| Command::Part {
                txn: entry.committed_part,
                ops,
            })
            .map_err(|e| format!("committed part {}: {e}", entry.committed_part))
    } else if value.is_object() {
        serde_json::from_value(value)
            .map(Command::Record)
            .map_err(|e| format!("commit record: {e}"))
    } else {
        parse_txn(&value)
            .map(Command::Txn)
            .map_err(|e| e.to_string())
    }
}

/// A committed 3PC part of `txn` as an entry's payload.
pub fn encode_part(txn: u64, ops: &[MicroOp]) -> Vec<u8> {
    let entry = PartEntry {
        committed_part: txn,
        ops: crate::kv::txn_to_json(ops),
    };
    serde_json::to_vec(&entry).unwrap_or_default()
}

/// A record as an entry's payload.
pub fn encode(record: &Record) -> Vec<u8> {
    serde_json::to_vec(record).unwrap_or_default()
}

#[derive(Serialize, Deserialize)]
struct ShardedSnapshot {
    store: Store,
    commit: Durable,
}

/// A snapshot's payload: the store's alone, or with the commit state (sharded).
pub fn snapshot(store: &Store, commit: Option<Durable>) -> Vec<u8> {
    match commit {
        None => store.to_bytes(),
        Some(commit) => {
            let mut out = vec![SHARDED_SNAPSHOT];
            let sharded = ShardedSnapshot {
                store: store.clone(),
                commit,
            };
            out.extend(serde_json::to_vec(&sharded).unwrap_or_default());
            out
        }
    }
}

/// Reads what [`snapshot`] wrote: the store and, from a sharded node's, the commit
/// state.
pub fn restore(bytes: &[u8]) -> Result<(Store, Option<Durable>), String> {
    match bytes.split_first() {
        Some((&SHARDED_SNAPSHOT, rest)) => {
            let sharded: ShardedSnapshot =
                serde_json::from_slice(rest).map_err(|e| e.to_string())?;
            Ok((sharded.store, Some(sharded.commit)))
        }
        _ => Store::from_bytes(bytes)
            .map(|store| (store, None))
            .map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commit::Decision;
    use crate::commit::two_phase::PreparedPart;
    use serde_json::json;

    #[test]
    fn entries_and_snapshots_round_trip() {
        let txn = serde_json::to_vec(&json!([["append", "x", 1]])).unwrap();
        assert!(matches!(decode(&txn), Ok(Command::Txn(ops)) if ops.len() == 1));
        let record = Record::Decided {
            txn: 7,
            decision: Decision::Commit,
            participants: vec![0, 2],
        };
        let Ok(Command::Record(back)) = decode(&encode(&record)) else {
            panic!("not a record");
        };
        assert_eq!(back, record);
        assert!(decode(b"{\"record\":\"nonsense\"}").is_err());
        let ops = parse_txn(&json!([["append", "x", 2]])).unwrap();
        let Ok(Command::Part { txn: 9, ops: back }) = decode(&encode_part(9, &ops)) else {
            panic!("not a part");
        };
        assert_eq!(back, ops);
        assert!(decode(b"[[\"x\"]]").is_err());

        let mut store = Store::new();
        let ops = parse_txn(&json!([["w", "k", 3]])).unwrap();
        store.apply(&ops);
        let (plain, none) = restore(&snapshot(&store, None)).unwrap();
        assert_eq!((plain, none), (store.clone(), None));
        let mut durable = Durable::default();
        durable.prepared.insert(
            u64::MAX,
            PreparedPart {
                coordinator: 1,
                keys: vec!["k".into()],
                part: b"[]".to_vec(),
            },
        );
        durable.decided.insert(3, (Decision::Abort, vec![1, 2]));
        let (back, commit) = restore(&snapshot(&store, Some(durable.clone()))).unwrap();
        assert_eq!((back, commit), (store, Some(durable)));
        assert!(restore(&[SHARDED_SNAPSHOT, b'{']).is_err());
    }
}
