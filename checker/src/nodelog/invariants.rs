//! The safety invariants derived from protocol events, fed one event at a time in each
//! node's log order (nodes in any order; no timestamps are compared, since clock faults
//! skew them). Memory is bounded: a leader per term, a vote per node and term, and a
//! hash per applied index up to [`APPLIED_CAP`] indices.

use std::collections::HashMap;

use super::anomaly::{Found, Kind, Loc};
use super::events::Event;

/// The most applied indices remembered for `state-machine-safety` (about 32 bytes each);
/// indices first seen beyond it are counted, not compared.
pub const APPLIED_CAP: usize = 4_000_000;

/// A node's state across its log (and its restarts).
#[derive(Debug, Default)]
struct NodeState {
    /// The candidate voted for in each term, and where.
    votes: HashMap<Box<str>, (Box<str>, Loc)>,
    /// The highest commit index of the node's current life (since its last `start`),
    /// and where it was logged.
    commit: Option<(u64, Loc)>,
}

/// The invariants' state over every node's events.
#[derive(Debug, Default)]
pub struct Invariants {
    /// The first leader of each term: its node (an index into the check's nodes) and where.
    leaders: HashMap<Box<str>, (u32, Loc)>,
    nodes: HashMap<u32, NodeState>,
    /// The first hash applied at each index, and where.
    applied: HashMap<u64, (u32, Loc)>,
    /// Applied indices not remembered because of [`APPLIED_CAP`].
    beyond_cap: u64,
}

impl Invariants {
    /// Feeds `event`, logged by node `node` (an index into the check's node names;
    /// `names` gives them for messages) at `at`; anomalies go into `found`.
    pub fn feed(
        &mut self,
        node: u32,
        event: &Event<'_>,
        at: Loc,
        names: &[String],
        found: &mut Found,
    ) {
        let name = |n: u32| name(names, n);
        match *event {
            Event::Start {
                term,
                voted_for,
                commit,
            } => {
                let state = self.nodes.entry(node).or_default();
                state.commit = Some((commit, at));
                if let Some(candidate) = voted_for {
                    vote(state, node, term, candidate, at, names, found);
                }
            }
            Event::Role { term, role } => {
                if role != "leader" {
                    return;
                }
                match self.leaders.get(term) {
                    None => {
                        self.leaders.insert(term.into(), (node, at));
                    }
                    Some(&(first, first_at)) if first != node => {
                        found.add(Kind::ElectionSafety, vec![first_at, at], || {
                            format!(
                                "{} and {} were both leader in term {term}",
                                name(first),
                                name(node)
                            )
                        });
                    }
                    Some(_) => {}
                }
            }
            Event::Vote { term, candidate } => {
                let state = self.nodes.entry(node).or_default();
                vote(state, node, term, candidate, at, names, found);
            }
            Event::Commit { index } => {
                let state = self.nodes.entry(node).or_default();
                if state.commit.is_none_or(|(c, _)| index > c) {
                    state.commit = Some((index, at));
                }
            }
            Event::Apply { from, ref hashes } => {
                for (i, &hash) in (from..).zip(hashes) {
                    self.apply(node, i, hash, at, names, found);
                }
            }
            Event::Snapshot { .. } => {}
            Event::Truncate { from, commit } => {
                let known = self.nodes.get(&node).and_then(|s| s.commit);
                let (floor, mut evidence) = match known {
                    Some((c, c_at)) if c > commit => (c, vec![c_at]),
                    _ => (commit, Vec::new()),
                };
                if from <= floor {
                    evidence.push(at);
                    found.add(Kind::CommittedEntryTruncated, evidence, || {
                        format!(
                            "{} deleted its entries from index {from} on, \
                             with entries up to {floor} committed",
                            name(node)
                        )
                    });
                }
            }
        }
    }

    fn apply(
        &mut self,
        node: u32,
        index: u64,
        hash: u32,
        at: Loc,
        names: &[String],
        found: &mut Found,
    ) {
        match self.applied.get(&index) {
            Some(&(first, first_at)) => {
                if first != hash {
                    found.add(Kind::StateMachineSafety, vec![first_at, at], || {
                        format!(
                            "{} applied entry {hash:08x} at index {index}, \
                             where entry {first:08x} had been applied before",
                            name(names, node)
                        )
                    });
                }
            }
            None if self.applied.len() < APPLIED_CAP => {
                self.applied.insert(index, (hash, at));
            }
            None => self.beyond_cap += 1,
        }
    }

    /// How many applied indices are remembered.
    pub fn applied_indices(&self) -> usize {
        self.applied.len()
    }

    /// Applied entries at indices never compared, for lack of memory.
    pub fn beyond_cap(&self) -> u64 {
        self.beyond_cap
    }

    /// How many terms had a leader.
    pub fn terms_with_leader(&self) -> usize {
        self.leaders.len()
    }
}

/// Records `node`'s vote for `candidate` in `term`: a second, different one is a
/// `double-vote`.
fn vote(
    state: &mut NodeState,
    node: u32,
    term: &str,
    candidate: &str,
    at: Loc,
    names: &[String],
    found: &mut Found,
) {
    match state.votes.get(term) {
        None => {
            state.votes.insert(term.into(), (candidate.into(), at));
        }
        Some((first, first_at)) if &**first != candidate => {
            found.add(Kind::DoubleVote, vec![*first_at, at], || {
                format!(
                    "{} voted for {first} and for {candidate} in term {term}",
                    name(names, node)
                )
            });
        }
        Some(_) => {}
    }
}

/// Node `n`'s name.
fn name(names: &[String], n: u32) -> &str {
    names.get(n as usize).map_or("?", String::as_str)
}
