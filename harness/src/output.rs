//! Printing to stdout that survives a closed pipe (`faultline … | head -1`): once the
//! reader has gone, the rest of the output is dropped and the exit code still gives the
//! verdict, instead of a panic on the failed write.

use std::io::{ErrorKind, Write};

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
    if let Err(e) = write_stdout(text) {
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

pub(crate) use {say, say_raw};

#[cfg(test)]
mod tests {
    #[test]
    fn text_reaches_stdout() {
        assert!(super::write_stdout("").is_ok());
    }
}
