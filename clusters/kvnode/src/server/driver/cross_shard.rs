//! The node loop's side of cross-shard transactions (a sharded node only): it drives
//! the shard's [`two_phase::Shard`] and carries out its outbox.
//!
//! - A transaction of several shards reaches the loop of a shard this node leads (the
//!   router sees to it), which coordinates it: it splits the micro-ops by shard into
//!   parts and begins two-phase commit over them.
//! - Records go into this shard's log (proposed once the ready being handled is
//!   done: a core takes no proposal in the middle of one) and are handed to the
//!   commit core as they are applied, in log order, on every replica.
//! - Messages for this shard are handled at once; those for another shard go to its
//!   loop on this node, which relays them to its leader over the network when it
//!   does not lead (once: a relayed message that reaches a replica not leading is
//!   dropped, and the protocol's timeouts recover from the loss).
//! - A prepared part's reads are evaluated against the store when the core asks (its
//!   keys are locked, so its values cannot change until its outcome) and travel in
//!   the yes vote; a part whose evaluation fails (a `cas` that compares false) votes no.
//! - A decision reaches the client as `ok` with every part's reads (a commit), `fail`
//!   (an abort: the first decision applied is final, so it had no effect anywhere),
//!   or `info` when the reads did not all reach this leader, it lost leadership, or
//!   time ran out.
//! - A committed part is applied to the store when its outcome is applied here; a
//!   single-shard transaction touching a locked key aborts (`locked`), in log order
//!   for writes and when served for reads, so nothing observes a half-finished
//!   transaction. So that few abort, the leader holds back a single-shard
//!   transaction whose keys are busy (locked, or reserved by a prepare on its way to
//!   the log) and starts it once they are free; after [`HOLD`] it fails `locked`
//!   (nothing was proposed).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

use crate::commit::two_phase::{self, Outbox, Record};
use crate::commit::{self, Decision, ShardId, TxnId, three_phase};
use crate::consensus::{NodeId, Role};
use crate::kv::{MicroOp, TxnOutcome, parse_txn};
use crate::peer::{PeerCore, PeerMessage};
use crate::protocol::{Request, Response};
use crate::storage::Persist;

use super::super::event::Event;
use super::commit_state::{Commit, CommitSettings};
use super::parts::{assemble, split, splitmix};
use super::three_pc::ThreePc;
use super::{Driver, Waiter, entries, locked_message};

/// How long the leader holds back a single-shard transaction whose keys are busy.
pub const HOLD: Duration = Duration::from_secs(1);

/// A cross-shard transaction's client, at the coordinator.
#[derive(Debug)]
struct Pending {
    id: Value,
    reply: UnboundedSender<Response>,
    ops: Vec<MicroOp>,
    deadline: Instant,
}

/// A shard loop's cross-shard state.
#[derive(Debug)]
pub(in crate::server) struct CrossShard {
    /// The shard's side of the commit protocol.
    pub(super) commit: Commit,
    shards: u32,
    pending: HashMap<TxnId, Pending>,
    /// Entries to propose once the ready being handled is done.
    deferred: Vec<Vec<u8>>,
    /// Single-shard transactions held back until their keys are free.
    held: Vec<Waiter>,
    seed: u64,
    next: u64,
}

impl CrossShard {
    /// Shard `shard` of `shards`, on node `node`.
    pub(in crate::server) fn new(
        shard: ShardId,
        shards: u32,
        node: NodeId,
        settings: CommitSettings,
    ) -> CrossShard {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let seed =
            splitmix(node ^ (u64::from(shard) << 32) ^ nanos ^ u64::from(std::process::id()));
        CrossShard {
            commit: match settings {
                CommitSettings::TwoPhase(config) => {
                    Commit::TwoPhase(Box::new(two_phase::Shard::new(shard, config)))
                }
                CommitSettings::ThreePhase(three) => Commit::ThreePhase(three),
            },
            shards,
            pending: HashMap::new(),
            deferred: Vec::new(),
            held: Vec::new(),
            seed,
            next: 0,
        }
    }

    /// A transaction id no other coordinator uses (64 random-looking bits).
    fn next_txn(&mut self) -> TxnId {
        self.next += 1;
        splitmix(self.seed.wrapping_add(self.next))
    }
}

impl<C: PeerCore + Persist> Driver<C> {
    /// A transaction of several shards, at the loop the router chose to coordinate it.
    pub(super) fn begin_cross_shard(
        &mut self,
        id: Value,
        reply: UnboundedSender<Response>,
        txn: Vec<MicroOp>,
        deadline: Instant,
    ) {
        let Some(cross) = &mut self.cross else {
            return;
        };
        if !cross.commit.leading() {
            let leader = self.core.status().leader;
            self.reply_not_leader(id, &reply, leader);
            return;
        }
        let parts = split(&txn, cross.shards);
        let txn_id = cross.next_txn();
        let pending = Pending {
            id,
            reply,
            ops: txn,
            deadline,
        };
        cross.pending.insert(txn_id, pending);
        match &mut cross.commit {
            Commit::TwoPhase(shard) => {
                let mut out = Outbox::default();
                shard.begin(txn_id, parts, &mut out);
                self.carry_out(out);
            }
            Commit::ThreePhase(three) => {
                let mut out = three_phase::Outbox::default();
                three.node.begin(txn_id, parts, &mut out);
                self.carry_out_3pc(out);
            }
        }
    }

    /// The 3PC state, on a 3PC shard.
    pub(super) fn three_pc(&mut self) -> Option<&mut ThreePc> {
        match &mut self.cross.as_mut()?.commit {
            Commit::ThreePhase(three) => Some(three),
            Commit::TwoPhase(_) => None,
        }
    }

    /// Queues an entry to propose once the ready being handled is done.
    pub(super) fn defer(&mut self, entry: Vec<u8>) {
        if let Some(cross) = &mut self.cross {
            cross.deferred.push(entry);
        }
    }

    /// Keys that client transactions proposed here and not yet applied will touch.
    fn keys_in_flight(&self) -> std::collections::HashSet<String> {
        self.writes
            .values()
            .flat_map(|w| w.txn.iter().map(MicroOp::key_string))
            .collect()
    }

    /// A 3PC message for this shard (see `three_pc`'s module docs).
    fn on_3pc_message(&mut self, message: three_phase::Message) {
        if !self.three_pc().is_some_and(|three| three.leading) {
            // The shard's group has not elected its node yet, so nothing could be made
            // durable: as if the node were still down (the protocol's timeouts cover it).
            return;
        }
        let out = self.receive_3pc(message);
        self.carry_out_3pc(out);
    }

    /// Hands a 3PC message to the shard's node. A can-commit of a new part whose keys
    /// a transaction in flight here would change is refused instead (a no vote), so
    /// that a part's reads are what its keys hold until it is applied.
    pub(super) fn receive_3pc(&mut self, message: three_phase::Message) -> three_phase::Outbox {
        let mut out = three_phase::Outbox::default();
        if let three_phase::Message::CanCommit {
            txn,
            coordinator,
            keys,
            ..
        } = &message
        {
            let in_flight = self.keys_in_flight();
            let shard = self.shard;
            if let Some(three) = self.three_pc()
                && three.node.part(*txn).is_none()
                && keys
                    .iter()
                    .any(|k| in_flight.contains(k) || three.is_busy(k))
            {
                let no = three_phase::Message::Vote {
                    txn: *txn,
                    from: shard,
                    yes: false,
                    reads: Vec::new(),
                };
                out.messages.push((*coordinator, no));
                return out;
            }
        }
        if let Some(three) = self.three_pc() {
            three.node.receive(message, &mut out);
        }
        out
    }

    /// A commit protocol's message for this shard.
    pub(super) fn on_commit_message(&mut self, message: commit::Message, relayed: bool) {
        let Some(cross) = &mut self.cross else {
            return;
        };
        let message = match (&mut cross.commit, message) {
            (Commit::TwoPhase(shard), commit::Message::TwoPhase(message)) => {
                if shard.leading() {
                    let mut out = Outbox::default();
                    shard.receive(message, &mut out);
                    self.carry_out(out);
                    return;
                }
                commit::Message::TwoPhase(message)
            }
            (Commit::ThreePhase(_), commit::Message::ThreePhase(message)) => {
                self.on_3pc_message(message);
                return;
            }
            (_, other) => {
                tracing::warn!(
                    ?other,
                    "dropping a message of the other commit protocol (do all nodes run \
                     the same --commit-protocol?)"
                );
                return;
            }
        };
        let leader = self.core.status().leader.filter(|l| *l != self.id);
        if let (false, Some(to)) = (relayed, leader) {
            let relay = PeerMessage::Commit {
                from: self.id,
                to,
                message,
            };
            self.transport.send(self.shard, &relay);
        }
    }

    /// A commit record applied from this shard's log (every replica, in log order).
    pub(super) fn apply_record(&mut self, record: &Record) {
        let Some(Commit::TwoPhase(shard)) = self.cross.as_mut().map(|c| &mut c.commit) else {
            tracing::error!("a 2PC record in the log of a node not running 2PC; skipped");
            return;
        };
        let mut out = Outbox::default();
        shard.apply(record, &mut out);
        self.carry_out(out);
    }

    /// A committed 3PC part's entry, applied (once: a part proposed again after a
    /// restart is skipped when its first entry was applied): its keys are free again.
    pub(super) fn apply_part(&mut self, txn: TxnId, ops: &[MicroOp]) -> TxnOutcome {
        let Some(three) = self.three_pc() else {
            return self.store.apply(ops);
        };
        three.applied(txn);
        if three.applied_parts.insert(txn, Decision::Commit).is_some() {
            return TxnOutcome::Committed(Vec::new());
        }
        let outcome = self.store.apply(ops);
        if !matches!(outcome, TxnOutcome::Committed(_)) {
            tracing::error!(txn, ?outcome, "a committed 3PC part did not apply");
        }
        outcome
    }

    /// One tick of the commit protocol's timeouts.
    pub(super) fn commit_tick(&mut self) {
        let Some(cross) = &mut self.cross else {
            return;
        };
        match &mut cross.commit {
            Commit::TwoPhase(shard) => {
                let mut out = Outbox::default();
                shard.tick(&mut out);
                self.carry_out(out);
            }
            Commit::ThreePhase(three) => {
                let mut out = three_phase::Outbox::default();
                three.node.tick(&mut out);
                for (txn, decision, _) in &out.decided {
                    tracing::debug!(target: "faultline_kv::three_pc", txn, ?decision, "decided by a timeout");
                }
                for (txn, decision, _) in &out.finished {
                    tracing::debug!(target: "faultline_kv::three_pc", txn, ?decision, "finished by a timeout");
                }
                self.carry_out_3pc(out);
            }
        }
    }

    /// Publishes this shard's status to the router and tells the commit core whether
    /// this replica leads; a coordinator that stops leading answers its clients `info`.
    pub(super) fn sync_leadership(&mut self) {
        let status = self.core.status();
        let leading = status.role == Role::Leader;
        self.cfg.router.publish(self.shard, status);
        let Some(cross) = &mut self.cross else {
            return;
        };
        if leading == cross.commit.leading() {
            return;
        }
        cross.commit.set_leader(leading);
        if leading {
            self.propose_unapplied_parts();
        }
        let Some(cross) = &mut self.cross else {
            return;
        };
        for (_, p) in cross.pending.drain() {
            let message = "this node stopped leading the coordinator shard before the \
                           transaction's outcome was known; it may still take effect";
            let _ = p
                .reply
                .send(Response::info(p.id, self.id, "leadership-lost", message));
        }
    }

    /// Proposes the records the commit core asked for while a ready was handled.
    pub(super) fn propose_deferred(&mut self) {
        let Some(cross) = &mut self.cross else {
            return;
        };
        for entry in std::mem::take(&mut cross.deferred) {
            if self.core.propose(entry).is_err() {
                tracing::debug!("not leading; a commit entry was not proposed");
            }
        }
    }

    /// Answers `info` to the cross-shard clients whose time ran out.
    pub(super) fn expire_cross_shard(&mut self, now: Instant) {
        let Some(cross) = &mut self.cross else {
            return;
        };
        for (_, p) in cross.pending.extract_if(|_, p| p.deadline <= now) {
            let message = "no outcome within the request timeout; the cross-shard \
                           transaction may still take effect";
            let _ = p
                .reply
                .send(Response::info(p.id, self.id, "timeout", message));
        }
    }

    /// The first key of `txn` that a prepared cross-shard part holds, if any.
    pub(super) fn locked_key(&self, txn: &[MicroOp]) -> Option<String> {
        let cross = self.cross.as_ref()?;
        txn.iter()
            .map(MicroOp::key_string)
            .find(|key| cross.commit.is_locked(key))
    }

    /// Whether this replica leads and a key of `txn` is busy (see the module docs).
    pub(super) fn is_busy(&self, txn: &[MicroOp]) -> bool {
        self.cross.as_ref().is_some_and(|cross| {
            cross.commit.leading() && txn.iter().any(|op| cross.commit.is_busy(&op.key_string()))
        })
    }

    /// Holds back a single-shard transaction until its keys are free (at most [`HOLD`]).
    pub(super) fn hold(&mut self, mut waiter: Waiter) {
        let Some(cross) = &mut self.cross else {
            return;
        };
        waiter.deadline = waiter.deadline.min(Instant::now() + HOLD);
        cross.held.push(waiter);
    }

    /// Starts the held transactions whose keys are free; fails those held too long.
    pub(super) fn retry_held(&mut self, now: Instant) {
        let Some(cross) = &mut self.cross else {
            return;
        };
        if cross.held.is_empty() {
            return;
        }
        for w in std::mem::take(&mut cross.held) {
            if !self.is_busy(&w.txn) {
                let request = Request::txn(w.id, w.txn);
                self.handle_client(request, w.reply);
            } else if w.deadline <= now {
                let key = self.locked_key(&w.txn).unwrap_or_default();
                let _ = w.reply.send(Response::fail(
                    w.id,
                    self.id,
                    "locked",
                    locked_message(&key),
                ));
            } else if let Some(cross) = &mut self.cross {
                cross.held.push(w);
            }
        }
    }

    /// Answers the waiting clients of stopping: `info`.
    pub(super) fn stop_cross_shard(&mut self) {
        if let Some(cross) = &mut self.cross {
            for w in cross.held.drain(..) {
                let _ = w.reply.send(Response::fail(
                    w.id,
                    self.id,
                    "node-stopping",
                    "the node is shutting down; the transaction was not started",
                ));
            }
            for (_, p) in cross.pending.drain() {
                let message = "the node is shutting down; the transaction may still take effect";
                let _ = p
                    .reply
                    .send(Response::info(p.id, self.id, "node-stopping", message));
            }
        }
    }

    /// Answers a cross-shard transaction's client with its decision.
    pub(super) fn answer_decided(
        &mut self,
        txn: TxnId,
        decision: Decision,
        reads: &BTreeMap<ShardId, Vec<u8>>,
    ) {
        let Some(cross) = &mut self.cross else {
            return;
        };
        let Some(p) = cross.pending.remove(&txn) else {
            return;
        };
        let response = match decision {
            Decision::Abort => Response::fail(
                p.id,
                self.id,
                "aborted",
                "the cross-shard transaction was aborted (a key was locked by another \
                 transaction, a part failed, or the votes came too late); it had no effect",
            ),
            Decision::Commit => match assemble(&p.ops, cross.shards, reads) {
                Some(results) => Response::ok_txn(p.id, self.id, results),
                None => Response::info(
                    p.id,
                    self.id,
                    "reads-lost",
                    "the transaction committed, but not every part's reads reached this node",
                ),
            },
        };
        let _ = p.reply.send(response);
    }

    /// The 2PC core, on a 2PC shard.
    fn two_pc(&mut self) -> Option<&mut two_phase::Shard> {
        match &mut self.cross.as_mut()?.commit {
            Commit::TwoPhase(shard) => Some(shard),
            Commit::ThreePhase(_) => None,
        }
    }

    /// Evaluates a prepared part's reads against the store (see the module docs).
    fn evaluate(&self, part: &[u8]) -> Option<Vec<u8>> {
        let ops = parse_txn(&serde_json::from_slice::<Value>(part).ok()?).ok()?;
        match self.store.evaluate(&ops) {
            TxnOutcome::Committed(results) => serde_json::to_vec(&results).ok(),
            TxnOutcome::Aborted { .. } => None,
        }
    }

    /// Carries out the 2PC core's outbox, and the outboxes that follow from it.
    fn carry_out(&mut self, out: Outbox) {
        let mut queue = VecDeque::from([out]);
        while let Some(out) = queue.pop_front() {
            for record in &out.proposals {
                self.defer(entries::encode(record));
            }
            for (txn, part) in out.to_evaluate {
                let reads = self.evaluate(&part);
                let mut next = Outbox::default();
                if let Some(shard) = self.two_pc() {
                    match reads {
                        Some(reads) => shard.vote(txn, reads, &mut next),
                        None => shard.refuse(txn, &mut next),
                    }
                }
                queue.push_back(next);
            }
            for (shard, message) in out.messages {
                if shard == self.shard {
                    let mut next = Outbox::default();
                    if let Some(own) = self.two_pc() {
                        own.receive(message, &mut next);
                    }
                    queue.push_back(next);
                } else {
                    let event = Event::Commit {
                        message: commit::Message::TwoPhase(message),
                        relayed: false,
                    };
                    if self.cfg.router.to_shard(shard, event).is_err() {
                        tracing::warn!(shard, "no loop for the shard; commit message dropped");
                    }
                }
            }
            for (txn, decision, reads) in out.decided {
                self.answer_decided(txn, decision, &reads);
            }
            for (txn, decision, part) in out.finished {
                if decision == Decision::Abort {
                    continue;
                }
                let applied = serde_json::from_slice::<Value>(&part)
                    .ok()
                    .and_then(|v| parse_txn(&v).ok())
                    .map(|ops| self.store.apply(&ops));
                if !matches!(applied, Some(TxnOutcome::Committed(_))) {
                    tracing::error!(txn, ?applied, "a committed part did not apply");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_ids_do_not_repeat() {
        let mut a = CrossShard::new(
            0,
            3,
            1,
            CommitSettings::TwoPhase(two_phase::Config::default()),
        );
        let mut b = CrossShard::new(
            1,
            3,
            1,
            CommitSettings::TwoPhase(two_phase::Config::default()),
        );
        let ids: std::collections::HashSet<TxnId> = (0..1000)
            .flat_map(|_| [a.next_txn(), b.next_txn()])
            .collect();
        assert_eq!(ids.len(), 2000);
    }
}
