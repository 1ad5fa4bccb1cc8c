//! Linearizable reads by a leader confirmation round (Paxos' equivalent of
//! ReadIndex): the leader notes its chosen prefix, sends a heartbeat in its ballot,
//! and once a quorum that still accepts the ballot has answered, the read may be
//! served after applying up to the noted slot. A new leader first waits until every
//! slot it adopted from the promises is chosen (its chosen prefix may lag).

use std::collections::VecDeque;

use crate::raft::{NotLeader, ReadState, Role};

use super::node::Paxos;

#[derive(Debug, Clone, Copy)]
struct PendingRead {
    ctx: u64,
    index: u64,
    /// The confirmation round; 0 until a round is started.
    round: u64,
}

/// Reads a leader holds until they are confirmed.
#[derive(Debug, Default)]
pub(super) struct ReadQueue {
    /// Waiting until the adopted slots are chosen.
    waiting_commit: Vec<u64>,
    pending: VecDeque<PendingRead>,
}

impl ReadQueue {
    /// Whether some read needs a confirmation round.
    pub(super) fn needs_round(&self) -> bool {
        self.pending.back().is_some_and(|r| r.round == 0)
    }

    /// Assigns `round` to the reads that have none.
    pub(super) fn start_round(&mut self, round: u64) {
        for read in self.pending.iter_mut().rev() {
            if read.round != 0 {
                break;
            }
            read.round = round;
        }
    }

    /// Gives up every read (leadership lost): they were never served.
    pub(super) fn fail_all(&mut self, failed: &mut Vec<u64>) {
        failed.append(&mut self.waiting_commit);
        failed.extend(self.pending.drain(..).map(|r| r.ctx));
    }
}

impl Paxos {
    /// Asks to serve a linearizable read identified by `ctx`. The read appears later in
    /// [`crate::paxos::Ready::read_states`] (serve it once applied up to its index) or
    /// in `failed_reads`. Only the leader serves reads.
    pub fn read_index(&mut self, ctx: u64) -> Result<(), NotLeader> {
        if self.role != Role::Leader {
            return Err(NotLeader {
                leader: self.leader,
            });
        }
        if self.commit < self.adopted_upto {
            self.reads.waiting_commit.push(ctx);
            return Ok(());
        }
        self.enqueue_read(ctx);
        Ok(())
    }

    fn enqueue_read(&mut self, ctx: u64) {
        let index = self.commit;
        if self.voters.len() == 1 {
            self.read_states.push(ReadState { ctx, index });
            return;
        }
        self.reads.pending.push_back(PendingRead {
            ctx,
            index,
            round: 0,
        });
    }

    /// Called when a leader's chosen prefix advances.
    pub(super) fn on_commit_advanced(&mut self) {
        if self.commit >= self.adopted_upto && !self.reads.waiting_commit.is_empty() {
            for ctx in std::mem::take(&mut self.reads.waiting_commit) {
                self.enqueue_read(ctx);
            }
        }
    }

    /// Releases the reads whose confirmation round a quorum has acknowledged.
    pub(super) fn release_reads(&mut self) {
        if self.reads.pending.is_empty() {
            return;
        }
        let mut acked: Vec<u64> = self.peers.values().map(|p| p.read_seq).collect();
        acked.push(u64::MAX);
        acked.sort_unstable_by(|a, b| b.cmp(a));
        let confirmed = acked.get(self.quorum() - 1).copied().unwrap_or(0);
        while let Some(read) = self.reads.pending.front() {
            if read.round == 0 || read.round > confirmed {
                break;
            }
            self.read_states.push(ReadState {
                ctx: read.ctx,
                index: read.index,
            });
            self.reads.pending.pop_front();
        }
    }
}
