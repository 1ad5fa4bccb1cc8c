//! The transaction dependency graph: a compact adjacency array whose edges carry a
//! set of relationships (ww, wr, rw, process, realtime), and its cyclic parts.
//!
//! Real-time order is encoded without its quadratic transitive closure: every run of
//! `ok` completions with no invocation between them gets a *time node*; time nodes
//! form a chain in history order; a committed transaction links to its completion's
//! time node (a `realtime` edge) and the latest time node before an invocation links
//! to that transaction (a free `time` edge). A path `a -> time… -> b` exists exactly
//! when `a` completed before `b` was invoked, so reachability, and therefore every
//! cycle between transactions, is the same as with Elle's real-time edges.

use petgraph::algo::kosaraju_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use super::txn::{NONE, Outcome, Txns};

/// Relationship bits on an edge.
pub(crate) mod rel {
    /// Write-write: the target overwrote (or appended after) the source's write.
    pub const WW: u8 = 1;
    /// Write-read: the target read the source's write.
    pub const WR: u8 = 2;
    /// Read-write (anti-dependency): the target overwrote the state the source read.
    pub const RW: u8 = 4;
    /// Same process, in order.
    pub const PROCESS: u8 = 8;
    /// Transaction to the time node of its completion.
    pub const REALTIME: u8 = 16;
    /// Along the time chain, and from a time node to a later invocation. Free.
    pub const TIME: u8 = 32;
    /// The data dependencies.
    pub const DATA: u8 = WW | WR | RW;
}

/// Edges as they are inferred, before being packed.
#[derive(Debug, Default)]
pub(crate) struct EdgeList {
    from: Vec<u32>,
    to: Vec<u32>,
    rel: Vec<u8>,
}

impl EdgeList {
    /// Adds `a -> b` with relationship `rel`; self-edges are dropped.
    #[inline]
    pub(crate) fn push(&mut self, a: u32, b: u32, rel: u8) {
        if a != b && a != NONE && b != NONE {
            self.from.push(a);
            self.to.push(b);
            self.rel.push(rel);
        }
    }

    /// Number of edges.
    pub(crate) fn len(&self) -> usize {
        self.from.len()
    }
}

/// A packed directed graph over transactions (nodes `0..real`) and time nodes.
#[derive(Debug, Default)]
pub(crate) struct TxnGraph {
    /// Nodes below this are transactions (graph node ids of [`Txns`]).
    pub real: u32,
    offsets: Vec<u32>,
    targets: Vec<u32>,
    rels: Vec<u8>,
    /// True when some pair of transactions is ordered by anything at all.
    pub has_dependencies: bool,
}

impl TxnGraph {
    /// Packs `edges` over `nodes` nodes, merging parallel edges.
    #[cfg(test)]
    pub(crate) fn build(real: u32, nodes: u32, edges: EdgeList) -> TxnGraph {
        TxnGraph::build_from(real, nodes, vec![edges])
    }

    /// Packs several edge lists (consumed one by one, to keep the peak low).
    pub(crate) fn build_from(real: u32, nodes: u32, parts: Vec<EdgeList>) -> TxnGraph {
        let n = nodes as usize;
        let mut offsets = vec![0u32; n + 1];
        for part in &parts {
            for &a in &part.from {
                offsets[a as usize + 1] += 1;
            }
        }
        for i in 0..n {
            offsets[i + 1] += offsets[i];
        }
        let mut cursor: Vec<u32> = offsets[..n].to_vec();
        let total = parts.iter().map(EdgeList::len).sum();
        let mut targets = vec![0u32; total];
        let mut rels = vec![0u8; total];
        for part in parts {
            for ((a, b), r) in part.from.iter().zip(&part.to).zip(&part.rel) {
                let slot = &mut cursor[*a as usize];
                targets[*slot as usize] = *b;
                rels[*slot as usize] = *r;
                *slot += 1;
            }
        }
        drop(cursor);
        // Sort each adjacency list and merge duplicates, compacting in place.
        let mut write = 0usize;
        let mut pairs: Vec<(u32, u8)> = Vec::new();
        let mut new_offsets = vec![0u32; n + 1];
        for v in 0..n {
            let (lo, hi) = (offsets[v] as usize, offsets[v + 1] as usize);
            pairs.clear();
            pairs.extend(
                targets[lo..hi]
                    .iter()
                    .copied()
                    .zip(rels[lo..hi].iter().copied()),
            );
            pairs.sort_unstable_by_key(|p| p.0);
            let start = write;
            for &(t, r) in &pairs {
                if write > start && targets[write - 1] == t {
                    rels[write - 1] |= r;
                } else {
                    targets[write] = t;
                    rels[write] = r;
                    write += 1;
                }
            }
            new_offsets[v + 1] = write as u32;
        }
        targets.truncate(write);
        rels.truncate(write);
        targets.shrink_to_fit();
        rels.shrink_to_fit();
        let has_dependencies = rels.iter().any(|r| r & (rel::DATA | rel::PROCESS) != 0);
        TxnGraph {
            real,
            offsets: new_offsets,
            targets,
            rels,
            has_dependencies,
        }
    }

    /// Number of nodes, time nodes included.
    pub(crate) fn node_count(&self) -> u32 {
        (self.offsets.len().saturating_sub(1)) as u32
    }

    /// Number of (merged) edges.
    #[cfg(test)]
    pub(crate) fn edge_count(&self) -> usize {
        self.targets.len()
    }

    /// The out-edges of `v`: (target, relationships).
    #[inline]
    pub(crate) fn out(&self, v: u32) -> impl Iterator<Item = (u32, u8)> + '_ {
        let v = v as usize;
        let (lo, hi) = match (self.offsets.get(v), self.offsets.get(v + 1)) {
            (Some(lo), Some(hi)) => (*lo as usize, *hi as usize),
            _ => (0, 0),
        };
        self.targets[lo..hi]
            .iter()
            .copied()
            .zip(self.rels[lo..hi].iter().copied())
    }

    /// The relationships on edge `a -> b` (0 if none).
    pub(crate) fn rels_between(&self, a: u32, b: u32) -> u8 {
        self.out(a).find(|(t, _)| *t == b).map_or(0, |(_, r)| r)
    }

    /// The strongly connected components (with at least two transactions) of the
    /// subgraph of edges carrying any of `mask`, each sorted, in order of their first
    /// node.
    pub(crate) fn cyclic_components(&self, mask: u8) -> Vec<Vec<u32>> {
        let n = self.node_count() as usize;
        let mask = if mask & rel::REALTIME != 0 {
            mask | rel::TIME
        } else {
            mask
        };
        // Peel nodes with no incoming edges (Kahn), then, on what is left, nodes
        // with no outgoing edges: neither can lie on a cycle. Valid histories peel
        // entirely, in linear time, and petgraph sees only the cyclic remainder.
        let mut indegree = vec![0u32; n];
        for v in 0..n as u32 {
            for (t, r) in self.out(v) {
                if r & mask != 0 {
                    indegree[t as usize] += 1;
                }
            }
        }
        let mut alive = vec![true; n];
        let mut queue: Vec<u32> = (0..n as u32)
            .filter(|v| indegree[*v as usize] == 0)
            .collect();
        while let Some(v) = queue.pop() {
            alive[v as usize] = false;
            for (t, r) in self.out(v) {
                if r & mask != 0 {
                    let d = &mut indegree[t as usize];
                    *d -= 1;
                    if *d == 0 {
                        queue.push(t);
                    }
                }
            }
        }
        drop(indegree);
        // Now nodes that reach no cycle: peel sinks, using the reversed edges
        // among what is left.
        let mut outdegree = vec![0u32; n];
        let mut pred_offsets = vec![0u32; n + 1];
        for v in (0..n as u32).filter(|v| alive[*v as usize]) {
            for (t, r) in self.out(v) {
                if r & mask != 0 && alive[t as usize] {
                    outdegree[v as usize] += 1;
                    pred_offsets[t as usize + 1] += 1;
                }
            }
        }
        for i in 0..n {
            pred_offsets[i + 1] += pred_offsets[i];
        }
        let mut preds = vec![0u32; pred_offsets[n] as usize];
        let mut fill: Vec<u32> = pred_offsets[..n].to_vec();
        for v in (0..n as u32).filter(|v| alive[*v as usize]) {
            for (t, r) in self.out(v) {
                if r & mask != 0 && alive[t as usize] {
                    preds[fill[t as usize] as usize] = v;
                    fill[t as usize] += 1;
                }
            }
        }
        drop(fill);
        let mut queue: Vec<u32> = (0..n as u32)
            .filter(|v| alive[*v as usize] && outdegree[*v as usize] == 0)
            .collect();
        while let Some(v) = queue.pop() {
            alive[v as usize] = false;
            let (lo, hi) = (
                pred_offsets[v as usize] as usize,
                pred_offsets[v as usize + 1] as usize,
            );
            for &u in &preds[lo..hi] {
                if alive[u as usize] {
                    let d = &mut outdegree[u as usize];
                    *d -= 1;
                    if *d == 0 {
                        queue.push(u);
                    }
                }
            }
        }
        drop((outdegree, pred_offsets, preds));
        let remaining: Vec<u32> = (0..n as u32).filter(|v| alive[*v as usize]).collect();
        if remaining.is_empty() {
            return Vec::new();
        }
        let mut local = vec![u32::MAX; n];
        let mut g: DiGraph<u32, ()> = DiGraph::with_capacity(remaining.len(), remaining.len() * 2);
        for &v in &remaining {
            local[v as usize] = g.add_node(v).index() as u32;
        }
        for &v in &remaining {
            for (t, r) in self.out(v) {
                if r & mask != 0 && alive[t as usize] {
                    g.add_edge(
                        NodeIndex::new(local[v as usize] as usize),
                        NodeIndex::new(local[t as usize] as usize),
                        (),
                    );
                }
            }
        }
        let mut components: Vec<Vec<u32>> = kosaraju_scc(&g)
            .into_iter()
            .map(|c| {
                let mut ids: Vec<u32> = c.iter().map(|i| g[*i]).collect();
                ids.sort_unstable();
                ids
            })
            .filter(|c| c.iter().filter(|v| **v < self.real).count() >= 2)
            .collect();
        components.sort_by_key(|c| c.first().copied());
        components
    }
}

/// Adds real-time order (through time nodes) to `edges`; returns the total node
/// count and whether any two transactions are ordered in real time.
pub(crate) fn add_realtime(txns: &Txns<'_>, edges: &mut EdgeList) -> (u32, bool) {
    // Events in history order: (position, is_completion, node).
    let mut events: Vec<(usize, bool, u32)> = Vec::with_capacity(txns.nodes.len() * 2);
    for (node, &t) in txns.nodes.iter().enumerate() {
        let Some(txn) = txns.txn(t) else { continue };
        events.push((txn.invoke, false, node as u32));
        if txn.outcome == Outcome::Ok
            && let Some(c) = txn.completion
        {
            events.push((c, true, node as u32));
        }
    }
    events.sort_unstable_by_key(|e| e.0);
    let real = txns.nodes.len() as u32;
    let mut next = real;
    let mut current: Option<u32> = None;
    let mut batch_open = false;
    let mut ordered = false;
    for (_, completion, node) in events {
        if completion {
            let time = match (current, batch_open) {
                (Some(t), true) => t,
                _ => {
                    let t = next;
                    next += 1;
                    if let Some(prev) = current {
                        edges.push(prev, t, rel::TIME);
                    }
                    current = Some(t);
                    batch_open = true;
                    t
                }
            };
            edges.push(node, time, rel::REALTIME);
        } else {
            if let Some(t) = current {
                edges.push(t, node, rel::TIME);
                ordered = true;
            }
            batch_open = false;
        }
    }
    (next, ordered)
}

/// Adds process order: each committed transaction to its process's next committed one.
pub(crate) fn add_process(txns: &Txns<'_>, edges: &mut EdgeList) {
    let mut last: super::hash::FxHashMap<u64, u32> = super::hash::FxHashMap::default();
    for (node, &t) in txns.nodes.iter().enumerate() {
        let Some(txn) = txns.txn(t) else { continue };
        if txn.outcome != Outcome::Ok {
            continue;
        }
        if let Some(prev) = last.insert(txn.process, node as u32) {
            edges.push(prev, node as u32, rel::PROCESS);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_parallel_edges_and_finds_cycles() {
        let mut e = EdgeList::default();
        e.push(0, 1, rel::WW);
        e.push(0, 1, rel::RW);
        e.push(1, 2, rel::WR);
        e.push(2, 0, rel::RW);
        e.push(2, 3, rel::WW);
        e.push(3, 3, rel::WW);
        let g = TxnGraph::build(4, 4, e);
        assert_eq!(g.rels_between(0, 1), rel::WW | rel::RW);
        assert_eq!(g.edge_count(), 4);
        assert_eq!(g.cyclic_components(rel::DATA), vec![vec![0, 1, 2]]);
        assert!(g.cyclic_components(rel::WW | rel::WR).is_empty());
    }

    #[test]
    fn components_need_two_transactions() {
        let mut e = EdgeList::default();
        // 0 -> t(2) -> 1 -> t(3) -> 0 would need time to run backwards; a
        // transaction with only time nodes around it is not a cycle.
        e.push(0, 2, rel::REALTIME);
        e.push(2, 1, rel::TIME);
        let g = TxnGraph::build(2, 3, e);
        assert!(g.cyclic_components(rel::REALTIME).is_empty());
    }
}
