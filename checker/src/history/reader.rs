//! The streaming JSONL reader.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::Value;

use super::input::{
    LineSource, MemoryBudget, ReadLimits, ValueStats, oversized_integer, oversized_integer_message,
};
use super::op::Op;
use super::parse::op_from_object;
use super::validate::Validator;
use super::{History, HistoryError, InputError};

/// How many problems a whole-file read reports before it stops collecting.
pub const MAX_REPORTED_PROBLEMS: usize = 50;

/// Reads a history one event at a time, validating as it goes.
///
/// Each item is an [`Op`] with its line number, or a [`HistoryError`] naming the file and
/// line. Reading continues after an error, so a caller can report every problem at once,
/// except after a line longer than [`ReadLimits::max_line_bytes`], a line that could take
/// the history past [`ReadLimits::memory_bytes`], or an I/O error: there it stops. Blank
/// lines are skipped.
pub struct HistoryReader<R> {
    source: String,
    lines: LineSource<R>,
    validator: Validator,
    budget: MemoryBudget,
    stopped: bool,
}

impl HistoryReader<BufReader<File>> {
    /// Opens `path` for reading, with the default [`ReadLimits`].
    pub fn open(path: &Path) -> Result<Self, InputError> {
        HistoryReader::open_with(path, &ReadLimits::default())
    }

    /// Opens `path` for reading within `limits`.
    pub fn open_with(path: &Path, limits: &ReadLimits) -> Result<Self, InputError> {
        let file = File::open(path).map_err(|e| InputError::Io {
            source_name: path.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(HistoryReader::with_limits(
            path.display().to_string(),
            BufReader::with_capacity(1 << 20, file),
            limits,
        ))
    }
}

impl<R: BufRead> HistoryReader<R> {
    /// Reads from `input`; `source` names it in error messages (usually the file path).
    pub fn new(source: String, input: R) -> Self {
        HistoryReader::with_limits(source, input, &ReadLimits::default())
    }

    /// Reads from `input` within `limits`.
    pub fn with_limits(source: String, input: R, limits: &ReadLimits) -> Self {
        HistoryReader {
            source,
            lines: LineSource::new(input, limits.max_line_bytes),
            validator: Validator::new(),
            budget: MemoryBudget::new(limits.memory_bytes),
            stopped: false,
        }
    }

    /// Reads everything into a [`History`], or returns every problem found (up to
    /// [`MAX_REPORTED_PROBLEMS`], with a count of the rest).
    pub fn read_all(mut self) -> Result<History, InputError> {
        let mut ops = Vec::new();
        let mut lines = Vec::new();
        let mut problems = Vec::new();
        let mut more = 0usize;
        for item in self.by_ref() {
            match item {
                Ok((op, line)) => {
                    ops.push(op);
                    lines.push(line);
                }
                Err(HistoryReadError::Io(error)) => return Err(error),
                Err(HistoryReadError::Invalid(error)) => {
                    if problems.len() < MAX_REPORTED_PROBLEMS {
                        problems.push(error);
                    } else {
                        more += 1;
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(History::from_parts(self.source, ops, lines))
        } else {
            Err(InputError::Invalid { problems, more })
        }
    }
}

/// The state a line is parsed against.
struct LineState<'a> {
    line: usize,
    validator: &'a mut Validator,
    budget: &'a mut MemoryBudget,
}

/// Parses one non-blank line into an event. The error says whether reading must stop.
fn parse_line(state: LineState<'_>, text: &str, truncated: bool) -> Result<Op, (String, bool)> {
    state.budget.admit(text.len()).map_err(|m| (m, true))?;
    let object = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(object)) => object,
        Ok(other) => {
            state.validator.skip_line();
            return Err((
                format!(
                    "expected a JSON object, got {}",
                    super::parse::json_type(&other)
                ),
                false,
            ));
        }
        Err(e) => {
            state.validator.skip_line();
            let hint = if truncated && e.is_eof() {
                " (the line is cut short: was the file truncated?)"
            } else {
                ""
            };
            return Err((format!("not valid JSON: {e}{hint}"), false));
        }
    };
    let stats = ValueStats::of_object(&object);
    if stats.has_float
        && let Some(token) = oversized_integer(text)
    {
        state.validator.skip_line();
        return Err((oversized_integer_message(token), false));
    }
    let op = match op_from_object(object) {
        Ok(op) => op,
        Err(message) => {
            // Keep the index sequence in step so one bad line reports once.
            state.validator.skip_line();
            return Err((message, false));
        }
    };
    let problems = state.validator.check(&op, state.line);
    if !problems.is_empty() {
        return Err((problems.join("; "), false));
    }
    state.budget.charge_heap(stats.bytes);
    Ok(op)
}

/// What can go wrong reading one event.
#[derive(Debug)]
pub enum HistoryReadError {
    /// The event is malformed or breaks a rule; reading may continue.
    Invalid(HistoryError),
    /// The input could not be read at all; reading stops.
    Io(InputError),
}

impl<R: BufRead> Iterator for HistoryReader<R> {
    type Item = Result<(Op, usize), HistoryReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.stopped {
                return None;
            }
            let next = self.lines.next()?;
            let (line, truncated) = (next.number, !next.complete);
            let text = match next.text {
                Ok(text) => text.trim(),
                Err(error) => {
                    if error.is_fatal() {
                        self.stopped = true;
                    } else {
                        self.validator.skip_line();
                    }
                    return Some(Err(HistoryReadError::Invalid(HistoryError {
                        source_name: self.source.clone(),
                        line,
                        message: error.message(),
                    })));
                }
            };
            if text.is_empty() {
                continue;
            }
            let state = LineState {
                line,
                validator: &mut self.validator,
                budget: &mut self.budget,
            };
            return Some(match parse_line(state, text, truncated) {
                Ok(op) => Ok((op, line)),
                Err((message, fatal)) => {
                    self.stopped |= fatal;
                    Err(HistoryReadError::Invalid(HistoryError {
                        source_name: self.source.clone(),
                        line,
                        message,
                    }))
                }
            });
        }
    }
}
