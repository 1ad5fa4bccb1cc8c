//! Seeded synthetic histories: concurrent clients simulated against an atomic object,
//! so that the histories are linearizable by construction, plus corruptions that make
//! them invalid. Used by the tests, the benchmarks and `faultline gen`.
//!
//! The simulation interleaves invocations, linearization points and completions of
//! `processes` clients at random. A crashed operation (`info`) either took effect or
//! did not, and its process is retired for a fresh one, as in a real run. A `cas` whose
//! expected value does not match fails.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::history::{Key, Op, OpType, Process};

/// The object the simulated clients use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    /// `read`, `write`, `cas`.
    CasRegister,
    /// `acquire`, `release`.
    Mutex,
    /// `add`, `read`.
    Set,
    /// `enqueue`, `dequeue`.
    FifoQueue,
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SynthConfig {
    /// The seed: the same config gives the same history.
    pub seed: u64,
    /// The object.
    pub object: Object,
    /// How many client operations (invocations) to make.
    pub ops: usize,
    /// Concurrent client processes.
    pub processes: usize,
    /// Independent keys (0: operations carry no key).
    pub keys: usize,
    /// Probability that an operation crashes (completes with `info`).
    pub crash_rate: f64,
    /// Written values drawn from `0..domain`; `None`: every written value is unique.
    pub value_domain: Option<u64>,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            seed: 0,
            object: Object::CasRegister,
            ops: 1000,
            processes: 5,
            keys: 0,
            crash_rate: 0.0,
            value_domain: Some(5),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Register(Value),
    Lock(bool),
    Set(BTreeSet<i64>),
    Queue(VecDeque<i64>),
}

struct InFlight {
    process: u64,
    f: &'static str,
    key: Option<Key>,
    argument: Value,
    /// Set once the operation took effect: its outcome and result.
    applied: Option<(OpType, Value)>,
}

struct Simulation {
    config: SynthConfig,
    rng: ChaCha8Rng,
    ops: Vec<Op>,
    states: BTreeMap<Option<Key>, State>,
    unique: i64,
    next_process: u64,
}

/// Simulates `config` and returns the history's events.
pub fn simulate(config: &SynthConfig) -> Vec<Op> {
    let mut sim = Simulation {
        config: config.clone(),
        rng: ChaCha8Rng::seed_from_u64(config.seed),
        ops: Vec::new(),
        states: BTreeMap::new(),
        unique: 0,
        next_process: config.processes as u64,
    };
    let processes = config.processes.max(1);
    let mut slots: Vec<Option<InFlight>> = (0..processes).map(|_| None).collect();
    let mut slot_process: Vec<u64> = (0..processes as u64).collect();
    let mut invoked = 0usize;
    while invoked < config.ops || slots.iter().any(Option::is_some) {
        let slot = sim.rng.random_range(0..processes);
        match slots[slot].take() {
            None if invoked < config.ops => {
                invoked += 1;
                slots[slot] = Some(sim.invoke(slot_process[slot]));
            }
            None => {}
            Some(mut op) => match op.applied.take() {
                None => {
                    if sim.rng.random_bool(config.crash_rate / 2.0) {
                        sim.emit(&op, OpType::Info, op.argument.clone());
                        slot_process[slot] = sim.fresh_process();
                    } else {
                        op.applied = Some(sim.apply(&op));
                        slots[slot] = Some(op);
                    }
                }
                Some((outcome, result)) => {
                    if sim.rng.random_bool(config.crash_rate / 2.0) {
                        sim.emit(&op, OpType::Info, op.argument.clone());
                        slot_process[slot] = sim.fresh_process();
                    } else {
                        sim.emit(&op, outcome, result);
                    }
                }
            },
        }
    }
    sim.ops
}

impl Simulation {
    fn fresh_process(&mut self) -> u64 {
        self.next_process += 1;
        self.next_process - 1
    }

    fn value(&mut self) -> Value {
        match self.config.value_domain {
            Some(domain) => json!(self.rng.random_range(0..domain.max(1))),
            None => {
                self.unique += 1;
                json!(self.unique)
            }
        }
    }

    fn element(&mut self) -> i64 {
        self.unique += 1;
        self.unique
    }

    fn invoke(&mut self, process: u64) -> InFlight {
        let key = (self.config.keys > 0)
            .then(|| Key::Int(self.rng.random_range(0..self.config.keys as i64)));
        let roll = self.rng.random_range(0..100u32);
        let (f, argument) = match self.config.object {
            Object::CasRegister if roll < 50 => ("read", Value::Null),
            Object::CasRegister if roll < 75 => ("write", self.value()),
            Object::CasRegister => ("cas", json!([self.value(), self.value()])),
            Object::Mutex if roll < 50 => ("acquire", Value::Null),
            Object::Mutex => ("release", Value::Null),
            Object::Set if roll < 60 => ("add", json!(self.element())),
            Object::Set => ("read", Value::Null),
            Object::FifoQueue if roll < 50 => ("enqueue", json!(self.element())),
            Object::FifoQueue => ("dequeue", Value::Null),
        };
        let op = InFlight {
            process,
            f,
            key,
            argument,
            applied: None,
        };
        self.emit(&op, OpType::Invoke, op.argument.clone());
        op
    }

    /// Applies the operation to the object at this instant: its linearization point.
    fn apply(&mut self, op: &InFlight) -> (OpType, Value) {
        let initial = match self.config.object {
            Object::CasRegister => State::Register(Value::Null),
            Object::Mutex => State::Lock(false),
            Object::Set => State::Set(BTreeSet::new()),
            Object::FifoQueue => State::Queue(VecDeque::new()),
        };
        let state = self.states.entry(op.key.clone()).or_insert(initial);
        match (state, op.f) {
            (State::Register(v), "read") => (OpType::Ok, v.clone()),
            (State::Register(v), "write") => {
                *v = op.argument.clone();
                (OpType::Ok, op.argument.clone())
            }
            (State::Register(v), "cas") => {
                if *v == op.argument[0] {
                    *v = op.argument[1].clone();
                    (OpType::Ok, op.argument.clone())
                } else {
                    (OpType::Fail, op.argument.clone())
                }
            }
            (State::Lock(held), "acquire") => {
                let ok = !*held;
                *held = true;
                (if ok { OpType::Ok } else { OpType::Fail }, Value::Null)
            }
            (State::Lock(held), _) => {
                let ok = *held;
                *held = false;
                (if ok { OpType::Ok } else { OpType::Fail }, Value::Null)
            }
            (State::Set(items), "add") => {
                items.insert(op.argument.as_i64().unwrap_or_default());
                (OpType::Ok, op.argument.clone())
            }
            (State::Set(items), _) => (OpType::Ok, json!(items.iter().collect::<Vec<_>>())),
            (State::Queue(items), "enqueue") => {
                items.push_back(op.argument.as_i64().unwrap_or_default());
                (OpType::Ok, op.argument.clone())
            }
            (State::Queue(items), _) => (
                OpType::Ok,
                items.pop_front().map_or(Value::Null, |e| json!(e)),
            ),
            (_, _) => (OpType::Fail, Value::Null),
        }
    }

    fn emit(&mut self, op: &InFlight, op_type: OpType, value: Value) {
        let index = self.ops.len() as u64;
        let mut event = Op::new(
            index,
            index as i64 * 1000,
            Process::Client(op.process),
            op_type,
            op.f,
            value,
        );
        event.key = op.key.clone();
        self.ops.push(event);
    }
}

/// Makes a history invalid for certain: one `ok` read (or dequeue) returns a value that
/// was never written. Returns `None` when the history has no such read. The read is
/// chosen with `seed` from the middle half of the history, so a checker must search
/// through the first part before it can find the problem.
pub fn corrupt_with_unwritten_read(ops: &[Op], seed: u64) -> Option<Vec<Op>> {
    let reads: Vec<usize> = ops
        .iter()
        .enumerate()
        .filter(|(i, op)| {
            op.op_type == OpType::Ok
                && matches!(op.f.as_str(), "read" | "dequeue")
                && *i >= ops.len() / 4
                && *i <= ops.len() * 3 / 4
        })
        .map(|(i, _)| i)
        .collect();
    if reads.is_empty() {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let target = reads[rng.random_range(0..reads.len())];
    let mut corrupted = ops.to_vec();
    corrupted[target].value = match corrupted[target].value {
        Value::Array(_) => json!([-1]),
        _ => json!(-1),
    };
    Some(corrupted)
}

/// Changes one random `ok` read or dequeue result to another plausible value, or (half
/// the time, and always when there is no read) turns one `fail` into `ok`. The result may
/// or may not be linearizable. For property tests against an oracle.
pub fn perturb_read(ops: &[Op], seed: u64, domain: u64) -> Vec<Op> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let pick = |want: &dyn Fn(&Op) -> bool| -> Vec<usize> {
        ops.iter()
            .enumerate()
            .filter(|(_, op)| want(op))
            .map(|(i, _)| i)
            .collect()
    };
    let reads = pick(&|op| op.op_type == OpType::Ok && matches!(op.f.as_str(), "read" | "dequeue"));
    let failures = pick(&|op| op.op_type == OpType::Fail);
    let mut perturbed = ops.to_vec();
    if !failures.is_empty() && (reads.is_empty() || rng.random_bool(0.5)) {
        let target = failures[rng.random_range(0..failures.len())];
        perturbed[target].op_type = OpType::Ok;
        return perturbed;
    }
    if reads.is_empty() {
        return perturbed;
    }
    let target = reads[rng.random_range(0..reads.len())];
    let domain = domain.max(1) as i64;
    perturbed[target].value = match &perturbed[target].value {
        Value::Array(items) if !items.is_empty() && rng.random_bool(0.5) => {
            let mut items = items.clone();
            items.remove(rng.random_range(0..items.len()));
            Value::Array(items)
        }
        Value::Array(items) => {
            let mut items = items.clone();
            items.push(json!(rng.random_range(1..=domain)));
            Value::Array(items)
        }
        _ if rng.random_bool(0.2) => Value::Null,
        _ => json!(rng.random_range(0..domain)),
    };
    perturbed
}

/// Makes a register history invalid for certain in a way no single read shows: two reads
/// of one process, the first of `x` and the later of `y`, are swapped so that the later
/// one sees `x`. Only pairs where every write or cas producing `x` completed before the
/// first read was invoked (and none crashed) are used, so that once the first read sees
/// `y` the register can never hold `x` again. Returns `None` if no such pair exists.
pub fn corrupt_with_swapped_reads(ops: &[Op], seed: u64) -> Option<Vec<Op>> {
    // (invoke position, completion position) of every completed or crashed producer, by
    // value and key; crashed producers have no completion.
    let mut producers: BTreeMap<(Option<Key>, String), Vec<Option<usize>>> = BTreeMap::new();
    let mut open: BTreeMap<u64, usize> = BTreeMap::new();
    let mut reads: Vec<(u64, usize, usize)> = Vec::new(); // (process, invoke, ok)
    for (i, op) in ops.iter().enumerate() {
        let Process::Client(process) = op.process else {
            continue;
        };
        match op.op_type {
            OpType::Invoke => {
                open.insert(process, i);
            }
            outcome => {
                let Some(invoke) = open.remove(&process) else {
                    continue;
                };
                let written = match (op.f.as_str(), outcome) {
                    ("write", OpType::Ok | OpType::Info) => Some(ops[invoke].value.clone()),
                    ("cas", OpType::Ok | OpType::Info) => ops[invoke].value.get(1).cloned(),
                    _ => None,
                };
                if let Some(value) = written {
                    let done = (outcome == OpType::Ok).then_some(i);
                    producers
                        .entry((op.key.clone(), value.to_string()))
                        .or_default()
                        .push(done);
                }
                if op.f == "read" && outcome == OpType::Ok {
                    reads.push((process, invoke, i));
                }
            }
        }
    }
    // Consecutive reads of each process.
    let mut previous: BTreeMap<u64, (usize, usize)> = BTreeMap::new();
    let mut candidates = Vec::new();
    for (process, i2, o2) in reads {
        let Some((i1, o1)) = previous.insert(process, (i2, o2)) else {
            continue;
        };
        if ops[o1].key != ops[o2].key || ops[o1].value == ops[o2].value {
            continue;
        }
        let x = &ops[o1].value;
        if x.is_null() {
            continue;
        }
        let safe = producers
            .get(&(ops[o1].key.clone(), x.to_string()))
            .is_some_and(|list| list.iter().all(|done| done.is_some_and(|d| d < i1)));
        if safe {
            candidates.push((o1, o2));
        }
    }
    if candidates.is_empty() {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // From the middle half, so a checker must search through the first part.
    let low = candidates.len() / 4;
    let high = (candidates.len() * 3 / 4)
        .max(low + 1)
        .min(candidates.len());
    let (o1, o2) = candidates[rng.random_range(low..high)];
    let mut corrupted = ops.to_vec();
    let first = corrupted[o1].value.clone();
    corrupted[o1].value = corrupted[o2].value.clone();
    corrupted[o2].value = first;
    Some(corrupted)
}
