//! The streaming JSONL reader.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::Value;

use super::op::Op;
use super::parse::op_from_object;
use super::validate::Validator;
use super::{History, HistoryError, InputError};

/// How many problems a whole-file read reports before it stops collecting.
pub const MAX_REPORTED_PROBLEMS: usize = 50;

/// Reads a history one event at a time, validating as it goes.
///
/// Each item is an [`Op`] with its line number, or a [`HistoryError`] naming the file and
/// line. Reading continues after an error, so a caller can report every problem at once.
/// Blank lines are skipped.
pub struct HistoryReader<R> {
    source: String,
    input: R,
    line: usize,
    buffer: String,
    validator: Validator,
}

impl HistoryReader<BufReader<File>> {
    /// Opens `path` for reading.
    pub fn open(path: &Path) -> Result<Self, InputError> {
        let file = File::open(path).map_err(|e| InputError::Io {
            source_name: path.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(HistoryReader::new(
            path.display().to_string(),
            BufReader::with_capacity(1 << 20, file),
        ))
    }
}

impl<R: BufRead> HistoryReader<R> {
    /// Reads from `input`; `source` names it in error messages (usually the file path).
    pub fn new(source: String, input: R) -> Self {
        HistoryReader {
            source,
            input,
            line: 0,
            buffer: String::new(),
            validator: Validator::new(),
        }
    }

    fn error(&self, message: String) -> HistoryError {
        HistoryError {
            source_name: self.source.clone(),
            line: self.line,
            message,
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
            self.buffer.clear();
            self.line += 1;
            match self.input.read_line(&mut self.buffer) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => {
                    return Some(Err(HistoryReadError::Io(InputError::Io {
                        source_name: self.source.clone(),
                        message: format!("line {}: {e}", self.line),
                    })));
                }
            }
            let text = self.buffer.trim();
            if text.is_empty() {
                continue;
            }
            let truncated = !self.buffer.ends_with('\n');
            let object = match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(object)) => object,
                Ok(other) => {
                    return Some(Err(HistoryReadError::Invalid(self.error(format!(
                        "expected a JSON object, got {}",
                        super::parse::json_type(&other)
                    )))));
                }
                Err(e) => {
                    let hint = if truncated && e.is_eof() {
                        " (the line is cut short: was the file truncated?)"
                    } else {
                        ""
                    };
                    return Some(Err(HistoryReadError::Invalid(
                        self.error(format!("not valid JSON: {e}{hint}")),
                    )));
                }
            };
            let op = match op_from_object(object) {
                Ok(op) => op,
                Err(message) => {
                    // Keep the index sequence in step so one bad line reports once.
                    self.validator.skip_line();
                    return Some(Err(HistoryReadError::Invalid(self.error(message))));
                }
            };
            let problems = self.validator.check(&op, self.line);
            if let Some(first) = problems.first() {
                let message = if problems.len() == 1 {
                    first.clone()
                } else {
                    problems.join("; ")
                };
                return Some(Err(HistoryReadError::Invalid(self.error(message))));
            }
            return Some(Ok((op, self.line)));
        }
    }
}
