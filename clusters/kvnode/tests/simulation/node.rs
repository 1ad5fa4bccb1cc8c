//! A simulated node: a Raft (or Multi-Paxos, see `paxos.rs`) core, a simulated disk, the real key-value state machine,
//! and the driver loop (persist, send, apply, advance) the server also runs.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use faultline_checker::OpType;
use faultline_kv::consensus::{
    Core, Entry, NodeId, NotLeader, Protocol, ReadState, Role, Snapshot,
};
use faultline_kv::kv::{Store, TxnOutcome, parse_txn};
use faultline_kv::paxos::Paxos;
use faultline_kv::peer::PeerMessage;
use faultline_kv::raft::{Config, HardState, Raft, Ready, WallClock};
use serde_json::Value;

use crate::paxos::PaxosDisk;
use crate::world::{SimConfig, World};

/// What survives a crash (or, with `no_fsync`, what reached the disk).
#[derive(Debug, Clone, Default)]
pub struct Disk {
    hard: HardState,
    snapshot: Option<Snapshot>,
    entries: Vec<Entry>,
}

/// One write to the disk.
#[derive(Debug, Clone)]
enum Write {
    /// A snapshot; `true` keeps the entries after it (local compaction), `false`
    /// drops the whole log (installed from the leader).
    Snapshot(Snapshot, bool),
    Entries(Vec<Entry>),
    Hard(HardState),
}

impl Disk {
    fn apply(&mut self, write: Write) {
        match write {
            Write::Snapshot(s, keep) => {
                self.entries.retain(|e| keep && e.index > s.meta.index);
                self.snapshot = Some(s);
            }
            Write::Entries(entries) => {
                if let Some(first) = entries.first() {
                    self.entries.retain(|e| e.index < first.index);
                }
                self.entries.extend(entries);
            }
            Write::Hard(h) => self.hard = h,
        }
    }
}

/// What a client waits for at a node.
#[derive(Debug, Clone, Copy)]
pub struct Waiter {
    pub client: usize,
    pub op: u64,
    /// The term of the proposed entry (writes).
    pub term: u64,
    /// The key read (reads).
    pub key: i64,
}

pub struct SimNode {
    pub id: NodeId,
    pub voters: Vec<NodeId>,
    pub raft: Option<Raft>,
    /// The Multi-Paxos core, when the run uses Paxos.
    pub paxos: Option<Paxos>,
    pub paxos_disk: PaxosDisk,
    pub incarnation: u64,
    /// The last term this node was seen leading.
    led_term: u64,
    disk: Disk,
    /// Writes not yet durable (only with `no_fsync`).
    unsynced: Vec<Write>,
    pub paxos_unsynced: Vec<crate::paxos::PaxosWrite>,
    pub no_fsync: bool,
    pub store: Store,
    pub waiting_writes: HashMap<u64, Waiter>,
    pub waiting_reads: HashMap<u64, Waiter>,
    /// (ctx, index) of confirmed reads waiting to be applied far enough.
    pub ready_reads: Vec<(u64, u64)>,
    /// This node's wall clock in ms (virtual time plus its skew), for the
    /// `lease-read-skew` bug; the world sets it before each event.
    pub wall_ms: Arc<AtomicU64>,
    /// How far this node's wall clock is behind virtual time, in ms.
    pub clock_behind_ms: u64,
}

impl SimNode {
    pub fn new(id: NodeId, voters: Vec<NodeId>) -> SimNode {
        SimNode {
            id,
            voters,
            raft: None,
            paxos: None,
            paxos_disk: PaxosDisk::default(),
            incarnation: 0,
            led_term: 0,
            disk: Disk::default(),
            unsynced: Vec::new(),
            paxos_unsynced: Vec::new(),
            no_fsync: false,
            store: Store::new(),
            waiting_writes: HashMap::new(),
            waiting_reads: HashMap::new(),
            ready_reads: Vec::new(),
            wall_ms: Arc::new(AtomicU64::new(0)),
            clock_behind_ms: 0,
        }
    }

    /// Whether the process is running.
    pub fn is_up(&self) -> bool {
        self.raft.is_some() || self.paxos.is_some()
    }

    /// The role of the running core.
    pub fn role(&self) -> Option<Role> {
        match (&self.raft, &self.paxos) {
            (Some(r), _) => Some(r.status().role),
            (_, Some(p)) => Some(p.status().role),
            _ => None,
        }
    }

    pub fn tick(&mut self) {
        if let Some(r) = self.raft.as_mut() {
            r.tick();
        }
        if let Some(p) = self.paxos.as_mut() {
            p.tick();
        }
    }

    pub fn step(&mut self, m: PeerMessage) {
        match (m, self.raft.as_mut(), self.paxos.as_mut()) {
            (PeerMessage::Raft(m), Some(r), _) => r.step(m),
            (PeerMessage::Paxos(m), _, Some(p)) => p.step(m),
            _ => {}
        }
    }

    pub fn propose(&mut self, data: Vec<u8>) -> Result<(u64, u64), NotLeader> {
        match (self.raft.as_mut(), self.paxos.as_mut()) {
            (Some(r), _) => r.propose(data),
            (_, Some(p)) => p.propose(data),
            _ => Err(NotLeader { leader: None }),
        }
    }

    pub fn read_index(&mut self, ctx: u64) -> Result<(), NotLeader> {
        match (self.raft.as_mut(), self.paxos.as_mut()) {
            (Some(r), _) => r.read_index(ctx),
            (_, Some(p)) => p.read_index(ctx),
            _ => Err(NotLeader { leader: None }),
        }
    }

    /// Boots from the durable disk.
    pub fn start(&mut self, seed: u64, sim: &SimConfig) {
        if sim.consensus == Protocol::Paxos {
            self.start_paxos(seed, sim);
            self.incarnation += 1;
            return;
        }
        let mut cfg = Config::new(self.id, self.voters.clone());
        cfg.seed = seed;
        cfg.bugs = sim.bugs;
        let wall = Arc::clone(&self.wall_ms);
        cfg.wall_clock = WallClock::new(move || wall.load(Ordering::Relaxed));
        cfg.wall_lease_ms = u64::from(cfg.election_tick) * crate::world::TICK_MS / 2;
        cfg.max_append_entries = sim.max_append_entries;
        let disk = self.disk.clone();
        self.store = disk
            .snapshot
            .as_ref()
            .map(|s| Store::from_bytes(&s.data).expect("snapshot data"))
            .unwrap_or_default();
        self.raft = Some(Raft::new(cfg, disk.hard, disk.snapshot, disk.entries).expect("restart"));
        self.incarnation += 1;
    }

    /// (last index, last term) of the node's log: in memory if up, on disk if down.
    pub fn last(&self) -> (u64, u64) {
        if let Some(raft) = &self.raft {
            let st = raft.status();
            return (st.last_index, raft.term_at(st.last_index).unwrap_or(0));
        }
        match (self.disk.entries.last(), &self.disk.snapshot) {
            (Some(e), _) => (e.index, e.term),
            (None, Some(s)) => (s.meta.index, s.meta.term),
            (None, None) => (0, 0),
        }
    }

    /// The index covered by the node's snapshot.
    pub fn snapshot_index(&self) -> u64 {
        match &self.raft {
            Some(raft) => raft.status().snapshot_index,
            None => self.disk.snapshot.as_ref().map_or(0, |s| s.meta.index),
        }
    }

    /// The term of the node's entry at `index`, if it holds one.
    pub fn term_at(&self, index: u64) -> Option<u64> {
        if let Some(raft) = &self.raft {
            return raft.term_at(index);
        }
        if let Some(s) = &self.disk.snapshot
            && s.meta.index == index
        {
            return Some(s.meta.term);
        }
        self.disk
            .entries
            .iter()
            .find(|e| e.index == index)
            .map(|e| e.term)
    }

    /// Loses the process and everything not durable.
    pub fn crash(&mut self) {
        self.raft = None;
        self.paxos = None;
        self.paxos_unsynced.clear();
        self.unsynced.clear();
        self.waiting_writes.clear();
        self.waiting_reads.clear();
        self.ready_reads.clear();
    }

    /// The operating system writes back what it cached (with `no_fsync`).
    pub fn flush(&mut self) {
        for write in std::mem::take(&mut self.unsynced) {
            self.disk.apply(write);
        }
        for write in std::mem::take(&mut self.paxos_unsynced) {
            self.paxos_disk.apply(write);
        }
    }

    fn write(&mut self, write: Write) {
        if self.no_fsync {
            self.unsynced.push(write);
        } else {
            self.disk.apply(write);
        }
    }

    fn persist(&mut self, ready: &Ready) {
        if let Some(s) = &ready.snapshot {
            self.write(Write::Snapshot(s.clone(), false));
        }
        if !ready.entries.is_empty() {
            self.write(Write::Entries(ready.entries.clone()));
        }
        if let Some(h) = ready.hard_state {
            self.write(Write::Hard(h));
        }
    }
}

/// A client operation's result at a node.
pub struct Completion {
    pub client: usize,
    pub op: u64,
    pub outcome: OpType,
    pub value: Option<Value>,
    pub error: Option<&'static str>,
}

impl World {
    /// Handles every `Ready` of node `id` as the server does, checking invariants.
    pub fn drive(&mut self, id: NodeId) -> Result<(), String> {
        if self.nodes.get(&id).is_some_and(|n| n.paxos.is_some()) {
            return self.drive_paxos(id);
        }
        let no_fsync = self.cfg.no_fsync;
        let snapshot_every = self.cfg.snapshot_every;
        for _ in 0..64 {
            let Some(node) = self.nodes.get_mut(&id) else {
                return Ok(());
            };
            node.no_fsync = no_fsync;
            let Some(raft) = node.raft.as_mut() else {
                return Ok(());
            };
            if !raft.has_ready() {
                break;
            }
            let ready = raft.ready();
            if let Some(first) = ready.entries.first() {
                let prev_term = raft.term_at(first.index - 1).unwrap_or(0);
                self.invariants
                    .check_appended(id, &ready.entries, prev_term)?;
            }
            let Some(node) = self.nodes.get_mut(&id) else {
                return Ok(());
            };
            node.persist(&ready);
            let mut done = Vec::new();
            if let Some(s) = &ready.snapshot {
                self.stats.snapshots_installed += 1;
                node.store = Store::from_bytes(&s.data).map_err(|e| format!("snapshot: {e}"))?;
            }
            let mut fresh = Vec::new();
            for entry in &ready.committed_entries {
                if self.invariants.record_committed(id, entry)? {
                    fresh.push((entry.index, entry.term));
                }
                apply(node, entry, &mut done);
            }
            take_reads(node, &ready.read_states, &ready.failed_reads, &mut done);
            let Some(raft) = node.raft.as_mut() else {
                return Ok(());
            };
            raft.advance(&ready);
            let applied = raft.status().applied;
            serve_reads(node, applied, &mut done);
            let Some(raft) = node.raft.as_mut() else {
                return Ok(());
            };
            fresh.extend(self.invariants.check_node(raft)?);
            let st = raft.status();
            if st.role == Role::Leader
                && raft.term_at(st.commit).is_some_and(|t| t < st.term)
                && !fresh.is_empty()
            {
                self.stats.old_term_commits += 1;
            }
            let new_leader = st.role == Role::Leader && node.led_term != st.term;
            if new_leader {
                node.led_term = st.term;
            }
            if st.applied >= st.snapshot_index + snapshot_every {
                let data = node.store.to_bytes();
                raft.compact(st.applied, data).map_err(|e| e.to_string())?;
                if let Some(s) = raft.snapshot().cloned() {
                    node.write(Write::Snapshot(s, true));
                }
                self.stats.compactions += 1;
            }
            self.check_electable(&fresh)?;
            if new_leader {
                self.on_new_leader(id);
            }
            for m in ready.messages {
                self.send(PeerMessage::Raft(m));
            }
            for c in done {
                self.complete(c.client, c.op, c.outcome, c.value, c.error);
            }
        }
        if let Some(raft) = self.nodes.get(&id).and_then(|n| n.raft.as_ref()) {
            let fresh = self.invariants.check_node(raft)?;
            self.check_electable(&fresh)?;
        }
        Ok(())
    }

    /// Leader completeness, strengthened: once an entry is committed, no node whose
    /// durable log is at least as up to date as a quorum's (so could win an election)
    /// may lack it.
    fn check_electable(&self, fresh: &[(u64, u64)]) -> Result<(), String> {
        if fresh.is_empty() {
            return Ok(());
        }
        let views: Vec<(NodeId, (u64, u64))> =
            self.nodes.values().map(|n| (n.id, n.last())).collect();
        let quorum = views.len() / 2 + 1;
        for node in self.nodes.values() {
            let mine = node.last();
            let peers = views
                .iter()
                .filter(|(_, (i, t))| (mine.1, mine.0) >= (*t, *i))
                .count();
            if peers < quorum {
                continue;
            }
            for (index, term) in fresh {
                if *index > node.snapshot_index() && node.term_at(*index) != Some(*term) {
                    return Err(format!(
                        "leader completeness: entry {index} (term {term}) is committed, but node {} \
                         could still win an election without it (its last entry: index {}, term {})",
                        node.id, mine.0, mine.1
                    ));
                }
            }
        }
        Ok(())
    }
}

pub fn apply(node: &mut SimNode, entry: &Entry, done: &mut Vec<Completion>) {
    let outcome = if entry.data.is_empty() {
        None
    } else {
        let json: Value = serde_json::from_slice(&entry.data).expect("entry json");
        let txn = parse_txn(&json).expect("entry txn");
        Some(node.store.apply(&txn))
    };
    let Some(w) = node.waiting_writes.remove(&entry.index) else {
        return;
    };
    let completion = |outcome, value, error| Completion {
        client: w.client,
        op: w.op,
        outcome,
        value,
        error,
    };
    done.push(match outcome {
        _ if entry.term != w.term => completion(OpType::Fail, None, Some("entry-replaced")),
        Some(TxnOutcome::Committed(_)) => completion(OpType::Ok, None, None),
        Some(TxnOutcome::Aborted { code, .. }) => completion(OpType::Fail, None, Some(code)),
        None => completion(OpType::Fail, None, Some("no-op")),
    });
}

/// Queues the core's confirmed reads until applied far enough; fails the reads it
/// gave up (leadership lost).
pub fn take_reads(
    node: &mut SimNode,
    read_states: &[ReadState],
    failed_reads: &[u64],
    done: &mut Vec<Completion>,
) {
    for rs in read_states {
        node.ready_reads.push((rs.ctx, rs.index));
    }
    for ctx in failed_reads {
        if let Some(w) = node.waiting_reads.remove(ctx) {
            done.push(Completion {
                client: w.client,
                op: w.op,
                outcome: OpType::Fail,
                value: None,
                error: Some("leadership-lost"),
            });
        }
    }
}

pub fn serve_reads(node: &mut SimNode, applied: u64, done: &mut Vec<Completion>) {
    let (ready, waiting): (Vec<_>, Vec<_>) = node
        .ready_reads
        .drain(..)
        .partition(|(_, index)| *index <= applied);
    node.ready_reads = waiting;
    for (ctx, _) in ready {
        let Some(w) = node.waiting_reads.remove(&ctx) else {
            continue;
        };
        let key = w.key.to_string();
        let value = node.store.get(&key).cloned().unwrap_or(Value::Null);
        done.push(Completion {
            client: w.client,
            op: w.op,
            outcome: OpType::Ok,
            value: Some(value),
            error: None,
        });
    }
}
