#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod codec;
pub mod commit;
pub mod consensus;
pub mod events;
pub mod kv;
pub mod paxos;
pub mod peer;
pub mod protocol;
pub mod raft;
pub mod server;
pub mod storage;
