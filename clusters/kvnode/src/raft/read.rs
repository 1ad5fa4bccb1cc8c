//! Linearizable reads by ReadIndex: the leader notes its commit index, confirms with a
//! quorum that it is still the leader, and lets the read run once that index is applied.

use std::collections::VecDeque;

use super::node::Raft;
use super::progress::quorum_value;
use super::types::{NotLeader, ReadState, Role};

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
    /// Waiting for the leader's first commit in its term (its commit index may lag).
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

impl Raft {
    /// Asks to serve a linearizable read identified by `ctx`. The read appears later in
    /// [`crate::raft::Ready::read_states`] (serve it once applied up to its index) or in
    /// `failed_reads`. Only the leader serves reads, unless the `stale-read` bug is on.
    pub fn read_index(&mut self, ctx: u64) -> Result<(), NotLeader> {
        if self.cfg.bugs.stale_read {
            self.read_states.push(ReadState {
                ctx,
                index: self.commit,
            });
            return Ok(());
        }
        if self.role != Role::Leader {
            return Err(NotLeader {
                leader: self.leader,
            });
        }
        if self.log.term(self.commit) != Some(self.term) {
            self.reads.waiting_commit.push(ctx);
            return Ok(());
        }
        self.enqueue_read(ctx);
        Ok(())
    }

    fn enqueue_read(&mut self, ctx: u64) {
        let index = self.commit;
        if self.voters.len() == 1 || (self.cfg.lease_read && self.has_lease()) {
            self.read_states.push(ReadState { ctx, index });
            return;
        }
        self.reads.pending.push_back(PendingRead {
            ctx,
            index,
            round: 0,
        });
    }

    /// Called when a leader's commit index advances.
    pub(super) fn on_commit_advanced(&mut self) {
        if self.log.term(self.commit) == Some(self.term) && !self.reads.waiting_commit.is_empty() {
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
        let id = self.id;
        let acked: Vec<u64> = self
            .voters
            .iter()
            .map(|v| {
                if *v == id {
                    u64::MAX
                } else {
                    self.progress.get(v).map_or(0, |p| p.read_seq)
                }
            })
            .collect();
        let confirmed = quorum_value(acked);
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
