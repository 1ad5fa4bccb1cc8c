//! What a file has not made durable yet: an undo log of its unsynced changes, oldest
//! first, and the rollback that puts the file back to how it was at its last fsync.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// One change not yet made durable, with what it takes to undo it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `len` bytes written at `offset`, over `old` (the bytes that were there, as far
    /// as the file reached) when the file was `old_len` bytes long.
    Write {
        /// Where the write started.
        offset: u64,
        /// How many bytes it wrote.
        len: u64,
        /// The bytes it overwrote (the part of `offset..offset+len` below `old_len`).
        old: Vec<u8>,
        /// The file's size before.
        old_len: u64,
    },
    /// The size set to `new_len` from `old_len`; `old_tail` holds the bytes a shrink cut
    /// off (`new_len..old_len`).
    SetLen {
        /// The size before.
        old_len: u64,
        /// The size after.
        new_len: u64,
        /// The bytes cut off by a shrink (empty when growing).
        old_tail: Vec<u8>,
    },
}

/// The unsynced changes of one file, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UndoLog {
    changes: Vec<Change>,
}

/// What rolling one file back discarded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Discarded {
    /// Unsynced writes undone.
    pub writes: u64,
    /// Bytes those writes had written.
    pub bytes: u64,
    /// Unsynced size changes undone.
    pub truncations: u64,
    /// The file's size afterwards (its size at its last fsync).
    pub size: u64,
}

fn read_exact_at(file: &File, offset: u64, len: u64) -> io::Result<Vec<u8>> {
    let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut buf = vec![0; len];
    file.read_exact_at(&mut buf, offset)?;
    Ok(buf)
}

impl UndoLog {
    /// Whether every change is durable.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// How many bytes unsynced writes wrote.
    pub fn unsynced_bytes(&self) -> u64 {
        self.changes
            .iter()
            .map(|c| match c {
                Change::Write { len, .. } => *len,
                Change::SetLen { .. } => 0,
            })
            .sum()
    }

    /// Writes `data` at `offset` of `file`, first saving what it overwrites.
    pub fn write(&mut self, file: &File, offset: u64, data: &[u8]) -> io::Result<()> {
        let old_len = file.metadata()?.len();
        let len = data.len() as u64;
        let old = if offset < old_len {
            read_exact_at(file, offset, len.min(old_len - offset))?
        } else {
            Vec::new()
        };
        file.write_all_at(data, offset)?;
        self.changes.push(Change::Write {
            offset,
            len,
            old,
            old_len,
        });
        Ok(())
    }

    /// Sets the size of `file` to `new_len`, first saving what a shrink cuts off.
    pub fn set_len(&mut self, file: &File, new_len: u64) -> io::Result<()> {
        let old_len = file.metadata()?.len();
        if old_len == new_len {
            return Ok(());
        }
        let old_tail = if new_len < old_len {
            read_exact_at(file, new_len, old_len - new_len)?
        } else {
            Vec::new()
        };
        file.set_len(new_len)?;
        self.changes.push(Change::SetLen {
            old_len,
            new_len,
            old_tail,
        });
        Ok(())
    }

    /// Everything so far is durable (the file was fsynced).
    pub fn synced(&mut self) {
        self.changes.clear();
    }

    /// Undoes every unsynced change of `file`, newest first, leaving it exactly as it
    /// was at its last fsync, and empties the log.
    pub fn roll_back(&mut self, file: &File) -> io::Result<Discarded> {
        let mut discarded = Discarded::default();
        while let Some(change) = self.changes.pop() {
            match change {
                Change::Write {
                    offset,
                    len,
                    old,
                    old_len,
                } => {
                    file.write_all_at(&old, offset)?;
                    file.set_len(old_len)?;
                    discarded.writes += 1;
                    discarded.bytes += len;
                }
                Change::SetLen {
                    old_len,
                    new_len,
                    old_tail,
                } => {
                    file.set_len(old_len)?;
                    if !old_tail.is_empty() {
                        file.write_all_at(&old_tail, new_len)?;
                    }
                    discarded.truncations += 1;
                }
            }
        }
        discarded.size = file.metadata()?.len();
        Ok(discarded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    fn file() -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().unwrap();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("f"))
            .unwrap();
        (dir, file)
    }

    fn content(file: &File) -> Vec<u8> {
        let len = file.metadata().unwrap().len();
        read_exact_at(file, 0, len).unwrap()
    }

    #[test]
    fn rollback_keeps_exactly_the_synced_bytes() {
        let (_dir, f) = file();
        let mut log = UndoLog::default();
        log.write(&f, 0, b"hello world").unwrap();
        log.synced();
        log.write(&f, 11, b", appended").unwrap();
        log.write(&f, 0, b"HELLO").unwrap();
        log.write(&f, 30, b"past the end").unwrap();
        log.set_len(&f, 3).unwrap();
        log.write(&f, 3, b"xyz").unwrap();
        assert_eq!(log.unsynced_bytes(), 10 + 5 + 12 + 3);
        let d = log.roll_back(&f).unwrap();
        assert_eq!(content(&f), b"hello world");
        assert_eq!(
            d,
            Discarded {
                writes: 4,
                bytes: 30,
                truncations: 1,
                size: 11
            }
        );
        assert!(log.is_empty());
        // Nothing left to lose.
        assert_eq!(log.roll_back(&f).unwrap().writes, 0);
        assert_eq!(content(&f), b"hello world");
    }

    #[test]
    fn a_synced_truncation_stays_and_an_unsynced_growth_goes() {
        let (_dir, f) = file();
        let mut log = UndoLog::default();
        log.write(&f, 0, b"0123456789").unwrap();
        log.set_len(&f, 4).unwrap();
        log.synced();
        log.set_len(&f, 100).unwrap();
        log.write(&f, 50, b"x").unwrap();
        log.roll_back(&f).unwrap();
        assert_eq!(content(&f), b"0123");
    }
}
