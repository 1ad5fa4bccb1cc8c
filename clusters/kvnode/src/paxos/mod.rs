//! The Multi-Paxos consensus core: a deterministic state machine that does no I/O,
//! driven like [`crate::raft`] and serving the same state machine and clients.
//!
//! Every node is proposer, acceptor and learner. Ballots are `(round, node id)`. A
//! node that has not heard from a leader within a randomized timeout runs phase 1
//! once for all open slots (those after its chosen prefix) with a ballot above every
//! round it has seen; acceptors promise it and report their accepted values (or their
//! snapshot, when it covers those slots). With a quorum of promises the node leads:
//! per slot it adopts the value accepted in the highest ballot, fills gaps with
//! no-ops, and runs phase 2 for each slot, streaming consecutive slots to each
//! acceptor. A value accepted by a quorum in one ballot is chosen; the leader
//! announces its chosen prefix and acceptors learn the slots they hold in the
//! leader's ballot; everyone applies chosen values in slot order. Replicas behind the
//! leader's snapshot receive it. A refused ballot (nack) makes a proposer back off for
//! a fresh random timeout, so duelling proposers settle.
//!
//! The application drives a [`Paxos`] like a Raft node:
//!
//! 1. through its [`Core`](crate::consensus::Core) methods: `tick` at a fixed
//!    interval, `step` for each message, [`Paxos::propose`] for commands,
//!    [`Paxos::read_index`] for reads;
//! 2. when `has_ready`, take a [`Ready`]: persist the snapshot, accepted values,
//!    promised ballot and commit hint and fsync; only then log its promises (`votes`)
//!    and send the messages (promises and acceptances must be durable first); install the snapshot, apply
//!    the chosen values; serve confirmed reads;
//! 3. call `advance` with the same `Ready`.
//!
//! Reads are linearizable through a leader confirmation round (see `read`).

mod election;
mod node;
mod read;
mod replication;
mod types;
pub mod wire;

pub use node::Paxos;
pub use types::{
    Accepted, Ballot, Config, Durable, MAX_NODE_ID, Message, MessageBody, PaxosBugs, Ready,
};

#[cfg(test)]
mod tests;
