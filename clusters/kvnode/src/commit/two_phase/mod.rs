//! Two-phase commit over replicated shards.
//!
//! Every shard runs one [`Shard`]. The shard whose leader a client reached for a
//! cross-shard transaction coordinates it; every shard holding one of its keys
//! participates (the coordinator shard too, through messages to itself):
//!
//! 1. The coordinator sends [`Message::Prepare`] to each participant.
//! 2. A participant whose keys are free proposes [`Record::Prepared`] to its own log;
//!    once applied (the keys now locked on every replica) its leader has the part's
//!    reads evaluated ([`Outbox::to_evaluate`], [`Shard::vote`]) and votes yes with
//!    them. A prepare whose keys another transaction holds (locked, or a prepare of it
//!    proposed and not yet applied) waits at the leader for at most
//!    [`Config::lock_wait`], then votes no, and only for transactions with a larger id
//!    (wait-die: a prepare that would wait for a smaller id votes no at once, so no
//!    two transactions ever wait for each other). A prepare that lost a race for a
//!    lock in log order votes no.
//! 3. The coordinator proposes [`Record::Decided`]: commit once every participant
//!    voted yes, abort on a no or when the votes do not come in time. The first
//!    decision applied for a transaction is final; a later one is ignored, so the log
//!    settles a race between a commit and an abort.
//! 4. Once the decision is applied the coordinator reports it to the client (with
//!    every participant's reads, for a commit) and sends it to the participants,
//!    which record [`Record::Finished`], apply or drop their part, and release the
//!    keys.
//!
//! A participant that stays prepared too long asks the coordinator shard
//! ([`Message::Query`]); the coordinator shard answers with the decision in its log,
//! or, if there is none and it is not waiting for votes itself, decides abort (a
//! decision it records, so it cannot contradict a commit). A participant never
//! decides on its own, except with the planted bug `2pc-presumed-commit`
//! ([`Config::presumed_commit`]), where a prepared participant that times out
//! commits.
//!
//! Durable state is only what applied records built, the same on every replica;
//! what a leader holds besides (votes being counted, timers) is lost when leadership
//! moves, which costs only time.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::{Decision, ShardId, TxnId, due};

mod participant;

/// What applied records built: the same on every replica, and what a snapshot of the
/// shard must carry so that a replica restored from it holds the same locks and
/// outcomes ([`Shard::durable`], [`Shard::restore`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Durable {
    /// Parts prepared and not finished.
    pub prepared: BTreeMap<TxnId, PreparedPart>,
    /// Outcomes applied as a participant.
    pub finished: BTreeMap<TxnId, Decision>,
    /// Decisions recorded as the coordinator, with the participants.
    pub decided: BTreeMap<TxnId, (Decision, Vec<ShardId>)>,
    /// Decisions applied after the first for their transaction.
    pub overruled: u64,
}

/// A record in a shard's replicated log: the only way 2PC state becomes durable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "record")]
pub enum Record {
    /// Participant: this shard's part of `txn` is prepared; `keys` are locked until
    /// its outcome.
    Prepared {
        /// The transaction.
        txn: TxnId,
        /// The shard that decides it.
        coordinator: ShardId,
        /// The keys it locks here.
        keys: Vec<String>,
        /// This shard's part of the transaction, applied on commit (opaque here).
        part: Vec<u8>,
    },
    /// Coordinator: the outcome of `txn` (the first applied is final).
    Decided {
        /// The transaction.
        txn: TxnId,
        /// Its outcome.
        decision: Decision,
        /// Its participant shards.
        participants: Vec<ShardId>,
    },
    /// Participant: the outcome reached this shard.
    Finished {
        /// The transaction.
        txn: TxnId,
        /// Its outcome.
        decision: Decision,
    },
}

/// What travels between shards' leaders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "message")]
pub enum Message {
    /// Coordinator → participant: prepare your part.
    Prepare {
        /// The transaction.
        txn: TxnId,
        /// The coordinator shard.
        coordinator: ShardId,
        /// The keys of the part.
        keys: Vec<String>,
        /// The part.
        part: Vec<u8>,
    },
    /// Participant → coordinator: prepared (yes) or refused (no).
    Vote {
        /// The transaction.
        txn: TxnId,
        /// The participant.
        from: ShardId,
        /// Prepared.
        yes: bool,
        /// What the part's reads returned, evaluated once it was prepared (opaque
        /// here; empty with a no).
        reads: Vec<u8>,
    },
    /// Coordinator → participant: the decision.
    Outcome {
        /// The transaction.
        txn: TxnId,
        /// Its outcome.
        decision: Decision,
    },
    /// Participant → coordinator: what became of `txn`?
    Query {
        /// The transaction.
        txn: TxnId,
        /// The participant asking.
        from: ShardId,
    },
}

/// Timeouts (in ticks) and planted bugs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// How long a coordinator waits for votes before deciding abort.
    pub vote_timeout: u64,
    /// How long a participant stays prepared before asking the coordinator shard
    /// (again).
    pub query_timeout: u64,
    /// How long a prepare waits for keys another transaction holds before voting no.
    pub lock_wait: u64,
    /// The planted bug `2pc-presumed-commit`: a prepared participant that times out
    /// commits on its own instead of asking.
    pub presumed_commit: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            vote_timeout: 50,
            query_timeout: 100,
            lock_wait: 25,
            presumed_commit: false,
        }
    }
}

/// The work a [`Shard`] hands to its caller.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outbox {
    /// Records to propose to this shard's log (they take effect when applied).
    pub proposals: Vec<Record>,
    /// Messages to send, by destination shard (its leader).
    pub messages: Vec<(ShardId, Message)>,
    /// Coordinator: decisions now final, to report to the transactions' clients,
    /// with each participant's reads when this leader counted the votes of a commit.
    pub decided: Vec<(TxnId, Decision, BTreeMap<ShardId, Vec<u8>>)>,
    /// Participant (leader): parts now prepared here. Evaluate each one's reads
    /// against the store as it is (its keys are locked, so they cannot change under
    /// it) and hand the result to [`Shard::vote`].
    pub to_evaluate: Vec<(TxnId, Vec<u8>)>,
    /// Participant: outcomes applied here, with the part to apply on commit.
    pub finished: Vec<(TxnId, Decision, Vec<u8>)>,
}

/// A prepared part waiting for its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedPart {
    /// The coordinator shard.
    pub coordinator: ShardId,
    /// The keys it locks.
    pub keys: Vec<String>,
    /// The part.
    pub part: Vec<u8>,
}

/// A transaction whose votes the coordinator is counting (leader only).
#[derive(Debug)]
struct Counting {
    participants: Vec<ShardId>,
    /// The yes votes, with their reads.
    yes: BTreeMap<ShardId, Vec<u8>>,
    deadline: u64,
}

/// One shard's side of 2PC (see the module docs).
#[derive(Debug)]
pub struct Shard {
    id: ShardId,
    config: Config,
    // Durable: built by applied records, the same on every replica.
    prepared: BTreeMap<TxnId, PreparedPart>,
    locks: HashMap<String, TxnId>,
    finished: HashMap<TxnId, Decision>,
    decided: HashMap<TxnId, (Decision, Vec<ShardId>)>,
    /// Decisions applied after the first for their transaction (and ignored).
    overruled: u64,
    // Volatile: the leader's.
    leading: bool,
    now: u64,
    counting: BTreeMap<TxnId, Counting>,
    proposed: BTreeSet<TxnId>,
    deciding: BTreeSet<TxnId>,
    /// The reads of commits proposed here, until their decision is applied.
    reads: BTreeMap<TxnId, BTreeMap<ShardId, Vec<u8>>>,
    query_at: BTreeMap<TxnId, u64>,
    /// Keys of prepares proposed here and not yet applied, by transaction.
    reserved: HashMap<String, TxnId>,
    /// Prepares waiting for their keys, in arrival order, with their deadline.
    waiting: Vec<(Waiting, u64)>,
}

/// A prepare waiting for keys another transaction holds.
#[derive(Debug)]
struct Waiting {
    txn: TxnId,
    coordinator: ShardId,
    keys: Vec<String>,
    part: Vec<u8>,
}

impl Shard {
    /// Shard `id`, with nothing applied yet and not leading.
    pub fn new(id: ShardId, config: Config) -> Shard {
        Shard {
            id,
            config,
            prepared: BTreeMap::new(),
            locks: HashMap::new(),
            finished: HashMap::new(),
            decided: HashMap::new(),
            overruled: 0,
            leading: false,
            now: 0,
            counting: BTreeMap::new(),
            proposed: BTreeSet::new(),
            deciding: BTreeSet::new(),
            reads: BTreeMap::new(),
            query_at: BTreeMap::new(),
            reserved: HashMap::new(),
            waiting: Vec::new(),
        }
    }

    /// This shard's id.
    pub fn id(&self) -> ShardId {
        self.id
    }

    /// What applied records built (for a snapshot).
    pub fn durable(&self) -> Durable {
        Durable {
            prepared: self.prepared.clone(),
            finished: self.finished.iter().map(|(t, d)| (*t, *d)).collect(),
            decided: self.decided.iter().map(|(t, d)| (*t, d.clone())).collect(),
            overruled: self.overruled,
        }
    }

    /// Replaces what applied records built with `durable` (a snapshot's), as a
    /// follower does when it installs one. Locks follow from the prepared parts; what
    /// the leader held besides is dropped, as when leadership moves.
    pub fn restore(&mut self, durable: Durable) {
        self.locks = durable
            .prepared
            .iter()
            .flat_map(|(txn, part)| part.keys.iter().map(move |k| (k.clone(), *txn)))
            .collect();
        self.prepared = durable.prepared;
        self.finished = durable.finished.into_iter().collect();
        self.decided = durable.decided.into_iter().collect();
        self.overruled = durable.overruled;
        self.set_leader(self.leading);
    }

    /// Whether a prepared part holds `key` (a single-shard transaction touching it must
    /// not run: it aborts).
    pub fn is_locked(&self, key: &str) -> bool {
        self.locks.contains_key(key)
    }

    /// Whether `key` is locked or, at the leader, reserved by a prepare on its way to
    /// the log: a single-shard transaction on it would abort, so the leader holds it
    /// back until the key is free.
    pub fn is_busy(&self, key: &str) -> bool {
        self.locks.contains_key(key) || self.reserved.contains_key(key)
    }

    /// Whether this replica acts as the shard's leader.
    pub fn leading(&self) -> bool {
        self.leading
    }

    /// The parts prepared here and not finished (in-doubt until their outcome).
    pub fn in_doubt(&self) -> &BTreeMap<TxnId, PreparedPart> {
        &self.prepared
    }

    /// The outcome this shard applied for `txn` as a participant, if any.
    pub fn finished(&self, txn: TxnId) -> Option<Decision> {
        self.finished.get(&txn).copied()
    }

    /// The decision this shard's log holds for `txn` as its coordinator, if any.
    pub fn decided(&self, txn: TxnId) -> Option<Decision> {
        self.decided.get(&txn).map(|(d, _)| *d)
    }

    /// How many decisions this shard's log held after the first for their
    /// transaction (a commit and an abort that raced; the first one stood).
    pub fn overruled(&self) -> u64 {
        self.overruled
    }

    /// This replica became (`true`) or stopped being the shard's leader. What the
    /// leader held besides the log is dropped either way; a new leader asks about
    /// every part in doubt once its query timeout passes.
    pub fn set_leader(&mut self, leading: bool) {
        self.leading = leading;
        self.counting.clear();
        self.proposed.clear();
        self.deciding.clear();
        self.reads.clear();
        self.query_at.clear();
        self.reserved.clear();
        self.waiting.clear();
        if leading {
            let at = self.now + self.config.query_timeout;
            self.query_at = self.prepared.keys().map(|txn| (*txn, at)).collect();
        }
    }

    /// Coordinator (leader): starts `txn` over `parts` (participant shard, its keys,
    /// its part).
    pub fn begin(
        &mut self,
        txn: TxnId,
        parts: Vec<(ShardId, Vec<String>, Vec<u8>)>,
        out: &mut Outbox,
    ) {
        if !self.leading || self.decided.contains_key(&txn) || self.counting.contains_key(&txn) {
            return;
        }
        let participants = parts.iter().map(|(shard, _, _)| *shard).collect();
        self.counting.insert(
            txn,
            Counting {
                participants,
                yes: BTreeMap::new(),
                deadline: self.now + self.config.vote_timeout,
            },
        );
        for (shard, keys, part) in parts {
            let prepare = Message::Prepare {
                txn,
                coordinator: self.id,
                keys,
                part,
            };
            out.messages.push((shard, prepare));
        }
    }

    /// Handles a message (only a leader acts on messages).
    pub fn receive(&mut self, message: Message, out: &mut Outbox) {
        if !self.leading {
            return;
        }
        match message {
            Message::Prepare {
                txn,
                coordinator,
                keys,
                part,
            } => self.on_prepare(txn, coordinator, keys, part, out),
            Message::Vote {
                txn,
                from,
                yes,
                reads,
            } => self.on_vote(txn, from, yes, reads, out),
            Message::Outcome { txn, decision } => self.on_outcome(txn, decision, out),
            Message::Query { txn, from } => self.on_query(txn, from, out),
        }
    }

    /// Advances time by one tick: votes that did not come in time abort, parts in
    /// doubt too long are asked about.
    pub fn tick(&mut self, out: &mut Outbox) {
        self.now += 1;
        if !self.leading {
            return;
        }
        let late = due(&self.counting, self.now, |c| c.deadline);
        for txn in late {
            self.decide(txn, Decision::Abort, out);
        }
        let now = self.now;
        let (gave_up, still): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|(_, deadline)| *deadline <= now);
        self.waiting = still;
        for (waiting, _) in gave_up {
            out.messages
                .push((waiting.coordinator, self.no(waiting.txn)));
        }
        let timed_out = due(&self.query_at, self.now, |at| *at);
        for txn in timed_out {
            let Some(prepared) = self.prepared.get(&txn) else {
                self.query_at.remove(&txn);
                continue;
            };
            if self.config.presumed_commit {
                // The planted bug: no one asked, the part commits on its own.
                self.propose_finish(txn, Decision::Commit, out);
            } else {
                let query = Message::Query { txn, from: self.id };
                out.messages.push((prepared.coordinator, query));
            }
            self.query_at
                .insert(txn, self.now + self.config.query_timeout);
        }
    }

    /// Applies a record of this shard's log (every replica, in log order).
    pub fn apply(&mut self, record: &Record, out: &mut Outbox) {
        match record {
            Record::Prepared {
                txn,
                coordinator,
                keys,
                part,
            } => self.apply_prepared(*txn, *coordinator, keys, part, out),
            Record::Decided {
                txn,
                decision,
                participants,
            } => {
                self.deciding.remove(txn);
                if self.decided.contains_key(txn) {
                    self.overruled += 1;
                    return; // the first decision is final
                }
                self.decided.insert(*txn, (*decision, participants.clone()));
                self.counting.remove(txn);
                let reads = self.reads.remove(txn).unwrap_or_default();
                if self.leading {
                    let reads = match decision {
                        Decision::Commit => reads,
                        Decision::Abort => BTreeMap::new(),
                    };
                    out.decided.push((*txn, *decision, reads));
                    for shard in participants {
                        let outcome = Message::Outcome {
                            txn: *txn,
                            decision: *decision,
                        };
                        out.messages.push((*shard, outcome));
                    }
                }
            }
            Record::Finished { txn, decision } => {
                self.proposed.remove(txn);
                self.query_at.remove(txn);
                if self.finished.contains_key(txn) {
                    return;
                }
                self.finished.insert(*txn, *decision);
                self.waiting.retain(|(w, _)| w.txn != *txn);
                if let Some(prepared) = self.prepared.remove(txn) {
                    for key in &prepared.keys {
                        if self.locks.get(key) == Some(txn) {
                            self.locks.remove(key);
                        }
                    }
                    out.finished.push((*txn, *decision, prepared.part));
                    self.admit_waiting(out);
                }
            }
        }
    }

    fn on_vote(&mut self, txn: TxnId, from: ShardId, yes: bool, reads: Vec<u8>, out: &mut Outbox) {
        let Some(counting) = self.counting.get_mut(&txn) else {
            return;
        };
        if !yes {
            self.decide(txn, Decision::Abort, out);
            return;
        }
        counting.yes.insert(from, reads);
        if counting
            .participants
            .iter()
            .all(|p| counting.yes.contains_key(p))
        {
            self.decide(txn, Decision::Commit, out);
        }
    }

    fn on_query(&mut self, txn: TxnId, from: ShardId, out: &mut Outbox) {
        if let Some((decision, _)) = self.decided.get(&txn) {
            out.messages.push((
                from,
                Message::Outcome {
                    txn,
                    decision: *decision,
                },
            ));
        } else if !self.counting.contains_key(&txn) {
            // Not deciding it (never began here, or the leader that did is gone):
            // abort, recorded, so that it cannot contradict a commit in flight.
            let participants = vec![from];
            if self.deciding.insert(txn) {
                out.proposals.push(Record::Decided {
                    txn,
                    decision: Decision::Abort,
                    participants,
                });
            }
        }
    }

    /// Proposes the decision of a transaction this leader is counting.
    fn decide(&mut self, txn: TxnId, decision: Decision, out: &mut Outbox) {
        let Some(counting) = self.counting.remove(&txn) else {
            return;
        };
        if self.deciding.insert(txn) {
            if decision == Decision::Commit {
                self.reads.insert(txn, counting.yes);
            }
            out.proposals.push(Record::Decided {
                txn,
                decision,
                participants: counting.participants,
            });
        }
    }
}
