//! Which shard's node loop an event goes to. A node runs one loop per shard (one when
//! unsharded); the peer and client listeners hand every event to the [`Router`], which
//! sends it on:
//!
//! - a peer's message to the loop of the shard named in its frame;
//! - a status request to shard 0's loop (which reports every shard);
//! - a transaction of one shard to that shard's loop (it answers `not-leader` with
//!   that shard's leader when it does not lead);
//! - a transaction of several shards to a shard this node leads, one of its own if it
//!   leads any (any shard can coordinate a cross-shard transaction, so a client that
//!   reached a leader of any shard needs no hop), else to the loop of its first shard,
//!   which answers `not-leader` with that shard's leader, who leads a shard and so can
//!   coordinate it;
//! - the stop signal to every loop.
//!
//! With three-phase commit a shard lives on one node only (its home): a request for a
//! shard that lives elsewhere is answered `not-leader` with its home, and a peer's
//! message for it is dropped.
//!
//! Each loop publishes its consensus status here after every batch, which gives the
//! router the leaders and shard 0's loop every shard's status.

use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

use faultline_kv_proto::shards_of;

use crate::commit::ShardId;
use crate::consensus::{NodeId, Role, Status};
use crate::protocol::{Body, Request, Response};

use super::event::Event;

/// The loop an event was meant for has stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

/// Hands events to the shards' node loops (see the module docs). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Router {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    node: NodeId,
    /// Each shard's loop, when the shard lives here.
    loops: Vec<Option<Sender<Event>>>,
    /// Where each shard that does not live here lives: its home node and that node's
    /// client address (3PC: every shard lives on one node).
    elsewhere: Vec<Option<(NodeId, Option<String>)>>,
    statuses: Vec<Mutex<Option<Status>>>,
}

impl Router {
    /// A router for node `node` over the loops of shards `0..loops.len()`, all here.
    pub fn new(node: NodeId, loops: Vec<Sender<Event>>) -> Router {
        let elsewhere = loops.iter().map(|_| None).collect();
        Router::placed(node, loops.into_iter().map(Some).collect(), elsewhere)
    }

    /// A router for node `node` over shards some of which live elsewhere: `loops[k]`
    /// is shard k's loop when it lives here, `elsewhere[k]` its home node and that
    /// node's client address when it does not.
    pub fn placed(
        node: NodeId,
        loops: Vec<Option<Sender<Event>>>,
        elsewhere: Vec<Option<(NodeId, Option<String>)>>,
    ) -> Router {
        let statuses = loops.iter().map(|_| Mutex::new(None)).collect();
        Router {
            inner: Arc::new(Inner {
                node,
                loops,
                elsewhere,
                statuses,
            }),
        }
    }

    /// How many shards (node loops) there are.
    pub fn shards(&self) -> u32 {
        u32::try_from(self.inner.loops.len()).unwrap_or(u32::MAX)
    }

    /// Sends `event` to the loop it belongs to (see the module docs); a peer's message
    /// for a shard this node does not have is dropped. `Err` when that loop stopped.
    pub fn send(&self, event: Event) -> Result<(), Stopped> {
        match event {
            Event::Peer(shard, message) => {
                if self
                    .inner
                    .loops
                    .get(shard as usize)
                    .is_none_or(Option::is_none)
                {
                    tracing::warn!(
                        shard,
                        from = message.from(),
                        shards = self.shards(),
                        "dropping a message for a shard this node does not have (do all \
                         nodes run the same --shards and --commit-protocol?)"
                    );
                    return Ok(());
                }
                self.to_shard(shard, Event::Peer(shard, message))
            }
            Event::Client(request, reply) => {
                let shard = self.client_shard(&request);
                if let Some(Some((home, addr))) = self.inner.elsewhere.get(shard as usize) {
                    let answer = Response::not_leader(
                        request.id,
                        self.inner.node,
                        Some(*home),
                        addr.clone(),
                    );
                    let _ = reply.send(answer);
                    return Ok(());
                }
                self.to_shard(shard, Event::Client(request, reply))
            }
            Event::Shutdown => {
                let mut result = Ok(());
                for (shard, sender) in self.inner.loops.iter().enumerate() {
                    if sender.is_some() {
                        let shard = ShardId::try_from(shard).unwrap_or(ShardId::MAX);
                        result = result.and(self.to_shard(shard, Event::Shutdown));
                    }
                }
                result
            }
            Event::Commit { .. } => Err(Stopped),
        }
    }

    /// Sends `event` to shard `shard`'s loop.
    pub fn to_shard(&self, shard: ShardId, event: Event) -> Result<(), Stopped> {
        let sender = self
            .inner
            .loops
            .get(shard as usize)
            .and_then(Option::as_ref)
            .ok_or(Stopped)?;
        sender.send(event).map_err(|_| Stopped)
    }

    /// Shard `shard`'s loop publishes its status.
    pub fn publish(&self, shard: ShardId, status: Status) {
        if let Some(slot) = self.inner.statuses.get(shard as usize)
            && let Ok(mut slot) = slot.lock()
        {
            *slot = Some(status);
        }
    }

    /// Every shard's last published status (`None` before its loop published one).
    pub fn statuses(&self) -> Vec<Option<Status>> {
        self.inner
            .statuses
            .iter()
            .map(|slot| slot.lock().ok().and_then(|s| s.clone()))
            .collect()
    }

    fn leads(&self, shard: ShardId) -> bool {
        self.inner
            .statuses
            .get(shard as usize)
            .and_then(|slot| slot.lock().ok()?.as_ref().map(|s| s.role == Role::Leader))
            .unwrap_or(false)
    }

    /// The loop a client request goes to (see the module docs).
    fn client_shard(&self, request: &Request) -> ShardId {
        let Body::Txn(ops) = &request.body else {
            // Status: the first shard living here answers for them all.
            let here = self.inner.loops.iter().position(Option::is_some);
            return here.map_or(0, |s| ShardId::try_from(s).unwrap_or(0));
        };
        let touched = shards_of(ops, self.shards());
        match touched.as_slice() {
            [] => 0,
            [one] => *one,
            [first, ..] => touched
                .iter()
                .copied()
                .find(|s| self.leads(*s))
                .or_else(|| (0..self.shards()).find(|s| self.leads(*s)))
                .unwrap_or(*first),
        }
    }

    /// This node's id.
    pub fn node(&self) -> NodeId {
        self.inner.node
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_kv_proto::{MicroOp, parse_txn, shard_of};
    use std::sync::mpsc::{Receiver, channel};
    use tokio::sync::mpsc::unbounded_channel;

    fn status(role: Role) -> Status {
        Status {
            id: 1,
            role,
            term: 1,
            leader: None,
            vote: None,
            commit: 0,
            applied: 0,
            last_index: 0,
            snapshot_index: 0,
        }
    }

    fn read(key: &str) -> MicroOp {
        parse_txn(&serde_json::json!([["r", key, null]]))
            .unwrap()
            .remove(0)
    }

    /// A key of each of three shards.
    fn keys() -> [String; 3] {
        let mut found: [Option<String>; 3] = Default::default();
        for k in 0.. {
            let key = k.to_string();
            let slot = &mut found[shard_of(&key, 3) as usize];
            if slot.is_none() {
                *slot = Some(key);
            }
            if found.iter().all(Option::is_some) {
                break;
            }
        }
        found.map(Option::unwrap_or_default)
    }

    fn which(receivers: &[Receiver<Event>]) -> Vec<usize> {
        (0..receivers.len())
            .filter(|i| receivers[*i].try_recv().is_ok())
            .collect()
    }

    #[test]
    fn requests_go_to_the_shard_that_can_serve_them() {
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..3).map(|_| channel()).unzip();
        let router = Router::new(1, senders);
        let [k0, k1, k2] = keys();
        let (reply, _replies) = unbounded_channel();
        let send = |ops: Vec<MicroOp>| {
            router
                .send(Event::Client(Request::txn(1, ops), reply.clone()))
                .unwrap();
        };
        send(vec![read(&k2)]);
        assert_eq!(which(&receivers), vec![2]);
        // Several shards, none led here: the first one's loop answers not-leader.
        send(vec![read(&k2), read(&k1)]);
        assert_eq!(which(&receivers), vec![1]);
        // This node leads shard 0 only: it coordinates, though not a participant.
        router.publish(0, status(Role::Leader));
        router.publish(1, status(Role::Follower));
        send(vec![read(&k2), read(&k1)]);
        assert_eq!(which(&receivers), vec![0]);
        // It leads a participant: that one coordinates.
        router.publish(2, status(Role::Leader));
        send(vec![read(&k1), read(&k2)]);
        assert_eq!(which(&receivers), vec![2]);
        let _ = &k0;
        router
            .send(Event::Client(Request::status(1), reply.clone()))
            .unwrap();
        assert_eq!(which(&receivers), vec![0]);
        router.send(Event::Shutdown).unwrap();
        assert_eq!(which(&receivers), vec![0, 1, 2]);
        assert_eq!(router.statuses()[1], Some(status(Role::Follower)));
        drop(receivers);
        assert_eq!(router.send(Event::Shutdown), Err(Stopped));
    }

    #[test]
    fn a_shard_living_elsewhere_is_answered_with_its_home() {
        let (sender, receiver) = channel();
        let home = Some((2, Some("10.0.0.2:8001".to_string())));
        let router = Router::placed(1, vec![Some(sender), None, None], vec![None, home, None]);
        let [k0, k1, _] = keys();
        let (reply, mut replies) = unbounded_channel();
        router
            .send(Event::Client(
                Request::txn(7, vec![read(&k1)]),
                reply.clone(),
            ))
            .unwrap();
        let answer = replies.try_recv().unwrap();
        assert_eq!(answer.error.as_deref(), Some("not-leader"));
        assert_eq!(
            (answer.leader, answer.leader_addr.as_deref()),
            (Some(2), Some("10.0.0.2:8001"))
        );
        router
            .send(Event::Client(Request::txn(8, vec![read(&k0)]), reply))
            .unwrap();
        assert!(receiver.try_recv().is_ok());
        router.send(Event::Shutdown).unwrap();
        assert!(matches!(receiver.try_recv(), Ok(Event::Shutdown)));
    }
}
