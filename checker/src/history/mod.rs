//! The history format of `shared/spec/history.md`: events, a validating streaming
//! reader, a writer, pairing of invocations with completions, and Jepsen EDN import.

pub mod compact;
pub mod edn;
mod input;
mod op;
mod parse;
mod reader;
mod validate;
mod writer;

use std::fmt;
use std::path::Path;

pub use compact::{NotCompact, TxnHistory};
pub use input::{MAX_LINE_BYTES, ReadLimits};
pub use op::{Key, Op, OpType, Process};
pub use reader::{HistoryReadError, HistoryReader, MAX_REPORTED_PROBLEMS};
pub use validate::Validator;
pub use writer::HistoryWriter;

/// A problem at one line of an input file. Displays as `FILE:LINE: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}:{line}: {message}")]
pub struct HistoryError {
    /// The file (or stream) name.
    pub source_name: String,
    /// The 1-based line number (for EDN vectors, the element's position).
    pub line: usize,
    /// What is wrong, and where useful what to do.
    pub message: String,
}

/// Why a history could not be used: the input's fault, never the checker's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// The file could not be read.
    #[error("{source_name}: cannot read: {message}")]
    Io {
        /// The file name.
        source_name: String,
        /// The operating system's reason.
        message: String,
    },
    /// Lines are malformed or break the format's rules.
    #[error("{}", render_problems(problems, *more))]
    Invalid {
        /// The problems found, in file order.
        problems: Vec<HistoryError>,
        /// How many more were found but not kept.
        more: usize,
    },
    /// The history is well-formed but cannot be checked as asked (e.g. an unknown model).
    #[error("{0}")]
    Unsupported(String),
}

impl InputError {
    /// An error about a single line.
    pub fn at(source_name: &str, line: usize, message: impl Into<String>) -> InputError {
        InputError::Invalid {
            problems: vec![HistoryError {
                source_name: source_name.to_string(),
                line,
                message: message.into(),
            }],
            more: 0,
        }
    }
}

fn render_problems(problems: &[HistoryError], more: usize) -> String {
    let mut text = problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    if more > 0 {
        text.push_str(&format!("\n... and {more} more problems"));
    }
    text
}

/// A whole, validated history, with the line each event came from.
#[derive(Debug, Clone)]
pub struct History {
    source_name: String,
    ops: Vec<Op>,
    lines: Vec<usize>,
}

/// A client operation: its invocation and, if it completed, its completion.
///
/// An invocation with no completion is treated exactly as one completed with `info`.
#[derive(Debug, Clone, Copy)]
pub struct Operation<'h> {
    /// The `invoke` event.
    pub invoke: &'h Op,
    /// The `ok`, `fail` or `info` event, if any.
    pub completion: Option<&'h Op>,
}

impl<'h> Operation<'h> {
    /// How the operation ended: `Info` when it never completed.
    pub fn outcome(&self) -> OpType {
        self.completion.map_or(OpType::Info, |c| c.op_type)
    }
}

impl History {
    /// Reads and validates a JSONL history file.
    pub fn read_jsonl(path: &Path) -> Result<History, InputError> {
        HistoryReader::open(path)?.read_all()
    }

    /// Reads a history in the given format, or by the file's extension when `format`
    /// is `None` (`.edn` is EDN, anything else JSONL), within the default limits.
    pub fn read(path: &Path, format: Option<Format>) -> Result<History, InputError> {
        History::read_with(path, format, &ReadLimits::default())
    }

    /// Reads a history as [`History::read`] does, within `limits`: a longer line or a
    /// history larger than the memory limit is refused with the line it was found on.
    pub fn read_with(
        path: &Path,
        format: Option<Format>,
        limits: &ReadLimits,
    ) -> Result<History, InputError> {
        let format = format.unwrap_or_else(|| Format::from_path(path));
        match format {
            Format::Jsonl => HistoryReader::open_with(path, limits)?.read_all(),
            Format::Edn => edn::read_edn_file_with(path, limits),
        }
    }

    /// Reads and validates a history of `format` from `input`; `source_name` names it
    /// in errors (usually the file's path). As [`History::read_with`], for a caller that
    /// opens the file itself (to count what is read, say).
    pub fn read_from<R: std::io::BufRead>(
        source_name: String,
        input: R,
        format: Format,
        limits: &ReadLimits,
    ) -> Result<History, InputError> {
        match format {
            Format::Jsonl => HistoryReader::with_limits(source_name, input, limits).read_all(),
            Format::Edn => edn::read_edn(&source_name, input, limits),
        }
    }

    /// Validates events made in memory. Line numbers are taken to be `index + 1`.
    pub fn from_ops(source_name: &str, ops: Vec<Op>) -> Result<History, InputError> {
        let mut validator = Validator::new();
        let mut problems = Vec::new();
        let mut more = 0;
        let mut lines = Vec::with_capacity(ops.len());
        for (position, op) in ops.iter().enumerate() {
            let line = position + 1;
            lines.push(line);
            for message in validator.check(op, line) {
                if problems.len() < MAX_REPORTED_PROBLEMS {
                    problems.push(HistoryError {
                        source_name: source_name.to_string(),
                        line,
                        message,
                    });
                } else {
                    more += 1;
                }
            }
        }
        if problems.is_empty() {
            Ok(History::from_parts(source_name.to_string(), ops, lines))
        } else {
            Err(InputError::Invalid { problems, more })
        }
    }

    pub(crate) fn from_parts(source_name: String, ops: Vec<Op>, lines: Vec<usize>) -> History {
        History {
            source_name,
            ops,
            lines,
        }
    }

    /// The file the history came from.
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// Every event, in order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// The line of the file that event `position` came from.
    pub fn line_of(&self, position: usize) -> usize {
        self.lines.get(position).copied().unwrap_or(position + 1)
    }

    /// An input error about the event at `position`.
    pub fn error_at(&self, position: usize, message: impl Into<String>) -> InputError {
        InputError::at(&self.source_name, self.line_of(position), message)
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when there are no events.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Every client operation, invocation paired with completion, in invocation order.
    /// Nemesis events are left out.
    pub fn operations(&self) -> Vec<Operation<'_>> {
        let mut operations: Vec<Operation<'_>> = Vec::new();
        let mut open: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
        for op in &self.ops {
            let Process::Client(process) = op.process else {
                continue;
            };
            if op.op_type == OpType::Invoke {
                open.insert(process, operations.len());
                operations.push(Operation {
                    invoke: op,
                    completion: None,
                });
            } else if let Some(slot) = open.remove(&process)
                && let Some(operation) = operations.get_mut(slot)
            {
                operation.completion = Some(op);
            }
        }
        operations
    }

    /// The position of an event in [`History::ops`], from its index.
    pub fn position_of_index(&self, index: u64) -> usize {
        usize::try_from(index).unwrap_or(usize::MAX)
    }
}

/// A history file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Faultline's JSON Lines.
    Jsonl,
    /// Jepsen's `history.edn`.
    Edn,
}

impl Format {
    /// The format a file's extension suggests: `.edn` is EDN, anything else JSONL.
    pub fn from_path(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("edn") => Format::Edn,
            _ => Format::Jsonl,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Jsonl => "jsonl",
            Format::Edn => "edn",
        })
    }
}
