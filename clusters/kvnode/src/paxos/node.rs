//! The Multi-Paxos node: its state, ticks, the ballot rules of `step`, and the
//! `ready` / `advance` hand-off to the application.

use std::collections::{BTreeMap, BTreeSet};

use crate::consensus::read_queue::ReadQueue;
use crate::consensus::timer::{self, Timed, Timer};
use crate::consensus::{
    ConfigError, Core, Entry, NodeId, NotLeader, Protocol, Role, Snapshot, SnapshotMeta, Status,
    quorum,
};
use crate::events::{self, Term};

use super::types::{Accepted, Ballot, Config, Durable, MAX_NODE_ID, Message, MessageBody, Ready};

/// A leader's view of one acceptor.
#[derive(Debug, Clone, Default)]
pub(super) struct Peer {
    /// Every slot up to here is accepted in the leader's ballot (or chosen) there.
    pub(super) matched: u64,
    /// Next slot to send.
    pub(super) next: u64,
    /// Heard from in the current failure-detection window.
    pub(super) recent_active: bool,
    /// Highest read round acknowledged.
    pub(super) read_seq: u64,
    /// `(snapshot index, tick)` of the last snapshot sent, to avoid resending it at
    /// every gap while it is in flight.
    pub(super) snapshot_sent: Option<(u64, u64)>,
}

/// What a candidate learned from one promise.
#[derive(Debug, Clone, Default)]
pub(super) struct PromiseInfo {
    pub(super) accepted: Vec<Accepted>,
    pub(super) snapshot: Option<Snapshot>,
}

/// One Multi-Paxos node (proposer, acceptor and learner), without I/O. See the
/// [module docs](super) for the driving loop.
#[derive(Debug)]
pub struct Paxos {
    pub(super) cfg: Config,
    pub(super) id: NodeId,
    pub(super) voters: Vec<NodeId>,
    /// Acceptor: the highest ballot promised (durable).
    pub(super) promised: Ballot,
    /// Acceptor: accepted values per slot after the snapshot (durable).
    pub(super) accepted: BTreeMap<u64, Accepted>,
    /// Learner: every slot up to here is chosen and its value is in `accepted`.
    pub(super) commit: u64,
    /// Highest slot handed out in `chosen` (or installed by snapshot).
    pub(super) applied: u64,
    pub(super) snapshot: Option<Snapshot>,
    pub(super) pending_snapshot: Option<Snapshot>,
    pub(super) role: Role,
    pub(super) leader: Option<NodeId>,
    /// Candidate or leader: the ballot this node proposes in.
    pub(super) ballot: Ballot,
    /// The highest round seen anywhere (to pick a higher one).
    pub(super) max_round: u64,
    /// Candidate: the prepare's first slot and the promises so far.
    pub(super) from_slot: u64,
    pub(super) promises: BTreeMap<NodeId, PromiseInfo>,
    /// Leader: the commit index when it took over; slots after it are proposed in
    /// `ballot`, slots up to it are already chosen.
    pub(super) start: u64,
    /// Leader: the last slot it has proposed in.
    pub(super) last_slot: u64,
    /// Leader: the last slot adopted from the promises; reads wait until it is chosen.
    pub(super) adopted_upto: u64,
    /// Leader: slots up to here are durably accepted by this node in `ballot`.
    pub(super) self_matched: u64,
    /// Leader: `(ballot, last_slot)` handed out for persisting, not yet advanced.
    pub(super) persisting: Option<(Ballot, u64)>,
    pub(super) peers: BTreeMap<NodeId, Peer>,
    /// Acceptor: cached `(ballot, upto)` of the `upto` reported to the leader.
    pub(super) upto_cache: (Ballot, u64),
    /// Failure detection, heartbeats, and ticks since start (for snapshot resends).
    pub(super) timer: Timer,
    pub(super) msgs: Vec<Message>,
    /// Promises made since the last `Ready` (ballot, proposer): the next one carries
    /// them, and the application logs them once persisted.
    pub(super) cast_votes: Vec<(Term, NodeId)>,
    /// Slots whose accepted value changed since the last `Ready`.
    pub(super) unstable: BTreeSet<u64>,
    prev_promised: Ballot,
    prev_commit: u64,
    pub(super) need_broadcast: bool,
    /// Linearizable reads: held, waiting for a round, or to hand out.
    pub(super) reads: ReadQueue,
}

impl Paxos {
    /// A node restored from durable state and its latest snapshot (if any). A new
    /// node passes `Durable::default()` and no snapshot.
    pub fn new(
        cfg: Config,
        durable: Durable,
        snapshot: Option<Snapshot>,
    ) -> Result<Paxos, ConfigError> {
        if cfg.id == 0 || cfg.id >= MAX_NODE_ID {
            return Err(ConfigError::Invalid(format!(
                "paxos node ids must be between 1 and {}, not {}",
                MAX_NODE_ID - 1,
                cfg.id
            )));
        }
        let rng = cfg.seed ^ 0x2545_f491_4f6c_dd1d ^ cfg.id.rotate_left(40);
        let timer = Timer::new(cfg.election_tick, cfg.heartbeat_tick, rng)?;
        let voters = match &snapshot {
            Some(s) if !s.meta.voters.is_empty() => s.meta.voters.clone(),
            _ => cfg.voters.clone(),
        };
        if !voters.contains(&cfg.id) || voters.iter().any(|v| *v == 0 || *v >= MAX_NODE_ID) {
            return Err(ConfigError::Invalid(format!(
                "node {} is not among the voters {voters:?}, or a voter id is out of range",
                cfg.id
            )));
        }
        let snap_index = snapshot.as_ref().map_or(0, |s| s.meta.index);
        let mut accepted = BTreeMap::new();
        for a in durable.accepted {
            if a.entry.index > snap_index {
                accepted.insert(a.entry.index, a);
            }
        }
        // The commit hint is only good as far as the values are present.
        let mut commit = snap_index;
        while commit < durable.commit && accepted.contains_key(&(commit + 1)) {
            commit += 1;
        }
        Ok(Paxos {
            id: cfg.id,
            voters,
            promised: durable.promised,
            accepted,
            commit,
            applied: snap_index,
            snapshot,
            pending_snapshot: None,
            role: Role::Follower,
            leader: None,
            ballot: Ballot::ZERO,
            max_round: durable.promised.round,
            from_slot: 0,
            promises: BTreeMap::new(),
            start: 0,
            last_slot: 0,
            adopted_upto: 0,
            self_matched: 0,
            persisting: None,
            peers: BTreeMap::new(),
            upto_cache: (Ballot::ZERO, 0),
            timer,
            msgs: Vec::new(),
            cast_votes: Vec::new(),
            unstable: BTreeSet::new(),
            prev_promised: durable.promised,
            prev_commit: durable.commit,
            need_broadcast: false,
            reads: ReadQueue::default(),
            cfg,
        })
    }

    /// The acceptors of the cluster.
    pub fn voters(&self) -> &[NodeId] {
        &self.voters
    }

    /// The highest ballot this node has promised.
    pub fn promised(&self) -> Ballot {
        self.promised
    }

    /// The ballot this node leads in, if it is the leader.
    pub fn leading(&self) -> Option<Ballot> {
        (self.role == Role::Leader).then_some(self.ballot)
    }

    /// This acceptor's accepted value in `slot`, if it still holds one.
    pub fn accepted(&self, slot: u64) -> Option<&Accepted> {
        self.accepted.get(&slot)
    }

    /// Every accepted value after `lo` (to rewrite storage after a snapshot).
    pub fn accepted_from(&self, lo: u64) -> Vec<Accepted> {
        self.accepted.range(lo..).map(|(_, a)| a.clone()).collect()
    }

    pub(super) fn snapshot_index(&self) -> u64 {
        self.snapshot.as_ref().map_or(0, |s| s.meta.index)
    }

    pub(super) fn send(&mut self, to: NodeId, ballot: Ballot, body: MessageBody) {
        self.msgs.push(Message {
            from: self.id,
            to,
            ballot,
            body,
        });
    }

    pub(super) fn other_voters(&self) -> Vec<NodeId> {
        self.voters
            .iter()
            .copied()
            .filter(|v| *v != self.id)
            .collect()
    }

    pub(super) fn quorum(&self) -> usize {
        quorum(self.voters.len())
    }

    /// Records an accepted value (to persist in the next `Ready`).
    pub(super) fn accept_value(&mut self, ballot: Ballot, entry: Entry) {
        let slot = entry.index;
        if slot <= self.snapshot_index() {
            return;
        }
        self.accepted.insert(slot, Accepted { ballot, entry });
        self.unstable.insert(slot);
    }

    /// Promises `ballot` (to persist in the next `Ready`, which also carries the vote to
    /// log once persisted: see [`crate::consensus::CoreReady::votes`]).
    pub(super) fn promise(&mut self, ballot: Ballot) {
        if ballot > self.promised {
            self.promised = ballot;
            self.cast_votes.push((ballot.event_term(), ballot.node));
            if self.role == Role::Follower {
                self.log_role();
            }
        }
        self.max_round = self.max_round.max(ballot.round);
    }

    /// Gives up proposing (a higher ballot exists, or a quorum is out of reach).
    /// Logs the `role` protocol event: a leader's or candidate's own ballot, else the
    /// promised one.
    pub(super) fn log_role(&self) {
        let ballot = if self.role == Role::Follower {
            self.promised
        } else {
            self.ballot
        };
        events::role(self.id, ballot.event_term(), self.role);
    }

    pub(super) fn become_follower(&mut self, leader: Option<NodeId>) {
        if self.role == Role::Leader {
            self.reads.fail_all();
        }
        let changed = self.role != Role::Follower;
        self.role = Role::Follower;
        if changed {
            self.log_role();
        }
        self.leader = leader;
        self.promises.clear();
        self.peers.clear();
        self.need_broadcast = false;
        self.persisting = None;
        self.timer.reset_election_timeout();
    }

    /// Whether a message under `ballot` from `from` may take over: a newer ballot
    /// always can; a node that heard from a live leader recently ignores prepares from
    /// others (so a rejoining node does not depose a healthy leader).
    pub(super) fn leader_is_alive(&self, from: NodeId) -> bool {
        self.leader.is_some_and(|l| l != from)
            && self.timer.within_election_tick()
            && self.role != Role::Candidate
    }

    /// Sends owed accepts and read rounds (called when building a `Ready`).
    fn flush(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        if self.reads.next_round() {
            self.heartbeat();
        }
        if self.need_broadcast {
            self.need_broadcast = false;
            for peer in self.other_voters() {
                self.send_accepts(peer, false);
            }
        }
    }
}

impl Timed for Paxos {
    fn timer(&mut self) -> &mut Timer {
        &mut self.timer
    }

    fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }

    fn check_quorum(&mut self) -> bool {
        let mut active = 1;
        for peer in self.peers.values_mut() {
            if peer.recent_active {
                active += 1;
            }
            peer.recent_active = false;
        }
        active >= self.quorum()
    }

    fn lose_quorum(&mut self) {
        self.become_follower(None);
    }

    fn heartbeat(&mut self) {
        Paxos::heartbeat(self);
    }

    fn campaign(&mut self) {
        Paxos::campaign(self);
    }
}

impl Core for Paxos {
    type Message = Message;
    type Ready = Ready;

    const PROTOCOL: Protocol = Protocol::Paxos;

    fn id(&self) -> NodeId {
        self.id
    }

    /// A summary of the node's state (`term` is the packed promised ballot; `last_index`
    /// the highest slot with an accepted value).
    fn status(&self) -> Status {
        let snapshot_index = self.snapshot_index();
        Status {
            id: self.id,
            role: self.role,
            term: self.promised.packed(),
            leader: self.leader,
            vote: None,
            commit: self.commit,
            applied: self.applied,
            last_index: self
                .accepted
                .keys()
                .next_back()
                .copied()
                .unwrap_or(snapshot_index)
                .max(snapshot_index),
            snapshot_index,
        }
    }

    /// Advances time by one tick: a leader sends heartbeats and checks it still hears
    /// from a quorum; anyone else runs phase 1 when the leader seems gone.
    fn tick(&mut self) {
        timer::tick(self);
    }

    /// Handles a message from another node.
    fn step(&mut self, m: Message) {
        if m.to != self.id || m.from == self.id || !self.voters.contains(&m.from) {
            return;
        }
        self.max_round = self.max_round.max(m.ballot.round);
        match m.body {
            MessageBody::Prepare { from_slot } => self.handle_prepare(m.from, m.ballot, from_slot),
            MessageBody::Promise { accepted, snapshot } => {
                self.handle_promise(m.from, m.ballot, PromiseInfo { accepted, snapshot })
            }
            MessageBody::Nack { promised } => self.handle_nack(m.ballot, promised),
            MessageBody::Accept {
                first,
                values,
                commit,
                read_seq,
            } => self.handle_accept(m.from, m.ballot, first, values, commit, read_seq),
            MessageBody::InstallSnapshot { snapshot, read_seq } => {
                self.handle_snapshot(m.from, m.ballot, snapshot, read_seq)
            }
            MessageBody::Accepted {
                first,
                upto,
                read_seq,
            } => self.handle_accepted(m.from, m.ballot, first, upto, read_seq),
        }
    }

    fn propose(&mut self, data: Vec<u8>) -> Result<(u64, u64), NotLeader> {
        Paxos::propose(self, data)
    }

    fn read_index(&mut self, ctx: u64) -> Result<(), NotLeader> {
        Paxos::read_index(self, ctx)
    }

    /// Whether [`Core::ready`](crate::consensus::Core::ready) has anything to do.
    fn has_ready(&self) -> bool {
        self.pending_snapshot.is_some()
            || !self.unstable.is_empty()
            || self.promised != self.prev_promised
            || self.commit != self.prev_commit
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
        let accepted = std::mem::take(&mut self.unstable)
            .into_iter()
            .filter_map(|slot| self.accepted.get(&slot).cloned())
            .collect();
        if self.role == Role::Leader {
            self.persisting = Some((self.ballot, self.last_slot));
        }
        let chosen = (self.applied + 1..=self.commit)
            .filter_map(|slot| self.accepted.get(&slot).map(|a| a.entry.clone()))
            .collect();
        Ready {
            snapshot: self.pending_snapshot.take(),
            promised: Some(self.promised).filter(|p| *p != self.prev_promised),
            accepted,
            commit: Some(self.commit).filter(|c| *c != self.prev_commit),
            messages: std::mem::take(&mut self.msgs),
            chosen,
            read_states: self.reads.take_ready(),
            failed_reads: self.reads.take_failed(),
            votes: std::mem::take(&mut self.cast_votes),
        }
    }

    /// Records that a `Ready` was handled: its state is durable and its chosen values
    /// applied.
    fn advance(&mut self, ready: &Ready) {
        if let Some(p) = ready.promised {
            self.prev_promised = p;
        }
        if let Some(c) = ready.commit {
            self.prev_commit = c;
        }
        if let Some(last) = ready.chosen.last() {
            self.applied = self.applied.max(last.index);
        }
        if let Some((ballot, last)) = self.persisting.take()
            && self.role == Role::Leader
            && ballot == self.ballot
        {
            self.self_matched = self.self_matched.max(last);
            self.maybe_commit();
        }
    }

    /// Takes a local snapshot of the state machine at `index` (which must be applied)
    /// and forgets the accepted values up to it. `data` is the application's state.
    fn compact(&mut self, index: u64, data: Vec<u8>) -> Result<(), ConfigError> {
        if index > self.applied || index <= self.snapshot_index() {
            return Err(ConfigError::Invalid(format!(
                "cannot snapshot at {index}: applied {}, snapshot at {}",
                self.applied,
                self.snapshot_index()
            )));
        }
        self.accepted = self.accepted.split_off(&(index + 1));
        self.unstable = self.unstable.split_off(&(index + 1));
        self.snapshot = Some(Snapshot {
            meta: SnapshotMeta {
                index,
                term: 0,
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
        self.accepted
            .get(&index)
            .map_or(Term::Unknown, |a| a.ballot.event_term())
    }

    fn log_start(&self) {
        let voted_for = (self.promised != Ballot::ZERO).then_some(self.promised.node);
        events::start(
            self.id,
            self.promised.event_term(),
            voted_for,
            self.commit,
            None,
        );
    }

    fn sends_before_persisting(&self) -> bool {
        false
    }
}
