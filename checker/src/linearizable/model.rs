//! Sequential specifications: what each operation does to an object's state.
//!
//! Values are interned per key to small integers before the search ([`Value`] id 0 is
//! always JSON `null`), so states are cheap to copy, hash and compare.

use std::collections::VecDeque;
use std::fmt;
use std::hash::Hash;

/// An interned value; 0 is `null`.
pub type ValueId = u32;

/// The interned id of JSON `null`.
pub const NULL: ValueId = 0;

/// Stands for every written value that no operation ever observes: all such values
/// behave alike (no read or compare accepts them), so they are merged into one.
pub const UNOBSERVED: ValueId = ValueId::MAX;

/// One operation as the model sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Action {
    /// A register read that returned the value.
    Read(ValueId),
    /// A register write.
    Write(ValueId),
    /// A compare-and-set from the first value to the second.
    Cas(ValueId, ValueId),
    /// A mutex acquire.
    Acquire,
    /// A mutex release.
    Release,
    /// A set add.
    Add(ValueId),
    /// A read of the whole set: its elements, sorted and without duplicates.
    ReadSet(Box<[ValueId]>),
    /// A queue enqueue.
    Enqueue(ValueId),
    /// A dequeue that returned the element (or `NULL`: the queue was empty).
    Dequeue(ValueId),
    /// A dequeue whose result is unknown (it crashed): removes the head, if any.
    DequeueUnknown,
    /// A multi-register transaction: its micro-ops, applied in order, atomically.
    Txn(Box<[MicroOp]>),
}

/// One micro-op of a multi-register transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MicroOp {
    /// The register: an index into the state.
    pub slot: u32,
    /// A write (else a read).
    pub write: bool,
    /// The value written, or the value read.
    pub value: ValueId,
}

/// A sequential specification: an initial state and a step function.
pub trait Model: Sync {
    /// The object's state.
    type State: Clone + Eq + Hash + Send + Sync + fmt::Debug;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// The state after `action`, or `None` if `action` cannot happen in `state`
    /// (e.g. a read that returned a value other than the current one).
    fn step(&self, state: &Self::State, action: &Action) -> Option<Self::State>;

    /// True when linearizing `action` right now, in `state` (where it fits), can never
    /// rule out a linearization that exists: a read, which changes nothing, or a write of
    /// an unobserved value over an unobserved value (which must be overwritten before
    /// anything looks). The search takes such operations at once. `false` (the default)
    /// is always safe.
    fn absorbs(&self, _state: &Self::State, _action: &Action) -> bool {
        false
    }

    /// True when `action` sets the whole state regardless of what it was, and fits every
    /// state (a register write). A crashed operation followed by such an operation before
    /// anything observes the state might as well not have happened, so the search never
    /// places one there. `false` (the default) is always safe.
    fn overwrites(&self, _action: &Action) -> bool {
        false
    }

    /// The elements a queue's state holds, head first (empty for other objects). The
    /// queue rules of the search read it; the default, nothing, is always safe.
    fn queued<'s>(
        &self,
        _state: &'s Self::State,
    ) -> Box<dyn DoubleEndedIterator<Item = ValueId> + 's> {
        Box::new(std::iter::empty())
    }

    /// True when `action` fits only some states: it observes the state (a read, a
    /// compare-and-set, a dequeue of an element). The search tries such operations first
    /// where they fit, as they may find no other place; only the order of the search
    /// depends on it. `false` (the default) is always safe.
    fn observes(&self, _action: &Action) -> bool {
        false
    }

    /// A necessary condition: can `target` fit after the current `state` is changed by
    /// some of `candidates` (each action at most as many times as its count, in some
    /// order)? `false` only when it
    /// certainly cannot; the default never rules anything out.
    fn could_fit(
        &self,
        _state: &Self::State,
        _target: &Action,
        _candidates: &mut dyn Iterator<Item = (&Action, usize)>,
    ) -> bool {
        true
    }

    /// The state in words, with interned values shown through `show`.
    fn describe(&self, state: &Self::State, show: &dyn Fn(ValueId) -> String) -> String;
}

/// A register: `read` and `write`, and `cas` when `cas` is set (the cas-register).
#[derive(Debug, Clone, Copy, Default)]
pub struct Register {
    /// Whether compare-and-set is an operation of this register.
    pub cas: bool,
    /// The value before any write (`NULL` when unset).
    pub initial: ValueId,
    /// Knossos's meaning of a read of `null`: legal in every state (the read's value is
    /// unknown). Otherwise it says the register is `null`.
    pub nil_reads_unknown: bool,
}

impl Register {
    /// A register, a cas-register when `cas`, starting unset, reads of `null` meaning
    /// the register is `null`.
    pub fn new(cas: bool) -> Register {
        Register {
            cas,
            ..Register::default()
        }
    }
}

fn register_step(state: &ValueId, action: &Action) -> Option<ValueId> {
    match action {
        Action::Read(v) => (v == state).then_some(*state),
        Action::Write(v) => Some(*v),
        Action::Cas(old, new) => (old == state).then_some(*new),
        _ => None,
    }
}

/// A register read or cas needs its expected value, which must be current already or be
/// written by some candidate.
fn register_could_fit(
    state: &ValueId,
    target: &Action,
    candidates: &mut dyn Iterator<Item = (&Action, usize)>,
) -> bool {
    let needed = match target {
        Action::Read(v) | Action::Cas(v, _) => *v,
        _ => return true,
    };
    if needed == *state {
        return true;
    }
    for (candidate, _) in candidates {
        if let Action::Write(v) | Action::Cas(_, v) = candidate
            && *v == needed
        {
            return true;
        }
    }
    false
}

fn register_absorbs(state: &ValueId, action: &Action) -> bool {
    match action {
        Action::Read(_) => true,
        Action::Cas(old, new) => old == new,
        Action::Write(UNOBSERVED) => *state == UNOBSERVED,
        _ => false,
    }
}

impl Model for Register {
    type State = ValueId;
    fn init(&self) -> ValueId {
        self.initial
    }
    fn step(&self, state: &ValueId, action: &Action) -> Option<ValueId> {
        match action {
            Action::Cas(..) if !self.cas => None,
            Action::Read(NULL) if self.nil_reads_unknown => Some(*state),
            _ => register_step(state, action),
        }
    }
    fn absorbs(&self, state: &ValueId, action: &Action) -> bool {
        register_absorbs(state, action)
    }
    fn overwrites(&self, action: &Action) -> bool {
        matches!(action, Action::Write(_))
    }
    fn observes(&self, action: &Action) -> bool {
        matches!(action, Action::Read(_) | Action::Cas(..))
    }
    fn could_fit(
        &self,
        state: &ValueId,
        target: &Action,
        candidates: &mut dyn Iterator<Item = (&Action, usize)>,
    ) -> bool {
        if self.nil_reads_unknown && *target == Action::Read(NULL) {
            return true;
        }
        register_could_fit(state, target, candidates)
    }
    fn describe(&self, state: &ValueId, show: &dyn Fn(ValueId) -> String) -> String {
        format!("register = {}", show(*state))
    }
}

/// A mutual-exclusion lock: acquire succeeds only when free, release only when held.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mutex;

impl Model for Mutex {
    type State = bool;
    fn init(&self) -> bool {
        false
    }
    fn step(&self, locked: &bool, action: &Action) -> Option<bool> {
        match action {
            Action::Acquire => (!*locked).then_some(true),
            Action::Release => (*locked).then_some(false),
            _ => None,
        }
    }
    fn could_fit(
        &self,
        locked: &bool,
        target: &Action,
        candidates: &mut dyn Iterator<Item = (&Action, usize)>,
    ) -> bool {
        // An acquire needs the lock free; a release needs it held.
        let (fits, toggles) = match target {
            Action::Acquire => (!*locked, Action::Release),
            Action::Release => (*locked, Action::Acquire),
            _ => return true,
        };
        if fits {
            return true;
        }
        for (candidate, _) in candidates {
            if *candidate == toggles {
                return true;
            }
        }
        false
    }
    fn describe(&self, locked: &bool, _show: &dyn Fn(ValueId) -> String) -> String {
        if *locked { "lock held" } else { "lock free" }.to_string()
    }
}

/// A grow-only set whose reads return every element.
#[derive(Debug, Clone, Copy, Default)]
pub struct Set;

impl Model for Set {
    type State = Vec<ValueId>;
    fn init(&self) -> Vec<ValueId> {
        Vec::new()
    }
    fn step(&self, state: &Vec<ValueId>, action: &Action) -> Option<Vec<ValueId>> {
        match action {
            Action::Add(e) => match state.binary_search(e) {
                Ok(_) => Some(state.clone()),
                Err(at) => {
                    let mut next = state.clone();
                    next.insert(at, *e);
                    Some(next)
                }
            },
            Action::ReadSet(elements) => (state.as_slice() == &elements[..]).then(|| state.clone()),
            _ => None,
        }
    }
    fn absorbs(&self, _state: &Vec<ValueId>, action: &Action) -> bool {
        matches!(action, Action::ReadSet(_))
    }
    fn could_fit(
        &self,
        state: &Vec<ValueId>,
        target: &Action,
        candidates: &mut dyn Iterator<Item = (&Action, usize)>,
    ) -> bool {
        // A set only grows: a read must contain the state, and what it has beyond the
        // state must be added by candidates.
        let Action::ReadSet(read) = target else {
            return true;
        };
        if state.iter().any(|e| read.binary_search(e).is_err()) {
            return false;
        }
        let mut missing: Vec<ValueId> = read
            .iter()
            .filter(|e| state.binary_search(e).is_err())
            .copied()
            .collect();
        if missing.is_empty() {
            return true;
        }
        for (candidate, _) in candidates {
            if let Action::Add(e) = candidate {
                missing.retain(|m| m != e);
                if missing.is_empty() {
                    return true;
                }
            }
        }
        false
    }
    fn describe(&self, state: &Vec<ValueId>, show: &dyn Fn(ValueId) -> String) -> String {
        let items: Vec<String> = state.iter().map(|&e| show(e)).collect();
        format!("set = [{}]", items.join(", "))
    }
}

/// A first-in first-out queue; a dequeue on an empty queue returns `null`.
#[derive(Debug, Clone, Copy, Default)]
pub struct FifoQueue {
    /// Every element is enqueued at most once and dequeued at most once: then a dequeue
    /// of the element at the head can be linearized at once (nothing else can remove it,
    /// and only enqueues, which go behind it, can come in between).
    pub unique_elements: bool,
}

impl Model for FifoQueue {
    type State = VecDeque<ValueId>;
    fn init(&self) -> VecDeque<ValueId> {
        VecDeque::new()
    }
    fn step(&self, state: &VecDeque<ValueId>, action: &Action) -> Option<VecDeque<ValueId>> {
        match action {
            Action::Enqueue(e) => {
                let mut next = state.clone();
                next.push_back(*e);
                Some(next)
            }
            Action::Dequeue(NULL) => state.is_empty().then(|| state.clone()),
            Action::Dequeue(e) => (state.front() == Some(e)).then(|| {
                let mut next = state.clone();
                next.pop_front();
                next
            }),
            Action::DequeueUnknown => {
                let mut next = state.clone();
                next.pop_front();
                Some(next)
            }
            _ => None,
        }
    }
    fn queued<'s>(
        &self,
        state: &'s VecDeque<ValueId>,
    ) -> Box<dyn DoubleEndedIterator<Item = ValueId> + 's> {
        Box::new(state.iter().copied())
    }
    fn absorbs(&self, state: &VecDeque<ValueId>, action: &Action) -> bool {
        match action {
            Action::Dequeue(NULL) => true,
            Action::Dequeue(e) => self.unique_elements && state.front() == Some(e),
            _ => false,
        }
    }
    fn could_fit(
        &self,
        state: &VecDeque<ValueId>,
        target: &Action,
        candidates: &mut dyn Iterator<Item = (&Action, usize)>,
    ) -> bool {
        // A dequeue of e needs e queued (or enqueued by a candidate) and everything ahead
        // of it removed by candidate dequeues; an empty dequeue needs everything removed.
        let Action::Dequeue(wanted) = target else {
            return true;
        };
        let mut dequeued: Vec<ValueId> = Vec::new();
        let mut unknown_dequeues = 0usize;
        let mut enqueued_wanted = false;
        for (candidate, times) in candidates {
            match candidate {
                Action::Dequeue(e) if *e != NULL => dequeued.push(*e),
                Action::DequeueUnknown => unknown_dequeues = unknown_dequeues.saturating_add(times),
                Action::Enqueue(e) if e == wanted => enqueued_wanted = true,
                _ => {}
            }
        }
        let ahead: &mut dyn Iterator<Item = &ValueId> =
            &mut match state.iter().position(|e| e == wanted) {
                Some(at) if *wanted != NULL => state.iter().take(at),
                _ if *wanted == NULL || enqueued_wanted => state.iter().take(state.len()),
                _ => return false,
            };
        let stuck = ahead.filter(|e| !dequeued.contains(e)).count();
        stuck <= unknown_dequeues
    }
    fn describe(&self, state: &VecDeque<ValueId>, show: &dyn Fn(ValueId) -> String) -> String {
        let items: Vec<String> = state.iter().map(|&e| show(e)).collect();
        format!("queue = [{}] (head first)", items.join(", "))
    }
}

/// Knossos's `unordered-queue`: a dequeue returns any queued element. There is no
/// empty dequeue (Jepsen's clients record one as `fail`): a dequeue of `null` needs a
/// queued `null`, as in Knossos. Crashed dequeues are not searched: removing an element
/// only takes choices away from later dequeues.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnorderedQueue;

impl Model for UnorderedQueue {
    /// The queued elements, sorted (a multiset).
    type State = Vec<ValueId>;
    fn init(&self) -> Vec<ValueId> {
        Vec::new()
    }
    fn step(&self, state: &Vec<ValueId>, action: &Action) -> Option<Vec<ValueId>> {
        match action {
            Action::Enqueue(e) => {
                let mut next = state.clone();
                let at = next.partition_point(|x| x <= e);
                next.insert(at, *e);
                Some(next)
            }
            Action::Dequeue(e) => state.binary_search(e).ok().map(|at| {
                let mut next = state.clone();
                next.remove(at);
                next
            }),
            _ => None,
        }
    }
    fn could_fit(
        &self,
        state: &Vec<ValueId>,
        target: &Action,
        candidates: &mut dyn Iterator<Item = (&Action, usize)>,
    ) -> bool {
        // A dequeue of e needs e queued, or enqueued by a candidate.
        let Action::Dequeue(wanted) = target else {
            return true;
        };
        if state.binary_search(wanted).is_ok() {
            return true;
        }
        for (candidate, _) in candidates {
            if *candidate == Action::Enqueue(*wanted) {
                return true;
            }
        }
        false
    }
    fn describe(&self, state: &Vec<ValueId>, show: &dyn Fn(ValueId) -> String) -> String {
        let items: Vec<String> = state.iter().map(|&e| show(e)).collect();
        format!("queue = {{{}}} (unordered)", items.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_register_steps() {
        let m = Register::new(true);
        assert_eq!(m.step(&NULL, &Action::Write(3)), Some(3));
        assert_eq!(m.step(&3, &Action::Cas(3, 4)), Some(4));
        assert_eq!(m.step(&3, &Action::Cas(2, 4)), None);
        assert_eq!(m.step(&3, &Action::Read(3)), Some(3));
        assert_eq!(m.step(&3, &Action::Read(1)), None);
        assert_eq!(Register::new(false).step(&3, &Action::Cas(3, 4)), None);
        // Knossos: a read of nil is legal in any state; ours: it says the register is nil.
        let knossos = Register {
            cas: true,
            initial: 5,
            nil_reads_unknown: true,
        };
        assert_eq!(knossos.init(), 5);
        assert_eq!(knossos.step(&3, &Action::Read(NULL)), Some(3));
        assert_eq!(m.step(&3, &Action::Read(NULL)), None);
    }

    #[test]
    fn mutex_excludes() {
        assert_eq!(Mutex.step(&false, &Action::Acquire), Some(true));
        assert_eq!(Mutex.step(&true, &Action::Acquire), None);
        assert_eq!(Mutex.step(&false, &Action::Release), None);
    }

    #[test]
    fn set_and_queue() {
        let s = Set.step(&vec![], &Action::Add(2)).unwrap();
        let s = Set.step(&s, &Action::Add(1)).unwrap();
        assert_eq!(s, vec![1, 2]);
        assert!(Set.step(&s, &Action::ReadSet(vec![1, 2].into())).is_some());
        assert!(Set.step(&s, &Action::ReadSet(vec![1].into())).is_none());
        let q = FifoQueue::default()
            .step(&VecDeque::new(), &Action::Enqueue(5))
            .unwrap();
        assert!(
            FifoQueue::default()
                .step(&q, &Action::Dequeue(NULL))
                .is_none()
        );
        assert!(
            FifoQueue::default()
                .step(&q, &Action::Dequeue(5))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn unordered_queue_dequeues_any_element() {
        let q = UnorderedQueue;
        let s = q.step(&vec![], &Action::Enqueue(2)).unwrap();
        let s = q.step(&s, &Action::Enqueue(1)).unwrap();
        let s = q.step(&s, &Action::Enqueue(2)).unwrap();
        assert_eq!(s, vec![1, 2, 2]);
        assert_eq!(q.step(&s, &Action::Dequeue(2)), Some(vec![1, 2]));
        assert_eq!(q.step(&s, &Action::Dequeue(1)), Some(vec![2, 2]));
        assert_eq!(q.step(&s, &Action::Dequeue(3)), None);
        // No empty dequeue: null must be queued.
        assert_eq!(q.step(&vec![], &Action::Dequeue(NULL)), None);
    }
}
