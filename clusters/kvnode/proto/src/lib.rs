//! The formats of `faultline-kv` that other crates read or write, without its server
//! (no tokio): [`txn`], the micro-ops `[f, key, value]` of a transaction; [`client`],
//! the client protocol's requests and responses, one JSON object a line; and [`wal`],
//! the record framing of the write-ahead log, `[length][crc32][payload]`; and
//! [`settings`], the consensus protocol, the commit protocol and the planted bugs the
//! harness chooses; and [`shard`], which shard holds a key and which node a shard's
//! leader prefers.
//!
//! Used by the node itself, the workloads' `kv` store (the client), the clusters'
//! `kv` database (its status probe) and the nemesis's disk faults (which damage the
//! log record by record).

#![deny(missing_docs)]

pub mod client;
pub mod settings;
pub mod shard;
pub mod txn;
pub mod wal;

pub use client::{Body, Outcome, Request, Response, parse_request};
pub use settings::{Bug, CommitProtocol, Protocol};
pub use shard::{preferred_node, shard_of, shards_of};
pub use txn::{MicroOp, TxnParseError, parse_txn, txn_to_json};
