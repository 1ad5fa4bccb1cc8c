//! The history, streamed to `history.jsonl` as the run goes: buffered, flushed at least
//! once a second (so a crashed controller loses at most a second and leaves a readable
//! file), synced at the end. It also keeps the operations in memory for the checker and
//! measures its own cost.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;
use std::time::{Duration, Instant};

use faultline_checker::Op;
use faultline_checker::history::HistoryWriter;

/// How often buffered lines reach the file at the latest.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Writes a run's history.
pub struct Recorder {
    writer: HistoryWriter<BufWriter<File>>,
    ops: Vec<Op>,
    last_flush: Instant,
    busy: Duration,
}

impl Recorder {
    /// Creates (truncates) the history file.
    pub fn create(path: &Path) -> io::Result<Recorder> {
        let file = File::create(path)?;
        Ok(Recorder {
            writer: HistoryWriter::new(BufWriter::with_capacity(1 << 20, file)),
            ops: Vec::new(),
            last_flush: Instant::now(),
            busy: Duration::ZERO,
        })
    }

    /// The next operation's index.
    pub fn next_index(&self) -> u64 {
        self.ops.len() as u64
    }

    /// Appends `op` (its index must be [`Recorder::next_index`]); flushes when the last
    /// flush is a second old.
    pub fn record(&mut self, op: Op) -> io::Result<()> {
        let started = Instant::now();
        self.writer.write(&op)?;
        if started.duration_since(self.last_flush) >= FLUSH_INTERVAL {
            self.writer.flush()?;
            self.last_flush = Instant::now();
        }
        self.busy += started.elapsed();
        // Keeping the operation for the checker is not writing; it is not counted.
        self.ops.push(op);
        Ok(())
    }

    /// Flushes if the last flush is a second old (called when the run is idle).
    pub fn tick(&mut self) -> io::Result<()> {
        if self.last_flush.elapsed() >= FLUSH_INTERVAL {
            let started = Instant::now();
            self.writer.flush()?;
            self.last_flush = Instant::now();
            self.busy += started.elapsed();
        }
        Ok(())
    }

    /// Flushes and syncs the file; returns the operations and the time spent writing.
    pub fn finish(mut self) -> io::Result<(Vec<Op>, Duration)> {
        let started = Instant::now();
        self.writer.flush()?;
        let file = self
            .writer
            .into_inner()
            .into_inner()
            .map_err(|e| e.into_error())?;
        file.sync_all()?;
        self.busy += started.elapsed();
        Ok((self.ops, self.busy))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_checker::{History, OpType, Process};
    use serde_json::json;

    #[test]
    fn the_file_is_readable_while_the_run_goes_and_complete_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let mut recorder = Recorder::create(&path).unwrap();
        let op =
            |i: u64, t: OpType| Op::new(i, i as i64, Process::Client(0), t, "read", json!(null));
        recorder.record(op(0, OpType::Invoke)).unwrap();
        // Nothing forces a flush yet; after the interval, a tick does.
        recorder.last_flush -= FLUSH_INTERVAL;
        recorder.tick().unwrap();
        let partial = History::read_jsonl(&path).unwrap();
        assert_eq!(partial.len(), 1);
        recorder.record(op(1, OpType::Ok)).unwrap();
        let (ops, _busy) = recorder.finish().unwrap();
        assert_eq!(ops.len(), 2);
        assert_eq!(History::read_jsonl(&path).unwrap().len(), 2);
    }
}
