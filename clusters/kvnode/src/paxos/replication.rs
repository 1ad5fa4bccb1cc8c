//! Phase 2 and learning: the leader proposes a value per slot in its ballot and
//! streams slots to each acceptor; acceptors accept what their promise allows and
//! report how far they hold the leader's values; a slot accepted by a quorum in one
//! ballot is chosen, and learners apply chosen slots in order. Replicas that lag
//! behind the leader's snapshot get the snapshot.

use crate::consensus::{Entry, NodeId, NotLeader, Role, Snapshot, quorum_value};

use super::node::Paxos;
use super::types::{Ballot, MessageBody};

impl Paxos {
    /// Proposes a command in the next free slot. On success returns `(slot, origin)`:
    /// the command took effect if and only if the value chosen in `slot` has `term`
    /// equal to `origin`.
    pub fn propose(&mut self, data: Vec<u8>) -> Result<(u64, u64), NotLeader> {
        if self.role != Role::Leader {
            return Err(NotLeader {
                leader: self.leader,
            });
        }
        let slot = self.last_slot + 1;
        let origin = self.ballot.packed();
        self.accept_value(
            self.ballot,
            Entry {
                index: slot,
                term: origin,
                data,
            },
        );
        self.last_slot = slot;
        self.need_broadcast = true;
        Ok((slot, origin))
    }

    /// Sends an empty accept (liveness, chosen prefix, read round) to every acceptor.
    pub(super) fn heartbeat(&mut self) {
        for peer in self.other_voters() {
            self.send_accepts(peer, true);
        }
    }

    /// Sends the next slots to `to` (or the snapshot if it is behind it); with
    /// `heartbeat`, sends a message even when there is nothing new.
    pub(super) fn send_accepts(&mut self, to: NodeId, heartbeat: bool) {
        let Some(peer) = self.peers.get(&to) else {
            return;
        };
        let (next, matched) = (peer.next, peer.matched);
        let (ballot, commit, read_seq) = (self.ballot, self.commit, self.reads.seq());
        if next <= self.snapshot_index() {
            let Some(snapshot) = self.snapshot.clone() else {
                return;
            };
            let index = snapshot.meta.index;
            let ticks = self.timer.ticks;
            let resend_after = u64::from(self.cfg.election_tick);
            let Some(p) = self.peers.get_mut(&to) else {
                return;
            };
            if p.snapshot_sent
                .is_some_and(|(i, at)| i == index && ticks < at + resend_after)
            {
                // The snapshot is still in flight: only keep the acceptor's timer quiet.
                if heartbeat {
                    let body = MessageBody::Accept {
                        first: index + 1,
                        values: Vec::new(),
                        commit,
                        read_seq,
                    };
                    self.send(to, ballot, body);
                }
                return;
            }
            p.snapshot_sent = Some((index, ticks));
            p.next = index + 1;
            self.send(
                to,
                ballot,
                MessageBody::InstallSnapshot { snapshot, read_seq },
            );
            return;
        }
        let window_end = matched.saturating_add(self.cfg.max_inflight);
        let end = self
            .last_slot
            .min(next.saturating_add(self.cfg.max_accept_values as u64) - 1)
            .min(window_end);
        let values: Vec<Entry> = (next..=end)
            .map_while(|slot| self.accepted.get(&slot).map(|a| a.entry.clone()))
            .collect();
        if values.is_empty() && !heartbeat {
            return;
        }
        if let Some(p) = self.peers.get_mut(&to) {
            p.next = next + values.len() as u64;
        }
        let body = MessageBody::Accept {
            first: next,
            values,
            commit,
            read_seq,
        };
        self.send(to, ballot, body);
    }

    /// Follows `from`'s ballot if the promise allows; false (and a nack) otherwise.
    fn follow(&mut self, from: NodeId, ballot: Ballot) -> bool {
        if ballot.node != from {
            return false;
        }
        if ballot < self.promised {
            if self.cfg.bugs.accept_stale_ballot {
                // Planted bug: the promise is checked on prepare only, so a stale
                // leader's values are accepted (without following it).
                return true;
            }
            let promised = self.promised;
            self.send(from, ballot, MessageBody::Nack { promised });
            return false;
        }
        if self.role != Role::Follower || self.leader != Some(from) {
            self.become_follower(Some(from));
        }
        self.promise(ballot);
        self.timer.election_elapsed = 0;
        true
    }

    pub(super) fn handle_accept(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        first: u64,
        values: Vec<Entry>,
        commit: u64,
        read_seq: u64,
    ) {
        if !self.follow(from, ballot) {
            return;
        }
        for value in values {
            if value.index > self.commit {
                self.accept_value(ballot, value);
            }
        }
        self.learn(ballot, commit);
        let upto = self.upto(ballot);
        let body = MessageBody::Accepted {
            first,
            upto,
            read_seq,
        };
        self.send(from, ballot, body);
    }

    pub(super) fn handle_snapshot(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        snapshot: Snapshot,
        read_seq: u64,
    ) {
        if !self.follow(from, ballot) {
            return;
        }
        let first = snapshot.meta.index + 1;
        self.install_snapshot(snapshot);
        let upto = self.upto(ballot);
        let body = MessageBody::Accepted {
            first,
            upto,
            read_seq,
        };
        self.send(from, ballot, body);
    }

    /// Learns the slots up to the leader's `commit` that hold the leader's values.
    fn learn(&mut self, ballot: Ballot, commit: u64) {
        while self.commit < commit
            && self
                .accepted
                .get(&(self.commit + 1))
                .is_some_and(|a| a.ballot == ballot)
        {
            self.commit += 1;
        }
    }

    /// The highest slot up to which every slot is chosen here or accepted in `ballot`.
    fn upto(&mut self, ballot: Ballot) -> u64 {
        let (cached_ballot, cached) = self.upto_cache;
        let mut upto = if cached_ballot == ballot {
            cached.max(self.commit)
        } else {
            self.commit
        };
        while self
            .accepted
            .get(&(upto + 1))
            .is_some_and(|a| a.ballot == ballot)
        {
            upto += 1;
        }
        self.upto_cache = (ballot, upto);
        upto
    }

    pub(super) fn handle_accepted(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        first: u64,
        upto: u64,
        read_seq: u64,
    ) {
        if self.role != Role::Leader || ballot != self.ballot {
            return;
        }
        let last_slot = self.last_slot;
        let Some(peer) = self.peers.get_mut(&from) else {
            return;
        };
        peer.recent_active = true;
        peer.read_seq = peer.read_seq.max(read_seq);
        peer.matched = peer.matched.max(upto.min(last_slot));
        let gap = first > peer.matched + 1;
        if gap || peer.next <= peer.matched {
            // The acceptor misses slots before `first` (lost or reordered): resend.
            peer.next = peer.matched + 1;
        }
        self.send_accepts(from, false);
        self.maybe_commit();
        self.release_reads();
    }

    /// Advances the chosen prefix to what a quorum has accepted in this ballot.
    pub(super) fn maybe_commit(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let mut values = vec![self.self_matched];
        values.extend(self.peers.values().map(|p| p.matched));
        let chosen = quorum_value(values).min(self.last_slot);
        if chosen > self.commit {
            self.commit = chosen;
            self.on_commit_advanced();
        }
    }
}
