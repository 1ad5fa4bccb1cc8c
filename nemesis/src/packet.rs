//! [`PacketNemesis`]: packet loss between nodes (nft `numgen random` drops, one table
//! per node, like the partitions of [`crate::net`]), delay with jitter (a userspace
//! delayer on an NFQUEUE, see [`crate::delay`], since `tc netem` does not exist on the
//! project's kernels) and bandwidth limits (a `tbf` qdisc on the node's `eth0`, local
//! namespaces and containers).

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use faultline_clusters::Cmd;
use faultline_clusters::nft::{NetHost, NetHosts, NftNet, loss_ruleset, table_name};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

use crate::delay::{DelaySpec, Delayers};
use crate::delayer::Distribution;
use crate::error::{NemesisError, collect};
use crate::nemesis::{Nemesis, unknown_f};
use crate::net::{all, each};

/// The `f` that starts (or replaces) packet faults.
pub const START_PACKET: &str = "start-packet";
/// The `f` that lifts every packet fault.
pub const STOP_PACKET: &str = "stop-packet";
/// The loss percentages a null `start-packet` value chooses among.
pub const LOSSES: [u64; 4] = [5, 10, 20, 50];
/// The delays (ms) a null `start-packet` value chooses among, with a uniform jitter of
/// half the delay (which reorders packets).
pub const DELAYS_MS: [u64; 4] = [10, 50, 100, 200];
/// The bandwidth limits a null `start-packet` value chooses among.
pub const RATES: [&str; 3] = ["256kbit", "1mbit", "10mbit"];
/// The longest delay or jitter a `start-packet` accepts, in ms.
pub const MAX_DELAY_MS: u64 = 10_000;

/// How long one `tc` command may take.
const TC_TIMEOUT: Duration = Duration::from_secs(20);

/// Whether `rate` is a tc rate: digits then `bit`, `kbit`, `mbit`, `gbit`, `bps`,
/// `kbps`, `mbps` or `gbps`.
fn valid_rate(rate: &str) -> bool {
    let digits = rate.chars().take_while(char::is_ascii_digit).count();
    let unit = &rate[digits..];
    digits > 0
        && rate[..digits].parse::<u64>().is_ok_and(|n| n > 0)
        && ["bit", "kbit", "mbit", "gbit", "bps", "kbps", "mbps", "gbps"].contains(&unit)
}

/// What one `start-packet` asks for.
struct Plan {
    loss: Option<u64>,
    rate: Option<String>,
    delay: Option<DelaySpec>,
    /// Indices of the nodes, in node order.
    nodes: Vec<usize>,
}

/// Degrades the network (Jepsen's packet nemesis, without netem): `start-packet`
/// replaces the current packet faults, `stop-packet` lifts them all.
///
/// Values of `start-packet`: an object with
/// - `loss` (percent, 1 to 100: each targeted node drops that share of the packets it
///   receives from the other nodes),
/// - `delay_ms` (each targeted node holds every packet it receives from the other
///   nodes for that long, 1 to 10 000; needs [`PacketNemesis::delayer`]), with
///   optional `jitter_ms` (0 to 10 000, default 0: the hold is drawn from `delay_ms ±
///   jitter_ms`, which reorders packets) and `distribution` (`"uniform"`, the default,
///   or `"normal"` with `jitter_ms` as standard deviation),
/// - `rate` (a `tbf` bandwidth limit on the node's outbound traffic, e.g. `"1mbit"`;
///   local namespaces and containers only),
/// - `nodes` (the targeted node names; all by default),
///
/// with at least one of `loss`, `delay_ms` and `rate`; or null: one kind of fault on
/// every node, picked at random among those available: a loss among [`LOSSES`], a delay
/// among [`DELAYS_MS`] with a uniform jitter of half of it, or a rate among [`RATES`].
/// The value returned says exactly what was done, e.g.
/// `{"delay_ms":50,"jitter_ms":25,"distribution":"uniform","nodes":["n1","n2","n3"]}`.
/// The controller's traffic (clients, SSH, `nft` itself) is never dropped nor delayed,
/// so faults always heal.
pub struct PacketNemesis {
    net: NftNet,
    hosts: Vec<NetHost>,
    /// Whether nodes are namespaces whose interface is `eth0` (bandwidth limits).
    shapeable: bool,
    shaped: Vec<Mutex<bool>>,
    rng: ChaCha8Rng,
    delayers: Option<Delayers>,
}

impl PacketNemesis {
    /// Packet faults on every node of `hosts` (a backend's [`NetHosts`]): tables `inet
    /// faultline_RUN_pkt` (recorded in the run's registry before they are created where
    /// they are on the controller's machine, so teardown removes them; on remote machines
    /// the nemesis's heal does); bandwidth limits where the backend allows them (qdiscs
    /// go away with namespaces and containers). Random choices from a ChaCha8 RNG seeded
    /// with `seed`.
    pub fn new(hosts: &NetHosts, seed: u64) -> PacketNemesis {
        let table = format!("{}_pkt", table_name(&hosts.run));
        PacketNemesis {
            net: NftNet::new(hosts, table, "packet.nft"),
            shaped: hosts.hosts.iter().map(|_| Mutex::new(false)).collect(),
            hosts: hosts.hosts.clone(),
            shapeable: hosts.shapeable,
            rng: ChaCha8Rng::seed_from_u64(seed),
            delayers: None,
        }
    }

    /// Enables delays, with `program`, the `faultline-delayer` binary on the controller
    /// (started in each node's network namespace: directly on local hosts, through
    /// `nsenter` for containers, uploaded to the node's directory on SSH hosts). It needs
    /// root and iptables where it runs.
    pub fn delayer(mut self, program: impl Into<PathBuf>) -> PacketNemesis {
        self.delayers = Some(Delayers::new(&self.hosts, program.into()));
        self
    }

    /// The nft table's name (family `inet`), the same on every node.
    pub fn table(&self) -> &str {
        self.net.table()
    }

    fn plan(&mut self, value: &Value) -> Result<Plan, NemesisError> {
        let all: Vec<usize> = (0..self.hosts.len()).collect();
        let bad = |why: &str| NemesisError::BadValue {
            f: START_PACKET.to_string(),
            value: value.to_string(),
            expected: format!(
                "null or an object with `loss` (percent, 1 to 100), `delay_ms` (1 to {MAX_DELAY_MS}{}) \
                 with optional `jitter_ms` and `distribution` (uniform or normal), `rate` (e.g. \
                 \"1mbit\"{}) and optionally `nodes` (node names){why}",
                if self.delayers.is_some() {
                    ""
                } else {
                    "; no delayer given"
                },
                if self.shapeable {
                    ""
                } else {
                    "; not on these hosts"
                }
            ),
        };
        let object = match value {
            Value::Null => {
                let mut plan = Plan {
                    loss: None,
                    rate: None,
                    delay: None,
                    nodes: all,
                };
                let mut kinds = vec!["loss"];
                if self.delayers.is_some() {
                    kinds.push("delay");
                }
                if self.shapeable {
                    kinds.push("rate");
                }
                match kinds[self.rng.random_range(0..kinds.len())] {
                    "delay" => {
                        let delay_ms = DELAYS_MS[self.rng.random_range(0..DELAYS_MS.len())];
                        plan.delay = Some(DelaySpec {
                            delay_ms,
                            jitter_ms: delay_ms / 2,
                            distribution: Distribution::Uniform,
                        });
                    }
                    "rate" => {
                        plan.rate = Some(RATES[self.rng.random_range(0..RATES.len())].to_string())
                    }
                    _ => plan.loss = Some(LOSSES[self.rng.random_range(0..LOSSES.len())]),
                }
                return Ok(plan);
            }
            Value::Object(o) => o,
            _ => return Err(bad("")),
        };
        const KEYS: [&str; 6] = [
            "loss",
            "rate",
            "delay_ms",
            "jitter_ms",
            "distribution",
            "nodes",
        ];
        if let Some(key) = object.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(bad(&format!("; unknown key `{key}`")));
        }
        let loss = match object.get("loss") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(n) if (1..=100).contains(&n) => Some(n),
                _ => return Err(bad("; `loss` must be an integer from 1 to 100")),
            },
        };
        let rate = match object.get("rate") {
            None | Some(Value::Null) => None,
            Some(Value::String(r)) if valid_rate(r) && self.shapeable => Some(r.clone()),
            Some(_) => return Err(bad("; bad `rate`")),
        };
        let ms = |key: &str, min: u64| match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if (min..=MAX_DELAY_MS).contains(&n) => Ok(Some(n)),
                _ => Err(bad(&format!(
                    "; `{key}` must be an integer from {min} to {MAX_DELAY_MS}"
                ))),
            },
        };
        let delay_ms = ms("delay_ms", 1)?;
        let jitter_ms = ms("jitter_ms", 0)?;
        let distribution = match object.get("distribution") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_str()
                    .and_then(Distribution::from_name)
                    .ok_or_else(|| bad("; `distribution` must be \"uniform\" or \"normal\""))?,
            ),
        };
        let delay = match delay_ms {
            None if jitter_ms.is_some() || distribution.is_some() => {
                return Err(bad("; `jitter_ms` and `distribution` need `delay_ms`"));
            }
            None => None,
            Some(_) if self.delayers.is_none() => {
                return Err(bad("; delays need a delayer program"));
            }
            Some(delay_ms) => Some(DelaySpec {
                delay_ms,
                jitter_ms: jitter_ms.unwrap_or(0),
                distribution: distribution.unwrap_or(Distribution::Uniform),
            }),
        };
        if loss.is_none() && rate.is_none() && delay.is_none() {
            return Err(bad("; give `loss`, `delay_ms` or `rate`"));
        }
        let nodes = match object.get("nodes") {
            None | Some(Value::Null) => all,
            Some(Value::Array(names)) => {
                let mut chosen = Vec::new();
                for name in names {
                    let i = name
                        .as_str()
                        .and_then(|name| self.hosts.iter().position(|n| n.name == name))
                        .ok_or_else(|| bad(&format!("; unknown node {name}")))?;
                    chosen.push(i);
                }
                chosen.sort_unstable();
                chosen.dedup();
                chosen
            }
            Some(_) => return Err(bad("; `nodes` must be an array of node names")),
        };
        Ok(Plan {
            loss,
            rate,
            delay,
            nodes,
        })
    }

    /// Sets (`Some`) or removes (`None`) node `i`'s bandwidth limit.
    fn shape(&self, i: usize, rate: Option<&str>) -> Result<(), NemesisError> {
        let node = &self.hosts[i];
        let mut shaped = self.shaped[i].lock().unwrap_or_else(|p| p.into_inner());
        let cmd = match rate {
            Some(rate) => Cmd::new("tc").args([
                "qdisc", "replace", "dev", "eth0", "root", "tbf", "rate", rate, "burst", "32kbit",
                "latency", "400ms",
            ]),
            None if !*shaped => return Ok(()),
            None => Cmd::new("tc").args(["qdisc", "del", "dev", "eth0", "root"]),
        }
        .timeout(TC_TIMEOUT);
        let out = node.net.run(&cmd)?;
        const GONE: [&str; 4] = [
            "handle of zero",
            "No such file",
            "Cannot find device",
            "Cannot open network namespace",
        ];
        if !out.success() && (rate.is_some() || !GONE.iter().any(|g| out.stderr.contains(g))) {
            return Err(NemesisError::Command {
                node: node.name.clone(),
                command: cmd.to_string(),
                reason: out.stderr.trim().to_string(),
            });
        }
        *shaped = rate.is_some();
        Ok(())
    }

    fn start(&mut self, value: &Value) -> Result<Value, NemesisError> {
        let plan = self.plan(value)?;
        let peers: Vec<Vec<IpAddr>> = (0..self.hosts.len())
            .map(|i| {
                self.hosts
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, n)| n.ip)
                    .collect()
            })
            .collect();
        let rulesets: Vec<Option<String>> = (0..self.hosts.len())
            .map(|i| {
                let loss = plan.loss.filter(|_| plan.nodes.contains(&i))?;
                Some(loss_ruleset(self.net.table(), &peers[i], loss))
            })
            .collect();
        if let Some(delayers) = &self.delayers {
            let seeds: Vec<u64> = (0..self.hosts.len()).map(|_| self.rng.random()).collect();
            delayers.apply(plan.delay, &plan.nodes, &peers, &seeds)?;
        }
        all(self.net.apply(&rulesets))?;
        let indices: Vec<usize> = (0..self.hosts.len()).collect();
        let rate = plan.rate.as_deref();
        collect(each(&indices, |&i| {
            self.shape(i, rate.filter(|_| plan.nodes.contains(&i)))
        }))?;
        let mut out = Map::new();
        if let Some(loss) = plan.loss {
            out.insert("loss".into(), json!(loss));
        }
        if let Some(d) = &plan.delay {
            out.insert("delay_ms".into(), json!(d.delay_ms));
            out.insert("jitter_ms".into(), json!(d.jitter_ms));
            out.insert("distribution".into(), json!(d.distribution.name()));
        }
        if let Some(rate) = &plan.rate {
            out.insert("rate".into(), json!(rate));
        }
        let names: Vec<&str> = plan
            .nodes
            .iter()
            .map(|&i| self.hosts[i].name.as_str())
            .collect();
        out.insert("nodes".into(), json!(names));
        Ok(Value::Object(out))
    }

    fn stop(&self) -> Result<(), NemesisError> {
        let indices: Vec<usize> = (0..self.hosts.len()).collect();
        let shaping = collect(each(&indices, |&i| self.shape(i, None)));
        let delays = self.delayers.as_ref().map_or(Ok(()), Delayers::heal);
        collect(vec![all(self.net.heal()), delays, shaping])
    }
}

impl Nemesis for PacketNemesis {
    fn fs(&self) -> &[&'static str] {
        &[START_PACKET, STOP_PACKET]
    }

    fn invoke(&mut self, f: &str, value: &Value) -> Result<Value, NemesisError> {
        match f {
            START_PACKET => self.start(value),
            STOP_PACKET => {
                self.stop()?;
                Ok(json!("packets-healed"))
            }
            _ => Err(unknown_f(f, self.fs())),
        }
    }

    fn heal(&mut self) -> Result<(), NemesisError> {
        self.stop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_checked() {
        for good in ["1mbit", "512kbit", "10mbps", "100bit"] {
            assert!(valid_rate(good), "{good}");
        }
        for bad in ["", "mbit", "0mbit", "1 mbit", "1mb", "-1mbit", "1.5mbit"] {
            assert!(!valid_rate(bad), "{bad}");
        }
    }
}
