//! The node loop's side of three-phase commit (`--commit-protocol 3pc`): the shard
//! lives on one node only, its home (the node its leader would prefer), as a
//! consensus group of that one node, so its log is simply that node's disk; the
//! shard's [`three_phase::Node`] runs there.
//!
//! - Phases and decisions go to the shard's own file, `3pc.log` (one JSON line each,
//!   fsynced) before the messages that follow from them are sent; a restarted node
//!   reads them back ([`DiskLog::open`]).
//! - A message for a shard of this node goes to its loop; one for another node's
//!   shard goes straight to that shard's home.
//! - A part's reads are evaluated when it becomes uncertain, against the store as it
//!   is: a can-commit whose keys a transaction proposed to the log but not yet applied
//!   would change is refused (a no vote), so the reads are what the keys hold.
//! - A committed part is proposed to the shard's log as an entry of its own; its keys
//!   stay busy until it is applied, so nothing reads around it. Its commit is on the
//!   3PC disk before its entry is in the log, so a node killed in between would lose
//!   it: once elected after a restart the node proposes again every committed part
//!   whose entry it has not applied (the shard's state machine, and its snapshot,
//!   keep the set of parts applied, so a part proposed twice applies once).

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::commit::three_phase::{self, Disk, Outbox, PartState};
use crate::commit::{self, Decision, ShardId, TxnId};
use crate::consensus::NodeId;
use crate::kv::{TxnOutcome, parse_txn};
use crate::peer::{PeerCore, PeerMessage};
use crate::storage::Persist;

use super::super::event::Event;
use super::{Driver, entries};

/// One line of `3pc.log`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Line {
    /// A part's durable record, after a phase change.
    Part { txn: TxnId, state: PartState },
    /// A coordinator's decision.
    Decision { txn: TxnId, decision: Decision },
}

/// The shard's 3PC disk: an append-only file of phases and decisions.
#[derive(Debug)]
pub struct DiskLog {
    file: File,
    path: PathBuf,
}

/// The file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct DiskLogError {
    path: String,
    reason: String,
}

impl DiskLog {
    /// Opens (creating) `dir/3pc.log` and reads back what it holds. A torn last line
    /// (a crash while writing it) is dropped: its messages were never sent.
    pub fn open(dir: &Path) -> Result<(DiskLog, Disk), DiskLogError> {
        let path = dir.join("3pc.log");
        let error = |reason: String| DiskLogError {
            path: path.display().to_string(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| error(e.to_string()))?;
        let mut disk = Disk::default();
        let mut good = 0u64;
        if let Ok(file) = File::open(&path) {
            for line in BufReader::new(file).split(b'\n') {
                let line = line.map_err(|e| error(e.to_string()))?;
                match serde_json::from_slice::<Line>(&line) {
                    Ok(Line::Part { txn, state }) => {
                        disk.parts.insert(txn, state);
                    }
                    Ok(Line::Decision { txn, decision }) => {
                        disk.decisions.insert(txn, decision);
                    }
                    Err(_) => break,
                }
                good += line.len() as u64 + 1;
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| error(e.to_string()))?;
        file.set_len(good).map_err(|e| error(e.to_string()))?;
        let reason = {
            use std::io::Seek;
            let mut file = &file;
            file.seek(std::io::SeekFrom::End(0)).err()
        };
        if let Some(e) = reason {
            return Err(error(e.to_string()));
        }
        Ok((DiskLog { file, path }, disk))
    }

    /// Appends `lines` and fsyncs.
    fn append(&mut self, lines: &[Line]) -> Result<(), DiskLogError> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut bytes = Vec::new();
        for line in lines {
            serde_json::to_writer(&mut bytes, line).map_err(|e| DiskLogError {
                path: self.path.display().to_string(),
                reason: e.to_string(),
            })?;
            bytes.push(b'\n');
        }
        self.file
            .write_all(&bytes)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| DiskLogError {
                path: self.path.display().to_string(),
                reason: e.to_string(),
            })
    }
}

/// A shard's three-phase commit state on its home node.
#[derive(Debug)]
pub struct ThreePc {
    /// The protocol.
    pub(super) node: three_phase::Node,
    disk: DiskLog,
    /// Each shard's home node.
    homes: Vec<NodeId>,
    /// Committed parts proposed to the log and not yet applied, with their keys.
    applying: HashMap<TxnId, Vec<String>>,
    /// Whether this shard's one-node group has elected its node.
    pub(super) leading: bool,
    /// The committed parts whose entries were applied (in the shard's snapshot).
    pub(super) applied_parts: BTreeMap<TxnId, Decision>,
}

impl ThreePc {
    /// Shard `shard`'s state from its disk, each shard living on `homes[shard]`.
    pub fn new(
        shard: ShardId,
        config: three_phase::Config,
        homes: Vec<NodeId>,
        disk: DiskLog,
        recovered: Disk,
    ) -> ThreePc {
        ThreePc {
            node: three_phase::Node::new(shard, config, recovered),
            disk,
            homes,
            applying: HashMap::new(),
            leading: false,
            applied_parts: BTreeMap::new(),
        }
    }

    /// Whether `key` is locked by a part in doubt or waits for a committed part.
    pub(super) fn is_busy(&self, key: &str) -> bool {
        self.node.is_locked(key)
            || self
                .applying
                .values()
                .any(|keys| keys.iter().any(|k| k == key))
    }

    /// A committed part's entry was applied: its keys are free.
    pub(super) fn applied(&mut self, txn: TxnId) {
        self.applying.remove(&txn);
    }
}

impl<C: PeerCore + Persist> Driver<C> {
    /// Carries out the 3PC node's outbox, and those that follow from it.
    pub(super) fn carry_out_3pc(&mut self, out: Outbox) {
        let mut queue = std::collections::VecDeque::from([out]);
        while let Some(out) = queue.pop_front() {
            let Some(three) = self.three_pc() else {
                return;
            };
            // Phases and decisions are durable before anything follows from them.
            let mut lines = Vec::new();
            for (txn, _) in &out.phases {
                if let Some(state) = three.node.part(*txn) {
                    lines.push(Line::Part {
                        txn: *txn,
                        state: state.clone(),
                    });
                }
            }
            for (txn, decision, _) in &out.decided {
                lines.push(Line::Decision {
                    txn: *txn,
                    decision: *decision,
                });
            }
            if let Err(e) = three.disk.append(&lines) {
                // Nothing may follow a phase that is not on disk: stop here, as a
                // crash would.
                tracing::error!(error = %e, "cannot write the 3PC log; stopping");
                self.failed = Some(e.to_string());
                return;
            }
            for (txn, part) in out.to_evaluate {
                let mut next = Outbox::default();
                let evaluated = serde_json::from_slice::<Value>(&part)
                    .ok()
                    .and_then(|v| parse_txn(&v).ok())
                    .map(|ops| self.store.evaluate(&ops));
                let Some(three) = self.three_pc() else {
                    return;
                };
                match evaluated {
                    Some(TxnOutcome::Committed(results)) => {
                        let reads = serde_json::to_vec(&results).unwrap_or_default();
                        three.node.vote(txn, reads, &mut next);
                    }
                    _ => three.node.vote_no(txn, &mut next),
                }
                queue.push_back(next);
            }
            for (shard, message) in out.messages {
                if shard == self.shard {
                    queue.push_back(self.receive_3pc(message));
                } else {
                    self.send_3pc(shard, message);
                }
            }
            for (txn, decision, reads) in out.decided {
                self.answer_decided(txn, decision, &reads);
            }
            for (txn, decision, part) in out.finished {
                tracing::debug!(target: "faultline_kv::three_pc", txn, ?decision, "part finished");
                if decision == Decision::Commit {
                    self.propose_part(txn, &part);
                }
            }
        }
    }

    /// A 3PC message for shard `shard`: to its loop when it lives here, else to its
    /// home node.
    fn send_3pc(&mut self, shard: ShardId, message: three_phase::Message) {
        let message = commit::Message::ThreePhase(message);
        let home = self
            .three_pc()
            .and_then(|three| three.homes.get(shard as usize).copied());
        match home {
            Some(home) if home == self.id => {
                let event = Event::Commit {
                    message,
                    relayed: true,
                };
                if self.cfg.router.to_shard(shard, event).is_err() {
                    tracing::warn!(shard, "no loop for the shard; 3PC message dropped");
                }
            }
            Some(to) => {
                let envelope = PeerMessage::Commit {
                    from: self.id,
                    to,
                    message,
                };
                self.transport.send(shard, &envelope);
            }
            None => tracing::warn!(shard, "no home for the shard; 3PC message dropped"),
        }
    }

    /// After a restart (once elected): proposes again every committed part whose entry
    /// was not applied before the node stopped.
    pub(super) fn propose_unapplied_parts(&mut self) {
        let Some(three) = self.three_pc() else {
            return;
        };
        let unapplied: Vec<(TxnId, Vec<u8>)> = three
            .node
            .disk()
            .parts
            .into_iter()
            .filter(|(txn, part)| {
                part.phase == three_phase::Phase::Committed
                    && !three.applied_parts.contains_key(txn)
            })
            .map(|(txn, part)| (txn, part.part))
            .collect();
        for (txn, part) in unapplied {
            tracing::info!(
                txn,
                "proposing a committed part not applied before a restart"
            );
            self.propose_part(txn, &part);
        }
    }

    /// Proposes a committed part to the shard's log; its keys stay busy until applied.
    fn propose_part(&mut self, txn: TxnId, part: &[u8]) {
        let ops = serde_json::from_slice::<Value>(part)
            .ok()
            .and_then(|v| parse_txn(&v).ok());
        let Some(ops) = ops else {
            tracing::error!(txn, "a committed part cannot be read; not applied");
            return;
        };
        let entry = entries::encode_part(txn, &ops);
        if let Some(three) = self.three_pc() {
            let keys = ops.iter().map(|op| op.key_string()).collect();
            three.applying.insert(txn, keys);
        }
        self.defer(entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commit::three_phase::Phase;

    #[test]
    fn the_3pc_log_reads_back_what_was_written_and_drops_a_torn_line() {
        let dir = std::env::temp_dir().join(format!("faultline-kv-3pc-log-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (mut log, disk) = DiskLog::open(&dir).unwrap();
        assert_eq!(disk, Disk::default());
        let state = PartState {
            phase: Phase::Uncertain,
            coordinator: 1,
            participants: vec![0, 1],
            keys: vec!["x".into()],
            part: b"[[\"w\",\"x\",1]]".to_vec(),
        };
        let committed = PartState {
            phase: Phase::Committed,
            ..state.clone()
        };
        log.append(&[
            Line::Part { txn: 7, state },
            Line::Decision {
                txn: 8,
                decision: Decision::Abort,
            },
            Line::Part {
                txn: 7,
                state: committed.clone(),
            },
        ])
        .unwrap();
        drop(log);
        // A crash in the middle of the next line.
        let path = dir.join("3pc.log");
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"part\":{\"txn\":9,\"sta").unwrap();
        drop(file);
        let (mut log, disk) = DiskLog::open(&dir).unwrap();
        assert_eq!(disk.parts.get(&7), Some(&committed), "the later line wins");
        assert_eq!(disk.decisions.get(&8), Some(&Decision::Abort));
        assert_eq!(disk.parts.len(), 1, "the torn line is dropped");
        log.append(&[Line::Decision {
            txn: 9,
            decision: Decision::Commit,
        }])
        .unwrap();
        let (_, disk) = DiskLog::open(&dir).unwrap();
        assert_eq!(
            disk.decisions.get(&9),
            Some(&Decision::Commit),
            "appends after the cut"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
