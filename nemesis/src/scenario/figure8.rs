//! `figure8`: Raft's figure 8 (the Raft paper, §5.4.2) played on real processes, round
//! after round:
//!
//! 1. the leader X is cut off with a minority; it appends client writes (entries of
//!    its term) that only its side holds, until it steps down. The majority's nodes
//!    receive every packet `delay_ms` late from now on;
//! 2. the majority elects a leader Y, whose first entry (its no-op) reaches its voters
//!    `delay_ms` after it won: the voters are killed before it does, and so is Y.
//!    Y alone holds an entry of a later term at the index after the common prefix;
//! 3. the voters restart and rejoin X's side (Y stays cut off), and a node W of X's side wins (its log is
//!    the longest). W's first catch-up message to a voter holds old-term entries only
//!    (when they outnumber faultline-kv's `--max-append-entries`), and the voter's
//!    answer lets W count a majority for them: a correct leader waits for an entry of
//!    its own term; one with `--bug old-term-commit` commits them. The moment W's
//!    commit index passes the common prefix, W's side and the voters are killed, before
//!    W's next message (its no-op) reaches a voter;
//! 4. Y and the voters restart alone: Y's entry has the later term, so the voters elect
//!    it, and it overwrites the entries W committed. The node logs show a committed
//!    entry replaced (`state-machine-safety`); then everyone is back.
//!
//! On a correct node, step 3 only sees W's commit pass the prefix once its no-op is on
//! a majority, so the voters refuse Y and nothing committed is lost. Needs a database
//! that reports each node's role, term and commit index, and `faultline-delayer`.

use std::time::{Duration, Instant};

use rand_chacha::ChaCha8Rng;
use serde_json::json;

use super::hands::Hands;
use super::plan::{Knobs, figure8_sides};
use crate::error::NemesisError;

/// Rounds until stopped; the first failure ends the scenario.
pub(crate) fn run(h: &Hands, rng: &mut ChaCha8Rng, knobs: &Knobs) -> Result<(), NemesisError> {
    let n = h.nodes.len();
    let all: Vec<usize> = (0..n).collect();
    let wait = knobs.delayed_election_wait();
    while !h.stopped() {
        let Some(x) = h.round_leader(wait) else {
            continue;
        };
        let Some((minority, majority)) = figure8_sides(rng, n, x) else {
            return Ok(());
        };
        // 1. X's side apart, appending what it cannot commit; the majority hears late.
        h.slow(&majority, knobs.delay)?;
        h.partition(&[minority.clone(), majority.clone()])?;
        h.record(json!({"event": "isolate", "leader": h.names(&[x]), "with": h.names(&minority)}));
        // 2. The majority's leader Y, and its voters killed before its first entry lands.
        let Some(y) = h.await_leader(&majority, wait) else {
            if h.stopped() {
                return Ok(());
            }
            h.record(json!({"event": "no-new-leader"}));
            end_round(h)?;
            continue;
        };
        let voters: Vec<usize> = majority.iter().copied().filter(|i| *i != y).collect();
        h.kill_all(&voters)?;
        h.kill(y)?;
        h.record(
            json!({"event": "kill-voters", "leader": h.names(&[y]), "voters": h.names(&voters)}),
        );
        // 3. The voters back, with X's side: it leads again and catches up. Y stays cut
        //    off: its kernel still retransmits what it sent before it died (its no-op),
        //    which must reach no node that keeps running.
        for &v in &voters {
            h.start(v)?;
        }
        let others: Vec<usize> = all.iter().copied().filter(|i| *i != y).collect();
        h.partition(&[others, vec![y]])?;
        let Some(prefix) = common_prefix(h, &voters, wait) else {
            h.record(json!({"event": "voters-silent"}));
            end_round(h)?;
            continue;
        };
        let Some(w) = h.await_leader(&minority, wait) else {
            if h.stopped() {
                return Ok(());
            }
            h.record(json!({"event": "no-old-side-leader", "prefix": prefix}));
            end_round(h)?;
            continue;
        };
        let Some(commit) = await_commit_past(h, w, prefix, wait) else {
            h.record(json!({"event": "no-commit", "leader": h.names(&[w]), "prefix": prefix}));
            end_round(h)?;
            continue;
        };
        let mut struck = minority.clone();
        struck.extend(&voters);
        h.kill_all(&struck)?;
        h.record(json!({
            "event": "kill-counted",
            "leader": h.names(&[w]),
            "prefix": prefix,
            "commit": commit,
        }));
        // 4. Y and the voters alone (every node that heard the dead Y's old connections
        //    is restarted by now): a later term's entry against what W committed.
        h.heal_net()?;
        let mut rest = voters.clone();
        rest.push(y);
        rest.sort_unstable();
        for &i in &rest {
            h.start(i)?;
        }
        let overwriter = h.await_leader(&rest, wait);
        let commit = overwriter.and_then(|l| await_commit_past(h, l, prefix, wait));
        h.record(json!({
            "event": "return",
            "leader": overwriter.map(|l| h.names(&[l])),
            "commit": commit,
        }));
        for &i in &minority {
            h.start(i)?;
        }
        end_round(h)?;
        if h.sleep(knobs.settle(rng).max(Duration::from_millis(1))) {
            return Ok(());
        }
    }
    Ok(())
}

/// Removes the round's delays and partition, and starts the nodes it left down (a
/// round cut short after step 2 leaves Y, or more, killed: without them the next
/// round's majority may be unable to elect at all).
fn end_round(h: &Hands) -> Result<(), NemesisError> {
    h.unslow()?;
    h.heal_net()?;
    h.start_down()
}

/// The highest last log index among `voters` once each answers (their logs are the
/// prefix every node shares), or `None` if one did not answer within `wait`.
fn common_prefix(h: &Hands, voters: &[usize], wait: Duration) -> Option<u64> {
    let deadline = Instant::now() + wait;
    let mut highest = 0;
    for &v in voters {
        loop {
            if let Some(view) = h.view(v) {
                highest = highest.max(view.last_index);
                break;
            }
            if Instant::now() >= deadline || h.sleep(Duration::from_millis(2)) {
                return None;
            }
        }
    }
    Some(highest)
}

/// Polls `leader` as fast as it answers until it leads with a commit index past
/// `prefix` (that index), or it stops leading, `wait` passes or the scenario stops.
fn await_commit_past(h: &Hands, leader: usize, prefix: u64, wait: Duration) -> Option<u64> {
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline && !h.stopped() {
        match h.view(leader) {
            Some(view) if view.is_leader() && view.commit > prefix => return Some(view.commit),
            Some(view) if !view.is_leader() => return None,
            Some(_) => {}
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    None
}
