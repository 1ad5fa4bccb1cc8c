//! A participant shard's side of 2PC: prepares (waiting for keys, wait-die), votes,
//! and outcomes.

use super::{Decision, Message, Outbox, PreparedPart, Record, Shard, Waiting};
use crate::commit::{ShardId, TxnId};

impl Shard {
    pub(super) fn apply_prepared(
        &mut self,
        txn: TxnId,
        coordinator: ShardId,
        keys: &[String],
        part: &[u8],
        out: &mut Outbox,
    ) {
        self.proposed.remove(&txn);
        self.reserved.retain(|_, holder| *holder != txn);
        let taken = self.finished.contains_key(&txn)
            || self.prepared.contains_key(&txn)
            || keys.iter().any(|k| self.locks.contains_key(k));
        if !taken {
            for key in keys {
                self.locks.insert(key.clone(), txn);
            }
            let prepared = PreparedPart {
                coordinator,
                keys: keys.to_vec(),
                part: part.to_vec(),
            };
            self.prepared.insert(txn, prepared);
            if self.leading {
                self.query_at
                    .insert(txn, self.now + self.config.query_timeout);
            }
        }
        if self.leading {
            match self.prepared.get(&txn) {
                // Prepared: its reads are evaluated, then it votes yes.
                Some(prepared) => out.to_evaluate.push((txn, prepared.part.clone())),
                None => out.messages.push((coordinator, self.no(txn))),
            }
            if taken {
                self.admit_waiting(out);
            }
        }
    }

    /// Participant (leader): votes yes for a part prepared here, with what its reads
    /// returned (see [`Outbox::to_evaluate`]).
    pub fn vote(&mut self, txn: TxnId, reads: Vec<u8>, out: &mut Outbox) {
        if !self.leading {
            return;
        }
        if let Some(prepared) = self.prepared.get(&txn) {
            let vote = Message::Vote {
                txn,
                from: self.id,
                yes: true,
                reads,
            };
            out.messages.push((prepared.coordinator, vote));
        }
    }

    /// Participant (leader): votes no for a part prepared here whose evaluation failed
    /// (a `cas` that compares false, say): the coordinator then decides abort, and the
    /// outcome releases the part's keys.
    pub fn refuse(&mut self, txn: TxnId, out: &mut Outbox) {
        if !self.leading {
            return;
        }
        if let Some(prepared) = self.prepared.get(&txn) {
            out.messages.push((prepared.coordinator, self.no(txn)));
        }
    }

    /// A no vote for `txn`.
    pub(super) fn no(&self, txn: TxnId) -> Message {
        Message::Vote {
            txn,
            from: self.id,
            yes: false,
            reads: Vec::new(),
        }
    }

    pub(super) fn on_prepare(
        &mut self,
        txn: TxnId,
        coordinator: ShardId,
        keys: Vec<String>,
        part: Vec<u8>,
        out: &mut Outbox,
    ) {
        if let Some(decision) = self.finished.get(&txn) {
            // Finished: a commit was decided without this vote's reads; an abort is a no.
            let vote = match decision {
                Decision::Commit => Message::Vote {
                    txn,
                    from: self.id,
                    yes: true,
                    reads: Vec::new(),
                },
                Decision::Abort => self.no(txn),
            };
            out.messages.push((coordinator, vote));
        } else if let Some(prepared) = self.prepared.get(&txn) {
            // A prepare again (the coordinator's leader changed, or a message was
            // duplicated): the same reads, evaluated again, the same vote.
            out.to_evaluate.push((txn, prepared.part.clone()));
        } else if self.proposed.contains(&txn) || self.waiting.iter().any(|(w, _)| w.txn == txn) {
            // Already on its way to the log, or waiting: nothing more to do.
        } else {
            let waiting = Waiting {
                txn,
                coordinator,
                keys,
                part,
            };
            let holders = self.holders(&waiting.keys, txn);
            if holders.iter().any(|holder| *holder < txn) {
                // Wait-die: a prepare waits only for transactions whose id is
                // larger, so no two ever wait for each other.
                out.messages.push((coordinator, self.no(txn)));
            } else if !holders.is_empty() {
                let deadline = self.now + self.config.lock_wait;
                self.waiting.push((waiting, deadline));
            } else {
                self.propose_prepare(waiting, out);
            }
        }
    }

    /// The transactions other than `txn` that hold (locked or reserved) any of `keys`.
    pub(super) fn holders(&self, keys: &[String], txn: TxnId) -> Vec<TxnId> {
        keys.iter()
            .flat_map(|k| [self.locks.get(k), self.reserved.get(k)])
            .flatten()
            .copied()
            .filter(|holder| *holder != txn)
            .collect()
    }

    /// Proposes a prepare, its keys reserved until it is applied.
    pub(super) fn propose_prepare(&mut self, prepare: Waiting, out: &mut Outbox) {
        let Waiting {
            txn,
            coordinator,
            keys,
            part,
        } = prepare;
        if !self.proposed.insert(txn) {
            return;
        }
        for key in &keys {
            self.reserved.insert(key.clone(), txn);
        }
        out.proposals.push(Record::Prepared {
            txn,
            coordinator,
            keys,
            part,
        });
    }

    /// Proposes the waiting prepares whose keys are now free, in arrival order (a
    /// later one never overtakes an earlier one on a key they share).
    pub(super) fn admit_waiting(&mut self, out: &mut Outbox) {
        let mut blocked: Vec<String> = Vec::new();
        for (waiting, deadline) in std::mem::take(&mut self.waiting) {
            let free = self.holders(&waiting.keys, waiting.txn).is_empty()
                && !waiting.keys.iter().any(|k| blocked.contains(k));
            if free {
                self.propose_prepare(waiting, out);
            } else {
                blocked.extend(waiting.keys.iter().cloned());
                self.waiting.push((waiting, deadline));
            }
        }
    }

    pub(super) fn on_outcome(&mut self, txn: TxnId, decision: Decision, out: &mut Outbox) {
        if self.finished.contains_key(&txn) {
            return;
        }
        // An abort of a part never prepared here is recorded too, so a prepare still
        // on its way is refused when it is applied.
        if self.prepared.contains_key(&txn) || decision == Decision::Abort {
            self.propose_finish(txn, decision, out);
        }
    }

    pub(super) fn propose_finish(&mut self, txn: TxnId, decision: Decision, out: &mut Outbox) {
        if self.proposed.insert(txn) {
            out.proposals.push(Record::Finished { txn, decision });
        }
    }
}
