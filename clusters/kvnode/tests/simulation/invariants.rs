//! Raft's safety properties, checked after every simulation step.

use std::collections::{BTreeMap, HashMap};

use faultline_kv::consensus::{Core, Entry, NodeId, Role};
use faultline_kv::raft::Raft;

/// What the checker has seen so far across all nodes.
#[derive(Default)]
pub struct Invariants {
    /// term → the node that led it.
    leaders: HashMap<u64, NodeId>,
    /// index → (term, data) of every entry some node considered committed.
    committed: BTreeMap<u64, (u64, Vec<u8>)>,
    /// (index, term) → (term of the entry before, data): Log Matching by induction.
    entries: HashMap<(u64, u64), (u64, Vec<u8>)>,
    /// node → (role, term) at the last check.
    last_role: HashMap<NodeId, (Role, u64)>,
    /// node → commit index already recorded.
    recorded_commit: HashMap<NodeId, u64>,
}

impl Invariants {
    /// Election safety, leader completeness and commit recording for one node.
    /// Returns the (index, term) of entries recorded as committed for the first time.
    pub fn check_node(&mut self, raft: &Raft) -> Result<Vec<(u64, u64)>, String> {
        let st = raft.status();
        let previous = self.last_role.insert(st.id, (st.role, st.term));
        if st.role == Role::Leader {
            if let Some(other) = self.leaders.insert(st.term, st.id)
                && other != st.id
            {
                return Err(format!(
                    "election safety: nodes {other} and {} both led term {}",
                    st.id, st.term
                ));
            }
            if previous != Some((Role::Leader, st.term)) {
                self.check_leader_completeness(raft)?;
            }
        }
        let from = self.recorded_commit.get(&st.id).copied().unwrap_or(0);
        let from = from.max(st.snapshot_index);
        let mut fresh = Vec::new();
        for index in from + 1..=st.commit {
            if let Some(entry) = raft.entry(index)
                && self.record_committed(st.id, entry)?
            {
                fresh.push((entry.index, entry.term));
            }
        }
        self.recorded_commit.insert(st.id, st.commit);
        Ok(fresh)
    }

    /// A new leader's log must hold every entry committed so far.
    fn check_leader_completeness(&self, raft: &Raft) -> Result<(), String> {
        let st = raft.status();
        for (index, (term, _)) in &self.committed {
            if *index <= st.snapshot_index {
                continue;
            }
            if raft.term_at(*index) != Some(*term) {
                return Err(format!(
                    "leader completeness: node {} leads term {} without committed entry {index} \
                     (term {term}); it has term {:?} there",
                    st.id,
                    st.term,
                    raft.term_at(*index)
                ));
            }
        }
        Ok(())
    }

    /// State-machine safety: an index is committed (and applied) with one entry only.
    /// Returns whether the entry was recorded for the first time.
    pub fn record_committed(&mut self, node: NodeId, entry: &Entry) -> Result<bool, String> {
        match self.committed.get(&entry.index) {
            Some((term, data)) if *term != entry.term || *data != entry.data => Err(format!(
                "state-machine safety: node {node} has entry {} of term {} committed, but \
                 term {term} was committed there before",
                entry.index, entry.term
            )),
            Some(_) => Ok(false),
            None => {
                self.committed
                    .insert(entry.index, (entry.term, entry.data.clone()));
                Ok(true)
            }
        }
    }

    /// Log matching: the same (index, term) always has the same data and predecessor.
    pub fn check_appended(
        &mut self,
        node: NodeId,
        entries: &[Entry],
        prev_term: u64,
    ) -> Result<(), String> {
        let mut prev = prev_term;
        for entry in entries {
            let seen = self
                .entries
                .entry((entry.index, entry.term))
                .or_insert_with(|| (prev, entry.data.clone()));
            if seen.0 != prev || seen.1 != entry.data {
                return Err(format!(
                    "log matching: node {node} holds entry {} of term {} with a different \
                     predecessor term ({prev} vs {}) or data",
                    entry.index, entry.term, seen.0
                ));
            }
            prev = entry.term;
        }
        Ok(())
    }

    /// Records that `node` leads `term` (a packed Paxos ballot); one leader per term.
    pub fn note_leader(&mut self, term: u64, node: NodeId) -> Result<(), String> {
        match self.leaders.insert(term, node) {
            Some(other) if other != node => Err(format!(
                "election safety: nodes {other} and {node} both led ballot/term {term}"
            )),
            _ => Ok(()),
        }
    }

    /// Whether some node was seen leading `term`.
    pub fn has_leader(&self, term: u64) -> bool {
        self.leaders.contains_key(&term)
    }

    /// How many terms had a leader.
    pub fn leader_terms(&self) -> usize {
        self.leaders.len()
    }
}
