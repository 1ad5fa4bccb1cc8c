//! Printing to stdout that survives a closed pipe (`faultline … | head -1`): once the
//! reader has gone, the rest of the output is dropped and the exit code still gives the
//! verdict, instead of a panic on the failed write.
//!
//! A suite's runs at once (`faultline suite --jobs J`) each run on their own thread
//! under a label ([`labelled`]): every line they print, on stdout ([`say!`]) or stderr
//! ([`note!`]), then starts with `[LABEL] `, so interleaved lines still name their run.

use std::cell::RefCell;
use std::io::{ErrorKind, Write};

thread_local! {
    /// The label of the run this thread works for, if it is one of several at once.
    static LABEL: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's lines labelled `[label] ` (none with `None`).
pub(crate) fn labelled<T>(label: Option<&str>, f: impl FnOnce() -> T) -> T {
    let before = LABEL.with(|l| l.replace(label.map(str::to_string)));
    let result = f();
    LABEL.with(|l| *l.borrow_mut() = before);
    result
}

/// This thread's label, if any.
pub(crate) fn label() -> Option<String> {
    LABEL.with(|l| l.borrow().clone())
}

/// `text` with every line prefixed by this thread's label, if it has one.
fn prefixed(text: &str) -> String {
    match label() {
        None => text.to_string(),
        Some(label) => prefix_lines(&label, text),
    }
}

/// `text` with `[label] ` before every line.
pub(crate) fn prefix_lines(label: &str, text: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| format!("[{label}] {line}"))
        .collect()
}

/// Writes `text` (lines) to stderr, labelled as [`prefixed`] says, in one write.
pub(crate) fn note_text(text: &str) {
    let _ = std::io::stderr()
        .lock()
        .write_all(prefixed(text).as_bytes());
}

/// Writes `text` to stdout. A closed pipe is not an error; any other failure is.
pub(crate) fn write_stdout(text: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Writes `text` to stdout as [`write_stdout`] does; a failure other than a closed pipe
/// is reported on stderr (the command's outcome is decided elsewhere).
pub(crate) fn print_text(text: &str) {
    if let Err(e) = write_stdout(&prefixed(text)) {
        eprintln!("faultline: cannot write to stdout: {e}");
    }
}

/// `println!` that survives a closed pipe.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::output::print_text(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` that survives a closed pipe.
macro_rules! say_raw {
    ($($arg:tt)*) => {
        $crate::output::print_text(&format!($($arg)*))
    };
}

/// `eprintln!` whose lines carry this thread's run label, if any (see [`labelled`]).
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::output::note_text(&format!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {note, say, say_raw};

#[cfg(test)]
mod tests {
    #[test]
    fn text_reaches_stdout() {
        assert!(super::write_stdout("").is_ok());
    }

    #[test]
    fn labelled_lines_name_their_run() {
        use super::*;
        assert_eq!(label(), None);
        let inner = labelled(Some("kv-bank seed 2"), || {
            assert_eq!(
                prefixed("a\nb\n"),
                "[kv-bank seed 2] a\n[kv-bank seed 2] b\n"
            );
            label()
        });
        assert_eq!(inner.as_deref(), Some("kv-bank seed 2"));
        assert_eq!(label(), None);
        assert_eq!(prefixed("a\n"), "a\n");
        assert_eq!(prefix_lines("x", "no newline"), "[x] no newline");
    }
}
