//! [`PowerNemesis`]: power loss. The targeted nodes crash and lose every write they had
//! not fsynced (through their database's [`PowerLoss`] capability, e.g. faultline-kv
//! with its data directories on `faultline-lazyfs`), then come back.

use std::sync::Arc;
use std::time::Duration;

use faultline_clusters::{Db, Node};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::error::NemesisError;
use crate::nemesis::{Nemesis, unknown_f};
use crate::process::{DEFAULT_READY_TIMEOUT, Discarded, on_each, restart, targets};

/// The `f` that cuts the power of nodes.
pub const POWER_LOSS: &str = "power-loss";
/// The `f` that brings every node without power back.
pub const POWER_ON: &str = "power-on";

/// The targets a `power-loss` with a null value draws from (as Jepsen's combined
/// nemeses do): a power loss may hit one machine or the whole cluster.
pub const POWER_TARGETS: [&str; 4] = ["one", "minority", "majority", "all"];

/// Cuts the power of nodes and brings them back:
///
/// - `power-loss` (a target as for `kill`: `"one"`, `"minority"`, `"majority"`,
///   `"all"`, `"primaries"`, or node names; null draws one of [`POWER_TARGETS`]):
///   SIGKILLs each targeted node, then rolls its files back to their last fsync.
///   Returns `{"target":…,"nodes":[…],"files":F,
///   "bytes":B,"lost":[{"node":"n1","files":1,"bytes":4096,"writes":12,
///   "truncations":0,"discarded":[…]},…]}`: exactly which nodes lost how many unsynced
///   bytes in which files.
/// - `power-on` (and [`Nemesis::heal`]): restarts every node that lost power and waits
///   until each serves. Returns `{"restarted":[…]}`.
pub struct PowerNemesis {
    db: Arc<dyn Db>,
    nodes: Vec<Node>,
    rng: ChaCha8Rng,
    down: Vec<String>,
    ready_timeout: Duration,
}

impl PowerNemesis {
    /// Cuts power among `nodes` of `db`, random choices drawn from a ChaCha8 RNG seeded
    /// with `seed`. An error naming the database if it cannot lose unsynced writes.
    pub fn new(db: Arc<dyn Db>, nodes: Vec<Node>, seed: u64) -> Result<PowerNemesis, NemesisError> {
        if db.power_loss().is_none() {
            return Err(NemesisError::Unsupported {
                db: db.name().to_string(),
                capability: "power-loss",
                nemesis: "power nemesis",
            });
        }
        Ok(PowerNemesis {
            db,
            nodes,
            rng: ChaCha8Rng::seed_from_u64(seed),
            down: Vec::new(),
            ready_timeout: DEFAULT_READY_TIMEOUT,
        })
    }

    /// How long a restarted node has to serve again.
    pub fn ready_timeout(mut self, timeout: Duration) -> PowerNemesis {
        self.ready_timeout = timeout;
        self
    }

    /// The nodes without power, in node order.
    pub fn down(&self) -> &[String] {
        &self.down
    }

    fn power_loss(&mut self, value: &Value) -> Result<Value, NemesisError> {
        let value = match value {
            Value::Null => {
                let i = self.rng.random_range(0..POWER_TARGETS.len());
                Value::from(POWER_TARGETS[i])
            }
            v => v.clone(),
        };
        let chosen = targets(POWER_LOSS, &value, &*self.db, &self.nodes, &mut self.rng)?;
        let nodes: Vec<&Node> = chosen.iter().map(|i| &self.nodes[*i]).collect();
        let db = &*self.db;
        let discarded = Discarded::default();
        let (done, result) = on_each(&nodes, |node| discarded.crash(db, node));
        // A node killed but not rolled back is down too: bring it back at power-on.
        for node in &nodes {
            if !self.down.contains(&node.name) {
                self.down.push(node.name.clone());
            }
        }
        let order = |name: &String| self.nodes.iter().position(|n| &n.name == name);
        self.down.sort_by_key(order);
        result?;
        let lost = discarded.in_order(&self.nodes);
        let total = |key: &str| lost.iter().filter_map(|l| l[key].as_u64()).sum::<u64>();
        Ok(json!({
            "target": value,
            "nodes": done,
            "files": total("files"),
            "bytes": total("bytes"),
            "lost": lost,
        }))
    }

    fn power_on(&mut self) -> Result<Vec<String>, NemesisError> {
        restart(&*self.db, &self.nodes, &mut self.down, self.ready_timeout)
    }
}

impl Nemesis for PowerNemesis {
    fn fs(&self) -> &[&'static str] {
        &[POWER_LOSS, POWER_ON]
    }

    fn invoke(&mut self, f: &str, value: &Value) -> Result<Value, NemesisError> {
        match f {
            POWER_LOSS => self.power_loss(value),
            POWER_ON => Ok(json!({ "restarted": self.power_on()? })),
            _ => Err(unknown_f(f, self.fs())),
        }
    }

    fn heal(&mut self) -> Result<(), NemesisError> {
        self.power_on().map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::tests::{Plain, nodes};

    #[test]
    fn power_loss_needs_the_capability() {
        let err = PowerNemesis::new(Arc::new(Plain), nodes(1), 1)
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "database plain has no power-loss capability; cannot build a power nemesis"
        );
    }
}
