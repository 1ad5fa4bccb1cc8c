//! Deterministic simulation of the consensus cores (Raft, and Multi-Paxos with the same
//! faults and clients) with the real key-value state machine.
//!
//! Each seed draws a cluster (3 or 5 nodes), a lossy, duplicating, reordering network,
//! partitions, crashes (one node or all) with restarts from durable state, snapshots
//! and client traffic. Election safety, log matching, leader completeness and
//! state-machine safety are checked after every step; the client history is checked
//! with Faultline's linearizability checker; and after the faults stop the cluster must
//! make progress again. Multi-Paxos runs get Paxos' own checks instead of Raft's (one
//! value per slot and ballot; agreement per slot, for learned values and for values a
//! quorum of durable acceptor states holds; see `paxos.rs`). Each planted bug must be
//! caught within a bounded number of seeds.
//!
//! `FAULTLINE_SIM_SEEDS=N` changes how many seeds the main tests run (default 2,000);
//! `FAULTLINE_SIM_SEED=S` runs one seed and prints its history (with
//! `FAULTLINE_SIM_CONSENSUS=paxos` in Paxos mode, `FAULTLINE_SIM_BUG=NAME` with a bug).

mod client;
mod invariants;
mod node;
mod paxos;
mod world;

use std::time::Duration;

use faultline_checker::linearizable::{LinearizableOptions, check};
use faultline_checker::{History, Validity};
use faultline_kv::consensus::Protocol;
use faultline_kv::paxos::PaxosBugs;
use faultline_kv::raft::CoreBugs;

use world::{SimConfig, Stats, World};

/// Runs one seed: invariants, liveness, then linearizability of the history.
fn run_seed(cfg: SimConfig) -> Result<Stats, String> {
    let seed = cfg.seed;
    let mut world = World::new(cfg);
    let stats = world.run().map_err(|e| format!("seed {seed}: {e}"))?;
    let history = History::from_ops(&format!("sim-seed-{seed}"), world.history.clone())
        .map_err(|e| format!("seed {seed}: malformed history: {e}"))?;
    let options = LinearizableOptions {
        time_limit: Duration::from_secs(30),
        ..LinearizableOptions::default()
    };
    let verdict =
        check(&history, &options).map_err(|e| format!("seed {seed}: checker input: {e}"))?;
    match verdict.valid {
        Validity::Valid => Ok(stats),
        Validity::Invalid => Err(format!(
            "seed {seed}: history not linearizable: {}",
            verdict.explanation.join("\n")
        )),
        Validity::Unknown => Err(format!(
            "seed {seed}: linearizability unknown: {:?}",
            verdict.explanation
        )),
    }
}

fn seed_count() -> u64 {
    std::env::var("FAULTLINE_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000)
}

/// Runs `seeds` (a slice of the total), asserting every one passes.
fn run_range(part: u64, parts: u64, make: fn(u64) -> SimConfig) -> Stats {
    let total = seed_count();
    let mut stats = Stats::default();
    for seed in (part * total / parts)..((part + 1) * total / parts) {
        match run_seed(make(seed)) {
            Ok(s) => stats += s,
            Err(e) => panic!("{e}\nreplay with FAULTLINE_SIM_SEED={seed}"),
        }
    }
    stats
}

fn assert_coverage(stats: Stats) {
    eprintln!("{stats:?}");
    assert!(stats.leader_terms > 0 && stats.crashes > 0 && stats.partitions > 0);
    assert!(
        stats.snapshots_installed > 0,
        "no snapshot was ever installed: {stats:?}"
    );
    assert!(
        stats.ok > 0 && stats.fail > 0 && stats.info > 0,
        "{stats:?}"
    );
}

#[test]
fn seeds_part_1_of_2() {
    assert_coverage(run_range(0, 2, SimConfig::random));
}

#[test]
fn seeds_part_2_of_2() {
    assert_coverage(run_range(1, 2, SimConfig::random));
}

#[test]
fn paxos_seeds_part_1_of_2() {
    assert_coverage(run_range(0, 2, SimConfig::random_paxos));
}

#[test]
fn paxos_seeds_part_2_of_2() {
    assert_coverage(run_range(1, 2, SimConfig::random_paxos));
}

#[test]
fn one_seed_from_env() {
    let Some(seed) = std::env::var("FAULTLINE_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    else {
        return;
    };
    let mut cfg = match std::env::var("FAULTLINE_SIM_CONSENSUS").as_deref() {
        Ok("paxos") => SimConfig::random_paxos(seed),
        _ => SimConfig::random(seed),
    };
    if let Ok(bug) = std::env::var("FAULTLINE_SIM_BUG") {
        apply_bug(&mut cfg, &bug);
    }
    eprintln!("{cfg:?}");
    let mut world = World::new(cfg.clone());
    let result = world.run();
    for op in &world.history {
        eprintln!("{}", serde_json::to_string(op).unwrap());
    }
    eprintln!("{result:?}");
    if let Err(e) = run_seed(cfg) {
        panic!("{e}");
    }
}

#[test]
fn same_seed_same_history() {
    let run = |seed| {
        let mut world = World::new(SimConfig::random(seed));
        world.run().unwrap();
        serde_json::to_string(&world.history).unwrap()
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
    let run = |seed| {
        let mut world = World::new(SimConfig::random_paxos(seed));
        world.run().unwrap();
        serde_json::to_string(&world.history).unwrap()
    };
    assert_eq!(run(7), run(7));
}

fn apply_bug(cfg: &mut SimConfig, bug: &str) {
    match bug {
        "stale-read" => cfg.bugs.stale_read = true,
        "old-term-commit" => cfg.bugs.old_term_commit = true,
        "forget-vote" => cfg.bugs.forget_vote = true,
        "no-fsync" => cfg.no_fsync = true,
        "paxos-ignore-promise" => {
            cfg.consensus = Protocol::Paxos;
            cfg.paxos_bugs.ignore_promise = true;
        }
        "paxos-accept-stale-ballot" => {
            cfg.consensus = Protocol::Paxos;
            cfg.paxos_bugs.accept_stale_ballot = true;
        }
        "lease-read-skew" => {
            cfg.clock_steps = true;
            cfg.bugs.lease_read_skew = true;
        }
        "ack-before-commit" => cfg.bugs.ack_before_commit = true,
        other => panic!("unknown bug {other}"),
    }
}

/// The first seed below `bound` at which the simulation catches `bug`.
fn first_catch(bug: &str, bound: u64) -> Option<(u64, String)> {
    (0..bound).find_map(|seed| {
        let mut cfg = SimConfig::random(seed);
        apply_bug(&mut cfg, bug);
        run_seed(cfg).err().map(|e| (seed, e))
    })
}

fn assert_caught(bug: &str, bound: u64) {
    match first_catch(bug, bound) {
        Some((seed, e)) => eprintln!(
            "{bug}: caught at seed {seed}: {}",
            e.lines().next().unwrap_or("")
        ),
        None => panic!("the simulation did not catch --bug {bug} within {bound} seeds"),
    }
}

/// Like [`assert_caught`], and the seed that catches `bug` passes without it (same
/// faults, clients and clock steps): the bug, not the simulation, is what fails.
fn assert_caught_only_with_bug(bug: &str, bound: u64) {
    let Some((seed, e)) = first_catch(bug, bound) else {
        panic!("the simulation did not catch --bug {bug} within {bound} seeds");
    };
    eprintln!(
        "{bug}: caught at seed {seed}: {}",
        e.lines().next().unwrap_or("")
    );
    let mut cfg = SimConfig::random(seed);
    apply_bug(&mut cfg, bug);
    cfg.bugs = CoreBugs::default();
    cfg.paxos_bugs = PaxosBugs::default();
    if let Err(e) = run_seed(cfg) {
        panic!("seed {seed} fails without --bug {bug} too: {e}");
    }
}

#[test]
fn catches_lease_read_skew() {
    assert_caught_only_with_bug("lease-read-skew", 200);
}

#[test]
fn catches_ack_before_commit() {
    assert_caught_only_with_bug("ack-before-commit", 200);
}

#[test]
fn catches_paxos_accept_stale_ballot() {
    assert_caught_only_with_bug("paxos-accept-stale-ballot", 200);
}

#[test]
fn clock_steps_alone_are_safe() {
    for seed in 0..100 {
        let cfg = SimConfig {
            clock_steps: true,
            ..SimConfig::random(seed)
        };
        if let Err(e) = run_seed(cfg) {
            panic!("{e}");
        }
    }
}

#[test]
fn catches_stale_read() {
    assert_caught("stale-read", 20);
}

#[test]
fn catches_no_fsync() {
    assert_caught("no-fsync", 100);
}

#[test]
fn catches_old_term_commit() {
    assert_caught("old-term-commit", 800);
}

#[test]
fn catches_forget_vote() {
    assert_caught("forget-vote", 800);
}

#[test]
fn catches_paxos_ignore_promise() {
    assert_caught("paxos-ignore-promise", 200);
}

#[test]
fn bugs_are_off_by_default() {
    assert_eq!(SimConfig::random(1).bugs, CoreBugs::default());
    assert_eq!(SimConfig::random_paxos(1).paxos_bugs, PaxosBugs::default());
}

/// Tuning aid: how many of the first N seeds catch each bug (`--ignored`).
#[test]
#[ignore]
fn count_catches() {
    let n = seed_count();
    for bug in std::env::var("BUGS")
        .unwrap_or(
            "stale-read,no-fsync,old-term-commit,forget-vote,paxos-ignore-promise,\
             lease-read-skew,ack-before-commit,paxos-accept-stale-ballot"
                .into(),
        )
        .split(',')
    {
        let caught = (0..n)
            .filter(|seed| {
                let mut cfg = SimConfig::random(*seed);
                apply_bug(&mut cfg, bug);
                run_seed(cfg).is_err()
            })
            .count();
        eprintln!("{bug}: {caught} of {n} seeds");
    }
}
