//! The one error type the binary adds: a mistake the user can fix (exit 254).

use std::fmt;

/// A bad argument or an unusable path: the user's to fix, so it exits 254, not 255.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}
