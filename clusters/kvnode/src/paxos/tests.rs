//! Unit tests of the Multi-Paxos core on a perfect in-memory network.

use std::collections::BTreeMap;

use super::*;
use crate::consensus::{Core, NodeId, Role};
use crate::events::tests::{lines, votes_logged};

struct Net {
    nodes: BTreeMap<NodeId, Paxos>,
    down: Vec<NodeId>,
    applied: BTreeMap<NodeId, Vec<(u64, u64, Vec<u8>)>>,
}

impl Net {
    fn new(n: u64, bugs: PaxosBugs) -> Net {
        let ids: Vec<NodeId> = (1..=n).collect();
        let nodes = ids
            .iter()
            .map(|id| {
                let mut cfg = Config::new(*id, ids.clone());
                cfg.bugs = bugs;
                (*id, Paxos::new(cfg, Durable::default(), None).unwrap())
            })
            .collect();
        Net {
            nodes,
            down: Vec::new(),
            applied: BTreeMap::new(),
        }
    }

    fn settle(&mut self) {
        for _ in 0..100 {
            let mut msgs = Vec::new();
            for (id, node) in self.nodes.iter_mut() {
                while node.has_ready() {
                    let ready = node.ready();
                    msgs.extend(ready.messages.iter().cloned());
                    for e in &ready.chosen {
                        self.applied.entry(*id).or_default().push((
                            e.index,
                            e.term,
                            e.data.clone(),
                        ));
                    }
                    node.advance(&ready);
                }
            }
            if msgs.is_empty() {
                return;
            }
            for m in msgs {
                if !self.down.contains(&m.to)
                    && !self.down.contains(&m.from)
                    && let Some(n) = self.nodes.get_mut(&m.to)
                {
                    n.step(m);
                }
            }
        }
    }

    fn tick_until_leader(&mut self) -> NodeId {
        for _ in 0..200 {
            for (id, node) in self.nodes.iter_mut() {
                if !self.down.contains(id) {
                    node.tick();
                }
            }
            self.settle();
            let leaders: Vec<NodeId> = self
                .nodes
                .iter()
                .filter(|(id, n)| !self.down.contains(id) && n.status().role == Role::Leader)
                .map(|(id, _)| *id)
                .collect();
            if leaders.len() == 1 {
                return leaders[0];
            }
        }
        panic!("no leader");
    }
}

#[test]
fn ballots_order_by_round_then_node() {
    let a = Ballot { round: 1, node: 3 };
    let b = Ballot { round: 2, node: 1 };
    assert!(a < b && a.packed() < b.packed());
    assert!(Ballot { round: 2, node: 2 } > b);
}

#[test]
fn leader_is_elected_and_values_are_chosen_everywhere() {
    let mut net = Net::new(3, PaxosBugs::default());
    let leader = net.tick_until_leader();
    let node = net.nodes.get_mut(&leader).unwrap();
    let (slot, origin) = node.propose(b"x".to_vec()).unwrap();
    net.settle();
    // Followers learn with the next heartbeat.
    for _ in 0..3 {
        for node in net.nodes.values_mut() {
            node.tick();
        }
        net.settle();
    }
    for id in 1..=3 {
        let applied = &net.applied[&id];
        assert!(
            applied.contains(&(slot, origin, b"x".to_vec())),
            "node {id}: {applied:?}"
        );
    }
}

#[test]
fn new_leader_adopts_accepted_values_and_fills_gaps() {
    let mut net = Net::new(3, PaxosBugs::default());
    let first = net.tick_until_leader();
    let (slot, origin) = net
        .nodes
        .get_mut(&first)
        .unwrap()
        .propose(b"keep".to_vec())
        .unwrap();
    net.settle();
    net.down.push(first);
    let second = net.tick_until_leader();
    assert_ne!(first, second);
    let st = net.nodes[&second].status();
    assert!(st.commit >= slot);
    let entry = &net.nodes[&second].accepted(slot).unwrap().entry;
    assert_eq!((entry.term, entry.data.as_slice()), (origin, &b"keep"[..]));
}

#[test]
fn reads_are_confirmed_by_a_quorum() {
    let mut net = Net::new(3, PaxosBugs::default());
    let leader = net.tick_until_leader();
    net.nodes.get_mut(&leader).unwrap().read_index(42).unwrap();
    let ready = net.nodes.get_mut(&leader).unwrap().ready();
    assert!(ready.read_states.is_empty(), "served before confirmation");
    let msgs = ready.messages.clone();
    net.nodes.get_mut(&leader).unwrap().advance(&ready);
    for m in msgs {
        let to = m.to;
        net.nodes.get_mut(&to).unwrap().step(m);
    }
    let mut confirmed = false;
    for _ in 0..5 {
        for id in 1..=3 {
            let mut msgs = Vec::new();
            let node = net.nodes.get_mut(&id).unwrap();
            while node.has_ready() {
                let ready = node.ready();
                confirmed |= ready.read_states.iter().any(|r| r.ctx == 42);
                msgs.extend(ready.messages.iter().cloned());
                node.advance(&ready);
            }
            for m in msgs {
                let to = m.to;
                net.nodes.get_mut(&to).unwrap().step(m);
            }
        }
    }
    assert!(confirmed);
    let follower = if leader == 1 { 2 } else { 1 };
    assert!(net.nodes.get_mut(&follower).unwrap().read_index(7).is_err());
}

#[test]
fn durable_state_restores_promise_and_values() {
    let mut cfg = Config::new(1, vec![1]);
    cfg.election_tick = 3;
    let mut node = Paxos::new(cfg.clone(), Durable::default(), None).unwrap();
    let mut durable = Durable::default();
    for _ in 0..10 {
        node.tick();
    }
    node.propose(b"v".to_vec()).unwrap();
    while node.has_ready() {
        let ready = node.ready();
        if let Some(p) = ready.promised {
            durable.promised = p;
        }
        durable.accepted.extend(ready.accepted.iter().cloned());
        if let Some(c) = ready.commit {
            durable.commit = c;
        }
        node.advance(&ready);
    }
    assert!(durable.promised.round > 0 && durable.commit >= 1);
    let restored = Paxos::new(cfg, durable.clone(), None).unwrap();
    assert_eq!(restored.promised(), durable.promised);
    assert_eq!(restored.status().commit, durable.commit);
}

#[test]
fn promises_travel_in_the_next_ready() {
    let mut net = Net::new(3, PaxosBugs::default());
    let logged = lines(|| net.nodes.get_mut(&1).unwrap().campaign());
    assert!(
        votes_logged(&logged).is_empty(),
        "the core logs no vote: {logged:?}"
    );
    let n1 = net.nodes.get_mut(&1).unwrap();
    let ballot = n1.promised();
    assert_eq!(ballot.node, 1);
    let ready = n1.ready();
    assert_eq!(ready.promised, Some(ballot));
    assert_eq!(
        ready.votes,
        vec![(ballot.event_term(), 1)],
        "its own promise"
    );
    n1.advance(&ready);
    assert!(
        !n1.has_ready() || n1.ready().votes.is_empty(),
        "a promise is handed out once"
    );
    let prepare = ready
        .messages
        .into_iter()
        .find(|m| m.to == 2)
        .expect("a prepare to node 2");
    let n2 = net.nodes.get_mut(&2).unwrap();
    // A ready taken before the promise carries no vote; the one after it does.
    if n2.has_ready() {
        let before = n2.ready();
        assert!(before.votes.is_empty());
        n2.advance(&before);
    }
    let logged = lines(|| n2.step(prepare.clone()));
    assert!(
        votes_logged(&logged).is_empty(),
        "the core logs no vote: {logged:?}"
    );
    assert_eq!(n2.promised(), ballot);
    let promise = n2.ready();
    assert_eq!(promise.promised, Some(ballot));
    assert_eq!(promise.votes, vec![(ballot.event_term(), 1)]);
    n2.advance(&promise);
    // The same prepare again is answered, but it is not a new promise.
    n2.step(prepare);
    let again = n2.ready();
    assert!(
        again
            .messages
            .iter()
            .any(|m| matches!(m.body, MessageBody::Promise { .. }))
    );
    assert!(again.votes.is_empty(), "{:?}", again.votes);
}
