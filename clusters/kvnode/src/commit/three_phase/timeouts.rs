//! 3PC's timeout rules: the coordinator's (abort on missing votes, commit on missing
//! acknowledgements), the participant's (a pre-committed part commits, an uncertain
//! one runs the termination protocol), and a part's final outcome.

use super::{Message, Node, Outbox, PartState, Phase, Terminating, Waiting};
use crate::commit::{Decision, TxnId, due};

impl Node {
    /// Advances time by one tick and applies the timeout rules.
    pub fn tick(&mut self, out: &mut Outbox) {
        self.now += 1;
        let late = due(&self.coordinating, self.now, |c| c.deadline);
        for txn in late {
            let Some(c) = self.coordinating.remove(&txn) else {
                continue;
            };
            // No votes in time: abort. No acknowledgements in time: commit, the
            // silent participants presumed crashed.
            let decision = match c.waiting {
                Waiting::Votes(_) => Decision::Abort,
                Waiting::Acks(_) => Decision::Commit,
            };
            self.announce(txn, decision, c, out);
        }
        let timed_out = due(&self.timers, self.now, |at| *at);
        for txn in timed_out {
            self.timers.remove(&txn);
            match self.phase(txn) {
                Some(Phase::PreCommitted) if !self.recovering.contains(&txn) => {
                    self.finish(txn, Decision::Commit, out);
                }
                Some(Phase::Uncertain | Phase::PreCommitted) => self.start_termination(txn, out),
                _ => {}
            }
        }
        let decided = due(&self.terminating, self.now, |t| t.deadline);
        for txn in decided {
            let Some(t) = self.terminating.remove(&txn) else {
                continue;
            };
            let recovering = self.recovering.contains(&txn);
            // A recovering part's own phase proves nothing: others may have decided.
            let committable = t.answers.iter().any(|(from, phase)| {
                (*from != self.id || !recovering)
                    && matches!(phase, Some(Phase::PreCommitted | Phase::Committed))
            });
            let refused = t
                .answers
                .values()
                .any(|phase| matches!(phase, None | Some(Phase::Aborted)));
            let decision = if committable {
                Decision::Commit
            } else if refused || !recovering {
                Decision::Abort
            } else {
                // Recovering, and no one knows more: ask again.
                self.start_termination(txn, out);
                continue;
            };
            let others = self
                .parts
                .get(&txn)
                .map(|p| p.participants.clone())
                .unwrap_or_default();
            self.finish(txn, decision, out);
            for shard in others.into_iter().filter(|s| *s != self.id) {
                out.messages
                    .push((shard, Message::Outcome { txn, decision }));
            }
        }
    }

    pub(super) fn start_termination(&mut self, txn: TxnId, out: &mut Outbox) {
        let Some(part) = self.parts.get(&txn) else {
            return;
        };
        if let Some(decision) = self.decisions.get(&txn) {
            // This node coordinated it and decided.
            let decision = *decision;
            self.finish(txn, decision, out);
            return;
        }
        let mut terminating = Terminating {
            deadline: self.now + self.config.timeout,
            ..Terminating::default()
        };
        terminating.answers.insert(self.id, Some(part.phase));
        for shard in part.participants.iter().filter(|s| **s != self.id) {
            let ask = Message::StateRequest { txn, from: self.id };
            out.messages.push((*shard, ask));
        }
        if part.coordinator != self.id {
            let ask = Message::AskOutcome { txn, from: self.id };
            out.messages.push((part.coordinator, ask));
        }
        self.terminating.insert(txn, terminating);
    }

    /// A participant's final outcome (a no-op once final).
    pub(super) fn finish(&mut self, txn: TxnId, decision: Decision, out: &mut Outbox) {
        let Some(part) = self.parts.get(&txn) else {
            if decision == Decision::Abort {
                // Remember it, so that a late can-commit is refused.
                self.refuse(txn, out);
            }
            return;
        };
        if matches!(part.phase, Phase::Committed | Phase::Aborted) {
            return;
        }
        let phase = match decision {
            Decision::Commit => Phase::Committed,
            Decision::Abort => Phase::Aborted,
        };
        self.set_phase(txn, phase, out);
        self.timers.remove(&txn);
        self.terminating.remove(&txn);
        self.recovering.remove(&txn);
        if let Some(part) = self.parts.get(&txn) {
            for key in &part.keys {
                if self.locks.get(key) == Some(&txn) {
                    self.locks.remove(key);
                }
            }
            out.finished.push((txn, decision, part.part.clone()));
        }
    }

    /// Records that this node will never vote yes for `txn`, a part it never had.
    pub(super) fn refuse(&mut self, txn: TxnId, out: &mut Outbox) {
        if let std::collections::btree_map::Entry::Vacant(entry) = self.parts.entry(txn) {
            entry.insert(PartState {
                phase: Phase::Aborted,
                coordinator: self.id,
                participants: Vec::new(),
                keys: Vec::new(),
                part: Vec::new(),
            });
            out.phases.push((txn, Phase::Aborted));
        }
    }

    pub(super) fn set_phase(&mut self, txn: TxnId, phase: Phase, out: &mut Outbox) {
        if let Some(part) = self.parts.get_mut(&txn) {
            part.phase = phase;
            out.phases.push((txn, phase));
        }
    }
}
