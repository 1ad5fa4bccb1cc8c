//! What `faultline check` is doing, on a terminal: while the history is read, a bar of
//! the bytes read with the rate and the time left; while it is checked, a spinner with
//! the time spent. A history of millions of transactions takes a minute or more, and
//! this line shows it is moving. Nothing is shown when stderr is not a terminal (a CI
//! log, a pipe), nor in one of several checks at once, and the line is cleared before
//! the verdict is printed.

use std::fs::File;
use std::io::{BufReader, IsTerminal, Read};
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// The line while the file is read.
const READING: &str = "{spinner} {msg} [{bar:24}] {binary_bytes}/{binary_total_bytes} \
                       {binary_bytes_per_sec}, {eta} left";

/// The line while the history is checked.
const CHECKING: &str = "{spinner} {msg} ({elapsed})";

/// How often the line is redrawn.
const TICK: Duration = Duration::from_millis(200);

/// The progress line of one check (hidden when there is no terminal).
pub(super) struct CheckProgress {
    shown: bool,
    bar: Option<ProgressBar>,
}

impl CheckProgress {
    /// A progress line on stderr if it is a terminal.
    pub(super) fn new() -> CheckProgress {
        CheckProgress {
            shown: std::io::stderr().is_terminal() && crate::output::label().is_none(),
            bar: None,
        }
    }

    /// Opens `path` for reading; on a terminal, the bytes read from it fill a bar
    /// labelled `what`. Returns the reader and the file's size.
    pub(super) fn open(
        &mut self,
        path: &Path,
        what: &str,
    ) -> std::io::Result<(BufReader<Box<dyn Read + Send>>, u64)> {
        let file = File::open(path)?;
        let size = file.metadata().map_or(0, |m| m.len());
        let input: Box<dyn Read + Send> = if self.shown {
            let bar = ProgressBar::new(size);
            bar.set_style(style(READING));
            bar.set_message(what.to_string());
            bar.enable_steady_tick(TICK);
            let input = Box::new(bar.wrap_read(file));
            self.replace(bar);
            input
        } else {
            Box::new(file)
        };
        Ok((BufReader::with_capacity(1 << 20, input), size))
    }

    /// From now on the line says `what`, with a spinner and the time spent on it.
    pub(super) fn stage(&mut self, what: String) {
        if !self.shown {
            return;
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(style(CHECKING));
        bar.set_message(what);
        bar.enable_steady_tick(TICK);
        self.replace(bar);
    }

    /// Clears the line (also done when it is dropped).
    pub(super) fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn replace(&mut self, bar: ProgressBar) {
        self.finish();
        self.bar = Some(bar);
    }
}

impl Drop for CheckProgress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `template` as a style; the default style if it does not parse (it always does: the
/// templates are constants, and the test below parses them).
fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_templates_parse() {
        for template in [READING, CHECKING] {
            assert!(ProgressStyle::with_template(template).is_ok(), "{template}");
        }
    }

    #[test]
    fn what_is_read_through_it_is_the_file() {
        let path = std::env::temp_dir().join(format!("faultline-progress-{}", std::process::id()));
        std::fs::write(&path, "one\ntwo\n").unwrap();
        let mut progress = CheckProgress {
            shown: true,
            bar: None,
        };
        let (mut input, size) = progress.open(&path, "reading").unwrap();
        let mut text = String::new();
        input.read_to_string(&mut text).unwrap();
        assert_eq!((text.as_str(), size), ("one\ntwo\n", 8));
        assert_eq!(progress.bar.as_ref().map(ProgressBar::position), Some(8));
        progress.stage("checking".into());
        assert_eq!(progress.bar.as_ref().map(ProgressBar::position), Some(0));
        progress.finish();
        assert!(progress.bar.is_none());
        std::fs::remove_file(&path).unwrap();
        assert!(progress.open(&path, "reading").is_err());
    }
}
