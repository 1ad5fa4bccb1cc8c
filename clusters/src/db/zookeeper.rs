//! Apache ZooKeeper (Debian `zookeeperd`, 3.8 on a Java 17 JVM): an ensemble of one
//! server per node, started by the harness itself (no init script, no systemd). See
//! `docs/zookeeper.md`.
//!
//! Setup writes each node's `DIR/zoo.cfg` (data in `DIR/data`, clients on port 2181 of
//! the node's address, quorum on 2888 and elections on 3888, `tickTime=1000`,
//! `initLimit=10`, `syncLimit=5`, every four-letter word allowed, no admin server) and
//! `DIR/data/myid`. The server is the JVM run in the foreground on
//! `org.apache.zookeeper.server.quorum.QuorumPeerMain` with Debian's `zookeeper.jar`
//! (whose manifest names the jars it needs) and slf4j's simple binding, which logs to
//! standard error, so into `DIR/node.log`. The JVM is one process: killing, pausing
//! and resuming signal its process group like any other daemon.
//!
//! Readiness and the leader come from the four-letter words over TCP: at setup a
//! server is ready once `srvr` says `Mode: leader`, `follower` (or `standalone`); after
//! a restart once `ruok` answers `imok` (it may be cut off from any quorum by a
//! partition until that heals).

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use super::line::connect;
use super::{Capabilities, Db, Node, Pause, Primaries, wait_until};
use crate::docker::ImageContent;
use crate::error::ClusterError;
use crate::posix::quote;
use crate::remote::{Cmd, DaemonSpec};

/// ZooKeeper on every node of an ensemble.
#[derive(Debug)]
pub struct ZookeeperDb {
    java: PathBuf,
    nodes: Vec<Node>,
    /// The nodes that have served once: after a restart they are ready when they answer.
    served: Mutex<HashSet<String>>,
}

/// Debian's ZooKeeper server and client jar (`libzookeeper-java`).
pub const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";

/// slf4j's binding that logs to standard error (`libslf4j-java`, a dependency of
/// `libzookeeper-java`); without a binding ZooKeeper logs nothing.
pub const SLF4J_SIMPLE_JAR: &str = "/usr/share/java/slf4j-simple.jar";

/// Where Debian keeps Java libraries: every jar `zookeeper.jar`'s manifest names.
const JAVA_SHARE: &str = "/usr/share/java";

/// The server's main class.
const MAIN_CLASS: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";

/// The JVM found through this link when `java` is not given.
const JAVA_LINK: &str = "/usr/bin/java";

impl ZookeeperDb {
    /// The client port.
    pub const CLIENT_PORT: u16 = 2181;
    /// The port followers reach the leader on.
    pub const QUORUM_PORT: u16 = 2888;
    /// The leader election port.
    pub const ELECTION_PORT: u16 = 3888;

    /// What ZooKeeper can do here: pause (the JVM), kill and restart, leader discovery;
    /// none of faultline-kv's extras.
    pub const CAPABILITIES: Capabilities = Capabilities::none(
        "ZooKeeper runs on a JVM, which reads the wall clock through its own fast paths \
         (the vDSO, not libfaketime's libc calls) and times its sessions and elections on \
         the monotonic clock; the clock nemesis's offset file is set up for faultline-kv \
         only: use --db kv for clock faults",
        "the disk nemesis knows only faultline-kv's write-ahead log; use --db kv",
        "power loss needs the nodes' data on faultline-lazyfs, which only faultline-kv \
         has; use --db kv",
    );

    /// ZooKeeper run by the JVM `java` (e.g.
    /// `/usr/lib/jvm/java-17-openjdk-amd64/bin/java`, the same path on every host) for
    /// the ensemble `nodes`.
    pub fn new(java: impl Into<PathBuf>, nodes: &[Node]) -> ZookeeperDb {
        ZookeeperDb {
            java: java.into(),
            nodes: nodes.to_vec(),
            served: Mutex::new(HashSet::new()),
        }
    }

    /// The JVM and ZooKeeper's jars on this machine: the JVM `/usr/bin/java` leads to
    /// (its real path, so that a Docker image holds it). The error says how to install
    /// what is missing.
    pub fn find_java() -> Result<PathBuf, String> {
        for jar in [ZOOKEEPER_JAR, SLF4J_SIMPLE_JAR] {
            if !Path::new(jar).is_file() {
                return Err(format!(
                    "ZooKeeper is not installed: no {jar} (`apt-get install zookeeperd`, \
                     or scripts/setup.sh --all)"
                ));
            }
        }
        std::fs::canonicalize(JAVA_LINK).map_err(|e| {
            format!(
                "no Java runtime at {JAVA_LINK} ({e}): `apt-get install zookeeperd` brings \
                 one (default-jre)"
            )
        })
    }

    /// What a Docker node image needs to run ZooKeeper with `java` (found on this
    /// machine): the JVM's home (two levels above `bin/java`), the configuration
    /// directories its links point into (`/etc/java-N-openjdk`), and Debian's Java
    /// libraries (`/usr/share/java`: ZooKeeper's jar and the ones its manifest names).
    /// The image builder adds every shared library.
    pub fn image_content(java: &Path) -> Result<ImageContent, String> {
        let home = java
            .parent()
            .and_then(Path::parent)
            .ok_or_else(|| format!("{}: not JAVA_HOME/bin/java", java.display()))?;
        let mut trees = vec![home.to_path_buf(), PathBuf::from(JAVA_SHARE)];
        // Debian's JVM links its conf/ files into /etc/java-N-openjdk.
        if let Some(dir) = home.file_name().and_then(|n| n.to_str()) {
            let etc = Path::new("/etc").join(java_etc_name(dir));
            if etc.is_dir() {
                trees.push(etc);
            }
        }
        Ok(ImageContent {
            programs: Vec::new(),
            trees,
            users: Vec::new(),
        })
    }

    /// The node's configuration file: `DIR/zoo.cfg`.
    pub fn config_file(node: &Node) -> PathBuf {
        node.dir.join("zoo.cfg")
    }

    /// The text of `node`'s `zoo.cfg`: a standalone server for one node, else the
    /// ensemble of every node.
    fn config(&self, node: &Node) -> String {
        let mut cfg = format!(
            "tickTime=1000\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={}\n\
             clientPortAddress={}\n4lw.commands.whitelist=*\nadmin.enableServer=false\n\
             maxClientCnxns=0\n",
            node.data_dir().display(),
            Self::CLIENT_PORT,
            node.addr,
        );
        if self.nodes.len() > 1 {
            for n in &self.nodes {
                cfg.push_str(&format!(
                    "server.{}={}:{}:{}\n",
                    n.id,
                    n.addr,
                    Self::QUORUM_PORT,
                    Self::ELECTION_PORT
                ));
            }
        }
        cfg
    }

    /// The script that writes `zoo.cfg` and `myid` (keeping any data).
    fn setup_script(&self, node: &Node) -> String {
        let data = quote(&node.data_dir().to_string_lossy());
        format!(
            "set -e; mkdir -p {data}; printf '%s' {cfg} > {file}; echo {id} > {data}/myid",
            cfg = quote(&self.config(node)),
            file = quote(&Self::config_file(node).to_string_lossy()),
            id = node.id,
        )
    }

    /// The server in the foreground: a small heap, the serial collector and C1 only
    /// (quick to start, light on small machines), no perf data file.
    fn command(&self, node: &Node) -> Cmd {
        Cmd::new(self.java.to_string_lossy())
            .args([
                "-Xms64m",
                "-Xmx512m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-XX:-UsePerfData",
                "-Dorg.slf4j.simpleLogger.showDateTime=true",
                "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSS",
                "-Dzookeeper.admin.enableServer=false",
            ])
            .arg(format!("-Djava.io.tmpdir={}", node.dir.display()))
            .args(["-cp", &format!("{ZOOKEEPER_JAR}:{SLF4J_SIMPLE_JAR}")])
            .arg(MAIN_CLASS)
            .arg(Self::config_file(node).to_string_lossy())
    }

    fn client_port_addr(node: &Node) -> String {
        format!("{}:{}", node.addr, Self::CLIENT_PORT)
    }
}

/// `/etc`'s directory for the JVM home named `home` (`java-17-openjdk-amd64` →
/// `java-17-openjdk`): the name without its architecture.
fn java_etc_name(home: &str) -> String {
    match home.rsplit_once('-') {
        Some((base, _arch)) if base.ends_with("openjdk") => base.to_string(),
        _ => home.to_string(),
    }
}

impl Db for ZookeeperDb {
    fn capabilities(&self) -> Capabilities {
        Self::CAPABILITIES
    }

    fn name(&self) -> &str {
        "zookeeper"
    }

    /// The JVM's own ends: its fatal error report, an exhausted heap, and ZooKeeper's
    /// exit on an unrecoverable error.
    fn log_patterns(&self) -> Vec<String> {
        [
            "A fatal error has been detected by the Java Runtime Environment",
            "java.lang.OutOfMemoryError",
            "Unexpected exception, exiting abnormally",
        ]
        .map(String::from)
        .to_vec()
    }

    fn setup(&self, node: &Node) -> Result<(), ClusterError> {
        node.remote
            .run_ok(
                &Cmd::new("sh")
                    .args(["-c", &self.setup_script(node)])
                    .timeout(Duration::from_secs(30)),
            )
            .map_err(|e| ClusterError::Protocol {
                node: node.name.clone(),
                message: format!(
                    "cannot write ZooKeeper's configuration {}: {e}",
                    Self::config_file(node).display()
                ),
            })?;
        self.start(node)
    }

    fn start(&self, node: &Node) -> Result<(), ClusterError> {
        let spec = DaemonSpec::new(self.command(node), node.pid_file(), node.log_file());
        node.remote.start_daemon(&spec)?;
        Ok(())
    }

    /// The first time (setup): ready when `srvr` says the server serves (it has joined
    /// a quorum: leader or follower); start every node before waiting on any. After a
    /// restart: ready when `ruok` answers `imok` (the server runs and answers), since a
    /// server restarted on the minority side of a partition cannot join a quorum
    /// before the partition heals.
    fn await_ready(&self, node: &Node, timeout: Duration) -> Result<(), ClusterError> {
        let addr = self.client_addr(node);
        let restarted = self
            .served
            .lock()
            .map(|s| s.contains(&node.name))
            .unwrap_or(false);
        wait_until(self.name(), node, &addr, timeout, || {
            if restarted {
                let answer = four_letter_word(&addr, "ruok")?;
                return match answer.trim() {
                    "imok" => Ok(()),
                    other => Err(format!("ruok: {other}")),
                };
            }
            let answer = four_letter_word(&addr, "srvr")?;
            match mode(&answer) {
                Some(_) => Ok(()),
                None => Err(format!("srvr: {}", answer.trim())),
            }
        })?;
        if let Ok(mut served) = self.served.lock() {
            served.insert(node.name.clone());
        }
        Ok(())
    }

    fn client_addr(&self, node: &Node) -> String {
        Self::client_port_addr(node)
    }

    fn pause(&self) -> Option<&dyn Pause> {
        Some(self)
    }

    fn primaries(&self) -> Option<&dyn Primaries> {
        Some(self)
    }
}

impl Pause for ZookeeperDb {}

impl Primaries for ZookeeperDb {
    /// The nodes whose `srvr` says `Mode: leader`.
    fn primaries(&self, nodes: &[Node]) -> Vec<String> {
        nodes
            .iter()
            .filter(|n| {
                four_letter_word(&Self::client_port_addr(n), "srvr")
                    .is_ok_and(|a| mode(&a) == Some("leader"))
            })
            .map(|n| n.name.clone())
            .collect()
    }
}

/// The server's `Mode:` in a `srvr` answer (`leader`, `follower`, `standalone`…);
/// `None` when it does not serve (`This ZooKeeper instance is not currently serving
/// requests`).
fn mode(srvr: &str) -> Option<&str> {
    srvr.lines()
        .find_map(|l| l.strip_prefix("Mode:"))
        .map(str::trim)
        .filter(|m| !m.is_empty())
}

/// Sends the four-letter word `word` (e.g. `srvr`) to the ZooKeeper server at `addr`
/// and reads its whole answer (the server closes the connection), within a second.
pub fn four_letter_word(addr: &str, word: &str) -> Result<String, String> {
    let mut stream = connect(addr, Duration::from_secs(1))?;
    stream
        .write_all(word.as_bytes())
        .map_err(|e| format!("cannot send {word}: {e}"))?;
    let mut answer = String::new();
    stream
        .take(64 * 1024)
        .read_to_string(&mut answer)
        .map_err(|e| format!("no answer to {word}: {e}"))?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: u32) -> Node {
        Node {
            id,
            name: format!("n{id}"),
            addr: format!("10.1.2.{}", id + 1),
            dir: format!("/s/n{id}").into(),
            remote: std::sync::Arc::new(crate::Localhost::new()),
        }
    }

    #[test]
    fn an_ensemble_lists_every_server_a_single_node_none() {
        let nodes: Vec<Node> = (1..=3).map(node).collect();
        let db = ZookeeperDb::new("/j/bin/java", &nodes);
        let cfg = db.config(&nodes[1]);
        for line in [
            "tickTime=1000",
            "initLimit=10",
            "syncLimit=5",
            "dataDir=/s/n2/data",
            "clientPort=2181",
            "clientPortAddress=10.1.2.3",
            "4lw.commands.whitelist=*",
            "admin.enableServer=false",
            "server.1=10.1.2.2:2888:3888",
            "server.3=10.1.2.4:2888:3888",
        ] {
            assert!(cfg.lines().any(|l| l == line), "{line} not in {cfg}");
        }
        let alone = ZookeeperDb::new("/j/bin/java", &nodes[..1]);
        assert!(!alone.config(&nodes[0]).contains("server."));
        let script = db.setup_script(&nodes[1]);
        assert!(script.contains("echo 2 > /s/n2/data/myid"), "{script}");
        assert!(script.contains("> /s/n2/zoo.cfg"), "{script}");
    }

    #[test]
    fn the_server_is_the_jvm_on_quorum_peer_main() {
        let nodes = [node(1)];
        let cmd = ZookeeperDb::new("/j/bin/java", &nodes)
            .command(&nodes[0])
            .to_string();
        assert!(cmd.starts_with("/j/bin/java "), "{cmd}");
        assert!(
            cmd.ends_with(
                "-cp /usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar \
                 org.apache.zookeeper.server.quorum.QuorumPeerMain /s/n1/zoo.cfg"
            ),
            "{cmd}"
        );
    }

    #[test]
    fn srvr_modes_are_read() {
        let leader =
            "Zookeeper version: 3.8.0\nLatency min/avg/max: 0/0.0/0\nMode: leader\nNode count: 5\n";
        assert_eq!(mode(leader), Some("leader"));
        assert_eq!(
            mode("This ZooKeeper instance is not currently serving requests\n"),
            None
        );
    }

    #[test]
    fn the_image_holds_the_jvm_its_etc_and_the_jars() {
        let content =
            ZookeeperDb::image_content(Path::new("/usr/lib/jvm/java-17-openjdk-amd64/bin/java"))
                .unwrap();
        assert_eq!(
            content.trees[..2],
            [
                PathBuf::from("/usr/lib/jvm/java-17-openjdk-amd64"),
                PathBuf::from("/usr/share/java")
            ]
        );
        assert_eq!(java_etc_name("java-17-openjdk-amd64"), "java-17-openjdk");
        assert_eq!(java_etc_name("jdk"), "jdk");
        assert!(ZookeeperDb::image_content(Path::new("java")).is_err());
    }

    #[test]
    fn clocks_are_refused_with_a_reason() {
        let can = ZookeeperDb::CAPABILITIES;
        assert!(can.fake_clock.unwrap_err().contains("JVM"));
        assert!(can.peers.is_ok());
    }
}
