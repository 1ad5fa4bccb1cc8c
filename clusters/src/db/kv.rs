//! The bundled database, `faultline-kv` (see `clusters/kvnode/README.md`).

use std::path::PathBuf;
use std::time::Duration;

use faultline_kv_proto::{Outcome, Request, Response};
use serde_json::Value;

use super::kv_status::leads_any_shard;
use super::lazyfs::{Lazyfs, PowerLoss};
use super::{
    Capabilities, Db, ElectionTiming, Elections, FAKETIME_LIBS, FakeClock, Node, NodeView, Pause,
    Primaries, faketime_env, request_line, wait_until,
};
use crate::error::ClusterError;
use crate::remote::{Cmd, DaemonSpec, ExitStatus};

pub use faultline_kv_proto::{Bug, CommitProtocol, Protocol as Consensus};

/// `faultline-kv` on every node: Raft on port 7001, clients on port 8001 (newline-
/// delimited JSON), data in the node's `data/`.
#[derive(Debug, Clone)]
pub struct KvDb {
    binary: PathBuf,
    nodes: Vec<Node>,
    upload: bool,
    args: Vec<String>,
    faketime: bool,
    lazyfs: Option<Lazyfs>,
}

impl KvDb {
    /// The port for Raft traffic.
    pub const PEER_PORT: u16 = 7001;
    /// The port for clients.
    pub const CLIENT_PORT: u16 = 8001;

    /// `faultline-kv` built at `binary` (on the controller), for the cluster `nodes`.
    /// By default the binary is uploaded to each node's directory.
    pub fn new(binary: impl Into<PathBuf>, nodes: &[Node]) -> KvDb {
        KvDb {
            binary: binary.into(),
            nodes: nodes.to_vec(),
            upload: true,
            args: Vec::new(),
            faketime: false,
            lazyfs: None,
        }
    }

    /// What faultline-kv can do: everything the nemesis knows (clocks once built with
    /// [`KvDb::faketime`], power loss with [`KvDb::lazyfs`]).
    pub const CAPABILITIES: Capabilities = Capabilities {
        fake_clock: Ok(()),
        kv_log: Ok(()),
        lazyfs: Ok(()),
        elections: Ok(()),
        peers: Ok(()),
    };

    /// Runs `consensus` (`--consensus`, left out for Raft, the node's default).
    pub fn consensus(self, consensus: Consensus) -> KvDb {
        match consensus {
            Consensus::Raft => self,
            Consensus::Paxos => self.args(["--consensus", "paxos"]),
        }
    }

    /// Splits the keys over `shards` consensus groups (`--shards N`, left out for 1, the
    /// node's default): each shard's leader prefers one node, the others wait twice the
    /// election timeout for it ([`ElectionTiming::non_preferred_timeout_factor`]).
    pub fn shards(self, shards: u32) -> KvDb {
        if shards > 1 {
            self.args(["--shards".to_string(), shards.to_string()])
        } else {
            self
        }
    }

    /// Commits transactions across shards by `protocol` (`--commit-protocol`, left out
    /// for 2PC, the node's default; meaningful with [`KvDb::shards`] above 1).
    pub fn commit_protocol(self, protocol: CommitProtocol) -> KvDb {
        match protocol {
            CommitProtocol::TwoPhase => self,
            CommitProtocol::ThreePhase => self.args(["--commit-protocol", protocol.name()]),
        }
    }

    /// Switches on the planted `bugs` (`--bug NAME` each).
    pub fn bugs(self, bugs: &[Bug]) -> KvDb {
        let args: Vec<&str> = bugs.iter().flat_map(|b| ["--bug", b.name()]).collect();
        self.args(args)
    }

    /// Whether to upload the binary (`true`, the default), or run it where it is (for
    /// hosts that share the controller's filesystem, e.g. local namespaces).
    pub fn upload(mut self, upload: bool) -> KvDb {
        self.upload = upload;
        self
    }

    /// Extra flags for every node (e.g. `--bug stale-read`, `--tick-ms 5`).
    pub fn args<I, S>(mut self, args: I) -> KvDb
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Whether to run every node under libfaketime (`false` by default), so that a
    /// clock nemesis can move each node's clock through its [`FakeClock`] file
    /// (`DIR/faketime`, `+0` at setup). Needs `libfaketime` on the hosts (Debian:
    /// `apt-get install libfaketime`); starting fails naming it when it is missing.
    pub fn faketime(mut self, faketime: bool) -> KvDb {
        self.faketime = faketime;
        self
    }

    /// Mounts each node's data directory through `faultline-lazyfs` (none by default),
    /// which gives the database the [`PowerLoss`] capability. Only for hosts sharing the
    /// controller's filesystem (local namespaces): see [`Lazyfs`].
    pub fn lazyfs(mut self, lazyfs: Lazyfs) -> KvDb {
        self.lazyfs = Some(lazyfs);
        self
    }

    /// Creates the node's clock file (`+0`; reset to `+0` when `reset`) and returns
    /// where libfaketime is on its host.
    fn prepare_clock(&self, node: &Node, reset: bool) -> Result<String, ClusterError> {
        let file = self.clock_file(node);
        let script = format!(
            "mkdir -p \"$(dirname \"$1\")\" || exit 3; {}echo +0 > \"$1\" || exit 3; shift; \
             for p in \"$@\"; do if [ -f \"$p\" ]; then echo \"$p\"; exit 0; fi; done; exit 1",
            if reset { "" } else { "[ -f \"$1\" ] || " }
        );
        let cmd = Cmd::new("sh")
            .args(["-c", &script, "sh", &file.to_string_lossy()])
            .args(FAKETIME_LIBS)
            .timeout(Duration::from_secs(20));
        let out = node.remote.run(&cmd)?;
        match out.status {
            ExitStatus::Code(0) => Ok(out.stdout.trim().to_string()),
            ExitStatus::Code(1) => Err(ClusterError::Prerequisite {
                what: format!(
                    "{}: libfaketime not found (looked for {})",
                    node.name,
                    FAKETIME_LIBS.join(", ")
                ),
                fix: "install it on the host: apt-get install libfaketime".into(),
            }),
            _ => Err(ClusterError::Config(format!(
                "{}: cannot write the clock file {}: {}",
                node.name,
                file.display(),
                out.stderr.trim()
            ))),
        }
    }

    fn binary_on(&self, node: &Node) -> PathBuf {
        if self.upload {
            node.dir.join("faultline-kv")
        } else {
            self.binary.clone()
        }
    }

    fn command(&self, node: &Node) -> Cmd {
        let mut cmd = Cmd::new(self.binary_on(node).to_string_lossy())
            .args(["--id", &node.id.to_string()])
            .args([
                "--listen-peer",
                &format!("{}:{}", node.addr, Self::PEER_PORT),
            ])
            .args(["--listen-client", &self.client_addr(node)])
            .args(["--data-dir", &node.data_dir().to_string_lossy()]);
        for peer in self.nodes.iter().filter(|p| p.id != node.id) {
            cmd = cmd.args([
                "--peer".to_string(),
                format!(
                    "{}={}:{}/{}:{}",
                    peer.id,
                    peer.addr,
                    Self::PEER_PORT,
                    peer.addr,
                    Self::CLIENT_PORT
                ),
            ]);
        }
        cmd.args(self.args.iter().cloned())
    }

    /// Asks `node` for its status; the `status` object of the response (its shards:
    /// [`shard_statuses`](super::shard_statuses)).
    pub fn status(&self, node: &Node) -> Result<Value, String> {
        let line = request_line(
            &self.client_addr(node),
            &Request::status(0).to_line(),
            Duration::from_secs(2),
        )?;
        let response = Response::from_line(line.as_bytes())
            .map_err(|e| format!("bad response {line:?}: {e}"))?;
        match response.status {
            Some(status) if response.outcome == Outcome::Ok => Ok(status),
            _ => Err(format!("unexpected response {line}")),
        }
    }
}

impl Db for KvDb {
    fn capabilities(&self) -> Capabilities {
        Self::CAPABILITIES
    }

    fn name(&self) -> &str {
        "faultline-kv"
    }

    fn setup(&self, node: &Node) -> Result<(), ClusterError> {
        if self.upload {
            node.remote.upload(&self.binary, &self.binary_on(node))?;
        }
        if self.faketime {
            self.prepare_clock(node, true)?;
        }
        if let Some(lazyfs) = &self.lazyfs {
            lazyfs.mount(node)?;
        }
        self.start(node)
    }

    fn teardown(&self, node: &Node) -> Result<(), ClusterError> {
        self.kill(node)?;
        let mut dirs = vec![node.data_dir()];
        if let Some(lazyfs) = &self.lazyfs {
            lazyfs.unmount(node)?;
            dirs.push(Lazyfs::backing_dir(node));
        }
        for dir in dirs {
            node.remote.run_ok(
                &Cmd::new("rm")
                    .args(["-rf", &dir.to_string_lossy()])
                    .timeout(Duration::from_secs(60)),
            )?;
        }
        Ok(())
    }

    fn start(&self, node: &Node) -> Result<(), ClusterError> {
        let mut cmd = self.command(node);
        if self.faketime {
            let lib = self.prepare_clock(node, false)?;
            for (key, value) in faketime_env(&lib, &self.clock_file(node)) {
                cmd = cmd.env(key, value);
            }
        }
        let spec = DaemonSpec::new(cmd, node.pid_file(), node.log_file());
        node.remote.start_daemon(&spec)?;
        Ok(())
    }

    fn await_ready(&self, node: &Node, timeout: Duration) -> Result<(), ClusterError> {
        let addr = self.client_addr(node);
        wait_until(self.name(), node, &addr, timeout, || {
            self.status(node).map(drop)
        })
    }

    fn client_addr(&self, node: &Node) -> String {
        format!("{}:{}", node.addr, Self::CLIENT_PORT)
    }

    fn pause(&self) -> Option<&dyn Pause> {
        Some(self)
    }

    fn primaries(&self) -> Option<&dyn Primaries> {
        Some(self)
    }

    fn elections(&self) -> Option<&dyn Elections> {
        Some(self)
    }

    fn fake_clock(&self) -> Option<&dyn FakeClock> {
        if self.faketime { Some(self) } else { None }
    }

    fn power_loss(&self) -> Option<&dyn PowerLoss> {
        self.lazyfs.as_ref().map(|l| l as &dyn PowerLoss)
    }

    fn log_files(&self, node: &Node) -> Vec<PathBuf> {
        let mut logs = vec![node.log_file()];
        if self.lazyfs.is_some() {
            logs.push(Lazyfs::log_file(node));
        }
        logs
    }
}

impl Pause for KvDb {}

impl FakeClock for KvDb {}

impl Primaries for KvDb {
    /// The nodes that lead any shard (with one shard: the leader).
    fn primaries(&self, nodes: &[Node]) -> Vec<String> {
        nodes
            .iter()
            .filter(|n| self.status(n).is_ok_and(|s| leads_any_shard(&s)))
            .map(|n| n.name.clone())
            .collect()
    }
}

impl Elections for KvDb {
    fn view(&self, node: &Node) -> Result<NodeView, String> {
        let s = self.status(node)?;
        let id = |key: &str| s[key].as_u64();
        Ok(NodeView {
            role: s["role"].as_str().unwrap_or("unknown").to_string(),
            term: id("term").ok_or_else(|| format!("status without a term: {s}"))?,
            vote: id("vote"),
            leader: id("leader"),
            commit: id("commit").unwrap_or(0),
            last_index: id("last_index").unwrap_or(0),
        })
    }

    fn timing(&self) -> ElectionTiming {
        ElectionTiming::from_kv_args(&self.args)
    }

    fn max_append_entries(&self) -> Option<u64> {
        Some(super::elections::kv_max_append_entries(&self.args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv() -> KvDb {
        KvDb::new("/bin/faultline-kv", &[])
    }

    #[test]
    fn shards_and_commit_protocol_are_flags_left_out_at_their_defaults() {
        let defaults = kv()
            .shards(1)
            .commit_protocol(CommitProtocol::TwoPhase)
            .consensus(Consensus::Raft);
        assert!(defaults.args.is_empty(), "{:?}", defaults.args);
        let sharded = kv()
            .shards(3)
            .commit_protocol(CommitProtocol::ThreePhase)
            .bugs(&[Bug::TwoPcPresumedCommit]);
        assert_eq!(
            sharded.args,
            [
                "--shards",
                "3",
                "--commit-protocol",
                "3pc",
                "--bug",
                "2pc-presumed-commit"
            ]
        );
        // Sharded nodes' timing: the non-preferred nodes wait twice as long.
        assert_eq!(sharded.timing().non_preferred_timeout_factor, 2);
        assert_eq!(kv().shards(1).timing(), ElectionTiming::KV_DEFAULT);
    }
}
