//! Crash patterns: a node-log line holding one is a `node-log-crash` anomaly. A pattern
//! is a case-sensitive substring; a leading `^` anchors it at the start of the line
//! (Go's `panic: …` is only a crash there). [`CrashPatterns::default`] is the set every
//! database gets; a database adds its own ([`CrashPatterns::with`]).

use std::fmt;

/// The default crash patterns: Rust panics and assertions, Go's runtime panics and fatal
/// errors, race detectors, sanitizers, segfaults, glibc's heap checks.
pub const DEFAULT: [&str; 11] = [
    "panicked at",
    "assertion failed",
    "has overflowed its stack",
    "^panic: ",
    "^fatal error: ",
    "WARNING: DATA RACE",
    "ThreadSanitizer: data race",
    "AddressSanitizer",
    "SIGSEGV",
    "Segmentation fault",
    "double free or corruption",
];

/// One crash pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    anchored: bool,
}

/// A crash pattern that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("crash pattern {pattern:?}: {reason}")]
pub struct PatternError {
    /// The pattern as given.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Pattern {
    /// Parses `pattern`: a substring, `^` first to anchor it at the line's start. An
    /// empty pattern (which would match every line) is refused.
    pub fn parse(pattern: &str) -> Result<Pattern, PatternError> {
        let (text, anchored) = match pattern.strip_prefix('^') {
            Some(rest) => (rest, true),
            None => (pattern, false),
        };
        if text.is_empty() {
            return Err(PatternError {
                pattern: pattern.to_string(),
                reason: "empty: it would match every line",
            });
        }
        Ok(Pattern {
            text: text.to_string(),
            anchored,
        })
    }

    /// Whether `line` holds the pattern.
    pub fn matches(&self, line: &str) -> bool {
        if self.anchored {
            line.starts_with(&self.text)
        } else {
            line.contains(&self.text)
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.anchored {
            f.write_str("^")?;
        }
        f.write_str(&self.text)
    }
}

/// The crash patterns one check uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashPatterns {
    patterns: Vec<Pattern>,
}

impl Default for CrashPatterns {
    /// The [`DEFAULT`] patterns.
    fn default() -> CrashPatterns {
        CrashPatterns {
            patterns: DEFAULT
                .iter()
                .filter_map(|p| Pattern::parse(p).ok())
                .collect(),
        }
    }
}

impl CrashPatterns {
    /// No patterns at all.
    pub fn none() -> CrashPatterns {
        CrashPatterns {
            patterns: Vec::new(),
        }
    }

    /// These patterns and `more` (a database's own), duplicates dropped; the first bad
    /// pattern is an error.
    pub fn with<S: AsRef<str>>(
        mut self,
        more: impl IntoIterator<Item = S>,
    ) -> Result<CrashPatterns, PatternError> {
        for pattern in more {
            let pattern = Pattern::parse(pattern.as_ref())?;
            if !self.patterns.contains(&pattern) {
                self.patterns.push(pattern);
            }
        }
        Ok(self)
    }

    /// The first pattern `line` holds.
    pub fn find(&self, line: &str) -> Option<&Pattern> {
        self.patterns.iter().find(|p| p.matches(line))
    }

    /// The patterns as written (`^` for anchored ones).
    pub fn texts(&self) -> Vec<String> {
        self.patterns.iter().map(Pattern::to_string).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_catch_crashes_of_rust_and_go() {
        let patterns = CrashPatterns::default();
        for crash in [
            "thread 'tokio-runtime-worker' panicked at src/raft/mod.rs:12:5:",
            "panic: runtime error: index out of range [3] with length 3",
            "fatal error: concurrent map writes",
            "WARNING: DATA RACE",
            "==123==ERROR: AddressSanitizer: heap-use-after-free",
            "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x0]",
            "assertion failed: index > 0",
        ] {
            assert!(patterns.find(crash).is_some(), "{crash}");
        }
    }

    #[test]
    fn defaults_leave_benign_lines_alone() {
        let patterns = CrashPatterns::default();
        for benign in [
            "2026-12-05T12:00:00Z  INFO protocol: role node=1 term=2 role=leader",
            "2026-12-05T12:00:00Z  WARN kv: client said \"panic: no\"",
            "a non-fatal error: retrying",
            "{\"level\":\"warn\",\"msg\":\"request took too long\"}",
        ] {
            assert_eq!(patterns.find(benign), None, "{benign}");
        }
    }

    #[test]
    fn databases_add_their_own_and_bad_patterns_are_refused() {
        let patterns = CrashPatterns::default()
            .with(["\"level\":\"panic\"", "^FATAL", "panicked at"])
            .unwrap();
        assert_eq!(patterns.texts().len(), DEFAULT.len() + 2);
        assert!(
            patterns
                .find("{\"level\":\"panic\",\"msg\":\"x\"}")
                .is_some()
        );
        assert!(patterns.find("FATAL boom").is_some());
        assert!(patterns.find("not FATAL").is_none());
        let error = CrashPatterns::none().with(["^"]).unwrap_err();
        assert!(error.to_string().contains("empty"), "{error}");
        assert!(CrashPatterns::none().find("panicked at").is_none());
    }
}
