//! The moves from a configuration, and the exact reductions that prune them (the
//! parent module's list): reads absorbed at once, completed operations of one action in
//! return order, crashed operations never followed by an overwrite before an
//! observation, the deadline operation's necessary fit, and the queue rules.

use super::{Move, MoveOrder, Search, Undo};
use crate::linearizable::model::{Action, Model, NULL, UNOBSERVED};

impl<M: Model> Search<'_, M> {
    /// Keeps the queue rule's count in step with an action taking effect (+1: undone).
    pub(super) fn count_enqueue(&mut self, action_of: Option<&Action>, undone: bool) {
        if let (Some(left), Some(Action::Enqueue(v))) =
            (self.observed_enqueues_left.as_mut(), action_of)
            && *v != UNOBSERVED
        {
            *left = if undone {
                *left + 1
            } else {
                left.saturating_sub(1)
            };
        }
    }

    /// Linearizes completed operation `x` (already checked to fit) into the current
    /// configuration, advancing k past everything linearized.
    pub(super) fn linearize(&mut self, x: u32, undo: &mut Undo<M::State>) {
        let problem = self.problem;
        self.count_enqueue(Some(&problem.completed[x as usize].action), false);
        self.linearized[x as usize] = true;
        undo.linearized.push(x);
        while self.k < self.ret_order.len() && self.linearized[self.ret_order[self.k] as usize] {
            self.k += 1;
        }
    }

    /// Linearizes every operation the model absorbs in the current state, until none
    /// fits. Anything absorbed observes the state, which pays a crashed move's debt.
    pub(super) fn close_over_reads(&mut self, undo: &mut Undo<M::State>) {
        let before = undo.linearized.len();
        self.absorb(undo);
        if undo.linearized.len() > before {
            self.debt = false;
        }
    }

    fn absorb(&mut self, undo: &mut Undo<M::State>) {
        'again: while !self.done() {
            let span = &self.span[self.k];
            for &x in span.iter() {
                if self.linearized[x as usize] {
                    continue;
                }
                let action = &self.problem.completed[x as usize].action;
                if !self.model.absorbs(&self.state, action) {
                    continue;
                }
                // Absorbed operations may change the state (a queue's dequeue of its
                // head); the undo record restores the state from before the move.
                if let Some(next) = self.model.step(&self.state, action) {
                    self.state = next;
                    self.linearize(x, undo);
                    continue 'again;
                }
            }
            break;
        }
    }

    /// How many operations of crashed class `class` were invoked before the deadline.
    pub(super) fn invoked(&self, class: u16) -> usize {
        let deadline = self.deadline_position();
        self.class_calls[class as usize].partition_point(|&c| c < deadline)
    }

    fn deadline_position(&self) -> u64 {
        self.problem.completed[self.ret_order[self.k] as usize].ret
    }

    /// The model's necessary condition for the deadline operation to fit, given every
    /// operation that can be linearized before it.
    fn deadline_could_fit(&self) -> bool {
        let deadline_op = &self.problem.completed[self.ret_order[self.k] as usize].action;
        let completed = self.span[self.k]
            .iter()
            .filter(|&&x| !self.linearized[x as usize])
            .map(|&x| (&self.problem.completed[x as usize].action, 1));
        // A crashed class offers each of its invoked, unused operations (all of them, as
        // often as wanted, when crashed operations are reusable).
        let crashed = (0..self.class_calls.len()).filter_map(|class| {
            let invoked = self.invoked(class as u16);
            let available = if self.crashed_reusable() && invoked > 0 {
                usize::MAX
            } else {
                invoked.saturating_sub(self.used[class] as usize)
            };
            (available > 0).then(|| (&self.class_actions[class], available))
        });
        self.model
            .could_fit(&self.state, deadline_op, &mut completed.chain(crashed))
    }

    /// Queues: may element `a` be enqueued now? Not if another element still to be
    /// enqueued now (a candidate) must be dequeued before `a`'s dequeue begins.
    fn enqueue_in_order(&self, action: &Action) -> bool {
        if *action == Action::Enqueue(UNOBSERVED)
            && self.observed_enqueues_left.is_some_and(|left| left > 0)
        {
            return false;
        }
        let (Some(windows), Action::Enqueue(a)) = (&self.problem.dequeue_windows, action) else {
            return true;
        };
        let Some(&(a_call, _)) = windows.get(a) else {
            return true;
        };
        let dequeued_before_a = |other: &Action| match other {
            Action::Enqueue(b) if b != a => {
                windows.get(b).is_some_and(|&(_, b_ret)| b_ret < a_call)
            }
            _ => false,
        };
        let completed = self.span[self.k]
            .iter()
            .filter(|&&x| !self.linearized[x as usize])
            .any(|&x| dequeued_before_a(&self.problem.completed[x as usize].action));
        let crashed = (0..self.class_calls.len()).any(|class| {
            let invoked = self.invoked(class as u16);
            invoked > self.used[class] as usize && dequeued_before_a(&self.class_actions[class])
        });
        !(completed || crashed)
    }

    /// Queues with unique elements: can every queued element still leave in time?
    ///
    /// An element a completed dequeue returns (observed) leaves only by that dequeue: a
    /// crashed dequeue removing it would leave its own dequeue nothing to return, as it is
    /// never enqueued again. Any other queued element (windowless) leaves only by a
    /// crashed dequeue, or never. Each queued element must leave before the dequeue of
    /// every observed element behind it, and the whole queue before the dequeue of an
    /// observed element not yet enqueued (an enqueue candidate's element, a pending
    /// dequeue's element not queued now, or the element of a crashed enqueue not yet
    /// used, which must still take effect) and before a pending dequeue of `null`. (A
    /// dequeue of an element that was enqueued and is gone can never fit: treating it so
    /// only prunes a configuration that is dead anyway.) So, with `by`
    /// the earliest return among those dequeues for an element: an observed element
    /// whose dequeue was invoked after `by` cannot leave, and the windowless elements,
    /// taken head first, each need a distinct crashed dequeue not yet used and invoked
    /// before its `by` (Hall's condition: the j-th of them needs j such dequeues).
    fn queued_ahead_can_leave(&self) -> bool {
        let Some(windows) = &self.problem.dequeue_windows else {
            return true;
        };
        let problem = self.problem;
        let is_queued = |v: u32| self.model.queued(&self.state).any(|e| e == v);
        let mut by = u64::MAX;
        for &x in self.span[self.k].iter() {
            if self.linearized[x as usize] {
                continue;
            }
            let entry = &problem.completed[x as usize];
            match entry.action {
                Action::Enqueue(e) => {
                    if let Some(&(_, ret)) = windows.get(&e) {
                        by = by.min(ret);
                    }
                }
                Action::Dequeue(v) if v == NULL || !is_queued(v) => by = by.min(entry.ret),
                _ => {}
            }
        }
        // A crashed enqueue of such an element, not yet used, must be used later (the
        // relaxation, which counts none used, leaves it out).
        if !self.crashed_reusable() {
            let deadline = self.deadline_position();
            let from = self
                .crashed_enqueues
                .partition_point(|&(ret, _)| ret < deadline);
            if let Some(&(ret, _)) = self.crashed_enqueues[from..]
                .iter()
                .find(|&&(_, class)| self.used[class as usize] == 0)
            {
                by = by.min(ret);
            }
        }
        let mut windowless = self
            .model
            .queued(&self.state)
            .filter(|e| !windows.contains_key(e))
            .count();
        // From the tail: `by` becomes the earliest return of a dequeue behind.
        for e in self.model.queued(&self.state).rev() {
            match windows.get(&e) {
                Some(&(call, ret)) => {
                    if call > by {
                        return false;
                    }
                    by = by.min(ret);
                }
                None => {
                    if by != u64::MAX && self.crashed_dequeues_left_before(by) < windowless {
                        return false;
                    }
                    windowless -= 1;
                }
            }
        }
        true
    }

    /// Crashed dequeues invoked before position `by` and not yet used. Every one used
    /// was invoked before an earlier deadline, so before `by` (the return of an
    /// operation still to place); the relaxation, which counts none used, gets the
    /// invoked ones, never fewer than the exact search.
    fn crashed_dequeues_left_before(&self, by: u64) -> usize {
        self.unknown_dequeue_class.map_or(0, |class| {
            let class = class as usize;
            self.class_calls[class]
                .partition_point(|&c| c < by)
                .saturating_sub(self.used[class] as usize)
        })
    }

    /// Queues with unique elements: a crashed dequeue never removes an element some
    /// completed dequeue returns (nothing could enqueue it again for that dequeue).
    fn removes_observed_head(&self, action: &Action) -> bool {
        *action == Action::DequeueUnknown
            && self
                .problem
                .dequeue_windows
                .as_ref()
                .is_some_and(|windows| {
                    self.model
                        .queued(&self.state)
                        .next()
                        .is_some_and(|head| windows.contains_key(&head))
                })
    }

    pub(super) fn moves(&mut self) -> Vec<Move> {
        if !self.deadline_could_fit() || !self.queued_ahead_can_leave() {
            return Vec::new();
        }
        self.generation += 1;
        let generation = self.generation;
        let mut moves = Vec::new();
        // In return order, so the first candidate of each action is the one to offer.
        for &x in self.span[self.k].iter() {
            if self.linearized[x as usize] {
                continue;
            }
            let action = self.completed_action[x as usize] as usize;
            if self.debt
                && self
                    .model
                    .overwrites(&self.problem.completed[x as usize].action)
            {
                continue;
            }
            if self.offered[action] != generation {
                self.offered[action] = generation;
                moves.push(Move::Completed(x));
            }
        }
        // The relaxation tries a crashed class taken more often than invoked last, so a
        // linearization it finds is, where it can be, one of the history itself.
        let mut overdrawing = Vec::new();
        for class in 0..self.class_calls.len() {
            if let Some(twin) = self.crashed_twin[class]
                && self.offered[twin as usize] == generation
            {
                continue;
            }
            let candidate = &self.class_actions[class];
            if (self.debt && self.model.overwrites(candidate))
                || !self.enqueue_in_order(candidate)
                || self.removes_observed_head(candidate)
            {
                continue;
            }
            let invoked = self.invoked(class as u16);
            let available = if self.crashed_reusable() {
                invoked > 0
            } else {
                invoked > self.used[class] as usize
            };
            if !available {
                continue;
            }
            if self.crashed_reusable() && invoked <= self.drawn[class] as usize {
                overdrawing.push(Move::Crashed(class as u16));
            } else {
                moves.push(Move::Crashed(class as u16));
            }
        }
        self.order_moves(&mut moves);
        moves.append(&mut overdrawing);
        moves
    }

    /// Orders the moves by [`MoveOrder`], best first; only the order changes, never
    /// which moves exist. When the deadline operation does not fit the current state,
    /// the moves after which it does come first: it must be linearized before anything
    /// invoked after it returned, so a path that does not serve it soon fails. Then
    /// (`Informed`) the moves that observe the current state (a compare-and-set
    /// expecting it): the value they need may not come back.
    fn order_moves(&mut self, moves: &mut [Move]) {
        let order = self.order();
        if order == MoveOrder::Returned {
            return;
        }
        let deadline_op = &self.problem.completed[self.ret_order[self.k] as usize].action;
        let deadline_fits = self.model.step(&self.state, deadline_op).is_some();
        let observing_first = order != MoveOrder::Enabling;
        let crashed_last = order == MoveOrder::CrashedLast;
        let mut ranked = std::mem::take(&mut self.ranked);
        ranked.clear();
        ranked.extend(moves.iter().map(|&m| {
            let action = match m {
                Move::Completed(x) => &self.problem.completed[x as usize].action,
                Move::Crashed(class) => &self.class_actions[class as usize],
            };
            let enables = deadline_fits
                || self
                    .model
                    .step(&self.state, action)
                    .is_some_and(|next| self.model.step(&next, deadline_op).is_some());
            let observes = observing_first && self.model.observes(action);
            let late = crashed_last && matches!(m, Move::Crashed(_));
            ((late, !enables, !observes), m)
        }));
        ranked.sort_by_key(|&(rank, _)| rank);
        for (slot, &(_, m)) in moves.iter_mut().zip(&ranked) {
            *slot = m;
        }
        self.ranked = ranked;
    }
}
