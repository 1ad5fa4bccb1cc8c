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
//!
//! A sharded node hosts several consensus groups, each with its own terms, votes and
//! log: every invariant holds within one group, the events of shard K of every node
//! (an event without a shard is shard 0's). A `log-damaged` line without a shard
//! damaged the whole node's log: it excuses the next start of each of its shards.

use std::collections::{BTreeMap, HashMap};

use super::anomaly::{Found, Kind, Loc};
use super::events::Event;

/// The most applied indices remembered for `state-machine-safety` (about 32 bytes each),
/// over all shards; indices first seen beyond it are counted, not compared.
pub const APPLIED_CAP: usize = 4_000_000;

/// A node's state in one group across its log (and its restarts).
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
    /// Whether a fault damaged this group's log of the node since its last `start`.
    damaged: bool,
    /// How many node-wide `log-damaged` lines its last `start` had seen.
    damage_seen: u64,
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

/// One consensus group's state: a shard's, or an unsharded cluster's (shard 0).
#[derive(Debug, Default)]
struct Group {
    /// The first leader of each term: its node (an index into the check's nodes) and where.
    leaders: HashMap<Box<str>, (u32, Loc)>,
    nodes: HashMap<u32, NodeState>,
    /// The first hash applied at each index, and where.
    applied: HashMap<u64, (u32, Loc)>,
}

/// The invariants' state over every node's events, one group per shard.
#[derive(Debug, Default)]
pub struct Invariants {
    groups: BTreeMap<u32, Group>,
    /// Each node's count of `log-damaged` lines without a shard (its whole log).
    damage: HashMap<u32, u64>,
    /// Applied indices remembered, over all groups.
    applied: usize,
    /// Applied indices not remembered because of [`APPLIED_CAP`].
    beyond_cap: u64,
}

/// Who logged an event, and where: what an anomaly names.
#[derive(Clone, Copy)]
struct Origin<'a> {
    node: u32,
    shard: u32,
    at: Loc,
    names: &'a [String],
}

impl Origin<'_> {
    /// The node's name.
    fn name(&self) -> &str {
        name(self.names, self.node)
    }

    /// Records an anomaly of this event's shard, with `evidence` then this line.
    fn found(
        &self,
        found: &mut Found,
        kind: Kind,
        mut evidence: Vec<Loc>,
        message: impl FnOnce() -> String,
    ) {
        evidence.push(self.at);
        found.add(kind, Some(self.shard), evidence, message);
    }
}

impl Invariants {
    /// Feeds `event`, logged by node `node` (an index into the check's node names;
    /// `names` gives them for messages) in shard `shard` (`None`: not in a shard span)
    /// at `at`; anomalies go into `found`.
    pub fn feed(
        &mut self,
        node: u32,
        shard: Option<u32>,
        event: &Event<'_>,
        at: Loc,
        names: &[String],
        found: &mut Found,
    ) {
        let key = shard.unwrap_or(0);
        let who = Origin {
            node,
            shard: key,
            at,
            names,
        };
        if let Event::LogDamaged = event {
            match shard {
                None => *self.damage.entry(node).or_insert(0) += 1,
                Some(k) => {
                    let group = self.groups.entry(k).or_default();
                    group.nodes.entry(node).or_default().damaged = true;
                }
            }
            return;
        }
        let node_damage = self.damage.get(&node).copied().unwrap_or(0);
        let group = self.groups.entry(key).or_default();
        match *event {
            Event::Start {
                term,
                voted_for,
                commit,
                last,
            } => {
                let state = group.nodes.entry(node).or_default();
                let damaged =
                    std::mem::take(&mut state.damaged) | (node_damage > state.damage_seen);
                state.damage_seen = node_damage;
                if damaged {
                    state.commit = Some((commit, at));
                    state.durable_vote = None;
                    state.durable_index = None;
                } else {
                    // What it logged committed in an earlier life stays committed, though
                    // its recovered commit index (a hint, persisted lazily) may be lower.
                    if state.commit.is_none_or(|(c, _)| commit > c) {
                        state.commit = Some((commit, at));
                    }
                    recovered(state, who, term, voted_for, last, found);
                }
                if let Some(candidate) = voted_for {
                    vote(state, who, term, candidate, found);
                }
            }
            Event::Role { term, role } => {
                if role != "leader" {
                    return;
                }
                match group.leaders.get(term) {
                    None => {
                        group.leaders.insert(term.into(), (node, at));
                    }
                    Some(&(first, first_at)) if first != node => {
                        who.found(found, Kind::ElectionSafety, vec![first_at], || {
                            format!(
                                "{} and {} were both leader in term {term}",
                                name(names, first),
                                who.name()
                            )
                        });
                    }
                    Some(_) => {}
                }
            }
            Event::Vote { term, candidate } => {
                let state = group.nodes.entry(node).or_default();
                vote(state, who, term, candidate, found);
            }
            Event::Commit { index } => {
                let state = group.nodes.entry(node).or_default();
                if state.commit.is_none_or(|(c, _)| index > c) {
                    state.commit = Some((index, at));
                }
            }
            Event::Apply { from, ref hashes } => {
                for (index, &hash) in (from..).zip(hashes) {
                    match group.applied.get(&index) {
                        Some(&(first, first_at)) => {
                            if first != hash {
                                who.found(found, Kind::StateMachineSafety, vec![first_at], || {
                                    format!(
                                        "{} applied entry {hash:08x} at index {index}, \
                                         where entry {first:08x} had been applied before",
                                        who.name()
                                    )
                                });
                            }
                        }
                        None if self.applied < APPLIED_CAP => {
                            group.applied.insert(index, (hash, at));
                            self.applied += 1;
                        }
                        None => self.beyond_cap += 1,
                    }
                }
                if let Some(n) = hashes.len().checked_sub(1) {
                    let state = group.nodes.entry(node).or_default();
                    durable(state, from + n as u64, at);
                }
            }
            Event::Snapshot { index } => {
                durable(group.nodes.entry(node).or_default(), index, at);
            }
            Event::Truncate { from, commit } => {
                let known = group.nodes.get(&node).and_then(|s| s.commit);
                let (floor, evidence) = match known {
                    Some((c, c_at)) if c > commit => (c, vec![c_at]),
                    _ => (commit, Vec::new()),
                };
                if from <= floor {
                    who.found(found, Kind::CommittedEntryTruncated, evidence, || {
                        format!(
                            "{} deleted its entries from index {from} on, \
                             with entries up to {floor} committed",
                            who.name()
                        )
                    });
                }
            }
            Event::LogDamaged => {}
        }
    }

    /// How many applied indices are remembered (over all shards).
    pub fn applied_indices(&self) -> usize {
        self.applied
    }

    /// Applied entries at indices never compared, for lack of memory.
    pub fn beyond_cap(&self) -> u64 {
        self.beyond_cap
    }

    /// How many terms had a leader (each shard's terms counted apart).
    pub fn terms_with_leader(&self) -> usize {
        self.groups.values().map(|g| g.leaders.len()).sum()
    }
}

/// Raises the node's durable index to `index` (applied or snapshotted at `at`).
fn durable(state: &mut NodeState, index: u64, at: Loc) {
    if state.durable_index.is_none_or(|(d, _)| index > d) {
        state.durable_index = Some((index, at));
    }
}

/// Holds a restarted node (its `start`, `who`) to what it had made durable before:
/// its highest vote and its highest applied index. After a finding, the node is held
/// only to what it recovered, so one loss is reported once.
fn recovered(
    state: &mut NodeState,
    who: Origin<'_>,
    term: &str,
    voted_for: Option<&str>,
    last: Option<u64>,
    found: &mut Found,
) {
    let name = who.name();
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
            who.found(found, Kind::ForgottenVote, vec![v.at], || message);
            state.durable_vote = None;
        }
    }
    if let (Some((index, index_at)), Some(last)) = (state.durable_index, last)
        && last < index
    {
        who.found(found, Kind::LostLogEntries, vec![index_at], || {
            format!(
                "{name} had applied entries up to index {index}, then restarted \
                 with its log ending at index {last}: entries it had made durable \
                 were lost"
            )
        });
        state.durable_index = Some((last, who.at));
    }
}

/// Records the vote for `candidate` in `term` that `who` logged: a second, different
/// one is a `double-vote`.
fn vote(state: &mut NodeState, who: Origin<'_>, term: &str, candidate: &str, found: &mut Found) {
    if let Some(order) = term_order(term)
        && state.durable_vote.as_ref().is_none_or(|v| order > v.order)
    {
        state.durable_vote = Some(DurableVote {
            order,
            term: term.into(),
            candidate: candidate.into(),
            at: who.at,
        });
    }
    match state.votes.get(term) {
        None => {
            state.votes.insert(term.into(), (candidate.into(), who.at));
        }
        Some((first, first_at)) if &**first != candidate => {
            who.found(found, Kind::DoubleVote, vec![*first_at], || {
                format!(
                    "{} voted for {first} and for {candidate} in term {term}",
                    who.name()
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
