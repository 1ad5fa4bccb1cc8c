//! The leader's queue of linearizable reads, shared by both consensus cores (Raft's
//! ReadIndex and Multi-Paxos' leader confirmation round).
//!
//! A read first waits while the leader's commit index may lag what earlier leaders
//! committed ([`ReadQueue::hold`]); it is then noted with the commit index of that
//! moment ([`ReadQueue::note`]); a confirmation round started after it is noted
//! ([`ReadQueue::start_round`]) and acknowledged by a quorum releases it
//! ([`ReadQueue::release`]), to be served once applied up to its index.

use std::collections::VecDeque;

use super::types::ReadState;

#[derive(Debug, Clone, Copy)]
struct PendingRead {
    ctx: u64,
    index: u64,
    /// The confirmation round; 0 until a round is started.
    round: u64,
}

/// Reads a leader holds until they are confirmed.
#[derive(Debug, Default)]
pub(crate) struct ReadQueue {
    /// Waiting until the leader's commit index covers its predecessors' commits.
    held: Vec<u64>,
    pending: VecDeque<PendingRead>,
}

impl ReadQueue {
    /// Holds read `ctx` until the leader's commit index can be trusted.
    pub(crate) fn hold(&mut self, ctx: u64) {
        self.held.push(ctx);
    }

    /// Takes the held reads (the commit index can now be trusted).
    pub(crate) fn take_held(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.held)
    }

    /// Whether some read is held.
    pub(crate) fn has_held(&self) -> bool {
        !self.held.is_empty()
    }

    /// Notes read `ctx` at commit index `index`, to wait for a confirmation round.
    pub(crate) fn note(&mut self, ctx: u64, index: u64) {
        self.pending.push_back(PendingRead {
            ctx,
            index,
            round: 0,
        });
    }

    /// Whether some noted read waits for its confirmation.
    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Whether some read needs a confirmation round.
    pub(crate) fn needs_round(&self) -> bool {
        self.pending.back().is_some_and(|r| r.round == 0)
    }

    /// Assigns `round` to the reads that have none.
    pub(crate) fn start_round(&mut self, round: u64) {
        for read in self.pending.iter_mut().rev() {
            if read.round != 0 {
                break;
            }
            read.round = round;
        }
    }

    /// Moves the reads of every round up to `confirmed` (acknowledged by a quorum) to
    /// `released`, in order.
    pub(crate) fn release(&mut self, confirmed: u64, released: &mut Vec<ReadState>) {
        while let Some(read) = self.pending.front() {
            if read.round == 0 || read.round > confirmed {
                break;
            }
            released.push(ReadState {
                ctx: read.ctx,
                index: read.index,
            });
            self.pending.pop_front();
        }
    }

    /// Gives up every read (leadership lost): they were never served.
    pub(crate) fn fail_all(&mut self, failed: &mut Vec<u64>) {
        failed.append(&mut self.held);
        failed.extend(self.pending.drain(..).map(|r| r.ctx));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_released_by_a_round_started_after_they_were_noted() {
        let mut q = ReadQueue::default();
        q.note(1, 10);
        assert!(q.needs_round());
        q.start_round(1);
        q.note(2, 11);
        let mut out = Vec::new();
        q.release(1, &mut out);
        assert_eq!(out, [ReadState { ctx: 1, index: 10 }]);
        q.release(5, &mut out);
        assert_eq!(out.len(), 1, "read 2 has no round yet");
        q.start_round(2);
        assert!(!q.needs_round());
        q.release(1, &mut out);
        assert_eq!(out.len(), 1, "round 2 not yet confirmed");
        q.release(2, &mut out);
        assert_eq!(out[1], ReadState { ctx: 2, index: 11 });
        assert!(!q.has_pending());
    }

    #[test]
    fn losing_leadership_fails_held_and_noted_reads() {
        let mut q = ReadQueue::default();
        q.hold(1);
        q.note(2, 3);
        assert!(q.has_held());
        let mut failed = Vec::new();
        q.fail_all(&mut failed);
        assert_eq!(failed, [1, 2]);
        assert!(!q.has_held() && !q.has_pending() && q.take_held().is_empty());
    }
}
