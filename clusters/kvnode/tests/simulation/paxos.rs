//! Multi-Paxos in the simulation: a simulated acceptor disk, the driver loop the
//! server runs (persist, send, apply, advance), and the Paxos safety checks, run after
//! every step: one value per (slot, ballot); agreement per slot, both for values
//! learned and applied by any node and for values a quorum of durable acceptor
//! states has accepted in one ballot (so it holds across crash-restarts).

use std::collections::BTreeMap;

use faultline_kv::consensus::{Core, Entry, NodeId, Role, Snapshot};
use faultline_kv::kv::Store;
use faultline_kv::paxos::{self, Accepted, Ballot, Durable, Paxos};
use faultline_kv::peer::PeerMessage;

use crate::node::{Completion, SimNode, apply, serve_reads, take_reads};
use crate::world::{SimConfig, World};

/// What survives a crash of a Paxos node.
#[derive(Debug, Clone, Default)]
pub struct PaxosDisk {
    promised: Ballot,
    accepted: BTreeMap<u64, Accepted>,
    commit: u64,
    snapshot: Option<Snapshot>,
}

/// One write to a Paxos node's disk.
#[derive(Debug, Clone)]
pub enum PaxosWrite {
    /// A snapshot (taken locally or installed from another node): drops the slots it
    /// covers.
    Snapshot(Snapshot),
    Promise(Ballot),
    Accepted(Vec<Accepted>),
    Commit(u64),
}

impl PaxosDisk {
    pub fn apply(&mut self, write: PaxosWrite) {
        match write {
            PaxosWrite::Snapshot(s) => {
                self.accepted = self.accepted.split_off(&(s.meta.index + 1));
                self.snapshot = Some(s);
            }
            PaxosWrite::Promise(b) => self.promised = b,
            PaxosWrite::Accepted(values) => {
                for a in values {
                    self.accepted.insert(a.entry.index, a);
                }
            }
            PaxosWrite::Commit(c) => self.commit = c,
        }
    }
}

impl SimNode {
    /// Boots a Paxos core from the durable disk.
    pub fn start_paxos(&mut self, seed: u64, sim: &SimConfig) {
        let mut cfg = paxos::Config::new(self.id, self.voters.clone());
        cfg.seed = seed;
        cfg.bugs = sim.paxos_bugs;
        cfg.max_accept_values = sim.max_append_entries;
        let disk = self.paxos_disk.clone();
        self.store = disk
            .snapshot
            .as_ref()
            .map(|s| Store::from_bytes(&s.data).expect("snapshot data"))
            .unwrap_or_default();
        let durable = Durable {
            promised: disk.promised,
            accepted: disk.accepted.into_values().collect(),
            commit: disk.commit,
        };
        self.paxos = Some(Paxos::new(cfg, durable, disk.snapshot).expect("restart"));
    }

    fn write_paxos(&mut self, write: PaxosWrite) {
        if self.no_fsync {
            self.paxos_unsynced.push(write);
        } else {
            self.paxos_disk.apply(write);
        }
    }

    fn persist_paxos(&mut self, ready: &paxos::Ready) {
        if let Some(s) = &ready.snapshot {
            self.write_paxos(PaxosWrite::Snapshot(s.clone()));
        }
        if let Some(b) = ready.promised {
            self.write_paxos(PaxosWrite::Promise(b));
        }
        if !ready.accepted.is_empty() {
            self.write_paxos(PaxosWrite::Accepted(ready.accepted.clone()));
        }
        if let Some(c) = ready.commit {
            self.write_paxos(PaxosWrite::Commit(c));
        }
    }

    /// The value this node's disk holds for `slot`, accepted in `ballot`.
    fn durably_accepted(&self, slot: u64, ballot: Ballot) -> Option<&Entry> {
        self.paxos_disk
            .accepted
            .get(&slot)
            .filter(|a| a.ballot == ballot)
            .map(|a| &a.entry)
    }
}

impl World {
    /// Handles every `Ready` of Paxos node `id` as the server does, checking safety.
    pub fn drive_paxos(&mut self, id: NodeId) -> Result<(), String> {
        let no_fsync = self.cfg.no_fsync;
        let snapshot_every = self.cfg.snapshot_every;
        for _ in 0..64 {
            let Some(node) = self.nodes.get_mut(&id) else {
                return Ok(());
            };
            node.no_fsync = no_fsync;
            let Some(core) = node.paxos.as_mut() else {
                return Ok(());
            };
            if !core.has_ready() {
                break;
            }
            let ready = core.ready();
            node.persist_paxos(&ready);
            self.check_quorum_accepted(id, &ready.accepted)?;
            let Some(node) = self.nodes.get_mut(&id) else {
                return Ok(());
            };
            let mut done: Vec<Completion> = Vec::new();
            if let Some(s) = &ready.snapshot {
                self.stats.snapshots_installed += 1;
                node.store = Store::from_bytes(&s.data).map_err(|e| format!("snapshot: {e}"))?;
            }
            for entry in &ready.chosen {
                self.invariants
                    .record_committed(id, entry)
                    .map_err(|e| format!("agreement (learned value): {e}"))?;
                apply(node, entry, &mut done);
            }
            take_reads(node, &ready.read_states, &ready.failed_reads, &mut done);
            let Some(core) = node.paxos.as_mut() else {
                return Ok(());
            };
            core.advance(&ready);
            let st = core.status();
            let leading = core.leading();
            serve_reads(node, st.applied, &mut done);
            if st.applied >= st.snapshot_index + snapshot_every {
                let data = node.store.to_bytes();
                if let Some(core) = node.paxos.as_mut() {
                    core.compact(st.applied, data).map_err(|e| e.to_string())?;
                    if let Some(s) = core.snapshot().cloned() {
                        node.write_paxos(PaxosWrite::Snapshot(s));
                    }
                }
                self.stats.compactions += 1;
            }
            let mut new_leader = false;
            if let Some(ballot) = leading {
                new_leader = !self.invariants.has_leader(ballot.packed());
                self.invariants.note_leader(ballot.packed(), id)?;
            }
            if new_leader && st.role == Role::Leader {
                self.on_new_leader(id);
            }
            for m in ready.messages {
                self.send(PeerMessage::Paxos(m));
            }
            for c in done {
                self.complete(c.client, c.op, c.outcome, c.value, c.error);
            }
        }
        Ok(())
    }

    /// For each value `node` just made durable: one value per (slot, ballot) across all
    /// disks, and if a quorum of disks holds it in that ballot it is chosen, so it must
    /// agree with every value chosen or learned in the slot before.
    fn check_quorum_accepted(&mut self, node: NodeId, written: &[Accepted]) -> Result<(), String> {
        let quorum = self.nodes.len() / 2 + 1;
        for a in written {
            let slot = a.entry.index;
            let mut holders = 0;
            for other in self.nodes.values() {
                match other.durably_accepted(slot, a.ballot) {
                    Some(e) if *e == a.entry => holders += 1,
                    Some(e) => {
                        return Err(format!(
                            "one value per ballot: nodes {node} and {} accepted different values \
                             in slot {slot} under ballot {} (origins {} and {})",
                            other.id, a.ballot, a.entry.term, e.term
                        ));
                    }
                    None => {}
                }
            }
            if holders >= quorum {
                self.invariants
                    .record_committed(node, &a.entry)
                    .map_err(|e| {
                        format!(
                            "agreement (a quorum of acceptors durably accepted slot {slot} in \
                             ballot {}): {e}",
                            a.ballot
                        )
                    })?;
            }
        }
        Ok(())
    }
}
