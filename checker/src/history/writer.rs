//! Writing histories as JSON Lines.

use std::io::{self, Write};

use super::op::Op;

/// Writes events one per line, in the spec's field order.
///
/// The writer does not validate: it records what happened, even if a buggy client
/// produced something odd, so that nothing observed is lost.
pub struct HistoryWriter<W: Write> {
    output: W,
}

impl<W: Write> HistoryWriter<W> {
    /// Writes to `output` (wrap files in a `BufWriter`).
    pub fn new(output: W) -> Self {
        HistoryWriter { output }
    }

    /// Appends one event as a line.
    pub fn write(&mut self, op: &Op) -> io::Result<()> {
        serde_json::to_writer(&mut self.output, op)?;
        self.output.write_all(b"\n")
    }

    /// Flushes buffered lines to the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.output.flush()
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.output
    }
}
