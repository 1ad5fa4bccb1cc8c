//! Faults on a [`DockerHost`] applied from the controller: network partitions as an nft
//! table inside the container's network namespace (the [`crate::nft`] engine through
//! [`Nsenter`], since the image has no nft), and signals with `docker kill --signal`.
//!
//! The table is recorded in the run's [`Registry`] before it is created, as
//! [`Resource::NftTable`] whose `netns` is `container:NAME` (see [`CONTAINER_NETNS`]),
//! which [`crate::cleanup::remove`] resolves to the container's current init pid.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use super::nsenter::{Nsenter, container_pid};
use super::{DockerError, DockerHost, docker_ok, local_run};
use crate::cleanup::Registry;
use crate::nft::{NetHost, NetHosts, NftNet, ruleset, table_name};
use crate::remote::{Remote, Signal};

/// The prefix of a [`Resource::NftTable`]'s `netns` naming a container's network
/// namespace rather than an `ip netns` one: `container:NAME`.
pub const CONTAINER_NETNS: &str = "container:";

/// Network faults for one container, applied from the controller through the nft
/// engine ([`crate::nft`]) in the container's namespace ([`Nsenter`]).
pub struct DockerNet {
    host: Arc<DockerHost>,
    nft: NftNet,
}

impl std::fmt::Debug for DockerNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerNet")
            .field("host", &self.host)
            .field("table", &self.nft.table())
            .finish()
    }
}

impl DockerNet {
    /// Faults for `host`, recording its table (`inet faultline_RUN`) in `registry`.
    pub fn new(host: Arc<DockerHost>, registry: Arc<Registry>) -> DockerNet {
        let run = registry.run();
        // Its own address names it in nobody's rules here: rulesets come with theirs.
        let ip = host
            .address()
            .parse()
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let hosts = NetHosts {
            hosts: vec![net_host(&host, ip, &registry)],
            registry: Some(registry),
            run: run.clone(),
            shapeable: true,
        };
        DockerNet {
            nft: NftNet::new(&hosts, table_name(&run), "net.nft"),
            host,
        }
    }

    /// The host.
    pub fn host(&self) -> &Arc<DockerHost> {
        &self.host
    }

    /// The nft table's name (family `inet`).
    pub fn table(&self) -> &str {
        self.nft.table()
    }

    /// Drops every packet from and to `addrs` in the container (both hooks, priority
    /// -10), replacing an earlier `drop_from`. An empty list heals.
    pub fn drop_from(&self, addrs: &[IpAddr]) -> Result<(), DockerError> {
        if addrs.is_empty() {
            return self.heal();
        }
        self.nft
            .install(0, &ruleset(self.table(), addrs, true))
            .map_err(|e| DockerError::Net(Box::new(e)))
    }

    /// Drops every packet *from* `addrs` arriving in the container (input hook only,
    /// priority -10), so that a one-way partition stays one-way; replaces an earlier
    /// `drop_from` or `drop_inbound_from`. An empty list heals.
    pub fn drop_inbound_from(&self, addrs: &[IpAddr]) -> Result<(), DockerError> {
        if addrs.is_empty() {
            return self.heal();
        }
        self.nft
            .install(0, &ruleset(self.table(), addrs, false))
            .map_err(|e| DockerError::Net(Box::new(e)))
    }

    /// Deletes the table (tolerating its absence, or the container's) and forgets it.
    pub fn heal(&self) -> Result<(), DockerError> {
        self.nft
            .uninstall(0)
            .map_err(|e| DockerError::Net(Box::new(e)))
    }

    /// The nft tables in the container's network namespace (`nft list tables`), one
    /// `FAMILY NAME` per entry.
    pub fn tables(&self) -> Result<Vec<String>, DockerError> {
        let pid = container_pid(self.host.container())?.ok_or_else(|| DockerError::Command {
            command: format!("docker inspect {}", self.host.container()),
            reason: "the container is not running".to_string(),
        })?;
        let out = local_run(
            "nsenter",
            ["-t", &pid.to_string(), "-n", "nft", "list", "tables"],
            20,
        )?;
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

/// How network faults reach `host` at `ip`: its namespace through [`Nsenter`], helper
/// files in the controller's temp directory, tables recorded as `container:NAME`.
pub(crate) fn net_host(host: &DockerHost, ip: IpAddr, registry: &Arc<Registry>) -> NetHost {
    let container = host.container();
    NetHost {
        name: host.host().to_string(),
        ip,
        net: Arc::new(Nsenter::new(container, Arc::clone(registry))),
        dir: std::env::temp_dir(),
        prefix: format!("{container}-{}-", std::process::id()),
        netns: Some(format!("{CONTAINER_NETNS}{container}")),
        upload_programs: false,
    }
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
