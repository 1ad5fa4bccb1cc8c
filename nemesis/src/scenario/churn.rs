//! `leader-churn`: the leader isolated with one follower while writes flow, killed, a
//! new term elected by the majority, the old leader brought back as the new one starts
//! replicating; again and again.
//!
//! Aims at Raft's figure 8 (`old-term-commit`: entries of an earlier term committed by
//! counting replicas, then overwritten), lost acknowledged writes, and Multi-Paxos
//! leaders that ignore what a promising quorum accepted (`paxos-ignore-promise`): each
//! round leaves entries of an old term on a minority (the old leader and its follower)
//! and starts a new term elsewhere, then mixes the two.

use std::collections::BTreeSet;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use serde_json::json;

use super::hands::Hands;
use super::plan::{Knobs, churn_round};
use crate::error::NemesisError;

/// Rounds until stopped; the first failure (a node that cannot be killed or started, a
/// partition that cannot be applied) ends the scenario.
pub(crate) fn run(h: &Hands, rng: &mut ChaCha8Rng, knobs: &Knobs) -> Result<(), NemesisError> {
    let n = h.nodes.len();
    let all: Vec<usize> = (0..n).collect();
    let mut two_leaders = BTreeSet::new();
    while !h.stopped() {
        let Some(leader) = h.round_leader(knobs.election_wait()) else {
            continue;
        };
        let Some(round) = churn_round(rng, n, leader, knobs) else {
            return Ok(());
        };
        let minority = vec![leader.min(round.follower), leader.max(round.follower)];
        let majority: Vec<usize> = all
            .iter()
            .copied()
            .filter(|i| !minority.contains(i))
            .collect();
        // The leader and one follower alone: it keeps appending, nothing commits.
        h.partition(&[minority.clone(), majority.clone()])?;
        h.record(json!({"event": "isolate", "leader": h.names(&[leader]), "with": h.names(&[round.follower])}));
        if h.sleep(round.append) {
            return Ok(());
        }
        // Killed while it still leads; the majority elects a new term.
        h.kill(leader)?;
        h.record(json!({"event": "kill-leader", "node": h.names(&[leader])}));
        let new = h.await_leader(&majority, knobs.election_wait());
        if h.sleep(round.return_delay) {
            return Ok(());
        }
        // Back as the new leader starts replicating.
        h.start(leader)?;
        h.heal_net()?;
        h.record(json!({
            "event": "return",
            "node": h.names(&[leader]),
            "new_leader": new.map(|l| h.names(&[l])),
        }));
        if let (Some(new), Some(life)) = (new, round.kill_new_leader) {
            if h.sleep(life) {
                return Ok(());
            }
            h.kill(new)?;
            h.record(json!({"event": "kill-new-leader", "node": h.names(&[new])}));
            let stopped = h.sleep(knobs.timing.election_min());
            h.start(new)?;
            if stopped {
                return Ok(());
            }
        }
        if h.watch(
            knobs.settle(rng).max(Duration::from_millis(1)),
            &mut two_leaders,
        ) {
            return Ok(());
        }
    }
    Ok(())
}
