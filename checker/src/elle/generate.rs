//! Seeded histories of a simulated strict-serializable transactional store, for
//! tests and benchmarks, with anomalies planted on request.
//!
//! The store applies each committed transaction atomically at its completion, so
//! the completion order is a serial order consistent with real time. About twenty
//! processes run one transaction at a time; keys rotate Jepsen-style (a key takes at
//! most `max_writes_per_key` writes, then a fresh key replaces it); some
//! transactions fail (never applied) or crash (`info`: applied or not, at random,
//! and the process is replaced by a fresh one).

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::ElleWorkload;
use crate::history::{Op, OpType, Process};

/// An anomaly to plant. Most are small hand-made transactions on fresh keys and
/// fresh processes, inserted in the middle of the history; `StaleRead` instead
/// makes the store itself serve one stale read to ordinary traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plant {
    /// A write cycle (list-append only).
    G0,
    /// A read of a failed transaction's write.
    G1a,
    /// A read of another transaction's intermediate write.
    G1b,
    /// Circular information flow.
    G1c,
    /// A cycle with one anti-dependency (read skew).
    GSingle,
    /// Write skew: two adjacent anti-dependencies.
    G2Item,
    /// A transaction contradicting its own earlier write.
    Internal,
    /// Two reads that disagree on the order of appends (list-append only).
    IncompatibleOrder,
    /// An element read twice (list-append only).
    DuplicateElements,
    /// A committed append after a failed one (list-append only).
    DirtyUpdate,
    /// Two committed read-modify-writes of the same state.
    LostUpdate,
    /// A transaction reading its own future append (list-append only).
    FutureRead,
    /// A read that misses a write completed before the reader began
    /// (`G-single-realtime`), served by the store to ordinary traffic.
    StaleRead,
}

impl Plant {
    /// Every kind of plant, in declaration order.
    pub const ALL: [Plant; 13] = [
        Plant::G0,
        Plant::G1a,
        Plant::G1b,
        Plant::G1c,
        Plant::GSingle,
        Plant::G2Item,
        Plant::Internal,
        Plant::IncompatibleOrder,
        Plant::DuplicateElements,
        Plant::DirtyUpdate,
        Plant::LostUpdate,
        Plant::FutureRead,
        Plant::StaleRead,
    ];
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// The seed: equal options give equal histories.
    pub seed: u64,
    /// Number of transactions (planted ones not included).
    pub txns: usize,
    /// Concurrent client processes.
    pub processes: usize,
    /// Keys in use at any moment.
    pub active_keys: usize,
    /// Writes a key takes before it is retired.
    pub max_writes_per_key: usize,
    /// Micro-ops per transaction, at most (at least 1).
    pub max_txn_len: usize,
    /// Probability a transaction fails.
    pub fail_rate: f64,
    /// Probability a transaction crashes (`info`).
    pub info_rate: f64,
    /// Anomalies to plant.
    pub plant: Vec<Plant>,
    /// Probability that the store serves a stale read (missing the key's last
    /// write) to a committed transaction: a broken store, for stress tests.
    pub stale_read_rate: f64,
    /// Which workload.
    pub workload: ElleWorkload,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            seed: 0,
            txns: 1000,
            processes: 20,
            active_keys: 10,
            max_writes_per_key: 32,
            max_txn_len: 4,
            fail_rate: 0.01,
            info_rate: 0.005,
            plant: Vec::new(),
            stale_read_rate: 0.0,
            workload: ElleWorkload::ListAppend,
        }
    }
}

/// A list-append history of `txns` transactions over `processes` processes.
pub fn generate_list_append(seed: u64, txns: usize, processes: usize) -> Vec<Op> {
    generate(&GenerateOptions {
        seed,
        txns,
        processes,
        ..GenerateOptions::default()
    })
}

/// An rw-register history of `txns` transactions over `processes` processes.
pub fn generate_rw_register(seed: u64, txns: usize, processes: usize) -> Vec<Op> {
    generate(&GenerateOptions {
        seed,
        txns,
        processes,
        workload: ElleWorkload::RwRegister,
        ..GenerateOptions::default()
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum F {
    Read,
    Write,
}

struct Running {
    process: u64,
    mops: Vec<(F, i64, i64)>,
    invoked_at: u64,
}

struct Sim<'a> {
    rng: ChaCha8Rng,
    /// Where each event goes, in order.
    emit: &'a mut dyn FnMut(Op),
    /// Events emitted so far (the next one's index).
    emitted: u64,
    time: i64,
    workload: ElleWorkload,
    /// key -> list (list-append) or [value] (register)
    state: Vec<Vec<i64>>,
    /// key -> history index of the completion of its last applied write
    last_write_done: Vec<u64>,
    active: Vec<i64>,
    writes: Vec<usize>,
    next_key: i64,
    stale_pending: bool,
    stale_rate: f64,
}

impl Sim<'_> {
    fn push(&mut self, process: u64, op_type: OpType, value: Value) -> u64 {
        self.time += self.rng.random_range(1_000..200_000);
        let index = self.emitted;
        self.emitted += 1;
        (self.emit)(Op::new(
            index,
            self.time,
            Process::Client(process),
            op_type,
            "txn",
            value,
        ));
        index
    }

    fn key_slot(&mut self, k: i64) -> usize {
        let k = k as usize;
        if self.state.len() <= k {
            self.state.resize(k + 1, Vec::new());
            self.last_write_done.resize(k + 1, 0);
            self.writes.resize(k + 1, 0);
        }
        k
    }

    fn pick_key(&mut self) -> i64 {
        // Exponential-ish: earlier keys are hotter, as Elle's default.
        let n = self.active.len();
        let mut i = 0;
        while i + 1 < n && self.rng.random_bool(0.5) {
            i += 1;
        }
        self.active[i]
    }

    fn new_txn(&mut self, max_len: usize, max_writes: usize) -> Vec<(F, i64, i64)> {
        let len = self.rng.random_range(1..=max_len.max(1));
        let mut mops = Vec::with_capacity(len);
        while mops.len() < len {
            let read = self.rng.random_bool(0.5);
            let k = self.pick_key();
            if read {
                mops.push((F::Read, k, 0));
                continue;
            }
            let slot = self.key_slot(k);
            if self.writes[slot] >= max_writes {
                // Retire the key and use a fresh one in its place.
                let fresh = self.next_key;
                self.next_key += 1;
                if let Some(pos) = self.active.iter().position(|x| *x == k) {
                    self.active[pos] = fresh;
                }
                continue;
            }
            self.writes[slot] += 1;
            mops.push((F::Write, k, self.writes[slot] as i64));
        }
        mops
    }

    fn mops_json(&self, mops: &[(F, i64, i64)], reads: Option<&[Value]>) -> Value {
        let w = match self.workload {
            ElleWorkload::ListAppend => "append",
            ElleWorkload::RwRegister => "w",
        };
        let out: Vec<Value> = mops
            .iter()
            .enumerate()
            .map(|(i, (f, k, v))| match f {
                F::Write => json!([w, k, v]),
                F::Read => json!([
                    "r",
                    k,
                    reads.and_then(|r| r.get(i)).cloned().unwrap_or(Value::Null)
                ]),
            })
            .collect();
        Value::Array(out)
    }

    /// Applies a transaction atomically; returns what its reads saw.
    /// `done_index` is where the completion goes; `u64::MAX` for a crashed one
    /// (which real time does not order).
    fn apply(&mut self, run: &Running, done_index: u64) -> Vec<Value> {
        let mut reads = Vec::with_capacity(run.mops.len());
        for &(f, k, v) in &run.mops {
            let slot = self.key_slot(k);
            match f {
                F::Read => {
                    let mut seen = self.state[slot].clone();
                    if self.stale_rate > 0.0
                        && done_index != u64::MAX
                        && self.rng.random_bool(self.stale_rate)
                    {
                        seen.pop();
                    }
                    if self.stale_pending
                        && done_index != u64::MAX
                        && !seen.is_empty()
                        && self.last_write_done[slot] < run.invoked_at
                    {
                        // Serve a stale read: miss the last write, which completed
                        // before this transaction began.
                        self.stale_pending = false;
                        seen.pop();
                    }
                    reads.push(match self.workload {
                        ElleWorkload::ListAppend => json!(seen),
                        ElleWorkload::RwRegister => seen.last().map_or(Value::Null, |x| json!(x)),
                    });
                }
                F::Write => {
                    reads.push(Value::Null);
                    match self.workload {
                        ElleWorkload::ListAppend => self.state[slot].push(v),
                        ElleWorkload::RwRegister => self.state[slot] = vec![v],
                    }
                    self.last_write_done[slot] = done_index;
                }
            }
        }
        reads
    }
}

/// Generates a history as `options` says.
pub fn generate(options: &GenerateOptions) -> Vec<Op> {
    let mut ops = Vec::with_capacity(options.txns * 2 + 64);
    generate_each(options, &mut |op| ops.push(op));
    ops
}

/// Generates the history [`generate`] would, handing each event to `emit` as it is
/// made instead of keeping them: a history of any length in constant memory (but the
/// keys' state).
pub fn generate_each(options: &GenerateOptions, emit: &mut dyn FnMut(Op)) {
    let active_keys = options.active_keys.max(1);
    let mut sim = Sim {
        rng: ChaCha8Rng::seed_from_u64(options.seed),
        emit,
        emitted: 0,
        time: 0,
        workload: options.workload,
        state: Vec::new(),
        last_write_done: Vec::new(),
        active: (0..active_keys as i64).collect(),
        writes: Vec::new(),
        next_key: active_keys as i64,
        stale_pending: false,
        stale_rate: options.stale_read_rate,
    };
    let processes = options.processes.max(1);
    let mut slots: Vec<Option<Running>> = (0..processes).map(|_| None).collect();
    let mut process_of: Vec<u64> = (0..processes as u64).collect();
    let mut next_process = processes as u64;
    let mut started = 0usize;
    let mut finished = 0usize;
    let mut snippets: Vec<Plant> = options
        .plant
        .iter()
        .copied()
        .filter(|p| *p != Plant::StaleRead)
        .collect();
    let stale = options.plant.contains(&Plant::StaleRead);
    let plant_at = options.txns / 2;
    let mut planted = false;
    while finished < options.txns {
        if !planted && started >= plant_at {
            planted = true;
            sim.stale_pending = stale;
            for (n, p) in snippets.drain(..).enumerate() {
                plant(&mut sim, p, n as i64, &mut next_process);
            }
        }
        let s = sim.rng.random_range(0..processes);
        match slots[s].take() {
            None if started < options.txns => {
                let mops = sim.new_txn(options.max_txn_len, options.max_writes_per_key);
                let value = sim.mops_json(&mops, None);
                let process = process_of[s];
                let invoked_at = sim.push(process, OpType::Invoke, value);
                slots[s] = Some(Running {
                    process,
                    mops,
                    invoked_at,
                });
                started += 1;
            }
            None => {}
            Some(run) => {
                finished += 1;
                let roll: f64 = sim.rng.random();
                let invoke_value = sim.mops_json(&run.mops, None);
                if roll < options.fail_rate {
                    sim.push(run.process, OpType::Fail, invoke_value);
                } else if roll < options.fail_rate + options.info_rate {
                    if sim.rng.random_bool(0.5) {
                        sim.apply(&run, u64::MAX);
                    }
                    sim.push(run.process, OpType::Info, invoke_value);
                    process_of[s] = next_process;
                    next_process += 1;
                } else {
                    let index = sim.emitted;
                    let reads = sim.apply(&run, index);
                    let value = sim.mops_json(&run.mops, Some(&reads));
                    sim.push(run.process, OpType::Ok, value);
                }
            }
        }
    }
}

/// Inserts a hand-made anomaly on fresh keys with fresh processes.
fn plant(sim: &mut Sim<'_>, p: Plant, n: i64, next_process: &mut u64) {
    let a = 1_000_000_000 + 2 * n;
    let b = a + 1;
    let append = sim.workload == ElleWorkload::ListAppend;
    let w = if append { "append" } else { "w" };
    // Reads: list-append reads are lists, register reads the last value (or nil).
    let r = |k: i64, seen: &[i64]| -> Value {
        if append {
            json!(["r", k, seen])
        } else {
            json!(["r", k, seen.last()])
        }
    };
    let wr = |k: i64, v: i64| json!([w, k, v]);
    // Each txn: (outcome, completed value); the invoke value blanks the reads.
    let txns: Vec<(OpType, Vec<Value>)> = match p {
        Plant::G0 => vec![
            (OpType::Ok, vec![wr(a, 1), wr(b, 1)]),
            (OpType::Ok, vec![wr(a, 2), wr(b, 2)]),
            (OpType::Ok, vec![r(a, &[1, 2]), r(b, &[2, 1])]),
        ],
        Plant::G1a => vec![
            (OpType::Fail, vec![wr(a, 1)]),
            (OpType::Ok, vec![r(a, &[1])]),
        ],
        Plant::G1b => vec![
            (OpType::Ok, vec![wr(a, 1), wr(a, 2)]),
            (OpType::Ok, vec![r(a, &[1])]),
        ],
        Plant::G1c => vec![
            (OpType::Ok, vec![wr(a, 1), r(b, &[1])]),
            (OpType::Ok, vec![wr(b, 1), r(a, &[1])]),
        ],
        Plant::GSingle => vec![
            (OpType::Ok, vec![wr(a, 1), wr(b, 1)]),
            (OpType::Ok, vec![r(a, &[1]), r(b, &[])]),
        ],
        Plant::G2Item => vec![
            (OpType::Ok, vec![r(a, &[]), r(b, &[]), wr(a, 1)]),
            (OpType::Ok, vec![r(a, &[]), r(b, &[]), wr(b, 1)]),
        ],
        Plant::Internal => vec![(OpType::Ok, vec![wr(a, 1), r(a, &[])])],
        Plant::IncompatibleOrder => vec![
            (OpType::Ok, vec![wr(a, 1)]),
            (OpType::Ok, vec![wr(a, 2)]),
            (OpType::Ok, vec![r(a, &[1, 2])]),
            (OpType::Ok, vec![r(a, &[2, 1])]),
        ],
        Plant::DuplicateElements => vec![
            (OpType::Ok, vec![wr(a, 1)]),
            (OpType::Ok, vec![r(a, &[1, 1])]),
        ],
        Plant::DirtyUpdate => vec![
            (OpType::Fail, vec![wr(a, 1)]),
            (OpType::Ok, vec![wr(a, 2)]),
            (OpType::Ok, vec![r(a, &[1, 2])]),
        ],
        Plant::LostUpdate => vec![
            (OpType::Ok, vec![r(a, &[]), wr(a, 1)]),
            (OpType::Ok, vec![r(a, &[]), wr(a, 2)]),
            (OpType::Ok, vec![r(a, &[1, 2])]),
        ],
        Plant::FutureRead => vec![(OpType::Ok, vec![r(a, &[1]), wr(a, 1)])],
        Plant::StaleRead => Vec::new(),
    };
    // All invoked, then all completed: concurrent, so only the data orders them.
    let mut procs = Vec::new();
    for (_, mops) in &txns {
        let process = *next_process;
        *next_process += 1;
        procs.push(process);
        let blank: Vec<Value> = mops
            .iter()
            .map(|m| match m.get(0).and_then(Value::as_str) {
                Some("r") => json!(["r", m[1], Value::Null]),
                _ => m.clone(),
            })
            .collect();
        sim.push(process, OpType::Invoke, Value::Array(blank));
    }
    for ((outcome, mops), process) in txns.into_iter().zip(procs) {
        sim.push(process, outcome, Value::Array(mops));
    }
}
