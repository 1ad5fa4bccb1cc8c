//! `stale-leader`: the leader frozen (SIGSTOP) and cut off while the others elect a new
//! one, then woken behind a bridge: it still reaches a quorum of its own, but every
//! node of that quorum it shares with the new leader has already promised the new
//! leader's higher term or ballot. Both sides are held apart for a while, then healed;
//! again and again.
//!
//! A paused process cannot notice that it lost its quorum (its clocks and check-quorum
//! timers stop with it), so it wakes believing it leads — the long GC pause or VM
//! stall of real deployments. A correct node is told at once (its first message is
//! refused for its stale term or ballot) and steps down; the faults this aims at let
//! it go on: acceptors that check the promise on prepare only
//! (`paxos-accept-stale-ballot`), followers that take a stale leader's entries,
//! leaders that serve reads on a lease or on their own state without asking a quorum
//! (`stale-read`, `lease-read-skew`). Where the nodes' clocks can be moved (the run
//! includes clock faults), the frozen leader also wakes with its wall clock set back
//! 3–10 s, as a VM restored from a snapshot or a stalled host stepped back by NTP does:
//! a lease it reads off the wall clock then looks valid while it is cut off
//! (`lease-read-skew`); the clock is put back when the sides heal. Two leaders then commit different values in the
//! same slots, which the history shows (not linearizable) and the node logs too
//! (`state-machine-safety`).

use std::collections::BTreeSet;
use std::time::Duration;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use super::hands::Hands;
use super::plan::{Knobs, StaleSides, stale_sides};
use crate::error::NemesisError;
use crate::grudge::Grudge;

/// Rounds until stopped; the first failure (a node that cannot be paused or resumed, a
/// partition that cannot be applied) ends the scenario.
pub(crate) fn run(h: &Hands, rng: &mut ChaCha8Rng, knobs: &Knobs) -> Result<(), NemesisError> {
    let n = h.nodes.len();
    let all: Vec<usize> = (0..n).collect();
    let mut two_leaders = BTreeSet::new();
    while !h.stopped() {
        let Some(old) = h.round_leader(knobs.election_wait()) else {
            continue;
        };
        let others: Vec<usize> = all.iter().copied().filter(|i| *i != old).collect();
        // Frozen while it leads, and cut off: the others elect a new leader.
        h.pause(old)?;
        h.partition(&[vec![old], others.clone()])?;
        h.record(json!({"event": "freeze", "node": h.names(&[old])}));
        let Some(new) = h.await_leader(&others, knobs.election_wait()) else {
            if h.stopped() {
                return Ok(());
            }
            h.record(json!({"event": "no-new-leader"}));
            h.resume(old)?;
            h.heal_net()?;
            continue;
        };
        let Some(sides) = stale_sides(rng, n, old, new) else {
            h.resume(old)?;
            return Ok(());
        };
        // Woken behind the bridge: a quorum on each side, sharing the bridges; where
        // clocks can move, with its wall clock set back past the pause (a VM restored
        // from a snapshot, a stalled host whose clock is stepped back when it resumes).
        h.cut(&bridge_grudge(h, &sides))?;
        let skew = h.can_move_clocks().then(|| skew_secs(rng));
        if let Some(secs) = skew {
            h.shift_clock(old, -secs)?;
        }
        h.resume(old)?;
        let mut wake = json!({
            "event": "wake",
            "node": h.names(&[old]),
            "new_leader": h.names(&[new]),
            "old_side": h.names(&sides.old_side),
            "new_side": h.names(&sides.new_side),
            "bridges": h.names(&sides.bridges),
        });
        if let Some(secs) = skew {
            wake["clock_ms"] = json!(-secs * 1000);
        }
        h.record(wake);
        let hold = knobs
            .hold
            .unwrap_or_else(|| knobs.timing.election_max().saturating_mul(3));
        if h.watch(hold, &mut two_leaders) {
            return Ok(());
        }
        // Whether the woken leader still believed it led at the end of the hold.
        let still_leads = h.view(old).is_some_and(|v| v.is_leader());
        h.heal_net()?;
        h.restore_clock(old)?;
        h.record(json!({"event": "heal", "old_still_leads": still_leads}));
        if h.watch(
            knobs.settle(rng).max(Duration::from_millis(1)),
            &mut two_leaders,
        ) {
            return Ok(());
        }
    }
    Ok(())
}

/// How far back the woken leader's clock is set, in whole seconds: 3–10 s, longer than
/// the pause and the hold together at the default timing, so that a lease read off the
/// wall clock still looks valid all the while the old leader is cut off.
fn skew_secs(rng: &mut ChaCha8Rng) -> i64 {
    rng.random_range(3..=10)
}

/// The grudge that holds `sides` apart: every node of the old leader's side cut from
/// every node of the new leader's side, both ways; the bridges reach everyone.
fn bridge_grudge(h: &Hands, sides: &StaleSides) -> Grudge {
    let names = h.names(&(0..h.nodes.len()).collect::<Vec<_>>());
    let mut grudge = Grudge::new(&names);
    for a in h.names(&sides.old_side) {
        for b in h.names(&sides.new_side) {
            grudge.cut(&a, &b);
            grudge.cut(&b, &a);
        }
    }
    grudge
}
