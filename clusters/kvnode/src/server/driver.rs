//! The node loop: one thread owns the consensus core (Raft or Multi-Paxos), the storage and the state machine.
//! It batches every event that arrived while it was busy (so one fsync covers many
//! requests: group commit), ticks the core, and handles each `Ready` in order:
//! persist and fsync, log its votes (`vote` events: only once durable), send, apply,
//! answer clients, advance.

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

use crate::commit::{ShardId, two_phase};
use crate::consensus::{CoreReady, Entry, NodeId, Protocol};
use crate::events;
use crate::kv::{MicroOp, Store, TxnOutcome, txn_to_json};
use crate::peer::{PeerCore, PeerMessage};
use crate::protocol::{Body, Request, Response, status_json};
use crate::storage::{Persist, Storage};

use super::ServerError;
use super::event::Event;
use super::router::Router;
use super::transport::Transport;

mod commit_state;
mod cross_shard;
pub mod entries;
mod parts;
pub mod three_pc;

pub use commit_state::{Commit, CommitSettings};
use cross_shard::CrossShard;
use entries::Command;

/// A client waiting for its transaction.
#[derive(Debug)]
pub(super) struct Waiter {
    id: Value,
    reply: UnboundedSender<Response>,
    /// For writes: the term of the proposed entry.
    term: u64,
    txn: Vec<MicroOp>,
    deadline: Instant,
}

/// Settings of the node loop.
#[derive(Debug)]
pub struct DriverConfig {
    /// How long one Raft tick is.
    pub tick: Duration,
    /// Answer `info`/`timeout` (writes) or `fail`/`timeout` (reads) after this long.
    pub request_timeout: Duration,
    /// Snapshot and compact the log every this many applied entries.
    pub snapshot_entries: u64,
    /// Each peer's client address, for `not-leader` hints.
    pub client_addrs: BTreeMap<NodeId, String>,
    /// The shard this loop runs (0 on an unsharded node).
    pub shard: ShardId,
    /// Where the node's other shards' loops are, and the statuses they publish.
    pub router: Router,
    /// How cross-shard transactions commit, on a sharded node (`None`: unsharded,
    /// no cross-shard transactions).
    pub commit: Option<CommitSettings>,
}

/// The node loop's state, around a core of either protocol.
pub struct Driver<C> {
    core: C,
    storage: Storage,
    store: Store,
    transport: Transport,
    cfg: DriverConfig,
    id: NodeId,
    writes: HashMap<u64, Waiter>,
    reads: HashMap<u64, Waiter>,
    /// (ctx, index) of confirmed reads waiting for the state machine to catch up.
    ready_reads: Vec<(u64, u64)>,
    next_ctx: u64,
    /// The commit index last logged as a `commit` protocol event.
    logged_commit: u64,
    shard: ShardId,
    /// Cross-shard transactions (a sharded node).
    cross: Option<CrossShard>,
    /// Why the loop must stop (the 3PC log could not be written).
    failed: Option<String>,
}

impl<C: PeerCore + Persist> Driver<C> {
    /// A loop around a restored core, its storage and state machine.
    pub fn new(
        core: C,
        storage: Storage,
        store: Store,
        transport: Transport,
        cfg: DriverConfig,
    ) -> Driver<C> {
        let shards = cfg.router.shards();
        let mut cfg = cfg;
        let cross = cfg
            .commit
            .take()
            .map(|commit| CrossShard::new(cfg.shard, shards, core.id(), commit));
        Driver {
            id: core.id(),
            shard: cfg.shard,
            cross,
            failed: None,
            core,
            storage,
            store,
            transport,
            cfg,
            writes: HashMap::new(),
            reads: HashMap::new(),
            ready_reads: Vec::new(),
            next_ctx: 1,
            logged_commit: 0,
        }
    }

    /// Restores the cross-shard commit state a snapshot held (a sharded node's).
    pub fn restore_commit(&mut self, state: two_phase::Durable) {
        if let Some(cross) = &mut self.cross {
            cross.commit.restore(state);
        }
    }

    /// Runs until shutdown or a storage failure.
    pub fn run(mut self, events: Receiver<Event>) -> Result<(), ServerError> {
        self.core.log_start();
        self.logged_commit = self.core.status().commit;
        let mut next_tick = Instant::now() + self.cfg.tick;
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            let mut stop = false;
            match events.recv_timeout(wait) {
                Ok(event) => stop |= self.handle(event),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => stop = true,
            }
            // Take everything that queued up meanwhile: one batch, one fsync.
            for _ in 0..16_384 {
                match events.try_recv() {
                    Ok(event) => stop |= self.handle(event),
                    Err(_) => break,
                }
            }
            let now = Instant::now();
            if now >= next_tick {
                self.core.tick();
                self.commit_tick();
                next_tick += self.cfg.tick;
                if next_tick < now {
                    next_tick = now + self.cfg.tick;
                }
                self.expire(now);
                self.expire_cross_shard(now);
            }
            self.propose_deferred();
            while self.core.has_ready() {
                self.process_ready()?;
                self.sync_leadership();
                self.propose_deferred();
            }
            self.sync_leadership();
            self.retry_held(Instant::now());
            if let Some(reason) = self.failed.take() {
                self.stop();
                return Err(ServerError::CommitLog(reason));
            }
            if stop {
                self.stop();
                return Ok(());
            }
        }
    }

    /// Handles one event; returns true to stop.
    fn handle(&mut self, event: Event) -> bool {
        match event {
            Event::Peer(_, PeerMessage::Commit { message, .. }) => {
                self.on_commit_message(message, true);
            }
            Event::Commit { message, relayed } => self.on_commit_message(message, relayed),
            Event::Peer(_, m) => match C::Message::try_from(m) {
                Ok(m) => self.core.step(m),
                Err(m) => tracing::warn!(
                    protocol = %C::PROTOCOL,
                    from = m.from(),
                    "dropping a message of the other consensus protocol"
                ),
            },
            Event::Client(request, reply) => self.handle_client(request, reply),
            Event::Shutdown => return true,
        }
        false
    }

    fn handle_client(&mut self, request: Request, reply: UnboundedSender<Response>) {
        let Request { id, body, .. } = request;
        let txn = match body {
            Body::Status => {
                let _ = reply.send(Response::ok_status(id, self.id, self.status_json()));
                return;
            }
            Body::Txn(txn) => txn,
        };
        let deadline = Instant::now() + self.cfg.request_timeout;
        if self.cross.is_some()
            && faultline_kv_proto::shards_of(&txn, self.cfg.router.shards()).len() > 1
        {
            self.begin_cross_shard(id, reply, txn, deadline);
            return;
        }
        if self.is_busy(&txn) {
            self.hold(Waiter {
                id,
                reply,
                term: 0,
                txn,
                deadline,
            });
            return;
        }
        if txn.iter().all(MicroOp::is_read) {
            let ctx = self.next_ctx;
            self.next_ctx += 1;
            match self.core.read_index(ctx) {
                Ok(()) => {
                    let waiter = Waiter {
                        id,
                        reply,
                        term: 0,
                        txn,
                        deadline,
                    };
                    self.reads.insert(ctx, waiter);
                }
                Err(not_leader) => self.reply_not_leader(id, &reply, not_leader.leader),
            }
            return;
        }
        let data = serde_json::to_vec(&txn_to_json(&txn)).unwrap_or_default();
        match self.core.propose(data) {
            Ok((index, term)) => {
                let waiter = Waiter {
                    id,
                    reply,
                    term,
                    txn,
                    deadline,
                };
                if let Some(old) = self.writes.insert(index, waiter) {
                    let response = if C::PROTOCOL == Protocol::Paxos {
                        // An earlier leader's value may still be chosen in this slot.
                        let message = "this node proposed again in the slot; the earlier \
                                       write's outcome is unknown";
                        Response::info(old.id, self.id, "slot-reused", message)
                    } else {
                        let message =
                            "a newer leader reused this log index; the write did not take effect";
                        Response::fail(old.id, self.id, "entry-replaced", message)
                    };
                    let _ = old.reply.send(response);
                }
            }
            Err(not_leader) => self.reply_not_leader(id, &reply, not_leader.leader),
        }
    }

    /// This node's status: this shard's, and every shard's under `shards` when sharded.
    fn status_json(&self) -> Value {
        let mut status = status_json(&self.core.status());
        if self.cross.is_some()
            && let Value::Object(fields) = &mut status
        {
            let shards: Vec<Value> = self
                .cfg
                .router
                .statuses()
                .iter()
                .enumerate()
                .map(|(shard, s)| {
                    let mut one = s.as_ref().map_or(Value::Null, status_json);
                    if let Value::Object(o) = &mut one {
                        o.insert("shard".into(), shard.into());
                    }
                    one
                })
                .collect();
            fields.insert("shards".into(), Value::Array(shards));
        }
        status
    }

    fn reply_not_leader(
        &self,
        id: Value,
        reply: &UnboundedSender<Response>,
        leader: Option<NodeId>,
    ) {
        let addr = leader.and_then(|l| self.cfg.client_addrs.get(&l).cloned());
        let _ = reply.send(Response::not_leader(id, self.id, leader, addr));
    }

    /// Logs a `commit` protocol event if the commit index advanced since the last one.
    fn log_commit(&mut self) {
        let commit = self.core.status().commit;
        if commit > self.logged_commit {
            self.logged_commit = commit;
            events::commit(self.id, commit, self.core.event_term_at(commit));
        }
    }

    fn process_ready(&mut self) -> Result<(), ServerError> {
        self.log_commit();
        let mut ready = self.core.ready();
        // A Raft leader may replicate before its own write is durable: it counts
        // itself toward a commit only after `advance` (Raft thesis §10.2.1). Everyone
        // else sends only after persisting (votes, promises and acceptances depend on it).
        let messages: Vec<PeerMessage> =
            ready.take_messages().into_iter().map(Into::into).collect();
        let early = self.core.sends_before_persisting();
        if early {
            for m in &messages {
                self.transport.send(self.shard, m);
            }
        }
        C::persist(&mut self.storage, &ready)?;
        // Votes count only once durable: a node killed before this point never cast
        // them (and may vote again after a restart), so they are logged only now.
        for (term, candidate) in ready.votes() {
            events::vote(self.id, *term, *candidate);
        }
        if !early {
            for m in &messages {
                self.transport.send(self.shard, m);
            }
        }
        if let Some(snapshot) = ready.snapshot() {
            let (store, commit) =
                entries::restore(&snapshot.data).map_err(ServerError::Snapshot)?;
            self.store = store;
            if let Some(cross) = &mut self.cross {
                cross.commit.restore(commit.unwrap_or_default());
            }
            let index = snapshot.meta.index;
            events::snapshot(self.id, index);
            tracing::info!(
                index,
                term = snapshot.meta.term,
                "installed snapshot from leader"
            );
            let covered: Vec<u64> = self
                .writes
                .keys()
                .copied()
                .filter(|i| *i <= index)
                .collect();
            for i in covered {
                if let Some(w) = self.writes.remove(&i) {
                    let message =
                        "a snapshot replaced the log before this write's outcome was seen";
                    let _ =
                        w.reply
                            .send(Response::info(w.id, self.id, "snapshot-installed", message));
                }
            }
        }
        events::apply(self.id, ready.committed());
        for entry in ready.committed() {
            self.apply(entry);
        }
        for rs in ready.read_states() {
            self.ready_reads.push((rs.ctx, rs.index));
        }
        for ctx in ready.failed_reads() {
            if let Some(w) = self.reads.remove(ctx) {
                let message = "leadership was lost before the read was confirmed";
                let _ = w
                    .reply
                    .send(Response::fail(w.id, self.id, "leadership-lost", message));
            }
        }
        self.core.advance(&ready);
        self.log_commit();
        self.serve_reads();
        self.maybe_compact()
    }

    fn apply(&mut self, entry: &Entry) {
        let outcome = if entry.data.is_empty() {
            None
        } else {
            match entries::decode(&entry.data) {
                Ok(Command::Txn(txn)) => Some(self.apply_txn(&txn)),
                Ok(Command::Record(record)) => {
                    self.apply_record(&record);
                    None
                }
                Ok(Command::Part { txn, ops }) => Some(self.apply_part(txn, &ops)),
                Err(e) => {
                    tracing::error!(index = entry.index, error = %e, "skipping undecodable entry");
                    None
                }
            }
        };
        let Some(w) = self.writes.remove(&entry.index) else {
            return;
        };
        let response = match outcome {
            _ if entry.term != w.term => Response::fail(
                w.id,
                self.id,
                "entry-replaced",
                "leadership changed before the write committed; it did not take effect",
            ),
            Some(TxnOutcome::Committed(results)) => Response::ok_txn(w.id, self.id, results),
            Some(TxnOutcome::Aborted { code, message }) => {
                Response::fail(w.id, self.id, code, message)
            }
            None => Response::info(w.id, self.id, "internal", "the entry could not be applied"),
        };
        let _ = w.reply.send(response);
    }

    /// Applies a client's transaction of this shard, unless a prepared cross-shard
    /// part holds one of its keys: then it aborts (`locked`), the same on every replica.
    fn apply_txn(&mut self, txn: &[MicroOp]) -> TxnOutcome {
        match self.locked_key(txn) {
            Some(key) => TxnOutcome::Aborted {
                code: "locked",
                message: locked_message(&key),
            },
            None => self.store.apply(txn),
        }
    }

    fn serve_reads(&mut self) {
        let applied = self.core.status().applied;
        let mut waiting = Vec::new();
        for (ctx, index) in std::mem::take(&mut self.ready_reads) {
            if index > applied {
                waiting.push((ctx, index));
                continue;
            }
            if let Some(w) = self.reads.remove(&ctx) {
                if self.is_busy(&w.txn) || self.locked_key(&w.txn).is_some() {
                    // A cross-shard part holds a key: read again once it is free.
                    self.hold(w);
                    continue;
                }
                let response = match self.store.apply(&w.txn) {
                    TxnOutcome::Committed(results) => Response::ok_txn(w.id, self.id, results),
                    TxnOutcome::Aborted { code, message } => {
                        Response::fail(w.id, self.id, code, message)
                    }
                };
                let _ = w.reply.send(response);
            }
        }
        self.ready_reads = waiting;
    }

    fn maybe_compact(&mut self) -> Result<(), ServerError> {
        let st = self.core.status();
        if st.applied < st.snapshot_index + self.cfg.snapshot_entries {
            return Ok(());
        }
        let commit = self.cross.as_ref().and_then(|c| c.commit.durable());
        let data = entries::snapshot(&self.store, commit);
        self.core
            .compact(st.applied, data)
            .map_err(|e| ServerError::Snapshot(e.to_string()))?;
        self.core.compact_storage(&mut self.storage)?;
        tracing::info!(index = st.applied, "snapshot taken; log compacted");
        Ok(())
    }

    fn expire(&mut self, now: Instant) {
        for (_, w) in self.writes.extract_if(|_, w| w.deadline <= now) {
            let message = "no outcome within the request timeout; the write may still take effect";
            let _ = w
                .reply
                .send(Response::info(w.id, self.id, "timeout", message));
        }
        for (_, w) in self.reads.extract_if(|_, w| w.deadline <= now) {
            let message =
                "the read was not confirmed within the request timeout (reads have no effect)";
            let _ = w
                .reply
                .send(Response::fail(w.id, self.id, "timeout", message));
        }
    }

    fn stop(&mut self) {
        self.stop_cross_shard();
        for (_, w) in self.writes.drain() {
            let message = "the node is shutting down; the write may still take effect";
            let _ = w
                .reply
                .send(Response::info(w.id, self.id, "node-stopping", message));
        }
        for (_, w) in self.reads.drain() {
            let _ = w.reply.send(Response::fail(
                w.id,
                self.id,
                "node-stopping",
                "the node is shutting down",
            ));
        }
    }
}

/// Why a transaction touching `key` did not run.
fn locked_message(key: &str) -> String {
    format!(
        "key {key} is locked by a cross-shard transaction in progress; this transaction \
         had no effect"
    )
}

#[cfg(test)]
mod tests;
