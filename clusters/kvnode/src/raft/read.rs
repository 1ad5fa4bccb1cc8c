//! Linearizable reads by ReadIndex: the leader notes its commit index, confirms with a
//! quorum that it is still the leader, and lets the read run once that index is applied.

use super::node::Raft;
use crate::consensus::{NotLeader, Role, quorum_value};

impl Raft {
    /// Asks to serve a linearizable read identified by `ctx`. The read appears later in
    /// [`crate::raft::Ready::read_states`] (serve it once applied up to its index) or in
    /// `failed_reads`. Only the leader serves reads, unless the `stale-read` bug is on.
    pub fn read_index(&mut self, ctx: u64) -> Result<(), NotLeader> {
        if self.cfg.bugs.stale_read {
            self.reads.serve(ctx, self.commit);
            return Ok(());
        }
        if self.cfg.bugs.lease_read_skew && self.role != Role::Leader && self.wall_lease_valid() {
            // Planted bug: a deposed leader trusts its wall-clock lease.
            self.reads.serve(ctx, self.commit);
            return Ok(());
        }
        if self.role != Role::Leader {
            return Err(NotLeader {
                leader: self.leader,
            });
        }
        if self.log.term(self.commit) != Some(self.term) {
            self.reads.hold(ctx);
            return Ok(());
        }
        self.enqueue_read(ctx);
        Ok(())
    }

    fn enqueue_read(&mut self, ctx: u64) {
        let index = self.commit;
        if self.voters.len() == 1
            || (self.cfg.lease_read && self.has_lease())
            || (self.cfg.bugs.lease_read_skew && self.wall_lease_valid())
        {
            self.reads.serve(ctx, index);
            return;
        }
        self.reads.note(ctx, index);
    }

    /// `lease-read-skew` bug: whether the wall-clock lease still runs. A clock that
    /// stepped back makes the elapsed time negative, counted as zero: the lease lasts
    /// as long as the step on top of its length.
    fn wall_lease_valid(&self) -> bool {
        self.wall_lease_start.is_some_and(|start| {
            self.cfg.wall_clock.now_ms().saturating_sub(start) < self.cfg.wall_lease_ms
        })
    }

    /// `lease-read-skew` bug: a leader that has heard from a quorum in this check-quorum
    /// window renews its wall-clock lease.
    pub(super) fn renew_wall_lease(&mut self) {
        if self.cfg.bugs.lease_read_skew && self.role == Role::Leader && self.has_lease() {
            self.wall_lease_start = Some(self.cfg.wall_clock.now_ms());
        }
    }

    /// Called when a leader's commit index advances.
    pub(super) fn on_commit_advanced(&mut self) {
        if self.log.term(self.commit) == Some(self.term) && self.reads.has_held() {
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
        self.reads.release(confirmed);
    }
}
