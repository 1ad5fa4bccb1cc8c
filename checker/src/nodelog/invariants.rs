//! The safety invariants derived from protocol events, fed one event at a time in each
//! node's log order (nodes in any order; no timestamps are compared, since clock faults
//! skew them). Memory is bounded: a leader per term, a vote per node and term, and a
//! hash per applied index up to [`APPLIED_CAP`] indices.
//!
//! Two of them hold a node to what it made durable, across its restarts (each `start`
//! follows a crash or a stop): a vote is logged only once persisted, so the node must
//! come back in that term with that vote, or in a later term (`forgotten-vote`); an
//! entry is applied only once persisted, so the node must come back with its log
//! reaching at least the highest index it applied or installed a snapshot of
//! (`lost-log-entries`, when `start` says `last`). A `log-damaged` line (a fault cut
//! the stopped node's log on purpose) excuses the next start.

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
    /// Its durable vote in its highest term: the term's order, the term and candidate
    /// as logged, and where.
    durable_vote: Option<DurableVote>,
    /// The highest index it applied (or installed a snapshot of), so has made durable,
    /// and where: its log must reach it after a restart.
    durable_index: Option<(u64, Loc)>,
    /// Whether a fault damaged its log since its last `start`.
    damaged: bool,
}

/// A vote a node made durable.
#[derive(Debug, Clone)]
struct DurableVote {
    order: (u64, u64),
    term: Box<str>,
    candidate: Box<str>,
    at: Loc,
}

/// A term's place in the order of terms: Raft's `N` as `(N, 0)`, a Paxos ballot
/// `ROUND.NODE` as `(ROUND, NODE)`; `None` for `-` or anything else.
fn term_order(term: &str) -> Option<(u64, u64)> {
    match term.split_once('.') {
        Some((round, node)) => Some((round.parse().ok()?, node.parse().ok()?)),
        None => Some((term.parse().ok()?, 0)),
    }
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
                last,
            } => {
                let state = self.nodes.entry(node).or_default();
                if std::mem::take(&mut state.damaged) {
                    state.commit = Some((commit, at));
                    state.durable_vote = None;
                    state.durable_index = None;
                } else {
                    // What it logged committed in an earlier life stays committed, though
                    // its recovered commit index (a hint, persisted lazily) may be lower.
                    if state.commit.is_none_or(|(c, _)| commit > c) {
                        state.commit = Some((commit, at));
                    }
                    recovered(state, node, term, voted_for, last, at, names, found);
                }
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
                if let Some(n) = hashes.len().checked_sub(1) {
                    let state = self.nodes.entry(node).or_default();
                    durable(state, from + n as u64, at);
                }
            }
            Event::Snapshot { index } => {
                durable(self.nodes.entry(node).or_default(), index, at);
            }
            Event::LogDamaged => self.nodes.entry(node).or_default().damaged = true,
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

/// Raises the node's durable index to `index` (applied or snapshotted at `at`).
fn durable(state: &mut NodeState, index: u64, at: Loc) {
    if state.durable_index.is_none_or(|(d, _)| index > d) {
        state.durable_index = Some((index, at));
    }
}

/// Holds a restarted node (its `start` at `at`) to what it had made durable before:
/// its highest vote and its highest applied index. After a finding, the node is held
/// only to what it recovered, so one loss is reported once.
#[allow(clippy::too_many_arguments)]
fn recovered(
    state: &mut NodeState,
    node: u32,
    term: &str,
    voted_for: Option<&str>,
    last: Option<u64>,
    at: Loc,
    names: &[String],
    found: &mut Found,
) {
    let name = name(names, node);
    if let (Some(v), Some(order)) = (&state.durable_vote, term_order(term)) {
        let forgot = if order < v.order {
            Some(format!(
                "{name} voted for {} in term {}, then restarted in term {term}: \
                 it lost its vote",
                v.candidate, v.term
            ))
        } else if order == v.order && voted_for.is_none() {
            Some(format!(
                "{name} voted for {} in term {}, then restarted in that term \
                 without a vote",
                v.candidate, v.term
            ))
        } else {
            None
        };
        if let Some(message) = forgot {
            found.add(Kind::ForgottenVote, vec![v.at, at], || message);
            state.durable_vote = None;
        }
    }
    if let (Some((index, index_at)), Some(last)) = (state.durable_index, last)
        && last < index
    {
        found.add(Kind::LostLogEntries, vec![index_at, at], || {
            format!(
                "{name} had applied entries up to index {index}, then restarted \
                 with its log ending at index {last}: entries it had made durable \
                 were lost"
            )
        });
        state.durable_index = Some((last, at));
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
    if let Some(order) = term_order(term)
        && state.durable_vote.as_ref().is_none_or(|v| order > v.order)
    {
        state.durable_vote = Some(DurableVote {
            order,
            term: term.into(),
            candidate: candidate.into(),
            at,
        });
    }
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
