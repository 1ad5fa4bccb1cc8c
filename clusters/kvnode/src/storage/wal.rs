//! The write-ahead log: a file of checksummed records.
//!
//! A record is `[length: u32 LE][crc32 of payload: u32 LE][payload]` (the framing is
//! [`faultline_kv_proto::wal`], which the nemesis also reads); the payload is a tag
//! byte and a [`crate::codec`] value. On open the log is read from the start. A
//! damaged record that runs to the end of the file, or that is followed only by
//! bytes that do not form valid records, is a torn tail from a write that never
//! finished (and so was never acknowledged): the file is truncated there. A damaged
//! record followed by valid ones is corruption in the middle of the log; opening
//! fails with the file, the byte offset and what to do, and nothing is lost silently.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use faultline_kv_proto::wal::{HEADER, MAX_RECORD, length_at, put_record, record_at};

use crate::codec::{Decoder, Encoder};
use crate::consensus::Entry;
use crate::paxos::wire::{get_accepted, get_ballot, put_accepted, put_ballot};
use crate::paxos::{Accepted, Ballot};
use crate::raft::HardState;

use super::{StorageError, sync_dir};

/// One logical record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A log entry; it replaces any entries at or after its index.
    Entry(Entry),
    /// The latest term, vote and commit.
    HardState(HardState),
    /// A snapshot at (index, term) is durable: drop the entries it covers (all of
    /// them if the entry at `index` has another term).
    Snapshot {
        /// The snapshot's last index.
        index: u64,
        /// Its term.
        term: u64,
    },
    /// Multi-Paxos: the acceptor promised this ballot.
    Promise(Ballot),
    /// Multi-Paxos: the acceptor accepted this value (replacing the slot's earlier one).
    Accepted(Accepted),
    /// Multi-Paxos: every slot up to here is chosen (a hint).
    Chosen(u64),
}

impl Record {
    fn encode(&self, e: &mut Encoder) {
        match self {
            Record::Entry(entry) => {
                e.u8(1);
                e.entry(entry);
            }
            Record::HardState(h) => {
                e.u8(2);
                e.hard_state(h);
            }
            Record::Snapshot { index, term } => {
                e.u8(3);
                e.u64(*index);
                e.u64(*term);
            }
            Record::Promise(b) => {
                e.u8(4);
                put_ballot(e, *b);
            }
            Record::Accepted(a) => {
                e.u8(5);
                put_accepted(e, a);
            }
            Record::Chosen(c) => {
                e.u8(6);
                e.u64(*c);
            }
        }
    }

    fn decode(payload: &[u8]) -> Result<Record, crate::codec::DecodeError> {
        let mut d = Decoder::new(payload, "wal record");
        let record = match d.u8()? {
            1 => Record::Entry(d.entry()?),
            2 => Record::HardState(d.hard_state()?),
            3 => Record::Snapshot {
                index: d.u64()?,
                term: d.u64()?,
            },
            4 => Record::Promise(get_ballot(&mut d)?),
            5 => Record::Accepted(get_accepted(&mut d)?),
            6 => Record::Chosen(d.u64()?),
            tag => {
                return Err(crate::codec::DecodeError {
                    what: "wal record",
                    reason: format!("unknown tag {tag}"),
                });
            }
        };
        Ok(record)
    }
}

/// Frames records into bytes ready to append.
pub fn frame(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::new();
    for record in records {
        let mut e = Encoder::default();
        record.encode(&mut e);
        put_record(&mut out, &e.buf);
    }
    out
}

/// What a replay found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// The last hard state written.
    pub hard: HardState,
    /// Entries in order (after applying truncations and snapshot marks).
    pub entries: Vec<Entry>,
    /// The latest snapshot mark.
    pub snapshot: Option<(u64, u64)>,
    /// Bytes dropped from a torn tail.
    pub torn_bytes: u64,
    /// Multi-Paxos: the last promised ballot.
    pub promised: Ballot,
    /// Multi-Paxos: the accepted value per slot (after the snapshot mark).
    pub accepted: BTreeMap<u64, Accepted>,
    /// Multi-Paxos: the last chosen-prefix hint.
    pub chosen: u64,
}

/// Drops the entries a snapshot at (`index`, `term`) covers; all of them if the log
/// disagrees with the snapshot at `index` or ends before it.
pub fn apply_snapshot_point(entries: &mut Vec<Entry>, index: u64, term: u64) {
    let agrees = match entries.iter().find(|e| e.index == index) {
        Some(e) => e.term == term,
        None => entries.first().is_some_and(|e| e.index == index + 1),
    };
    if agrees {
        entries.retain(|e| e.index > index);
    } else {
        entries.clear();
    }
}

/// Parses one record at `at`; `Ok(None)` when the bytes there are damaged.
fn parse_at(buf: &[u8], at: usize) -> Option<(Record, usize)> {
    let (payload, next) = record_at(buf, at)?;
    Record::decode(payload).ok().map(|r| (r, next))
}

/// How many valid records follow offset `at` (stopping at the first damaged one).
fn valid_records_after(buf: &[u8], mut at: usize) -> usize {
    let mut n = 0;
    while let Some((_, next)) = parse_at(buf, at) {
        n += 1;
        at = next;
    }
    n
}

/// How many valid records follow a damaged record at `at`: first where its length
/// field says the next record starts, else at any offset in the next 64 KiB.
fn valid_records_following(buf: &[u8], at: usize) -> usize {
    let by_length = length_at(buf, at)
        .filter(|len| *len > 0 && *len <= MAX_RECORD)
        .map(|len| at + HEADER + len)
        .filter(|next| *next < buf.len())
        .map_or(0, |next| valid_records_after(buf, next));
    if by_length > 0 {
        return by_length;
    }
    let end = buf.len().min(at + (64 << 10));
    (at + 1..end)
        .find(|p| parse_at(buf, *p).is_some())
        .map_or(0, |p| valid_records_after(buf, p))
}

/// Reads and checks a whole log image. Returns what it holds and the length of its
/// valid prefix, or an error for corruption in the middle.
pub fn replay(buf: &[u8], path: &Path) -> Result<(Replayed, usize), StorageError> {
    let mut out = Replayed::default();
    let mut at = 0;
    while at < buf.len() {
        let Some((record, next)) = parse_at(buf, at) else {
            let following = valid_records_following(buf, at);
            if following > 0 {
                return Err(StorageError::Corrupt {
                    path: path.to_path_buf(),
                    offset: at as u64,
                    detail: format!(
                        "record fails its checksum and {following} valid records follow it; \
                         refusing to start because acknowledged writes may be lost. Repair the \
                         file, or remove this node's data directory so it catches up from the leader"
                    ),
                });
            }
            out.torn_bytes = (buf.len() - at) as u64;
            break;
        };
        match record {
            Record::Entry(entry) => {
                out.entries.retain(|e| e.index < entry.index);
                if let Some(last) = out.entries.last()
                    && last.index + 1 != entry.index
                {
                    return Err(StorageError::Corrupt {
                        path: path.to_path_buf(),
                        offset: at as u64,
                        detail: format!(
                            "entry {} does not follow entry {}",
                            entry.index, last.index
                        ),
                    });
                }
                out.entries.push(entry);
            }
            Record::HardState(h) => out.hard = h,
            Record::Snapshot { index, term } => {
                apply_snapshot_point(&mut out.entries, index, term);
                out.accepted = out.accepted.split_off(&(index + 1));
                out.snapshot = Some((index, term));
            }
            Record::Promise(b) => out.promised = b,
            Record::Accepted(a) => {
                out.accepted.insert(a.entry.index, a);
            }
            Record::Chosen(c) => out.chosen = c,
        }
        at = next;
    }
    Ok((out, at))
}

/// An open log, appended to at its end.
#[derive(Debug)]
pub struct Wal {
    path: PathBuf,
    file: File,
}

impl Wal {
    /// Opens (or creates) the log at `path`, replays it and truncates a torn tail.
    pub fn open(path: &Path) -> Result<(Wal, Replayed), StorageError> {
        let io = |op: &'static str| {
            let path = path.to_path_buf();
            move |source| StorageError::Io { op, path, source }
        };
        let created = !path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io("open"))?;
        if created {
            sync_dir(path)?;
        }
        let mut buf = Vec::new();
        file.read_to_end(&mut buf).map_err(io("read"))?;
        let (replayed, valid) = replay(&buf, path)?;
        if valid < buf.len() {
            file.set_len(valid as u64)
                .map_err(io("truncate torn tail of"))?;
            file.sync_all().map_err(io("fsync"))?;
        }
        file.seek(SeekFrom::End(0)).map_err(io("seek"))?;
        Ok((
            Wal {
                path: path.to_path_buf(),
                file,
            },
            replayed,
        ))
    }

    /// Appends records (not yet durable: call [`Wal::sync`]).
    pub fn append(&mut self, records: &[Record]) -> Result<(), StorageError> {
        if records.is_empty() {
            return Ok(());
        }
        self.file
            .write_all(&frame(records))
            .map_err(|source| StorageError::Io {
                op: "append to",
                path: self.path.clone(),
                source,
            })
    }

    /// Makes everything appended durable (`fdatasync`).
    pub fn sync(&mut self) -> Result<(), StorageError> {
        self.file.sync_data().map_err(|source| StorageError::Io {
            op: "fsync",
            path: self.path.clone(),
            source,
        })
    }

    /// Atomically replaces the log by `records`: temp file, fsync, rename, fsync dir.
    pub fn rewrite(&mut self, records: &[Record]) -> Result<(), StorageError> {
        let tmp = self.path.with_extension("tmp");
        let io = |op: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| StorageError::Io { op, path, source }
        };
        let mut file = File::create(&tmp).map_err(io("create", &tmp))?;
        file.write_all(&frame(records)).map_err(io("write", &tmp))?;
        file.sync_all().map_err(io("fsync", &tmp))?;
        std::fs::rename(&tmp, &self.path).map_err(io("rename", &tmp))?;
        sync_dir(&self.path)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .map_err(io("reopen", &self.path))?;
        file.seek(SeekFrom::End(0))
            .map_err(io("seek", &self.path))?;
        self.file = file;
        Ok(())
    }
}
