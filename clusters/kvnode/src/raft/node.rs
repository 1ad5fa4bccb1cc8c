//! The Raft state machine: its state, role changes, ticks, the term rules of `step`,
//! and the `ready` / `advance` hand-off to the application.

use std::collections::BTreeMap;

use super::log::RaftLog;
use super::progress::Progress;
use super::types::{Config, HardState, Message, MessageBody, Ready};
use crate::consensus::read_queue::ReadQueue;
use crate::consensus::timer::{self, Timed, Timer};
use crate::consensus::{
    ConfigError, Core, Entry, NodeId, NotLeader, Protocol, Role, Snapshot, SnapshotMeta, Status,
    quorum,
};
use crate::events::{self, Term};

/// One Raft node, without I/O. See the [module docs](super) for the driving loop.
#[derive(Debug)]
pub struct Raft {
    pub(super) cfg: Config,
    pub(super) id: NodeId,
    pub(super) voters: Vec<NodeId>,
    pub(super) term: u64,
    pub(super) vote: Option<NodeId>,
    pub(super) leader: Option<NodeId>,
    pub(super) role: Role,
    pub(super) log: RaftLog,
    pub(super) commit: u64,
    /// Highest index handed out in `committed_entries` (or installed by snapshot).
    pub(super) applied: u64,
    /// Highest index the application has persisted.
    pub(super) stable: u64,
    /// The latest snapshot, sent to followers that are too far behind.
    pub(super) snapshot: Option<Snapshot>,
    /// A snapshot received from the leader, not yet handed out in a `Ready`.
    pub(super) pending_snapshot: Option<Snapshot>,
    pub(super) progress: BTreeMap<NodeId, Progress>,
    pub(super) votes: BTreeMap<NodeId, bool>,
    /// Election timeout, heartbeats, and ticks since start (for snapshot retries).
    pub(super) timer: Timer,
    pub(super) msgs: Vec<Message>,
    /// Votes decided since the last `Ready` (term, candidate): the next one carries
    /// them, and the application logs them once persisted.
    pub(super) cast_votes: Vec<(Term, NodeId)>,
    prev_hard: HardState,
    /// Appends are owed to followers (proposals arrived); sent when the `Ready` is built.
    pub(super) need_broadcast: bool,
    /// Linearizable reads: held, waiting for a round, or to hand out.
    pub(super) reads: ReadQueue,
    /// `lease-read-skew` bug: the wall-clock time (ms) of the last quorum contact as
    /// leader; kept when stepping down.
    pub(super) wall_lease_start: Option<u64>,
}

impl Raft {
    /// A node restored from durable state: the hard state, the latest snapshot (if
    /// any) and the log entries after it. A new node passes defaults and no entries.
    pub fn new(
        cfg: Config,
        hard: HardState,
        snapshot: Option<Snapshot>,
        entries: Vec<Entry>,
    ) -> Result<Raft, ConfigError> {
        if cfg.id == 0 {
            return Err(ConfigError::Invalid("node id 0 is reserved".into()));
        }
        let rng = cfg.seed ^ 0x9e37_79b9_7f4a_7c15 ^ cfg.id.rotate_left(32);
        let timer = Timer::new(cfg.election_tick, cfg.heartbeat_tick, rng)?;
        let (snap_index, snap_term, voters) = match &snapshot {
            Some(s) if !s.meta.voters.is_empty() => {
                (s.meta.index, s.meta.term, s.meta.voters.clone())
            }
            Some(s) => (s.meta.index, s.meta.term, cfg.voters.clone()),
            None => (0, 0, cfg.voters.clone()),
        };
        if !voters.contains(&cfg.id) {
            return Err(ConfigError::Invalid(format!(
                "node {} is not among the voters {voters:?}",
                cfg.id
            )));
        }
        let log = RaftLog::new(snap_index, snap_term, entries).ok_or_else(|| {
            ConfigError::BadState(format!(
                "log entries are not consecutive after index {snap_index}"
            ))
        })?;
        if log.last_term() > hard.term {
            return Err(ConfigError::BadState(format!(
                "last log term {} is above the persisted term {}",
                log.last_term(),
                hard.term
            )));
        }
        let commit = hard.commit.max(snap_index).min(log.last_index());
        Ok(Raft {
            id: cfg.id,
            voters,
            term: hard.term,
            vote: hard.vote,
            leader: None,
            role: Role::Follower,
            stable: log.last_index(),
            log,
            commit,
            applied: snap_index,
            snapshot,
            pending_snapshot: None,
            progress: BTreeMap::new(),
            votes: BTreeMap::new(),
            timer,
            msgs: Vec::new(),
            cast_votes: Vec::new(),
            prev_hard: hard,
            need_broadcast: false,
            reads: ReadQueue::default(),
            wall_lease_start: None,
            cfg,
        })
    }

    /// The voters of the cluster.
    pub fn voters(&self) -> &[NodeId] {
        &self.voters
    }

    /// The entry at `index`, if still in the log (for tests and diagnostics).
    pub fn entry(&self, index: u64) -> Option<&Entry> {
        self.log.entry(index)
    }

    /// The term of the entry at `index`, if known.
    pub fn term_at(&self, index: u64) -> Option<u64> {
        self.log.term(index)
    }

    /// Entries from `lo` to the end of the log (to rewrite storage after a snapshot).
    pub fn entries_from(&self, lo: u64) -> Vec<Entry> {
        self.log.slice(lo, self.log.last_index(), usize::MAX)
    }

    pub(super) fn send(&mut self, to: NodeId, term: u64, body: MessageBody) {
        self.msgs.push(Message {
            from: self.id,
            to,
            term,
            body,
        });
    }

    pub(super) fn peers(&self) -> Vec<NodeId> {
        self.voters
            .iter()
            .copied()
            .filter(|v| *v != self.id)
            .collect()
    }

    pub(super) fn quorum(&self) -> usize {
        quorum(self.voters.len())
    }

    /// Whether a quorum has been heard from in the current check-quorum window.
    pub(super) fn has_lease(&self) -> bool {
        let active = 1 + self.progress.values().filter(|p| p.recent_active).count();
        active >= self.quorum()
    }

    /// Records a vote for `candidate` in the current term, for the next `Ready` to carry
    /// (logged only once persisted: see [`crate::consensus::CoreReady::votes`]).
    pub(super) fn cast_vote(&mut self, candidate: NodeId) {
        self.vote = Some(candidate);
        self.cast_votes.push((Term::Number(self.term), candidate));
    }

    /// Logs the `role` protocol event for the current role and term.
    pub(super) fn log_role(&self) {
        events::role(self.id, Term::Number(self.term), self.role);
    }

    pub(super) fn become_follower(&mut self, term: u64, leader: Option<NodeId>) {
        if self.role == Role::Leader || term > self.term {
            self.reads.fail_all();
        }
        let changed = self.role != Role::Follower || term > self.term;
        if term > self.term {
            self.term = term;
            self.vote = None;
        }
        self.role = Role::Follower;
        if changed {
            self.log_role();
        }
        self.leader = leader;
        self.votes.clear();
        self.progress.clear();
        self.need_broadcast = false;
        self.timer.reset_election_timeout();
    }

    pub(super) fn become_leader(&mut self) {
        self.role = Role::Leader;
        self.log_role();
        self.leader = Some(self.id);
        self.votes.clear();
        self.timer.reset_leader();
        let last = self.log.last_index();
        self.progress = self
            .peers()
            .into_iter()
            .map(|p| (p, Progress::new(last)))
            .collect();
        self.reads.clear();
        // A no-op entry of the new term lets the leader commit earlier entries.
        let term = self.term;
        self.log.push(Entry {
            index: last + 1,
            term,
            data: Vec::new(),
        });
        self.need_broadcast = true;
    }

    fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: if self.cfg.bugs.forget_vote {
                None
            } else {
                self.vote
            },
            commit: self.commit,
        }
    }

    /// Sends owed appends and read rounds (called when building a `Ready`).
    fn flush(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        if self.reads.next_round() {
            self.broadcast_heartbeat();
        }
        if self.need_broadcast {
            self.need_broadcast = false;
            for peer in self.peers() {
                self.send_appends(peer);
            }
        }
        if self.voters.len() == 1 {
            self.maybe_commit();
        }
    }
}

impl Timed for Raft {
    fn timer(&mut self) -> &mut Timer {
        &mut self.timer
    }

    fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }

    fn check_quorum(&mut self) -> bool {
        let id = self.id;
        let mut active = 1;
        for (peer, pr) in self.progress.iter_mut() {
            if *peer != id && pr.recent_active {
                active += 1;
            }
            pr.recent_active = false;
        }
        active >= self.quorum()
    }

    fn lose_quorum(&mut self) {
        let term = self.term;
        self.become_follower(term, None);
    }

    fn heartbeat(&mut self) {
        self.broadcast_heartbeat();
    }

    fn campaign(&mut self) {
        self.campaign_pre_vote();
    }
}

impl Core for Raft {
    type Message = Message;
    type Ready = Ready;

    const PROTOCOL: Protocol = Protocol::Raft;

    fn id(&self) -> NodeId {
        self.id
    }

    /// A summary of the node's state.
    fn status(&self) -> Status {
        Status {
            id: self.id,
            role: self.role,
            term: self.term,
            leader: self.leader,
            vote: self.vote,
            commit: self.commit,
            applied: self.applied,
            last_index: self.log.last_index(),
            snapshot_index: self.log.snapshot_index(),
        }
    }

    /// Advances time by one tick: followers and candidates may start an election,
    /// leaders send heartbeats and check that a quorum is still reachable.
    fn tick(&mut self) {
        timer::tick(self);
    }

    /// Handles a message from another node.
    fn step(&mut self, m: Message) {
        if m.to != self.id || !self.voters.contains(&m.from) || m.from == self.id {
            return;
        }
        if m.term > self.term {
            let in_lease = self.leader.is_some() && self.timer.within_election_tick();
            match m.body {
                MessageBody::PreVote { .. } | MessageBody::Vote { .. } if in_lease => return,
                MessageBody::PreVote { .. } | MessageBody::PreVoteResponse { granted: true } => {}
                MessageBody::Append { .. }
                | MessageBody::Heartbeat { .. }
                | MessageBody::InstallSnapshot { .. } => self.become_follower(m.term, Some(m.from)),
                _ => self.become_follower(m.term, None),
            }
        } else if m.term < self.term {
            match m.body {
                MessageBody::Append { .. }
                | MessageBody::Heartbeat { .. }
                | MessageBody::InstallSnapshot { .. } => {
                    // Tell the stale leader about the newer term so it steps down.
                    let body = MessageBody::AppendResponse {
                        reject: true,
                        index: 0,
                        hint_index: 0,
                        hint_term: 0,
                        read_seq: 0,
                    };
                    self.send(m.from, self.term, body);
                }
                MessageBody::PreVote { .. } => self.send(
                    m.from,
                    self.term,
                    MessageBody::PreVoteResponse { granted: false },
                ),
                MessageBody::Vote { .. } => self.send(
                    m.from,
                    self.term,
                    MessageBody::VoteResponse { granted: false },
                ),
                _ => {}
            }
            return;
        }
        match m.body {
            MessageBody::PreVote { .. } | MessageBody::Vote { .. } => self.handle_vote_request(m),
            MessageBody::PreVoteResponse { .. } | MessageBody::VoteResponse { .. } => {
                self.handle_vote_response(m)
            }
            MessageBody::Append { .. }
            | MessageBody::Heartbeat { .. }
            | MessageBody::InstallSnapshot { .. } => {
                if self.role == Role::Leader {
                    return; // Two leaders in one term cannot happen; ignore.
                }
                if self.role != Role::Follower || self.leader != Some(m.from) {
                    let term = self.term;
                    self.become_follower(term, Some(m.from));
                }
                self.timer.election_elapsed = 0;
                self.handle_from_leader(m);
            }
            MessageBody::AppendResponse { .. } | MessageBody::HeartbeatResponse { .. } => {
                if self.role == Role::Leader {
                    self.handle_leader_response(m);
                }
            }
        }
    }

    /// Proposes a command. On success returns `(index, term)` of its entry: the command
    /// took effect if and only if the entry applied at `index` has term `term`.
    fn propose(&mut self, data: Vec<u8>) -> Result<(u64, u64), NotLeader> {
        if self.role != Role::Leader {
            return Err(NotLeader {
                leader: self.leader,
            });
        }
        let index = self.log.last_index() + 1;
        self.log.push(Entry {
            index,
            term: self.term,
            data,
        });
        self.need_broadcast = true;
        Ok((index, self.term))
    }

    fn read_index(&mut self, ctx: u64) -> Result<(), NotLeader> {
        Raft::read_index(self, ctx)
    }

    /// Whether [`Core::ready`](crate::consensus::Core::ready) has anything to do.
    fn has_ready(&self) -> bool {
        self.pending_snapshot.is_some()
            || self.stable < self.log.last_index()
            || self.hard_state() != self.prev_hard
            || !self.msgs.is_empty()
            || !self.cast_votes.is_empty()
            || self.commit > self.applied
            || self.need_broadcast
            || self.reads.has_work()
    }

    /// The work for the application. Handle it fully (see [`Ready`]), then call
    /// [`Core::advance`](crate::consensus::Core::advance) with it before stepping or ticking again.
    fn ready(&mut self) -> Ready {
        self.flush();
        let last = self.log.last_index();
        Ready {
            snapshot: self.pending_snapshot.take(),
            entries: self.log.slice(self.stable + 1, last, usize::MAX),
            hard_state: Some(self.hard_state()).filter(|h| *h != self.prev_hard),
            messages: std::mem::take(&mut self.msgs),
            committed_entries: self.log.slice(self.applied + 1, self.commit, usize::MAX),
            read_states: self.reads.take_ready(),
            failed_reads: self.reads.take_failed(),
            votes: std::mem::take(&mut self.cast_votes),
        }
    }

    /// Records that a `Ready` was handled: its entries are durable and its committed
    /// entries applied.
    fn advance(&mut self, ready: &Ready) {
        if let Some(snapshot) = &ready.snapshot {
            self.stable = self.stable.max(snapshot.meta.index);
        }
        if let Some(last) = ready.entries.last()
            && self.log.term(last.index) == Some(last.term)
        {
            self.stable = last.index;
        }
        if let Some(hard) = ready.hard_state {
            self.prev_hard = hard;
        }
        if let Some(last) = ready.committed_entries.last() {
            self.applied = self.applied.max(last.index);
        }
        if self.role == Role::Leader {
            self.maybe_commit();
        }
    }

    /// Takes a local snapshot of the state machine at `index` (which must be applied)
    /// and forgets the log up to it. `data` is the application's serialized state.
    fn compact(&mut self, index: u64, data: Vec<u8>) -> Result<(), ConfigError> {
        if index > self.applied || index <= self.log.snapshot_index() {
            return Err(ConfigError::Invalid(format!(
                "cannot snapshot at {index}: applied {}, snapshot at {}",
                self.applied,
                self.log.snapshot_index()
            )));
        }
        let Some(term) = self.log.term(index) else {
            return Err(ConfigError::Invalid(format!(
                "no term known at index {index}"
            )));
        };
        self.log.compact(index);
        self.snapshot = Some(Snapshot {
            meta: SnapshotMeta {
                index,
                term,
                voters: self.voters.clone(),
            },
            data,
        });
        Ok(())
    }

    fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    fn event_term_at(&self, index: u64) -> Term {
        self.log.term(index).map_or(Term::Unknown, Term::Number)
    }

    fn log_start(&self) {
        events::start(
            self.id,
            Term::Number(self.term),
            self.vote,
            self.commit,
            Some(self.log.last_index()),
        );
    }

    fn sends_before_persisting(&self) -> bool {
        self.role == Role::Leader
    }
}
