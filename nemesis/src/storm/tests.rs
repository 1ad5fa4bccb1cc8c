//! Tests of the storm nemesis.

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
