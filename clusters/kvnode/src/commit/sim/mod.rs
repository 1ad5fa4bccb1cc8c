//! A seeded simulation of the commit protocols: members (a 2PC shard's leader, a 3PC
//! node) that crash and come back, messages delayed, lost and cut by partitions,
//! clients starting cross-shard transactions on contended keys; then every fault
//! healed and time to settle. It checks atomicity: a transaction commits on every
//! participant or on none, as its coordinator decided, and nothing stays in doubt
//! once the faults are healed.

use std::collections::{BTreeMap, BTreeSet};

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::{Decision, ShardId, TxnId};

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

mod members;
#[cfg(test)]
mod tests;
