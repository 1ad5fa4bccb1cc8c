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
use crate::process::{DEFAULT_READY_TIMEOUT, node_error, on_each, targets};

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
            let (killed, result) =
                on_each(&nodes, |n| db.kill(n).map_err(|e| node_error(n, "kill", e)));
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
mod tests {
    use std::sync::Mutex;

    use faultline_clusters::ClusterError;

    use super::*;
    use crate::process::tests::nodes;

    /// A database that records kills and starts instead of doing them, and whose
    /// leader is whatever `leader` says.
    #[derive(Default)]
    struct Recording {
        events: Mutex<Vec<String>>,
        leader: Mutex<Option<String>>,
    }

    impl Recording {
        fn events(&self) -> Vec<String> {
            self.events.lock().map(|e| e.clone()).unwrap_or_default()
        }
    }

    impl Db for Recording {
        fn name(&self) -> &str {
            "recording"
        }
        fn setup(&self, _: &Node) -> Result<(), ClusterError> {
            Ok(())
        }
        fn start(&self, node: &Node) -> Result<(), ClusterError> {
            self.events
                .lock()
                .unwrap()
                .push(format!("start {}", node.name));
            Ok(())
        }
        fn kill(&self, node: &Node) -> Result<(), ClusterError> {
            self.events
                .lock()
                .unwrap()
                .push(format!("kill {}", node.name));
            Ok(())
        }
        fn await_ready(&self, _: &Node, _: Duration) -> Result<(), ClusterError> {
            Ok(())
        }
        fn client_addr(&self, node: &Node) -> String {
            node.addr.clone()
        }
        fn primaries(&self) -> Option<&dyn faultline_clusters::Primaries> {
            Some(self)
        }
    }

    impl faultline_clusters::Primaries for Recording {
        fn primaries(&self, _: &[Node]) -> Vec<String> {
            self.leader.lock().unwrap().iter().cloned().collect()
        }
    }

    fn storm(db: &Arc<Recording>, n: usize) -> StormNemesis {
        let db: Arc<dyn Db> = Arc::clone(db) as Arc<dyn Db>;
        StormNemesis::new(db, nodes(n), 7)
    }

    #[test]
    fn plans_come_from_the_value_or_the_seed() {
        let db = Arc::new(Recording::default());
        let mut s = storm(&db, 3);
        let plan = s
            .plan(&json!({"target": "majority", "period_ms": 20, "down_ms": 5}))
            .unwrap();
        assert_eq!(
            plan.json(),
            json!({"target": "majority", "period_ms": 20, "down_ms": 5, "trigger": "timer"})
        );
        let plan = s.plan(&json!({"target": "followers"})).unwrap();
        assert_eq!(plan.json()["trigger"], "new-leader");
        assert_eq!(plan.period, DEFAULT_STORM_PERIOD);
        let drawn = |seed| {
            let mut s = StormNemesis::new(Arc::clone(&db) as Arc<dyn Db>, nodes(3), seed);
            (0..20)
                .map(|_| s.plan(&Value::Null).unwrap().json())
                .collect::<Vec<_>>()
        };
        assert_eq!(drawn(1), drawn(1));
        for plan in drawn(1) {
            let target = plan["target"].as_str().unwrap();
            assert!(STORM_TARGETS.contains(&target), "{plan}");
        }
        for bad in [
            json!("one"),
            json!({"target": "some"}),
            json!({"period_ms": 0}),
            json!({"period_ms": "fast"}),
            json!({"trigger": "sometimes"}),
            json!({"colour": "red"}),
            json!({"target": ["n9"]}),
        ] {
            assert!(s.plan(&bad).is_err(), "{bad}");
        }
        let e = s
            .invoke(START_STORM, &json!({"target": "some"}))
            .unwrap_err();
        assert!(e.to_string().starts_with("start-storm: bad value"), "{e}");
        assert!(!s.is_running());
    }

    #[test]
    fn a_timer_storm_bounces_until_stopped_then_brings_every_node_back() {
        let db = Arc::new(Recording::default());
        let mut s = storm(&db, 3);
        assert_eq!(s.fs(), [START_STORM, STOP_STORM]);
        let started = s
            .invoke(START_STORM, &json!({"target": ["n2"], "period_ms": 5}))
            .unwrap();
        assert_eq!(started["target"], json!(["n2"]));
        assert!(s.is_running());
        // A second start leaves the running storm alone.
        let again = s.invoke(START_STORM, &Value::Null).unwrap();
        assert_eq!(again["already"]["period_ms"], 5);
        thread::sleep(Duration::from_millis(200));
        let stopped = s.invoke(STOP_STORM, &Value::Null).unwrap();
        assert!(!s.is_running());
        let count = stopped["count"].as_u64().unwrap();
        assert!(count >= 3, "{stopped}");
        let bounces = stopped["bounces"].as_array().unwrap();
        assert_eq!(bounces.len() as u64, count);
        assert!(
            bounces.iter().all(|b| b["nodes"] == json!(["n2"])),
            "{stopped}"
        );
        let at: Vec<u64> = bounces
            .iter()
            .map(|b| b["at_ms"].as_u64().unwrap())
            .collect();
        assert!(at.windows(2).all(|w| w[0] <= w[1]), "{at:?}");
        // Each bounce is a kill then a start of the same node; nothing else was touched.
        let events = db.events();
        let bounced: Vec<&String> = events
            .iter()
            .filter(|e| !e.ends_with("n1") && !e.ends_with("n3"))
            .collect();
        assert_eq!(bounced.len(), events.len(), "{events:?}");
        assert_eq!(
            events.iter().filter(|e| *e == "kill n2").count() as u64,
            count
        );
        // Stopping again (and healing) is harmless.
        let again = s.invoke(STOP_STORM, &Value::Null).unwrap();
        assert_eq!(again, json!({"count": 0, "bounces": []}));
        s.heal().unwrap();
    }

    #[test]
    fn a_new_leader_storm_bounces_the_followers_of_each_new_leader() {
        let db = Arc::new(Recording::default());
        let mut s = storm(&db, 3);
        *db.leader.lock().unwrap() = Some("n1".into());
        let plan = s
            .invoke(
                START_STORM,
                &json!({"target": "followers", "period_ms": 20}),
            )
            .unwrap();
        assert_eq!(plan["trigger"], "new-leader");
        thread::sleep(Duration::from_millis(150));
        *db.leader.lock().unwrap() = Some("n3".into());
        thread::sleep(Duration::from_millis(150));
        let stopped = s.invoke(STOP_STORM, &Value::Null).unwrap();
        let bounces = stopped["bounces"].as_array().unwrap();
        let followers = |leader: &str| -> Value {
            json!(
                ["n1", "n2", "n3"]
                    .into_iter()
                    .filter(|n| *n != leader)
                    .collect::<Vec<_>>()
            )
        };
        for leader in ["n1", "n3"] {
            let under: Vec<&Value> = bounces
                .iter()
                .filter(|b| b["leaders"] == json!([leader]))
                .collect();
            assert!(!under.is_empty(), "{stopped}");
            assert!(
                under.iter().all(|b| b["nodes"] == followers(leader)),
                "{stopped}"
            );
        }
        // Every bounce under n1 came before those under n3.
        let first_n3 = bounces.iter().position(|b| b["leaders"] == json!(["n3"]));
        let last_n1 = bounces.iter().rposition(|b| b["leaders"] == json!(["n1"]));
        assert_eq!(first_n3, last_n1.map(|i| i + 1), "{stopped}");
    }

    #[test]
    fn bounced_nodes_stay_down_for_their_drawn_time_or_until_the_storm_stops() {
        let db = Arc::new(Recording::default());
        let mut s = storm(&db, 3);
        s.invoke(
            START_STORM,
            &json!({"target": "all", "period_ms": 1, "down_ms": 100000}),
        )
        .unwrap();
        thread::sleep(Duration::from_millis(100));
        // Down for up to 200 s: no node is bounced again, none is started yet.
        let mut events = db.events();
        events.sort();
        assert_eq!(events, ["kill n1", "kill n2", "kill n3"].map(String::from));
        let stopped = s.invoke(STOP_STORM, &Value::Null).unwrap();
        assert_eq!(stopped["count"], 1, "{stopped}");
        assert_eq!(stopped["bounces"][0]["nodes"], json!(["n1", "n2", "n3"]));
        assert_eq!(
            stopped["bounces"][0]["down_ms"].as_array().unwrap().len(),
            3
        );
        // Stopping starts what the storm left down.
        let mut events = db.events();
        events[3..].sort();
        assert_eq!(
            &events[3..],
            ["start n1", "start n2", "start n3"].map(String::from)
        );
    }
}
