//! One strongly connected component of the transaction graph, renumbered locally
//! (compact adjacency arrays for the cycle searches, and petgraph views for the
//! sub-component and sequential-extension checks).

use petgraph::algo::kosaraju_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeFiltered;

use super::graph::{TxnGraph, rel};
use super::hash::FxHashMap;

/// One component, renumbered locally.
pub(crate) struct Local {
    pub global: Vec<u32>,
    pub real: Vec<bool>,
    dg: DiGraph<(), u8>,
    off: Vec<u32>,
    tgt: Vec<u32>,
    rels: Vec<u8>,
}

impl Local {
    pub(crate) fn new(g: &TxnGraph, comp: &[u32]) -> Local {
        let mut index: FxHashMap<u32, u32> = FxHashMap::default();
        for (i, v) in comp.iter().enumerate() {
            index.insert(*v, i as u32);
        }
        let mut dg: DiGraph<(), u8> = DiGraph::with_capacity(comp.len(), comp.len() * 3);
        for _ in comp {
            dg.add_node(());
        }
        let mut off = vec![0u32];
        let mut tgt = Vec::new();
        let mut rels = Vec::new();
        for (i, v) in comp.iter().enumerate() {
            for (t, r) in g.out(*v) {
                if let Some(j) = index.get(&t) {
                    tgt.push(*j);
                    rels.push(r);
                    dg.add_edge(NodeIndex::new(i), NodeIndex::new(*j as usize), r);
                }
            }
            off.push(tgt.len() as u32);
        }
        Local {
            global: comp.to_vec(),
            real: comp.iter().map(|v| *v < g.real).collect(),
            dg,
            off,
            tgt,
            rels,
        }
    }

    pub(crate) fn out(&self, v: u32) -> impl Iterator<Item = (u32, u8)> + '_ {
        let (lo, hi) = (
            self.off[v as usize] as usize,
            self.off[v as usize + 1] as usize,
        );
        self.tgt[lo..hi]
            .iter()
            .copied()
            .zip(self.rels[lo..hi].iter().copied())
    }

    /// Component id of each node in the subgraph of `mask` edges (NONE when the
    /// node is on no cycle of at least two transactions).
    pub(crate) fn sub_components(&self, mask: u8) -> Vec<u32> {
        let filtered =
            EdgeFiltered::from_fn(&self.dg, |e: petgraph::graph::EdgeReference<'_, u8>| {
                e.weight() & mask != 0
            });
        let mut ids = vec![u32::MAX; self.global.len()];
        for (c, members) in kosaraju_scc(&filtered).into_iter().enumerate() {
            if members.iter().filter(|n| self.real[n.index()]).count() >= 2 {
                for n in members {
                    ids[n.index()] = c as u32;
                }
            }
        }
        ids
    }

    /// Is there a cycle whose rw steps are each preceded by a non-rw step?
    /// (Elle's sequential extension of `mask` by rw.)
    pub(crate) fn extension_cycle(&self, mask: u8) -> bool {
        let n = self.global.len();
        let mut pg: DiGraph<(), ()> = DiGraph::with_capacity(2 * n, self.tgt.len() * 2);
        for _ in 0..2 * n {
            pg.add_node(());
        }
        let free = if mask & rel::REALTIME != 0 {
            rel::TIME
        } else {
            0
        };
        for v in 0..n as u32 {
            for (t, r) in self.out(v) {
                let (a0, a1) = (2 * v as usize, 2 * v as usize + 1);
                let (b0, b1) = (2 * t as usize, 2 * t as usize + 1);
                if r & (mask & !rel::TIME) != 0 {
                    pg.add_edge(NodeIndex::new(a0), NodeIndex::new(b0), ());
                    pg.add_edge(NodeIndex::new(a1), NodeIndex::new(b0), ());
                }
                if r & free != 0 {
                    pg.add_edge(NodeIndex::new(a0), NodeIndex::new(b0), ());
                    pg.add_edge(NodeIndex::new(a1), NodeIndex::new(b1), ());
                }
                if r & rel::RW != 0 {
                    pg.add_edge(NodeIndex::new(a0), NodeIndex::new(b1), ());
                }
            }
        }
        kosaraju_scc(&pg).iter().any(|c| c.len() >= 2)
    }
}
