//! Faults on a [`DockerHost`] applied from the controller: network partitions as an nft
//! table inside the container's network namespace (`nsenter -t PID -n nft`, run on the
//! host, since the image has no nft), and signals with `docker kill --signal`.
//!
//! The table is recorded in the run's [`Registry`] before it is created, as
//! [`Resource::NftTable`] whose `netns` is `container:NAME` (see [`CONTAINER_NETNS`]),
//! which [`crate::cleanup::remove`] resolves to the container's current init pid.

use std::fs;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use super::{DockerError, DockerHost, docker, docker_ok, local_run};
use crate::cleanup::{Registry, Resource};
use crate::remote::Signal;

/// The prefix of a [`Resource::NftTable`]'s `netns` naming a container's network
/// namespace rather than an `ip netns` one: `container:NAME`.
pub const CONTAINER_NETNS: &str = "container:";

/// The nft family of partition tables.
const FAMILY: &str = "inet";

/// The init pid of the running container `container` (`docker inspect`), `None` if the
/// container does not exist or is not running.
pub fn container_pid(container: &str) -> Result<Option<u32>, DockerError> {
    let out = docker(["inspect", "--format", "{{.State.Pid}}", container], 30)?;
    if !out.success() {
        if out.stderr.contains("No such") {
            return Ok(None);
        }
        return Err(DockerError::Command {
            command: format!("docker inspect {container}"),
            reason: out.stderr.trim().to_string(),
        });
    }
    Ok(out
        .stdout
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|pid| *pid != 0))
}

/// An nft identifier from a run id: `faultline_RUN`, other characters as `_`.
pub fn table_name(run: &str) -> String {
    let run: String = run
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("faultline_{run}")
}

/// The ruleset of table `table` (family `inet`) dropping every packet from `addrs`
/// (input hook, priority -10) and, when `both_ways`, every packet to them (output hook),
/// replacing any earlier version of the table in one transaction (`nft -f`).
pub fn ruleset(table: &str, addrs: &[IpAddr], both_ways: bool) -> String {
    let mut input = String::new();
    let mut output = String::new();
    for (proto, v6) in [("ip", false), ("ip6", true)] {
        let set: Vec<String> = addrs
            .iter()
            .filter(|a| a.is_ipv6() == v6)
            .map(IpAddr::to_string)
            .collect();
        if !set.is_empty() {
            let set = set.join(", ");
            input.push_str(&format!("    {proto} saddr {{ {set} }} drop\n"));
            output.push_str(&format!("    {proto} daddr {{ {set} }} drop\n"));
        }
    }
    let hook = |name: &str, rules: &str| {
        format!(
            "  chain {name} {{\n    type filter hook {name} priority -10; policy accept;\n{rules}  }}\n"
        )
    };
    let mut chains = hook("input", &input);
    if both_ways {
        chains.push_str(&hook("output", &output));
    }
    format!(
        "table {FAMILY} {table} {{}}\ndelete table {FAMILY} {table}\ntable {FAMILY} {table} {{\n{chains}}}\n"
    )
}

/// Network faults for one container, applied from the controller.
#[derive(Debug)]
pub struct DockerNet {
    host: Arc<DockerHost>,
    registry: Arc<Registry>,
    table: String,
    /// Whether the table is recorded in the registry (and may exist).
    recorded: Mutex<bool>,
}

impl DockerNet {
    /// Faults for `host`, recording its table (`inet faultline_RUN`) in `registry`.
    pub fn new(host: Arc<DockerHost>, registry: Arc<Registry>) -> DockerNet {
        let table = table_name(&registry.run());
        DockerNet {
            host,
            registry,
            table,
            recorded: Mutex::new(false),
        }
    }

    /// The host.
    pub fn host(&self) -> &Arc<DockerHost> {
        &self.host
    }

    /// The nft table's name (family `inet`).
    pub fn table(&self) -> &str {
        &self.table
    }

    fn resource(&self) -> Resource {
        Resource::NftTable {
            family: FAMILY.to_string(),
            name: self.table.clone(),
            netns: Some(format!("{CONTAINER_NETNS}{}", self.host.container())),
        }
    }

    fn pid(&self) -> Result<u32, DockerError> {
        container_pid(self.host.container())?.ok_or_else(|| DockerError::Command {
            command: format!("docker inspect {}", self.host.container()),
            reason: "the container is not running".to_string(),
        })
    }

    /// Drops every packet from and to `addrs` in the container (both hooks, priority
    /// -10), replacing an earlier `drop_from`. An empty list heals.
    pub fn drop_from(&self, addrs: &[IpAddr]) -> Result<(), DockerError> {
        if addrs.is_empty() {
            return self.heal();
        }
        self.install(ruleset(&self.table, addrs, true))
    }

    /// Drops every packet *from* `addrs` arriving in the container (input hook only,
    /// priority -10), so that a one-way partition stays one-way; replaces an earlier
    /// `drop_from` or `drop_inbound_from`. An empty list heals.
    pub fn drop_inbound_from(&self, addrs: &[IpAddr]) -> Result<(), DockerError> {
        if addrs.is_empty() {
            return self.heal();
        }
        self.install(ruleset(&self.table, addrs, false))
    }

    /// Records the table if needed, then loads `rules` with `nft -f` in the container.
    fn install(&self, rules: String) -> Result<(), DockerError> {
        let pid = self.pid()?;
        let mut recorded = self.recorded.lock().unwrap_or_else(|p| p.into_inner());
        if !*recorded {
            let resource = self.resource();
            self.registry
                .record(resource.clone())
                .map_err(|e| DockerError::Record {
                    resource: resource.to_string(),
                    reason: e.to_string(),
                })?;
            *recorded = true;
        }
        let file = std::env::temp_dir().join(format!(
            "{}-{}-{}.nft",
            self.table,
            self.host.container(),
            std::process::id()
        ));
        fs::write(&file, rules).map_err(|e| DockerError::file("write", &file, e))?;
        let result = nsenter_nft(
            pid,
            &[String::from("-f"), file.to_string_lossy().into_owned()],
        );
        let _ = fs::remove_file(&file);
        let out = result?;
        if out.success() {
            return Ok(());
        }
        Err(DockerError::Command {
            command: format!(
                "nsenter -t {pid} -n nft -f (table {FAMILY} {}) for {}",
                self.table,
                self.host.container()
            ),
            reason: out.stderr.trim().to_string(),
        })
    }

    /// Deletes the table (tolerating its absence, or the container's) and forgets it.
    pub fn heal(&self) -> Result<(), DockerError> {
        let mut recorded = self.recorded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pid) = container_pid(self.host.container())? {
            let args = ["delete", "table", FAMILY, self.table.as_str()].map(String::from);
            let out = nsenter_nft(pid, &args)?;
            if !out.success() && !out.stderr.contains("No such file") {
                return Err(DockerError::Command {
                    command: format!(
                        "nsenter -t {pid} -n nft delete table {FAMILY} {} for {}",
                        self.table,
                        self.host.container()
                    ),
                    reason: out.stderr.trim().to_string(),
                });
            }
        }
        if *recorded {
            let _ = self.registry.forget(&self.resource());
            *recorded = false;
        }
        Ok(())
    }

    /// The nft tables in the container's network namespace (`nft list tables`), one
    /// `FAMILY NAME` per entry.
    pub fn tables(&self) -> Result<Vec<String>, DockerError> {
        let pid = self.pid()?;
        let out = nsenter_nft(pid, &["list", "tables"].map(String::from))?;
        if !out.success() {
            return Err(DockerError::Command {
                command: format!("nsenter -t {pid} -n nft list tables"),
                reason: out.stderr.trim().to_string(),
            });
        }
        Ok(out
            .stdout
            .lines()
            .filter_map(|l| l.trim().strip_prefix("table "))
            .map(str::to_string)
            .collect())
    }
}

/// Runs `nsenter -t PID -n nft ARGS…` on the controller.
fn nsenter_nft(pid: u32, args: &[String]) -> Result<crate::remote::Output, DockerError> {
    let mut argv = vec![
        "-t".to_string(),
        pid.to_string(),
        "-n".to_string(),
        "nft".to_string(),
    ];
    argv.extend(args.iter().cloned());
    local_run("nsenter", argv, 20)
}

/// `docker kill --signal NAME`'s name for `signal`.
fn signal_name(signal: Signal) -> &'static str {
    match signal {
        Signal::Kill => "KILL",
        Signal::Term => "TERM",
        Signal::Int => "INT",
        Signal::Hup => "HUP",
        Signal::Stop => "STOP",
        Signal::Cont => "CONT",
    }
}

impl DockerHost {
    /// Sends `signal` to the container's main process (`docker kill --signal`); that is
    /// the image's idle PID 1, so `Kill` and `Term` stop the whole container with
    /// every node process in it.
    pub fn kill(&self, signal: Signal) -> Result<(), DockerError> {
        docker_ok(
            &["kill", "--signal", signal_name(signal), self.container()],
            30,
        )
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_nft_identifiers() {
        assert_eq!(table_name("r-1.x"), "faultline_r_1_x");
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
        let addrs: Vec<IpAddr> = vec!["10.0.0.2".parse().unwrap()];
        let r = ruleset("faultline_t", &addrs, false);
        assert!(r.starts_with("table inet faultline_t {}\ndelete table inet faultline_t\n"));
        assert!(r.contains("ip saddr { 10.0.0.2 } drop"));
        assert!(!r.contains("daddr") && !r.contains("output"));
    }
}
