//! [`Hands`]: what a scenario's thread acts with (kill, start, partition, heal, ask
//! each node its term and vote), what it touched (to undo it when the scenario stops),
//! and the events it records for the history.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use faultline_clusters::db::NodeView;
use faultline_clusters::{Db, Node};
use serde_json::{Value, json};

use crate::clock::{restore_clock_file, shift_clock_file};
use crate::delay::InboundDelays;
use crate::error::NemesisError;
use crate::grudge::{Grudge, complete_grudge};
use crate::net::Net;
use crate::process::{crash, node_error, on_each};

/// At most this many events go into the history's value; later ones are counted.
pub(crate) const MAX_EVENTS: usize = 2_000;

/// A scenario's hands on the cluster, shared by its thread and its nemesis.
pub(crate) struct Hands {
    pub(crate) db: Arc<dyn Db>,
    pub(crate) nodes: Vec<Node>,
    net: Arc<dyn Net>,
    delays: Option<Arc<InboundDelays>>,
    stop: AtomicBool,
    started: Instant,
    state: Mutex<State>,
}

/// What the scenario has done that stopping must undo, and what it recorded.
#[derive(Default)]
struct State {
    /// Nodes killed and not started again.
    down: BTreeSet<usize>,
    /// Nodes killed at least once (each must serve again at the end).
    touched: BTreeSet<usize>,
    /// Nodes paused (SIGSTOP) and not resumed.
    paused: BTreeSet<usize>,
    /// Whether a partition may be in place.
    partitioned: bool,
    /// Whether packet delays may be in place.
    delayed: bool,
    /// Clocks the scenario moved and has not put back: node → (its offset before, the
    /// offset the scenario left it at), in seconds.
    clocks: BTreeMap<usize, (i64, i64)>,
    events: Vec<Value>,
    dropped_events: usize,
}

impl Hands {
    /// Hands on `nodes` of `db`, partitioning through `net`, delaying packets with
    /// `delays` (when the scenario needs them).
    pub(crate) fn new(
        db: Arc<dyn Db>,
        nodes: Vec<Node>,
        net: Arc<dyn Net>,
        delays: Option<Arc<InboundDelays>>,
    ) -> Hands {
        Hands {
            db,
            nodes,
            net,
            delays,
            stop: AtomicBool::new(false),
            started: Instant::now(),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panicking scenario thread leaves consistent sets behind: keep using them.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks the scenario's thread to end.
    pub(crate) fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Whether the scenario was asked to end.
    pub(crate) fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Sleeps `d` in short steps; true if the scenario was stopped meanwhile.
    pub(crate) fn sleep(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        loop {
            if self.stopped() {
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            thread::sleep(left.min(Duration::from_millis(5)));
        }
    }

    /// Milliseconds since the scenario started.
    pub(crate) fn at_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Records `event` (an object) with its time, `at_ms`.
    pub(crate) fn record(&self, mut event: Value) {
        event["at_ms"] = json!(self.at_ms());
        let mut state = self.state();
        if state.events.len() < MAX_EVENTS {
            state.events.push(event);
        } else {
            state.dropped_events += 1;
        }
    }

    /// The node names of `indices`.
    pub(crate) fn names(&self, indices: &[usize]) -> Vec<String> {
        indices
            .iter()
            .map(|i| self.nodes[*i].name.clone())
            .collect()
    }

    /// Crashes node `i` (SIGKILL, and its unsynced writes lost where they can be: see
    /// [`crash`]).
    pub(crate) fn kill(&self, i: usize) -> Result<(), NemesisError> {
        let node = &self.nodes[i];
        {
            let mut state = self.state();
            state.down.insert(i);
            state.touched.insert(i);
        }
        crash(&*self.db, node).map(drop)
    }

    /// Starts node `i` again, without waiting until it serves.
    pub(crate) fn start(&self, i: usize) -> Result<(), NemesisError> {
        let node = &self.nodes[i];
        self.db
            .start(node)
            .map_err(|e| node_error(node, "start", e))?;
        self.state().down.remove(&i);
        Ok(())
    }

    /// Pauses node `i` (SIGSTOP; see [`can_pause`](Self::can_pause)).
    pub(crate) fn pause(&self, i: usize) -> Result<(), NemesisError> {
        let node = &self.nodes[i];
        let pause = self.db.pause().ok_or_else(|| NemesisError::Unsupported {
            db: self.db.name().to_string(),
            capability: "pause",
            nemesis: "scenario",
        })?;
        self.state().paused.insert(i);
        pause.pause(node).map_err(|e| node_error(node, "pause", e))
    }

    /// Whether the database's nodes can be paused.
    pub(crate) fn can_pause(&self) -> bool {
        self.db.pause().is_some()
    }

    /// Resumes every node this scenario paused and has not resumed.
    pub(crate) fn resume_all(&self) -> Result<(), NemesisError> {
        let paused: Vec<usize> = self.state().paused.iter().copied().collect();
        crate::error::collect(paused.into_iter().map(|i| self.resume(i)).collect())
    }

    /// Resumes node `i` (SIGCONT) if this scenario paused it.
    pub(crate) fn resume(&self, i: usize) -> Result<(), NemesisError> {
        let node = &self.nodes[i];
        if !self.state().paused.contains(&i) {
            return Ok(());
        }
        if let Some(pause) = self.db.pause() {
            pause
                .resume(node)
                .map_err(|e| node_error(node, "resume", e))?;
        }
        self.state().paused.remove(&i);
        Ok(())
    }

    /// Splits the nodes into `groups` (by index) that talk only among themselves.
    pub(crate) fn partition(&self, groups: &[Vec<usize>]) -> Result<(), NemesisError> {
        let names: Vec<Vec<String>> = groups.iter().map(|g| self.names(g)).collect();
        let grudge = complete_grudge(&names).map_err(|e| NemesisError::BadNode {
            node: names.concat().join(","),
            reason: e.to_string(),
        })?;
        self.cut(&grudge)
    }

    /// Applies `grudge` (any topology: bridges, one-way cuts).
    pub(crate) fn cut(&self, grudge: &Grudge) -> Result<(), NemesisError> {
        self.state().partitioned = true;
        self.net.drop(grudge)
    }

    /// Whether [`Hands::slow`] can delay packets (the run has `faultline-delayer`).
    pub(crate) fn can_slow(&self) -> bool {
        self.delays.is_some()
    }

    /// Holds every packet the nodes `targets` receive from other nodes for `delay`
    /// (removing other delays).
    pub(crate) fn slow(&self, targets: &[usize], delay: Duration) -> Result<(), NemesisError> {
        let delays = self.delays.as_ref().ok_or_else(no_delayer)?;
        self.state().delayed = true;
        delays.slow(targets, delay)
    }

    /// Removes every packet delay.
    pub(crate) fn unslow(&self) -> Result<(), NemesisError> {
        if let Some(delays) = &self.delays {
            delays.heal()?;
        }
        self.state().delayed = false;
        Ok(())
    }

    /// SIGKILLs the nodes `indices` at once (in parallel), each waited for.
    pub(crate) fn kill_all(&self, indices: &[usize]) -> Result<(), NemesisError> {
        crate::error::collect(thread::scope(|s| {
            let kills: Vec<_> = indices.iter().map(|i| s.spawn(|| self.kill(*i))).collect();
            kills
                .into_iter()
                .map(|k| k.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        }))
    }

    /// Removes every partition.
    pub(crate) fn heal_net(&self) -> Result<(), NemesisError> {
        self.net.heal()?;
        self.state().partitioned = false;
        Ok(())
    }

    /// The net, for scenarios that partition through a [`crate::PartitionNemesis`].
    pub(crate) fn net(&self) -> Arc<dyn Net> {
        Arc::clone(&self.net)
    }

    /// Marks the network as possibly partitioned (by someone using [`Hands::net`]).
    pub(crate) fn mark_partitioned(&self) {
        self.state().partitioned = true;
    }

    /// What node `i` says of its term and vote (`None`: no answer, or the database does
    /// not report it).
    pub(crate) fn view(&self, i: usize) -> Option<NodeView> {
        self.db.elections()?.view(&self.nodes[i]).ok()
    }

    /// The nodes that consider themselves leader (by index), from the nodes' views when
    /// the database reports them, else from its leader discovery.
    pub(crate) fn leaders(&self) -> Vec<usize> {
        if self.db.elections().is_some() {
            return (0..self.nodes.len())
                .filter(|i| self.view(*i).is_some_and(|v| v.is_leader()))
                .collect();
        }
        let Some(primaries) = self.db.primaries() else {
            return Vec::new();
        };
        let names = primaries.primaries(&self.nodes);
        (0..self.nodes.len())
            .filter(|i| names.contains(&self.nodes[*i].name))
            .collect()
    }

    /// Polls the leaders every 5 ms until one of `among` leads (the first found), for at
    /// most `timeout`; `None` if none did or the scenario was stopped. Only `among` are
    /// asked when the database reports views (a paused node elsewhere never answers).
    pub(crate) fn await_leader(&self, among: &[usize], timeout: Duration) -> Option<usize> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let found = if self.db.elections().is_some() {
                among
                    .iter()
                    .copied()
                    .find(|i| self.view(*i).is_some_and(|v| v.is_leader()))
            } else {
                self.leaders().into_iter().find(|l| among.contains(l))
            };
            if let Some(l) = found {
                return Some(l);
            }
            if self.sleep(Duration::from_millis(5)) {
                return None;
            }
        }
        None
    }

    /// The leader a round starts from: [`Hands::await_leader`] among every node, and
    /// when none leads in time (and the scenario goes on), `{"event":"no-leader"}`
    /// recorded.
    pub(crate) fn round_leader(&self, timeout: Duration) -> Option<usize> {
        let all: Vec<usize> = (0..self.nodes.len()).collect();
        let leader = self.await_leader(&all, timeout);
        if leader.is_none() && !self.stopped() {
            self.record(json!({"event": "no-leader"}));
        }
        leader
    }

    /// Sleeps `d` while watching the nodes' views every 5 ms (when the database reports
    /// them): two nodes leading the same term (election safety broken) are recorded
    /// once per term, as `{"event":"two-leaders","term":T,"nodes":[…]}`. True if the
    /// scenario was stopped meanwhile.
    pub(crate) fn watch(&self, d: Duration, seen: &mut BTreeSet<u64>) -> bool {
        if self.db.elections().is_none() {
            return self.sleep(d);
        }
        let until = Instant::now() + d;
        while Instant::now() < until {
            let mut leaders: Vec<(u64, usize)> = (0..self.nodes.len())
                .filter_map(|i| {
                    self.view(i)
                        .filter(NodeView::is_leader)
                        .map(|v| (v.term, i))
                })
                .collect();
            leaders.sort_unstable();
            for pair in leaders.windows(2) {
                if pair[0].0 == pair[1].0 && seen.insert(pair[0].0) {
                    let term = pair[0].0;
                    let both: Vec<usize> = leaders
                        .iter()
                        .filter(|(t, _)| *t == term)
                        .map(|(_, i)| *i)
                        .collect();
                    self.record(
                        json!({"event": "two-leaders", "term": term, "nodes": self.names(&both)}),
                    );
                }
            }
            if self.sleep(Duration::from_millis(5)) {
                return true;
            }
        }
        self.stopped()
    }

    /// Whether the database's nodes run under libfaketime, so that
    /// [`shift_clock`](Self::shift_clock) can move their clocks.
    pub(crate) fn can_move_clocks(&self) -> bool {
        self.db.fake_clock().is_some()
    }

    /// Moves node `i`'s wall clock by `delta_secs` (on top of its current offset) until
    /// [`restore_clock`](Self::restore_clock) or the scenario's end puts it back.
    pub(crate) fn shift_clock(&self, i: usize, delta_secs: i64) -> Result<(), NemesisError> {
        let Some(clock) = self.db.fake_clock() else {
            return Err(NemesisError::Refused {
                db: self.db.name().to_string(),
                nemesis: "scenario",
                reason: "its nodes' clocks cannot be moved".into(),
            });
        };
        let now = shift_clock_file(clock, &self.nodes[i], delta_secs)?;
        let before = now.saturating_sub(delta_secs);
        let mut state = self.state();
        let entry = state.clocks.entry(i).or_insert((before, now));
        entry.1 = now;
        Ok(())
    }

    /// Puts back node `i`'s clock if the scenario moved it: to its offset before, unless
    /// something else (the clock nemesis) has moved it since, whose change then stands.
    pub(crate) fn restore_clock(&self, i: usize) -> Result<(), NemesisError> {
        let Some((before, left)) = self.state().clocks.remove(&i) else {
            return Ok(());
        };
        let Some(clock) = self.db.fake_clock() else {
            return Ok(());
        };
        restore_clock_file(clock, &self.nodes[i], left, before).map(drop)
    }

    /// Starts every node this scenario killed that is still down (without waiting
    /// until it serves), so that the next round has every node.
    pub(crate) fn start_down(&self) -> Result<(), NemesisError> {
        let down: Vec<usize> = self.state().down.iter().copied().collect();
        crate::error::collect(down.into_iter().map(|i| self.start(i)).collect())
    }

    /// Undoes everything: puts back the clocks it moved, resumes the nodes left paused,
    /// heals the network, starts the nodes left down, and waits until every node the
    /// scenario killed serves again (at most `timeout` each). Tries all.
    pub(crate) fn restore(&self, timeout: Duration) -> Result<(), NemesisError> {
        let (partitioned, down, touched, paused, delayed, clocks) = {
            let state = self.state();
            (
                state.partitioned,
                state.down.clone(),
                state.touched.clone(),
                state.paused.clone(),
                state.delayed,
                state.clocks.keys().copied().collect::<Vec<usize>>(),
            )
        };
        let clocked =
            crate::error::collect(clocks.into_iter().map(|i| self.restore_clock(i)).collect());
        let unslowed = if delayed { self.unslow() } else { Ok(()) };
        let resumed = crate::error::collect(paused.into_iter().map(|i| self.resume(i)).collect());
        let healed = if partitioned { self.heal_net() } else { Ok(()) };
        let nodes: Vec<&Node> = touched.iter().map(|i| &self.nodes[*i]).collect();
        let db = &*self.db;
        let (_, back) = on_each(&nodes, |node| {
            let not_back = |source| NemesisError::NotBack {
                node: node.name.clone(),
                log: node.log_file(),
                source: Box::new(source),
            };
            let i = self.nodes.iter().position(|n| n.name == node.name);
            if i.is_some_and(|i| down.contains(&i)) {
                db.start(node).map_err(not_back)?;
            }
            db.await_ready(node, timeout).map_err(not_back)
        });
        let mut state = self.state();
        if back.is_ok() {
            state.down.clear();
            state.touched.clear();
        }
        drop(state);
        crate::error::collect(vec![resumed, unslowed, healed, back, clocked])
    }

    /// The recorded events, and how many did not fit.
    pub(crate) fn take_events(&self) -> (Vec<Value>, usize) {
        let mut state = self.state();
        let dropped = std::mem::take(&mut state.dropped_events);
        (std::mem::take(&mut state.events), dropped)
    }
}

/// A scenario that delays packets, built without a `faultline-delayer`.
fn no_delayer() -> NemesisError {
    NemesisError::Command {
        node: "controller".into(),
        command: "delay packets".into(),
        reason: "no faultline-delayer: build it (cargo build --release) or set \
                 $FAULTLINE_DELAYER"
            .into(),
    }
}
