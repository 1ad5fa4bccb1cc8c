//! Packet delay for the packet nemesis: per node, a `faultline-delayer` daemon bound to
//! NFQUEUE [`QUEUE`] in the node's network namespace, fed by an iptables chain
//! `FAULTLINE_DELAY` (jumped to from `INPUT`) that queues the packets coming from the
//! other nodes, with `--queue-bypass` so that packets flow when no delayer is bound.
//!
//! iptables rather than nft: the project's kernels have no `nft_queue` expression, but
//! iptables-nft's `NFQUEUE` target works through nft's xtables compatibility.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use faultline_clusters::nft::NetHost;
use faultline_clusters::{Cmd, DaemonSpec, Remote, Signal};

use crate::delayer::{Distribution, QUEUE};
use crate::error::{NemesisError, collect};
use crate::net::each;

/// The iptables chain holding the queue rules.
pub const CHAIN: &str = "FAULTLINE_DELAY";
/// How long one iptables command may take.
const IPTABLES_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a delayer has to bind its queue, or to exit when asked.
const DAEMON_TIMEOUT: Duration = Duration::from_secs(5);

/// What each targeted node does to the packets it receives from the other nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DelaySpec {
    pub(crate) delay_ms: u64,
    pub(crate) jitter_ms: u64,
    pub(crate) distribution: Distribution,
}

/// One node's delayer.
struct DelayNode {
    name: String,
    /// Runs commands in the node's network namespace (iptables), starts, signals and
    /// reads the files of the delayer there.
    net: Arc<dyn Remote>,
    /// The program on the controller, to upload first, when it is not on the host.
    upload_from: Option<PathBuf>,
    /// The program, on the node's host.
    program: PathBuf,
    pid_file: PathBuf,
    log_file: PathBuf,
    /// Whether its chain or daemon may exist.
    active: Mutex<bool>,
}

/// The delayers of every node of a cluster.
pub(crate) struct Delayers {
    nodes: Vec<DelayNode>,
}

fn command_error(node: &str, command: String, reason: impl Into<String>) -> NemesisError {
    NemesisError::Command {
        node: node.to_string(),
        command,
        reason: reason.into(),
    }
}

impl Delayers {
    /// A delayer per host of `hosts`: `program` (on the controller) run in each node's
    /// network namespace through its [`NetHost::net`] (recorded in the run's registry
    /// where that host records its daemons), uploaded first where the backend says so;
    /// pid and log files are the host's `delayer.pid` and `delayer.log`.
    pub(crate) fn new(hosts: &[NetHost], program: PathBuf) -> Delayers {
        let nodes = hosts
            .iter()
            .map(|h| DelayNode {
                name: h.name.clone(),
                net: Arc::clone(&h.net),
                upload_from: h.upload_programs.then(|| program.clone()),
                program: if h.upload_programs {
                    h.file("faultline-delayer")
                } else {
                    program.clone()
                },
                pid_file: h.file("delayer.pid"),
                log_file: h.file("delayer.log"),
                active: Mutex::new(false),
            })
            .collect();
        Delayers { nodes }
    }

    /// Puts `spec` in place on the nodes `targets` (indices), each with the addresses of
    /// its peers and its own seed; removes delays from every other node. In parallel.
    pub(crate) fn apply(
        &self,
        spec: Option<DelaySpec>,
        targets: &[usize],
        peers: &[Vec<IpAddr>],
        seeds: &[u64],
    ) -> Result<(), NemesisError> {
        let indices: Vec<usize> = (0..self.nodes.len()).collect();
        collect(each(&indices, |&i| {
            let node = &self.nodes[i];
            self.stop_node(node)?;
            match spec {
                Some(spec) if targets.contains(&i) => {
                    self.start_node(node, spec, &peers[i], seeds[i])
                }
                _ => Ok(()),
            }
        }))
    }

    /// Removes every delay: rules first (so nothing new is queued), then the daemons,
    /// which release what they hold. Tolerates nodes that are gone.
    pub(crate) fn heal(&self) -> Result<(), NemesisError> {
        collect(each(&self.nodes, |node| self.stop_node(node)))
    }

    fn start_node(
        &self,
        node: &DelayNode,
        spec: DelaySpec,
        peers: &[IpAddr],
        seed: u64,
    ) -> Result<(), NemesisError> {
        let mut active = node.active.lock().unwrap_or_else(|p| p.into_inner());
        *active = true;
        if let Some(local) = &node.upload_from {
            node.net.upload(local, &node.program)?;
        }
        let log = node.log_file.to_string_lossy().into_owned();
        let _ = node
            .net
            .run(&Cmd::new("rm").args(["-f", &log]).timeout(IPTABLES_TIMEOUT));
        let args = [
            "--queue".to_string(),
            QUEUE.to_string(),
            "--delay-ms".into(),
            spec.delay_ms.to_string(),
            "--jitter-ms".into(),
            spec.jitter_ms.to_string(),
            "--distribution".into(),
            spec.distribution.name().into(),
            "--seed".into(),
            seed.to_string(),
        ];
        let program = node.program.to_string_lossy().into_owned();
        let cmd = Cmd::new(program).args(args);
        let spec_line = cmd.to_string();
        node.net
            .start_daemon(&DaemonSpec::new(cmd, &node.pid_file, &node.log_file))?;
        // Wait until it has bound the queue (its first line), or has failed.
        let deadline = Instant::now() + DAEMON_TIMEOUT;
        loop {
            let text = node
                .net
                .run(&Cmd::new("cat").arg(&log).timeout(IPTABLES_TIMEOUT))
                .map(|o| o.stdout)
                .unwrap_or_default();
            if text.contains("bound queue") {
                break;
            }
            if !node.net.is_running(&node.pid_file)? || Instant::now() >= deadline {
                return Err(command_error(
                    &node.name,
                    spec_line,
                    format!("the delayer did not bind its queue: {}", text.trim()),
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
        let v4: Vec<String> = peers
            .iter()
            .filter(|a| a.is_ipv4())
            .map(IpAddr::to_string)
            .collect();
        let script = format!(
            "iptables -w -N {CHAIN} 2>/dev/null; iptables -w -F {CHAIN} || exit 1; \
             for p in \"$@\"; do iptables -w -A {CHAIN} -s \"$p\" -j NFQUEUE --queue-num {QUEUE} \
             --queue-bypass || exit 1; done; \
             iptables -w -C INPUT -j {CHAIN} 2>/dev/null || iptables -w -I INPUT -j {CHAIN}"
        );
        let cmd = Cmd::new("sh")
            .args(["-c", &script, "sh"])
            .args(v4)
            .timeout(IPTABLES_TIMEOUT);
        let out = node.net.run(&cmd)?;
        if !out.success() {
            return Err(command_error(
                &node.name,
                format!("iptables (chain {CHAIN})"),
                out.stderr.trim(),
            ));
        }
        Ok(())
    }

    fn stop_node(&self, node: &DelayNode) -> Result<(), NemesisError> {
        let mut active = node.active.lock().unwrap_or_else(|p| p.into_inner());
        if !*active {
            return Ok(());
        }
        let script = format!(
            "while iptables -w -D INPUT -j {CHAIN} 2>/dev/null; do :; done; \
             if iptables -w -n -L {CHAIN} >/dev/null 2>&1; then \
             iptables -w -F {CHAIN} && iptables -w -X {CHAIN}; fi"
        );
        let cmd = Cmd::new("sh")
            .args(["-c", &script])
            .timeout(IPTABLES_TIMEOUT);
        let rules = match node.net.run(&cmd) {
            Ok(out) if out.success() => Ok(()),
            Ok(out)
                if ["Cannot open network namespace", "is gone"]
                    .iter()
                    .any(|g| out.stderr.contains(g)) =>
            {
                Ok(())
            }
            Ok(out) => Err(command_error(
                &node.name,
                format!("iptables -X {CHAIN}"),
                out.stderr.trim(),
            )),
            Err(e) => Err(e.into()),
        };
        let daemon = self.stop_daemon(node);
        collect(vec![rules, daemon])?;
        *active = false;
        Ok(())
    }

    /// SIGTERM (the delayer releases what it holds), then SIGKILL after a while.
    fn stop_daemon(&self, node: &DelayNode) -> Result<(), NemesisError> {
        if !node.net.signal(&node.pid_file, Signal::Term)? {
            return Ok(());
        }
        let deadline = Instant::now() + DAEMON_TIMEOUT;
        while node.net.is_running(&node.pid_file)? {
            if Instant::now() >= deadline {
                node.net.signal(&node.pid_file, Signal::Kill)?;
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

/// Fixed delays on the traffic some nodes receive from the others, for the scenarios
/// (no jitter, so packets keep their order): [`Delayers`] with each node's peers.
pub(crate) struct InboundDelays {
    delayers: Delayers,
    peers: Vec<Vec<IpAddr>>,
}

impl InboundDelays {
    /// Delays over `hosts` (every node of the cluster, `n1` first) with `program`, the
    /// `faultline-delayer` binary on the controller.
    pub(crate) fn new(hosts: &[NetHost], program: PathBuf) -> InboundDelays {
        let peers = (0..hosts.len())
            .map(|i| {
                hosts
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, h)| h.ip)
                    .collect()
            })
            .collect();
        InboundDelays {
            delayers: Delayers::new(hosts, program),
            peers,
        }
    }

    /// Every packet that the nodes `targets` (indices) receive from another node is
    /// held `delay` first; the other nodes' delays are removed.
    pub(crate) fn slow(&self, targets: &[usize], delay: Duration) -> Result<(), NemesisError> {
        let spec = DelaySpec {
            delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            jitter_ms: 0,
            distribution: Distribution::Uniform,
        };
        let seeds = vec![0; self.peers.len()];
        self.delayers
            .apply(Some(spec), targets, &self.peers, &seeds)
    }

    /// Removes every delay.
    pub(crate) fn heal(&self) -> Result<(), NemesisError> {
        self.delayers.heal()
    }
}
