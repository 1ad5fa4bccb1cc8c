//! Crash-restart storms: [`StormNemesis`] bounces nodes (SIGKILL, then an immediate
//! restart, without waiting for the node to serve) again and again until the storm is
//! stopped, so that nodes die and come back in the middle of elections.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use faultline_clusters::{Db, Node};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::error::NemesisError;
use crate::nemesis::{Nemesis, unknown_f};
use crate::process::{DEFAULT_READY_TIMEOUT, crash, node_error, on_each, targets};

/// The `f` that starts a storm.
pub const START_STORM: &str = "start-storm";
/// The `f` that ends the storm and waits until every node it bounced serves again.
pub const STOP_STORM: &str = "stop-storm";

/// The targets a storm draws from when its value does not name one: a random node,
/// the leaders, a majority at once (each at random times), or the followers of each new
/// leader as soon as it is elected.
pub const STORM_TARGETS: [&str; 4] = ["one", "primaries", "majority", "followers"];

/// The mean time between two bounces of a storm, by default.
pub const DEFAULT_STORM_PERIOD: Duration = Duration::from_millis(100);

/// What a storm does: whom it bounces, how often, and how long they stay down.
#[derive(Debug, Clone, PartialEq)]
struct Plan {
    /// A `kill` target (see [`crate::TARGETS`]) or `"followers"`.
    target: Value,
    /// Mean time between bounces; each wait is uniform in `0..2 × period`.
    period: Duration,
    /// Mean time a bounced node stays down; each is uniform in `0..2 × down`.
    down: Duration,
    /// Bounce at random times (false), or each time a new leader appears (true).
    on_new_leader: bool,
}

impl Plan {
    fn json(&self) -> Value {
        json!({
            "target": self.target,
            "period_ms": duration_ms(self.period),
            "down_ms": duration_ms(self.down),
            "trigger": if self.on_new_leader { "new-leader" } else { "timer" },
        })
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A storm in progress: its plan, its thread, and the flag that stops it.
struct Running {
    plan: Plan,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Outcome>,
}

/// Crash-restart storms (Jepsen's `node-start-stopper` in a loop, "bouncing" nodes):
/// `start-storm` starts a background thread that, until `stop-storm`, waits a random
/// time (uniform in `0..2 × period`), picks its targets (a random node, the current
/// leaders, a majority…, as for `kill`), SIGKILLs them ([`Db::kill`]), keeps each down
/// for a random `0..2 × down_ms` (0 by default: at once) and starts them again
/// ([`Db::start`]) without waiting until they serve, then waits again. Nodes therefore
/// die and come back in the middle of the elections their own deaths cause, with
/// whatever they had persisted.
///
/// With the `new-leader` trigger (the default for the `followers` target) the thread
/// instead polls the database's leader discovery ([`faultline_clusters::Primaries`])
/// every 2 ms and bounces as soon as a new leader appears — the followers of that
/// leader, right after the election that made it, before its first entries may have
/// reached them — then keeps quiet for `0..2 × period`; if no new leader appears within
/// another `2 × period`, it bounces the current one's followers anyway.
///
/// `start-storm` returns the plan,
/// `{"target":"one","period_ms":100,"down_ms":0,"trigger":"timer"}`; `stop-storm` ends
/// the storm, starts the nodes it left down, waits until every node it bounced serves
/// ([`Db::await_ready`]) and returns every bounce, in order:
/// `{"bounces":[{"at_ms":87,"nodes":["n2","n3"],"leaders":["n1"]},…],"count":N}`
/// (`at_ms` from the storm's start; `down_ms` per node when not 0; `leaders` with the
/// `new-leader` trigger). The value of `start-storm` may set any of `target` (a `kill`
/// target or `"followers"`), `period_ms`, `down_ms`, `trigger` (`"timer"`,
/// `"new-leader"`), e.g. `{"target":"primaries","period_ms":50}`; null draws the target
/// from [`STORM_TARGETS`] (those needing no leader when the database cannot name one)
/// and uses [`DEFAULT_STORM_PERIOD`]. A node that cannot be killed or started ends the
/// storm with an error (a harness failure) when it is stopped.
pub struct StormNemesis {
    db: Arc<dyn Db>,
    nodes: Vec<Node>,
    rng: ChaCha8Rng,
    period: Duration,
    ready_timeout: Duration,
    running: Option<Running>,
}

impl StormNemesis {
    /// Storms over `nodes` of `db`, random choices drawn from a ChaCha8 RNG seeded with
    /// `seed`; [`DEFAULT_STORM_PERIOD`] between bounces unless a value says otherwise.
    pub fn new(db: Arc<dyn Db>, nodes: Vec<Node>, seed: u64) -> StormNemesis {
        StormNemesis {
            db,
            nodes,
            rng: ChaCha8Rng::seed_from_u64(seed),
            period: DEFAULT_STORM_PERIOD,
            ready_timeout: DEFAULT_READY_TIMEOUT,
            running: None,
        }
    }

    /// The mean time between bounces when the value does not set `period_ms`.
    pub fn period(mut self, period: Duration) -> StormNemesis {
        self.period = period;
        self
    }

    /// How long the nodes have to serve again once the storm stops.
    pub fn ready_timeout(mut self, timeout: Duration) -> StormNemesis {
        self.ready_timeout = timeout;
        self
    }

    /// Whether a storm is in progress.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// The storm `value` asks for (see the type's docs).
    fn plan(&mut self, value: &Value) -> Result<Plan, NemesisError> {
        let bad = || NemesisError::BadValue {
            f: START_STORM.to_string(),
            value: value.to_string(),
            expected: "null, or an object with any of target (a kill target or \"followers\"), \
                       period_ms, down_ms (milliseconds), trigger (\"timer\" or \"new-leader\")"
                .to_string(),
        };
        // Without leader discovery, only the targets that need no leader.
        let leaderless = self.db.primaries().is_none();
        let random_target = |rng: &mut ChaCha8Rng| {
            let pool: Vec<&str> = STORM_TARGETS
                .into_iter()
                .filter(|t| !leaderless || !matches!(*t, "primaries" | "followers"))
                .collect();
            json!(pool[rng.random_range(0..pool.len())])
        };
        let mut plan = Plan {
            target: Value::Null,
            period: self.period,
            down: Duration::ZERO,
            on_new_leader: false,
        };
        let mut trigger = None;
        match value {
            Value::Null => plan.target = random_target(&mut self.rng),
            Value::Object(fields) => {
                for (key, v) in fields {
                    match key.as_str() {
                        "target" => plan.target = v.clone(),
                        "period_ms" => {
                            plan.period = Duration::from_millis(v.as_u64().ok_or_else(bad)?)
                        }
                        "down_ms" => plan.down = Duration::from_millis(v.as_u64().ok_or_else(bad)?),
                        "trigger" => {
                            trigger = Some(match v.as_str() {
                                Some("new-leader") => true,
                                Some("timer") => false,
                                _ => return Err(bad()),
                            })
                        }
                        _ => return Err(bad()),
                    }
                }
                if plan.target.is_null() {
                    plan.target = random_target(&mut self.rng);
                }
            }
            _ => return Err(bad()),
        }
        if plan.period.is_zero() {
            return Err(bad());
        }
        // Followers exist only under a leader: by default, those of each new one.
        plan.on_new_leader = trigger.unwrap_or(plan.target.as_str() == Some("followers"));
        // Refuse a bad target now rather than in the storm's thread.
        let mut probe = self.rng.clone();
        if plan.target.as_str() != Some("followers") {
            targets(
                START_STORM,
                &plan.target,
                &*self.db,
                &self.nodes,
                &mut probe,
            )?;
        }
        if leaderless && (plan.on_new_leader || plan.target.as_str() == Some("followers")) {
            return Err(NemesisError::Unsupported {
                db: self.db.name().to_string(),
                capability: "primaries",
                nemesis: "primaries target",
            });
        }
        Ok(plan)
    }

    fn start(&mut self, value: &Value) -> Result<Value, NemesisError> {
        if let Some(running) = &self.running {
            return Ok(json!({ "already": running.plan.json() }));
        }
        let plan = self.plan(value)?;
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let storm = Storm {
            db: Arc::clone(&self.db),
            nodes: self.nodes.clone(),
            rng: ChaCha8Rng::seed_from_u64(self.rng.random()),
            plan: plan.clone(),
            started,
            stop: Arc::clone(&stop),
        };
        let thread = thread::Builder::new()
            .name("faultline-storm".into())
            .spawn(move || storm.run())
            .map_err(|e| NemesisError::Command {
                node: "controller".into(),
                command: "spawn the storm's thread".into(),
                reason: e.to_string(),
            })?;
        let value = plan.json();
        self.running = Some(Running { plan, stop, thread });
        Ok(value)
    }

    /// Ends the storm (if any), then brings its nodes back: starts those it left down
    /// and waits until every node it bounced serves. The bounces, or the first error
    /// of the storm or of the restarts.
    fn stop(&mut self) -> Result<Value, NemesisError> {
        let Some(running) = self.running.take() else {
            return Ok(json!({ "count": 0, "bounces": [] }));
        };
        running.stop.store(true, Ordering::SeqCst);
        let outcome = running
            .thread
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        let back = self.bring_back(&outcome);
        if let Some(e) = outcome.error {
            return Err(e);
        }
        back?;
        let count = outcome.bounces.len();
        Ok(json!({ "count": count, "bounces": outcome.bounces }))
    }

    /// Starts the nodes `outcome` left down, then waits until every node the storm
    /// touched serves.
    fn bring_back(&self, outcome: &Outcome) -> Result<(), NemesisError> {
        let nodes: Vec<&Node> = outcome.touched.iter().map(|i| &self.nodes[*i]).collect();
        let db = &*self.db;
        let timeout = self.ready_timeout;
        let (_, result) = on_each(&nodes, |node| {
            let not_back = |source| NemesisError::NotBack {
                node: node.name.clone(),
                log: node.log_file(),
                source: Box::new(source),
            };
            if outcome
                .down
                .iter()
                .any(|i| self.nodes[*i].name == node.name)
            {
                db.start(node).map_err(not_back)?;
            }
            db.await_ready(node, timeout).map_err(not_back)
        });
        result
    }
}

/// What a storm did: its bounces (for the history), the nodes it left down and every
/// node it touched (by index), and the failure that ended it early, if any.
#[derive(Default)]
struct Outcome {
    bounces: Vec<Value>,
    down: Vec<usize>,
    touched: BTreeSet<usize>,
    error: Option<NemesisError>,
}

/// The storm's thread.
struct Storm {
    db: Arc<dyn Db>,
    nodes: Vec<Node>,
    rng: ChaCha8Rng,
    plan: Plan,
    started: Instant,
    stop: Arc<AtomicBool>,
}

impl Storm {
    /// Bounces until stopped, or until the first failure (which ends the storm: a node
    /// that cannot be killed or started is a harness failure).
    fn run(mut self) -> Outcome {
        let mut outcome = Outcome::default();
        // Killed nodes and when each is due to start again.
        let mut down: Vec<(usize, Instant)> = Vec::new();
        if let Err(e) = self.bounce_until_stopped(&mut outcome, &mut down) {
            outcome.error = Some(e);
        }
        outcome.down = down.into_iter().map(|(i, _)| i).collect();
        outcome
    }

    fn bounce_until_stopped(
        &mut self,
        outcome: &mut Outcome,
        down: &mut Vec<(usize, Instant)>,
    ) -> Result<(), NemesisError> {
        let mut last_leaders: Vec<String> = Vec::new();
        let span = duration_ms(self.plan.period).saturating_mul(2).max(1);
        let mut next = Instant::now() + Duration::from_millis(self.rng.random_range(0..span));
        let mut stale = next + Duration::from_millis(span);
        loop {
            if self.sleep(Duration::from_millis(2)) {
                return Ok(());
            }
            let now = Instant::now();
            let (due, later): (Vec<_>, Vec<_>) = std::mem::take(down)
                .into_iter()
                .partition(|(_, at)| *at <= now);
            *down = later;
            if !due.is_empty() {
                let nodes: Vec<&Node> = due.iter().map(|(i, _)| &self.nodes[*i]).collect();
                let db = &*self.db;
                let (started, result) = on_each(&nodes, |n| {
                    db.start(n).map_err(|e| node_error(n, "start", e))
                });
                for (i, at) in due {
                    if !started.contains(&self.nodes[i].name) {
                        down.push((i, at));
                    }
                }
                result?;
            }
            let leaders = if self.plan.on_new_leader {
                let leaders = self.leaders();
                let new = !leaders.is_empty() && leaders != last_leaders;
                last_leaders = leaders.clone();
                // After a quiet time, the next new leader; failing one for a while,
                // the current one.
                let due = now >= next && (new || now >= stale && !leaders.is_empty());
                if !due {
                    continue;
                }
                leaders
            } else {
                if now < next {
                    continue;
                }
                Vec::new()
            };
            next = now + Duration::from_millis(self.rng.random_range(0..span));
            stale = next + Duration::from_millis(span);
            let chosen: Vec<usize> = if self.plan.target.as_str() == Some("followers") {
                let leaders = if self.plan.on_new_leader {
                    leaders
                } else {
                    self.leaders()
                };
                if leaders.is_empty() {
                    Vec::new()
                } else {
                    (0..self.nodes.len())
                        .filter(|i| !leaders.contains(&self.nodes[*i].name))
                        .collect()
                }
            } else {
                targets(
                    START_STORM,
                    &self.plan.target,
                    &*self.db,
                    &self.nodes,
                    &mut self.rng,
                )?
            };
            // A node already down stays down until it is due.
            let chosen: Vec<usize> = chosen
                .into_iter()
                .filter(|i| !down.iter().any(|(d, _)| d == i))
                .collect();
            if chosen.is_empty() {
                continue;
            }
            let at_ms = duration_ms(self.started.elapsed());
            let down_span = duration_ms(self.plan.down).saturating_mul(2);
            let downs: Vec<u64> = chosen
                .iter()
                .map(|_| {
                    if down_span == 0 {
                        0
                    } else {
                        self.rng.random_range(0..down_span)
                    }
                })
                .collect();
            let nodes: Vec<&Node> = chosen.iter().map(|i| &self.nodes[*i]).collect();
            let db = &*self.db;
            outcome.touched.extend(chosen.iter().copied());
            let (killed, result) = on_each(&nodes, |n| crash(db, n).map(drop));
            if result.is_err() {
                // Whichever were killed are down until the storm is stopped.
                down.extend(chosen.iter().map(|i| (*i, Instant::now())));
            }
            result?;
            let mut restart_now = Vec::new();
            for (i, ms) in chosen.iter().zip(&downs) {
                if *ms == 0 {
                    restart_now.push(&self.nodes[*i]);
                } else {
                    down.push((*i, Instant::now() + Duration::from_millis(*ms)));
                }
            }
            let (started, result) = on_each(&restart_now, |n| {
                db.start(n).map_err(|e| node_error(n, "start", e))
            });
            for n in restart_now.iter().filter(|n| !started.contains(&n.name)) {
                if let Some(i) = self.nodes.iter().position(|x| x.name == n.name) {
                    down.push((i, Instant::now()));
                }
            }
            let mut bounce = json!({ "at_ms": at_ms, "nodes": killed });
            if down_span > 0 {
                bounce["down_ms"] = json!(downs);
            }
            if self.plan.on_new_leader {
                bounce["leaders"] = json!(last_leaders);
            }
            outcome.bounces.push(bounce);
            result?;
        }
    }

    /// The current leaders, per the database (none without the capability).
    fn leaders(&self) -> Vec<String> {
        self.db
            .primaries()
            .map(|p| p.primaries(&self.nodes))
            .unwrap_or_default()
    }

    /// Sleeps `d` in short steps; true if the storm was stopped meanwhile.
    fn sleep(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            thread::sleep(left.min(Duration::from_millis(5)));
        }
    }
}

impl Nemesis for StormNemesis {
    fn fs(&self) -> &[&'static str] {
        &[START_STORM, STOP_STORM]
    }

    fn invoke(&mut self, f: &str, value: &Value) -> Result<Value, NemesisError> {
        match f {
            START_STORM => self.start(value),
            STOP_STORM => self.stop(),
            _ => Err(unknown_f(f, self.fs())),
        }
    }

    fn heal(&mut self) -> Result<(), NemesisError> {
        self.stop().map(drop)
    }
}

#[cfg(test)]
mod tests;
