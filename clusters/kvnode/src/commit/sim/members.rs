//! The two protocols' members as the simulation drives them: a 2PC shard with its
//! log's proposals in flight, a 3PC node with its disk.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::{Effects, Member};
use crate::commit::{Decision, ShardId, TxnId, three_phase, two_phase};

/// A 2PC shard: its state and its log's proposals in flight.
pub(super) struct TwoPhaseShard {
    pub(super) shard: two_phase::Shard,
    pub(super) proposals: Vec<(u64, two_phase::Record)>,
    /// Commits reported with every participant's reads, checked.
    pub(super) reads_checked: usize,
}

impl TwoPhaseShard {
    /// Evaluates the prepared parts' reads: a part's reads "return" its own bytes, so
    /// that what a coordinator reports for a commit can be checked against the parts.
    fn evaluate(&mut self, out: &mut two_phase::Outbox) {
        for (txn, part) in std::mem::take(&mut out.to_evaluate) {
            self.shard.vote(txn, part, out);
        }
        for (txn, decision, reads) in &out.decided {
            if *decision == Decision::Commit && !reads.is_empty() {
                let expected = txn.to_le_bytes();
                assert!(
                    reads.len() >= 2 && reads.values().all(|r| r[..] == expected[..]),
                    "txn {txn}: reads {reads:?}"
                );
                self.reads_checked += 1;
            }
        }
    }

    fn decided(out: &two_phase::Outbox) -> Vec<(TxnId, Decision)> {
        out.decided.iter().map(|(txn, d, _)| (*txn, *d)).collect()
    }

    fn effects(
        &mut self,
        mut out: two_phase::Outbox,
        rng: &mut ChaCha8Rng,
        now: u64,
    ) -> Effects<two_phase::Message> {
        self.evaluate(&mut out);
        let decided = TwoPhaseShard::decided(&out);
        for record in out.proposals {
            self.proposals.push((now + rng.random_range(1..6), record));
        }
        Effects {
            messages: out.messages,
            decided,
        }
    }
}

impl Member for TwoPhaseShard {
    type Message = two_phase::Message;

    fn begin(
        &mut self,
        txn: TxnId,
        parts: Vec<(ShardId, Vec<String>, Vec<u8>)>,
        rng: &mut ChaCha8Rng,
        now: u64,
    ) -> Effects<Self::Message> {
        let mut out = two_phase::Outbox::default();
        self.shard.begin(txn, parts, &mut out);
        self.effects(out, rng, now)
    }

    fn receive(
        &mut self,
        message: Self::Message,
        rng: &mut ChaCha8Rng,
        now: u64,
    ) -> Effects<Self::Message> {
        let mut out = two_phase::Outbox::default();
        self.shard.receive(message, &mut out);
        self.effects(out, rng, now)
    }

    fn tick(&mut self, rng: &mut ChaCha8Rng, now: u64) -> Effects<Self::Message> {
        let mut out = two_phase::Outbox::default();
        self.shard.tick(&mut out);
        self.effects(out, rng, now)
    }

    fn background(&mut self, now: u64) -> Effects<Self::Message> {
        let (due, later): (Vec<_>, Vec<_>) =
            self.proposals.drain(..).partition(|(at, _)| *at <= now);
        self.proposals = later;
        let mut out = two_phase::Outbox::default();
        for (_, record) in due {
            self.shard.apply(&record, &mut out);
        }
        self.evaluate(&mut out);
        // Applying proposes nothing.
        Effects {
            decided: TwoPhaseShard::decided(&out),
            messages: out.messages,
        }
    }

    fn crash(&mut self, rng: &mut ChaCha8Rng, back: u64) {
        self.shard.set_leader(false);
        // A crashed leader's proposals may have been replicated or not; those that
        // were are committed around the next election, racing the new leader's first
        // proposals.
        let proposals = std::mem::take(&mut self.proposals);
        for (_, record) in proposals {
            if rng.random_bool(0.5) {
                self.proposals
                    .push((back + rng.random_range(0..20), record));
            }
        }
    }

    fn recover(&mut self) {
        self.shard.set_leader(true);
    }

    fn finished(&self, txn: TxnId) -> Option<Decision> {
        self.shard.finished(txn)
    }

    fn in_doubt(&self) -> usize {
        self.shard.in_doubt().len()
    }

    fn doubts(&self, txn: TxnId) -> bool {
        self.shard.in_doubt().contains_key(&txn)
    }

    fn overruled(&self) -> u64 {
        self.shard.overruled()
    }
}

/// A 3PC node: its state, and what its disk holds while it is down.
pub(super) struct ThreePhaseNode {
    pub(super) id: ShardId,
    pub(super) config: three_phase::Config,
    pub(super) node: three_phase::Node,
}

impl ThreePhaseNode {
    /// Votes for the parts to evaluate (their reads "return" the part's own bytes),
    /// then hands out the effects.
    fn effects(&mut self, mut out: three_phase::Outbox) -> Effects<three_phase::Message> {
        for (txn, part) in std::mem::take(&mut out.to_evaluate) {
            self.node.vote(txn, part, &mut out);
        }
        Effects {
            messages: out.messages,
            decided: out.decided.into_iter().map(|(t, d, _)| (t, d)).collect(),
        }
    }
}

impl Member for ThreePhaseNode {
    type Message = three_phase::Message;

    fn begin(
        &mut self,
        txn: TxnId,
        parts: Vec<(ShardId, Vec<String>, Vec<u8>)>,
        _: &mut ChaCha8Rng,
        _: u64,
    ) -> Effects<Self::Message> {
        let mut out = three_phase::Outbox::default();
        self.node.begin(txn, parts, &mut out);
        self.effects(out)
    }

    fn receive(
        &mut self,
        message: Self::Message,
        _: &mut ChaCha8Rng,
        _: u64,
    ) -> Effects<Self::Message> {
        let mut out = three_phase::Outbox::default();
        self.node.receive(message, &mut out);
        self.effects(out)
    }

    fn tick(&mut self, _: &mut ChaCha8Rng, _: u64) -> Effects<Self::Message> {
        let mut out = three_phase::Outbox::default();
        self.node.tick(&mut out);
        self.effects(out)
    }

    fn crash(&mut self, _: &mut ChaCha8Rng, _: u64) {}

    fn recover(&mut self) {
        // Restarted from its disk: the phases written; everything else forgotten.
        self.node = three_phase::Node::new(self.id, self.config, self.node.disk());
    }

    fn finished(&self, txn: TxnId) -> Option<Decision> {
        match self.node.phase(txn) {
            Some(three_phase::Phase::Committed) => Some(Decision::Commit),
            Some(three_phase::Phase::Aborted) => Some(Decision::Abort),
            _ => None,
        }
    }

    fn in_doubt(&self) -> usize {
        self.node.in_doubt()
    }

    fn doubts(&self, txn: TxnId) -> bool {
        matches!(
            self.node.phase(txn),
            Some(three_phase::Phase::Uncertain | three_phase::Phase::PreCommitted)
        )
    }
}
