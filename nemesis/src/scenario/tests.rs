//! Tests of the scenario nemeses against a simulated cluster: a database whose leader is
//! the first running node that sees a majority through the current partition.

use std::collections::BTreeSet;
use std::sync::Mutex;

use faultline_clusters::db::{Elections, NodeView, Pause};
use faultline_clusters::{ClusterError, Primaries};

use super::*;
use crate::grudge::Grudge;
use crate::process::tests::nodes;

/// A net that remembers the grudge in place and counts heals.
#[derive(Default)]
struct FakeNet {
    current: Mutex<Option<Grudge>>,
    drops: Mutex<usize>,
    heals: Mutex<usize>,
}

impl Net for FakeNet {
    fn drop(&self, grudge: &Grudge) -> Result<(), NemesisError> {
        *self.current.lock().unwrap() = Some(grudge.clone());
        *self.drops.lock().unwrap() += 1;
        Ok(())
    }

    fn heal(&self) -> Result<(), NemesisError> {
        *self.current.lock().unwrap() = None;
        *self.heals.lock().unwrap() += 1;
        Ok(())
    }
}

/// A cluster of `n` nodes: running ones, a term bumped at every change of leader.
struct Sim {
    net: Arc<FakeNet>,
    n: usize,
    down: Mutex<BTreeSet<String>>,
    /// Paused nodes: they neither lead nor answer.
    paused: Mutex<BTreeSet<String>>,
    /// (term, leader) last seen.
    term: Mutex<(u64, Option<String>)>,
    events: Mutex<Vec<String>>,
    elections: bool,
}

impl Sim {
    fn new(n: usize, elections: bool) -> (Arc<Sim>, Arc<FakeNet>) {
        let net = Arc::new(FakeNet::default());
        let sim = Arc::new(Sim {
            net: Arc::clone(&net),
            n,
            down: Mutex::new(BTreeSet::new()),
            paused: Mutex::new(BTreeSet::new()),
            term: Mutex::new((1, None)),
            events: Mutex::new(Vec::new()),
            elections,
        });
        (sim, net)
    }

    /// The nodes `name` reaches (itself included), running ones only.
    fn reach(&self, name: &str) -> Vec<String> {
        let down = self.down.lock().unwrap().clone();
        let grudge = self.net.current.lock().unwrap().clone();
        (1..=self.n)
            .map(|i| format!("n{i}"))
            .filter(|m| !down.contains(m))
            .filter(|m| grudge.as_ref().is_none_or(|g| !g.drops(name, m)))
            .collect()
    }

    fn leader(&self) -> Option<String> {
        let mut down = self.down.lock().unwrap().clone();
        down.extend(self.paused.lock().unwrap().iter().cloned());
        let leader = (1..=self.n)
            .map(|i| format!("n{i}"))
            .filter(|m| !down.contains(m))
            .find(|m| self.reach(m).len() > self.n / 2);
        let mut term = self.term.lock().unwrap();
        if leader.is_some() && term.1 != leader {
            *term = (term.0 + 1, leader.clone());
        }
        leader
    }

    fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }
}

impl Db for Sim {
    fn name(&self) -> &str {
        "sim"
    }
    fn setup(&self, _: &Node) -> Result<(), ClusterError> {
        Ok(())
    }
    fn start(&self, node: &Node) -> Result<(), ClusterError> {
        self.down.lock().unwrap().remove(&node.name);
        self.events
            .lock()
            .unwrap()
            .push(format!("start {}", node.name));
        Ok(())
    }
    fn kill(&self, node: &Node) -> Result<(), ClusterError> {
        self.down.lock().unwrap().insert(node.name.clone());
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
    fn primaries(&self) -> Option<&dyn Primaries> {
        Some(self)
    }
    fn elections(&self) -> Option<&dyn Elections> {
        self.elections.then_some(self as &dyn Elections)
    }
    fn pause(&self) -> Option<&dyn Pause> {
        Some(self)
    }
}

impl Pause for Sim {
    fn pause(&self, node: &Node) -> Result<(), ClusterError> {
        self.paused.lock().unwrap().insert(node.name.clone());
        self.events
            .lock()
            .unwrap()
            .push(format!("pause {}", node.name));
        Ok(())
    }
    fn resume(&self, node: &Node) -> Result<(), ClusterError> {
        self.paused.lock().unwrap().remove(&node.name);
        self.events
            .lock()
            .unwrap()
            .push(format!("resume {}", node.name));
        Ok(())
    }
}

impl Primaries for Sim {
    fn primaries(&self, _: &[Node]) -> Vec<String> {
        self.leader().into_iter().collect()
    }
}

impl Elections for Sim {
    fn view(&self, node: &Node) -> Result<NodeView, String> {
        if self.down.lock().unwrap().contains(&node.name)
            || self.paused.lock().unwrap().contains(&node.name)
        {
            return Err("down".into());
        }
        let leader = self.leader();
        let (term, _) = self.term.lock().unwrap().clone();
        let sees_leader = leader
            .as_ref()
            .is_some_and(|l| self.reach(&node.name).contains(l));
        let leader_id = leader.as_ref().and_then(|l| l[1..].parse::<u64>().ok());
        Ok(NodeView {
            role: if leader.as_deref() == Some(node.name.as_str()) {
                "leader".into()
            } else {
                "follower".into()
            },
            term: if sees_leader { term } else { 1 },
            vote: if sees_leader { leader_id } else { None },
            leader: leader_id.filter(|_| sees_leader),
            commit: 0,
            last_index: 0,
        })
    }

    fn timing(&self) -> ElectionTiming {
        ElectionTiming {
            tick: Duration::from_millis(1),
            election_ticks: 10,
            heartbeat_ticks: 2,
            non_preferred_timeout_factor: 1,
        }
    }
}

fn scenario(scenario: Scenario, sim: &Arc<Sim>, net: &Arc<FakeNet>) -> ScenarioNemesis {
    let db: Arc<dyn Db> = Arc::clone(sim) as Arc<dyn Db>;
    let net: Arc<dyn Net> = Arc::clone(net) as Arc<dyn Net>;
    ScenarioNemesis::new(scenario, db, nodes(sim.n), net, 5).unwrap()
}

/// Runs `scenario` for `ms` and stops it: the stop's value.
fn run_for(s: &mut ScenarioNemesis, value: Value, ms: u64) -> Value {
    let [start_f, stop_f] = s.scenario.fs();
    s.invoke(start_f, &value).unwrap();
    thread::sleep(Duration::from_millis(ms));
    s.invoke(stop_f, &Value::Null).unwrap()
}

fn kinds(value: &Value) -> Vec<String> {
    value["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn flap_partitions_again_and_again_and_heals_on_stop() {
    let (sim, net) = Sim::new(5, true);
    let mut s = scenario(Scenario::Flap, &sim, &net);
    let v = run_for(&mut s, json!({"period_ms": 10}), 150);
    let partitions = kinds(&v).iter().filter(|k| *k == "partition").count();
    assert!(partitions >= 5, "{v}");
    assert_eq!(v["count"], partitions);
    assert!(*net.drops.lock().unwrap() >= 5);
    assert!(net.current.lock().unwrap().is_none(), "healed on stop");
    // Stopping again, or healing, is harmless.
    assert_eq!(s.invoke(STOP_FLAP, &Value::Null).unwrap()["count"], 0);
    s.heal().unwrap();
}

#[test]
fn leader_churn_isolates_kills_and_brings_back_the_leader() {
    let (sim, net) = Sim::new(5, true);
    let mut s = scenario(Scenario::LeaderChurn, &sim, &net);
    let v = run_for(&mut s, json!({"settle_ms": 5}), 400);
    let kinds = kinds(&v);
    for kind in ["isolate", "kill-leader", "return"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind}: {v}");
    }
    // The first round isolates n1 (the first leader) with one follower, kills it, and
    // the majority's new leader is another node.
    let events = v["events"].as_array().unwrap();
    assert_eq!(events[0]["leader"], json!(["n1"]));
    assert_eq!(events[1]["node"], json!(["n1"]));
    assert!(
        events[2]["new_leader"]
            .as_array()
            .is_some_and(|l| l[0] != "n1"),
        "{v}"
    );
    // Every killed node runs again, and the network is whole.
    assert!(sim.down.lock().unwrap().is_empty(), "{:?}", sim.events());
    assert!(net.current.lock().unwrap().is_none());
}

#[test]
fn vote_kill_restarts_the_first_voter_of_the_new_term() {
    let (sim, net) = Sim::new(5, true);
    let mut s = scenario(Scenario::VoteKill, &sim, &net);
    let v = run_for(&mut s, json!({"hold_ms": 5, "settle_ms": 5}), 300);
    let events = v["events"].as_array().unwrap();
    let kill = events
        .iter()
        .find(|e| e["event"] == "kill-voter")
        .unwrap_or_else(|| panic!("{v}"));
    // The voter is not on the held side, and voted for the new leader.
    let provoke = &events[0];
    assert_eq!(provoke["event"], "provoke");
    let voter = &kill["node"][0];
    assert!(!provoke["held"].as_array().unwrap().contains(voter), "{v}");
    assert!(kill["voted_for"].is_array(), "{v}");
    // Killed, then started at once.
    let log = sim.events();
    let at = log
        .iter()
        .position(|e| *e == format!("kill {}", voter.as_str().unwrap()))
        .unwrap();
    assert_eq!(log[at + 1], format!("start {}", voter.as_str().unwrap()));
    assert!(sim.down.lock().unwrap().is_empty());
    assert!(net.current.lock().unwrap().is_none());
}

#[test]
fn stale_leader_freezes_the_leader_and_wakes_it_behind_a_bridge() {
    let (sim, net) = Sim::new(5, true);
    let mut s = scenario(Scenario::StaleLeader, &sim, &net);
    let v = run_for(&mut s, json!({"hold_ms": 5, "settle_ms": 5}), 300);
    let events = v["events"].as_array().unwrap();
    assert_eq!(events[0]["event"], "freeze", "{v}");
    assert_eq!(events[0]["node"], json!(["n1"]));
    let wake = &events[1];
    assert_eq!(wake["event"], "wake", "{v}");
    assert_eq!(wake["node"], json!(["n1"]));
    // The majority elected another node; each leader keeps a quorum through one bridge.
    let new = wake["new_leader"][0].as_str().unwrap();
    assert_ne!(new, "n1");
    assert!(wake["old_side"].as_array().unwrap().contains(&json!("n1")));
    assert!(wake["new_side"].as_array().unwrap().contains(&json!(new)));
    assert_eq!(wake["bridges"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(wake["old_side"].as_array().unwrap().len(), 2, "{v}");
    // Paused while the partition was set up, resumed once the bridge was in place.
    let log = sim.events();
    let paused = log.iter().position(|e| e == "pause n1").unwrap();
    assert_eq!(log[paused + 1], "resume n1", "{log:?}");
    assert!(
        *net.drops.lock().unwrap() >= 2,
        "isolation, then the bridge"
    );
    // Nothing is left paused or cut.
    assert!(sim.paused.lock().unwrap().is_empty(), "{log:?}");
    assert!(net.current.lock().unwrap().is_none());
}

#[test]
fn scenarios_refuse_databases_that_cannot_say_enough_and_bad_values() {
    let (sim, net) = Sim::new(5, false);
    let db: Arc<dyn Db> = Arc::clone(&sim) as Arc<dyn Db>;
    let e = ScenarioNemesis::new(
        Scenario::VoteKill,
        db,
        nodes(5),
        Arc::clone(&net) as Arc<dyn Net>,
        1,
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("no elections capability"), "{e}");
    let mut churn = scenario(Scenario::LeaderChurn, &sim, &net);
    let e = churn
        .invoke(START_LEADER_CHURN, &json!({"period_ms": 10}))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("start-leader-churn: bad value"), "{e}");
    assert!(churn.running.is_none());
    assert!(churn.invoke(START_FLAP, &Value::Null).is_err());
    // Without its own timing, the fallback's.
    assert_eq!(
        churn.invoke(START_LEADER_CHURN, &Value::Null).unwrap()["election_ticks"],
        10
    );
    churn.heal().unwrap();
    assert!(net.current.lock().unwrap().is_none());
    // figure8 needs the nodes' views, and a packet delayer to start.
    let db: Arc<dyn Db> = Arc::clone(&sim) as Arc<dyn Db>;
    let e = ScenarioNemesis::new(
        Scenario::Figure8,
        db,
        nodes(5),
        Arc::clone(&net) as Arc<dyn Net>,
        1,
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("no elections capability"), "{e}");
    let (sim, net) = Sim::new(5, true);
    let mut figure8 = scenario(Scenario::Figure8, &sim, &net);
    let e = figure8
        .invoke(START_FIGURE8, &Value::Null)
        .unwrap_err()
        .to_string();
    assert!(e.contains("faultline-delayer"), "{e}");
    assert!(figure8.running.is_none());
}
