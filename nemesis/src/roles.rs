//! Role targets: faults aimed at what nodes *are* (the leader, its followers, the node
//! that led before, a minority holding the leader) rather than at names. [`Roles`]
//! finds them through the database's `Primaries` capability and remembers the leaders
//! it has seen; [`RoleNemesis`] wraps the run's nemesis and turns role targets in
//! operation values into concrete nodes before passing them on, so the nemeses see only
//! names and the history records who was hit.

use std::sync::Arc;

use faultline_clusters::{Db, Node};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::error::NemesisError;
use crate::nemesis::Nemesis;
use crate::partitioner::START_PARTITION;
use crate::power::POWER_LOSS;
use crate::process::{KILL, PAUSE};
use crate::storm::START_STORM;

/// The current leader(s), as the database reports them (`primaries` is its alias).
pub const LEADER: &str = "leader";
/// Every node that does not currently lead.
pub const FOLLOWERS: &str = "followers";
/// The last leader seen before the current one (none known: no node).
pub const PREVIOUS_LEADER: &str = "previous-leader";
/// The leader plus random followers making a minority (⌈n/2⌉−1 nodes, at least the
/// leader): as a partition, that side cut from the rest; as a process target, that side.
pub const MINORITY_WITH_LEADER: &str = "minority-with-leader";
/// Every role target.
pub const ROLES: [&str; 4] = [LEADER, FOLLOWERS, PREVIOUS_LEADER, MINORITY_WITH_LEADER];

/// Who holds which role, asked of the database, with the leaders seen so far.
pub struct Roles {
    db: Arc<dyn Db>,
    nodes: Vec<Node>,
    seen: Vec<String>,
    rng: ChaCha8Rng,
}

impl Roles {
    /// Roles among `nodes` of `db` (which needs the `Primaries` capability for any role
    /// to resolve); random followers drawn from a ChaCha8 RNG seeded with `seed`.
    pub fn new(db: Arc<dyn Db>, nodes: Vec<Node>, seed: u64) -> Roles {
        Roles {
            db,
            nodes,
            seen: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// The current leaders (several while a deposed one has not noticed yet), in node
    /// order, remembered for [`Roles::previous_leader`].
    pub fn observe(&mut self) -> Result<Vec<String>, NemesisError> {
        let primaries = self
            .db
            .primaries()
            .ok_or_else(|| NemesisError::Unsupported {
                db: self.db.name().to_string(),
                capability: "primaries",
                nemesis: "role target",
            })?;
        let leaders = primaries.primaries(&self.nodes);
        for leader in &leaders {
            if self.seen.last() != Some(leader) {
                self.seen.push(leader.clone());
            }
        }
        Ok(leaders)
    }

    /// The leaders seen so far, oldest first (consecutive repeats once).
    pub fn seen(&self) -> &[String] {
        &self.seen
    }

    /// The newest leader seen that is not among `current`.
    pub fn previous_leader(&self, current: &[String]) -> Option<String> {
        self.seen
            .iter()
            .rev()
            .find(|l| !current.contains(l))
            .cloned()
    }

    /// The nodes `role` (one of [`ROLES`]) names now, as components: one component
    /// for the roles naming nodes, and for [`MINORITY_WITH_LEADER`] the minority
    /// holding the leader then the rest. Empty when nobody holds the role.
    pub fn resolve(&mut self, role: &str) -> Result<Vec<Vec<String>>, NemesisError> {
        let leaders = self.observe()?;
        let names: Vec<String> = self.nodes.iter().map(|n| n.name.clone()).collect();
        let others = |chosen: &[String]| -> Vec<String> {
            names
                .iter()
                .filter(|n| !chosen.contains(n))
                .cloned()
                .collect()
        };
        Ok(match role {
            LEADER => vec![leaders],
            FOLLOWERS if leaders.is_empty() => vec![vec![]],
            FOLLOWERS => vec![others(&leaders)],
            PREVIOUS_LEADER => vec![self.previous_leader(&leaders).into_iter().collect()],
            MINORITY_WITH_LEADER => {
                let Some(leader) = leaders.first().cloned() else {
                    return Ok(vec![vec![]]);
                };
                let size = names.len().div_ceil(2).saturating_sub(1).max(1);
                let mut followers = others(&leaders);
                followers.shuffle(&mut self.rng);
                let mut side = vec![leader];
                side.extend(followers.into_iter().take(size - 1));
                side.sort_by_key(|n| names.iter().position(|m| m == n));
                let rest = others(&side);
                vec![side, rest]
            }
            _ => {
                return Err(NemesisError::BadValue {
                    f: "role".into(),
                    value: json!(role).to_string(),
                    expected: format!("one of {}", ROLES.join(", ")),
                });
            }
        })
    }
}

/// A role name in `value`, if it is one.
fn role(value: &Value) -> Option<&str> {
    value.as_str().filter(|s| ROLES.contains(s))
}

/// A nemesis whose operation values may name roles ([`ROLES`]): each is resolved to
/// nodes just before the operation (kill/pause/power-loss values become node names,
/// `start-partition` values explicit components, `node`/`nodes`/`target` fields of
/// object values names), and the result records the role asked for as `"role"`.
pub struct RoleNemesis {
    inner: Box<dyn Nemesis>,
    roles: Roles,
    track: bool,
}

impl RoleNemesis {
    /// Wraps `inner`, resolving roles with `roles`.
    pub fn new(inner: Box<dyn Nemesis>, roles: Roles) -> RoleNemesis {
        RoleNemesis {
            inner,
            roles,
            track: false,
        }
    }

    /// Also asks who leads before every operation (not only those naming a role), so
    /// that [`PREVIOUS_LEADER`] knows leaders that no role target asked about. Costs a
    /// status request per node and operation.
    pub fn track_leaders(mut self, track: bool) -> RoleNemesis {
        self.track = track;
        self
    }

    /// `value` with its roles replaced by nodes; `None` when it names no role.
    fn concrete(&mut self, f: &str, value: &Value) -> Result<Option<Value>, NemesisError> {
        let names = |groups: Vec<Vec<String>>| json!(groups.into_iter().next().unwrap_or_default());
        if let Some(r) = role(value) {
            let groups = self.roles.resolve(r)?;
            return Ok(Some(match f {
                START_PARTITION => {
                    let mut groups = groups;
                    match groups.first() {
                        Some(side) if side.is_empty() => json!({ "isolated": null }),
                        _ if groups.len() == 1 => {
                            let side = groups.remove(0);
                            json!({ "isolated": [side.clone(), self.rest(&side)] })
                        }
                        _ => json!({ "isolated": groups }),
                    }
                }
                START_STORM if r == LEADER => json!({ "target": "primaries" }),
                START_STORM if r == FOLLOWERS => json!({ "target": "followers" }),
                START_STORM => json!({ "target": names(groups) }),
                KILL | PAUSE | POWER_LOSS => names(groups),
                _ => return Err(self.unsupported(f, value)),
            }));
        }
        let Value::Object(fields) = value else {
            return Ok(None);
        };
        let mut out = fields.clone();
        let mut changed = false;
        for key in ["node", "nodes", "target"] {
            let Some(r) = fields.get(key).and_then(role) else {
                continue;
            };
            let resolved = match (key, f, r) {
                ("target", START_STORM, LEADER) => json!("primaries"),
                ("target", START_STORM, FOLLOWERS) => json!("followers"),
                ("node", _, _) => {
                    let groups = self.roles.resolve(r)?;
                    match groups.into_iter().next().unwrap_or_default().first() {
                        Some(name) => json!(name),
                        None => {
                            return Err(NemesisError::BadNode {
                                node: r.to_string(),
                                reason: format!("no node is the {r} now"),
                            });
                        }
                    }
                }
                _ => names(self.roles.resolve(r)?),
            };
            out.insert(key.to_string(), resolved);
            changed = true;
        }
        Ok(changed.then_some(Value::Object(out)))
    }

    fn rest(&self, side: &[String]) -> Vec<String> {
        self.roles
            .nodes
            .iter()
            .map(|n| n.name.clone())
            .filter(|n| !side.contains(n))
            .collect()
    }

    fn unsupported(&self, f: &str, value: &Value) -> NemesisError {
        NemesisError::BadValue {
            f: f.to_string(),
            value: value.to_string(),
            expected: "no role target here: roles are for kill, pause, power-loss, \
                       start-partition, start-storm and `node`/`nodes` fields"
                .into(),
        }
    }
}

impl Nemesis for RoleNemesis {
    fn fs(&self) -> &[&'static str] {
        self.inner.fs()
    }

    fn invoke(&mut self, f: &str, value: &Value) -> Result<Value, NemesisError> {
        if self.track && self.roles.db.primaries().is_some() {
            self.roles.observe()?;
        }
        match self.concrete(f, value)? {
            None => self.inner.invoke(f, value),
            Some(concrete) => {
                let mut out = self.inner.invoke(f, &concrete)?;
                if let Value::Object(o) = &mut out {
                    o.insert("role".into(), value.clone());
                }
                Ok(out)
            }
        }
    }

    fn heal(&mut self) -> Result<(), NemesisError> {
        self.inner.heal()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use faultline_clusters::{ClusterError, Primaries};

    use super::*;
    use crate::process::tests::nodes;

    /// A database whose leader is whatever `leader` says.
    #[derive(Default)]
    pub(crate) struct Led {
        pub(crate) leader: Mutex<Option<String>>,
    }

    impl Db for Led {
        fn name(&self) -> &str {
            "led"
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
        fn primaries(&self) -> Option<&dyn Primaries> {
            Some(self)
        }
    }

    impl Primaries for Led {
        fn primaries(&self, _: &[Node]) -> Vec<String> {
            self.leader.lock().unwrap().iter().cloned().collect()
        }
    }

    /// A nemesis echoing what it was asked.
    struct Echo;

    impl Nemesis for Echo {
        fn fs(&self) -> &[&'static str] {
            &[KILL, START_PARTITION, START_STORM, "bump-clock"]
        }
        fn invoke(&mut self, f: &str, value: &Value) -> Result<Value, NemesisError> {
            Ok(json!({ "f": f, "value": value }))
        }
        fn heal(&mut self) -> Result<(), NemesisError> {
            Ok(())
        }
    }

    fn lead(db: &Led, name: &str) {
        *db.leader.lock().unwrap() = Some(name.to_string());
    }

    #[test]
    fn roles_resolve_to_the_nodes_holding_them() {
        let db = Arc::new(Led::default());
        let mut n = RoleNemesis::new(Box::new(Echo), Roles::new(db.clone(), nodes(5), 1));
        let asked =
            |n: &mut RoleNemesis, f: &str, v: Value| n.invoke(f, &v).unwrap()["value"].clone();
        lead(&db, "n2");
        assert_eq!(asked(&mut n, KILL, json!("leader")), json!(["n2"]));
        assert_eq!(
            asked(&mut n, KILL, json!("followers")),
            json!(["n1", "n3", "n4", "n5"])
        );
        // No leader before n2 was seen.
        assert_eq!(asked(&mut n, KILL, json!("previous-leader")), json!([]));
        lead(&db, "n4");
        assert_eq!(asked(&mut n, KILL, json!("previous-leader")), json!(["n2"]));
        let p = asked(&mut n, START_PARTITION, json!("minority-with-leader"));
        let sides = p["isolated"].as_array().unwrap();
        assert_eq!(sides[0].as_array().unwrap().len(), 2);
        assert!(sides[0].as_array().unwrap().contains(&json!("n4")));
        assert_eq!(sides[1].as_array().unwrap().len(), 3);
        assert_eq!(
            asked(&mut n, START_PARTITION, json!("previous-leader")),
            json!({"isolated": [["n2"], ["n1", "n3", "n4", "n5"]]})
        );
        assert_eq!(
            asked(&mut n, START_STORM, json!({"target": "leader"})),
            json!({"target": "primaries"})
        );
        assert_eq!(
            asked(
                &mut n,
                "bump-clock",
                json!({"node": "leader", "delta_ms": 5})
            ),
            json!({"node": "n4", "delta_ms": 5})
        );
        // Values without roles pass untouched, results say which role was asked.
        assert_eq!(asked(&mut n, KILL, json!("one")), json!("one"));
        assert_eq!(n.invoke(KILL, &json!("leader")).unwrap()["role"], "leader");
        *db.leader.lock().unwrap() = None;
        assert_eq!(
            asked(&mut n, START_PARTITION, json!("leader")),
            json!({"isolated": null})
        );
        assert!(n.invoke("bump-clock", &json!({"node": "leader"})).is_err());
        assert_eq!(n.roles.seen(), ["n2", "n4"]);
    }
}
