//! Process faults: [`KillNemesis`] (crash and restart nodes) and [`PauseNemesis`]
//! (SIGSTOP and SIGCONT), both over a [`Db`], and the targets they choose among.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use faultline_clusters::{ClusterError, Db, Node};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::error::{NemesisError, collect};
use crate::nemesis::{Nemesis, unknown_f};

/// The `f` that kills nodes.
pub const KILL: &str = "kill";
/// The `f` that restarts every killed node.
pub const START: &str = "start";
/// The `f` that pauses nodes.
pub const PAUSE: &str = "pause";
/// The `f` that resumes every paused node.
pub const RESUME: &str = "resume";

/// The targets a `kill` or `pause` value may name.
pub const TARGETS: [&str; 5] = ["one", "minority", "majority", "all", "primaries"];

/// How long a restarted node has to serve again, by default.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The indices of the nodes `value` targets: null or `"one"` (a random node),
/// `"minority"` (⌈n/2⌉−1 random nodes, at least one), `"majority"` (⌊n/2⌋+1), `"all"`,
/// `"primaries"` (the current leaders, per `db`), or an array of node names. In node
/// order.
pub(crate) fn targets(
    f: &str,
    value: &Value,
    db: &dyn Db,
    nodes: &[Node],
    rng: &mut ChaCha8Rng,
) -> Result<Vec<usize>, NemesisError> {
    let n = nodes.len();
    let bad = || NemesisError::BadValue {
        f: f.to_string(),
        value: value.to_string(),
        expected: format!(
            "null, an array of node names, or one of {}",
            TARGETS.join(", ")
        ),
    };
    let mut random = |k: usize| {
        let mut all: Vec<usize> = (0..n).collect();
        all.shuffle(rng);
        all.truncate(k.min(n));
        all
    };
    let mut chosen = match value {
        Value::Null => random(1),
        Value::String(s) => match s.as_str() {
            "one" => random(1),
            "minority" => random(n.div_ceil(2).saturating_sub(1).max(1)),
            "majority" => random(n / 2 + 1),
            "all" => (0..n).collect(),
            "primaries" => {
                let Some(primaries) = db.primaries() else {
                    return Err(NemesisError::Unsupported {
                        db: db.name().to_string(),
                        capability: "primaries",
                        nemesis: "primaries target",
                    });
                };
                let leaders = primaries.primaries(nodes);
                (0..n)
                    .filter(|i| leaders.contains(&nodes[*i].name))
                    .collect()
            }
            _ => return Err(bad()),
        },
        Value::Array(names) => {
            let mut chosen = Vec::new();
            for name in names {
                let i = name
                    .as_str()
                    .and_then(|name| nodes.iter().position(|n| n.name == name))
                    .ok_or_else(bad)?;
                chosen.push(i);
            }
            chosen.dedup();
            chosen
        }
        _ => return Err(bad()),
    };
    chosen.sort_unstable();
    chosen.dedup();
    Ok(chosen)
}

/// Runs `f` on each of `nodes` in parallel; the names of those where it succeeded, in
/// order, and the combined error if any failed.
pub(crate) fn on_each(
    nodes: &[&Node],
    f: impl Fn(&Node) -> Result<(), NemesisError> + Sync,
) -> (Vec<String>, Result<(), NemesisError>) {
    let f = &f;
    let results: Vec<Result<(), NemesisError>> = thread::scope(|s| {
        let handles: Vec<_> = nodes.iter().map(|n| s.spawn(move || f(n))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let done = nodes
        .iter()
        .zip(&results)
        .filter(|(_, r)| r.is_ok())
        .map(|(n, _)| n.name.clone())
        .collect();
    (done, collect(results))
}

/// Crashes `node`: SIGKILL, then, where the database can lose unsynced writes (its data
/// directories on faultline-lazyfs, mounted when the run has the power fault), rolls
/// its files back to their last fsync, as Jepsen's `kill!` does under `--lazyfs`: a
/// crashed node keeps only what it made durable. Returns what was discarded (with
/// `"node"`), or `None` where nothing can be.
pub(crate) fn crash(db: &dyn Db, node: &Node) -> Result<Option<Value>, NemesisError> {
    db.kill(node).map_err(|e| node_error(node, "kill", e))?;
    let Some(power) = db.power_loss() else {
        return Ok(None);
    };
    let mut discarded = power
        .lose_unsynced(node)
        .map_err(|e| node_error(node, "lose unsynced writes", e))?;
    if let Value::Object(fields) = &mut discarded {
        fields.insert("node".into(), Value::from(node.name.clone()));
    }
    Ok(Some(discarded))
}

/// What [`crash`] discarded on each node, in node order.
#[derive(Debug, Default)]
pub(crate) struct Discarded(std::sync::Mutex<Vec<Value>>);

impl Discarded {
    /// Crashes `node` (see [`crash`]) and keeps what it discarded.
    pub(crate) fn crash(&self, db: &dyn Db, node: &Node) -> Result<(), NemesisError> {
        if let Some(lost) = crash(db, node)? {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).push(lost);
        }
        Ok(())
    }

    /// Everything kept, in the order of `nodes`.
    pub(crate) fn in_order(self, nodes: &[Node]) -> Vec<Value> {
        let mut lost = self.0.into_inner().unwrap_or_else(|p| p.into_inner());
        lost.sort_by_key(|l| {
            l["node"]
                .as_str()
                .and_then(|name| nodes.iter().position(|n| n.name == name))
        });
        lost
    }
}

pub(crate) fn node_error(node: &Node, action: &'static str, source: ClusterError) -> NemesisError {
    NemesisError::Node {
        node: node.name.clone(),
        action,
        source: Box::new(source),
    }
}

/// Crashes nodes and restarts them (Jepsen's `node-start-stopper` with the `Kill`
/// protocol): `kill` SIGKILLs the targeted nodes ([`Db::kill`]) and returns
/// `{"killed":[…]}`; `start` restarts every killed node ([`Db::start`]), waits until
/// each serves ([`Db::await_ready`], bounded) and returns `{"started":[…]}`.
pub struct KillNemesis {
    db: Arc<dyn Db>,
    nodes: Vec<Node>,
    rng: ChaCha8Rng,
    killed: Vec<String>,
    ready_timeout: Duration,
}

impl KillNemesis {
    /// Kills among `nodes` of `db`, random choices drawn from a ChaCha8 RNG seeded with
    /// `seed`; restarted nodes get [`DEFAULT_READY_TIMEOUT`] to serve again.
    pub fn new(db: Arc<dyn Db>, nodes: Vec<Node>, seed: u64) -> KillNemesis {
        KillNemesis {
            db,
            nodes,
            rng: ChaCha8Rng::seed_from_u64(seed),
            killed: Vec::new(),
            ready_timeout: DEFAULT_READY_TIMEOUT,
        }
    }

    /// How long a restarted node has to serve again.
    pub fn ready_timeout(mut self, timeout: Duration) -> KillNemesis {
        self.ready_timeout = timeout;
        self
    }

    /// The nodes killed and not yet restarted, in node order.
    pub fn killed(&self) -> &[String] {
        &self.killed
    }

    fn start_killed(&mut self) -> Result<Vec<String>, NemesisError> {
        restart(&*self.db, &self.nodes, &mut self.killed, self.ready_timeout)
    }
}

/// Starts the nodes named in `down` (unless already running) and waits until each is
/// ready, on all at once; the started ones leave `down`. Returns their names. A node
/// that does not come back is an error naming its log.
pub(crate) fn restart(
    db: &dyn Db,
    nodes: &[Node],
    down: &mut Vec<String>,
    timeout: Duration,
) -> Result<Vec<String>, NemesisError> {
    let to_start: Vec<&Node> = nodes.iter().filter(|n| down.contains(&n.name)).collect();
    let (started, result) = on_each(&to_start, |node| {
        let not_back = |source: ClusterError| NemesisError::NotBack {
            node: node.name.clone(),
            log: log_of(db, node),
            source: Box::new(source),
        };
        let running = node
            .remote
            .is_running(&node.pid_file())
            .map_err(|e| not_back(e.into()))?;
        if !running {
            db.start(node).map_err(not_back)?;
        }
        db.await_ready(node, timeout).map_err(not_back)
    });
    down.retain(|n| !started.contains(n));
    result.map(|()| started)
}

/// The node's main log: the database's first, else the node's own.
fn log_of(db: &dyn Db, node: &Node) -> PathBuf {
    db.log_files(node)
        .into_iter()
        .next()
        .unwrap_or_else(|| node.log_file())
}

impl Nemesis for KillNemesis {
    fn fs(&self) -> &[&'static str] {
        &[KILL, START]
    }

    fn invoke(&mut self, f: &str, value: &Value) -> Result<Value, NemesisError> {
        match f {
            KILL => {
                let chosen = targets(f, value, &*self.db, &self.nodes, &mut self.rng)?;
                let nodes: Vec<&Node> = chosen.iter().map(|i| &self.nodes[*i]).collect();
                let db = &*self.db;
                let discarded = Discarded::default();
                let (killed, result) = on_each(&nodes, |n| discarded.crash(db, n));
                for name in &killed {
                    if !self.killed.contains(name) {
                        self.killed.push(name.clone());
                    }
                }
                let order = |name: &String| self.nodes.iter().position(|n| &n.name == name);
                self.killed.sort_by_key(order);
                result?;
                Ok(match db.power_loss() {
                    Some(_) => json!({
                        "killed": killed,
                        "lost": discarded.in_order(&self.nodes),
                    }),
                    None => json!({ "killed": killed }),
                })
            }
            START => Ok(json!({ "started": self.start_killed()? })),
            _ => Err(unknown_f(f, self.fs())),
        }
    }

    fn heal(&mut self) -> Result<(), NemesisError> {
        self.start_killed().map(drop)
    }
}

/// Pauses nodes and resumes them (Jepsen's `hammer-time`): `pause` sends SIGSTOP to the
/// targeted nodes through the database's `Pause` capability and returns
/// `{"paused":[…]}`; `resume` resumes every paused node and returns `{"resumed":[…]}`.
pub struct PauseNemesis {
    db: Arc<dyn Db>,
    nodes: Vec<Node>,
    rng: ChaCha8Rng,
    paused: Vec<String>,
}

impl PauseNemesis {
    /// Pauses among `nodes` of `db`, random choices drawn from a ChaCha8 RNG seeded
    /// with `seed`. An error naming the database if it cannot be paused.
    pub fn new(db: Arc<dyn Db>, nodes: Vec<Node>, seed: u64) -> Result<PauseNemesis, NemesisError> {
        if db.pause().is_none() {
            return Err(NemesisError::Unsupported {
                db: db.name().to_string(),
                capability: "pause",
                nemesis: "pause nemesis",
            });
        }
        Ok(PauseNemesis {
            db,
            nodes,
            rng: ChaCha8Rng::seed_from_u64(seed),
            paused: Vec::new(),
        })
    }

    /// The nodes paused and not yet resumed, in node order.
    pub fn paused(&self) -> &[String] {
        &self.paused
    }

    fn resume_paused(&mut self) -> Result<Vec<String>, NemesisError> {
        let to_resume: Vec<&Node> = self
            .nodes
            .iter()
            .filter(|n| self.paused.contains(&n.name))
            .collect();
        let db = &*self.db;
        let (resumed, result) = on_each(&to_resume, |node| match db.pause() {
            Some(p) => p.resume(node).map_err(|e| node_error(node, "resume", e)),
            None => Ok(()),
        });
        self.paused.retain(|n| !resumed.contains(n));
        result.map(|()| resumed)
    }
}

impl Nemesis for PauseNemesis {
    fn fs(&self) -> &[&'static str] {
        &[PAUSE, RESUME]
    }

    fn invoke(&mut self, f: &str, value: &Value) -> Result<Value, NemesisError> {
        match f {
            PAUSE => {
                let chosen = targets(f, value, &*self.db, &self.nodes, &mut self.rng)?;
                let nodes: Vec<&Node> = chosen.iter().map(|i| &self.nodes[*i]).collect();
                let db = &*self.db;
                let (paused, result) = on_each(&nodes, |node| match db.pause() {
                    Some(p) => p.pause(node).map_err(|e| node_error(node, "pause", e)),
                    None => Ok(()),
                });
                for name in &paused {
                    if !self.paused.contains(name) {
                        self.paused.push(name.clone());
                    }
                }
                let order = |name: &String| self.nodes.iter().position(|n| &n.name == name);
                self.paused.sort_by_key(order);
                result.map(|()| json!({ "paused": paused }))
            }
            RESUME => Ok(json!({ "resumed": self.resume_paused()? })),
            _ => Err(unknown_f(f, self.fs())),
        }
    }

    fn heal(&mut self) -> Result<(), NemesisError> {
        self.resume_paused().map(drop)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A database without capabilities: only `targets` and construction are tested
    /// here (and in the power nemesis's tests); the real thing is in
    /// `tests/netns_faults.rs`.
    pub(crate) struct Plain;

    impl Db for Plain {
        fn name(&self) -> &str {
            "plain"
        }
        fn setup(&self, _: &Node) -> Result<(), ClusterError> {
            Ok(())
        }
        fn start(&self, _: &Node) -> Result<(), ClusterError> {
            Ok(())
        }
        fn await_ready(&self, _: &Node, _: Duration) -> Result<(), ClusterError> {
            Ok(())
        }
        fn client_addr(&self, node: &Node) -> String {
            node.addr.clone()
        }
    }

    /// `n` nodes `n1`… on the local host, at 10.0.0.I.
    pub(crate) fn nodes(n: usize) -> Vec<Node> {
        (1..=n)
            .map(|i| Node {
                id: i as u32,
                name: format!("n{i}"),
                addr: format!("10.0.0.{i}"),
                dir: PathBuf::from(format!("/tmp/n{i}")),
                remote: Arc::new(faultline_clusters::Localhost::new()),
            })
            .collect()
    }

    #[test]
    fn targets_have_the_right_sizes_and_replay() {
        let nodes = nodes(5);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut size = |v: Value| targets("kill", &v, &Plain, &nodes, &mut rng).unwrap().len();
        assert_eq!(size(Value::Null), 1);
        assert_eq!(size(json!("one")), 1);
        assert_eq!(size(json!("minority")), 2);
        assert_eq!(size(json!("majority")), 3);
        assert_eq!(size(json!("all")), 5);
        assert_eq!(size(json!(["n4", "n2", "n4"])), 2);
        let pick = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..10)
                .map(|_| targets("kill", &json!("minority"), &Plain, &nodes, &mut rng).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(pick(3), pick(3));
        assert_ne!(pick(3), pick(4));
        let err = targets("kill", &json!("primaries"), &Plain, &nodes, &mut rng).unwrap_err();
        assert!(
            err.to_string().contains("database plain has no primaries"),
            "{err}"
        );
        let err = targets("kill", &json!("some"), &Plain, &nodes, &mut rng).unwrap_err();
        assert!(
            err.to_string().starts_with("kill: bad value \"some\""),
            "{err}"
        );
        assert!(targets("kill", &json!(["n9"]), &Plain, &nodes, &mut rng).is_err());
    }

    #[test]
    fn pausing_needs_the_capability() {
        let err = PauseNemesis::new(Arc::new(Plain), nodes(3), 1)
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "database plain has no pause capability; cannot build a pause nemesis"
        );
        let mut kill = KillNemesis::new(Arc::new(Plain), nodes(3), 1);
        assert_eq!(kill.fs(), [KILL, START]);
        assert_eq!(
            kill.invoke(START, &Value::Null).unwrap(),
            json!({"started": []})
        );
        assert!(kill.invoke(PAUSE, &Value::Null).is_err());
    }
}
