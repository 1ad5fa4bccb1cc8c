//! `faultline-kv`: one node of the bundled Raft / Multi-Paxos key-value store. See the crate docs
//! (`cargo doc -p faultline-kv`) or `clusters/kvnode/README.md`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use faultline_kv::consensus::Protocol;
use faultline_kv::server::{Bug, CommitProtocol, Peer, ServerConfig, run};

/// One node of faultline-kv, a Raft or Multi-Paxos key-value store with planted bugs.
#[derive(Debug, Parser)]
#[command(name = "faultline-kv", version)]
struct Args {
    /// This node's id (a positive integer, unique in the cluster).
    #[arg(long)]
    id: u64,
    /// Another member: `ID=RAFT_ADDR` or `ID=RAFT_ADDR/CLIENT_ADDR` (repeat per peer).
    #[arg(long = "peer", value_name = "ID=ADDR[/CLIENT_ADDR]")]
    peers: Vec<String>,
    /// Address to listen on for peers.
    #[arg(long, value_name = "HOST:PORT")]
    listen_peer: String,
    /// Address to listen on for clients.
    #[arg(long, value_name = "HOST:PORT")]
    listen_client: String,
    /// Consensus protocol (every node of a cluster must run the same one).
    #[arg(long, value_enum, default_value_t = Protocol::Raft)]
    consensus: Protocol,
    /// Data directory (write-ahead log and snapshot); created if missing.
    #[arg(long)]
    data_dir: PathBuf,
    /// Length of one consensus tick, in milliseconds.
    #[arg(long, default_value_t = 10)]
    tick_ms: u64,
    /// Election (leader failure-detection) timeout in ticks (each node draws from [N, 2N)).
    #[arg(long, default_value_t = 30)]
    election_ticks: u32,
    /// Heartbeat interval in ticks.
    #[arg(long, default_value_t = 5)]
    heartbeat_ticks: u32,
    /// How long a request may wait for its outcome before `info`/`timeout`, in ms.
    #[arg(long, default_value_t = 5_000)]
    request_timeout_ms: u64,
    /// Take a snapshot and compact the log every this many applied entries.
    #[arg(long, default_value_t = 10_000)]
    snapshot_entries: u64,
    /// Most log entries (Raft) or values (Multi-Paxos) in one append message to a
    /// follower; a follower that lags by more catches up over several round trips.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    max_append_entries: u32,
    /// Serve reads from a leader lease instead of confirming leadership with a quorum
    /// (faster; relies on bounded clock drift).
    #[arg(long)]
    lease_read: bool,
    /// Spread the keys over this many shards, each its own consensus group over all the
    /// nodes (every node of a cluster must run the same count). A transaction of
    /// several shards commits by --commit-protocol.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    shards: u32,
    /// How a transaction touching several shards commits (with --shards above 1).
    #[arg(long, value_enum, default_value_t = CommitProtocol::TwoPhase)]
    commit_protocol: CommitProtocol,
    /// Enable a planted bug (repeatable). Off by default.
    #[arg(long = "bug", value_enum)]
    bugs: Vec<Bug>,
    /// Log filter (tracing-subscriber syntax), e.g. `info` or `faultline_kv=debug`.
    #[arg(long, default_value = "info")]
    log: String,
}

fn parse_peer(text: &str) -> anyhow::Result<(u64, Peer)> {
    let (id, addrs) = text
        .split_once('=')
        .with_context(|| format!("--peer {text:?}: expected ID=RAFT_ADDR[/CLIENT_ADDR]"))?;
    let id: u64 = id
        .parse()
        .with_context(|| format!("--peer {text:?}: bad id {id:?}"))?;
    let (raft_addr, client_addr) = match addrs.split_once('/') {
        Some((r, c)) => (r.to_string(), Some(c.to_string())),
        None => (addrs.to_string(), None),
    };
    Ok((
        id,
        Peer {
            raft_addr,
            client_addr,
        },
    ))
}

fn config(args: Args) -> anyhow::Result<ServerConfig> {
    if args.id == 0 {
        bail!("--id must be positive");
    }
    let mut peers = BTreeMap::new();
    for text in &args.peers {
        let (id, peer) = parse_peer(text)?;
        if id == args.id {
            bail!("--peer {text:?} names this node itself (--id {})", args.id);
        }
        if peers.insert(id, peer).is_some() {
            bail!("--peer {id} given twice");
        }
    }
    if args.election_ticks <= args.heartbeat_ticks || args.heartbeat_ticks == 0 {
        bail!("--election-ticks must exceed --heartbeat-ticks, which must be positive");
    }
    for bug in &args.bugs {
        if bug.protocol().is_some_and(|p| p != args.consensus) {
            bail!(
                "--bug {bug} is a bug of the other consensus protocol; it does nothing with \
                 --consensus {}",
                args.consensus
            );
        }
    }
    if args.bugs.contains(&Bug::TwoPcPresumedCommit) && args.shards < 2 {
        bail!(
            "--bug 2pc-presumed-commit is a bug of cross-shard commit; it needs --shards 2 or \
             more"
        );
    }
    Ok(ServerConfig {
        id: args.id,
        consensus: args.consensus,
        peers,
        listen_peer: args.listen_peer,
        listen_client: args.listen_client,
        data_dir: args.data_dir,
        tick: Duration::from_millis(args.tick_ms.max(1)),
        election_ticks: args.election_ticks,
        heartbeat_ticks: args.heartbeat_ticks,
        request_timeout: Duration::from_millis(args.request_timeout_ms),
        snapshot_entries: args.snapshot_entries,
        max_append_entries: args.max_append_entries as usize,
        lease_read: args.lease_read,
        bugs: args.bugs,
        shards: args.shards,
        commit_protocol: args.commit_protocol,
    })
}

async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending::<()>().await,
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let cfg = match config(args) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("faultline-kv: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("faultline-kv: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let id = cfg.id;
    match runtime.block_on(run(cfg, terminated())) {
        Ok(()) => {
            tracing::info!(id, "stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(id, error = %e, "node stopped");
            eprintln!("faultline-kv: node {id}: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &[&str]) -> Result<ServerConfig, String> {
        let mut argv = vec![
            "faultline-kv",
            "--id",
            "1",
            "--listen-peer",
            "127.0.0.1:1",
            "--listen-client",
            "127.0.0.1:2",
            "--data-dir",
            "/tmp/x",
        ];
        argv.extend_from_slice(extra);
        let args = Args::try_parse_from(argv).map_err(|e| e.to_string())?;
        config(args).map_err(|e| format!("{e:#}"))
    }

    #[test]
    fn shards_are_bounded_and_the_commit_bug_needs_them() {
        assert_eq!(parse(&[]).unwrap().shards, 1);
        assert_eq!(parse(&["--shards", "3"]).unwrap().shards, 3);
        assert!(parse(&["--shards", "0"]).is_err());
        assert!(parse(&["--shards", "65"]).is_err());
        let e = parse(&["--bug", "2pc-presumed-commit"]).unwrap_err();
        assert!(e.contains("--shards 2"), "{e}");
        let cfg = parse(&["--shards", "2", "--bug", "2pc-presumed-commit"]).unwrap();
        assert_eq!(cfg.bugs, vec![Bug::TwoPcPresumedCommit]);
    }

    #[test]
    fn append_batches_are_configurable_and_never_empty() {
        assert_eq!(parse(&[]).unwrap().max_append_entries, 256);
        let cfg = parse(&["--max-append-entries", "4"]).unwrap();
        assert_eq!(cfg.max_append_entries, 4);
        let e = parse(&["--max-append-entries", "0"]).unwrap_err();
        assert!(e.contains("--max-append-entries"), "{e}");
    }
}
