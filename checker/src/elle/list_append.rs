//! List-append inference: the version order of each key from its longest read
//! (every read is a prefix of it), and the ww, wr and rw dependencies that order
//! implies. Follows Elle's `elle.list-append`.

use rayon::prelude::*;
use serde_json::Value;

use super::anomaly::Why;
use super::graph::{EdgeList, rel};
use super::hash::FxHashMap;
use super::txn::{Elem, MopKind, NONE, Outcome, Txns};
use super::value::List;
use crate::history::InputError;

/// What is known about one appended (or read) element of a key.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ElemInfo {
    /// The transaction that appended it, or [`NONE`] (read but never appended).
    pub writer: u32,
    /// Its position in the key's version order, or [`NONE`] if never read.
    pub pos: u32,
    /// True when its writer appended to the same key again afterwards.
    pub intermediate: bool,
}

/// A read, as the passes see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadInfo {
    /// The transaction.
    pub txn: u32,
    /// Index of the micro-op in [`Txns::mops`].
    pub mop: u32,
    /// True when the read is a prefix of the key's longest read.
    pub compatible: bool,
    /// The state it observed: number of elements of the version order before it
    /// (position of its last element + 1), or [`NONE`] when unknown.
    pub state: u32,
    /// The element info of its last element, or [`NONE`] (empty, or never
    /// appended nor in the order).
    pub last: u32,
}

/// The version orders and indices of a list-append history.
pub(crate) struct AppendIndex<'h> {
    /// Per key: the longest read as observed (may hold duplicates).
    pub longest: Vec<List<'h>>,
    /// Per key: the version order (the longest read, duplicates dropped).
    pub order: Vec<Vec<Elem<'h>>>,
    /// Per key: the writer of each position of `order`, or [`NONE`].
    pub order_writer: Vec<Vec<u32>>,
    /// Per key: committed or indeterminate appends never read.
    pub unobserved: Vec<Vec<u32>>,
    /// `(key, element)` -> index into `info`.
    pub elems: FxHashMap<(u32, Elem<'h>), u32>,
    /// Element facts.
    pub info: Vec<ElemInfo>,
    /// For each write micro-op (by index in [`Txns::mops`]): its element's index.
    pub mop_elem: Vec<u32>,
    /// Every read of an ok or info transaction with a known value.
    pub reads: Vec<ReadInfo>,
    /// For each micro-op: its index in `reads`, or [`NONE`].
    pub read_of_mop: Vec<u32>,
}

impl<'h> AppendIndex<'h> {
    /// The facts about `elem` of key `k`.
    pub(crate) fn elem(&self, k: u32, elem: Elem<'h>) -> Option<&ElemInfo> {
        self.elems
            .get(&(k, elem))
            .and_then(|i| self.info.get(*i as usize))
    }

    /// The read info of micro-op `m`, if it is a read with a known value.
    pub(crate) fn read(&self, m: u32) -> Option<&ReadInfo> {
        self.reads.get(*self.read_of_mop.get(m as usize)? as usize)
    }

    /// Writer of position `p` of key `k`'s order.
    fn writer_at(&self, k: u32, p: u32) -> u32 {
        self.order_writer
            .get(k as usize)
            .and_then(|w| w.get(p as usize))
            .copied()
            .unwrap_or(NONE)
    }

    /// The state (order length before it) that append micro-op `m` followed, and the
    /// element appended just before it (`None` for the initial state).
    fn previous(&self, k: u32, m: u32) -> (u32, Option<Elem<'h>>) {
        let info = self
            .mop_elem
            .get(m as usize)
            .and_then(|i| self.info.get(*i as usize));
        let order = self.order.get(k as usize).map_or(&[][..], Vec::as_slice);
        let state = match info {
            Some(i) if i.pos != NONE => i.pos,
            _ => order.len() as u32,
        };
        let prev = state
            .checked_sub(1)
            .and_then(|p| order.get(p as usize).copied());
        (state, prev)
    }
}

/// Builds the index, checking that appended values are unique per key.
pub(crate) fn index<'h>(txns: &Txns<'h>) -> Result<AppendIndex<'h>, InputError> {
    let key_count = txns.keys.len();
    let mut elems: FxHashMap<(u32, Elem<'h>), u32> = FxHashMap::default();
    elems.reserve(txns.mops.len() / 2);
    let mut info: Vec<ElemInfo> = Vec::with_capacity(txns.mops.len() / 2);
    let mut mop_elem = vec![NONE; txns.mops.len()];
    let mut longest: Vec<Option<(usize, u32)>> = vec![None; key_count];
    let mut appends_per_key: Vec<(u32, u32)> = vec![(0, NONE); key_count];
    for (t, txn) in txns.txns.iter().enumerate() {
        let t = t as u32;
        let range = txn.mops.start as usize..txn.mops.end as usize;
        let mops = &txns.mops[range.clone()];
        for (i, mop) in mops.iter().enumerate() {
            let m = (range.start + i) as u32;
            match mop.kind {
                MopKind::Write => {
                    let Some(elem) = mop.value.elem() else {
                        continue;
                    };
                    let intermediate = mops[i + 1..]
                        .iter()
                        .any(|later| later.kind == MopKind::Write && later.key == mop.key);
                    let next = info.len() as u32;
                    let slot = *elems.entry((mop.key, elem)).or_insert(next);
                    if slot != next {
                        let other = info.get(slot as usize).map_or(NONE, |e| e.writer);
                        let other_line = txns.invoke_line(other);
                        return Err(txns.source.error_at(
                            txn.invoke,
                            format!(
                                "value {} is appended to key {} more than once (also by the txn invoked on line {}); list-append needs unique values per key",
                                mop.value,
                                txns.key_text(mop.key),
                                other_line.map_or("?".to_string(), |l| l.to_string())
                            ),
                        ));
                    }
                    info.push(ElemInfo {
                        writer: t,
                        pos: NONE,
                        intermediate,
                    });
                    mop_elem[m as usize] = slot;
                    if txn.outcome != Outcome::Fail {
                        let entry = &mut appends_per_key[mop.key as usize];
                        entry.0 += 1;
                        entry.1 = slot;
                    }
                }
                MopKind::Read => {
                    if txn.outcome == Outcome::Fail {
                        continue;
                    }
                    if let Some(items) = mop.value.list() {
                        let best = &mut longest[mop.key as usize];
                        if !items.is_empty() && best.is_none_or(|(len, _)| items.len() > len) {
                            *best = Some((items.len(), m));
                        }
                    }
                }
            }
        }
    }
    // Version orders.
    let mut longest_lists: Vec<List<'h>> = Vec::with_capacity(key_count);
    let mut order: Vec<Vec<Elem<'h>>> = Vec::with_capacity(key_count);
    let mut order_writer: Vec<Vec<u32>> = Vec::with_capacity(key_count);
    for k in 0..key_count {
        let list: List<'h> = match longest[k] {
            Some((_, m)) => txns.mops[m as usize].value.list_or_empty(),
            None => List::Ints(&[]),
        };
        longest_lists.push(list);
        let mut o: Vec<Elem<'h>> = Vec::with_capacity(list.len());
        let mut w: Vec<u32> = Vec::with_capacity(list.len());
        if list.is_empty() {
            // Elle: a key with one append and no reads took on just that value.
            let (count, slot) = appends_per_key[k];
            if count == 1
                && let Some(e) = info.get_mut(slot as usize)
                && let Some(mop) = txns
                    .mops_of(e.writer)
                    .iter()
                    .find(|m| m.kind == MopKind::Write && m.key == k as u32)
            {
                e.pos = 0;
                o.push(mop.value.elem().unwrap_or(Elem::Nil));
                w.push(e.writer);
            }
        }
        for (i, elem) in list.elems().enumerate() {
            let elem = match elem {
                Some(e @ (Elem::Int(_) | Elem::Str(_))) => e,
                _ => {
                    let m = longest[k].map_or(0, |(_, m)| m);
                    return Err(bad_element(txns, m, &list.json_at(i)));
                }
            };
            let next = info.len() as u32;
            let slot = *elems.entry((k as u32, elem)).or_insert(next);
            if slot == next {
                info.push(ElemInfo {
                    writer: NONE,
                    pos: NONE,
                    intermediate: false,
                });
            }
            let e = &mut info[slot as usize];
            if e.pos == NONE {
                e.pos = o.len() as u32;
                o.push(elem);
                w.push(e.writer);
            }
        }
        order.push(o);
        order_writer.push(w);
    }
    // Unobserved appends (committed or indeterminate).
    let mut unobserved: Vec<Vec<u32>> = vec![Vec::new(); key_count];
    for (m, mop) in txns.mops.iter().enumerate() {
        if mop.kind != MopKind::Write {
            continue;
        }
        if let Some(e) = info.get(mop_elem[m] as usize)
            && e.pos == NONE
            && txns.outcome(e.writer) != Outcome::Fail
        {
            unobserved[mop.key as usize].push(e.writer);
        }
    }
    // Reads, in parallel: each compared with its key's longest read.
    let per_chunk: Vec<Result<Vec<ReadInfo>, InputError>> = txns
        .txns
        .par_chunks(1 << 14)
        .enumerate()
        .map(|(c, chunk)| {
            let mut out = Vec::new();
            for (i, txn) in chunk.iter().enumerate() {
                if txn.outcome == Outcome::Fail {
                    continue;
                }
                let t = (c << 14) + i;
                for m in txn.mops.clone() {
                    let mop = &txns.mops[m as usize];
                    if mop.kind != MopKind::Read || mop.value.is_null() {
                        continue;
                    }
                    let items = mop.value.list_or_empty();
                    let full = longest_lists[mop.key as usize];
                    let compatible = items.is_prefix_of(full);
                    if !compatible && let Some(bad) = items.first_bad() {
                        return Err(bad_element(txns, m, &bad));
                    }
                    let last = items
                        .last_elem()
                        .and_then(|e| elems.get(&(mop.key, e)).copied())
                        .unwrap_or(NONE);
                    let state = match items.is_empty() {
                        true => 0,
                        false => info
                            .get(last as usize)
                            .map_or(NONE, |e| if e.pos == NONE { NONE } else { e.pos + 1 }),
                    };
                    out.push(ReadInfo {
                        txn: t as u32,
                        mop: m,
                        compatible,
                        state,
                        last,
                    });
                }
            }
            Ok(out)
        })
        .collect();
    let mut reads = Vec::new();
    for chunk in per_chunk {
        reads.extend(chunk?);
    }
    let mut read_of_mop = vec![NONE; txns.mops.len()];
    for (i, r) in reads.iter().enumerate() {
        read_of_mop[r.mop as usize] = i as u32;
    }
    Ok(AppendIndex {
        longest: longest_lists,
        order,
        order_writer,
        unobserved,
        elems,
        info,
        mop_elem,
        reads,
        read_of_mop,
    })
}

/// The error for a read list holding something other than integers and strings.
fn bad_element(txns: &Txns<'_>, m: u32, bad: &Value) -> InputError {
    let txn = txns.txns.iter().find(|t| t.mops.contains(&m));
    let position = txn.map_or(0, |t| t.completion.unwrap_or(t.invoke));
    txns.source.error_at(
        position,
        format!(
            "a read list holds integers or strings, got {}",
            super::txn::short(bad)
        ),
    )
}

/// The ww, wr and rw edges between graph nodes.
pub(crate) fn edges(txns: &Txns<'_>, index: &AppendIndex<'_>) -> Vec<EdgeList> {
    let node = |t: u32| txns.node_of.get(t as usize).copied().unwrap_or(NONE);
    let from_reads = index.reads.par_chunks(1 << 15).map(|chunk| {
        let mut edges = EdgeList::default();
        for read in chunk {
            let k = txns.mops[read.mop as usize].key;
            let reader = node(read.txn);
            // wr: the writer of the last element read.
            if let Some(e) = index.info.get(read.last as usize)
                && e.writer != read.txn
            {
                edges.push(node(e.writer), reader, rel::WR);
            }
            // rw: whoever appended the next element after the state read.
            if read.state != NONE {
                let order_len = index.order.get(k as usize).map_or(0, Vec::len) as u32;
                if read.state < order_len {
                    let next = index.writer_at(k, read.state);
                    if next != read.txn {
                        edges.push(reader, node(next), rel::RW);
                    }
                } else {
                    for &next in index.unobserved.get(k as usize).into_iter().flatten() {
                        if next != read.txn {
                            edges.push(reader, node(next), rel::RW);
                        }
                    }
                }
            }
        }
        edges
    });
    // ww: each append follows the append before it in version order.
    let from_appends = txns.txns.par_chunks(1 << 14).enumerate().map(|(c, chunk)| {
        let mut edges = EdgeList::default();
        for (i, txn) in chunk.iter().enumerate() {
            if txn.outcome == Outcome::Fail {
                continue;
            }
            let t = ((c << 14) + i) as u32;
            let writer = node(t);
            for m in txn.mops.clone() {
                let mop = &txns.mops[m as usize];
                if mop.kind != MopKind::Write {
                    continue;
                }
                let (state, _) = index.previous(mop.key, m);
                if state > 0 {
                    let prev = index.writer_at(mop.key, state - 1);
                    if prev != t {
                        edges.push(node(prev), writer, rel::WW);
                    }
                }
            }
        }
        edges
    });
    from_reads.chain(from_appends).collect()
}

/// The state a read observed (see [`ReadInfo::state`]), if known.
fn read_state(index: &AppendIndex<'_>, mop: &super::txn::Mop<'_>) -> Option<u32> {
    let items = mop.value.list()?;
    if items.is_empty() {
        return Some(0);
    }
    let e = index.elem(mop.key, items.last_elem()?)?;
    (e.pos != NONE).then(|| e.pos + 1)
}

/// Explains why transaction `a` precedes `b` by relationship `r` (one of ww, wr, rw).
pub(crate) fn explain(
    txns: &Txns<'_>,
    index: &AppendIndex<'_>,
    a: u32,
    b: u32,
    r: u8,
) -> Option<Why> {
    let b_range = txns.txn(b)?.mops.clone();
    for m in b_range {
        let mop = &txns.mops[m as usize];
        let k = mop.key;
        match (r, mop.kind) {
            (rel::WW, MopKind::Write) => {
                let (state, prev) = index.previous(k, m);
                if state > 0 && index.writer_at(k, state - 1) == a {
                    return Some(Why::AppendWw {
                        key: txns.key_json(k),
                        value: prev.map_or(Value::Null, Elem::to_json),
                        value2: mop.value.to_json(),
                    });
                }
            }
            (rel::WR, MopKind::Read) => {
                if let Some(items) = mop.value.list()
                    && let Some(i) = items.len().checked_sub(1)
                    && items
                        .elem(i)
                        .and_then(|e| index.elem(k, e))
                        .is_some_and(|e| e.writer == a)
                {
                    return Some(Why::AppendWr {
                        key: txns.key_json(k),
                        value: items.json_at(i),
                    });
                }
            }
            (rel::RW, MopKind::Write) => {
                let (state, prev) = index.previous(k, m);
                let a_read_it = txns.mops_of(a).iter().any(|rd| {
                    rd.kind == MopKind::Read && rd.key == k && read_state(index, rd) == Some(state)
                });
                if a_read_it {
                    return Some(Why::AppendRw {
                        key: txns.key_json(k),
                        value: prev.map(Elem::to_json),
                        value2: mop.value.to_json(),
                    });
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::elle::ElleWorkload;
    use crate::elle::txn::parse;
    use crate::history::{History, Op, OpType, Process};

    fn history(events: &[(u64, OpType, serde_json::Value)]) -> History {
        let ops = events
            .iter()
            .enumerate()
            .map(|(i, (p, t, v))| {
                Op::new(
                    i as u64,
                    i as i64,
                    Process::Client(*p),
                    *t,
                    "txn",
                    v.clone(),
                )
            })
            .collect();
        History::from_ops("t", ops).unwrap()
    }

    #[test]
    fn version_order_and_edges() {
        // T0 appends 1; T1 reads [1] and appends 2; T2 reads [] (before both);
        // T3 appends 3, never read.
        let h = history(&[
            (0, OpType::Invoke, json!([["append", "x", 1]])),
            (0, OpType::Ok, json!([["append", "x", 1]])),
            (
                1,
                OpType::Invoke,
                json!([["r", "x", null], ["append", "x", 2]]),
            ),
            (1, OpType::Ok, json!([["r", "x", [1]], ["append", "x", 2]])),
            (2, OpType::Invoke, json!([["r", "x", null]])),
            (2, OpType::Ok, json!([["r", "x", []]])),
            (3, OpType::Invoke, json!([["append", "x", 3]])),
            (3, OpType::Ok, json!([["append", "x", 3]])),
            (4, OpType::Invoke, json!([["r", "x", null]])),
            (4, OpType::Ok, json!([["r", "x", [1, 2]]])),
        ]);
        let txns = parse(&h, ElleWorkload::ListAppend).unwrap();
        let index = index(&txns).unwrap();
        assert_eq!(index.order[0], vec![Elem::Int(1), Elem::Int(2)]);
        assert_eq!(index.order_writer[0], vec![0, 1]);
        assert_eq!(index.unobserved[0], vec![3]);
        let edges = edges(&txns, &index);
        let g = crate::elle::graph::TxnGraph::build_from(5, 5, edges);
        assert_eq!(g.rels_between(0, 1), rel::WW | rel::WR);
        assert_eq!(g.rels_between(2, 0), rel::RW);
        assert_eq!(g.rels_between(1, 3), rel::WW);
        assert_eq!(g.rels_between(4, 3), rel::RW);
        assert_eq!(g.rels_between(1, 4), rel::WR);
        assert!(matches!(
            explain(&txns, &index, 2, 0, rel::RW),
            Some(Why::AppendRw { value: None, .. })
        ));
    }

    #[test]
    fn duplicate_appends_are_input_errors() {
        let h = history(&[
            (0, OpType::Invoke, json!([["append", "x", 1]])),
            (0, OpType::Ok, json!([["append", "x", 1]])),
            (1, OpType::Invoke, json!([["append", "x", 1]])),
        ]);
        let txns = parse(&h, ElleWorkload::ListAppend).unwrap();
        let e = index(&txns).err().unwrap().to_string();
        assert!(e.starts_with("t:3:") && e.contains("line 1"), "{e}");
    }
}
