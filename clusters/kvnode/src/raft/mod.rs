//! The consensus core: Raft as a deterministic state machine that does no I/O.
//!
//! The application owns time, the network and the disk, and drives a [`Raft`] like this:
//!
//! 1. feed it events through its [`Core`](crate::consensus::Core) methods: `tick` at a
//!    fixed interval, `step` for each message from a peer, `propose` for commands and
//!    [`Raft::read_index`] for reads;
//! 2. when `has_ready`, take a [`Ready`] and handle it in order: persist the
//!    snapshot, entries and hard state durably; log the votes it cast (`votes`, only
//!    now that they are durable); send the messages; apply the snapshot and committed
//!    entries to the state machine; serve the confirmed reads;
//! 3. call `advance` with the same `Ready`.
//!
//! Everything that arrives while step 2 is in progress is batched into the next
//! `Ready`, which is how the server gets group commit. Randomness (election
//! timeouts) comes from [`Config::seed`], so runs are reproducible.
//!
//! Implemented: pre-vote, randomized election timeouts, leader lease checks (a leader
//! steps down when it has not heard from a quorum within an election timeout, and
//! followers that hear from a leader ignore vote requests), pipelined replication
//! with fast conflict back-off, commit by counting replicas of current-term entries,
//! ReadIndex reads (lease reads behind [`Config::lease_read`]), snapshots with log
//! compaction and InstallSnapshot.

mod election;
mod log;
mod node;
mod progress;
mod read;
mod replication;
mod types;

pub use node::Raft;
pub use types::{Config, CoreBugs, HardState, Message, MessageBody, Ready, WallClock};

#[cfg(test)]
mod tests;
