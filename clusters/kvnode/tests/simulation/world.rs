//! The simulated world: virtual time, an event queue, a lossy network, faults.

use std::collections::BTreeMap;

use faultline_checker::Op;
use faultline_kv::consensus::{NodeId, Protocol, Role};
use faultline_kv::paxos::PaxosBugs;
use faultline_kv::peer::PeerMessage;
use faultline_kv::raft::CoreBugs;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::client::Client;
use crate::invariants::Invariants;
use crate::node::SimNode;

/// One tick of a node's clock, in virtual milliseconds.
pub const TICK_MS: u64 = 10;

/// The knobs of one run, all drawn from its seed.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    pub nodes: u64,
    /// Faults and client traffic run this long; then the network heals.
    pub duration_ms: u64,
    /// Quiet period after healing, in which the cluster must make progress.
    pub settle_ms: u64,
    pub bugs: CoreBugs,
    /// Which consensus core the nodes run.
    pub consensus: Protocol,
    /// Planted Multi-Paxos bugs.
    pub paxos_bugs: PaxosBugs,
    /// Durable writes lag behind acknowledgements (the `no-fsync` bug).
    pub no_fsync: bool,
    pub drop: f64,
    pub duplicate: f64,
    pub max_delay_ms: u64,
    pub fault_every_ms: (u64, u64),
    pub clients: usize,
    pub keys: i64,
    pub client_timeout_ms: u64,
    pub max_append_entries: usize,
    pub snapshot_every: u64,
    /// Chance that a freshly elected leader is cut off at once (its first appends are
    /// lost), to provoke the competing uncommitted tails of Raft's figure 8.
    pub isolate_new_leader: f64,
    /// Also inject clock steps: a leader's wall clock steps back while it is cut off
    /// (only read by the `lease-read-skew` bug; off in the main runs so their draws stay).
    pub clock_steps: bool,
}

impl SimConfig {
    /// A configuration drawn from `seed`.
    pub fn random(seed: u64) -> SimConfig {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
        SimConfig {
            seed,
            nodes: if rng.random_bool(0.4) { 5 } else { 3 },
            duration_ms: 3_000,
            settle_ms: 2_000,
            bugs: CoreBugs::default(),
            consensus: Protocol::Raft,
            paxos_bugs: PaxosBugs::default(),
            no_fsync: false,
            drop: if rng.random_bool(0.3) {
                0.0
            } else {
                rng.random_range(0.0..0.15)
            },
            duplicate: rng.random_range(0.0..0.05),
            max_delay_ms: rng.random_range(1..=30),
            fault_every_ms: (50, rng.random_range(100..=600)),
            clients: rng.random_range(2..=6),
            keys: rng.random_range(1..=3),
            client_timeout_ms: 1_000,
            max_append_entries: if rng.random_bool(0.4) {
                1
            } else {
                rng.random_range(2..=64)
            },
            snapshot_every: rng.random_range(5..=60),
            isolate_new_leader: if rng.random_bool(0.5) {
                rng.random_range(0.05..0.5)
            } else {
                0.0
            },
            clock_steps: false,
        }
    }

    /// The same draw, running Multi-Paxos.
    pub fn random_paxos(seed: u64) -> SimConfig {
        SimConfig {
            consensus: Protocol::Paxos,
            ..SimConfig::random(seed)
        }
    }
}

/// Counters for one run.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub events: u64,
    pub leader_terms: u64,
    pub crashes: u64,
    pub partitions: u64,
    pub snapshots_installed: u64,
    pub compactions: u64,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    /// Leaders that committed an entry of an earlier term by counting replicas.
    pub old_term_commits: u64,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        self.events += o.events;
        self.leader_terms += o.leader_terms;
        self.crashes += o.crashes;
        self.partitions += o.partitions;
        self.snapshots_installed += o.snapshots_installed;
        self.compactions += o.compactions;
        self.ok += o.ok;
        self.fail += o.fail;
        self.info += o.info;
        self.old_term_commits += o.old_term_commits;
    }
}

/// Something scheduled at a virtual time.
#[derive(Debug)]
pub enum Event {
    Tick(NodeId, u64),
    Deliver(PeerMessage),
    ClientGo(usize),
    ClientTimeout(usize, u64),
    Fault,
    Heal,
    Restart(NodeId),
    Flush(NodeId),
    Crash(NodeId),
}

/// Everything in one simulated run.
pub struct World {
    pub cfg: SimConfig,
    pub rng: ChaCha8Rng,
    pub now: u64,
    seq: u64,
    queue: BTreeMap<(u64, u64), Event>,
    pub nodes: BTreeMap<NodeId, SimNode>,
    /// Partition group of each node; messages pass only within a group.
    groups: BTreeMap<NodeId, u8>,
    pub clients: Vec<Client>,
    pub history: Vec<Op>,
    pub next_process: u64,
    pub next_ctx: u64,
    pub invariants: Invariants,
    pub stats: Stats,
    /// Clients' successful operations completed after the heal.
    pub ok_after_heal: u64,
    healed: bool,
}

impl World {
    pub fn new(cfg: SimConfig) -> World {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let ids: Vec<NodeId> = (1..=cfg.nodes).collect();
        let mut nodes = BTreeMap::new();
        for id in &ids {
            nodes.insert(*id, SimNode::new(*id, ids.clone()));
        }
        let clients = (0..cfg.clients)
            .map(|i| Client::new(i as u64, ids[rng.random_range(0..ids.len())]))
            .collect();
        let mut world = World {
            next_process: cfg.clients as u64,
            cfg,
            rng,
            now: 0,
            seq: 0,
            queue: BTreeMap::new(),
            nodes,
            groups: ids.iter().map(|id| (*id, 0)).collect(),
            clients,
            history: Vec::new(),
            next_ctx: 1,
            invariants: Invariants::default(),
            stats: Stats::default(),
            ok_after_heal: 0,
            healed: false,
        };
        for id in ids {
            world.start_node(id);
        }
        for c in 0..world.clients.len() {
            let at = world.rng.random_range(0..50);
            world.schedule(at, Event::ClientGo(c));
        }
        let first_fault = world
            .rng
            .random_range(world.cfg.fault_every_ms.0..=world.cfg.fault_every_ms.1);
        world.schedule(first_fault, Event::Fault);
        world
    }

    pub fn schedule(&mut self, delay: u64, event: Event) {
        self.seq += 1;
        self.queue.insert((self.now + delay, self.seq), event);
    }

    /// Runs to the end; `Err` names the first violated property.
    pub fn run(&mut self) -> Result<Stats, String> {
        let end = self.cfg.duration_ms + self.cfg.settle_ms;
        while let Some(((at, _), event)) = self.queue.pop_first() {
            if at > end {
                break;
            }
            self.now = at;
            self.stats.events += 1;
            if self.cfg.clock_steps {
                for node in self.nodes.values() {
                    let wall = self.now.saturating_sub(node.clock_behind_ms);
                    node.wall_ms
                        .store(wall, std::sync::atomic::Ordering::Relaxed);
                }
            }
            if !self.healed && self.now >= self.cfg.duration_ms {
                self.heal_all();
            }
            self.handle(event)?;
        }
        if self.ok_after_heal == 0 {
            return Err(format!(
                "liveness: no client operation succeeded in the {} ms after healing",
                self.cfg.settle_ms
            ));
        }
        self.stats.leader_terms = self.invariants.leader_terms() as u64;
        Ok(self.stats)
    }

    fn handle(&mut self, event: Event) -> Result<(), String> {
        match event {
            Event::Tick(id, incarnation) => {
                let Some(node) = self.nodes.get_mut(&id) else {
                    return Ok(());
                };
                if node.incarnation != incarnation {
                    return Ok(());
                }
                node.tick();
                self.schedule(TICK_MS, Event::Tick(id, incarnation));
                self.drive(id)
            }
            Event::Deliver(m) => {
                let to = m.to();
                if !self.connected(m.from(), to) {
                    return Ok(());
                }
                let Some(node) = self.nodes.get_mut(&to).filter(|n| n.is_up()) else {
                    return Ok(());
                };
                node.step(m);
                self.drive(to)
            }
            Event::ClientGo(c) => self.client_go(c),
            Event::ClientTimeout(c, op) => {
                self.complete(
                    c,
                    op,
                    faultline_checker::OpType::Info,
                    None,
                    Some("timeout"),
                );
                Ok(())
            }
            Event::Fault => {
                if !self.healed {
                    self.inject_fault();
                    let (lo, hi) = self.cfg.fault_every_ms;
                    let next = self.rng.random_range(lo..=hi);
                    self.schedule(next, Event::Fault);
                }
                Ok(())
            }
            Event::Heal => {
                for g in self.groups.values_mut() {
                    *g = 0;
                }
                Ok(())
            }
            Event::Restart(id) => {
                if self.nodes.get(&id).is_some_and(|n| !n.is_up()) {
                    self.start_node(id);
                }
                Ok(())
            }
            Event::Crash(id) => {
                if !self.healed {
                    self.crash_for_a_while(id, 400);
                }
                Ok(())
            }
            Event::Flush(id) => {
                if let Some(node) = self.nodes.get_mut(&id)
                    && node.is_up()
                {
                    node.flush();
                    let next = self.rng.random_range(20..=300);
                    self.schedule(next, Event::Flush(id));
                }
                Ok(())
            }
        }
    }

    /// Called when `id` has just become leader.
    pub fn on_new_leader(&mut self, id: NodeId) {
        if !self.healed && self.rng.random_bool(self.cfg.isolate_new_leader) {
            self.stats.partitions += 1;
            for (node, group) in self.groups.iter_mut() {
                *group = u8::from(*node == id);
            }
            let heal = self.rng.random_range(50..=600);
            self.schedule(heal, Event::Heal);
            if self.rng.random_bool(0.5) {
                let at = self.rng.random_range(0..=self.cfg.max_delay_ms);
                self.schedule(at, Event::Crash(id));
            }
        }
    }

    fn start_node(&mut self, id: NodeId) {
        let seed = self.rng.random::<u64>();
        let cfg = self.cfg.clone();
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        node.start(seed, &cfg);
        let incarnation = node.incarnation;
        let offset = self.rng.random_range(0..TICK_MS);
        self.schedule(offset, Event::Tick(id, incarnation));
        if self.cfg.no_fsync {
            let flush = self.rng.random_range(20..=300);
            self.schedule(flush, Event::Flush(id));
        }
    }

    /// A node that believes it leads, if any (a random one otherwise).
    fn pick_leader(&mut self, ids: &[NodeId]) -> NodeId {
        let leaders: Vec<NodeId> = self
            .nodes
            .values()
            .filter(|n| n.role() == Some(Role::Leader))
            .map(|n| n.id)
            .collect();
        let pool = if leaders.is_empty() {
            ids
        } else {
            &leaders[..]
        };
        pool[self.rng.random_range(0..pool.len())]
    }

    fn crash_for_a_while(&mut self, id: NodeId, max_down_ms: u64) {
        if self.nodes.get(&id).is_some_and(|n| n.is_up()) {
            self.crash(id);
            let back = self.rng.random_range(20..=max_down_ms);
            self.schedule(back, Event::Restart(id));
        }
    }

    fn inject_fault(&mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        match self.rng.random_range(0..100) {
            0..20 => {
                let id = ids[self.rng.random_range(0..ids.len())];
                self.crash_for_a_while(id, 600);
            }
            20..40 => {
                let id = self.pick_leader(&ids);
                self.crash_for_a_while(id, 600);
            }
            40..45 => {
                for id in ids {
                    self.crash_for_a_while(id, 400);
                }
            }
            45..85 => {
                self.stats.partitions += 1;
                let leader = self.pick_leader(&ids);
                let isolate_leader = self.rng.random_bool(0.4);
                for id in &ids {
                    let group = if isolate_leader {
                        u8::from(*id == leader)
                    } else {
                        self.rng.random_range(0..2u8)
                    };
                    self.groups.insert(*id, group);
                }
                let heal = self.rng.random_range(50..=1_000);
                self.schedule(heal, Event::Heal);
            }
            85..90 if self.cfg.clock_steps => {
                // The leader's clock steps back (a clock fault) and it is cut off.
                self.stats.partitions += 1;
                let leader = self.pick_leader(&ids);
                let back = self.rng.random_range(200..=2_000);
                if let Some(node) = self.nodes.get_mut(&leader) {
                    node.clock_behind_ms += back;
                }
                for id in &ids {
                    self.groups.insert(*id, u8::from(*id == leader));
                }
                let heal = self.rng.random_range(300..=1_000);
                self.schedule(heal, Event::Heal);
            }
            _ => {
                for g in self.groups.values_mut() {
                    *g = 0;
                }
            }
        }
    }

    fn crash(&mut self, id: NodeId) {
        self.stats.crashes += 1;
        if let Some(node) = self.nodes.get_mut(&id) {
            node.crash();
        }
    }

    fn heal_all(&mut self) {
        self.healed = true;
        for g in self.groups.values_mut() {
            *g = 0;
        }
        let down: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|(_, n)| !n.is_up())
            .map(|(id, _)| *id)
            .collect();
        for id in down {
            self.start_node(id);
        }
    }

    pub fn is_healed(&self) -> bool {
        self.healed
    }

    fn connected(&self, a: NodeId, b: NodeId) -> bool {
        self.groups.get(&a) == self.groups.get(&b)
    }

    /// Puts a message on the wire: maybe lost, maybe duplicated, delayed at random.
    pub fn send(&mut self, m: PeerMessage) {
        let (drop, duplicate) = if self.healed {
            (0.0, 0.0)
        } else {
            (self.cfg.drop, self.cfg.duplicate)
        };
        if !self.connected(m.from(), m.to()) || self.rng.random_bool(drop) {
            return;
        }
        if self.rng.random_bool(duplicate) {
            let delay = self.rng.random_range(1..=self.cfg.max_delay_ms);
            self.schedule(delay, Event::Deliver(m.clone()));
        }
        let delay = self.rng.random_range(1..=self.cfg.max_delay_ms);
        self.schedule(delay, Event::Deliver(m));
    }
}
