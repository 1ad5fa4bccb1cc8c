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

use faultline_clusters::docker::container_pid;
use faultline_clusters::{
    Cmd, DaemonSpec, Localhost, NetnsHost, Node, Registry, Remote, Resource, Signal,
};

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

/// How a node's delayer is started.
enum Launch {
    /// Through the node's own remote (local namespace, SSH host), optionally after
    /// uploading the program from the controller.
    Node { upload_from: Option<PathBuf> },
    /// On the controller, in the container's network namespace with `nsenter`; the
    /// process is recorded in the registry.
    Nsenter {
        container: String,
        registry: Arc<Registry>,
    },
}

/// One node's delayer.
struct DelayNode {
    name: String,
    /// Runs commands in the node's network namespace (iptables).
    net: Arc<dyn Remote>,
    /// Starts, signals and reads the files of the delayer.
    launcher: Arc<dyn Remote>,
    launch: Launch,
    /// The program, on the launcher's host.
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
    /// Delayers for a local cluster: `program` (on this machine) started in each
    /// namespace (recorded in the registry by the host), files in each host's directory.
    pub(crate) fn netns(hosts: &[Arc<NetnsHost>], program: PathBuf) -> Delayers {
        let nodes = hosts
            .iter()
            .map(|h| DelayNode {
                name: h.host().to_string(),
                net: Arc::clone(h) as Arc<dyn Remote>,
                launcher: Arc::clone(h) as Arc<dyn Remote>,
                launch: Launch::Node { upload_from: None },
                program: program.clone(),
                pid_file: h.dir().join("delayer.pid"),
                log_file: h.dir().join("delayer.log"),
                active: Mutex::new(false),
            })
            .collect();
        Delayers { nodes }
    }

    /// Delayers on machines reached through their remotes (SSH): `program` uploaded to
    /// each node's directory and started there as a daemon (not recorded: the nemesis's
    /// heal stops it).
    pub(crate) fn remote(nodes: &[Node], program: PathBuf) -> Delayers {
        let nodes = nodes
            .iter()
            .map(|n| DelayNode {
                name: n.name.clone(),
                net: Arc::clone(&n.remote),
                launcher: Arc::clone(&n.remote),
                launch: Launch::Node {
                    upload_from: Some(program.clone()),
                },
                program: n.dir.join("faultline-delayer"),
                pid_file: n.dir.join("delayer.pid"),
                log_file: n.dir.join("delayer.log"),
                active: Mutex::new(false),
            })
            .collect();
        Delayers { nodes }
    }

    /// Delayers for containers (node name, container name, a remote running commands in
    /// its network namespace): `program` (on this machine) run with `nsenter` in each
    /// container's network namespace, recorded in `registry`.
    pub(crate) fn docker(
        containers: &[(String, String, Arc<dyn Remote>)],
        registry: Arc<Registry>,
        program: PathBuf,
    ) -> Delayers {
        let local: Arc<dyn Remote> = Arc::new(Localhost::new());
        let nodes = containers
            .iter()
            .map(|(name, container, net)| {
                let container = container.clone();
                let file = |ext: &str| {
                    std::env::temp_dir().join(format!(
                        "faultline-delayer-{container}-{}.{ext}",
                        std::process::id()
                    ))
                };
                DelayNode {
                    name: name.clone(),
                    net: Arc::clone(net),
                    launcher: Arc::clone(&local),
                    pid_file: file("pid"),
                    log_file: file("log"),
                    launch: Launch::Nsenter {
                        container,
                        registry: Arc::clone(&registry),
                    },
                    program: program.clone(),
                    active: Mutex::new(false),
                }
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
        if let Launch::Node {
            upload_from: Some(local),
        } = &node.launch
        {
            node.launcher.upload(local, &node.program)?;
        }
        let log = node.log_file.to_string_lossy().into_owned();
        let _ = node
            .launcher
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
        let cmd = match &node.launch {
            Launch::Node { .. } => Cmd::new(program).args(args),
            Launch::Nsenter { container, .. } => {
                let pid = container_pid(container)
                    .map_err(|e| command_error(&node.name, "docker inspect".into(), e.to_string()))?
                    .ok_or_else(|| {
                        command_error(
                            &node.name,
                            "docker inspect".into(),
                            format!("container {container} is not running"),
                        )
                    })?;
                Cmd::new("nsenter")
                    .args(["-t".to_string(), pid.to_string(), "-n".to_string(), program])
                    .args(args)
            }
        };
        let spec_line = cmd.to_string();
        let pid =
            node.launcher
                .start_daemon(&DaemonSpec::new(cmd, &node.pid_file, &node.log_file))?;
        if let Launch::Nsenter { registry, .. } = &node.launch {
            if let Some(resource) = Resource::process(pid) {
                if let Err(e) = registry.record(resource.clone()) {
                    let _ = node.launcher.signal(&node.pid_file, Signal::Kill);
                    return Err(NemesisError::Record {
                        resource: resource.to_string(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        // Wait until it has bound the queue (its first line), or has failed.
        let deadline = Instant::now() + DAEMON_TIMEOUT;
        loop {
            let text = node
                .launcher
                .run(&Cmd::new("cat").arg(&log).timeout(IPTABLES_TIMEOUT))
                .map(|o| o.stdout)
                .unwrap_or_default();
            if text.contains("bound queue") {
                break;
            }
            if !node.launcher.is_running(&node.pid_file)? || Instant::now() >= deadline {
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
        if !node.launcher.signal(&node.pid_file, Signal::Term)? {
            return Ok(());
        }
        let deadline = Instant::now() + DAEMON_TIMEOUT;
        while node.launcher.is_running(&node.pid_file)? {
            if Instant::now() >= deadline {
                node.launcher.signal(&node.pid_file, Signal::Kill)?;
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}
