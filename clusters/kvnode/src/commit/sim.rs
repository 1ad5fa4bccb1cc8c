//! A seeded simulation of the commit protocols: members (a 2PC shard's leader, a 3PC
//! node) that crash and come back, messages delayed, lost and cut by partitions,
//! clients starting cross-shard transactions on contended keys; then every fault
//! healed and time to settle. It checks atomicity: a transaction commits on every
//! participant or on none, as its coordinator decided, and nothing stays in doubt
//! once the faults are healed.

use std::collections::{BTreeMap, BTreeSet};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Decision, ShardId, TxnId, three_phase, two_phase};

/// What a member's step produced for the rest of the simulation.
struct Effects<M> {
    messages: Vec<(ShardId, M)>,
    decided: Vec<(TxnId, Decision)>,
}

impl<M> Default for Effects<M> {
    fn default() -> Effects<M> {
        Effects {
            messages: Vec::new(),
            decided: Vec::new(),
        }
    }
}

/// One protocol's member as the simulation drives it.
trait Member {
    type Message;
    /// Coordinator: starts `txn`.
    fn begin(
        &mut self,
        txn: TxnId,
        parts: Vec<(ShardId, Vec<String>, Vec<u8>)>,
        rng: &mut ChaCha8Rng,
        now: u64,
    ) -> Effects<Self::Message>;
    fn receive(
        &mut self,
        message: Self::Message,
        rng: &mut ChaCha8Rng,
        now: u64,
    ) -> Effects<Self::Message>;
    /// One tick while up (`now` is the new time).
    fn tick(&mut self, rng: &mut ChaCha8Rng, now: u64) -> Effects<Self::Message>;
    /// Work that goes on while down (a replicated log still commits).
    fn background(&mut self, _now: u64) -> Effects<Self::Message> {
        Effects::default()
    }
    /// Crashes, to come back at `back`.
    fn crash(&mut self, rng: &mut ChaCha8Rng, back: u64);
    /// Comes back (a new leader, or the node restarted from its disk).
    fn recover(&mut self);
    /// Its outcome as a participant of `txn`, if final.
    fn finished(&self, txn: TxnId) -> Option<Decision>;
    /// Parts in doubt.
    fn in_doubt(&self) -> usize;
    /// Whether its part of `txn` is in doubt.
    fn doubts(&self, txn: TxnId) -> bool;
    /// Decisions that lost a race to an earlier one (2PC's log arbitration).
    fn overruled(&self) -> u64 {
        0
    }
}

/// A 2PC shard: its state and its log's proposals in flight.
struct TwoPhaseShard {
    shard: two_phase::Shard,
    proposals: Vec<(u64, two_phase::Record)>,
    /// Commits reported with every participant's reads, checked.
    reads_checked: usize,
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
struct ThreePhaseNode {
    id: ShardId,
    config: three_phase::Config,
    node: three_phase::Node,
}

impl ThreePhaseNode {
    fn effects(out: three_phase::Outbox) -> Effects<three_phase::Message> {
        Effects {
            messages: out.messages,
            decided: out.decided,
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
        ThreePhaseNode::effects(out)
    }

    fn receive(
        &mut self,
        message: Self::Message,
        _: &mut ChaCha8Rng,
        _: u64,
    ) -> Effects<Self::Message> {
        let mut out = three_phase::Outbox::default();
        self.node.receive(message, &mut out);
        ThreePhaseNode::effects(out)
    }

    fn tick(&mut self, _: &mut ChaCha8Rng, _: u64) -> Effects<Self::Message> {
        let mut out = three_phase::Outbox::default();
        self.node.tick(&mut out);
        ThreePhaseNode::effects(out)
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

/// What the simulated cluster suffers.
#[derive(Debug, Clone, Copy)]
struct Faults {
    /// Per tick and member: probability that it crashes.
    crash: f64,
    /// At most this many members down at once.
    max_down: usize,
    /// Per tick: probability that a partition starts (if none is in place).
    partition: f64,
    /// Probability that a message is lost.
    loss: f64,
    /// Probability that a message is slow (10–100 ticks instead of 1–10).
    slow: f64,
}

const HEALED: Faults = Faults {
    crash: 0.0,
    max_down: 0,
    partition: 0.0,
    loss: 0.0,
    slow: 0.0,
};

/// A transaction a client started.
struct Started {
    participants: Vec<ShardId>,
}

/// What a run found.
#[derive(Debug, Default)]
struct Report {
    /// Transactions committed on some participant and aborted (or never finished) on
    /// another, or finished against what their client was told.
    not_atomic: Vec<TxnId>,
    /// Parts still in doubt after the faults were healed and time passed.
    stuck: usize,
    /// Transactions with a part still in doubt although the outcome is known
    /// somewhere: its coordinator decided, or another participant finished.
    stuck_knowable: usize,
    /// Transactions committed everywhere.
    committed: usize,
    /// The rest.
    aborted: usize,
    /// Decisions that lost a race to an earlier one in a coordinator's log.
    overruled: u64,
}

struct Sim<P: Member> {
    rng: ChaCha8Rng,
    now: u64,
    members: Vec<P>,
    down_until: Vec<u64>,
    /// Messages in flight: (delivery tick, from, to, message).
    network: Vec<(u64, ShardId, ShardId, P::Message)>,
    /// The side of the partition each member is on (all 0: none).
    sides: Vec<u8>,
    partition_until: u64,
    started: BTreeMap<TxnId, Started>,
    told: BTreeMap<TxnId, Decision>,
    next_txn: TxnId,
}

impl<P: Member> Sim<P> {
    fn new(rng: ChaCha8Rng, members: Vec<P>) -> Sim<P> {
        let n = members.len();
        Sim {
            rng,
            now: 0,
            members,
            down_until: vec![0; n],
            network: Vec::new(),
            sides: vec![0; n],
            partition_until: 0,
            started: BTreeMap::new(),
            told: BTreeMap::new(),
            next_txn: 1,
        }
    }

    fn up(&self, id: ShardId) -> bool {
        self.down_until[id as usize] <= self.now
    }

    /// Carries out what member `from` produced.
    fn dispatch(&mut self, from: ShardId, effects: Effects<P::Message>, faults: Faults) {
        for (to, message) in effects.messages {
            // Mostly quick, sometimes slow (a queue, a retransmission).
            let slow = faults.slow > 0.0 && self.rng.random_bool(faults.slow);
            let delay = if slow {
                self.rng.random_range(10..100)
            } else {
                self.rng.random_range(1..10)
            };
            self.network.push((self.now + delay, from, to, message));
        }
        for (txn, decision) in effects.decided {
            self.told.insert(txn, decision);
        }
    }

    fn step(&mut self, faults: Faults, clients: bool) {
        self.now += 1;
        let n = self.members.len() as u32;
        let now = self.now;
        // Crashes, at most `max_down` at once.
        for id in 0..n {
            let down = (0..n).filter(|i| !self.up(*i)).count();
            if faults.crash > 0.0
                && down < faults.max_down
                && self.up(id)
                && self.rng.random_bool(faults.crash)
            {
                let back = now + self.rng.random_range(5..40);
                self.down_until[id as usize] = back;
                self.members[id as usize].crash(&mut self.rng, back);
            } else if self.down_until[id as usize] == now {
                self.members[id as usize].recover();
            }
        }
        if self.partition_until <= now {
            self.sides.iter_mut().for_each(|side| *side = 0);
            if faults.partition > 0.0 && self.rng.random_bool(faults.partition) {
                for side in self.sides.iter_mut() {
                    *side = self.rng.random_range(0..2);
                }
                self.partition_until = now + self.rng.random_range(20..120);
            }
        }
        for id in 0..n {
            let effects = self.members[id as usize].background(now);
            self.dispatch(id, effects, faults);
        }
        // The network delivers what is due.
        let (due, later): (Vec<_>, Vec<_>) =
            self.network.drain(..).partition(|(at, ..)| *at <= now);
        self.network = later;
        for (_, from, to, message) in due {
            let cut = self.sides[from as usize] != self.sides[to as usize];
            let lost = faults.loss > 0.0 && self.rng.random_bool(faults.loss);
            if cut || lost || !self.up(to) {
                continue;
            }
            let effects = self.members[to as usize].receive(message, &mut self.rng, now);
            self.dispatch(to, effects, faults);
        }
        // Clients start transactions over two or three members, on contended keys.
        if clients && self.rng.random_bool(0.2) {
            self.start_transaction(faults);
        }
        for id in 0..n {
            if self.up(id) {
                let effects = self.members[id as usize].tick(&mut self.rng, now);
                self.dispatch(id, effects, faults);
            }
        }
    }

    fn start_transaction(&mut self, faults: Faults) {
        let n = self.members.len() as u32;
        let coordinator = self.rng.random_range(0..n);
        let mut participants: BTreeSet<ShardId> = BTreeSet::new();
        let wanted = self.rng.random_range(2..=3.min(n as usize));
        while participants.len() < wanted {
            participants.insert(self.rng.random_range(0..n));
        }
        let txn = self.next_txn;
        self.next_txn += 1;
        let parts = participants
            .iter()
            .map(|p| {
                let key = format!("k{}", self.rng.random_range(0..100));
                (*p, vec![key], txn.to_le_bytes().to_vec())
            })
            .collect();
        let participants = participants.into_iter().collect();
        self.started.insert(txn, Started { participants });
        if self.up(coordinator) {
            let now = self.now;
            let effects = self.members[coordinator as usize].begin(txn, parts, &mut self.rng, now);
            self.dispatch(coordinator, effects, faults);
        }
    }

    /// Runs `ticks` with `faults` and clients, then `settle` ticks healed and quiet.
    fn run(&mut self, faults: Faults, ticks: u64, settle: u64) -> Report {
        for _ in 0..ticks {
            self.step(faults, true);
        }
        self.partition_until = 0;
        for _ in 0..settle {
            self.step(HEALED, false);
        }
        self.report()
    }

    fn report(&self) -> Report {
        let mut report = Report::default();
        for (txn, started) in &self.started {
            let outcomes: Vec<Option<Decision>> = started
                .participants
                .iter()
                .map(|p| self.members[*p as usize].finished(*txn))
                .collect();
            let any_commit = outcomes.contains(&Some(Decision::Commit));
            let all_commit = outcomes.iter().all(|o| *o == Some(Decision::Commit));
            let told = self.told.get(txn).copied();
            let atomic = if any_commit {
                all_commit && told != Some(Decision::Abort)
            } else {
                told != Some(Decision::Commit)
            };
            if !atomic {
                report.not_atomic.push(*txn);
            }
            let doubted = started
                .participants
                .iter()
                .any(|p| self.members[*p as usize].doubts(*txn));
            if doubted && (told.is_some() || outcomes.iter().any(Option::is_some)) {
                report.stuck_knowable += 1;
            }
            if all_commit {
                report.committed += 1;
            } else {
                report.aborted += 1;
            }
        }
        report.stuck = self.members.iter().map(Member::in_doubt).sum();
        report.overruled = self.members.iter().map(Member::overruled).sum();
        report
    }
}

/// 2PC over three shards; its timeouts drawn from the seed (short ones race the
/// messages they wait for), the planted bug as `bugs` says.
fn two_phase_sim(seed: u64, bugs: two_phase::Config) -> Sim<TwoPhaseShard> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let config = two_phase::Config {
        vote_timeout: rng.random_range(25..80),
        query_timeout: rng.random_range(10..120),
        ..bugs
    };
    two_phase_with(rng, config)
}

fn two_phase_with(rng: ChaCha8Rng, config: two_phase::Config) -> Sim<TwoPhaseShard> {
    let members = (0..3)
        .map(|id| {
            let mut shard = two_phase::Shard::new(id, config);
            shard.set_leader(true);
            TwoPhaseShard {
                shard,
                proposals: Vec::new(),
                reads_checked: 0,
            }
        })
        .collect();
    Sim::new(rng, members)
}

/// 3PC over three nodes.
fn three_phase_sim(seed: u64) -> Sim<ThreePhaseNode> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let config = three_phase::Config {
        timeout: rng.random_range(40..80),
    };
    let members = (0..3)
        .map(|id| ThreePhaseNode {
            id,
            config,
            node: three_phase::Node::new(id, config, three_phase::Disk::default()),
        })
        .collect();
    Sim::new(rng, members)
}

const ALL_FAULTS: Faults = Faults {
    crash: 0.002,
    max_down: 3,
    partition: 0.004,
    loss: 0.02,
    slow: 0.1,
};

#[test]
fn two_phase_commit_is_atomic_through_crashes_loss_and_partitions() {
    let mut overruled = 0;
    for seed in 0..40 {
        let report =
            two_phase_sim(seed, two_phase::Config::default()).run(ALL_FAULTS, 3_000, 1_000);
        assert!(report.not_atomic.is_empty(), "seed {seed}: {report:?}");
        assert_eq!(report.stuck, 0, "seed {seed}: {report:?}");
        assert_eq!(report.stuck_knowable, 0, "seed {seed}: {report:?}");
        // The run did something: transactions committed and others aborted.
        assert!(
            report.committed > 20 && report.aborted > 10,
            "seed {seed}: {report:?}"
        );
        overruled += report.overruled;
    }
    // The runs raced decisions (an old leader's commit against a new leader's abort
    // on a participant's query), so the log's arbitration was tested.
    assert!(overruled > 0, "no decision was ever contested");
}

#[test]
fn without_faults_nearly_every_transaction_commits() {
    let rng = ChaCha8Rng::seed_from_u64(1);
    let mut sim = two_phase_with(rng, two_phase::Config::default());
    let report = sim.run(HEALED, 3_000, 500);
    assert!(
        report.not_atomic.is_empty() && report.stuck == 0,
        "{report:?}"
    );
    // Aborts come only from contended keys.
    assert!(report.committed > 4 * report.aborted, "{report:?}");
    // Every commit reached its client with each participant's reads.
    let reported: usize = sim.members.iter().map(|m| m.reads_checked).sum();
    assert_eq!(reported, report.committed, "{report:?}");
}

#[test]
fn presumed_commit_breaks_atomicity() {
    let bugs = two_phase::Config {
        presumed_commit: true,
        ..two_phase::Config::default()
    };
    let caught = (0..40)
        .filter(|seed| {
            !two_phase_sim(*seed, bugs)
                .run(ALL_FAULTS, 3_000, 1_000)
                .not_atomic
                .is_empty()
        })
        .count();
    // Every seed, not a chosen one: the bug shows in every run.
    assert_eq!(caught, 40, "caught in {caught} of 40 runs");
}

#[test]
fn three_phase_commit_is_atomic_under_crashes_one_at_a_time() {
    // The textbook's model: a node that does not answer has crashed, every message
    // arrives (late at worst), one node down at a time.
    let crashes = Faults {
        crash: 0.003,
        max_down: 1,
        ..HEALED
    };
    let mut blocked = 0;
    for seed in 0..40 {
        let report = three_phase_sim(seed).run(crashes, 3_000, 1_000);
        assert!(report.not_atomic.is_empty(), "seed {seed}: {report:?}");
        assert!(
            report.committed > 20 && report.aborted > 5,
            "seed {seed}: {report:?}"
        );
        // A part blocks only after a total failure, as the textbook says: every
        // participant and the coordinator crashed (one at a time) while it was in
        // doubt and before anyone decided, so no one knows whether a pre-commit went
        // out. Where someone knows, the part learns it.
        assert_eq!(report.stuck_knowable, 0, "seed {seed}: {report:?}");
        blocked += report.stuck;
    }
    eprintln!("3PC under crashes: {blocked} parts blocked by total failures in 40 runs");
}

#[test]
fn three_phase_commit_breaks_atomicity_under_partitions() {
    let partitions = Faults {
        partition: 0.004,
        ..HEALED
    };
    let caught = (0..40)
        .filter(|seed| {
            !three_phase_sim(*seed)
                .run(partitions, 3_000, 1_000)
                .not_atomic
                .is_empty()
        })
        .count();
    // Every seed, not a chosen one.
    assert!(
        caught >= 35,
        "caught in {caught} of 40 runs (39 when this was written)"
    );
}
