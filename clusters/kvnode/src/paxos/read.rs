//! Linearizable reads by a leader confirmation round (Paxos' equivalent of
//! ReadIndex): the leader notes its chosen prefix, sends a heartbeat in its ballot,
//! and once a quorum that still accepts the ballot has answered, the read may be
//! served after applying up to the noted slot. A new leader first waits until every
//! slot it adopted from the promises is chosen (its chosen prefix may lag).

use crate::consensus::{NotLeader, Role, quorum_value};

use super::node::Paxos;

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
            self.reads.hold(ctx);
            return Ok(());
        }
        self.enqueue_read(ctx);
        Ok(())
    }

    fn enqueue_read(&mut self, ctx: u64) {
        let index = self.commit;
        if self.voters.len() == 1 {
            self.reads.serve(ctx, index);
            return;
        }
        self.reads.note(ctx, index);
    }

    /// Called when a leader's chosen prefix advances.
    pub(super) fn on_commit_advanced(&mut self) {
        if self.commit >= self.adopted_upto && self.reads.has_held() {
            for ctx in self.reads.take_held() {
                self.enqueue_read(ctx);
            }
        }
    }

    /// Releases the reads whose confirmation round a quorum has acknowledged.
    pub(super) fn release_reads(&mut self) {
        if !self.reads.has_pending() {
            return;
        }
        let mut acked: Vec<u64> = self.peers.values().map(|p| p.read_seq).collect();
        acked.push(u64::MAX);
        let confirmed = quorum_value(acked);
        self.reads.release(confirmed);
    }
}
