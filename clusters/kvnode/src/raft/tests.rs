//! Directed scenarios for the core, driven by hand (the seeded simulation in
//! `tests/simulation` covers the random ones).

use std::collections::BTreeMap;

use super::*;
use crate::consensus::{Core, NodeId, Role};
use crate::events::Term;
use crate::events::tests::{lines, votes_logged};

/// A tiny in-memory cluster: messages are queued and delivered on request.
struct Cluster {
    nodes: BTreeMap<NodeId, Raft>,
    queue: Vec<Message>,
    down: Vec<NodeId>,
    served: Vec<u64>,
}

impl Cluster {
    fn new(n: u64, bugs: CoreBugs) -> Cluster {
        let ids: Vec<NodeId> = (1..=n).collect();
        let nodes = ids
            .iter()
            .map(|id| {
                let mut cfg = Config::new(*id, ids.clone());
                cfg.bugs = bugs;
                cfg.max_append_entries = 1;
                (
                    *id,
                    Raft::new(cfg, HardState::default(), None, vec![]).unwrap(),
                )
            })
            .collect();
        Cluster {
            nodes,
            queue: vec![],
            down: vec![],
            served: vec![],
        }
    }

    fn node(&mut self, id: NodeId) -> &mut Raft {
        self.nodes.get_mut(&id).unwrap()
    }

    /// Handles every node's ready (persisting is a no-op here), queueing messages.
    fn process(&mut self) {
        for raft in self.nodes.values_mut() {
            while raft.has_ready() {
                let ready = raft.ready();
                self.queue.extend(ready.messages.iter().cloned());
                self.served.extend(ready.read_states.iter().map(|r| r.ctx));
                raft.advance(&ready);
            }
        }
    }

    /// Delivers queued messages among `group` until quiet; others are dropped.
    fn deliver(&mut self, group: &[NodeId]) {
        for _ in 0..100 {
            self.process();
            let msgs = std::mem::take(&mut self.queue);
            if msgs.is_empty() {
                return;
            }
            for m in msgs {
                if group.contains(&m.from) && group.contains(&m.to) && !self.down.contains(&m.to) {
                    self.node(m.to).step(m);
                }
            }
        }
    }

    fn elect(&mut self, id: NodeId, group: &[NodeId]) {
        // Time passes for the others: they leave their leader's lease (without campaigning).
        for other in group.iter().filter(|o| **o != id) {
            let raft = self.node(*other);
            raft.timer.election_elapsed = raft.cfg.election_tick;
        }
        for _ in 0..40 {
            self.node(id).tick();
            for _ in 0..10 {
                self.process();
                let msgs = std::mem::take(&mut self.queue);
                if msgs.is_empty() {
                    break;
                }
                for m in msgs {
                    if group.contains(&m.from) && group.contains(&m.to) {
                        self.node(m.to).step(m);
                    }
                }
                if self.node(id).status().role == Role::Leader {
                    return;
                }
            }
        }
        panic!("node {id} was not elected");
    }

    /// Crashes and restarts a node from its (persisted) state.
    fn restart(&mut self, id: NodeId) {
        let raft = self.node(id);
        let st = raft.status();
        let entries = (1..=st.last_index)
            .filter_map(|i| raft.entry(i).cloned())
            .collect();
        let hard = HardState {
            term: st.term,
            vote: st.vote,
            commit: st.commit,
        };
        let cfg = raft.cfg.clone();
        self.nodes
            .insert(id, Raft::new(cfg, hard, None, entries).unwrap());
    }
}

#[test]
fn elects_replicates_and_commits() {
    let mut c = Cluster::new(3, CoreBugs::default());
    c.elect(1, &[1, 2, 3]);
    let (index, term) = c.node(1).propose(b"x".to_vec()).unwrap();
    c.deliver(&[1, 2, 3]);
    assert_eq!(c.node(1).status().commit, index);
    assert_eq!(c.node(2).entry(index).map(|e| e.term), Some(term));
    assert!(c.node(2).propose(vec![1]).is_err());
}

#[test]
fn isolated_node_does_not_inflate_its_term() {
    let mut c = Cluster::new(3, CoreBugs::default());
    c.elect(1, &[1, 2, 3]);
    let term = c.node(3).status().term;
    for _ in 0..200 {
        c.node(3).tick();
        c.deliver(&[1, 2]);
    }
    assert_eq!(c.node(3).status().term, term, "pre-vote keeps the term");
}

#[test]
fn leader_without_quorum_steps_down() {
    let mut c = Cluster::new(3, CoreBugs::default());
    c.elect(1, &[1, 2, 3]);
    for _ in 0..25 {
        c.node(1).tick();
        c.deliver(&[1]);
    }
    assert_ne!(c.node(1).status().role, Role::Leader);
}

#[test]
fn read_index_needs_a_quorum() {
    let mut c = Cluster::new(3, CoreBugs::default());
    c.elect(1, &[1, 2, 3]);
    c.deliver(&[1, 2, 3]);
    c.node(1).read_index(7).unwrap();
    c.deliver(&[1]);
    assert!(c.served.is_empty(), "a read needs a quorum's confirmation");
    c.node(1).read_index(8).unwrap();
    c.deliver(&[1, 2]);
    assert_eq!(c.served, vec![7, 8]);
    assert!(
        c.node(2).read_index(9).is_err(),
        "followers do not serve reads"
    );
}

/// Raft's figure 8: node 1 (term 2) holds an entry only it has; node 2 (term 3) an
/// entry at the same index only it has; node 1 is re-elected with node 3's vote and
/// replicates its old entry to node 3. Counting replicas would commit it, although
/// node 2 could still be elected and overwrite it.
fn figure_eight(bugs: CoreBugs) -> (Cluster, u64) {
    let mut c = Cluster::new(3, bugs);
    c.elect(1, &[1, 2, 3]);
    c.deliver(&[1, 2, 3]);
    let (index, _) = c.node(1).propose(b"old".to_vec()).unwrap();
    c.process();
    c.queue.clear(); // the entry never leaves node 1
    c.restart(1);
    c.elect(2, &[2, 3]);
    c.process();
    c.queue.clear(); // node 2's no-op never leaves node 2
    c.restart(2);
    c.elect(1, &[1, 3]);
    // Deliver one exchange at a time and stop as soon as node 3 holds the old entry.
    for _ in 0..20 {
        c.process();
        let msgs = std::mem::take(&mut c.queue);
        for m in msgs {
            if m.to != 2 && m.from != 2 {
                c.node(m.to).step(m);
            }
        }
        if c.node(3).entry(index).is_some_and(|e| e.data == b"old") {
            break;
        }
    }
    // Node 1 hears node 3's acknowledgement; its own no-op has not reached node 3 yet.
    c.process();
    for m in std::mem::take(&mut c.queue) {
        if m.to == 1 && m.from == 3 {
            c.node(1).step(m);
        }
    }
    c.process();
    assert_eq!(c.node(3).status().last_index, index);
    assert_eq!(
        c.node(2).term_at(index),
        Some(2),
        "node 2 holds a conflicting entry"
    );
    (c, index)
}

#[test]
fn old_term_entries_are_not_committed_by_counting() {
    let (mut c, index) = figure_eight(CoreBugs::default());
    assert!(c.node(1).status().commit < index);
}

#[test]
fn old_term_commit_bug_commits_by_counting() {
    let bugs = CoreBugs {
        old_term_commit: true,
        ..CoreBugs::default()
    };
    let (mut c, index) = figure_eight(bugs);
    assert!(c.node(1).status().commit >= index);
}

#[test]
fn votes_are_persisted_unless_the_forget_vote_bug_is_on() {
    for forget in [false, true] {
        let bugs = CoreBugs {
            forget_vote: forget,
            ..CoreBugs::default()
        };
        let mut c = Cluster::new(3, bugs);
        c.node(2).timer.election_elapsed = 10;
        c.node(1).campaign_pre_vote();
        let pre_votes = c.node(1).ready();
        c.node(1).advance(&pre_votes);
        for m in pre_votes.messages {
            c.node(m.to).step(m);
        }
        let answers = c.node(2).ready();
        c.node(2).advance(&answers);
        for m in answers.messages {
            c.node(1).step(m);
        }
        // Node 1 is now a candidate; node 2 grants its vote in a Ready whose hard state
        // must carry the vote before the answer is sent.
        let votes = c.node(1).ready();
        c.node(1).advance(&votes);
        for m in votes.messages.into_iter().filter(|m| m.to == 2) {
            c.node(2).step(m);
        }
        let ready = c.node(2).ready();
        let hard = ready.hard_state.expect("the vote changes the hard state");
        assert!(
            ready
                .messages
                .iter()
                .any(|m| matches!(m.body, MessageBody::VoteResponse { granted: true }))
        );
        assert_eq!(hard.vote, if forget { None } else { Some(1) });
        // The grant goes out either way, so the vote is still to be logged once persisted.
        assert_eq!(ready.votes, vec![(Term::Number(hard.term), 1)]);
    }
}

/// Node 1 wins a pre-vote round among 1 and 2 and becomes a candidate; returns its
/// vote requests (its `Ready` taken and advanced).
fn campaign_for_votes(c: &mut Cluster) -> Ready {
    c.node(2).timer.election_elapsed = 10;
    c.node(1).campaign_pre_vote();
    let pre_votes = c.node(1).ready();
    assert!(
        pre_votes.votes.is_empty(),
        "asking for pre-votes is no vote"
    );
    c.node(1).advance(&pre_votes);
    for m in pre_votes.messages {
        c.node(m.to).step(m);
    }
    let answers = c.node(2).ready();
    assert!(answers.votes.is_empty(), "granting a pre-vote is no vote");
    c.node(2).advance(&answers);
    let logged = lines(|| {
        for m in answers.messages {
            c.node(1).step(m);
        }
    });
    assert_eq!(c.node(1).status().role, Role::Candidate);
    assert_eq!(c.node(1).status().vote, Some(1));
    assert!(
        votes_logged(&logged).is_empty(),
        "the core logs no vote: {logged:?}"
    );
    let ready = c.node(1).ready();
    c.node(1).advance(&ready);
    ready
}

#[test]
fn vote_decisions_travel_in_the_next_ready() {
    let mut c = Cluster::new(3, CoreBugs::default());
    let campaign = campaign_for_votes(&mut c);
    let term = c.node(1).status().term;
    assert_eq!(
        campaign.votes,
        vec![(Term::Number(term), 1)],
        "the self-vote"
    );
    assert!(
        !c.node(1).has_ready() || c.node(1).ready().votes.is_empty(),
        "a vote is handed out once"
    );
    let request = campaign
        .messages
        .into_iter()
        .find(|m| m.to == 2)
        .expect("a vote request to node 2");
    // A ready taken before the decision carries no vote; the one after it does.
    if c.node(2).has_ready() {
        let before = c.node(2).ready();
        assert!(before.votes.is_empty());
        c.node(2).advance(&before);
    }
    let logged = lines(|| c.node(2).step(request.clone()));
    assert!(
        votes_logged(&logged).is_empty(),
        "the core logs no vote: {logged:?}"
    );
    assert_eq!(c.node(2).status().vote, Some(1));
    let grant = c.node(2).ready();
    assert_eq!(grant.votes, vec![(Term::Number(term), 1)]);
    assert_eq!(grant.hard_state.and_then(|h| h.vote), Some(1));
    c.node(2).advance(&grant);
    // The same request again is answered, but it is not a second vote.
    c.node(2).step(request);
    let again = c.node(2).ready();
    assert!(
        again
            .messages
            .iter()
            .any(|m| matches!(m.body, MessageBody::VoteResponse { granted: true }))
    );
    assert!(again.votes.is_empty(), "{:?}", again.votes);
}

#[test]
fn forget_vote_still_hands_out_the_self_vote() {
    let bugs = CoreBugs {
        forget_vote: true,
        ..CoreBugs::default()
    };
    let mut c = Cluster::new(3, bugs);
    let campaign = campaign_for_votes(&mut c);
    let term = c.node(1).status().term;
    let hard = campaign.hard_state.expect("the new term is persisted");
    assert_eq!(
        (hard.term, hard.vote),
        (term, None),
        "the vote is forgotten"
    );
    assert_eq!(campaign.votes, vec![(Term::Number(term), 1)]);
}

#[test]
fn lease_reads_skip_the_confirmation_round_only_when_enabled() {
    let mut c = Cluster::new(3, CoreBugs::default());
    c.node(1).cfg.lease_read = true;
    c.elect(1, &[1, 2, 3]);
    c.deliver(&[1, 2, 3]);
    c.node(1).tick();
    c.node(1).tick();
    c.deliver(&[1, 2, 3]); // heartbeats answered: a quorum was heard from
    c.served.clear();
    c.node(1).read_index(42).unwrap();
    assert!(c.node(1).ready().read_states.iter().any(|r| r.ctx == 42));
}
