//! `vote-kill`: an election provoked (the leader and a buddy held apart), the voters
//! watched, and the first node seen to have granted its vote in the new term killed and
//! restarted at once; then the sides are redrawn so that the restarted voter can meet a
//! second candidate in the same term.
//!
//! On a local network a vote's answer and the new leader's first entry are a fraction
//! of a millisecond apart, less than a kill takes: killed at once, the voter often dies
//! before its answer leaves (the candidate never counts it, so no second leader can
//! follow), and killed a little later it has the new leader's entry (and no candidate
//! of the old side can win its vote). So where the run has `faultline-delayer`, the
//! voters receive every packet `delay_ms` late (100 ms by default) while they elect:
//! the voter is killed a fifth of that after its vote, once its answer is out and long
//! before the new leader's entry can reach it, and the delay stays until the candidate
//! is seen to lead.
//!
//! Aims at votes that are not durable (`forget-vote`): a node that forgets its vote
//! across a restart may vote twice in one term, and two leaders of the same term
//! (election safety) follow, with divergent logs and lost writes.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha8Rng;
use serde_json::json;

use super::hands::Hands;
use super::plan::{Knobs, granted_vote, vote_sides};
use crate::error::NemesisError;

/// Rounds until stopped; the first failure ends the scenario.
pub(crate) fn run(h: &Hands, rng: &mut ChaCha8Rng, knobs: &Knobs) -> Result<(), NemesisError> {
    let n = h.nodes.len();
    let all: Vec<usize> = (0..n).collect();
    let mut votes_reported = false;
    let mut two_leaders = BTreeSet::new();
    let delayed = h.can_slow();
    let wait = if delayed {
        knobs.delayed_election_wait()
    } else {
        knobs.election_wait()
    };
    let grace = if delayed {
        knobs.delay / 5
    } else {
        Duration::ZERO
    };
    while !h.stopped() {
        let Some(leader) = h.round_leader(knobs.election_wait()) else {
            continue;
        };
        let views: Vec<_> = all.iter().map(|i| h.view(*i)).collect();
        votes_reported |= views.iter().flatten().any(|v| v.vote.is_some());
        let base = views.iter().flatten().map(|v| v.term).max().unwrap_or(0);
        let Some((held, voters)) = vote_sides(rng, n, leader) else {
            return Ok(());
        };
        if delayed {
            h.slow(&voters, knobs.delay)?;
        }
        h.partition(&[held.clone(), voters.clone()])?;
        h.record(json!({"event": "provoke", "held": h.names(&held), "term": base}));
        // Watch the voters for the first granted vote of a later term; kill it once its
        // answer is out.
        let deadline = Instant::now() + wait;
        let found = kill_first_voter(h, &voters, base, votes_reported, deadline, grace);
        if h.stopped() {
            if let Some(Hit { voter, .. }) = found {
                h.start(voter)?;
            }
            return Ok(());
        }
        let Some(hit) = found else {
            h.record(json!({"event": "no-vote"}));
            h.unslow()?;
            h.heal_net()?;
            continue;
        };
        hit.killed?;
        let voter = hit.voter;
        let candidate = hit
            .candidate
            .and_then(|c| h.nodes.iter().position(|n| u64::from(n.id) == c));
        h.record(json!({
            "event": "kill-voter",
            "node": h.names(&[voter]),
            "term": hit.term,
            "voted_for": candidate.map(|c| h.names(&[c])),
            "last_index": hit.last_index,
        }));
        if delayed {
            // The candidate counts the dead voter's answer (still held on its way) and
            // leads; only then do the voters' packets flow again.
            if let Some(c) = candidate {
                let leads = h.await_leader(&[c], wait).is_some();
                h.record(
                    json!({"event": "candidate-leads", "node": h.names(&[c]), "leads": leads}),
                );
            }
            h.unslow()?;
        }
        // The voter joins the held side, whose candidates are still in the old term, and
        // restarts there (out of reach of the new leader's entries): with a forgotten
        // vote it may grant one of them the same term.
        let mut second = held.clone();
        second.push(voter);
        second.sort_unstable();
        let rest: Vec<usize> = all
            .iter()
            .copied()
            .filter(|i| !second.contains(i))
            .collect();
        h.partition(&[second.clone(), rest])?;
        h.start(voter)?;
        h.record(json!({"event": "regroup", "with": h.names(&second)}));
        let hold = knobs
            .hold
            .unwrap_or_else(|| knobs.timing.election_max().saturating_mul(2));
        if h.watch(hold, &mut two_leaders) {
            return Ok(());
        }
        h.heal_net()?;
        if h.watch(
            knobs.settle(rng).max(Duration::from_millis(1)),
            &mut two_leaders,
        ) {
            return Ok(());
        }
    }
    Ok(())
}

/// The voter killed right after its vote.
struct Hit {
    voter: usize,
    candidate: Option<u64>,
    term: u64,
    last_index: u64,
    killed: Result<(), NemesisError>,
}

/// Polls each of `voters` in a thread of its own, as fast as it answers, until one
/// shows a vote granted in a term after `base` (or `deadline`, or a stop); that thread
/// SIGKILLs it `grace` later (its answer sent), before the new leader's first entries
/// may reach it.
fn kill_first_voter(
    h: &Hands,
    voters: &[usize],
    base: u64,
    votes_reported: bool,
    deadline: Instant,
    grace: Duration,
) -> Option<Hit> {
    let done = AtomicBool::new(false);
    let hit: Mutex<Option<Hit>> = Mutex::new(None);
    thread::scope(|s| {
        for &i in voters {
            let (done, hit) = (&done, &hit);
            s.spawn(move || {
                let own = u64::from(h.nodes[i].id);
                while !done.load(Ordering::SeqCst) && Instant::now() < deadline && !h.stopped() {
                    let Some(view) = h.view(i) else {
                        thread::sleep(Duration::from_millis(1));
                        continue;
                    };
                    let Some(candidate) = granted_vote(&view, own, base, votes_reported) else {
                        continue;
                    };
                    if !done.swap(true, Ordering::SeqCst) {
                        thread::sleep(grace);
                        let killed = h.kill(i);
                        *hit.lock().unwrap_or_else(|p| p.into_inner()) = Some(Hit {
                            voter: i,
                            candidate,
                            term: view.term,
                            last_index: view.last_index,
                            killed,
                        });
                    }
                    return;
                }
            });
        }
    });
    hit.into_inner().unwrap_or_else(|p| p.into_inner())
}
