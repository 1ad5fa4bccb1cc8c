//! Memoisation with dominance: failed configurations, keyed by (k, mask, state, debt),
//! with the crashed-use vectors seen; and the deepest configurations, for the failure
//! report.

use super::Search;
use crate::linearizable::model::Model;

/// The states of the deepest configurations kept for the failure report.
const MAX_STATES_REPORTED: usize = 8;

#[derive(Hash, PartialEq, Eq)]
pub(super) struct MemoKey<S> {
    k: u32,
    debt: bool,
    mask: Mask,
    state: S,
}

/// Which operations spanning the deadline are linearized: inline for up to 128 of them
/// (no allocation for the common case), else on the heap.
#[derive(Hash, PartialEq, Eq)]
enum Mask {
    Inline([u64; 2]),
    Heap(Box<[u64]>),
}

impl Mask {
    fn heap_bytes(&self) -> usize {
        match self {
            Mask::Inline(_) => 0,
            Mask::Heap(words) => words.len() * 8,
        }
    }
}

impl<M: Model> Search<'_, M> {
    fn memo_key(&self) -> MemoKey<M::State> {
        let span = &self.span[self.k];
        let mut mask = if span.len() <= 128 {
            Mask::Inline([0; 2])
        } else {
            Mask::Heap(vec![0; span.len().div_ceil(64)].into_boxed_slice())
        };
        let words = match &mut mask {
            Mask::Inline(words) => &mut words[..],
            Mask::Heap(words) => &mut words[..],
        };
        for (bit, &x) in span.iter().enumerate() {
            if self.linearized[x as usize] {
                words[bit / 64] |= 1 << (bit % 64);
            }
        }
        MemoKey {
            k: self.k as u32,
            debt: self.debt,
            mask,
            state: self.state.clone(),
        }
    }

    /// Records the current configuration; false if it (or one it dominates) was seen.
    pub(super) fn remember(&mut self) -> bool {
        let key = self.memo_key();
        let entry_bytes = 64 + key.mask.heap_bytes() + std::mem::size_of::<M::State>();
        if self.used.is_empty() || self.counts_forgotten() {
            if !self.seen.insert(key) {
                return false;
            }
            self.memory_local += entry_bytes;
            return true;
        }
        let used = &self.used;
        let seen = self.seen_with_crashed.entry(key).or_default();
        if seen
            .iter()
            .any(|s| s.iter().zip(used.iter()).all(|(a, b)| a <= b))
        {
            return false;
        }
        seen.retain(|s| !s.iter().zip(used.iter()).all(|(a, b)| b <= a));
        seen.push(used.clone().into_boxed_slice());
        self.memory_local += entry_bytes + used.len() * 2 + 16;
        true
    }

    pub(super) fn note_depth(&mut self) {
        if self.k > self.deepest_k {
            self.deepest_k = self.k;
            self.deepest_states.clear();
        }
        if self.k == self.deepest_k
            && self.deepest_states.len() < MAX_STATES_REPORTED
            && !self.deepest_states.contains(&self.state)
        {
            self.deepest_states.push(self.state.clone());
        }
    }
}
