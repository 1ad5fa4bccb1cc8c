//! [`PartitionNemesis`]: network partitions of the topologies in [`crate::partition`],
//! applied through a [`Net`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use faultline_clusters::{Db, Node};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::error::NemesisError;
use crate::grudge::complete_grudge;
use crate::nemesis::{Nemesis, unknown_f};
use crate::net::Net;
use crate::partition::{
    Partition, TopologyError, bridge, halves, isolate, majorities_ring, one_way, random_halves,
    shuffled,
};

/// The `f` that applies a partition.
pub const START_PARTITION: &str = "start-partition";
/// The `f` that heals the network.
pub const STOP_PARTITION: &str = "stop-partition";

/// The topologies a `start-partition` value may name (`"majority"` is an alias of
/// `"halves"`; `"primary"` needs [`PartitionNemesis::with_primaries`]). A null value
/// picks one at random among those that fit the number of nodes.
pub const TOPOLOGIES: [&str; 6] = [
    "halves",
    "random-halves",
    "isolate-one",
    "majorities-ring",
    "bridge",
    "one-way",
];

/// Partitions the network (Jepsen's `partitioner`): `start-partition` replaces the
/// current partition with a new one, `stop-partition` heals.
///
/// Values of `start-partition`: `"halves"` (or `"majority"`: the nodes in order, the
/// smaller half first), `"random-halves"`, `"isolate-one"` (a random node alone),
/// `"majorities-ring"` and `"bridge"` (over a random ring or order), `"one-way"` (a
/// random smaller half's traffic dropped by the rest, not the reverse), `"primary"`
/// (the current leaders alone, if configured), or null: a random one of these.
pub struct PartitionNemesis {
    net: Arc<dyn Net>,
    nodes: Vec<String>,
    rng: ChaCha8Rng,
    primaries: Option<(Arc<dyn Db>, Vec<Node>)>,
    primary_wait: Duration,
}

/// How long a `"primary"` partition waits for a node to answer as leader (an election
/// under way, say) before it gives up: a randomly drawn one then falls back to another
/// topology.
pub const PRIMARY_WAIT: Duration = Duration::from_secs(2);

impl PartitionNemesis {
    /// Partitions among `nodes` (by name) applied with `net`, random choices drawn from
    /// a ChaCha8 RNG seeded with `seed`.
    pub fn new<S: AsRef<str>>(net: Arc<dyn Net>, nodes: &[S], seed: u64) -> PartitionNemesis {
        PartitionNemesis {
            net,
            nodes: nodes.iter().map(|n| n.as_ref().to_string()).collect(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            primaries: None,
            primary_wait: PRIMARY_WAIT,
        }
    }

    /// How long a `"primary"` partition waits for a leader (default [`PRIMARY_WAIT`]).
    pub fn primary_wait(mut self, wait: Duration) -> PartitionNemesis {
        self.primary_wait = wait;
        self
    }

    /// Enables the `"primary"` topology: isolate the nodes `db` reports as leaders
    /// (asking `nodes`). An error if `db` has no `Primaries` capability.
    pub fn with_primaries(
        mut self,
        db: Arc<dyn Db>,
        nodes: Vec<Node>,
    ) -> Result<PartitionNemesis, NemesisError> {
        if db.primaries().is_none() {
            return Err(NemesisError::Unsupported {
                db: db.name().to_string(),
                capability: "primaries",
                nemesis: "primary partition",
            });
        }
        self.primaries = Some((db, nodes));
        Ok(self)
    }

    /// The topologies a null value chooses among, for this many nodes.
    pub fn choices(&self) -> Vec<&'static str> {
        let mut choices: Vec<&'static str> = TOPOLOGIES
            .iter()
            .copied()
            .filter(|t| self.nodes.len() >= 3 || !matches!(*t, "majorities-ring" | "bridge"))
            .collect();
        if self.primaries.is_some() {
            choices.push("primary");
        }
        choices
    }

    /// The partition `topology` over the nodes, drawing from the RNG; `None` for
    /// `"primary"` when no node is leader.
    fn partition(&mut self, topology: &str) -> Result<Option<Partition>, NemesisError> {
        let nodes = &self.nodes;
        let rng = &mut self.rng;
        let p = match topology {
            "halves" | "majority" => halves(nodes)?,
            "random-halves" => random_halves(nodes, rng)?,
            "isolate-one" => {
                let i = match nodes.len() {
                    0 => 0,
                    n => rng.random_range(0..n),
                };
                isolate(nodes, nodes.get(i).map_or("", String::as_str))?
            }
            "majorities-ring" => majorities_ring(&shuffled(nodes, rng))?,
            "bridge" => bridge(&shuffled(nodes, rng))?,
            "one-way" => {
                let mut to = shuffled(nodes, rng);
                let from = to.split_off(to.len() / 2);
                // The smaller half is dropped by the larger one.
                let (from, to) = if from.len() <= to.len() {
                    (from, to)
                } else {
                    (to, from)
                };
                one_way(nodes, &from, &to)?
            }
            "primary" => return self.primary_partition(),
            _ => return Err(bad_topology(topology)),
        };
        Ok(Some(p))
    }

    /// The current leaders in one component, the rest in the other.
    fn primary_partition(&self) -> Result<Option<Partition>, NemesisError> {
        let Some((db, nodes)) = &self.primaries else {
            return Err(bad_topology("primary"));
        };
        let deadline = Instant::now() + self.primary_wait;
        let leaders = loop {
            let leaders = db
                .primaries()
                .map(|p| p.primaries(nodes))
                .unwrap_or_default();
            if !leaders.is_empty() {
                break leaders;
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let rest: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| !leaders.contains(n))
            .cloned()
            .collect();
        let components = vec![leaders.clone(), rest];
        let grudge = complete_grudge(&components).map_err(|e| NemesisError::BadNode {
            node: leaders.join(","),
            reason: e.to_string(),
        })?;
        Ok(Some(Partition {
            grudge,
            value: json!({ "isolated": components, "primaries": leaders }),
            components: Some(components),
        }))
    }
}

/// The partition an explicit value describes, as the nemesis records them (so a
/// recorded partition replays as it was): `[["n1","n2"],["n3","n4","n5"]]` or
/// `{"isolated": COMPONENTS}` (components that talk only among themselves; nodes left
/// out form one more), `["n1","n2"]` (those nodes cut from the rest),
/// `{"isolated": [LEFT, RIGHT], "bridge": NODE}`, `{"one-way": {"from": […], "to":
/// […]}}`, `{"grudge": {NODE: [NODES IT DROPS]}}`; `{"isolated": null}` is no partition
/// (`None`). Other keys (`primaries`, `role`) are ignored.
fn explicit_partition(nodes: &[String], value: &Value) -> Result<Option<Partition>, NemesisError> {
    let bad = |why: &str| NemesisError::BadValue {
        f: START_PARTITION.to_string(),
        value: value.to_string(),
        expected: format!(
            "a topology name, or explicit components ([[\"n1\"],[\"n2\",\"n3\"]], \
             {{\"isolated\": …}}, {{\"one-way\": {{\"from\": …, \"to\": …}}}}, \
             {{\"grudge\": …}}){why}"
        ),
    };
    let names = |v: &Value| -> Result<Vec<String>, NemesisError> {
        let list = v
            .as_array()
            .ok_or_else(|| bad(": a list of node names expected"))?;
        list.iter()
            .map(|n| match n.as_str() {
                Some(n) if nodes.iter().any(|m| m == n) => Ok(n.to_string()),
                _ => Err(bad(&format!(": unknown node {n}"))),
            })
            .collect()
    };
    let components = |v: &Value| -> Result<Vec<Vec<String>>, NemesisError> {
        let list = v
            .as_array()
            .ok_or_else(|| bad(": a list of components expected"))?;
        if list.iter().all(Value::is_string) {
            let side = names(v)?;
            let rest = nodes
                .iter()
                .filter(|n| !side.contains(n))
                .cloned()
                .collect();
            return Ok(vec![side, rest]);
        }
        let mut comps = list.iter().map(names).collect::<Result<Vec<_>, _>>()?;
        let rest: Vec<String> = nodes
            .iter()
            .filter(|n| !comps.iter().flatten().any(|m| m == *n))
            .cloned()
            .collect();
        if !rest.is_empty() {
            comps.push(rest);
        }
        Ok(comps)
    };
    let topology = |e: TopologyError| bad(&format!(": {e}"));
    let p = match value {
        Value::Array(_) => split_into(components(value)?).map_err(|e| bad(&format!(": {e}")))?,
        Value::Object(o) => {
            if let Some(grudge) = o.get("grudge") {
                let map = grudge
                    .as_object()
                    .ok_or_else(|| bad(": `grudge` is an object"))?;
                let mut g = crate::grudge::Grudge::new(nodes);
                for (node, from) in map {
                    names(&json!([node]))?;
                    for sender in names(from)? {
                        g.cut(node, &sender);
                    }
                }
                Partition {
                    value: json!({ "grudge": g.to_json() }),
                    grudge: g,
                    components: None,
                }
            } else if let Some(one) = o.get("one-way") {
                let from = names(&one["from"])?;
                let to = names(&one["to"])?;
                one_way(nodes, &from, &to).map_err(topology)?
            } else if let Some(isolated) = o.get("isolated") {
                if isolated.is_null() {
                    return Ok(None);
                }
                match o.get("bridge").and_then(Value::as_str) {
                    Some(middle) => {
                        let sides = isolated.as_array().filter(|s| s.len() == 2);
                        let sides = sides.ok_or_else(|| bad(": a bridge joins two sides"))?;
                        let (left, right) = (names(&sides[0])?, names(&sides[1])?);
                        names(&json!([middle]))?;
                        let mut g = complete_grudge(&[left.clone(), right.clone()])
                            .map_err(|e| bad(&format!(": {e}")))?;
                        g.cut(middle, middle);
                        Partition {
                            grudge: g,
                            value: json!({ "isolated": [left, right], "bridge": middle }),
                            components: None,
                        }
                    }
                    None => {
                        split_into(components(isolated)?).map_err(|e| bad(&format!(": {e}")))?
                    }
                }
            } else {
                return Err(bad(": no `isolated`, `one-way` or `grudge` key"));
            }
        }
        _ => return Err(bad("")),
    };
    Ok(Some(p))
}

/// Components that talk only among themselves.
fn split_into(components: Vec<Vec<String>>) -> Result<Partition, crate::grudge::GrudgeError> {
    let grudge = complete_grudge(&components)?;
    Ok(Partition {
        grudge,
        value: json!({ "isolated": components }),
        components: Some(components),
    })
}

fn bad_topology(topology: &str) -> NemesisError {
    NemesisError::BadValue {
        f: START_PARTITION.to_string(),
        value: json!(topology).to_string(),
        expected: format!(
            "null, \"majority\", \"primary\" or one of {}",
            TOPOLOGIES.join(", ")
        ),
    }
}

impl Nemesis for PartitionNemesis {
    fn fs(&self) -> &[&'static str] {
        &[START_PARTITION, STOP_PARTITION]
    }

    fn invoke(&mut self, f: &str, value: &Value) -> Result<Value, NemesisError> {
        match f {
            START_PARTITION => {
                let topology = match value {
                    Value::Null => {
                        let choices = self.choices();
                        let topology = choices[self.rng.random_range(0..choices.len())];
                        if topology == "primary"
                            && let Some(p) = self.primary_partition()?
                        {
                            self.net.drop(&p.grudge)?;
                            return Ok(p.value);
                        }
                        if topology == "primary" {
                            // No leader to isolate: another topology, rather than none.
                            let others: Vec<&str> =
                                choices.into_iter().filter(|t| *t != "primary").collect();
                            let other = others[self.rng.random_range(0..others.len())];
                            let p = self.partition(other)?.ok_or_else(|| bad_topology(other))?;
                            self.net.drop(&p.grudge)?;
                            let mut value = p.value;
                            value["no_primary"] = json!(true);
                            return Ok(value);
                        }
                        topology.to_string()
                    }
                    Value::String(s) => s.clone(),
                    explicit => {
                        let p = explicit_partition(&self.nodes, explicit)?;
                        return match p {
                            Some(p) => {
                                self.net.drop(&p.grudge)?;
                                Ok(p.value)
                            }
                            None => Ok(json!({ "isolated": null })),
                        };
                    }
                };
                match self.partition(&topology)? {
                    Some(p) => {
                        self.net.drop(&p.grudge)?;
                        Ok(p.value)
                    }
                    None => Ok(json!({ "primaries": [], "isolated": null })),
                }
            }
            STOP_PARTITION => {
                self.net.heal()?;
                Ok(json!("network-healed"))
            }
            _ => Err(unknown_f(f, self.fs())),
        }
    }

    fn heal(&mut self) -> Result<(), NemesisError> {
        self.net.heal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grudge::Grudge;
    use std::sync::Mutex;

    /// A net that remembers the grudge in place.
    #[derive(Default)]
    struct Recorder {
        current: Mutex<Option<Grudge>>,
    }

    impl Net for Recorder {
        fn drop(&self, grudge: &Grudge) -> Result<(), NemesisError> {
            *self.current.lock().unwrap() = Some(grudge.clone());
            Ok(())
        }

        fn heal(&self) -> Result<(), NemesisError> {
            *self.current.lock().unwrap() = None;
            Ok(())
        }
    }

    const NODES: [&str; 5] = ["n1", "n2", "n3", "n4", "n5"];

    fn values(seed: u64) -> Vec<Value> {
        let mut n = PartitionNemesis::new(Arc::new(Recorder::default()), &NODES, seed);
        (0..20)
            .map(|_| n.invoke(START_PARTITION, &Value::Null).unwrap())
            .collect()
    }

    #[test]
    fn start_applies_the_grudge_and_stop_heals() {
        let net = Arc::new(Recorder::default());
        let mut n = PartitionNemesis::new(net.clone(), &NODES, 1);
        let v = n.invoke(START_PARTITION, &json!("majority")).unwrap();
        assert_eq!(v, json!({"isolated": [["n1", "n2"], ["n3", "n4", "n5"]]}));
        let g = net.current.lock().unwrap().clone().unwrap();
        assert!(g.drops("n1", "n4") && g.drops("n4", "n1") && !g.drops("n1", "n2"));
        let v = n.invoke(START_PARTITION, &json!("isolate-one")).unwrap();
        let alone = &v["isolated"][0];
        assert_eq!(alone.as_array().unwrap().len(), 1);
        let v = n.invoke(START_PARTITION, &json!("one-way")).unwrap();
        assert_eq!(v["one-way"]["from"].as_array().unwrap().len(), 2);
        assert!(!net.current.lock().unwrap().clone().unwrap().is_symmetric());
        assert_eq!(
            n.invoke(STOP_PARTITION, &Value::Null).unwrap(),
            json!("network-healed")
        );
        assert!(net.current.lock().unwrap().is_none());
        n.invoke(START_PARTITION, &json!("bridge")).unwrap();
        n.heal().unwrap();
        assert!(net.current.lock().unwrap().is_none());
    }

    #[test]
    fn random_choices_replay_from_the_seed() {
        let a = values(7);
        assert_eq!(a, values(7));
        assert_ne!(a, values(8));
        let kinds: std::collections::BTreeSet<String> = a
            .iter()
            .map(|v| {
                v.as_object()
                    .unwrap()
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("+")
            })
            .collect();
        assert!(kinds.len() >= 3, "{kinds:?}");
    }

    #[test]
    fn explicit_partitions_replay_their_recorded_values() {
        let net = Arc::new(Recorder::default());
        let mut n = PartitionNemesis::new(net.clone(), &NODES, 1);
        for topology in [
            "halves",
            "bridge",
            "one-way",
            "majorities-ring",
            "isolate-one",
        ] {
            let recorded = n.invoke(START_PARTITION, &json!(topology)).unwrap();
            let grudge = net.current.lock().unwrap().clone().unwrap();
            let replayed = n.invoke(START_PARTITION, &recorded).unwrap();
            assert_eq!(replayed, recorded, "{topology}");
            assert_eq!(
                net.current.lock().unwrap().clone().unwrap(),
                grudge,
                "{topology}"
            );
        }
        let v = n.invoke(START_PARTITION, &json!([["n1", "n2"]])).unwrap();
        assert_eq!(v, json!({"isolated": [["n1", "n2"], ["n3", "n4", "n5"]]}));
        let v = n.invoke(START_PARTITION, &json!(["n5"])).unwrap();
        assert_eq!(v, json!({"isolated": [["n5"], ["n1", "n2", "n3", "n4"]]}));
        let v = n
            .invoke(START_PARTITION, &json!({"isolated": null}))
            .unwrap();
        assert_eq!(v, json!({"isolated": null}));
        assert!(n.invoke(START_PARTITION, &json!([["n1"], ["n1"]])).is_err());
        assert!(n.invoke(START_PARTITION, &json!([["n9"]])).is_err());
        assert!(n.invoke(START_PARTITION, &json!({"cut": 1})).is_err());
    }

    #[test]
    fn a_drawn_primary_partition_waits_for_a_leader_then_falls_back_to_another_topology() {
        use crate::roles::tests::Led;
        let db = Arc::new(Led::default());
        let nodes = crate::process::tests::nodes(5);
        let net = Arc::new(Recorder::default());
        let mut n = PartitionNemesis::new(net.clone(), &NODES, 1)
            .with_primaries(db.clone(), nodes)
            .unwrap()
            .primary_wait(Duration::from_millis(100));
        // No leader: every draw still partitions; the primary draws say so.
        let mut fell_back = 0;
        for _ in 0..60 {
            let v = n.invoke(START_PARTITION, &Value::Null).unwrap();
            assert!(net.current.lock().unwrap().is_some(), "{v}");
            assert!(v.get("isolated").is_none_or(|i| !i.is_null()), "{v}");
            if v.get("no_primary").is_some() {
                fell_back += 1;
                assert!(v.get("primaries").is_none(), "{v}");
            }
            n.invoke(STOP_PARTITION, &Value::Null).unwrap();
        }
        assert!(fell_back > 0);
        // Asked for by name, it isolates nobody after the wait.
        let v = n.invoke(START_PARTITION, &json!("primary")).unwrap();
        assert_eq!(v, json!({"primaries": [], "isolated": null}));
        // A leader that shows up within the wait is isolated.
        *db.leader.lock().unwrap() = Some("n3".into());
        let v = n.invoke(START_PARTITION, &json!("primary")).unwrap();
        assert_eq!(v["primaries"], json!(["n3"]));
    }

    #[test]
    fn bad_values_and_small_clusters() {
        let mut n = PartitionNemesis::new(Arc::new(Recorder::default()), &["n1", "n2"], 3);
        assert_eq!(
            n.choices(),
            ["halves", "random-halves", "isolate-one", "one-way"]
        );
        for _ in 0..10 {
            n.invoke(START_PARTITION, &Value::Null).unwrap();
        }
        let err = n.invoke(START_PARTITION, &json!("triangle")).unwrap_err();
        assert!(err.to_string().contains("bad value \"triangle\""), "{err}");
        assert!(n.invoke(START_PARTITION, &json!("primary")).is_err());
        assert!(n.invoke(START_PARTITION, &json!(3)).is_err());
        assert!(n.invoke(START_PARTITION, &json!("bridge")).is_err());
        assert!(n.invoke("kill", &Value::Null).is_err());
    }
}
