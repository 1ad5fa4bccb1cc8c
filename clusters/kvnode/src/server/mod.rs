//! The server: storage recovery, peer and client listeners (tokio), and the node loop
//! on its own thread. Thin by design: all consensus logic is in [`crate::raft`] and
//! [`crate::paxos`], driven through the [`crate::consensus::Core`] trait.

mod clients;
pub mod driver;
pub mod event;
mod forward;
pub mod transport;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::consensus::{ConfigError, NodeId, Protocol};
use crate::kv::Store;
use crate::paxos::{self, Paxos, PaxosBugs};
use crate::peer::PeerCore;
use crate::raft::{Config, CoreBugs, Raft};
use crate::storage::{Persist, Storage, StorageError};

use driver::{Driver, DriverConfig};
use event::Event;
use transport::Transport;

pub use faultline_kv_proto::Bug;

/// Another member of the cluster.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Its Raft (peer) address, `host:port`.
    pub raft_addr: String,
    /// Its client address, for `not-leader` hints and forwarded requests.
    pub client_addr: Option<String>,
}

/// Everything the server needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// This node's id (> 0).
    pub id: NodeId,
    /// The consensus protocol.
    pub consensus: Protocol,
    /// The other members.
    pub peers: BTreeMap<NodeId, Peer>,
    /// Where to listen for peers.
    pub listen_peer: String,
    /// Where to listen for clients.
    pub listen_client: String,
    /// The data directory (write-ahead log and snapshot).
    pub data_dir: PathBuf,
    /// Length of one Raft tick.
    pub tick: Duration,
    /// Election timeout, in ticks (randomized up to twice this).
    pub election_ticks: u32,
    /// Heartbeat interval, in ticks.
    pub heartbeat_ticks: u32,
    /// How long a client request may wait for its outcome.
    pub request_timeout: Duration,
    /// Snapshot every this many applied entries.
    pub snapshot_entries: u64,
    /// Most entries (Raft) or values (Multi-Paxos) in one append message.
    pub max_append_entries: usize,
    /// Serve reads from a leader lease instead of a ReadIndex round.
    pub lease_read: bool,
    /// Planted bugs.
    pub bugs: Vec<Bug>,
}

/// The data directory was written by the other consensus protocol.
#[derive(Debug, thiserror::Error)]
#[error(
    "the data directory holds {found} state but this node runs {wanted}; start it with \
     --consensus {found}, or remove the data directory"
)]
pub struct WrongProtocol {
    found: Protocol,
    wanted: Protocol,
}

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The data directory could not be read or written.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// The durable state or configuration is not usable.
    #[error("raft: {0}")]
    Raft(#[from] ConfigError),
    /// A snapshot could not be made or restored.
    #[error("snapshot: {0}")]
    Snapshot(String),
    /// A listener could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The node loop thread failed.
    #[error("node loop: {0}")]
    Thread(String),
    /// The data directory belongs to the other protocol.
    #[error(transparent)]
    WrongProtocol(#[from] WrongProtocol),
}

fn core_bugs(bugs: &[Bug]) -> CoreBugs {
    CoreBugs {
        stale_read: bugs.contains(&Bug::StaleRead),
        old_term_commit: bugs.contains(&Bug::OldTermCommit),
        forget_vote: bugs.contains(&Bug::ForgetVote),
        lease_read_skew: bugs.contains(&Bug::LeaseReadSkew),
        ack_before_commit: bugs.contains(&Bug::AckBeforeCommit),
    }
}

/// Runs a node until `shutdown` resolves (then stops cleanly) or a fatal error.
pub async fn run(cfg: ServerConfig, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
    if !cfg.bugs.is_empty() {
        tracing::warn!(bugs = ?cfg.bugs, "PLANTED BUGS ENABLED: this node is deliberately unsafe");
    }
    let fsync = !cfg.bugs.contains(&Bug::NoFsync);
    let (storage, restored) = Storage::open(&cfg.data_dir, fsync)?;
    if restored.torn_bytes > 0 {
        tracing::warn!(
            bytes = restored.torn_bytes,
            "truncated a torn tail of the write-ahead log"
        );
    }
    let store = match &restored.snapshot {
        Some(s) => Store::from_bytes(&s.data).map_err(|e| ServerError::Snapshot(e.to_string()))?,
        None => Store::new(),
    };
    let mut voters: Vec<NodeId> = cfg.peers.keys().copied().collect();
    voters.push(cfg.id);
    voters.sort_unstable();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(cfg.id, |d| d.as_nanos() as u64 ^ cfg.id);
    let found = match (restored.has_raft_state(), restored.has_paxos_state()) {
        (true, false) => Some(Protocol::Raft),
        (false, true) => Some(Protocol::Paxos),
        _ => None,
    };
    if let Some(found) = found.filter(|f| *f != cfg.consensus) {
        return Err(WrongProtocol {
            found,
            wanted: cfg.consensus,
        }
        .into());
    }
    tracing::info!(
        id = cfg.id,
        consensus = %cfg.consensus,
        term = restored.hard.term,
        promised = %restored.paxos.promised,
        entries = restored.entries.len() + restored.paxos.accepted.len(),
        snapshot = restored.snapshot.as_ref().map_or(0, |s| s.meta.index),
        "recovered durable state"
    );
    match cfg.consensus {
        Protocol::Raft => {
            let mut raft_cfg = Config::new(cfg.id, voters);
            raft_cfg.election_tick = cfg.election_ticks;
            raft_cfg.heartbeat_tick = cfg.heartbeat_ticks;
            raft_cfg.lease_read = cfg.lease_read;
            raft_cfg.max_append_entries = cfg.max_append_entries;
            raft_cfg.bugs = core_bugs(&cfg.bugs);
            // Half the shortest election timeout, on the wall clock (only the
            // `lease-read-skew` bug uses it).
            let tick_ms = u64::try_from(cfg.tick.as_millis()).unwrap_or(u64::MAX);
            raft_cfg.wall_lease_ms = tick_ms.saturating_mul(u64::from(cfg.election_ticks)) / 2;
            raft_cfg.seed = seed;
            let core = Raft::new(raft_cfg, restored.hard, restored.snapshot, restored.entries)?;
            serve(cfg, core, storage, store, shutdown).await
        }
        Protocol::Paxos => {
            let mut paxos_cfg = paxos::Config::new(cfg.id, voters);
            paxos_cfg.election_tick = cfg.election_ticks;
            paxos_cfg.heartbeat_tick = cfg.heartbeat_ticks;
            paxos_cfg.max_accept_values = cfg.max_append_entries;
            paxos_cfg.bugs = PaxosBugs {
                ignore_promise: cfg.bugs.contains(&Bug::PaxosIgnorePromise),
                accept_stale_ballot: cfg.bugs.contains(&Bug::PaxosAcceptStaleBallot),
            };
            paxos_cfg.seed = seed;
            let core = Paxos::new(paxos_cfg, restored.paxos, restored.snapshot)?;
            serve(cfg, core, storage, store, shutdown).await
        }
    }
}

/// Listens, starts the node loop around `core` on its own thread, and serves until
/// `shutdown` resolves or the loop ends.
async fn serve<C: PeerCore + Persist + Send + 'static>(
    cfg: ServerConfig,
    core: C,
    storage: Storage,
    store: Store,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let bind = |addr: String| async move {
        TcpListener::bind(&addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })
    };
    let peer_listener = bind(cfg.listen_peer.clone()).await?;
    let client_listener = bind(cfg.listen_client.clone()).await?;

    let (tx, rx) = std::sync::mpsc::channel::<Event>();
    let peer_addrs = cfg
        .peers
        .iter()
        .map(|(id, p)| (*id, p.raft_addr.clone()))
        .collect();
    let transport = Transport::start(&peer_addrs, &tokio::runtime::Handle::current());
    let mut client_addrs: BTreeMap<NodeId, String> = cfg
        .peers
        .iter()
        .filter_map(|(id, p)| p.client_addr.clone().map(|a| (*id, a)))
        .collect();
    client_addrs.insert(cfg.id, cfg.listen_client.clone());
    let driver_cfg = DriverConfig {
        tick: cfg.tick,
        request_timeout: cfg.request_timeout,
        snapshot_entries: cfg.snapshot_entries.max(1),
        client_addrs,
    };
    let driver = Driver::new(core, storage, store, transport, driver_cfg);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(format!("{}-{}", cfg.consensus, cfg.id))
        .spawn(move || {
            let _ = done_tx.send(driver.run(rx));
        })
        .map_err(|e| ServerError::Thread(e.to_string()))?;

    let peers_task = tokio::spawn(transport::serve_peers(peer_listener, tx.clone()));
    let clients_task = tokio::spawn(clients::serve_clients(
        client_listener,
        tx.clone(),
        cfg.id,
        cfg.request_timeout,
    ));
    tracing::info!(peer = %cfg.listen_peer, client = %cfg.listen_client, "listening");

    tokio::pin!(done_rx);
    let result = tokio::select! {
        result = &mut done_rx => result,
        () = shutdown => {
            tracing::info!("shutting down");
            let _ = tx.send(Event::Shutdown);
            done_rx.await
        }
    };
    peers_task.abort();
    clients_task.abort();
    // Let connection tasks flush the last responses.
    tokio::time::sleep(Duration::from_millis(100)).await;
    match result {
        Ok(result) => result,
        Err(_) => Err(ServerError::Thread(
            "the node loop ended without a result".into(),
        )),
    }
}
