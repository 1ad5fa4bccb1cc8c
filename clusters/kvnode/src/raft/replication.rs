//! Log replication: appends, heartbeats, snapshots, their answers, and commit.

use super::node::Raft;
use super::progress::ProgressState;
use super::types::{Message, MessageBody};
use crate::consensus::{NodeId, Role, quorum_value};
use crate::events;

impl Raft {
    /// Sends what follower `to` needs next: entries while the pipeline has room
    /// (`Replicate`), one probe (`Probe`), or a snapshot when its next entry was compacted.
    pub(super) fn send_appends(&mut self, to: NodeId) {
        loop {
            let Some(pr) = self.progress.get(&to) else {
                return;
            };
            let in_flight = pr.next.saturating_sub(pr.matched + 1);
            let more = match pr.state {
                ProgressState::Replicate => {
                    pr.next <= self.log.last_index() && in_flight < self.cfg.max_inflight_entries
                }
                ProgressState::Probe => !pr.paused,
                ProgressState::Snapshot { .. } => false,
            };
            if !more {
                return;
            }
            let sent = self.send_one_append(to);
            if !sent || self.progress.get(&to).map(|p| p.state) != Some(ProgressState::Replicate) {
                return;
            }
        }
    }

    /// Sends one `Append` (or a snapshot) to `to`; returns false if nothing was sent.
    fn send_one_append(&mut self, to: NodeId) -> bool {
        let (term, commit, read_seq, last) = (
            self.term,
            self.commit,
            self.reads.seq(),
            self.log.last_index(),
        );
        let Some(pr) = self.progress.get(&to) else {
            return false;
        };
        let prev_index = pr.next - 1;
        let Some(prev_term) = self.log.term(prev_index) else {
            return self.send_snapshot(to);
        };
        let entries = self.log.slice(pr.next, last, self.cfg.max_append_entries);
        let last_sent = entries.last().map(|e| e.index);
        if let Some(pr) = self.progress.get_mut(&to) {
            match pr.state {
                ProgressState::Replicate => {
                    if let Some(last_sent) = last_sent {
                        pr.next = last_sent + 1;
                    }
                }
                _ => pr.paused = true,
            }
        }
        let body = MessageBody::Append {
            prev_index,
            prev_term,
            entries,
            commit,
            read_seq,
        };
        self.send(to, term, body);
        true
    }

    fn send_snapshot(&mut self, to: NodeId) -> bool {
        let Some(snapshot) = self.snapshot.clone() else {
            return false;
        };
        let ticks = self.timer.ticks;
        if let Some(pr) = self.progress.get_mut(&to) {
            pr.state = ProgressState::Snapshot {
                index: snapshot.meta.index,
                sent_tick: ticks,
            };
        }
        let body = MessageBody::InstallSnapshot {
            snapshot,
            read_seq: self.reads.seq(),
        };
        self.send(to, self.term, body);
        true
    }

    /// Sends a heartbeat to every follower.
    pub(super) fn broadcast_heartbeat(&mut self) {
        for peer in self.peers() {
            let Some(pr) = self.progress.get(&peer) else {
                continue;
            };
            let body = MessageBody::Heartbeat {
                commit: pr.matched.min(self.commit),
                read_seq: self.reads.seq(),
            };
            self.send(peer, self.term, body);
        }
    }

    /// A follower handles `Append`, `Heartbeat` or `InstallSnapshot` from its leader.
    pub(super) fn handle_from_leader(&mut self, m: Message) {
        let (from, term) = (m.from, self.term);
        match m.body {
            MessageBody::Append {
                prev_index,
                prev_term,
                entries,
                commit,
                read_seq,
            } => {
                let reply = |reject, index, hint_index, hint_term| MessageBody::AppendResponse {
                    reject,
                    index,
                    hint_index,
                    hint_term,
                    read_seq,
                };
                if prev_index < self.commit {
                    let body = reply(false, self.commit, 0, 0);
                    self.send(from, term, body);
                    return;
                }
                if self.log.term(prev_index) != Some(prev_term) {
                    let start = prev_index.min(self.log.last_index());
                    let (hint_index, hint_term) = self.log.find_conflict_by_term(start, prev_term);
                    let body = reply(true, prev_index, hint_index, hint_term);
                    self.send(from, term, body);
                    return;
                }
                let last_new = prev_index + entries.len() as u64;
                let old_last = self.log.last_index();
                if let Some(first) = self.log.merge(&entries) {
                    self.stable = self.stable.min(first - 1);
                    if first <= old_last {
                        events::truncate(self.id, first, self.commit);
                    }
                }
                let new_commit = commit.min(last_new).min(self.log.last_index());
                if new_commit > self.commit {
                    self.commit = new_commit;
                }
                let body = reply(false, last_new, 0, 0);
                self.send(from, term, body);
            }
            MessageBody::Heartbeat { commit, read_seq } => {
                let new_commit = commit.min(self.log.last_index());
                if new_commit > self.commit {
                    self.commit = new_commit;
                }
                self.send(from, term, MessageBody::HeartbeatResponse { read_seq });
            }
            MessageBody::InstallSnapshot { snapshot, read_seq } => {
                let meta = snapshot.meta.clone();
                let index = if meta.index <= self.commit {
                    self.commit
                } else if self.log.term(meta.index) == Some(meta.term) {
                    self.commit = meta.index;
                    meta.index
                } else {
                    self.log.restore(meta.index, meta.term);
                    self.commit = meta.index;
                    self.applied = meta.index;
                    self.stable = meta.index;
                    if !meta.voters.is_empty() {
                        self.voters = meta.voters.clone();
                    }
                    self.snapshot = Some(snapshot.clone());
                    self.pending_snapshot = Some(snapshot);
                    meta.index
                };
                let body = MessageBody::AppendResponse {
                    reject: false,
                    index,
                    hint_index: 0,
                    hint_term: 0,
                    read_seq,
                };
                self.send(from, term, body);
            }
            _ => {}
        }
    }

    /// A leader handles a follower's `AppendResponse` or `HeartbeatResponse`.
    pub(super) fn handle_leader_response(&mut self, m: Message) {
        let from = m.from;
        let (ticks, election_tick, last) = (
            self.timer.ticks,
            u64::from(self.cfg.election_tick),
            self.log.last_index(),
        );
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        pr.recent_active = true;
        match m.body {
            MessageBody::AppendResponse {
                reject,
                index,
                hint_index,
                hint_term,
                read_seq,
            } => {
                pr.read_seq = pr.read_seq.max(read_seq);
                if reject {
                    let probe = if hint_term > 0 {
                        self.log.find_conflict_by_term(hint_index, hint_term).0
                    } else {
                        hint_index
                    };
                    if let Some(pr) = self.progress.get_mut(&from)
                        && pr.maybe_decrease(index, probe)
                    {
                        self.send_appends(from);
                    }
                } else {
                    let grew = pr.maybe_update(index);
                    if grew || pr.state != ProgressState::Replicate {
                        match pr.state {
                            ProgressState::Snapshot { index: snap, .. } if pr.matched < snap => {}
                            _ => pr.state = ProgressState::Replicate,
                        }
                    }
                    if grew {
                        self.maybe_commit();
                    }
                    self.send_appends(from);
                }
            }
            MessageBody::HeartbeatResponse { read_seq } => {
                pr.read_seq = pr.read_seq.max(read_seq);
                match pr.state {
                    ProgressState::Probe => pr.paused = false,
                    ProgressState::Snapshot { sent_tick, .. }
                        if ticks >= sent_tick + election_tick =>
                    {
                        // The snapshot was probably lost: probe again (which resends it).
                        pr.state = ProgressState::Probe;
                        pr.paused = false;
                    }
                    _ => {}
                }
                if pr.matched < last {
                    self.send_appends(from);
                }
            }
            _ => return,
        }
        self.renew_wall_lease();
        self.release_reads();
    }

    /// Advances the commit index to what a quorum has persisted, counting only
    /// entries of the current term (Raft §5.4.2) unless the `old-term-commit` bug is on
    /// (the `ack-before-commit` bug counts the leader's own durable log as enough).
    pub(super) fn maybe_commit(&mut self) -> bool {
        if self.role != Role::Leader {
            return false;
        }
        let id = self.id;
        let matched: Vec<u64> = self
            .voters
            .iter()
            .map(|v| {
                if *v == id {
                    self.stable
                } else {
                    self.progress.get(v).map_or(0, |p| p.matched)
                }
            })
            .collect();
        let mut candidate = quorum_value(matched);
        if self.cfg.bugs.ack_before_commit {
            // Planted bug: the leader's own durable log counts as a quorum.
            candidate = candidate.max(self.stable);
        }
        if candidate <= self.commit {
            return false;
        }
        let current_term = self.log.term(candidate) == Some(self.term);
        if !current_term && !self.cfg.bugs.old_term_commit {
            return false;
        }
        self.commit = candidate;
        self.on_commit_advanced();
        true
    }
}
