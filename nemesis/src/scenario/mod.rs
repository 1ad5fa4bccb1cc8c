//! Scenario nemeses: multi-step faults aimed at known consensus failure shapes, each a
//! thread that runs rounds of kills, restarts and partitions on the database's own
//! election timing until stopped (see `docs/running.md`, "Scenarios").
//!
//! - [`Scenario::LeaderChurn`] (`start-leader-churn` / `stop-leader-churn`): the leader
//!   isolated with one follower, killed, a new term elected, the old leader back as
//!   the new one replicates; aims at Raft's figure 8 (`old-term-commit`), lost
//!   acknowledged writes, `paxos-ignore-promise`.
//! - [`Scenario::VoteKill`] (`start-vote-kill` / `stop-vote-kill`): an election
//!   provoked, the first voter seen to grant its vote killed and restarted at once, then
//!   grouped with another candidate; aims at votes that are not durable
//!   (`forget-vote`).
//! - [`Scenario::Flap`] (`start-flap` / `stop-flap`): a new random partition every few
//!   hundred milliseconds; aims at leader-change edge cases.
//! - [`Scenario::Figure8`] (`start-figure8` / `stop-figure8`): Raft's figure 8 played
//!   out (the voters-to-be left a replication message behind, an old term's entries on
//!   a minority, a later term's entry on one node alone, the minority's leader back and
//!   killed right after counting a majority for its old entries); aims at
//!   `old-term-commit`.
//! - [`Scenario::StaleLeader`] (`start-stale-leader` / `stop-stale-leader`): the leader
//!   frozen and cut off while a new one is elected, then woken behind a bridge with a
//!   quorum of its own (its wall clock set back, where clocks can move); aims at nodes
//!   that accept a stale leader (`paxos-accept-stale-ballot`) and leaders that serve
//!   reads they may no longer serve (`lease-read-skew`).
//!
//! The pure parts (knobs, each round's choices and timing) are in `plan`; what a
//! scenario's thread acts with, and undoes when it stops, in `hands`.

mod churn;
mod figure8;
mod flap;
mod hands;
mod plan;
mod stale;
mod vote;

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use faultline_clusters::db::ElectionTiming;
use faultline_clusters::nft::NetHosts;
use faultline_clusters::{Db, Node};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::delay::InboundDelays;
use crate::error::NemesisError;
use crate::nemesis::{Nemesis, unknown_f};
use crate::net::Net;
use crate::process::DEFAULT_READY_TIMEOUT;
use hands::Hands;
use plan::{FALLBACK_TIMING, Knobs};

pub use plan::{DEFAULT_FIGURE8_DELAY, DEFAULT_FLAP_PERIOD};

/// The `f` that starts leader-isolation churn.
pub const START_LEADER_CHURN: &str = "start-leader-churn";
/// The `f` that ends it.
pub const STOP_LEADER_CHURN: &str = "stop-leader-churn";
/// The `f` that starts killing voters right after their votes.
pub const START_VOTE_KILL: &str = "start-vote-kill";
/// The `f` that ends it.
pub const STOP_VOTE_KILL: &str = "stop-vote-kill";
/// The `f` that starts flapping partitions.
pub const START_FLAP: &str = "start-flap";
/// The `f` that ends them (and heals).
pub const STOP_FLAP: &str = "stop-flap";
/// The `f` that starts playing Raft's figure 8.
pub const START_FIGURE8: &str = "start-figure8";
/// The `f` that ends it (starts every node, removes delays, heals).
pub const STOP_FIGURE8: &str = "stop-figure8";
/// The `f` that starts waking frozen leaders behind a bridge.
pub const START_STALE_LEADER: &str = "start-stale-leader";
/// The `f` that ends it (resumes, heals).
pub const STOP_STALE_LEADER: &str = "stop-stale-leader";

/// A scenario: which failure shape the nemesis aims at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Leader isolation churn (`old-term-commit`, lost writes, `paxos-ignore-promise`).
    LeaderChurn,
    /// Kill a node right after it voted (`forget-vote`).
    VoteKill,
    /// Flapping partitions (leader-change edge cases).
    Flap,
    /// A frozen leader woken behind a bridge (`paxos-accept-stale-ballot`).
    StaleLeader,
    /// Raft's figure 8 (`old-term-commit`).
    Figure8,
}

impl Scenario {
    /// The `f`s that start and stop it.
    pub fn fs(self) -> [&'static str; 2] {
        match self {
            Scenario::LeaderChurn => [START_LEADER_CHURN, STOP_LEADER_CHURN],
            Scenario::VoteKill => [START_VOTE_KILL, STOP_VOTE_KILL],
            Scenario::Flap => [START_FLAP, STOP_FLAP],
            Scenario::StaleLeader => [START_STALE_LEADER, STOP_STALE_LEADER],
            Scenario::Figure8 => [START_FIGURE8, STOP_FIGURE8],
        }
    }

    /// The knobs its start value may set besides the timing.
    fn keys(self) -> &'static [&'static str] {
        match self {
            Scenario::LeaderChurn => &["append_ms", "settle_ms"],
            Scenario::VoteKill => &["hold_ms", "settle_ms", "delay_ms"],
            Scenario::StaleLeader => &["hold_ms", "settle_ms"],
            Scenario::Flap => &["period_ms"],
            Scenario::Figure8 => &["delay_ms", "settle_ms", "batch"],
        }
    }
}

/// A scenario in progress.
struct Running {
    hands: Arc<Hands>,
    knobs: Knobs,
    thread: JoinHandle<Result<(), NemesisError>>,
}

/// A scenario nemesis (see the module's docs): its start `f` (value: null, or an object
/// of knobs: `tick_ms`, `election_ticks`, `heartbeat_ticks` to plan with another
/// election timing than the database's, and per scenario `append_ms`, `settle_ms`,
/// `hold_ms`, `period_ms`) starts a thread and returns the knobs; its stop `f` ends the
/// thread, heals the network, starts the nodes it left down, waits until every node it
/// killed serves, and returns what it did: `{"events":[{"event":"isolate","at_ms":…,…},…],
/// "count":N}` (`dropped`: events beyond the first 2,000). A failure inside the thread
/// (a node that cannot be killed or started) is returned by the stop, after healing.
pub struct ScenarioNemesis {
    scenario: Scenario,
    db: Arc<dyn Db>,
    nodes: Vec<Node>,
    net: Arc<dyn Net>,
    delays: Option<Arc<InboundDelays>>,
    rng: ChaCha8Rng,
    ready_timeout: Duration,
    running: Option<Running>,
}

impl ScenarioNemesis {
    /// `scenario` over `nodes` of `db`, partitioning through `net`, random choices from a
    /// ChaCha8 RNG seeded with `seed`. Refused when the database cannot name its leader
    /// (`leader-churn`, `vote-kill`, `stale-leader`), does not report votes
    /// (`vote-kill`) or cannot be paused (`stale-leader`).
    pub fn new(
        scenario: Scenario,
        db: Arc<dyn Db>,
        nodes: Vec<Node>,
        net: Arc<dyn Net>,
        seed: u64,
    ) -> Result<ScenarioNemesis, NemesisError> {
        let unsupported = |capability, nemesis| NemesisError::Unsupported {
            db: db.name().to_string(),
            capability,
            nemesis,
        };
        match scenario {
            Scenario::LeaderChurn if db.primaries().is_none() && db.elections().is_none() => {
                return Err(unsupported("primaries", "leader-churn scenario"));
            }
            Scenario::StaleLeader if db.primaries().is_none() && db.elections().is_none() => {
                return Err(unsupported("primaries", "stale-leader scenario"));
            }
            Scenario::StaleLeader if db.pause().is_none() => {
                return Err(unsupported("pause", "stale-leader scenario"));
            }
            Scenario::VoteKill if db.elections().is_none() => {
                return Err(unsupported("elections", "vote-kill scenario"));
            }
            Scenario::Figure8 if db.elections().is_none() => {
                return Err(unsupported("elections", "figure8 scenario"));
            }
            _ => {}
        }
        Ok(ScenarioNemesis {
            scenario,
            db,
            nodes,
            net,
            delays: None,
            rng: ChaCha8Rng::seed_from_u64(seed),
            ready_timeout: DEFAULT_READY_TIMEOUT,
            running: None,
        })
    }

    /// How long the nodes have to serve again once the scenario stops.
    pub fn ready_timeout(mut self, timeout: Duration) -> ScenarioNemesis {
        self.ready_timeout = timeout;
        self
    }

    /// Lets the scenario delay packets (`figure8` needs it, `vote-kill` times its kill
    /// with it) with `program`, the
    /// `faultline-delayer` binary on the controller, on `hosts` (the cluster's nodes).
    pub fn delayer(mut self, hosts: &NetHosts, program: PathBuf) -> ScenarioNemesis {
        self.delays = Some(Arc::new(InboundDelays::new(&hosts.hosts, program)));
        self
    }

    /// The election timing the scenario plans with unless its value says otherwise.
    fn timing(&self) -> ElectionTiming {
        self.db.elections().map_or(FALLBACK_TIMING, |e| e.timing())
    }

    fn start(&mut self, value: &Value) -> Result<Value, NemesisError> {
        if let Some(running) = &self.running {
            return Ok(json!({ "already": running.knobs.json() }));
        }
        let [start_f, _] = self.scenario.fs();
        let mut knobs = Knobs::parse(start_f, value, self.scenario.keys(), self.timing())?;
        if self.scenario == Scenario::Figure8 && knobs.batch.is_none() {
            knobs.batch = self.db.elections().and_then(|e| e.max_append_entries());
        }
        if self.scenario == Scenario::Figure8 && self.delays.is_none() {
            return Err(NemesisError::Command {
                node: "controller".into(),
                command: start_f.into(),
                reason: "figure8 delays packets with faultline-delayer, which this run \
                         does not have: build it (cargo build --release) or set \
                         $FAULTLINE_DELAYER"
                    .into(),
            });
        }
        let hands = Arc::new(Hands::new(
            Arc::clone(&self.db),
            self.nodes.clone(),
            Arc::clone(&self.net),
            self.delays.clone(),
        ));
        let scenario = self.scenario;
        let mut rng = ChaCha8Rng::seed_from_u64(self.rng.random());
        let (h, k) = (Arc::clone(&hands), knobs.clone());
        let thread = thread::Builder::new()
            .name(format!("faultline-{start_f}"))
            .spawn(move || match scenario {
                Scenario::LeaderChurn => churn::run(&h, &mut rng, &k),
                Scenario::VoteKill => vote::run(&h, &mut rng, &k),
                Scenario::Flap => flap::run(&h, &mut rng, &k),
                Scenario::StaleLeader => stale::run(&h, &mut rng, &k),
                Scenario::Figure8 => figure8::run(&h, &mut rng, &k),
            })
            .map_err(|e| NemesisError::Command {
                node: "controller".into(),
                command: format!("spawn the {start_f} thread"),
                reason: e.to_string(),
            })?;
        let value = knobs.json();
        self.running = Some(Running {
            hands,
            knobs,
            thread,
        });
        Ok(value)
    }

    /// Ends the scenario (if any) and undoes what it left: the events, or the first
    /// error of the scenario or of the restoring.
    fn stop(&mut self) -> Result<Value, NemesisError> {
        let Some(running) = self.running.take() else {
            return Ok(json!({ "count": 0, "events": [] }));
        };
        running.hands.request_stop();
        let outcome = running
            .thread
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        let restored = running.hands.restore(self.ready_timeout);
        outcome?;
        restored?;
        let (events, dropped) = running.hands.take_events();
        let mut value = json!({ "count": events.len() + dropped, "events": events });
        if dropped > 0 {
            value["dropped"] = json!(dropped);
        }
        Ok(value)
    }
}

impl Nemesis for ScenarioNemesis {
    fn fs(&self) -> &[&'static str] {
        match self.scenario {
            Scenario::LeaderChurn => &[START_LEADER_CHURN, STOP_LEADER_CHURN],
            Scenario::VoteKill => &[START_VOTE_KILL, STOP_VOTE_KILL],
            Scenario::Flap => &[START_FLAP, STOP_FLAP],
            Scenario::StaleLeader => &[START_STALE_LEADER, STOP_STALE_LEADER],
            Scenario::Figure8 => &[START_FIGURE8, STOP_FIGURE8],
        }
    }

    fn invoke(&mut self, f: &str, value: &Value) -> Result<Value, NemesisError> {
        let [start_f, stop_f] = self.scenario.fs();
        if f == start_f {
            self.start(value)
        } else if f == stop_f {
            self.stop()
        } else {
            Err(unknown_f(f, self.fs()))
        }
    }

    fn heal(&mut self) -> Result<(), NemesisError> {
        self.stop().map(drop)
    }
}

#[cfg(test)]
mod tests;
