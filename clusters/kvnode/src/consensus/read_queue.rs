//! The leader's queue of linearizable reads, shared by both consensus cores (Raft's
//! ReadIndex and Multi-Paxos' leader confirmation round).
//!
//! A read first waits while the leader's commit index may lag what earlier leaders
//! committed ([`ReadQueue::hold`]); it is then noted with the commit index of that
//! moment ([`ReadQueue::note`]); a confirmation round started after it is noted
//! ([`ReadQueue::start_round`]) and acknowledged by a quorum releases it
//! ([`ReadQueue::release`]), to be served once applied up to its index. The queue also
//! keeps the leader's round counter ([`ReadQueue::seq`], carried by its heartbeats and
//! echoed by followers) and the reads to hand out in the next ready: released ones
//! and failed ones.

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
    /// The latest confirmation round started.
    seq: u64,
    /// Reads that may be served, for the next ready.
    ready: Vec<ReadState>,
    /// Reads that will never be served, for the next ready.
    failed: Vec<u64>,
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

    /// Read `ctx` may be served once applied up to `index`, without a round (a
    /// single voter, a lease, or a planted bug).
    pub(crate) fn serve(&mut self, ctx: u64, index: u64) {
        self.ready.push(ReadState { ctx, index });
    }

    /// Whether some read needs a confirmation round.
    pub(crate) fn needs_round(&self) -> bool {
        self.pending.back().is_some_and(|r| r.round == 0)
    }

    /// The latest confirmation round started (0: none yet).
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    /// Starts a new round for the reads that have none, if any; true when it did (the
    /// leader then sends heartbeats carrying [`ReadQueue::seq`]).
    pub(crate) fn next_round(&mut self) -> bool {
        if !self.needs_round() {
            return false;
        }
        self.seq += 1;
        self.start_round(self.seq);
        true
    }

    /// Assigns `round` to the reads that have none.
    fn start_round(&mut self, round: u64) {
        for read in self.pending.iter_mut().rev() {
            if read.round != 0 {
                break;
            }
            read.round = round;
        }
    }

    /// Releases the reads of every round up to `confirmed` (acknowledged by a quorum),
    /// in order.
    pub(crate) fn release(&mut self, confirmed: u64) {
        while let Some(read) = self.pending.front() {
            if read.round == 0 || read.round > confirmed {
                break;
            }
            self.ready.push(ReadState {
                ctx: read.ctx,
                index: read.index,
            });
            self.pending.pop_front();
        }
    }

    /// Gives up every held or noted read (leadership lost): they were never served.
    pub(crate) fn fail_all(&mut self) {
        self.failed.append(&mut self.held);
        self.failed.extend(self.pending.drain(..).map(|r| r.ctx));
    }

    /// Forgets held and noted reads without failing them (a new leader starts afresh).
    pub(crate) fn clear(&mut self) {
        self.held.clear();
        self.pending.clear();
    }

    /// Whether the next ready has reads to hand out or a round to start.
    pub(crate) fn has_work(&self) -> bool {
        !self.ready.is_empty() || !self.failed.is_empty() || self.needs_round()
    }

    /// The reads that may be served, for a ready.
    pub(crate) fn take_ready(&mut self) -> Vec<ReadState> {
        std::mem::take(&mut self.ready)
    }

    /// The reads that will never be served, for a ready.
    pub(crate) fn take_failed(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.failed)
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
        assert!(q.next_round());
        assert_eq!(q.seq(), 1);
        q.note(2, 11);
        q.release(1);
        let mut out = q.take_ready();
        assert_eq!(out, [ReadState { ctx: 1, index: 10 }]);
        q.release(5);
        out.extend(q.take_ready());
        assert_eq!(out.len(), 1, "read 2 has no round yet");
        assert!(q.next_round());
        assert!(!q.needs_round());
        assert!(!q.next_round());
        q.release(1);
        out.extend(q.take_ready());
        assert_eq!(out.len(), 1, "round 2 not yet confirmed");
        q.release(2);
        out.extend(q.take_ready());
        assert_eq!(out[1], ReadState { ctx: 2, index: 11 });
        assert!(!q.has_pending());
    }

    #[test]
    fn losing_leadership_fails_held_and_noted_reads() {
        let mut q = ReadQueue::default();
        q.hold(1);
        q.note(2, 3);
        assert!(q.has_held());
        q.fail_all();
        assert!(q.has_work());
        let failed = q.take_failed();
        assert_eq!(failed, [1, 2]);
        assert!(!q.has_held() && !q.has_pending() && q.take_held().is_empty());
        assert!(!q.has_work());
    }
}
