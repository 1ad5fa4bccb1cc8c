//! Classic three-phase commit (Skeen), participants not replicated: each shard's part
//! lives on one node, its phase written to that node's disk at every step.
//!
//! 1. can-commit: the coordinator asks every participant; one whose keys are free
//!    locks them, becomes *uncertain*, has its part's reads evaluated
//!    ([`Outbox::to_evaluate`]) and votes yes with them ([`Node::vote`]; no, through
//!    [`Node::vote_no`], when the part cannot run); otherwise it votes no.
//! 2. pre-commit: once every vote is yes, the coordinator sends pre-commit; a
//!    participant becomes *pre-committed* and acknowledges.
//! 3. do-commit: once every participant acknowledged — or when the acknowledgements do
//!    not come in time, the textbook's rule, the missing ones presumed crashed — the
//!    coordinator commits and sends do-commit.
//!
//! The textbook's timeout rules, which make it non-blocking:
//! - the coordinator aborts when the votes do not come in time;
//! - a pre-committed participant that times out commits;
//! - an uncertain participant that times out runs the termination protocol: it asks
//!   every other participant for its phase (and the coordinator whether it decided:
//!   its decisions are on its disk), waits one timeout, and decides from the answers
//!   it got: the coordinator's decision; else commit if any participant is
//!   pre-committed or committed, abort otherwise.
//!
//! A node restarted from its disk with a part in doubt does not decide on its own (its
//! peers may have decided while it was down): it asks, and commits on a pre-committed
//! or committed answer, aborts on an aborted one or on a participant that never voted
//! yes, and otherwise asks again.
//!
//! Every other rule decides from the nodes that answered in time. That is sound when a node
//! that does not answer has crashed and every other message arrives (the textbook's
//! model: crashes only, one at a time), and unsound when the silence is a network
//! partition: the pre-committed side commits by its timeout while the uncertain side,
//! hearing no one, aborts. That is what Faultline shows with it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::{Decision, ShardId, TxnId};

mod timeouts;

/// A participant's phase of a transaction (none: it never voted yes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Voted yes, keys locked, outcome unknown.
    Uncertain,
    /// Received pre-commit.
    PreCommitted,
    /// Committed (final).
    Committed,
    /// Aborted (final).
    Aborted,
}

/// What travels between nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "message")]
pub enum Message {
    /// Coordinator → participant: can you commit your part?
    CanCommit {
        /// The transaction.
        txn: TxnId,
        /// The coordinator.
        coordinator: ShardId,
        /// Every participant.
        participants: Vec<ShardId>,
        /// The keys of this participant's part.
        keys: Vec<String>,
        /// The part (opaque here).
        part: Vec<u8>,
    },
    /// Participant → coordinator.
    Vote {
        /// The transaction.
        txn: TxnId,
        /// The participant.
        from: ShardId,
        /// Yes (uncertain now) or no.
        yes: bool,
        /// With a yes: what the part's reads returned (opaque here).
        reads: Vec<u8>,
    },
    /// Coordinator → participant.
    PreCommit {
        /// The transaction.
        txn: TxnId,
    },
    /// Participant → coordinator: pre-committed.
    Ack {
        /// The transaction.
        txn: TxnId,
        /// The participant.
        from: ShardId,
    },
    /// Coordinator or a participant's termination → participant: the outcome.
    Outcome {
        /// The transaction.
        txn: TxnId,
        /// Its outcome.
        decision: Decision,
    },
    /// Termination → coordinator: did you decide? (It answers with an
    /// [`Message::Outcome`] if it did.)
    AskOutcome {
        /// The transaction.
        txn: TxnId,
        /// Who asks.
        from: ShardId,
    },
    /// Termination: what is your phase?
    StateRequest {
        /// The transaction.
        txn: TxnId,
        /// Who asks.
        from: ShardId,
    },
    /// Termination: my phase (`None`: I never voted yes, and now never will).
    State {
        /// The transaction.
        txn: TxnId,
        /// Who answers.
        from: ShardId,
        /// Its phase.
        phase: Option<Phase>,
    },
}

/// Timeouts, in ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Every wait: for votes, acknowledgements, pre-commit, do-commit, answers.
    pub timeout: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config { timeout: 50 }
    }
}

/// The work a [`Node`] hands to its caller. Its phases are written before the
/// messages go out (the caller persists [`Outbox::phases`] first).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outbox {
    /// Messages to send, by destination.
    pub messages: Vec<(ShardId, Message)>,
    /// Phases to write to this node's disk, in order.
    pub phases: Vec<(TxnId, Phase)>,
    /// Coordinator: decisions, to write to this node's disk and then report to
    /// clients, with each participant's reads for a commit of which every
    /// participant's vote reached this node.
    pub decided: Vec<(TxnId, Decision, BTreeMap<ShardId, Vec<u8>>)>,
    /// Participant: parts now uncertain here. Evaluate each one's reads (its keys are
    /// locked) and hand them to [`Node::vote`], or call [`Node::vote_no`].
    pub to_evaluate: Vec<(TxnId, Vec<u8>)>,
    /// Participant: final outcomes, with the part to apply on commit.
    pub finished: Vec<(TxnId, Decision, Vec<u8>)>,
}

/// A participant's durable record of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartState {
    /// Its phase.
    pub phase: Phase,
    /// The coordinator.
    pub coordinator: ShardId,
    /// Every participant (for the termination protocol).
    pub participants: Vec<ShardId>,
    /// The keys it locks while not final.
    pub keys: Vec<String>,
    /// The part.
    pub part: Vec<u8>,
}

/// What a node's disk holds: its parts' phases and the decisions it made as a
/// coordinator.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disk {
    /// Its parts, by transaction.
    pub parts: BTreeMap<TxnId, PartState>,
    /// Its decisions as a coordinator.
    pub decisions: BTreeMap<TxnId, Decision>,
}

/// What the coordinator is waiting for.
#[derive(Debug)]
enum Waiting {
    Votes(BTreeSet<ShardId>),
    Acks(BTreeSet<ShardId>),
}

/// A transaction this node coordinates (volatile: a restarted coordinator forgets
/// it, and its participants' timeouts finish it).
#[derive(Debug)]
struct Coordinating {
    participants: Vec<ShardId>,
    waiting: Waiting,
    deadline: u64,
    /// The yes votes' reads.
    reads: BTreeMap<ShardId, Vec<u8>>,
}

/// An uncertain participant's termination in progress (volatile).
#[derive(Debug, Default)]
struct Terminating {
    answers: BTreeMap<ShardId, Option<Phase>>,
    deadline: u64,
}

/// One node's side of 3PC: coordinator of the transactions its clients start,
/// participant for its shard's keys.
#[derive(Debug)]
pub struct Node {
    id: ShardId,
    config: Config,
    now: u64,
    // Durable (this node's disk).
    parts: BTreeMap<TxnId, PartState>,
    decisions: BTreeMap<TxnId, Decision>,
    locks: HashMap<String, TxnId>,
    // Volatile.
    coordinating: BTreeMap<TxnId, Coordinating>,
    timers: BTreeMap<TxnId, u64>,
    terminating: BTreeMap<TxnId, Terminating>,
    /// Parts in doubt when this node started from its disk: they decide only from
    /// their peers' answers.
    recovering: BTreeSet<TxnId>,
}

impl Node {
    /// Node `id` with what its disk holds (empty on first start).
    pub fn new(id: ShardId, config: Config, disk: Disk) -> Node {
        let Disk { parts, decisions } = disk;
        let mut locks = HashMap::new();
        let mut timers = BTreeMap::new();
        let mut recovering = BTreeSet::new();
        for (txn, part) in &parts {
            if matches!(part.phase, Phase::Uncertain | Phase::PreCommitted) {
                for key in &part.keys {
                    locks.insert(key.clone(), *txn);
                }
                // A recovered part in doubt asks after one timeout.
                timers.insert(*txn, config.timeout);
                recovering.insert(*txn);
            }
        }
        Node {
            id,
            config,
            now: 0,
            parts,
            decisions,
            locks,
            coordinating: BTreeMap::new(),
            timers,
            terminating: BTreeMap::new(),
            recovering,
        }
    }

    /// The phase of this node's part of `txn`, if it voted yes.
    pub fn phase(&self, txn: TxnId) -> Option<Phase> {
        self.parts.get(&txn).map(|p| p.phase)
    }

    /// Parts not final (in doubt).
    pub fn in_doubt(&self) -> usize {
        self.parts
            .values()
            .filter(|p| matches!(p.phase, Phase::Uncertain | Phase::PreCommitted))
            .count()
    }

    /// What this node's disk holds.
    pub fn disk(&self) -> Disk {
        Disk {
            parts: self.parts.clone(),
            decisions: self.decisions.clone(),
        }
    }

    /// Coordinator: starts `txn` over `parts` (participant, keys, part).
    pub fn begin(
        &mut self,
        txn: TxnId,
        parts: Vec<(ShardId, Vec<String>, Vec<u8>)>,
        out: &mut Outbox,
    ) {
        let participants: Vec<ShardId> = parts.iter().map(|(p, _, _)| *p).collect();
        self.coordinating.insert(
            txn,
            Coordinating {
                participants: participants.clone(),
                waiting: Waiting::Votes(BTreeSet::new()),
                deadline: self.now + self.config.timeout,
                reads: BTreeMap::new(),
            },
        );
        for (shard, keys, part) in parts {
            let ask = Message::CanCommit {
                txn,
                coordinator: self.id,
                participants: participants.clone(),
                keys,
                part,
            };
            out.messages.push((shard, ask));
        }
    }

    /// Handles a message.
    pub fn receive(&mut self, message: Message, out: &mut Outbox) {
        match message {
            Message::CanCommit {
                txn,
                coordinator,
                participants,
                keys,
                part,
            } => {
                let yes = match self.parts.get(&txn) {
                    Some(p) if p.phase == Phase::Aborted => false,
                    Some(p) => {
                        // Asked again: the same reads, evaluated again.
                        out.to_evaluate.push((txn, p.part.clone()));
                        return;
                    }
                    None if keys.iter().any(|k| self.locks.contains_key(k)) => false,
                    None => {
                        for key in &keys {
                            self.locks.insert(key.clone(), txn);
                        }
                        let state = PartState {
                            phase: Phase::Uncertain,
                            coordinator,
                            participants,
                            keys,
                            part: part.clone(),
                        };
                        self.parts.insert(txn, state);
                        out.phases.push((txn, Phase::Uncertain));
                        self.timers.insert(txn, self.now + self.config.timeout);
                        out.to_evaluate.push((txn, part));
                        return;
                    }
                };
                let vote = Message::Vote {
                    txn,
                    from: self.id,
                    yes,
                    reads: Vec::new(),
                };
                out.messages.push((coordinator, vote));
            }
            Message::Vote {
                txn,
                from,
                yes,
                reads,
            } => self.on_vote(txn, from, yes, reads, out),
            Message::PreCommit { txn } => {
                if self.phase(txn) == Some(Phase::Uncertain) {
                    self.set_phase(txn, Phase::PreCommitted, out);
                    self.timers.insert(txn, self.now + self.config.timeout);
                }
                if let Some(p) = self.parts.get(&txn)
                    && matches!(p.phase, Phase::PreCommitted | Phase::Committed)
                {
                    let ack = Message::Ack { txn, from: self.id };
                    out.messages.push((p.coordinator, ack));
                }
            }
            Message::Ack { txn, from } => self.on_ack(txn, from, out),
            Message::Outcome { txn, decision } => self.finish(txn, decision, out),
            Message::AskOutcome { txn, from } => {
                if let Some(decision) = self.decisions.get(&txn) {
                    let decision = *decision;
                    out.messages
                        .push((from, Message::Outcome { txn, decision }));
                }
            }
            Message::StateRequest { txn, from } => {
                // Never voted yes: it never will now, so the asker may abort.
                self.refuse(txn, out);
                let phase = self.phase(txn);
                let answer = Message::State {
                    txn,
                    from: self.id,
                    phase,
                };
                out.messages.push((from, answer));
            }
            Message::State { txn, from, phase } => {
                if let Some(t) = self.terminating.get_mut(&txn) {
                    t.answers.insert(from, phase);
                }
            }
        }
    }

    /// Participant: votes yes for an uncertain part, with what its reads returned.
    pub fn vote(&mut self, txn: TxnId, reads: Vec<u8>, out: &mut Outbox) {
        if let Some(p) = self.parts.get(&txn)
            && p.phase != Phase::Aborted
        {
            let vote = Message::Vote {
                txn,
                from: self.id,
                yes: true,
                reads,
            };
            out.messages.push((p.coordinator, vote));
        }
    }

    /// Participant: votes no for an uncertain part that cannot run (a `cas` that
    /// compares false, say); the coordinator aborts, and its outcome (or the
    /// termination protocol) releases the keys.
    pub fn vote_no(&mut self, txn: TxnId, out: &mut Outbox) {
        if let Some(p) = self.parts.get(&txn) {
            let vote = Message::Vote {
                txn,
                from: self.id,
                yes: false,
                reads: Vec::new(),
            };
            out.messages.push((p.coordinator, vote));
        }
    }

    /// Whether an uncertain or pre-committed part holds `key`.
    pub fn is_locked(&self, key: &str) -> bool {
        self.locks.contains_key(key)
    }

    /// This node's durable record of its part of `txn`.
    pub fn part(&self, txn: TxnId) -> Option<&PartState> {
        self.parts.get(&txn)
    }

    /// The decision this node made for `txn` as its coordinator.
    pub fn decision(&self, txn: TxnId) -> Option<Decision> {
        self.decisions.get(&txn).copied()
    }

    fn on_vote(&mut self, txn: TxnId, from: ShardId, yes: bool, reads: Vec<u8>, out: &mut Outbox) {
        let Some(c) = self.coordinating.get_mut(&txn) else {
            return;
        };
        let Waiting::Votes(votes) = &mut c.waiting else {
            return;
        };
        if !yes {
            if let Some(c) = self.coordinating.remove(&txn) {
                self.announce(txn, Decision::Abort, c, out);
            }
            return;
        }
        votes.insert(from);
        c.reads.insert(from, reads);
        if c.participants.iter().all(|p| votes.contains(p)) {
            c.waiting = Waiting::Acks(BTreeSet::new());
            c.deadline = self.now + self.config.timeout;
            for shard in &c.participants {
                out.messages.push((*shard, Message::PreCommit { txn }));
            }
        }
    }

    fn on_ack(&mut self, txn: TxnId, from: ShardId, out: &mut Outbox) {
        let Some(c) = self.coordinating.get_mut(&txn) else {
            return;
        };
        let Waiting::Acks(acks) = &mut c.waiting else {
            return;
        };
        acks.insert(from);
        if c.participants.iter().all(|p| acks.contains(p))
            && let Some(c) = self.coordinating.remove(&txn)
        {
            self.announce(txn, Decision::Commit, c, out);
        }
    }

    /// Coordinator: the outcome, to the client and every participant.
    fn announce(
        &mut self,
        txn: TxnId,
        decision: Decision,
        coordinating: Coordinating,
        out: &mut Outbox,
    ) {
        let Coordinating {
            participants,
            reads,
            ..
        } = coordinating;
        let participants = &participants;
        self.decisions.insert(txn, decision);
        let reads = match decision {
            Decision::Commit if reads.len() == participants.len() => reads,
            _ => BTreeMap::new(),
        };
        out.decided.push((txn, decision, reads));
        for shard in participants {
            out.messages
                .push((*shard, Message::Outcome { txn, decision }));
        }
    }
}
