//! Phase 1 and leader change: a node that suspects the leader prepares a higher
//! ballot for every open slot at once; with a quorum of promises it adopts, per slot,
//! the value accepted in the highest ballot, fills gaps with no-ops, and leads.

use std::collections::BTreeMap;

use crate::consensus::{Entry, NodeId, Role, Snapshot};

use super::node::{Paxos, Peer, PromiseInfo};
use super::types::{Accepted, Ballot, MessageBody};

impl Paxos {
    /// Starts phase 1 with a ballot above every round seen.
    pub(super) fn campaign(&mut self) {
        let round = self.max_round.max(self.promised.round) + 1;
        let ballot = Ballot {
            round,
            node: self.id,
        };
        if self.role == Role::Leader {
            self.reads.fail_all();
        }
        self.role = Role::Candidate;
        self.ballot = ballot;
        self.log_role();
        self.promise(ballot);
        self.leader = None;
        self.peers.clear();
        self.from_slot = self.commit + 1;
        let own = PromiseInfo {
            accepted: self.accepted_from(self.from_slot),
            snapshot: None,
        };
        self.promises = BTreeMap::from([(self.id, own)]);
        self.timer.reset_election_timeout();
        let from_slot = self.from_slot;
        for peer in self.other_voters() {
            self.send(peer, ballot, MessageBody::Prepare { from_slot });
        }
        if self.promises.len() >= self.quorum() {
            self.become_leader();
        }
    }

    pub(super) fn handle_prepare(&mut self, from: NodeId, ballot: Ballot, from_slot: u64) {
        if ballot.node != from {
            return;
        }
        if ballot < self.promised || (ballot == self.promised && self.role != Role::Follower) {
            let promised = self.promised;
            self.send(from, ballot, MessageBody::Nack { promised });
            return;
        }
        if ballot > self.promised {
            if self.leader_is_alive(from) {
                return;
            }
            if self.role != Role::Follower {
                self.become_follower(None);
            }
            self.promise(ballot);
            self.leader = None;
            self.timer.reset_election_timeout();
        }
        let snapshot = self.snapshot.clone().filter(|s| s.meta.index >= from_slot);
        let lo = snapshot.as_ref().map_or(from_slot, |s| s.meta.index + 1);
        let accepted = self.accepted_from(lo);
        self.send(from, ballot, MessageBody::Promise { accepted, snapshot });
    }

    pub(super) fn handle_promise(&mut self, from: NodeId, ballot: Ballot, info: PromiseInfo) {
        if self.role != Role::Candidate || ballot != self.ballot {
            return;
        }
        self.promises.insert(from, info);
        if self.promises.len() >= self.quorum() {
            self.become_leader();
        }
    }

    pub(super) fn handle_nack(&mut self, ballot: Ballot, promised: Ballot) {
        self.max_round = self.max_round.max(promised.round);
        if self.role != Role::Follower && ballot == self.ballot && promised > self.ballot {
            self.become_follower(None);
        }
    }

    /// Installs a snapshot of chosen slots if it is ahead of what this node knows.
    pub(super) fn install_snapshot(&mut self, snapshot: Snapshot) -> bool {
        let index = snapshot.meta.index;
        if index <= self.commit {
            return false;
        }
        self.accepted = self.accepted.split_off(&(index + 1));
        self.unstable = self.unstable.split_off(&(index + 1));
        self.commit = index;
        self.applied = index;
        self.snapshot = Some(snapshot.clone());
        self.pending_snapshot = Some(snapshot);
        true
    }

    fn become_leader(&mut self) {
        let promises = std::mem::take(&mut self.promises);
        let best = promises
            .values()
            .filter_map(|p| p.snapshot.as_ref())
            .max_by_key(|s| s.meta.index)
            .cloned();
        if let Some(snapshot) = best {
            self.install_snapshot(snapshot);
        }
        let ballot = self.ballot;
        let mut adopted: BTreeMap<u64, Accepted> = BTreeMap::new();
        if !self.cfg.bugs.ignore_promise {
            for a in promises.values().flat_map(|p| &p.accepted) {
                let slot = a.entry.index;
                if slot <= self.commit {
                    continue;
                }
                if adopted.get(&slot).is_none_or(|b| b.ballot < a.ballot) {
                    adopted.insert(slot, a.clone());
                }
            }
        }
        let start = self.commit;
        let last = adopted
            .keys()
            .next_back()
            .copied()
            .unwrap_or(start)
            .max(start);
        for slot in start + 1..=last {
            let entry = adopted.remove(&slot).map_or(
                Entry {
                    index: slot,
                    term: ballot.packed(),
                    data: Vec::new(),
                },
                |a| a.entry,
            );
            self.accept_value(ballot, entry);
        }
        self.role = Role::Leader;
        self.log_role();
        self.leader = Some(self.id);
        self.start = start;
        self.last_slot = last;
        self.adopted_upto = last;
        self.self_matched = start;
        self.persisting = None;
        self.peers = self
            .other_voters()
            .into_iter()
            .map(|p| {
                let peer = Peer {
                    matched: 0,
                    next: start + 1,
                    recent_active: true,
                    read_seq: 0,
                    snapshot_sent: None,
                };
                (p, peer)
            })
            .collect();
        self.reads.clear();
        self.timer.reset_leader();
        self.need_broadcast = true;
    }
}
