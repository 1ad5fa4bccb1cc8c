//! The breadth-first search for the shortest cycle of a class through an anchor
//! transaction, over (transaction, automaton state), inside one component.

use std::collections::VecDeque;

use super::graph::{TxnGraph, rel};
use super::local::Local;
use super::spec::{Label, STATES, Spec, classify};

/// A cycle of transactions (graph node ids); `labels[i]` leads from `nodes[i]` to
/// `nodes[i + 1]` (cyclically).
#[derive(Debug, Clone)]
pub(crate) struct FoundCycle {
    /// Elle's class name.
    pub name: String,
    /// The transactions, each once.
    pub nodes: Vec<u32>,
    /// The steps.
    pub labels: Vec<Label>,
}

pub(crate) enum Found {
    Cycle(FoundCycle),
    Nothing,
    Timeout,
}

/// Breadth-first search scratch space over (node, state).
pub(crate) struct Bfs {
    dist: Vec<u32>,
    stamp: Vec<u32>,
    parent: Vec<u32>,
    label: Vec<u8>,
    generation: u32,
    deque: VecDeque<u32>,
}

const START: u32 = u32::MAX;

impl Bfs {
    pub(crate) fn new(n: usize) -> Bfs {
        Bfs {
            dist: vec![0; n * STATES],
            stamp: vec![0; n * STATES],
            parent: vec![0; n * STATES],
            label: vec![0; n * STATES],
            generation: 0,
            deque: VecDeque::new(),
        }
    }

    fn relax(&mut self, x: usize, d: u32, parent: u32, label: u8, zero: bool) {
        if self.stamp[x] != self.generation || d < self.dist[x] {
            self.stamp[x] = self.generation;
            self.dist[x] = d;
            self.parent[x] = parent;
            self.label[x] = label;
            if zero {
                self.deque.push_front(x as u32);
            } else {
                self.deque.push_back(x as u32);
            }
        }
    }
}

fn bits(r: u8) -> impl Iterator<Item = u8> {
    (0..6).map(|i| 1u8 << i).filter(move |b| r & b != 0)
}

pub(crate) fn find(
    local: &Local,
    g: &TxnGraph,
    spec: &Spec,
    realtime: &(dyn Fn(u32, u32) -> bool + Sync),
    bfs: &mut Bfs,
    budget: usize,
) -> Found {
    let legal = spec.legal();
    let comps = local.sub_components(legal);
    let first = spec.first();
    let mut spent = 0usize;
    let mut best: Option<FoundCycle> = None;
    let mut tried_after = 0usize;
    for s in 0..local.global.len() as u32 {
        let cs = comps[s as usize];
        if !local.real[s as usize] || cs == u32::MAX {
            continue;
        }
        if !local
            .out(s)
            .any(|(t, r)| r & first != 0 && comps[t as usize] == cs)
        {
            continue;
        }
        if best.is_some() {
            tried_after += 1;
            if tried_after > 32 {
                break;
            }
        }
        let bound = best.as_ref().map_or(u32::MAX, |b| b.nodes.len() as u32);
        bfs.generation = bfs.generation.wrapping_add(1);
        bfs.deque.clear();
        for (t, r) in local.out(s) {
            if r & first != 0 && comps[t as usize] == cs && t != s {
                bfs.relax(
                    t as usize * STATES + spec.init() as usize,
                    1,
                    START,
                    first,
                    false,
                );
            }
        }
        let mut goal: Option<(u32, u32, u8)> = None; // (dist, parent, label)
        while let Some(x) = bfs.deque.pop_front() {
            let x = x as usize;
            let d = bfs.dist[x];
            let limit = goal.map_or(bound, |(gd, _, _)| gd.min(bound));
            if d >= limit {
                break;
            }
            spent += 1;
            if spent > budget {
                return match best {
                    Some(b) => Found::Cycle(b),
                    None => Found::Timeout,
                };
            }
            let (v, st) = ((x / STATES) as u32, (x % STATES) as u8);
            for (t, r) in local.out(v) {
                if comps[t as usize] != cs {
                    continue;
                }
                for bit in bits(r & legal) {
                    let Some(st2) = spec.step(st, bit) else {
                        continue;
                    };
                    let zero = bit == rel::TIME;
                    let nd = d + u32::from(!zero);
                    if t == s {
                        if spec.accept(st2) && goal.is_none_or(|(gd, _, _)| nd < gd) {
                            goal = Some((nd, x as u32, bit));
                        }
                    } else {
                        bfs.relax(t as usize * STATES + st2 as usize, nd, x as u32, bit, zero);
                    }
                }
            }
        }
        let Some((_, parent, bit)) = goal else {
            continue;
        };
        // Walk back: (node, label into the next node).
        let mut walk: Vec<(u32, u8)> = vec![(s, bit)];
        let mut x = parent;
        while x != START {
            let xi = x as usize;
            walk.push(((xi / STATES) as u32, bfs.label[xi]));
            x = bfs.parent[xi];
        }
        walk.push((s, first));
        walk.reverse();
        // walk[i] = (node, label of the step *into* walk[i+1])... normalise.
        let Some(cycle) =
            to_cycle(local, &walk).or_else(|| simple_subcycle(local, g, &walk, spec, realtime))
        else {
            continue;
        };
        if classify(&cycle.labels).as_deref() != Some(spec.name.as_str()) {
            continue;
        }
        let len = cycle.nodes.len();
        if best.as_ref().is_none_or(|b| len < b.nodes.len()) {
            best = Some(FoundCycle {
                name: spec.name.clone(),
                ..cycle
            });
        }
        if len <= 2 {
            break;
        }
    }
    match best {
        Some(b) => Found::Cycle(b),
        None => Found::Nothing,
    }
}

/// Turns a walk into a cycle of transactions if no transaction repeats. The walk
/// is a list of (local node, label of the step taken from the previous entry),
/// starting and ending at the anchor; the first entry's label is the first step's.
fn to_cycle(local: &Local, walk: &[(u32, u8)]) -> Option<FoundCycle> {
    // Reconstructed as: walk[0] = (s, first) then entries (v, label into v)... The
    // construction above stores for each node the label of the step *into* it,
    // except the anchor at the start, which carries the first step's label.
    let mut nodes: Vec<u32> = Vec::new();
    let mut labels: Vec<Label> = Vec::new();
    let mut pending: Option<Label> = None;
    for (i, (v, bit)) in walk.iter().enumerate() {
        if i == 0 {
            nodes.push(local.global[*v as usize]);
            continue;
        }
        if let Some(l) = Label::of_bit(*bit) {
            pending.get_or_insert(l);
        }
        if local.real[*v as usize] {
            labels.push(pending.take()?);
            nodes.push(local.global[*v as usize]);
        }
    }
    nodes.pop(); // the anchor again
    let mut seen = nodes.clone();
    seen.sort_unstable();
    seen.dedup();
    (seen.len() == nodes.len() && nodes.len() >= 2 && labels.len() == nodes.len()).then(|| {
        FoundCycle {
            name: String::new(),
            nodes,
            labels,
        }
    })
}

/// When the shortest walk repeats a transaction, looks for a simple cycle of the
/// class among the walk's transactions by exhaustive search (small sets only).
fn simple_subcycle(
    local: &Local,
    g: &TxnGraph,
    walk: &[(u32, u8)],
    spec: &Spec,
    realtime: &(dyn Fn(u32, u32) -> bool + Sync),
) -> Option<FoundCycle> {
    let mut vs: Vec<u32> = walk
        .iter()
        .filter(|(v, _)| local.real[*v as usize])
        .map(|(v, _)| local.global[*v as usize])
        .collect();
    vs.sort_unstable();
    vs.dedup();
    if vs.len() > 10 {
        return None;
    }
    let legal = spec.legal();
    let edge = |a: u32, b: u32| -> Vec<u8> {
        let r = g.rels_between(a, b) & legal & !rel::REALTIME & !rel::TIME;
        let mut out: Vec<u8> = bits(r).collect();
        if legal & rel::REALTIME != 0 && realtime(a, b) {
            out.push(rel::REALTIME);
        }
        out
    };
    let mut best: Option<FoundCycle> = None;
    // Depth-first over simple paths from each anchor, with the automaton.
    fn dfs(
        path: &mut Vec<u32>,
        labels: &mut Vec<u8>,
        st: u8,
        vs: &[u32],
        spec: &Spec,
        edge: &dyn Fn(u32, u32) -> Vec<u8>,
        best: &mut Option<FoundCycle>,
    ) {
        let (Some(&s), Some(&v)) = (path.first(), path.last()) else {
            return;
        };
        if best.as_ref().is_some_and(|b| b.nodes.len() <= path.len()) {
            return;
        }
        for bit in edge(v, s) {
            if path.len() >= 2 && spec.step(st, bit).is_some_and(|st2| spec.accept(st2)) {
                let mut ls = labels.clone();
                ls.push(bit);
                *best = Some(FoundCycle {
                    name: String::new(),
                    nodes: path.clone(),
                    labels: ls.iter().filter_map(|b| Label::of_bit(*b)).collect(),
                });
                return;
            }
        }
        for &w in vs {
            if path.contains(&w) {
                continue;
            }
            for bit in edge(v, w) {
                let next = if path.len() == 1 {
                    (bit == spec.first()).then_some(spec.init())
                } else {
                    spec.step(st, bit)
                };
                if let Some(st2) = next {
                    path.push(w);
                    labels.push(bit);
                    dfs(path, labels, st2, vs, spec, edge, best);
                    path.pop();
                    labels.pop();
                }
            }
        }
    }
    for &s in &vs {
        dfs(
            &mut vec![s],
            &mut Vec::new(),
            0,
            &vs,
            spec,
            &edge,
            &mut best,
        );
    }
    best
}
