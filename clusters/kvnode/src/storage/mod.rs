//! Durable state of one node in its data directory: the write-ahead log (`wal`) and
//! the latest snapshot (`snapshot`).
//!
//! [`Storage::persist`] writes a `Ready`'s snapshot, entries and hard state and then
//! fsyncs once, so everything that arrived while the previous fsync ran is made
//! durable together (group commit). Messages that depend on it are sent only after
//! it returns. [`Storage::compact`] writes a snapshot file and rewrites the log
//! without the entries it covers.

mod snapfile;
pub mod wal;

use std::path::{Path, PathBuf};

use crate::consensus::{Core, Entry, Snapshot};
use crate::paxos::{self, Accepted, Durable, Paxos};
use crate::raft::{HardState, Raft, Ready};

use wal::{Record, Wal, apply_snapshot_point};

/// A storage failure, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An operating-system call failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file is damaged in a way that could lose acknowledged data.
    #[error("{} is corrupt at byte {offset}: {detail}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where the damage starts.
        offset: u64,
        /// What is wrong and what to do.
        detail: String,
    },
}

/// Fsyncs the directory holding `path`, so a rename in it is durable.
pub fn sync_dir(path: &Path) -> Result<(), StorageError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| StorageError::Io {
            op: "fsync directory",
            path: dir.to_path_buf(),
            source,
        })
}

/// The state a node restarts from.
#[derive(Debug, Clone, Default)]
pub struct Restored {
    /// Term, vote and commit.
    pub hard: HardState,
    /// The latest snapshot.
    pub snapshot: Option<Snapshot>,
    /// Entries after the snapshot.
    pub entries: Vec<Entry>,
    /// Bytes of torn tail dropped from the log.
    pub torn_bytes: u64,
    /// Multi-Paxos acceptor state (promise, accepted values, chosen hint).
    pub paxos: Durable,
}

impl Restored {
    /// Whether the log holds Raft state (entries or a term).
    pub fn has_raft_state(&self) -> bool {
        !self.entries.is_empty() || self.hard != HardState::default()
    }

    /// Whether the log holds Multi-Paxos state (a promise or accepted values).
    pub fn has_paxos_state(&self) -> bool {
        self.paxos != Durable::default()
    }
}

/// A node's durable storage.
#[derive(Debug)]
pub struct Storage {
    wal: Wal,
    snapshot_path: PathBuf,
    /// Whether to fsync (false only with the `no-fsync` bug).
    fsync: bool,
    hard: HardState,
}

impl Storage {
    /// Opens the data directory (creating it), recovering the log and snapshot.
    pub fn open(dir: &Path, fsync: bool) -> Result<(Storage, Restored), StorageError> {
        std::fs::create_dir_all(dir).map_err(|source| StorageError::Io {
            op: "create directory",
            path: dir.to_path_buf(),
            source,
        })?;
        let snapshot_path = dir.join("snapshot");
        let snapshot = snapfile::read(&snapshot_path)?;
        let (wal, replayed) = Wal::open(&dir.join("wal"))?;
        let mut entries = replayed.entries;
        if let Some(s) = &snapshot {
            apply_snapshot_point(&mut entries, s.meta.index, s.meta.term);
        }
        let storage = Storage {
            wal,
            snapshot_path,
            fsync,
            hard: replayed.hard,
        };
        let snap_index = snapshot.as_ref().map_or(0, |s| s.meta.index);
        let paxos = Durable {
            promised: replayed.promised,
            accepted: replayed
                .accepted
                .into_values()
                .filter(|a| a.entry.index > snap_index)
                .collect(),
            commit: replayed.chosen,
        };
        let restored = Restored {
            hard: replayed.hard,
            snapshot,
            entries,
            torn_bytes: replayed.torn_bytes,
            paxos,
        };
        Ok((storage, restored))
    }

    /// Makes a `Ready`'s snapshot, entries and hard state durable (one fsync). A
    /// change of the commit index alone is written but not fsynced: it is only a hint
    /// on restart, and the next fsync covers it.
    pub fn persist(&mut self, ready: &Ready) -> Result<(), StorageError> {
        let vote_changed = ready
            .hard_state
            .is_some_and(|h| (h.term, h.vote) != (self.hard.term, self.hard.vote));
        let needs_sync = vote_changed || ready.snapshot.is_some() || !ready.entries.is_empty();
        let mut records = Vec::with_capacity(ready.entries.len() + 2);
        if let Some(s) = &ready.snapshot {
            records.push(self.write_snapshot(s)?);
        }
        records.extend(ready.entries.iter().cloned().map(Record::Entry));
        if let Some(h) = ready.hard_state {
            records.push(Record::HardState(h));
            self.hard = h;
        }
        self.append(&records, needs_sync)
    }

    /// Makes a Multi-Paxos `Ready`'s snapshot, accepted values and promise durable
    /// (one fsync); a change of the chosen hint alone is written but not fsynced.
    pub fn persist_paxos(&mut self, ready: &paxos::Ready) -> Result<(), StorageError> {
        let needs_sync =
            ready.promised.is_some() || ready.snapshot.is_some() || !ready.accepted.is_empty();
        let mut records = Vec::with_capacity(ready.accepted.len() + 3);
        if let Some(s) = &ready.snapshot {
            records.push(self.write_snapshot(s)?);
        }
        if let Some(b) = ready.promised {
            records.push(Record::Promise(b));
        }
        records.extend(ready.accepted.iter().cloned().map(Record::Accepted));
        if let Some(c) = ready.commit {
            records.push(Record::Chosen(c));
        }
        self.append(&records, needs_sync)
    }

    /// Writes the snapshot file; the log record that marks it durable.
    fn write_snapshot(&self, s: &Snapshot) -> Result<Record, StorageError> {
        snapfile::write(&self.snapshot_path, s)?;
        Ok(Record::Snapshot {
            index: s.meta.index,
            term: s.meta.term,
        })
    }

    /// Appends `records` to the log, fsynced when `needs_sync` (unless the `no-fsync`
    /// bug is on).
    fn append(&mut self, records: &[Record], needs_sync: bool) -> Result<(), StorageError> {
        if records.is_empty() {
            return Ok(());
        }
        self.wal.append(records)?;
        if self.fsync && needs_sync {
            self.wal.sync()?;
        }
        Ok(())
    }

    /// Saves a local Multi-Paxos snapshot and rewrites the log to hold the promise,
    /// the chosen hint and the accepted values after the snapshot.
    pub fn compact_paxos(
        &mut self,
        snapshot: &Snapshot,
        promised: paxos::Ballot,
        commit: u64,
        accepted: Vec<Accepted>,
    ) -> Result<(), StorageError> {
        let mut records = vec![
            self.write_snapshot(snapshot)?,
            Record::Promise(promised),
            Record::Chosen(commit),
        ];
        records.extend(accepted.into_iter().map(Record::Accepted));
        self.wal.rewrite(&records)
    }

    /// Saves a local snapshot and rewrites the log to hold only `entries` after it.
    pub fn compact(
        &mut self,
        snapshot: &Snapshot,
        entries: Vec<Entry>,
    ) -> Result<(), StorageError> {
        let mut records = vec![self.write_snapshot(snapshot)?, Record::HardState(self.hard)];
        records.extend(entries.into_iter().map(Record::Entry));
        self.wal.rewrite(&records)
    }
}

/// A consensus core whose durable state [`Storage`] keeps: the server persists each
/// ready and compacts through it, whichever protocol runs.
pub trait Persist: Core {
    /// Makes a ready's durable part durable (see [`Storage::persist`] and
    /// [`Storage::persist_paxos`]).
    fn persist(storage: &mut Storage, ready: &Self::Ready) -> Result<(), StorageError>;

    /// Saves the core's latest snapshot and rewrites the log without what it covers
    /// (nothing without a snapshot).
    fn compact_storage(&self, storage: &mut Storage) -> Result<(), StorageError>;
}

impl Persist for Raft {
    fn persist(storage: &mut Storage, ready: &Ready) -> Result<(), StorageError> {
        storage.persist(ready)
    }

    fn compact_storage(&self, storage: &mut Storage) -> Result<(), StorageError> {
        let Some(snapshot) = self.snapshot() else {
            return Ok(());
        };
        storage.compact(snapshot, self.entries_from(snapshot.meta.index + 1))
    }
}

impl Persist for Paxos {
    fn persist(storage: &mut Storage, ready: &paxos::Ready) -> Result<(), StorageError> {
        storage.persist_paxos(ready)
    }

    fn compact_storage(&self, storage: &mut Storage) -> Result<(), StorageError> {
        let Some(snapshot) = self.snapshot() else {
            return Ok(());
        };
        let accepted = self.accepted_from(snapshot.meta.index + 1);
        let commit = self.status().commit;
        storage.compact_paxos(snapshot, self.promised(), commit, accepted)
    }
}

#[cfg(test)]
mod tests;
