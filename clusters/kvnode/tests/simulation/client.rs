//! Simulated clients: each runs one register operation at a time against some node
//! and records invocations and completions as a Faultline history.

use faultline_checker::history::Key;
use faultline_checker::{Op, OpType, Process};
use faultline_kv::consensus::NodeId;
use rand::RngExt;
use serde_json::{Value, json};

use crate::node::Waiter;
use crate::world::{Event, World};

/// The operation a client is waiting for.
#[derive(Debug, Clone)]
pub struct Current {
    id: u64,
    f: &'static str,
    key: i64,
    value: Value,
    node: NodeId,
}

/// One logical client slot (its process number changes after an indeterminate result).
#[derive(Debug, Clone)]
pub struct Client {
    process: u64,
    current: Option<Current>,
    guess: NodeId,
}

impl Client {
    pub fn new(process: u64, guess: NodeId) -> Client {
        Client {
            process,
            current: None,
            guess,
        }
    }
}

impl World {
    fn record(
        &mut self,
        process: u64,
        op_type: OpType,
        cur: &Current,
        value: Value,
        error: Option<&str>,
    ) {
        let index = self.history.len() as u64;
        let time = (self.now * 1_000_000 + index) as i64;
        let mut op = Op::new(index, time, Process::Client(process), op_type, cur.f, value)
            .with_key(Key::Int(cur.key));
        op.node = Some(format!("n{}", cur.node));
        op.error = error.map(str::to_string);
        self.history.push(op);
    }

    /// A client starts its next operation.
    pub fn client_go(&mut self, c: usize) -> Result<(), String> {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        let random_node = ids[self.rng.random_range(0..ids.len())];
        let Some(client) = self.clients.get(c) else {
            return Ok(());
        };
        if client.current.is_some() {
            return Ok(());
        }
        // With the stale-read bug any node answers reads, so spread reads widely.
        let node = if self.rng.random_bool(0.7) {
            client.guess
        } else {
            random_node
        };
        let key = self.rng.random_range(0..self.cfg.keys);
        let (f, value) = match self.rng.random_range(0..10) {
            0..4 => ("read", Value::Null),
            4..8 => ("write", json!(self.rng.random_range(0..5))),
            _ => (
                "cas",
                json!([self.rng.random_range(0..5), self.rng.random_range(0..5)]),
            ),
        };
        let id = self.next_ctx;
        self.next_ctx += 1;
        let cur = Current {
            id,
            f,
            key,
            value: value.clone(),
            node,
        };
        let process = client.process;
        self.record(process, OpType::Invoke, &cur, value.clone(), None);
        if let Some(client) = self.clients.get_mut(c) {
            client.current = Some(cur);
        }
        let timeout = self.cfg.client_timeout_ms;
        self.schedule(timeout, Event::ClientTimeout(c, id));

        let Some(sim_node) = self.nodes.get_mut(&node) else {
            return Ok(());
        };
        if !sim_node.is_up() {
            self.complete(c, id, OpType::Fail, None, Some("connection-refused"));
            return Ok(());
        }
        let waiter = |term| Waiter {
            client: c,
            op: id,
            term,
            key,
        };
        let result = if f == "read" {
            sim_node.read_index(id).map(|()| {
                sim_node.waiting_reads.insert(id, waiter(0));
            })
        } else {
            let micro = if f == "write" {
                json!([["w", key, value]])
            } else {
                json!([["cas", key, value]])
            };
            let data = serde_json::to_vec(&micro).map_err(|e| e.to_string())?;
            sim_node.propose(data).map(|(index, term)| {
                sim_node.waiting_writes.insert(index, waiter(term));
            })
        };
        if let Err(not_leader) = result {
            if let Some(client) = self.clients.get_mut(c) {
                client.guess = not_leader.leader.unwrap_or(random_node);
            }
            self.complete(c, id, OpType::Fail, None, Some("not-leader"));
            return Ok(());
        }
        self.drive(node)
    }

    /// Completes a client's operation `op` (ignored if it is no longer current).
    pub fn complete(
        &mut self,
        c: usize,
        op: u64,
        outcome: OpType,
        value: Option<Value>,
        error: Option<&str>,
    ) {
        let Some(client) = self.clients.get_mut(c) else {
            return;
        };
        let Some(cur) = client.current.take_if(|cur| cur.id == op) else {
            return;
        };
        let process = client.process;
        match outcome {
            OpType::Info => {
                client.process = self.next_process;
                self.next_process += 1;
                self.stats.info += 1;
            }
            OpType::Ok => {
                client.guess = cur.node;
                self.stats.ok += 1;
                if self.is_healed() {
                    self.ok_after_heal += 1;
                }
            }
            _ => self.stats.fail += 1,
        }
        let value = value.unwrap_or_else(|| cur.value.clone());
        self.record(process, outcome, &cur, value, error);
        let think = self.rng.random_range(0..10);
        self.schedule(think, Event::ClientGo(c));
    }
}
