//! `figure8`: Raft's figure 8 (the Raft paper, §5.4.2) played on real processes, round
//! after round:
//!
//! 0. where the database says how many entries one replication message holds (`batch`;
//!    faultline-kv's `--max-append-entries`, 256 by default) and it is more than 8
//!    (the old side fills a smaller one alone), the future voters (the
//!    majority of step 1 but one node, the future Y) are cut off first, until X's log
//!    runs that many entries (less a margin of 2) past theirs. Without it, step 3's
//!    catch-up message would hold the old side's few entries and W's no-op together
//!    (only a follower lagging a whole message gets one of old entries alone), and a
//!    leader that counts replicas for old entries would never show it;
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
//! The prefix is what the majority holds the moment step 1 cuts it off: W's commit
//! index passing it means W committed an entry only the old side had.
//!
//! On a correct node, step 3 only sees W's commit pass the prefix once its no-op is on
//! a majority, so the voters refuse Y and nothing committed is lost. Needs a database
//! that reports each node's role, term and commit index, and `faultline-delayer`.

use std::time::{Duration, Instant};

use rand_chacha::ChaCha8Rng;
use serde_json::json;

use super::hands::Hands;
use super::plan::{FIGURE8_NO_LAG_BATCH, Knobs, figure8_laggers, figure8_sides, lag_target};
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
        // 0. Where a message holds at most `batch` entries, the voters-to-be fall that
        //    many behind (less a margin) first; X is frozen the moment they do.
        let lag = match knobs.batch {
            Some(batch) if batch > FIGURE8_NO_LAG_BATCH => {
                lag_voters(h, rng, x, &majority, batch, knobs)?
            }
            _ => Lag::Skipped,
        };
        // 1. X's side apart, appending what it cannot commit; the majority (the voters,
        //    when they lag already) hears late. The prefix is what the majority has:
        //    every later entry is the old side's.
        match lag {
            Lag::Failed => {
                if h.stopped() {
                    return Ok(());
                }
                end_round(h)?;
                continue;
            }
            Lag::Skipped => h.slow(&majority, knobs.delay)?,
            Lag::Ready => {}
        }
        h.partition(&[minority.clone(), majority.clone()])?;
        h.resume(x)?;
        let Some(prefix) = common_prefix(h, &majority, wait) else {
            h.record(json!({"event": "majority-silent"}));
            end_round(h)?;
            continue;
        };
        h.record(json!({
            "event": "isolate",
            "leader": h.names(&[x]),
            "with": h.names(&minority),
            "prefix": prefix,
        }));
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
        if common_prefix(h, &voters, wait).is_none() {
            h.record(json!({"event": "voters-silent"}));
            end_round(h)?;
            continue;
        }
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

/// How step 0 went.
enum Lag {
    /// Not done (the cluster is too small to lag a majority's worth of voters and still
    /// commit): step 1 as without it.
    Skipped,
    /// The voters lag, receive packets late, and the leader is paused (where the
    /// database can be), so that nothing more reaches the majority before step 1.
    Ready,
    /// The round must end: the leader stopped leading, the log did not grow enough in
    /// time, or the scenario stopped.
    Failed,
}

/// Step 0 of a round whose database sends at most `batch` entries a message: a node of
/// the majority (the future Y) stays with leader `x`, the others (the future voters) are
/// cut off (and receive packets late from now on) until `x`'s log is
/// `batch - FIGURE8_LAG_MARGIN` entries past theirs; then `x` is paused, so that its
/// log stops right there until step 1's partition is in place. In step
/// 3 the old side's leader then catches a voter up from that far back, so its first
/// message ends past the prefix the majority holds but before its no-op: a handful of
/// the old side's entries (it appends one per client on its side before it steps down)
/// are what a message boundary must fall among, which a lag of a whole message but a
/// margin reaches.
fn lag_voters(
    h: &Hands,
    rng: &mut ChaCha8Rng,
    x: usize,
    majority: &[usize],
    batch: u64,
    knobs: &Knobs,
) -> Result<Lag, NemesisError> {
    let n = h.nodes.len();
    let Some(laggers) = figure8_laggers(rng, n, majority) else {
        return Ok(Lag::Skipped);
    };
    // The voters must start from close behind: one still catching up (restarted by an
    // earlier fault) would lag by more than a message at once.
    if !caught_up(h, x, &laggers, batch / 2, knobs.election_wait()) {
        h.record(json!({"event": "voters-behind", "voters": h.names(&laggers)}));
        return Ok(Lag::Failed);
    }
    let rest: Vec<usize> = (0..n).filter(|i| !laggers.contains(i)).collect();
    h.partition(&[laggers.clone(), rest])?;
    h.slow(&laggers, knobs.delay)?;
    let Some(behind_from) = common_prefix(h, &laggers, knobs.election_wait()) else {
        h.record(json!({"event": "voters-silent"}));
        return Ok(Lag::Failed);
    };
    let target = lag_target(behind_from, batch);
    let deadline = Instant::now() + knobs.lag_wait();
    while !h.stopped() {
        match h.view(x) {
            Some(view) if !view.is_leader() => {
                h.record(json!({"event": "lag-lost-leader", "leader": h.names(&[x])}));
                return Ok(Lag::Failed);
            }
            Some(view) if view.last_index >= behind_from.saturating_add(batch) => {
                // Seen too late (a slow answer): the catch-up message would end inside
                // the prefix.
                h.record(json!({
                    "event": "lag-overshot",
                    "from": behind_from,
                    "leader_last": view.last_index,
                }));
                return Ok(Lag::Failed);
            }
            Some(view) if view.last_index >= target => {
                if h.can_pause() {
                    h.pause(x)?;
                }
                h.record(json!({
                    "event": "lag",
                    "voters": h.names(&laggers),
                    "from": behind_from,
                    "leader_last": view.last_index,
                    "batch": batch,
                }));
                return Ok(Lag::Ready);
            }
            _ => {}
        }
        if Instant::now() >= deadline {
            h.record(json!({"event": "no-lag", "from": behind_from, "target": target}));
            return Ok(Lag::Failed);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(Lag::Failed)
}

/// Whether every node of `nodes` comes within `slack` entries of leader `x`'s last index
/// within `wait` (polled every 5 ms).
fn caught_up(h: &Hands, x: usize, nodes: &[usize], slack: u64, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        if let Some(lead) = h.view(x) {
            let close = |i: &usize| {
                h.view(*i)
                    .is_some_and(|v| v.last_index.saturating_add(slack) >= lead.last_index)
            };
            if nodes.iter().all(close) {
                return true;
            }
        }
        if Instant::now() >= deadline || h.sleep(Duration::from_millis(5)) {
            return false;
        }
    }
}

/// Removes the round's delays and partition, and starts the nodes it left down (a
/// round cut short after step 2 leaves Y, or more, killed: without them the next
/// round's majority may be unable to elect at all).
fn end_round(h: &Hands) -> Result<(), NemesisError> {
    h.resume_all()?;
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
