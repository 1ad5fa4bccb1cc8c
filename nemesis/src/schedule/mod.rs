//! Fault schedules: pure generators for the nemesis process (Jepsen's
//! `nemesis/compose` of start/stop pairs under `cycle`). [`schedule`] alternates
//! "wait, start a random enabled fault, wait, stop it" forever; [`composed`] runs one
//! such cycle per [`FaultGroup`] at once, their operations interleaved on the nemesis
//! process (Jepsen's nemesis packages); [`final_heal`] stops every enabled fault once,
//! for after the time limit. Explicit timelines ([`timeline`]) come from schedule
//! files ([`file`]) or from a run's recorded `nemesis.jsonl` ([`replay`]).

mod composed;
pub mod file;
pub mod replay;
mod timeline;

use std::time::Duration;

use faultline_checker::history::{Op, Process};
use faultline_generator::{BoxGen, Context, GenOp, Generator, OpSpec, once, seq};
use rand::RngExt;
use serde_json::Value;

use crate::fault::{Fault, FaultGroup};

pub use composed::{Composed, composed};
pub use timeline::{Step, Timeline, timeline};

/// How the faults of a run are scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NemesisMode {
    /// One fault at a time ([`schedule`]).
    Sequential,
    /// One timer per fault group, groups overlapping ([`composed`]).
    #[default]
    Composed,
}

impl NemesisMode {
    /// Every mode, in order.
    pub const ALL: [NemesisMode; 2] = [NemesisMode::Sequential, NemesisMode::Composed];

    /// The mode's name on command lines.
    pub fn name(self) -> &'static str {
        match self {
            NemesisMode::Sequential => "sequential",
            NemesisMode::Composed => "composed",
        }
    }

    /// The schedule of `faults` in this mode, waits of mean `interval`.
    pub fn schedule(self, faults: &[Fault], interval: Duration) -> BoxGen {
        match self {
            NemesisMode::Sequential => schedule(faults, interval).boxed(),
            NemesisMode::Composed => composed(faults, interval).boxed(),
        }
    }
}

impl clap::ValueEnum for NemesisMode {
    fn value_variants<'a>() -> &'a [Self] {
        &NemesisMode::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()))
    }
}

/// The default mean time between fault changes in a run.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// Where a [`Schedule`] is in its cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting (until the deadline, once set) to start a fault.
    BeforeStart(Option<u64>),
    /// Waiting (until the deadline, once set) to stop `fault`.
    BeforeStop(Fault, Option<u64>),
}

/// The generator of [`schedule`].
#[derive(Debug, Clone)]
pub struct Schedule {
    faults: Vec<Fault>,
    interval: u64,
    phase: Phase,
    /// The faults still to start in this round, the next last.
    deck: Vec<Fault>,
}

/// A nemesis generator that cycles forever: wait, start a random fault among `faults`
/// (value null: the nemesis picks the topology or targets), wait, stop that fault, and
/// so on. The faults are dealt like a shuffled deck: each one once per round, in a
/// random order, so that even a short run gives every fault its turn (a fresh draw each
/// time left a third of the scenarios of `all` out of a minute's run). A scenario stays
/// active for `interval..2 × interval` (it plays rounds of several seconds) after a wait
/// of `0..interval`; every other wait is drawn uniformly from `0..2 × interval` (so `interval` is the mean
/// time between fault changes) and starts when the nemesis process is free, i.e. once
/// the previous fault is in place. Every choice comes from the context's RNG, so the
/// schedule replays from the seed.
///
/// Its operations are for [`Process::Nemesis`] only (it waits while that process is busy
/// or absent); combine it with the clients' generator with
/// [`faultline_generator::clients_and_nemesis`], bound it with
/// [`faultline_generator::time_limit`], and follow it with [`final_heal`]. With no
/// faults it is exhausted at once.
pub fn schedule(faults: &[Fault], interval: Duration) -> Schedule {
    let mut unique: Vec<Fault> = faults.to_vec();
    unique.sort();
    unique.dedup();
    Schedule {
        faults: unique,
        interval: u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX),
        phase: Phase::BeforeStart(None),
        deck: Vec::new(),
    }
}

impl Schedule {
    /// Whether one of its faults is active (started, not yet stopped).
    fn active(&self) -> bool {
        matches!(self.phase, Phase::BeforeStop(..))
    }

    /// When it will start its next fault, drawing the wait now if it has not been
    /// drawn; `None` while a fault is active (or there are no faults).
    fn start_deadline(&mut self, ctx: &mut Context) -> Option<u64> {
        if self.faults.is_empty() {
            return None;
        }
        match self.phase {
            Phase::BeforeStart(Some(d)) => Some(d),
            Phase::BeforeStart(None) => {
                let d = self.start_wait(ctx);
                self.phase = Phase::BeforeStart(Some(d));
                Some(d)
            }
            Phase::BeforeStop(..) => None,
        }
    }

    /// The next fault of the round, shuffling a new round (Fisher–Yates, from the
    /// context's RNG) when the last one is spent. `faults` is not empty.
    fn deal(&mut self, ctx: &mut Context) -> Fault {
        let next = self.next_fault(ctx);
        self.deck.pop();
        next
    }

    /// The fault [`deal`](Self::deal) gives next, shuffling a new round if needed.
    fn next_fault(&mut self, ctx: &mut Context) -> Fault {
        if self.deck.is_empty() {
            self.deck = self.faults.clone();
            for i in (1..self.deck.len()).rev() {
                let j = ctx.random_below(i as u64 + 1) as usize;
                self.deck.swap(i, j);
            }
        }
        self.deck.last().copied().unwrap_or(self.faults[0])
    }

    /// The deadline of the next start: a wait drawn from `0..2 × interval`, or from
    /// `0..interval` before a scenario (which then stays active `interval..2 ×
    /// interval`), so that a scenario's cycle is as long on average as any other
    /// fault's.
    fn start_wait(&mut self, ctx: &mut Context) -> u64 {
        let end = if self.next_fault(ctx).group() == FaultGroup::Scenario {
            self.interval
        } else {
            self.interval.saturating_mul(2)
        };
        self.deadline_within(ctx, 0, end)
    }

    /// Ends its active fault now, whatever its drawn deadline: the stop is the next op
    /// it gives. Nothing while no fault is active.
    pub(crate) fn cut_short(&mut self, now: u64) {
        if let Phase::BeforeStop(fault, deadline) = self.phase {
            let d = deadline.map_or(now, |d| d.min(now));
            self.phase = Phase::BeforeStop(fault, Some(d));
        }
    }

    /// A wait drawn from `floor..end` (`floor` when that is empty), as a deadline from
    /// now.
    fn deadline_within(&self, ctx: &mut Context, floor: u64, end: u64) -> u64 {
        let wait = if end <= floor {
            floor
        } else {
            ctx.rng().random_range(floor..end)
        };
        ctx.time().saturating_add(wait)
    }

    /// How long `fault` stays active at least: a scenario `interval` (its rounds take
    /// seconds each, and one stopped a second after it started did nothing), any other
    /// fault no time.
    fn least_active(&self, fault: Fault) -> u64 {
        if fault.group() == FaultGroup::Scenario {
            self.interval
        } else {
            0
        }
    }
}

impl Generator for Schedule {
    fn op(&mut self, ctx: &mut Context) -> GenOp {
        if self.faults.is_empty() {
            return GenOp::Exhausted;
        }
        if !ctx.is_free(Process::Nemesis) {
            return GenOp::WAIT;
        }
        let deadline = match self.phase {
            Phase::BeforeStart(Some(d)) | Phase::BeforeStop(_, Some(d)) => d,
            Phase::BeforeStart(None) => match self.start_deadline(ctx) {
                Some(d) => d,
                None => return GenOp::Exhausted,
            },
            Phase::BeforeStop(fault, None) => {
                let end = self.interval.saturating_mul(2);
                let d = self.deadline_within(ctx, self.least_active(fault), end);
                self.phase = Phase::BeforeStop(fault, Some(d));
                d
            }
        };
        if ctx.time() < deadline {
            return GenOp::Pending {
                retry_at: Some(deadline),
            };
        }
        let (f, next) = match self.phase {
            Phase::BeforeStart(_) => {
                let fault = self.deal(ctx);
                (fault.start_f(), Phase::BeforeStop(fault, None))
            }
            Phase::BeforeStop(fault, _) => (fault.stop_f(), Phase::BeforeStart(None)),
        };
        self.phase = next;
        GenOp::Op {
            process: Process::Nemesis,
            op: OpSpec::new(f, Value::Null),
        }
    }

    fn update(&mut self, _: &mut Context, _: &Op) {}
}

/// The operations that stop every fault in `faults` (one stop op each, in order), for
/// the nemesis once the time limit is over: Jepsen's final generator.
pub fn final_heal(faults: &[Fault]) -> BoxGen {
    let mut unique: Vec<Fault> = faults.to_vec();
    unique.sort();
    unique.dedup();
    let ops = unique
        .into_iter()
        .map(|f| once(OpSpec::new(f.stop_f(), Value::Null)).boxed())
        .collect();
    faultline_generator::nemesis(seq(ops)).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partitioner::{START_PARTITION, STOP_PARTITION};
    use crate::process::{KILL, PAUSE, RESUME, START};
    use faultline_generator::sim::{Simulation, invocations};
    use faultline_generator::{nemesis, phases, time_limit};

    /// The nemesis's invocations (f, time) of a 10-minute run with `faults`, then the
    /// final heal.
    fn run(seed: u64, faults: &[Fault]) -> Vec<(String, i64)> {
        let mut test = phases(vec![
            time_limit(
                Duration::from_secs(600),
                nemesis(schedule(faults, DEFAULT_INTERVAL)),
            )
            .boxed(),
            final_heal(faults),
        ]);
        let history = Simulation::new(seed)
            .concurrency(2)
            .nemesis(true)
            .run(&mut test)
            .unwrap();
        invocations(&history)
            .into_iter()
            .inspect(|op| assert_eq!(op.process, Process::Nemesis))
            .map(|op| (op.f, op.time))
            .collect()
    }

    #[test]
    fn the_schedule_alternates_start_and_stop_of_enabled_faults() {
        let faults = [Fault::Partition, Fault::Kill];
        let ops = run(1, &faults);
        // 600 s with a mean of 10 s between changes, then 2 final stops.
        assert!(ops.len() > 40 && ops.len() < 90, "{}", ops.len());
        let (cycle, tail) = ops.split_at(ops.len() - 2);
        let tail: Vec<&str> = tail.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(tail, [STOP_PARTITION, START]);
        let mut started = None;
        for (f, _) in cycle {
            match started {
                None => {
                    let fault = faults.iter().find(|x| x.start_f() == f);
                    started = Some(*fault.unwrap_or_else(|| panic!("{f} is not a start")));
                }
                Some(fault) => {
                    assert_eq!(f, fault.stop_f());
                    started = None;
                }
            }
        }
        let fs: std::collections::BTreeSet<&str> = ops.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fs,
            [START_PARTITION, STOP_PARTITION, KILL, START]
                .into_iter()
                .collect()
        );
        let gaps: Vec<i64> = ops.windows(2).map(|w| w[1].1 - w[0].1).collect();
        let mean = gaps.iter().sum::<i64>() / gaps.len() as i64;
        assert!((5e9..15e9).contains(&(mean as f64)), "mean gap {mean} ns");
    }

    #[test]
    fn each_fault_starts_once_per_round_in_a_random_order() {
        let faults = [Fault::Partition, Fault::Kill, Fault::Pause];
        let mut orders = std::collections::BTreeSet::new();
        for seed in 1..=5 {
            let starts: Vec<String> = run(seed, &faults)
                .into_iter()
                .map(|(f, _)| f)
                .filter(|f| faults.iter().any(|x| x.start_f() == f))
                .collect();
            assert!(starts.len() >= 9, "{starts:?}");
            for round in starts.chunks_exact(3) {
                let distinct: std::collections::BTreeSet<&String> = round.iter().collect();
                assert_eq!(distinct.len(), 3, "seed {seed}: {starts:?}");
                orders.insert(round.to_vec());
            }
        }
        // The order is drawn anew each round.
        assert!(orders.len() >= 4, "{orders:?}");
    }

    #[test]
    fn a_scenario_stays_active_at_least_an_interval() {
        let faults = [Fault::Figure8, Fault::VoteKill];
        for seed in 1..=3 {
            let ops = run(seed, &faults);
            let (cycle, _) = ops.split_at(ops.len() - 2);
            let mut held = Vec::new();
            for pair in cycle.chunks_exact(2) {
                held.push(pair[1].1 - pair[0].1);
            }
            assert!(held.len() > 10, "{held:?}");
            assert!(
                held.iter().all(|ns| (10e9..20e9).contains(&(*ns as f64))),
                "seed {seed}: {held:?}"
            );
        }
    }

    /// The composed schedule's invocations over 10 minutes.
    fn run_composed(seed: u64, faults: &[Fault]) -> Vec<(String, i64)> {
        let mut test = time_limit(
            Duration::from_secs(600),
            nemesis(composed(faults, DEFAULT_INTERVAL)),
        );
        let history = Simulation::new(seed)
            .concurrency(1)
            .nemesis(true)
            .run(&mut test)
            .unwrap();
        invocations(&history)
            .into_iter()
            .map(|op| (op.f, op.time))
            .collect()
    }

    #[test]
    fn composed_faults_overlap_across_groups_never_within_one() {
        let faults = [Fault::Partition, Fault::Kill, Fault::Pause, Fault::Clock];
        let ops = run_composed(3, &faults);
        assert_eq!(ops, run_composed(3, &faults));
        // What is active, per group; a start while its group is active is a bug.
        let mut active: std::collections::BTreeMap<FaultGroup, Fault> = Default::default();
        let mut overlaps = 0;
        for (f, _) in &ops {
            if let Some(fault) = faults.iter().find(|x| x.start_f() == f) {
                assert!(
                    active.insert(fault.group(), *fault).is_none(),
                    "{f} overlaps"
                );
                if active.len() > 1 {
                    overlaps += 1;
                }
            } else {
                let fault = faults.iter().find(|x| x.stop_f() == f).unwrap();
                assert_eq!(active.remove(&fault.group()), Some(*fault), "{f}");
            }
        }
        assert!(
            overlaps > 10,
            "{overlaps} starts while another group was active"
        );
        // Three groups each changing every 10 s on average: about 3 × 60 changes.
        assert!(ops.len() > 120 && ops.len() < 260, "{}", ops.len());
        let sequential = NemesisMode::Sequential.schedule(&faults, DEFAULT_INTERVAL);
        let mut test = time_limit(Duration::from_secs(600), nemesis(sequential));
        let history = Simulation::new(3).nemesis(true).run(&mut test).unwrap();
        assert!(invocations(&history).len() < 90);
    }

    #[test]
    fn scenarios_take_turns_with_process_and_network_faults_and_neither_starves() {
        let faults = [
            Fault::Partition,
            Fault::Kill,
            Fault::Packet,
            Fault::Clock,
            Fault::VoteKill,
            Fault::StaleLeader,
            Fault::Figure8,
        ];
        for seed in 1..=5 {
            let ops = run_composed(seed, &faults);
            assert_eq!(ops, run_composed(seed, &faults));
            let mut active: std::collections::BTreeMap<FaultGroup, Fault> = Default::default();
            let (mut scenario_starts, mut other_starts, mut clock_overlaps) = (0, 0, 0);
            for (f, _) in &ops {
                if let Some(fault) = faults.iter().find(|x| x.start_f() == f) {
                    let group = fault.group();
                    if group == FaultGroup::Scenario {
                        scenario_starts += 1;
                        assert!(
                            !active.contains_key(&FaultGroup::Process)
                                && !active.contains_key(&FaultGroup::Network)
                                && !active.contains_key(&FaultGroup::Packet),
                            "seed {seed}: {f} while {active:?}"
                        );
                    } else if matches!(
                        group,
                        FaultGroup::Process | FaultGroup::Network | FaultGroup::Packet
                    ) {
                        other_starts += 1;
                        assert!(
                            !active.contains_key(&FaultGroup::Scenario),
                            "seed {seed}: {f} while {active:?}"
                        );
                    }
                    if group == FaultGroup::Clock && active.contains_key(&FaultGroup::Scenario) {
                        clock_overlaps += 1;
                    }
                    assert!(active.insert(group, *fault).is_none(), "{f} overlaps");
                } else {
                    let fault = faults.iter().find(|x| x.stop_f() == f).unwrap();
                    assert_eq!(active.remove(&fault.group()), Some(*fault), "{f}");
                }
            }
            // Over 10 minutes (about 30 cycles a timer), each side gets its turns.
            assert!(
                scenario_starts >= 8,
                "seed {seed}: {scenario_starts} scenarios"
            );
            assert!(other_starts >= 16, "seed {seed}: {other_starts} others");
            assert!(
                clock_overlaps > 0,
                "seed {seed}: clock never beside a scenario"
            );
        }
    }

    #[test]
    fn a_due_scenario_cuts_short_the_process_network_and_packet_faults() {
        let faults = [
            Fault::Partition,
            Fault::Kill,
            Fault::Packet,
            Fault::VoteKill,
            Fault::StaleLeader,
            Fault::Figure8,
        ];
        let scenario = |f: &str| {
            faults[3..]
                .iter()
                .find(|x| x.start_f() == f || x.stop_f() == f)
                .map(|x| x.start_f() == f)
        };
        // A scenario waits at most an interval after the last one stopped, plus the
        // time to stop what it cuts short (simulated ops take well under a second each),
        // unless another group fell due first: then at most that fault's hold too.
        let interval = i64::try_from(DEFAULT_INTERVAL.as_nanos()).unwrap();
        let (mut prompt, mut starts) = (0, 0);
        for seed in 1..=5 {
            let mut last_stop = Some(0);
            for (f, time) in run_composed(seed, &faults) {
                match scenario(&f) {
                    Some(true) => {
                        let since = time - last_stop.take().unwrap();
                        assert!(since < 3 * interval + 3_000_000_000, "seed {seed}: {since}");
                        starts += 1;
                        if since < interval + 3_000_000_000 {
                            prompt += 1;
                        }
                    }
                    Some(false) => last_stop = Some(time),
                    None => {}
                }
            }
        }
        // Each cycle is about 20 s: about 30 scenarios in 10 minutes, most on time.
        assert!(starts >= 5 * 25, "{starts} scenario starts");
        assert!(prompt * 10 >= starts * 8, "{prompt} of {starts} on time");
    }

    #[test]
    fn the_schedule_replays_from_the_seed() {
        let all = Fault::ALL;
        assert_eq!(run(5, &all), run(5, &all));
        assert_ne!(run(5, &all), run(6, &all));
        let only_pause = run(9, &[Fault::Pause, Fault::Pause]);
        assert!(only_pause.iter().all(|(f, _)| f == PAUSE || f == RESUME));
        assert!(run(9, &[]).is_empty());
        assert_eq!(Fault::from_name("kill"), Some(Fault::Kill));
        assert_eq!(Fault::from_name("clock"), Some(Fault::Clock));
        assert_eq!(Fault::from_name("all"), None);
        for f in Fault::ALL {
            assert_eq!(Fault::from_name(f.name()), Some(f));
        }
    }
}
