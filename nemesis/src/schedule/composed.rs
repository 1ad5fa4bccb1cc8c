//! The composed schedule: one [`Schedule`] per [`FaultGroup`], running at once, with
//! scenarios taking turns with the process, network and packet groups (see
//! [`composed`]).

use std::time::Duration;

use faultline_checker::history::{Op, Process};
use faultline_generator::{Context, GenOp, Generator, earliest};

use super::{Schedule, schedule};
use crate::fault::{Fault, FaultGroup};

/// The generator of [`composed`].
#[derive(Debug, Clone)]
pub struct Composed {
    /// Each group's schedule, in group order.
    members: Vec<(FaultGroup, Schedule)>,
    /// Where the next poll starts (round robin, so no group always goes first).
    next: usize,
}

/// Whether faults of groups `a` and `b` may not be active at once: a scenario kills,
/// pauses, partitions and delays packets (`figure8`, `vote-kill`: through the same
/// `faultline-delayer` and queue as the packet fault) on its own plan, so it excludes
/// the process, network and packet groups (and they it); every other pair overlaps.
fn conflict(a: FaultGroup, b: FaultGroup) -> bool {
    use FaultGroup::{Network, Packet, Process, Scenario};
    matches!(
        (a, b),
        (Scenario, Process | Network | Packet | Scenario) | (Process | Network | Packet, Scenario)
    )
}

/// Several faults at once: one [`schedule`] per [`FaultGroup`] among `faults` (the
/// faults of a group take turns, as in [`schedule`]), all running together, so that
/// e.g. a partition is held while nodes are killed and restarted and a clock is bumped.
/// Each group waits `0..2 × interval` between its own changes; the nemesis process
/// performs one operation at a time, so a group whose time has come waits while another
/// group's fault is being applied.
///
/// Scenarios (their own group, on their own timer) take turns with the process, network
/// and packet groups rather than overlapping them. A scenario whose time has come ends
/// the process, network and packet faults still active (their stops come at once) and
/// holds back their next starts until it is over, so that every scenario of `all` gets
/// its turn within a minute's run (waiting for their stops left one scenario in three
/// out of most such runs); a process, network or packet fault that fell due first goes
/// first, and the scenario waits for its stop, so neither side starves the other. Clock
/// faults overlap everything. Replays from the seed like [`schedule`].
pub fn composed(faults: &[Fault], interval: Duration) -> Composed {
    let mut groups: Vec<FaultGroup> = faults.iter().map(|f| f.group()).collect();
    groups.sort();
    groups.dedup();
    Composed {
        members: groups
            .into_iter()
            .map(|g| {
                let members: Vec<Fault> =
                    faults.iter().copied().filter(|f| f.group() == g).collect();
                (g, schedule(&members, interval))
            })
            .collect(),
        next: 0,
    }
}

/// Whether a fault of `group`, once due, ends the conflicting faults still active
/// rather than wait for their stops: a scenario does (its turn must come within a
/// minute's run, and it plays its own kills, partitions and packet delays).
fn preempts(group: FaultGroup) -> bool {
    group == FaultGroup::Scenario
}

impl Composed {
    /// Cuts short the faults that hold back a due member of a preempting group, unless
    /// a conflicting group fell due before it (that one goes first, as in
    /// [`held_back`](Self::held_back)).
    fn preempt(&mut self, due: &[Option<u64>], now: u64) {
        for i in 0..self.members.len() {
            let (group, ref s) = self.members[i];
            if due[i].is_none() || !preempts(group) || s.active() {
                continue;
            }
            let others_first =
                self.members.iter().enumerate().any(|(j, (other, _))| {
                    j != i && conflict(group, *other) && due_before(due, j, i)
                });
            if others_first {
                continue;
            }
            for j in 0..self.members.len() {
                let other = self.members[j].0;
                if j != i && conflict(group, other) && !preempts(other) {
                    self.members[j].1.cut_short(now);
                }
            }
        }
    }

    /// Whether member `i` must hold back its next start: a conflicting group has a
    /// fault active, or fell due (is waiting to start) before it.
    fn held_back(&self, i: usize, due: &[Option<u64>]) -> bool {
        let (group, _) = self.members[i];
        self.members.iter().enumerate().any(|(j, (other, s))| {
            j != i && conflict(group, *other) && (s.active() || due_before(due, j, i))
        })
    }
}

/// Whether member `j` fell due before member `i` (both due; ties go to the lower index).
fn due_before(due: &[Option<u64>], j: usize, i: usize) -> bool {
    match (due[j], due[i]) {
        (Some(theirs), Some(mine)) => (theirs, j) < (mine, i),
        _ => false,
    }
}

impl Generator for Composed {
    fn op(&mut self, ctx: &mut Context) -> GenOp {
        let n = self.members.len();
        if n == 0 {
            return GenOp::Exhausted;
        }
        if !ctx.is_free(Process::Nemesis) {
            return GenOp::WAIT;
        }
        let now = ctx.time();
        // Each waiting member's start deadline, drawn now if not yet (so that a held
        // back group's wait runs meanwhile); `Some` only once it has passed.
        let due: Vec<Option<u64>> = self
            .members
            .iter_mut()
            .map(|(_, s)| s.start_deadline(ctx).filter(|d| *d <= now))
            .collect();
        self.preempt(&due, now);
        let mut retry_at: Option<u64> = None;
        let mut live = false;
        for i in (0..n).map(|k| (self.next + k) % n) {
            if !self.members[i].1.active() && self.held_back(i, &due) {
                // Woken by the event that ends what holds it back.
                live = true;
                continue;
            }
            match self.members[i].1.op(ctx) {
                GenOp::Op { process, op } => {
                    self.next = (i + 1) % n;
                    return GenOp::Op { process, op };
                }
                GenOp::Pending { retry_at: t } => {
                    live = true;
                    retry_at = earliest(retry_at, t);
                }
                GenOp::Exhausted => {}
            }
        }
        if live {
            GenOp::Pending { retry_at }
        } else {
            GenOp::Exhausted
        }
    }

    fn update(&mut self, _: &mut Context, _: &Op) {}
}
