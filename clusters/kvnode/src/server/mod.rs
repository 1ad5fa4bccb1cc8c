//! The server: storage recovery, peer and client listeners (tokio), and one node loop
//! per shard, each on its own thread (one shard when unsharded), which the
//! [`router::Router`] hands events to. Thin by design: all consensus logic is in
//! [`crate::raft`] and [`crate::paxos`], driven through the [`crate::consensus::Core`]
//! trait, and cross-shard commit in [`crate::commit`].

mod clients;
pub mod driver;
pub mod event;
mod forward;
mod layout;
pub mod router;
pub mod transport;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::commit::two_phase::{self, Durable};
use crate::commit::{ShardId, three_phase};
use crate::consensus::{ConfigError, NodeId, Protocol};
use crate::kv::Store;
use crate::paxos::{self, Paxos, PaxosBugs};
use crate::peer::PeerCore;
use crate::raft::{Config, CoreBugs, Raft};
use crate::storage::{Persist, Storage, StorageError};

use driver::three_pc::{self, ThreePc};
use driver::{CommitSettings, Driver, DriverConfig};
use event::Event;
use router::Router;
use transport::Transport;

pub use faultline_kv_proto::{Bug, CommitProtocol};

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
    /// How many shards (consensus groups) the keys are spread over (1: unsharded).
    pub shards: u32,
    /// How a transaction of several shards commits.
    pub commit_protocol: CommitProtocol,
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
    /// The data directory was written with another shard count.
    #[error(transparent)]
    Layout(#[from] layout::LayoutError),
    /// A shard's 3PC log could not be read or written.
    #[error("3PC log: {0}")]
    CommitLog(String),
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
    let shards = cfg.shards.max(1);
    layout::check(&cfg.data_dir, shards)?;
    let bind = |addr: String| async move {
        TcpListener::bind(&addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })
    };
    let peer_listener = bind(cfg.listen_peer.clone()).await?;
    let client_listener = bind(cfg.listen_client.clone()).await?;

    let homes = homes(&cfg);
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    let mut elsewhere = Vec::new();
    for shard in 0..shards {
        match homes.as_ref().map(|h| h[shard as usize]) {
            Some(home) if home != cfg.id => {
                senders.push(None);
                receivers.push(None);
                let addr = cfg.peers.get(&home).and_then(|p| p.client_addr.clone());
                elsewhere.push(Some((home, addr)));
            }
            _ => {
                let (tx, rx) = std::sync::mpsc::channel::<Event>();
                senders.push(Some(tx));
                receivers.push(Some(rx));
                elsewhere.push(None);
            }
        }
    }
    let router = Router::placed(cfg.id, senders, elsewhere);
    let peer_addrs = cfg
        .peers
        .iter()
        .map(|(id, p)| (*id, p.raft_addr.clone()))
        .collect();
    let transport = Transport::start(&peer_addrs, &tokio::runtime::Handle::current());
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    for (shard, events) in (0..shards).zip(receivers) {
        let Some(events) = events else {
            continue;
        };
        let shard_cfg = ShardLoop {
            shard,
            shards,
            events,
            router: router.clone(),
            transport: transport.clone(),
            done: done_tx.clone(),
            homes: homes.clone(),
        };
        if let Err(e) = start_shard(&cfg, shard_cfg) {
            let _ = router.send(Event::Shutdown);
            return Err(e);
        }
    }
    drop(done_tx);

    let peers_task = tokio::spawn(transport::serve_peers(peer_listener, router.clone()));
    let clients_task = tokio::spawn(clients::serve_clients(
        client_listener,
        router.clone(),
        cfg.id,
        cfg.request_timeout,
    ));
    tracing::info!(peer = %cfg.listen_peer, client = %cfg.listen_client, shards, "listening");

    tokio::pin!(shutdown);
    let mut result = tokio::select! {
        first = done_rx.recv() => first.unwrap_or(Ok(())),
        () = &mut shutdown => {
            tracing::info!("shutting down");
            Ok(())
        }
    };
    // One loop ended (a fatal error) or the node stops: stop them all.
    let _ = router.send(Event::Shutdown);
    while let Some(other) = done_rx.recv().await {
        result = result.and(other);
    }
    peers_task.abort();
    clients_task.abort();
    // Let connection tasks flush the last responses.
    tokio::time::sleep(Duration::from_millis(100)).await;
    result
}

/// What one shard's loop is given.
struct ShardLoop {
    shard: ShardId,
    shards: u32,
    events: std::sync::mpsc::Receiver<Event>,
    router: Router,
    transport: Transport,
    done: tokio::sync::mpsc::UnboundedSender<Result<(), ServerError>>,
    /// With 3PC: each shard's home node (the one node holding it).
    homes: Option<Vec<NodeId>>,
}

/// With three-phase commit (and shards), each shard's home: the node its leader
/// would prefer, which alone holds it. `None` otherwise (every node holds every shard).
fn homes(cfg: &ServerConfig) -> Option<Vec<NodeId>> {
    if cfg.shards <= 1 || cfg.commit_protocol != CommitProtocol::ThreePhase {
        return None;
    }
    let mut ids: Vec<NodeId> = cfg.peers.keys().copied().collect();
    ids.push(cfg.id);
    ids.sort_unstable();
    let homes = (0..cfg.shards)
        .map(|shard| ids[faultline_kv_proto::preferred_node(shard, ids.len())])
        .collect();
    Some(homes)
}

/// Recovers shard `shard`'s storage (the data directory itself when unsharded,
/// `shard-K` under it otherwise), builds its consensus core and starts its loop on
/// its own thread.
fn start_shard(cfg: &ServerConfig, shard_loop: ShardLoop) -> Result<(), ServerError> {
    let ShardLoop { shard, shards, .. } = shard_loop;
    let dir = layout::shard_dir(&cfg.data_dir, shard, shards);
    let fsync = !cfg.bugs.contains(&Bug::NoFsync);
    let (storage, restored) = Storage::open(&dir, fsync)?;
    if restored.torn_bytes > 0 {
        // `bytes` first: readers (the disk nemesis's tests) look for `log bytes=N`.
        tracing::warn!(
            bytes = restored.torn_bytes,
            shard,
            "truncated a torn tail of the write-ahead log"
        );
    }
    let (store, commit_state) = match &restored.snapshot {
        Some(s) => driver::entries::restore(&s.data).map_err(ServerError::Snapshot)?,
        None => (Store::new(), None),
    };
    let mut voters: Vec<NodeId> = cfg.peers.keys().copied().collect();
    voters.push(cfg.id);
    voters.sort_unstable();
    let commit = if shards <= 1 {
        None
    } else if let Some(homes) = &shard_loop.homes {
        // 3PC: the shard is this node's alone, a group of one.
        voters = vec![cfg.id];
        let (disk, recovered) =
            three_pc::DiskLog::open(&dir).map_err(|e| ServerError::CommitLog(e.to_string()))?;
        let three = ThreePc::new(
            shard,
            three_phase::Config::default(),
            homes.clone(),
            disk,
            recovered,
        );
        Some(CommitSettings::ThreePhase(Box::new(three)))
    } else {
        Some(CommitSettings::TwoPhase(two_phase::Config {
            presumed_commit: cfg.bugs.contains(&Bug::TwoPcPresumedCommit),
            ..two_phase::Config::default()
        }))
    };
    // Shard k's leader prefers the k-th node (mod n): the others wait twice as long
    // before standing, so leaders spread over the nodes.
    let preferred = voters[faultline_kv_proto::preferred_node(shard, voters.len())];
    let election_ticks = if voters.len() > 1 && shards > 1 && preferred != cfg.id {
        cfg.election_ticks.saturating_mul(2)
    } else {
        cfg.election_ticks
    };
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(cfg.id, |d| d.as_nanos() as u64 ^ cfg.id ^ u64::from(shard));
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
        shard,
        consensus = %cfg.consensus,
        term = restored.hard.term,
        promised = %restored.paxos.promised,
        entries = restored.entries.len() + restored.paxos.accepted.len(),
        snapshot = restored.snapshot.as_ref().map_or(0, |s| s.meta.index),
        "recovered durable state"
    );
    let state = Recovered {
        storage,
        store,
        commit_state,
        commit,
    };
    match cfg.consensus {
        Protocol::Raft => {
            let mut raft_cfg = Config::new(cfg.id, voters);
            raft_cfg.election_tick = election_ticks;
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
            spawn_loop(cfg, core, state, shard_loop)
        }
        Protocol::Paxos => {
            let mut paxos_cfg = paxos::Config::new(cfg.id, voters);
            paxos_cfg.election_tick = election_ticks;
            paxos_cfg.heartbeat_tick = cfg.heartbeat_ticks;
            paxos_cfg.max_accept_values = cfg.max_append_entries;
            paxos_cfg.bugs = PaxosBugs {
                ignore_promise: cfg.bugs.contains(&Bug::PaxosIgnorePromise),
                accept_stale_ballot: cfg.bugs.contains(&Bug::PaxosAcceptStaleBallot),
            };
            paxos_cfg.seed = seed;
            let core = Paxos::new(paxos_cfg, restored.paxos, restored.snapshot)?;
            spawn_loop(cfg, core, state, shard_loop)
        }
    }
}

/// A shard's recovered storage and state machine.
struct Recovered {
    storage: Storage,
    store: Store,
    commit_state: Option<Durable>,
    commit: Option<CommitSettings>,
}

/// Starts the node loop around `core` on its own thread; its result goes to
/// `shard_loop.done`. A sharded node's protocol events are logged in a `shard` span
/// (`shard{shard=K}: protocol: ...`), so a node-log checker tells the groups apart.
fn spawn_loop<C: PeerCore + Persist + Send + 'static>(
    cfg: &ServerConfig,
    core: C,
    state: Recovered,
    shard_loop: ShardLoop,
) -> Result<(), ServerError> {
    let ShardLoop {
        shard,
        shards,
        events,
        router,
        transport,
        done,
        ..
    } = shard_loop;
    let mut client_addrs: BTreeMap<NodeId, String> = cfg
        .peers
        .iter()
        .filter_map(|(id, p)| p.client_addr.clone().map(|a| (*id, a)))
        .collect();
    client_addrs.insert(cfg.id, cfg.listen_client.clone());
    let commit = state.commit;
    let driver_cfg = DriverConfig {
        tick: cfg.tick,
        request_timeout: cfg.request_timeout,
        snapshot_entries: cfg.snapshot_entries.max(1),
        client_addrs,
        shard,
        router,
        commit,
    };
    let mut driver = Driver::new(core, state.storage, state.store, transport, driver_cfg);
    if let Some(commit_state) = state.commit_state {
        driver.restore_commit(commit_state);
    }
    let name = if shards > 1 {
        format!("{}-{}-s{shard}", cfg.consensus, cfg.id)
    } else {
        format!("{}-{}", cfg.consensus, cfg.id)
    };
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            let result = if shards > 1 {
                let span = tracing::info_span!("shard", shard);
                let _entered = span.enter();
                driver.run(events)
            } else {
                driver.run(events)
            };
            let _ = done.send(result);
        })
        .map_err(|e| ServerError::Thread(e.to_string()))?;
    Ok(())
}
