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

use crate::raft::{Entry, HardState, Ready, Snapshot};

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
        let restored = Restored {
            hard: replayed.hard,
            snapshot,
            entries,
            torn_bytes: replayed.torn_bytes,
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
            snapfile::write(&self.snapshot_path, s)?;
            records.push(Record::Snapshot {
                index: s.meta.index,
                term: s.meta.term,
            });
        }
        records.extend(ready.entries.iter().cloned().map(Record::Entry));
        if let Some(h) = ready.hard_state {
            records.push(Record::HardState(h));
            self.hard = h;
        }
        if records.is_empty() {
            return Ok(());
        }
        self.wal.append(&records)?;
        if self.fsync && needs_sync {
            self.wal.sync()?;
        }
        Ok(())
    }

    /// Saves a local snapshot and rewrites the log to hold only `entries` after it.
    pub fn compact(
        &mut self,
        snapshot: &Snapshot,
        entries: Vec<Entry>,
    ) -> Result<(), StorageError> {
        snapfile::write(&self.snapshot_path, snapshot)?;
        let mut records = vec![
            Record::Snapshot {
                index: snapshot.meta.index,
                term: snapshot.meta.term,
            },
            Record::HardState(self.hard),
        ];
        records.extend(entries.into_iter().map(Record::Entry));
        self.wal.rewrite(&records)
    }
}

#[cfg(test)]
mod tests;
