//! What a database can do beyond the [`Db`](super::Db) basics: optional capability
//! traits ([`Pause`], [`Primaries`], [`FakeClock`]; [`PowerLoss`](super::PowerLoss) with
//! faultline-lazyfs) and [`Capabilities`], the same facts known before a database is
//! built, which decide which faults a run may have.

use std::path::{Path, PathBuf};

use super::Node;
use crate::error::ClusterError;
use crate::remote::Signal;

/// Pausing and resuming a node's process (SIGSTOP, SIGCONT).
pub trait Pause: Send + Sync {
    /// Pauses the node; pausing a stopped or paused node succeeds.
    fn pause(&self, node: &Node) -> Result<(), ClusterError> {
        node.remote.signal(&node.pid_file(), Signal::Stop)?;
        Ok(())
    }

    /// Resumes the node; resuming a running node succeeds.
    fn resume(&self, node: &Node) -> Result<(), ClusterError> {
        node.remote.signal(&node.pid_file(), Signal::Cont)?;
        Ok(())
    }
}

/// Leader discovery.
pub trait Primaries: Send + Sync {
    /// The names of the nodes that consider themselves leader, asking each of `nodes`
    /// (unreachable ones are skipped). Empty when there is none. Must not change
    /// anything.
    fn primaries(&self, nodes: &[Node]) -> Vec<String>;
}

/// Per-node clocks: the node runs under libfaketime, whose offset it reads from a file
/// on every clock call (`FAKETIME_TIMESTAMP_FILE`, `FAKETIME_NO_CACHE=1`,
/// `FAKETIME_DONT_FAKE_MONOTONIC=1`). Writing `+30` or `-5` (seconds) into the file
/// moves that node's wall clock, as a stepped system clock does (its monotonic clock
/// keeps running); `+0` puts it back.
pub trait FakeClock: Send + Sync {
    /// The node's offset file, on its host.
    fn clock_file(&self, node: &Node) -> PathBuf {
        node.dir.join("faketime")
    }
}

/// The environment that runs a program under libfaketime (`lib`, one of
/// [`FAKETIME_LIBS`]) with its offset read from `clock_file` on every clock call. The
/// wall clock only, as Jepsen's clock nemesis moves it (a stepped system clock leaves
/// CLOCK_MONOTONIC alone). A faked monotonic clock is also wrong for Rust's timed
/// waits: their futex deadlines are absolute in the kernel's real monotonic time, so a
/// node whose monotonic clock ran 20 s ahead slept 20 s in every idle wait.
pub fn faketime_env(lib: &str, clock_file: &Path) -> [(&'static str, String); 4] {
    [
        ("LD_PRELOAD", lib.to_string()),
        (
            "FAKETIME_TIMESTAMP_FILE",
            clock_file.to_string_lossy().into_owned(),
        ),
        ("FAKETIME_NO_CACHE", "1".to_string()),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1".to_string()),
    ]
}

/// Where libfaketime is installed on Debian-like systems, in order of preference.
pub const FAKETIME_LIBS: [&str; 4] = [
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
];

/// Whether a database can do something, or why not (a sentence that ends the refusal
/// of a fault that needs it).
pub type Support = Result<(), &'static str>;

/// What a kind of database can do, known before one is built: the facts the faults of a
/// run are checked against ([`Db::capabilities`](super::Db::capabilities) of a built
/// one says the same). A new database states its own here; which fault needs which
/// capability is decided in one place, the nemesis's `Fault::refusal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Its nodes can run under libfaketime ([`FakeClock`]): clocks can be moved.
    pub fake_clock: Support,
    /// It keeps faultline-kv's write-ahead log (`DIR/data/wal`, records of `[len u32
    /// LE][crc32 u32 LE][payload]`), which the disk nemesis damages.
    pub kv_log: Support,
    /// Its data directories can live on faultline-lazyfs
    /// ([`PowerLoss`](super::PowerLoss)).
    pub lazyfs: Support,
    /// Its nodes report their term, vote and role ([`Elections`](super::Elections)),
    /// which the scenario nemeses that aim at elections watch.
    pub elections: Support,
    /// Its nodes talk to each other (replicas, peers of a consensus group), so cutting
    /// or slowing the traffic between them means something. A single server has no
    /// peers: the network faults (which never touch the controller's traffic to the
    /// nodes) would do nothing.
    pub peers: Support,
}

impl Capabilities {
    /// None of the extras, with generic reasons.
    pub const NONE: Capabilities = Capabilities::none(
        "its nodes do not run under libfaketime, so their clocks cannot be moved",
        "the disk nemesis knows only faultline-kv's write-ahead log",
        "power loss needs the nodes' data on faultline-lazyfs, which only faultline-kv has",
    );

    /// Nothing beyond the [`Db`](super::Db) basics, each refusal saying `why`.
    pub const fn none(
        fake_clock: &'static str,
        kv_log: &'static str,
        lazyfs: &'static str,
    ) -> Self {
        Capabilities {
            fake_clock: Err(fake_clock),
            kv_log: Err(kv_log),
            lazyfs: Err(lazyfs),
            elections: Err(
                "only faultline-kv reports its nodes' terms and votes, which this scenario watches",
            ),
            peers: Ok(()),
        }
    }

    /// The same, for a database of one server without peers: network faults refused,
    /// saying `why`.
    pub const fn without_peers(self, why: &'static str) -> Self {
        Capabilities {
            peers: Err(why),
            ..self
        }
    }
}

/// Whether libfaketime is installed on this machine (at one of [`FAKETIME_LIBS`]).
pub fn faketime_installed() -> bool {
    FAKETIME_LIBS
        .iter()
        .any(|p| std::path::Path::new(p).is_file())
}
