//! The simulation's scenarios: each protocol under the faults it claims to survive,
//! and the ones it does not.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::members::{ThreePhaseNode, TwoPhaseShard};
use super::{Faults, HEALED, Sim};
use crate::commit::{three_phase, two_phase};

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
