//! `vote-kill`: an election provoked (the leader and a buddy held apart), the voters
//! watched, and the first node seen to have granted its vote in the new term killed and
//! restarted at once; then the sides are redrawn so that the restarted voter can meet a
//! second candidate in the same term.
//!
//! Aims at votes that are not durable (`forget-vote`): a node that forgets its vote
//! across a restart may vote twice in one term, and two leaders of the same term
//! (election safety) follow, with divergent logs and lost writes.

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
    while !h.stopped() {
        let Some(leader) = h.await_leader(&all, knobs.election_wait()) else {
            if !h.stopped() {
                h.record(json!({"event": "no-leader"}));
            }
            continue;
        };
        let views: Vec<_> = all.iter().map(|i| h.view(*i)).collect();
        votes_reported |= views.iter().flatten().any(|v| v.vote.is_some());
        let base = views.iter().flatten().map(|v| v.term).max().unwrap_or(0);
        let Some((held, voters)) = vote_sides(rng, n, leader) else {
            return Ok(());
        };
        h.partition(&[held.clone(), voters.clone()])?;
        h.record(json!({"event": "provoke", "held": h.names(&held), "term": base}));
        // Watch the voters for the first granted vote of a later term.
        let deadline = Instant::now() + knobs.election_wait();
        let mut found = None;
        while found.is_none() && Instant::now() < deadline && !h.stopped() {
            found = voters.iter().find_map(|i| {
                let view = h.view(*i)?;
                let own = u64::from(h.nodes[*i].id);
                granted_vote(&view, own, base, votes_reported).map(|c| (*i, c, view.term))
            });
        }
        if h.stopped() {
            return Ok(());
        }
        let Some((voter, candidate, term)) = found else {
            h.record(json!({"event": "no-vote"}));
            h.heal_net()?;
            continue;
        };
        h.kill(voter)?;
        h.start(voter)?;
        let candidate = candidate.and_then(|c| h.nodes.iter().position(|n| u64::from(n.id) == c));
        h.record(json!({
            "event": "kill-voter",
            "node": h.names(&[voter]),
            "term": term,
            "voted_for": candidate.map(|c| h.names(&[c])),
        }));
        // The restarted voter joins the held side, whose candidates are still in the
        // old term: with a forgotten vote it may grant one of them the same term.
        let mut second = held.clone();
        second.push(voter);
        second.sort_unstable();
        let rest: Vec<usize> = all
            .iter()
            .copied()
            .filter(|i| !second.contains(i))
            .collect();
        h.partition(&[second.clone(), rest])?;
        h.record(json!({"event": "regroup", "with": h.names(&second)}));
        let hold = knobs
            .hold
            .unwrap_or_else(|| knobs.timing.election_max().saturating_mul(2));
        if h.sleep(hold) {
            return Ok(());
        }
        h.heal_net()?;
        if h.sleep(knobs.settle(rng).max(Duration::from_millis(1))) {
            return Ok(());
        }
    }
    Ok(())
}
