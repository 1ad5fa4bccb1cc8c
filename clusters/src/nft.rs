//! The one nft engine of every backend: rulesets loaded atomically with `nft -f`, one
//! table per node, through whatever [`Remote`] runs commands in the node's network
//! namespace (`ip netns exec` for local hosts, `nsenter` for containers, SSH for
//! machines). Partitions, packet loss and the container faults of
//! [`crate::docker::DockerNet`] are all built on it.
//!
//! A backend describes how to reach each node's namespace as a [`NetHost`]
//! ([`NetHosts`]: the hosts, the run's registry, whether interfaces can be shaped);
//! [`NftNet`] applies a table on each. A table that lives on the controller's machine
//! (namespaces, containers) is recorded in the run's [`Registry`] before it is created,
//! so teardown and `faultline clean` remove it; one on a remote machine is not, and its
//! user must heal it.

use std::fs;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::cleanup::{Registry, Resource};
use crate::db::Node;
use crate::error::ClusterError;
use crate::remote::{Cmd, Remote};

/// The nft family of every faultline table.
pub const FAMILY: &str = "inet";

/// How long one nft command may take.
const NFT_TIMEOUT: Duration = Duration::from_secs(20);

/// What `nft delete table` says when the table, or the namespace, is already gone.
const GONE: [&str; 2] = ["No such file", "Cannot open network namespace"];

/// An nft identifier from a run id: `faultline_RUN`, other characters as `_`.
pub fn table_name(run: &str) -> String {
    let run: String = run
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("faultline_{run}")
}

/// `addrs` as nft sets, one per family present: `("ip", "10.0.0.2, 10.0.0.3")`, then
/// `("ip6", …)`.
fn address_sets(addrs: &[IpAddr]) -> Vec<(&'static str, String)> {
    [("ip", false), ("ip6", true)]
        .into_iter()
        .filter_map(|(proto, v6)| {
            let set: Vec<String> = addrs
                .iter()
                .filter(|a| a.is_ipv6() == v6)
                .map(IpAddr::to_string)
                .collect();
            (!set.is_empty()).then(|| (proto, set.join(", ")))
        })
        .collect()
}

/// A filter chain on hook `hook` (`input` or `output`) at `priority`, accepting what
/// `rules` do not drop.
fn chain(hook: &str, priority: i32, rules: &str) -> String {
    format!(
        "  chain {hook} {{\n    type filter hook {hook} priority {priority}; policy accept;\n{rules}  }}\n"
    )
}

/// Table `table` holding `chains`, replacing any earlier version of it in one
/// transaction (`nft -f`): created empty if missing, deleted, created again.
fn replacing_table(table: &str, chains: &str) -> String {
    format!(
        "table {FAMILY} {table} {{}}\ndelete table {FAMILY} {table}\ntable {FAMILY} {table} {{\n{chains}}}\n"
    )
}

/// The ruleset of table `table` (family `inet`) dropping every packet from `addrs`
/// (input hook, priority -10) and, when `both_ways`, every packet to them (output hook),
/// replacing any earlier version of the table in one transaction (`nft -f`).
pub fn ruleset(table: &str, addrs: &[IpAddr], both_ways: bool) -> String {
    let sets = address_sets(addrs);
    let rules = |dir: &str| -> String {
        sets.iter()
            .map(|(proto, set)| format!("    {proto} {dir} {{ {set} }} drop\n"))
            .collect()
    };
    let mut chains = chain("input", -10, &rules("saddr"));
    if both_ways {
        chains.push_str(&chain("output", -10, &rules("daddr")));
    }
    replacing_table(table, &chains)
}

/// The ruleset that makes a node drop `loss` percent of the packets it receives from
/// `peers` (input hook, priority -5, after partitions), replacing any earlier version of
/// `table` in one transaction. The controller's traffic is never dropped.
pub fn loss_ruleset(table: &str, peers: &[IpAddr], loss: u64) -> String {
    // nft compares with the random number in 0..=99, so 100 % is a plain drop.
    let chance = if loss >= 100 {
        String::new()
    } else {
        format!("numgen random mod 100 < {loss} ")
    };
    let rules: String = address_sets(peers)
        .iter()
        .map(|(proto, set)| format!("    {proto} saddr {{ {set} }} {chance}drop\n"))
        .collect();
    replacing_table(table, &chain("input", -5, &rules))
}

/// How the controller reaches one node's network namespace, for network faults.
#[derive(Clone)]
pub struct NetHost {
    /// The node's name, e.g. `n1`.
    pub name: String,
    /// Its address, as its peers see it.
    pub ip: IpAddr,
    /// Runs commands inside the node's network namespace (nft, iptables, tc), starts
    /// helper daemons there (e.g. the packet delayer), and holds their files.
    pub net: Arc<dyn Remote>,
    /// Where helper files for this node go on `net`'s host; see [`NetHost::file`].
    pub dir: PathBuf,
    /// A prefix of those files' names (for hosts whose directory is shared, e.g. the
    /// controller's temp directory for containers), else empty.
    pub prefix: String,
    /// The `netns` of a [`Resource::NftTable`] in this namespace, when its tables are on
    /// the controller's machine (recorded before creation); `None` on remote machines.
    pub netns: Option<String>,
    /// Whether helper programs must be uploaded to `dir` first (remote machines), rather
    /// than run from the controller's filesystem.
    pub upload_programs: bool,
}

impl NetHost {
    /// The helper file `name` of this node, on `net`'s host: `DIR/PREFIXname`.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{}{name}", self.prefix))
    }

    /// A host reached through `node`'s own remote (SSH machines, or any remote whose
    /// commands run in the node's namespace): files in the node's directory, programs
    /// uploaded, tables not recorded. The address is parsed, or resolved here.
    pub fn remote(node: &Node) -> Result<NetHost, ClusterError> {
        Ok(NetHost {
            name: node.name.clone(),
            ip: resolve(&node.name, &node.addr)?,
            net: Arc::clone(&node.remote),
            dir: node.dir.clone(),
            prefix: String::new(),
            netns: None,
            upload_programs: true,
        })
    }
}

/// Every node's [`NetHost`], from a backend ([`crate::Backend::net`]).
#[derive(Clone)]
pub struct NetHosts {
    /// The nodes, `n1` first.
    pub hosts: Vec<NetHost>,
    /// The run's registry, where tables on the controller's machine are recorded
    /// (`None` when no host's tables are there).
    pub registry: Option<Arc<Registry>>,
    /// The run id, which names the tables ([`table_name`]).
    pub run: String,
    /// Whether each node's interface is `eth0` and may get a `tc` qdisc (local
    /// namespaces, containers), so bandwidth can be limited.
    pub shapeable: bool,
}

impl NetHosts {
    /// Hosts reached through their nodes' remotes ([`NetHost::remote`]), tables named
    /// after `run`, not recorded (they are not on the controller's machine).
    pub fn remote(nodes: &[Node], run: &str) -> Result<NetHosts, ClusterError> {
        Ok(NetHosts {
            hosts: nodes
                .iter()
                .map(NetHost::remote)
                .collect::<Result<_, _>>()?,
            registry: None,
            run: run.to_string(),
            shapeable: false,
        })
    }
}

/// The address `addr` of node `name` as an IP: parsed, or resolved on the controller.
pub fn resolve(name: &str, addr: &str) -> Result<IpAddr, ClusterError> {
    if let Ok(ip) = addr.parse() {
        return Ok(ip);
    }
    let bad = |message: String| ClusterError::Protocol {
        node: name.to_string(),
        message,
    };
    (addr, 0)
        .to_socket_addrs()
        .map_err(|e| bad(format!("cannot resolve its address {addr}: {e}")))?
        .next()
        .map(|s| s.ip())
        .ok_or_else(|| bad(format!("its address {addr} resolves to nothing")))
}

/// Runs `f` on every item in parallel; all the results, in order.
pub fn each<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let f = &f;
    thread::scope(|s| {
        let handles: Vec<_> = items.iter().map(|i| s.spawn(move || f(i))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// One table per node, named alike on every node, applied with nft.
pub struct NftNet {
    table: String,
    /// Where rulesets are written on each host before `nft -f`.
    file: String,
    registry: Option<Arc<Registry>>,
    hosts: Vec<NetHost>,
    /// Whether each node's table may exist (recorded, where it is recorded).
    installed: Vec<Mutex<bool>>,
}

impl NftNet {
    /// Tables named `table` on every host of `hosts`, rulesets written to each host's
    /// file `file` ([`NetHost::file`]) before being loaded.
    pub fn new(hosts: &NetHosts, table: String, file: &str) -> NftNet {
        NftNet {
            table,
            file: file.to_string(),
            registry: hosts.registry.clone(),
            installed: hosts.hosts.iter().map(|_| Mutex::new(false)).collect(),
            hosts: hosts.hosts.clone(),
        }
    }

    /// The table's name (family [`FAMILY`]).
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The hosts, in order.
    pub fn hosts(&self) -> &[NetHost] {
        &self.hosts
    }

    /// Installs `rulesets[i]` on node `i` (replacing its table in one transaction), or
    /// deletes its table where it is `None`; in parallel. Returns each node's result.
    pub fn apply(&self, rulesets: &[Option<String>]) -> Vec<Result<(), ClusterError>> {
        let work: Vec<(usize, &Option<String>)> = rulesets.iter().enumerate().collect();
        each(&work, |(i, ruleset)| match ruleset {
            Some(text) => self.install(*i, text),
            None => self.uninstall(*i),
        })
    }

    /// Deletes every table this net may have made; tolerates namespaces that are gone.
    pub fn heal(&self) -> Vec<Result<(), ClusterError>> {
        let indices: Vec<usize> = (0..self.hosts.len()).collect();
        each(&indices, |&i| self.uninstall(i))
    }

    /// The registry entry of `host`'s table, where it is recorded.
    fn resource(&self, host: &NetHost) -> Option<(&Registry, Resource)> {
        let registry = self.registry.as_deref()?;
        host.netns.as_ref().map(|netns| {
            (
                registry,
                Resource::NftTable {
                    family: FAMILY.to_string(),
                    name: self.table.clone(),
                    netns: Some(netns.clone()),
                },
            )
        })
    }

    /// Loads `text` on node `i`, recording its table first where it is recorded.
    pub fn install(&self, i: usize, text: &str) -> Result<(), ClusterError> {
        let (host, installed) = self.node(i)?;
        let mut installed = installed.lock().unwrap_or_else(|p| p.into_inner());
        if !*installed {
            if let Some((registry, resource)) = self.resource(host) {
                registry.record(resource)?;
            }
            *installed = true;
        }
        let local = std::env::temp_dir().join(format!(
            "{}-{}-{}.nft",
            self.table,
            host.name,
            std::process::id()
        ));
        let remote = host.file(&self.file);
        let write = fs::write(&local, text).map_err(|e| ClusterError::Command {
            node: host.name.clone(),
            command: format!("write {}", local.display()),
            reason: e.to_string(),
        });
        let uploaded =
            write.and_then(|()| host.net.upload(&local, &remote).map_err(ClusterError::from));
        let _ = fs::remove_file(&local);
        uploaded?;
        let path = remote.to_string_lossy().into_owned();
        let cmd = Cmd::new("nft").args(["-f", &path]).timeout(NFT_TIMEOUT);
        let out = host.net.run(&cmd);
        let _ = host
            .net
            .run(&Cmd::new("rm").args(["-f", &path]).timeout(NFT_TIMEOUT));
        let out = out?;
        if out.success() {
            return Ok(());
        }
        Err(ClusterError::Command {
            node: host.name.clone(),
            command: format!("{cmd} (table {FAMILY} {})", self.table),
            reason: out.stderr.trim().to_string(),
        })
    }

    /// Deletes node `i`'s table if it may exist, and forgets it.
    pub fn uninstall(&self, i: usize) -> Result<(), ClusterError> {
        let (host, installed) = self.node(i)?;
        let mut installed = installed.lock().unwrap_or_else(|p| p.into_inner());
        if !*installed {
            return Ok(());
        }
        let cmd = Cmd::new("nft")
            .args(["delete", "table", FAMILY, &self.table])
            .timeout(NFT_TIMEOUT);
        let out = host.net.run(&cmd)?;
        if !out.success() && !GONE.iter().any(|g| out.stderr.contains(g)) {
            return Err(ClusterError::Command {
                node: host.name.clone(),
                command: cmd.to_string(),
                reason: out.stderr.trim().to_string(),
            });
        }
        if let Some((registry, resource)) = self.resource(host) {
            let _ = registry.forget(&resource);
        }
        *installed = false;
        Ok(())
    }

    fn node(&self, i: usize) -> Result<(&NetHost, &Mutex<bool>), ClusterError> {
        match (self.hosts.get(i), self.installed.get(i)) {
            (Some(host), Some(installed)) => Ok((host, installed)),
            _ => Err(ClusterError::Config(format!(
                "no node {i} among the {} of table {}",
                self.hosts.len(),
                self.table
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_nft_identifiers() {
        assert_eq!(table_name("r-1.x"), "faultline_r_1_x");
        assert_eq!(table_name("ab-12"), "faultline_ab_12");
    }

    #[test]
    fn the_ruleset_drops_both_ways_and_replaces_the_table() {
        let addrs: Vec<IpAddr> = vec!["10.0.0.2".parse().unwrap(), "fd00::3".parse().unwrap()];
        let r = ruleset("faultline_t", &addrs, true);
        assert!(r.starts_with("table inet faultline_t {}\ndelete table inet faultline_t\n"));
        assert!(r.contains("ip saddr { 10.0.0.2 } drop"));
        assert!(r.contains("ip daddr { 10.0.0.2 } drop"));
        assert!(r.contains("ip6 saddr { fd00::3 } drop"));
        assert!(r.contains("type filter hook output priority -10;"));
    }

    #[test]
    fn the_inbound_ruleset_drops_only_what_comes_in() {
        let addrs: Vec<IpAddr> = vec!["10.0.0.2".parse().unwrap(), "fd00::3".parse().unwrap()];
        let r = ruleset("faultline_t", &addrs, false);
        assert!(r.starts_with("table inet faultline_t {}\ndelete table inet faultline_t\n"));
        assert!(r.contains("ip saddr { 10.0.0.2 } drop"));
        assert!(r.contains("ip6 saddr { fd00::3 } drop"));
        assert!(r.contains("type filter hook input priority -10; policy accept;"));
        assert!(!r.contains("daddr") && !r.contains("output"));
    }

    #[test]
    fn the_loss_ruleset_drops_a_share_of_peer_traffic_only() {
        let peers: Vec<IpAddr> = vec!["10.0.0.2".parse().unwrap(), "10.0.0.3".parse().unwrap()];
        let r = loss_ruleset("faultline_t_pkt", &peers, 20);
        assert!(
            r.starts_with("table inet faultline_t_pkt {}\ndelete table inet faultline_t_pkt\n")
        );
        assert!(r.contains("ip saddr { 10.0.0.2, 10.0.0.3 } numgen random mod 100 < 20 drop"));
        assert!(!r.contains("ip6"));
        assert!(r.contains("hook input priority -5"));
        let all = loss_ruleset("t", &peers, 100);
        assert!(
            all.contains("ip saddr { 10.0.0.2, 10.0.0.3 } drop"),
            "{all}"
        );
    }
}
